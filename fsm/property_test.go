package fsm

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

var (
	propSeed    = flag.Uint64("fsm.seed", 0, "run the property tests with this seed only")
	propEntries = flag.Int("fsm.entries", 400, "entries per seed in the property tests")
)

// propSeeds are the seeds the property tests run; -fsm.seed replays one.
func propSeeds() []uint64 {
	if *propSeed != 0 {
		return []uint64{*propSeed}
	}
	return []uint64{1, 2, 3, 4, 5, 6, 7, 8}
}

// TestPropertyAgainstModel applies random logs (holds by five buyers on a
// 30-seat venue with an 8-place standing pit (held by quantity) and a
// 6-seat venue, and on new events of those shapes once seats
// sell out; whole and partial releases, purchases, extensions, order
// cancellations and exchanges, idempotent wrappers with retries and reused
// keys, sweeps, layout updates, bad input, a clock that mostly moves
// forward and now and then jumps about a day; one to eight commands per
// entry) to a store and to the in-memory model of model_test.go, in
// ApplyEntries calls of random sizes. After each call it compares every
// command's result, the clock, the applied index, the events, seat maps and
// counts; every few calls it also compares every hold, order and buyer
// list, and checks the store's cross-index invariants.
//
// A failure names its seed; replay it with
//
//	go test ./fsm -run TestPropertyAgainstModel -fsm.seed=N
func TestPropertyAgainstModel(t *testing.T) {
	for _, seed := range propSeeds() {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runProperty(t, seed, *propEntries)
		})
	}
}

func runProperty(t *testing.T, seed uint64, entries int) {
	s := newStore(t)
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: newModel(0)}
	calls := rand.New(rand.NewPCG(seed, 7)) // sizes of the ApplyEntries calls
	var stats struct{ ok, rejected, calls int }
	codes := map[string]int{}
	follower := &feedFollower{seats: map[string]map[int32]SeatChange{}}

	for done := 0; done < entries; {
		// One ApplyEntries call of 1..4 entries (mostly one).
		n := 1
		if calls.IntN(100) < 30 {
			n = 2 + calls.IntN(3)
		}
		n = min(n, entries-done)
		var gens []genEntry
		var want [][]Result
		var batch []Entry
		for range n {
			e, rs := g.next()
			gens, want, batch = append(gens, e), append(want, rs), append(batch, e.entry())
		}
		done += n
		stats.calls++
		at := fmt.Sprintf("seed %d, entries %d..%d", seed, batch[0].Index, batch[len(batch)-1].Index)

		got, err := s.ApplyEntries(batch)
		require.NoError(t, err, "%s: the store halted", at)
		require.Len(t, got, len(batch), at)
		for i := range batch {
			require.Len(t, got[i], len(want[i]), "%s: results of entry %d", at, batch[i].Index)
			for j, w := range want[i] {
				where := fmt.Sprintf("%s: entry %d command %d %#v", at, batch[i].Index, j, gens[i].cmds[j])
				g := got[i][j]
				require.Equal(t, resultCode(w), resultCode(g), "%s: %v", where, g.Err)
				codes[fmt.Sprintf("%T/%s", gens[i].cmds[j], resultCode(g))]++
				if g.Replayed {
					codes["replayed"]++
				}
				if w.Err == nil {
					require.Equal(t, fmtResult(gens[i].cmds[j], w), fmtResult(gens[i].cmds[j], g), where)
					stats.ok++
				} else {
					stats.rejected++
				}
			}
		}
		require.Equal(t, g.m.index, s.AppliedIndex(), at)
		require.Equal(t, g.m.nowMs, s.NowMs(), at)
		compareSeats(t, s, g.m, at)
		follower.check(t, s, sortedKeys(g.m.events), at)
		if stats.calls%10 == 0 || done == entries {
			compareHoldsOrders(t, s, g.m, at)
			checkInvariants(t, s)
		}
	}
	t.Logf("seed %d: %d calls, %d ok, %d rejected, %d holds, %d orders, %d idempotent reruns after expiry; outcomes %v",
		seed, stats.calls, stats.ok, stats.rejected, len(g.m.holds), len(g.m.orders), g.m.reruns, codes)
	// The logs must exercise both paths, or the test proves little.
	require.Greater(t, stats.ok, entries/4, "seed %d: too few successful commands", seed)
	require.Greater(t, stats.rejected, entries/10, "seed %d: too few rejected commands", seed)
	require.NotEmpty(t, g.m.orders, "seed %d: no purchase succeeded", seed)
	if entries >= 200 {
		for _, k := range []string{"*fsm.ExtendHold/", "*fsm.CancelOrder/", "*fsm.Exchange/", "*fsm.Idempotent/", "*fsm.HoldArea/", "*fsm.HoldArea/seat_unavailable", "replayed"} {
			require.Positive(t, codes[k], "seed %d: no %s", seed, k)
		}
	}
}

func resultCode(r Result) boxoffice.Code {
	if r.Err == nil {
		return ""
	}
	return boxoffice.CodeOf(r.Err)
}

// compareSeats compares every event's seat map and counts with the model.
func compareSeats(t *testing.T, s *Store, m *model, at string) {
	t.Helper()
	for _, id := range sortedKeys(m.events) {
		seats, err := s.Seats(id, SeatFilter{})
		require.NoError(t, err, at)
		require.Equal(t, m.seatMap(id), seats, "%s: seat map of %s", at, id)
		counts, err := s.Counts(id)
		require.NoError(t, err, at)
		require.Equal(t, m.counts(id), counts, "%s: counts of %s", at, id)
		ev, err := s.Event(id)
		require.NoError(t, err, at)
		require.Equal(t, m.events[id].ev, *ev, "%s: event %s", at, id)
	}
}

// compareHoldsOrders compares every hold and order, and every buyer's
// lists of them, with the model.
func compareHoldsOrders(t *testing.T, s *Store, m *model, at string) {
	t.Helper()
	holdsOf, ordersOf := map[string][]string{}, map[string][]string{}
	for _, id := range sortedKeys(m.holds) {
		h, err := s.Hold(id)
		require.NoError(t, err, at)
		require.Equal(t, m.holdView(id), h, "%s: hold %s", at, id)
		holdsOf[h.Buyer] = append(holdsOf[h.Buyer], id)
	}
	for _, id := range sortedKeys(m.orders) {
		o, err := s.Order(id)
		require.NoError(t, err, at)
		require.Equal(t, m.orders[id], o, "%s: order %s", at, id)
		ordersOf[o.Buyer] = append(ordersOf[o.Buyer], id)
	}
	for _, b := range propBuyers {
		ids, err := s.HoldsOf(b)
		require.NoError(t, err, at)
		require.Equal(t, holdsOf[b], ids, "%s: holds of %s", at, b)
		ids, err = s.OrdersOf(b)
		require.NoError(t, err, at)
		require.Equal(t, ordersOf[b], ids, "%s: orders of %s", at, b)
	}
}

// feedFollower rebuilds every event's seat map from the change feed alone,
// as a live seat map does, and checks it against the store's: a seat write
// that bypassed the feed would show here.
type feedFollower struct {
	cursor uint64
	seats  map[string]map[int32]SeatChange
}

func (f *feedFollower) check(t *testing.T, s *Store, events []string, at string) {
	t.Helper()
	head := s.Feed().Head()
	require.Equal(t, s.AppliedIndex(), head, "%s: the feed's head", at)
	for _, ev := range events {
		r := s.Feed().Since(f.cursor, ev, 1<<30)
		require.False(t, r.Reset, "%s: the feed forgot changes after %d", at, f.cursor)
		if f.seats[ev] == nil {
			f.seats[ev] = map[int32]SeatChange{}
		}
		for _, b := range r.Batches {
			require.Greater(t, b.Index, f.cursor, at)
			for _, c := range b.Changes {
				require.Equal(t, ev, c.Event, at)
				f.seats[ev][c.Seat] = c
			}
		}
		l, err := s.Layout(ev)
		require.NoError(t, err, at)
		seats, err := s.Seats(ev, SeatFilter{})
		require.NoError(t, err, at)
		for _, seat := range seats {
			idx, ok := l.Index(seat.ID)
			require.True(t, ok, at)
			want := boxoffice.SeatFree
			if c, ok := f.seats[ev][int32(idx)]; ok {
				want = c.State
				if want == boxoffice.SeatHeld && c.ExpiresAtMs <= s.NowMs() {
					want = boxoffice.SeatFree // expired by time, as the page counts it
				}
			}
			require.Equal(t, seat.State, want, "%s: seat %s of %s from the feed", at, seat.ID, ev)
		}
	}
	f.cursor = head
}
