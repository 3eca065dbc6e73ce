package fsm

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// Regression tests for bugs found while writing this package's tests. Each
// sequence here used to make ApplyEntries return an error, i.e. halt every
// replica of the shard on a log that only valid commands built.

// A hold past its expiry but not yet swept, whose seat another hold then
// took and released, has no seat record left. A layout change that drops
// the seat used to be accepted (no seat record), and the next sweep then
// failed to resolve the hold's seat id in the new layout and halted.
func TestUpdateEventUnderStaleExpiredHold(t *testing.T) {
	s := newStore(t)
	ev := testEvent(t, "e1", "A:floor:1x2,B:floor:1x2", "floor:100", 4, 60)
	idx := uint64(0)
	apply := func(nowMs int64, c Command) Result {
		idx++
		rs, err := s.ApplyEntries([]Entry{entryOf(idx, nowMs, c)})
		require.NoError(t, err, "entry %d (%T) halted the state machine", idx, c)
		return rs[0][0]
	}
	require.NoError(t, apply(1000, &CreateEvent{Event: ev}).Err)
	h1 := apply(1000, &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}, TTLSeconds: 1}).Hold
	require.NotNil(t, h1)
	// h1 expired at 2000; u2 takes the seat, then gives it back.
	h2 := apply(5000, &Hold{Event: "e1", Buyer: "u2", Seats: []string{"A-1-1"}}).Hold
	require.NotNil(t, h2)
	require.NoError(t, apply(5000, &Release{Hold: h2.ID, Buyer: "u2"}).Err)

	shrunk := ev
	shrunk.Venue.Sections = shrunk.Venue.Sections[1:]
	res := apply(5000, &UpdateEvent{Event: shrunk})
	require.Equal(t, boxoffice.CodeLayoutShrink, boxoffice.CodeOf(res.Err),
		"the layout must not change under a hold that is still indexed as active")
	require.Equal(t, 1, apply(5000, &Expire{}).Expired)
	require.NoError(t, apply(5000, &UpdateEvent{Event: shrunk}).Err, "after the sweep the layout may change")

	got, err := s.Hold(h1.ID)
	require.NoError(t, err)
	require.Equal(t, boxoffice.HoldExpired, got.State)
	seats, err := s.Seats("e1", SeatFilter{})
	require.NoError(t, err)
	require.Len(t, seats, 2)
	checkInvariants(t, s)
}

// largestEvent is a valid event whose encoding is as large as the limits
// allow: 1000 sections and 32 categories, every id and name at its longest.
func largestEvent() boxoffice.Event {
	long := func(prefix string, i, n int) string {
		id := fmt.Sprintf("%s%d", prefix, i)
		return id + strings.Repeat("x", n-len(id))
	}
	ev := boxoffice.Event{
		ID:        long("e", 0, boxoffice.IDLenMax),
		Name:      strings.Repeat("n", boxoffice.NameLenMax),
		Type:      strings.Repeat("t", boxoffice.NameLenMax),
		Location:  strings.Repeat("l", boxoffice.NameLenMax),
		Organiser: strings.Repeat("o", boxoffice.IDLenMax),
		Limits:    boxoffice.Limits{MaxSeatsPerBuyer: boxoffice.MaxSeatsPerBuyerMax, HoldTTLSeconds: boxoffice.HoldTTLMax},
	}
	for i := range boxoffice.CategoriesMax {
		ev.Categories = append(ev.Categories, boxoffice.Category{
			ID: long("c", i, boxoffice.IDLenMax), Name: strings.Repeat("N", boxoffice.NameLenMax), PriceCents: 1 << 40,
		})
	}
	for i := range boxoffice.SectionsMax {
		ev.Venue.Sections = append(ev.Venue.Sections, boxoffice.Section{
			ID: long("s", i, boxoffice.IDLenMax), Category: ev.Categories[i%len(ev.Categories)].ID,
			Rows: 10, SeatsPerRow: 20, // 200,000 seats in all
		})
	}
	return ev
}

// An event that passes Validate encodes to more than 64 KiB, the bound on
// one string. DecodeEntry used to read each command with that bound, so
// such an entry halted the shard.
func TestApplyLargestValidEvent(t *testing.T) {
	ev := largestEvent()
	require.NoError(t, ev.Validate())
	raw := EncodeCommand(&CreateEvent{Event: ev})
	require.Greater(t, len(raw), stringLenMax, "the test needs a command longer than one string may be")

	_, cmds, err := DecodeEntry(EncodeEntry(1000, [][]byte{raw}))
	require.NoError(t, err)
	c, err := DecodeCommand(cmds[0])
	require.NoError(t, err)
	require.Equal(t, &CreateEvent{Event: ev}, c)

	s := newStore(t)
	rs := applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, &UpdateEvent{Event: ev})
	require.NoError(t, rs[0].Err)
	require.NoError(t, rs[1].Err)
	got, err := s.Event(ev.ID)
	require.NoError(t, err)
	require.Equal(t, ev.Venue, got.Venue)
	require.Equal(t, boxoffice.SeatsPerEventMax, got.Venue.Capacity())

	last := ev.Venue.Sections[len(ev.Venue.Sections)-1]
	seat := fmt.Sprintf("%s-10-20", last.ID)
	rs = applyOne(t, s, 2, 2000, &Hold{Event: ev.ID, Buyer: "u1", Seats: []string{seat}})
	require.NoError(t, rs[0].Err)
	rs = applyOne(t, s, 3, 2000, &Purchase{Hold: rs[0].Hold.ID, Buyer: "u1", PaymentRef: "p"})
	require.NoError(t, rs[0].Err)
	require.Equal(t, int64(1<<40), rs[0].Order.AmountCents)
}

// A query that missed the event cache read the event from Pebble and then
// cached what it had read. When an UpdateEvent committed between the two,
// the cache kept the old event for good, and since the applier reads
// events through the same cache, later commands on this replica ran
// against the old limits, prices and layout: the replica diverged from the
// others. This test races a cold-cache query with an update, many times;
// before the fix it saw a stale cache within a few thousand rounds (seven
// times in 3,000 in one run). It cannot fail when the code is right.
func TestEventCacheNotStaleAfterConcurrentQuery(t *testing.T) {
	s := newStore(t)
	ev := testEvent(t, "e1", "A:floor:1x2", "floor:100", 1, 60)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev})
	for i := range 3000 {
		s.events.reset() // a cold cache, as after a restart or a restore
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = s.Event("e1")
		}()
		upd := ev
		upd.Limits.MaxSeatsPerBuyer = 2 + i%7
		applyOne(t, s, uint64(2+i), 1000, &UpdateEvent{Event: upd})
		<-done
		if ei := s.events.get("e1"); ei != nil {
			require.Equal(t, upd.Limits, ei.ev.Limits, "round %d: the event cache holds an event older than the store's", i)
		}
		got, err := s.Event("e1")
		require.NoError(t, err)
		require.Equal(t, upd.Limits, got.Limits, "round %d", i)
	}
}

// An idempotency record expires IdempotencyTTLMs after it was made: from
// then on a lookup ignores it, and the sweep must remove it. The sweep
// treated a cutoff (now - TTL) of exactly 0 as "nothing can be old enough",
// so a record made at clock 0 outlived its TTL by a millisecond in the
// store, though not to any lookup.
func TestExpireSweepsIdempotencyRecordAtItsTTL(t *testing.T) {
	s := newStore(t)
	ev := testEvent(t, "e1", "A:floor:1x2", "floor:100", 4, 60)
	hash := make([]byte, IdempotencyHashLen)
	idem := func(key string) *Idempotent {
		return &Idempotent{Subject: "u1", Key: key, Hash: hash, Command: &Release{Hold: "h_0.9.9", Buyer: "u1"}}
	}
	applyOne(t, s, 1, 0, &CreateEvent{Event: ev}, idem("k0"))
	applyOne(t, s, 2, 1, idem("k1"))
	countIdem := func() (n int) {
		require.NoError(t, s.scan([]byte{tagIdem}, []byte{tagIdem + 1}, func(_, _ []byte) (bool, error) { n++; return true, nil }))
		return n
	}
	require.Equal(t, 2, countIdem())

	rs := applyOne(t, s, 3, boxoffice.IdempotencyTTLMs, &Expire{})
	require.NoError(t, rs[0].Err)
	require.Equal(t, 1, countIdem(), "the record made at 0 has expired at IdempotencyTTLMs; the one made at 1 has not")
	checkInvariants(t, s)
	rs = applyOne(t, s, 4, boxoffice.IdempotencyTTLMs+1, &Expire{})
	require.NoError(t, rs[0].Err)
	require.Zero(t, countIdem())
	checkInvariants(t, s)
}

// A store closed under its readers (a node shutting down while requests
// are in flight) answers them with an error, not a crash.
func TestClosedStoreAnswersWithAnError(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	applyOne(t, s, 1, 1000, &CreateEvent{Event: pickEvent()})
	require.NoError(t, s.Close())
	_, err := s.Order("o_0.1.0")
	require.Equal(t, boxoffice.CodeUnavailable, boxoffice.CodeOf(err))
	_, err = s.Seats("p1", SeatFilter{})
	require.Error(t, err)
	_, err = s.ApplyEntries([]Entry{{Index: 2}})
	require.Error(t, err)
	require.Error(t, s.Sync())
	_, err = s.Snapshot()
	require.Error(t, err)
}

// Store.Idempotency answers from local state what a retry of an Idempotent
// command would get without running: the first result, replayed; for
// another request, idempotency_key_reused; nothing for an unknown key or
// an expired record. httpapi asks it when a retried best-available hold
// finds no seats to pick (the first attempt took them, and its answer was
// lost), since such a retry never reaches the state machine.
func TestIdempotencyQueryAnswersAsARetry(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e1", "A:floor:1x2", "floor:100", 4, 60)
	hash, other := idemHash("first"), idemHash("other")
	hold := &Idempotent{Subject: "u1", Key: "k1", Hash: hash, Command: &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1", "A-1-2"}}}
	first := applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, hold)[1]
	require.NoError(t, first.Err)

	res, ok, err := s.Idempotency("u1", "k1", hash)
	require.NoError(t, err)
	require.True(t, ok)
	retry := applyOne(t, s, 2, 2000, hold)[0]
	require.True(t, retry.Replayed)
	require.Equal(t, retry, res, "the query answers as the retry did")
	require.Equal(t, first.Hold, res.Hold)

	res, ok, err = s.Idempotency("u1", "k1", other)
	require.NoError(t, err)
	require.True(t, ok)
	require.ErrorIs(t, res.Err, &boxoffice.Error{Code: boxoffice.CodeIdempotencyReused})

	for _, k := range [][2]string{{"u1", "k2"}, {"u2", "k1"}} {
		_, ok, err = s.Idempotency(k[0], k[1], hash)
		require.NoError(t, err)
		require.False(t, ok, "subject %s key %s", k[0], k[1])
	}

	applyOne(t, s, 3, 1000+boxoffice.IdempotencyTTLMs, &Hold{Event: "e1", Buyer: "u9", Seats: []string{"A-1-1"}})
	_, ok, err = s.Idempotency("u1", "k1", hash)
	require.NoError(t, err)
	require.False(t, ok, "the record has expired")
}
