package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// Queries over local state. They read Pebble as it is now (a follower may lag
// the leader); callers that need linearizable reads wait for the applied
// index first. A held seat whose hold has expired reads as free, judged by
// the state machine's clock.

// Event returns an event, or ErrEventNotFound.
func (s *Store) Event(id string) (*boxoffice.Event, error) {
	ei, err := s.eventInfo(id)
	if err != nil {
		return nil, err
	}
	ev := *ei.ev
	return &ev, nil
}

// Layout returns an event's seat layout, or ErrEventNotFound.
func (s *Store) Layout(id string) (*boxoffice.Layout, error) {
	ei, err := s.eventInfo(id)
	if err != nil {
		return nil, err
	}
	return ei.layout, nil
}

func (s *Store) eventInfo(id string) (*eventInfo, error) {
	if ei := s.events.get(id); ei != nil {
		return ei, nil
	}
	v, ok, err := s.get(key(tagEvent, id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeEventNotFound, "event %q", id)
	}
	ev, err := decodeEventValue(v)
	if err != nil {
		return nil, err
	}
	// Not cached here: an UpdateEvent may have committed (and installed the
	// new event in the cache) since the read above, and the applier reads
	// events through the same cache, so caching this copy could leave the
	// replica applying later commands against the old event. Only the
	// applier fills the cache.
	return newEventInfo(ev), nil
}

// Events lists events in id order, starting after the id `after`, at most limit.
func (s *Store) Events(after string, limit int) ([]*boxoffice.Event, error) {
	var out []*boxoffice.Event
	lower := []byte{tagEvent}
	if after != "" {
		lower = append(key(tagEvent, after), 0)
	}
	err := s.scan(lower, []byte{tagEvent + 1}, func(k, v []byte) (bool, error) {
		ev, err := decodeEventValue(v)
		if err != nil {
			return false, err
		}
		out = append(out, ev)
		return len(out) < limit, nil
	})
	return out, err
}

// SeatFilter selects seats of an event. Zero values select all.
type SeatFilter struct {
	Section  string
	Category string
	State    *boxoffice.SeatState
}

// Seats returns the event's seats that pass the filter, in layout order.
func (s *Store) Seats(event string, f SeatFilter) ([]boxoffice.Seat, error) {
	var out []boxoffice.Seat
	_, err := s.eachSeat(event, f, true, func(l *boxoffice.Layout, idx int, sec *boxoffice.Section, t takenSeat) {
		seat := boxoffice.Seat{ID: l.ID(idx), Category: sec.Category, State: t.state, Flags: l.Flags(idx)}
		if t.state == boxoffice.SeatHeld {
			seat.Hold = t.owner
		} else if t.state == boxoffice.SeatSold {
			seat.Order = t.owner
		}
		out = append(out, seat)
	})
	return out, err
}

// MapSeat is one seat of a seat map: its index in the event's layout (which
// gives its id, section and category) and its state.
type MapSeat struct {
	Index int32
	State boxoffice.SeatState
}

// SeatMap returns, in layout order, every seat of the event that passes the
// filter, and the event's layout. It is Seats without a string per seat,
// for the maps of 100,000-seat events that buyers reload during an on-sale.
func (s *Store) SeatMap(event string, f SeatFilter) (*boxoffice.Layout, []MapSeat, error) {
	var out []MapSeat
	l, err := s.eachSeat(event, f, false, func(l *boxoffice.Layout, idx int, _ *boxoffice.Section, t takenSeat) {
		if out == nil {
			out = make([]MapSeat, 0, l.Capacity())
		}
		out = append(out, MapSeat{Index: int32(idx), State: t.state})
	})
	return l, out, err
}

// eachSeat walks the seats that pass the filter, section by section; owners
// says whether fn needs the hold or order of each taken seat.
func (s *Store) eachSeat(event string, f SeatFilter, owners bool, fn func(l *boxoffice.Layout, idx int, sec *boxoffice.Section, t takenSeat)) (*boxoffice.Layout, error) {
	ei, err := s.eventInfo(event)
	if err != nil {
		return nil, err
	}
	l := ei.layout
	first, n := 0, l.Span()
	if f.Section != "" {
		var ok bool
		if first, n, ok = l.SectionRange(f.Section); !ok {
			return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "event %q has no section %q", event, f.Section)
		}
	}
	taken, err := s.takenSeats(event, first, first+n, owners)
	if err != nil {
		return nil, err
	}
	ti := 0
	for idx := first; idx < first+n; {
		sec, row, num := l.Section(idx)
		end := idx + sec.Rows*sec.SeatsPerRow - ((row-1)*sec.SeatsPerRow + num - 1) // the section's end
		end = min(end, first+n)
		if f.Category != "" && sec.Category != f.Category {
			for ti < len(taken) && taken[ti].idx < end {
				ti++
			}
			idx = end
			continue
		}
		for ; idx < end; idx++ {
			if !l.Exists(idx) {
				continue // a hole: no seat here
			}
			t := takenSeat{idx: idx, state: boxoffice.SeatFree}
			if ti < len(taken) && taken[ti].idx == idx {
				t = taken[ti]
				ti++
			}
			if f.State != nil && t.state != *f.State {
				continue
			}
			fn(l, idx, &sec, t)
		}
	}
	return l, nil
}

type takenSeat struct {
	idx   int
	state boxoffice.SeatState
	owner string
}

// takenSeats returns the seats in [from, to) that are sold or held by an
// unexpired hold, in index order; with owners false it leaves their owners
// out (and allocates no string per seat).
func (s *Store) takenSeats(event string, from, to int, owners bool) ([]takenSeat, error) {
	now := s.NowMs()
	var out []takenSeat
	err := s.scan(seatKey(event, from), seatKey(event, to), func(k, v []byte) (bool, error) {
		if !owners {
			state, expiresAtMs, err := decodeSeatState(v)
			if err != nil {
				return false, err
			}
			if (seatRec{state: state, expiresAtMs: expiresAtMs}).takenAt(now) {
				out = append(out, takenSeat{idx: seatIndexOf(k), state: state})
			}
			return true, nil
		}
		rec, err := decodeSeat(v)
		if err != nil {
			return false, err
		}
		if rec.takenAt(now) {
			out = append(out, takenSeat{idx: seatIndexOf(k), state: rec.state, owner: rec.owner})
		}
		return true, nil
	})
	return out, err
}

// Counts returns, per category in the event's order, its capacity and how
// many seats are free, held and sold.
func (s *Store) Counts(event string) ([]boxoffice.CategoryCount, error) {
	ei, err := s.eventInfo(event)
	if err != nil {
		return nil, err
	}
	counts := make([]boxoffice.CategoryCount, len(ei.ev.Categories))
	pos := make(map[string]int, len(counts))
	for i, c := range ei.ev.Categories {
		counts[i].Category = c.ID
		pos[c.ID] = i
	}
	for i, sec := range ei.layout.Sections {
		counts[pos[sec.Category]].Capacity += ei.layout.SectionSeats(i)
	}
	taken, err := s.takenSeats(event, 0, ei.layout.Span(), false)
	if err != nil {
		return nil, err
	}
	for _, t := range taken {
		sec, _, _ := ei.layout.Section(t.idx)
		c := &counts[pos[sec.Category]]
		if t.state == boxoffice.SeatSold {
			c.Sold++
		} else {
			c.Held++
		}
	}
	for i := range counts {
		counts[i].Free = counts[i].Capacity - counts[i].Held - counts[i].Sold
	}
	return counts, nil
}

// Hold returns a hold, or ErrHoldNotFound. A hold past its expiry that the
// sweep has not reached yet reads as expired.
func (s *Store) Hold(id string) (*boxoffice.Hold, error) {
	v, ok, err := s.get(key(tagHold, id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeHoldNotFound, "hold %q", id)
	}
	h, err := decodeHold(v)
	if err != nil {
		return nil, err
	}
	if h.State == boxoffice.HoldActive && h.ExpiresAtMs <= s.NowMs() {
		h.State = boxoffice.HoldExpired
	}
	return h, nil
}

// Order returns an order, or ErrOrderNotFound.
func (s *Store) Order(id string) (*boxoffice.Order, error) {
	v, ok, err := s.get(key(tagOrder, id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeOrderNotFound, "order %q", id)
	}
	return decodeOrder(v)
}

// HoldsOf lists the ids of a buyer's holds in this shard, in id order.
func (s *Store) HoldsOf(buyer string) ([]string, error) { return s.idsUnder(tagHoldsBy, buyer) }

// OrdersOf lists the ids of a buyer's orders in this shard, in id order.
func (s *Store) OrdersOf(buyer string) ([]string, error) { return s.idsUnder(tagOrdersBy, buyer) }

func (s *Store) idsUnder(tag byte, buyer string) ([]string, error) {
	p := prefix(tag, buyer)
	var ids []string
	err := s.scan(p, upperBound(p), func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(p):]))
		return true, nil
	})
	return ids, err
}

// PendingCheckouts lists the orders whose checkout is in flight, and
// PendingRefunds those whose refund is due, in id order, at most limit.
func (s *Store) PendingCheckouts(limit int) ([]*boxoffice.Order, error) {
	return s.ordersUnder(tagCheckout, limit)
}

func (s *Store) PendingRefunds(limit int) ([]*boxoffice.Order, error) {
	return s.ordersUnder(tagRefund, limit)
}

func (s *Store) ordersUnder(tag byte, limit int) ([]*boxoffice.Order, error) {
	var ids []string
	err := s.scan([]byte{tag}, []byte{tag + 1}, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[1:]))
		return len(ids) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*boxoffice.Order, 0, len(ids))
	for _, id := range ids {
		o, err := s.Order(id)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Watched is a failed checkout whose late charge the leader still looks for.
type Watched struct {
	Order   *boxoffice.Order
	UntilMs int64
}

// PendingVerifications lists failed checkouts watched for a late charge.
func (s *Store) PendingVerifications(limit int) ([]Watched, error) {
	var out []Watched
	var ids []string
	var until []int64
	err := s.scan([]byte{tagVerify}, []byte{tagVerify + 1}, func(k, v []byte) (bool, error) {
		r := reader{b: v}
		u := r.varint()
		if err := r.done("verify"); err != nil {
			return false, err
		}
		ids = append(ids, string(k[1:]))
		until = append(until, u)
		return len(ids) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		o, err := s.Order(id)
		if err != nil {
			return nil, err
		}
		out = append(out, Watched{Order: o, UntilMs: until[i]})
	}
	return out, nil
}

// Nodes lists the cluster members this shard knows, in id order.
func (s *Store) Nodes() ([]boxoffice.Node, error) {
	var out []boxoffice.Node
	err := s.scan([]byte{tagNode}, []byte{tagNode + 1}, func(_, v []byte) (bool, error) {
		n, err := decodeNode(v)
		out = append(out, n)
		return err == nil, err
	})
	return out, err
}

// Node returns one member's addresses.
func (s *Store) Node(id string) (boxoffice.Node, bool, error) {
	v, ok, err := s.get(key(tagNode, id))
	if err != nil || !ok {
		return boxoffice.Node{}, false, err
	}
	n, err := decodeNode(v)
	return n, err == nil, err
}

// errClosed answers reads of a store that was closed under them (the node
// is shutting down).
var errClosed = boxoffice.Errorf(boxoffice.CodeUnavailable, "the store is closed")

func (s *Store) get(k []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, false, errClosed
	}
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %q: %w", k, err)
	}
	defer closer.Close()
	return slices.Clone(v), true, nil
}

// scan calls fn for each key in [lower, upper) until fn returns false.
func (s *Store) scan(lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	return scanReader(s.db, lower, upper, fn)
}

// scanReader calls fn for each key of r in [lower, upper) until fn returns
// false.
func scanReader(r pebble.Reader, lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Hash is a digest of every key and value in the store, the applied index
// among them: two replicas that applied the same log have the same hash.
func (s *Store) Hash() ([32]byte, error) {
	h := sha256.New()
	var lens [16]byte
	err := s.scan(nil, nil, func(k, v []byte) (bool, error) {
		binary.BigEndian.PutUint64(lens[:], uint64(len(k)))
		binary.BigEndian.PutUint64(lens[8:], uint64(len(v)))
		h.Write(lens[:])
		h.Write(k)
		h.Write(v)
		return true, nil
	})
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}

// ActiveHolds counts the holds that have not expired by the state
// machine's clock and have not ended, stopping at limit (for a gauge:
// the expiry index holds exactly the holds not yet ended).
func (s *Store) ActiveHolds(limit int) (int, error) {
	n := 0
	lower := expiryKey(s.NowMs()+1, "")
	err := s.scan(lower, []byte{tagExpiry + 1}, func(_, _ []byte) (bool, error) {
		n++
		return n < limit, nil
	})
	return n, err
}

// SweepDue reports whether an Expire stamped at nowMs would change
// anything: a hold whose expiry has passed, or an idempotency record past
// its TTL. The leader asks before proposing a sweep, so that an idle shard
// costs no log entry (and no fsync on every replica) each interval.
func (s *Store) SweepDue(nowMs int64) (bool, error) {
	due := false
	found := func(_, _ []byte) (bool, error) {
		due = true
		return false, nil
	}
	if err := s.scan([]byte{tagExpiry}, expiryKey(nowMs+1, ""), found); err != nil || due {
		return due, err
	}
	cutoff := nowMs - boxoffice.IdempotencyTTLMs
	if cutoff < 0 {
		return false, nil
	}
	upper := binary.BigEndian.AppendUint64([]byte{tagIdemAge}, uint64(cutoff)+1)
	err := s.scan([]byte{tagIdemAge}, upper, found)
	return due, err
}
