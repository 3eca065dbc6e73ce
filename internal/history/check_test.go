package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"boxoffice/client"
)

// builder writes histories by hand: each op with its call and return time.
type builder struct{ ops []Op }

func (b *builder) add(call, ret int64, op Op) *builder {
	op.ID, op.Call, op.Return = len(b.ops), call, ret
	if op.Outcome == "" {
		op.Outcome = OK
	}
	b.ops = append(b.ops, op)
	return b
}

func (b *builder) history() History { return History{Ops: b.ops} }

func hold(client int, id string, seats ...string) Op {
	return Op{Client: client, Kind: KindHold, Seats: seats, Hold: id, HoldSeats: seats}
}

func holdFailed(client int, code string, seats ...string) Op {
	return Op{Client: client, Kind: KindHold, Seats: seats, Outcome: Fail, Code: code}
}

func holdUnknown(client int, seats ...string) Op {
	return Op{Client: client, Kind: KindHold, Seats: seats, Outcome: Unknown, Code: "timeout"}
}

// release frees all seats of a hold.
func release(client int, id string) Op {
	return Op{Client: client, Kind: KindRelease, Hold: id, State: "released"}
}

// releaseSome frees some seats of a hold, which keeps left.
func releaseSome(client int, id string, free, left []string) Op {
	return Op{Client: client, Kind: KindRelease, Hold: id, Seats: free, HoldSeats: left, State: "active"}
}

func purchase(client int, id, order string, seats ...string) Op {
	return Op{Client: client, Kind: KindPurchase, Hold: id, Order: order, HoldSeats: seats, State: "paid"}
}

func read(client int, states ...string) Op {
	m := map[string]string{}
	for i := 0; i+1 < len(states); i += 2 {
		m[states[i]] = states[i+1]
	}
	return Op{Client: client, Kind: KindReadSeats, Observed: m}
}

func readHoldOp(client int, id, state string, seats ...string) Op {
	return Op{Client: client, Kind: KindReadHold, Hold: id, State: state, HoldSeats: seats}
}

func check(t *testing.T, h History) Verdict {
	t.Helper()
	v, err := Check(h, Options{})
	require.NoError(t, err)
	return v
}

// A good history with concurrency, a refusal, unknown outcomes (one that
// took effect, one that never did) and a purchase is accepted.
func TestCheckAcceptsAGoodHistoryWithUnknownOutcomes(t *testing.T) {
	b := &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1", "A-1-2")).
		add(5, 12, holdFailed(1, "seat_unavailable", "A-1-2", "A-1-3")). // concurrent with h1: lost the race
		add(11, 20, read(2, "A-1-1", "held", "A-1-2", "held", "A-1-3", "free")).
		// Unknown, and it did take effect: a later read sees A-1-3 held.
		add(21, 30, holdUnknown(1, "A-1-3")).
		add(40, 45, read(2, "A-1-3", "held")).
		// Unknown, and it never took effect: A-1-4 reads free at the end.
		add(41, 50, holdUnknown(3, "A-1-4")).
		add(22, 31, releaseSome(0, "h1", []string{"A-1-1"}, []string{"A-1-2"})).
		add(32, 35, readHoldOp(0, "h1", "active", "A-1-2")).
		add(36, 39, Op{Client: 0, Kind: KindPurchase, Hold: "h1", Outcome: Fail, Code: "payment_declined"}).
		add(40, 48, purchase(0, "h1", "o1", "A-1-2")).
		add(49, 52, readHoldOp(0, "h1", "purchased")).
		add(60, 70, read(2, "A-1-1", "free", "A-1-2", "sold", "A-1-3", "held", "A-1-4", "free"))
	v := check(t, b.history())
	require.True(t, v.OK(), v.String())
	require.Equal(t, 2, v.Unknown)
}

// Two acknowledged holds of the same seat whose intervals do not overlap
// (the second began after the first was acknowledged, with no release
// between) cannot both be right.
func TestCheckRejectsTwoHoldsOfOneSeat(t *testing.T) {
	b := &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(20, 30, hold(1, "h2", "A-1-1", "A-1-2"))
	v := check(t, b.history())
	require.Equal(t, porcupine.Illegal, v.Linearizable, v.String())
	require.False(t, v.OK())

	// Overlapping in time, they are still two owners of one seat.
	b = &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(5, 15, hold(1, "h2", "A-1-1"))
	require.Equal(t, porcupine.Illegal, check(t, b.history()).Linearizable)
}

// A strong read that misses an acknowledged hold is stale.
func TestCheckRejectsAReadThatMissesAnAcknowledgedHold(t *testing.T) {
	b := &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(11, 20, read(1, "A-1-1", "free"))
	require.Equal(t, porcupine.Illegal, check(t, b.history()).Linearizable)

	// Concurrent with the hold, the same read is fine.
	b = &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(5, 20, read(1, "A-1-1", "free"))
	require.Equal(t, porcupine.Ok, check(t, b.history()).Linearizable)

	// And a read that still sees a released hold is stale too.
	b = &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(11, 20, release(0, "h1")).
		add(21, 30, read(1, "A-1-1", "held"))
	require.Equal(t, porcupine.Illegal, check(t, b.history()).Linearizable)
}

// Refusals are checked against the state too.
func TestCheckRejectsRefusalsTheStateCannotExplain(t *testing.T) {
	cases := map[string]*builder{
		"seat_unavailable on free seats": (&builder{}).
			add(0, 10, holdFailed(0, "seat_unavailable", "A-1-1")),
		"hold_not_active on an active hold": (&builder{}).
			add(0, 10, hold(0, "h1", "A-1-1")).
			add(11, 20, Op{Client: 0, Kind: KindRelease, Hold: "h1", Outcome: Fail, Code: "hold_not_active"}),
		"declined on a released hold": (&builder{}).
			add(0, 10, hold(0, "h1", "A-1-1")).
			add(11, 20, release(0, "h1")).
			add(21, 30, Op{Client: 0, Kind: KindPurchase, Hold: "h1", Outcome: Fail, Code: "payment_declined"}),
		"a purchase of other seats than the hold's": (&builder{}).
			add(0, 10, hold(0, "h1", "A-1-1")).
			add(11, 20, purchase(0, "h1", "o1", "A-1-1", "A-1-2")),
		"an expired hold (holds must not expire here)": (&builder{}).
			add(0, 10, hold(0, "h1", "A-1-1")).
			add(11, 20, Op{Client: 0, Kind: KindPurchase, Hold: "h1", Outcome: Fail, Code: "hold_expired"}),
		"an unexplained code": (&builder{}).
			add(0, 10, holdFailed(0, "event_not_found", "A-1-1")),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, porcupine.Illegal, check(t, b.history()).Linearizable)
		})
	}
}

// An unknown write is possible at any time after its call, never before.
func TestUnknownOutcomeTakesEffectOnlyAfterItsCall(t *testing.T) {
	b := &builder{}
	b.add(0, 10, read(1, "A-1-1", "held")).
		add(20, 30, holdUnknown(0, "A-1-1"))
	require.Equal(t, porcupine.Illegal, check(t, b.history()).Linearizable)
}

// Groups of seats no write touches together are checked apart; a read of
// both is split.
func TestPartitionsFollowTheSeatsWritesTouchTogether(t *testing.T) {
	b := &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1", "A-1-2")).
		add(0, 10, hold(1, "h2", "B-1-1")).
		add(11, 20, release(0, "h1")).
		add(21, 30, read(2, "A-1-1", "free", "A-1-2", "free", "B-1-1", "held", "C-1-1", "free"))
	ops := Operations(b.history().Ops)
	parts := Model().Partition(ops)
	require.Len(t, parts, 3, "{A-1-1, A-1-2, h1}, {B-1-1, h2}, {C-1-1}")
	for _, p := range parts {
		last := p[len(p)-1].Input.(Op)
		require.Equal(t, KindReadSeats, last.Kind)
		require.NotEmpty(t, last.Observed)
		require.LessOrEqual(t, len(last.Observed), 2, "the read is split per group")
	}
	require.True(t, check(t, b.history()).OK())
}

func final(seats map[string]string, holds []HoldView, orders []OrderView) *Final {
	f := &Final{Event: "e", Capacity: len(seats), Seats: seats, Holds: map[string]HoldView{}, Orders: map[string]OrderView{}}
	for _, h := range holds {
		f.Holds[h.ID] = h
	}
	for _, o := range orders {
		f.Orders[o.ID] = o
	}
	return f
}

// A history that agrees with its final state passes the invariants; each
// kind of broken invariant is named.
func TestInvariants(t *testing.T) {
	b := &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(0, 10, hold(1, "h2", "A-1-2")).
		add(11, 20, purchase(1, "h2", "o2", "A-1-2")).
		add(0, 10, holdUnknown(2, "A-1-3"))
	good := final(
		map[string]string{"A-1-1": "held", "A-1-2": "sold", "A-1-3": "held", "A-1-4": "free"},
		[]HoldView{{ID: "h1", Seats: []string{"A-1-1"}, State: "active"}, {ID: "h2", Seats: []string{"A-1-2"}, State: "purchased", Order: "o2"}},
		[]OrderView{{ID: "o2", Hold: "h2", Seats: []string{"A-1-2"}, State: "paid"}},
	)
	h := b.history()
	h.Final = good
	require.Empty(t, Invariants(h))

	cases := map[string]struct {
		mutate func(f *Final)
		want   string
	}{
		"double sale": {func(f *Final) {
			f.Orders["o9"] = OrderView{ID: "o9", Hold: "h9", Seats: []string{"A-1-2"}, State: "paid"}
		}, "double sale: seat A-1-2"},
		"acknowledged hold lost": {func(f *Final) {
			f.Seats["A-1-1"] = "free"
			f.Holds["h1"] = HoldView{ID: "h1", Seats: []string{"A-1-1"}, State: "released"}
		}, "hold h1 should be active"},
		"acknowledged purchase lost": {func(f *Final) {
			f.Orders["o2"] = OrderView{ID: "o2", Hold: "h2", Seats: []string{"A-1-2"}, State: "failed"}
		}, "seat A-1-2 reads sold but is in no paid order"},
		"seat held by nobody": {func(f *Final) { f.Seats["A-1-4"] = "held" }, "seat A-1-4 reads held but no hold"},
		"seat missing":        {func(f *Final) { delete(f.Seats, "A-1-4") }, "has 3 seats, the event 4"},
		"two holds own a seat": {func(f *Final) {
			f.Holds["h7"] = HoldView{ID: "h7", Seats: []string{"A-1-1"}, State: "active"}
		}, "seat A-1-1 is held by holds h1 and h7"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := *good
			f.Seats = clone(good.Seats)
			f.Holds = clone(good.Holds)
			f.Orders = clone(good.Orders)
			c.mutate(&f)
			h := b.history()
			h.Final = &f
			got := strings.Join(Invariants(h), "\n")
			require.Contains(t, got, c.want)
		})
	}
}

func clone[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// A failed check leaves the history and porcupine's visualisation behind.
func TestFailedCheckWritesArtifacts(t *testing.T) {
	b := &builder{}
	b.add(0, 10, hold(0, "h1", "A-1-1")).
		add(11, 20, read(1, "A-1-1", "free"))
	dir := filepath.Join(t.TempDir(), "artifacts")
	v, err := Check(b.history(), Options{Dir: dir})
	require.NoError(t, err)
	require.False(t, v.OK())
	require.Len(t, v.Artifacts, 3)
	for _, p := range v.Artifacts {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size(), p)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "history.json"))
	require.NoError(t, err)
	back, err := Unmarshal(raw)
	require.NoError(t, err)
	require.Equal(t, b.history().Ops, back.Ops, "the saved history reads back as it was")
	html, err := os.ReadFile(filepath.Join(dir, "linearizability.html"))
	require.NoError(t, err)
	require.Contains(t, string(html), "A-1-1")

	// A passing check writes nothing.
	ok := &builder{}
	ok.add(0, 10, hold(0, "h1", "A-1-1"))
	dir2 := filepath.Join(t.TempDir(), "none")
	v, err = Check(ok.history(), Options{Dir: dir2})
	require.NoError(t, err)
	require.True(t, v.OK())
	require.NoDirExists(t, dir2)
}

func TestClassify(t *testing.T) {
	o, code, _ := Classify(nil)
	require.Equal(t, OK, o)
	require.Empty(t, code)
	o, code, _ = Classify(&client.Error{Status: 409, Code: "seat_unavailable"})
	require.Equal(t, Fail, o)
	require.Equal(t, "seat_unavailable", code)
	for _, e := range []*client.Error{{Status: 503, Code: "unavailable"}, {Status: 504, Code: "timeout"}, {Status: 500, Code: "internal"}, {Status: 408, Code: "timeout"}} {
		o, _, _ = Classify(e)
		require.Equal(t, Unknown, o, "%d", e.Status)
	}
	o, _, _ = Classify(&client.Error{Code: "invalid_argument"})
	require.Equal(t, Fail, o, "a call the client refused to send did nothing")
	o, code, _ = Classify(os.ErrDeadlineExceeded)
	require.Equal(t, Unknown, o)
	require.Equal(t, "transport", code)
}

// Area holds are holds of the places they were given: two that were given
// one place, one after the other with no release between, cannot both be
// right; a refused one changes nothing; one of unknown outcome cannot be
// checked until it is resolved.
func TestCheckAreaHolds(t *testing.T) {
	area := func(client int, id string, places ...string) Op {
		return Op{Client: client, Kind: KindHoldArea, Area: "PIT", Quantity: len(places), Hold: id, Seats: places, HoldSeats: places}
	}
	b := &builder{}
	b.add(0, 10, area(0, "h1", "GA-PIT-1", "GA-PIT-2")).
		add(5, 12, Op{Client: 1, Kind: KindHoldArea, Area: "PIT", Quantity: 9, Outcome: Fail, Code: "seat_unavailable"}).
		add(11, 20, release(0, "h1")).
		add(21, 30, area(1, "h2", "GA-PIT-2")).
		add(31, 40, read(2, "GA-PIT-1", "free", "GA-PIT-2", "held"))
	v := check(t, b.history())
	require.True(t, v.OK(), v.String())

	b = &builder{}
	b.add(0, 10, area(0, "h1", "GA-PIT-1")).
		add(20, 30, area(1, "h2", "GA-PIT-1"))
	require.Equal(t, porcupine.Illegal, check(t, b.history()).Linearizable, "one place given twice")

	b = &builder{}
	b.add(0, 10, Op{Client: 0, Kind: KindHoldArea, Area: "PIT", Quantity: 1, Outcome: Unknown, Code: "timeout"})
	v = check(t, b.history())
	require.False(t, v.OK())
	require.Contains(t, v.String(), "resolve it")
}
