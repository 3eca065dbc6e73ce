package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot stream format:
//
//	"BXSNAP" version:u8 { klen:uvarint key vlen:uvarint value } 0:uvarint crc32c:u32 BE
//
// Keys are never empty, so a zero key length ends the records. The checksum
// covers every byte before it.
const (
	snapMagic   = "BXSNAP"
	snapVersion = 1
	// restoreBatchBytes bounds one Pebble batch while restoring.
	restoreBatchBytes = 4 << 20
	// snapKeyLenMax and snapValueLenMax bound records read from a stream.
	snapKeyLenMax   = 1 << 10
	snapValueLenMax = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type snapWriter struct {
	bw  *bufio.Writer
	crc hash.Hash32
	n   int64
	buf []byte
}

func newSnapWriter(w io.Writer) *snapWriter {
	sw := &snapWriter{bw: bufio.NewWriterSize(w, 256<<10), crc: crc32.New(crcTable)}
	sw.write(append([]byte(snapMagic), snapVersion))
	return sw
}

func (sw *snapWriter) write(p []byte) error {
	sw.crc.Write(p)
	n, err := sw.bw.Write(p)
	sw.n += int64(n)
	return err
}

func (sw *snapWriter) record(k, v []byte) error {
	sw.buf = binary.AppendUvarint(sw.buf[:0], uint64(len(k)))
	sw.buf = append(sw.buf, k...)
	sw.buf = binary.AppendUvarint(sw.buf, uint64(len(v)))
	sw.buf = append(sw.buf, v...)
	return sw.write(sw.buf)
}

func (sw *snapWriter) finish() error {
	if err := sw.write([]byte{0}); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], sw.crc.Sum32())
	n, err := sw.bw.Write(sum[:])
	sw.n += int64(n)
	if err != nil {
		return err
	}
	return sw.bw.Flush()
}

// crcReader checksums what it reads.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

func (c *crcReader) full(p []byte) error {
	if _, err := io.ReadFull(c.r, p); err != nil {
		return err
	}
	c.crc.Write(p)
	return nil
}

// readSnapshot loads a snapshot stream into an empty db and syncs it. It
// fails on a bad header, an oversize record, a truncated stream or a checksum
// mismatch.
func readSnapshot(r io.Reader, db *pebble.DB) error {
	cr := &crcReader{r: bufio.NewReaderSize(r, 256<<10), crc: crc32.New(crcTable)}
	head := make([]byte, len(snapMagic)+1)
	if err := cr.full(head); err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	if string(head[:len(snapMagic)]) != snapMagic {
		return errors.New("snapshot header: not a boxoffice snapshot")
	}
	if head[len(snapMagic)] != snapVersion {
		return fmt.Errorf("snapshot header: unknown version %d", head[len(snapMagic)])
	}
	b := db.NewBatch()
	defer func() { b.Close() }()
	var k, v []byte
	for {
		klen, err := binary.ReadUvarint(cr)
		if err != nil {
			return fmt.Errorf("snapshot record: %w", err)
		}
		if klen == 0 {
			break
		}
		if klen > snapKeyLenMax {
			return fmt.Errorf("snapshot record: key of %d bytes: %w", klen, errMalformed)
		}
		k = grow(k, int(klen))
		if err := cr.full(k); err != nil {
			return fmt.Errorf("snapshot record: %w", err)
		}
		vlen, err := binary.ReadUvarint(cr)
		if err != nil {
			return fmt.Errorf("snapshot record: %w", err)
		}
		if vlen > snapValueLenMax {
			return fmt.Errorf("snapshot record: value of %d bytes: %w", vlen, errMalformed)
		}
		v = grow(v, int(vlen))
		if err := cr.full(v); err != nil {
			return fmt.Errorf("snapshot record: %w", err)
		}
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		if b.Len() >= restoreBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	want := cr.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(cr.r, sum[:]); err != nil {
		return fmt.Errorf("snapshot trailer: %w", err)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("snapshot checksum %08x, want %08x: %w", got, want, errMalformed)
	}
	return b.Commit(pebble.Sync)
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
