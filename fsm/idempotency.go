package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// IdempotencyHashLen is the length of a request hash in an Idempotent
// command (a truncated SHA-256 of the request, computed by the caller).
const IdempotencyHashLen = 16

// idemRecord is what the state machine keeps of an Idempotent command: the
// request's hash, when it first ran, and its result.
type idemRecord struct {
	hash        []byte
	createdAtMs int64
	res         Result
}

func idemKey(subject, key string) []byte { return append(prefix(tagIdem, subject), key...) }

func idemAgeKey(createdAtMs int64, subject, key string) []byte {
	k := make([]byte, 0, 10+len(subject)+len(key))
	k = append(k, tagIdemAge)
	k = binary.BigEndian.AppendUint64(k, uint64(createdAtMs))
	k = append(k, subject...)
	k = append(k, 0)
	return append(k, key...)
}

func (a *applier) idempotent(c *Idempotent) (Result, error) {
	if !boxoffice.ValidID(c.Subject) || c.Key == "" || len(c.Key) > boxoffice.IdempotencyKeyLenMax || len(c.Hash) != IdempotencyHashLen {
		return reject(boxoffice.CodeInvalidArgument, "idempotency: subject, key (1..%d bytes) and a %d-byte hash are required", boxoffice.IdempotencyKeyLenMax, IdempotencyHashLen)
	}
	k := idemKey(c.Subject, c.Key)
	v, ok, err := a.get(k)
	if err != nil {
		return Result{}, err
	}
	if ok {
		rec, err := decodeIdem(v)
		if err != nil {
			return Result{}, err
		}
		if res, live := rec.replay(c.Key, c.Hash, a.nowMs); live {
			return res, nil
		}
		// Expired but not swept yet: forget it and run afresh.
		if err := a.dropIdem(rec.createdAtMs, c.Subject, c.Key); err != nil {
			return Result{}, err
		}
	}
	res, err := a.apply(c.Command)
	if err != nil {
		return Result{}, err
	}
	if c := boxoffice.CodeOf(res.Err); c == boxoffice.CodeSeatUnavailable || c == boxoffice.CodeConflict || c == boxoffice.CodeAdmissionRequired {
		// Intended: a conflict (a seat taken, an event changed under a
		// partial update) is not an answer to remember, nor is a hold
		// made before its buyer's admission. It changed nothing, and the
		// same request may succeed when retried (a best-available hold
		// picks other seats; a seat may be freed; the buyer is admitted),
		// so the key stays unused. Every other result, success or
		// rejection, is stored and replayed.
		return res, nil
	}
	rec := idemRecord{hash: c.Hash, createdAtMs: a.nowMs, res: res}
	if err := a.set(k, encodeIdem(&rec)); err != nil {
		return Result{}, err
	}
	if err := a.set(idemAgeKey(a.nowMs, c.Subject, c.Key), nil); err != nil {
		return Result{}, err
	}
	return res, nil
}

// replay is what the record answers a retry with hash at nowMs, without
// running it: the first run's result, or idempotency_key_reused for
// another request. live is false once the record has expired.
func (rec *idemRecord) replay(key string, hash []byte, nowMs int64) (res Result, live bool) {
	if rec.createdAtMs+boxoffice.IdempotencyTTLMs <= nowMs {
		return Result{}, false
	}
	if !bytes.Equal(rec.hash, hash) {
		return Result{Err: boxoffice.Errorf(boxoffice.CodeIdempotencyReused, "Idempotency-Key %q was used with another request", key)}, true
	}
	res = rec.res
	res.Replayed = true
	return res, true
}

// Idempotency answers, from local state, what an Idempotent command with
// this subject, key and request hash would answer without running (ok
// true), or that no live record holds the key (ok false). A caller that
// must not miss a committed record (a leader deciding that a retry has
// nothing to replay) reads after a read barrier.
func (s *Store) Idempotency(subject, key string, hash []byte) (res Result, ok bool, err error) {
	v, found, err := s.get(idemKey(subject, key))
	if err != nil || !found {
		return Result{}, false, err
	}
	rec, err := decodeIdem(v)
	if err != nil {
		return Result{}, false, err
	}
	res, ok = rec.replay(key, hash, s.NowMs())
	return res, ok, nil
}

func (a *applier) dropIdem(createdAtMs int64, subject, key string) error {
	if err := a.del(idemKey(subject, key)); err != nil {
		return err
	}
	return a.del(idemAgeKey(createdAtMs, subject, key))
}

// expireIdem forgets up to max idempotency records older than the TTL.
func (a *applier) expireIdem(max int) (int, error) {
	cutoff := a.nowMs - boxoffice.IdempotencyTTLMs
	if cutoff < 0 {
		return 0, nil
	}
	upper := make([]byte, 0, 9)
	upper = append(upper, tagIdemAge)
	upper = binary.BigEndian.AppendUint64(upper, uint64(cutoff)+1)
	it, err := a.b.NewIter(&pebble.IterOptions{LowerBound: []byte{tagIdemAge}, UpperBound: upper})
	if err != nil {
		return 0, err
	}
	var keys [][]byte
	for it.First(); it.Valid() && len(keys) < max; it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, err
	}
	for _, k := range keys {
		subject, key, ok := bytes.Cut(k[9:], []byte{0})
		if !ok {
			return 0, errors.New("malformed idempotency age key")
		}
		if err := a.dropIdem(int64(binary.BigEndian.Uint64(k[1:9])), string(subject), string(key)); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Stored result: code, detail, then each of event, hold and order behind a
// presence byte, then the expired count.
func encodeIdem(rec *idemRecord) []byte {
	w := writer{b: make([]byte, 0, 128)}
	w.u8(valueVersion)
	w.bytes(rec.hash)
	w.varint(rec.createdAtMs)
	var code boxoffice.Code
	var detail string
	if rec.res.Err != nil {
		var e *boxoffice.Error
		if errors.As(rec.res.Err, &e) {
			code, detail = e.Code, e.Detail
		} else {
			code, detail = boxoffice.CodeInternal, rec.res.Err.Error()
		}
	}
	w.str(string(code))
	w.str(detail)
	if ev := rec.res.Event; ev != nil {
		w.u8(1)
		encodeEvent(&w, ev)
	} else {
		w.u8(0)
	}
	if h := rec.res.Hold; h != nil {
		w.u8(1)
		w.bytes(encodeHold(h))
	} else {
		w.u8(0)
	}
	if o := rec.res.Order; o != nil {
		w.u8(1)
		w.bytes(encodeOrder(o))
	} else {
		w.u8(0)
	}
	w.int(rec.res.Expired)
	// A venue, last and only when there is one, so that records written
	// before venues existed read the same.
	if v := rec.res.Venue; v != nil {
		w.u8(1)
		encodeVenueChart(&w, v)
	}
	return w.b
}

func decodeIdem(b []byte) (*idemRecord, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, errMalformed
	}
	rec := &idemRecord{hash: r.bytes(), createdAtMs: r.varint()}
	code, detail := boxoffice.Code(r.str()), r.str()
	if code != "" {
		rec.res.Err = &boxoffice.Error{Code: code, Detail: detail}
	}
	if r.u8() == 1 {
		rec.res.Event = &boxoffice.Event{}
		decodeEvent(&r, rec.res.Event)
	}
	if r.u8() == 1 {
		h, err := decodeHold(r.bytes())
		if err != nil {
			return nil, err
		}
		rec.res.Hold = h
	}
	if r.u8() == 1 {
		o, err := decodeOrder(r.bytes())
		if err != nil {
			return nil, err
		}
		rec.res.Order = o
	}
	rec.res.Expired = r.int()
	if len(r.b) > 0 {
		if r.u8() != 1 {
			r.fail()
		}
		rec.res.Venue = &boxoffice.VenueChart{}
		decodeVenueChart(&r, rec.res.Venue)
	}
	return rec, r.done("idempotency record")
}
