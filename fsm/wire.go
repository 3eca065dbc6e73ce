package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errMalformed is returned by a reader that ran past its input or found a
// value out of range. Decoding never panics on bad input.
var errMalformed = errors.New("malformed encoding")

// Limits on decoded sizes, so that a corrupt length cannot make us allocate
// without bound.
const (
	stringLenMax = 64 << 10
	listLenMax   = 1 << 20
)

// writer appends the compact binary encoding used by commands and values:
// unsigned varints, zig-zag varints, and length-prefixed strings.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)       { w.b = append(w.b, v) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) int(v int)        { w.b = binary.AppendVarint(w.b, int64(v)) }
func (w *writer) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) strs(ss []string) {
	w.uvarint(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}
func (w *writer) bytes(p []byte) {
	w.b = binary.AppendUvarint(w.b, uint64(len(p)))
	w.b = append(w.b, p...)
}

// reader decodes what writer wrote. The first error sticks; every later read
// returns a zero value, so callers check err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errMalformed
	}
	r.b = nil
}

func (r *reader) u8() uint8 {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// A varint must be in its shortest form: binary.Uvarint also takes
// over-long ones (a last byte of 0, as in 0x80 0x00 for 0), which would give
// one command several encodings. A strict decoder refuses them.
func canonicalVarint(b []byte, n int) bool { return n == 1 || n > 1 && b[n-1] != 0 }

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || !canonicalVarint(r.b, n) {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 || !canonicalVarint(r.b, n) {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int reads a varint that must fit a non-huge int (|v| < 2^40).
func (r *reader) int() int {
	v := r.varint()
	if v > 1<<40 || v < -(1<<40) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *reader) bytes() []byte { return r.bytesMax(stringLenMax) }

// bytesMax reads a length-prefixed byte string of at most max bytes.
func (r *reader) bytesMax(max uint64) []byte {
	n := r.uvarint()
	if n > max || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) str() string { return string(r.bytes()) }

func (r *reader) strs() []string {
	n := r.uvarint()
	if n > listLenMax || n > uint64(len(r.b)) { // each string takes at least one byte
		r.fail()
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.str()
	}
	return ss
}

// count reads a list length, bounded by max and by the bytes left (each
// element takes at least minBytes).
func (r *reader) count(max int, minBytes int) int {
	n := r.uvarint()
	if n > uint64(max) || n*uint64(minBytes) > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// done reports the sticky error, or an error if bytes are left over.
func (r *reader) done(what string) error {
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("decode %s: %d trailing bytes: %w", what, len(r.b), errMalformed)
	}
	return nil
}
