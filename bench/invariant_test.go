package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/client"
)

// scenario is a small consistent end state: five seats, one of each story.
//
//	A-1-1, A-1-2  held by h1, bought as o1
//	A-1-3         held by h2, released; held again by h3, bought as o2
//	A-1-4         never taken: free
//	A-1-5         held by h4, still open when the run ended
func scenario() (*Ledger, *ServerState) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	exp := at(60_000)
	l := &Ledger{
		Holds: []HoldRecord{
			{ID: "h1", Buyer: "b1", Seats: []string{"A-1-1", "A-1-2"}, Start: at(0), End: at(10), ExpiresAt: exp,
				Outcome: HoldPurchased, EndStart: at(11), EndEnd: at(20), Order: "o1"},
			{ID: "h2", Buyer: "b2", Seats: []string{"A-1-3"}, Start: at(0), End: at(10), ExpiresAt: exp,
				Outcome: HoldReleased, EndStart: at(30), EndEnd: at(40)},
			// h3 was asked for while h2's release was in flight: the server
			// may have applied it after the release; no violation.
			{ID: "h3", Buyer: "b3", Seats: []string{"A-1-3"}, Start: at(35), End: at(50), ExpiresAt: exp.Add(time.Second),
				Outcome: HoldPurchased, EndStart: at(51), EndEnd: at(60), Order: "o2"},
			{ID: "h4", Buyer: "b4", Seats: []string{"A-1-5"}, Start: at(100), End: at(110), ExpiresAt: exp, Outcome: HoldOpen},
		},
		Orders: []OrderRecord{
			{ID: "o1", Hold: "h1", Buyer: "b1", Seats: []string{"A-1-1", "A-1-2"}},
			{ID: "o2", Hold: "h3", Buyer: "b3", Seats: []string{"A-1-3"}},
		},
	}
	s := &ServerState{
		Index: 42,
		Seats: []client.Seat{
			{ID: "A-1-1", State: client.SeatSold}, {ID: "A-1-2", State: client.SeatSold},
			{ID: "A-1-3", State: client.SeatSold}, {ID: "A-1-4", State: client.SeatFree},
			{ID: "A-1-5", State: client.SeatHeld},
		},
		Orders: map[string]*client.Order{
			"o1": {ID: "o1", Hold: "h1", Seats: []string{"A-1-2", "A-1-1"}, State: client.OrderPaid},
			"o2": {ID: "o2", Hold: "h3", Seats: []string{"A-1-3"}, State: client.OrderPaid},
		},
		OrderErrors: map[string]string{},
	}
	return l, s
}

func setSeat(s *ServerState, id, state string) {
	for i := range s.Seats {
		if s.Seats[i].ID == id {
			s.Seats[i].State = state
		}
	}
}

func TestCheckConsistent(t *testing.T) {
	l, s := scenario()
	r := Check(l, s, time.Second)
	require.True(t, r.OK, "violations: %v", r.Violations)
	assert.True(t, r.Conclusive)
	assert.Zero(t, r.DoubleSales)
	assert.Zero(t, r.LostWrites)
	assert.Equal(t, 3, r.SeatsSold)
	assert.Equal(t, 1, r.SeatsHeld)
	assert.Equal(t, 1, r.SeatsFree)
	assert.Equal(t, 2, r.AckedOrders)
	assert.Equal(t, 3, r.AckedSeats)
	assert.Equal(t, 2, r.OrdersRead)
	assert.Equal(t, 4, r.HoldsChecked)
	assert.Equal(t, uint64(42), r.Index)
}

// TestCheckFindsViolations breaks the consistent state one way at a time;
// each must be found, with a message that says what.
func TestCheckFindsViolations(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(l *Ledger, s *ServerState)
		want    string
		// kind is the count the violation adds to besides ViolationCount:
		// "double" (DoubleSales), "lost" (LostWrites) or "" (neither).
		kind string
	}{
		{"seat sold twice", func(l *Ledger, s *ServerState) {
			l.Orders[1].Seats = []string{"A-1-3", "A-1-1"}
			s.Orders["o2"].Seats = []string{"A-1-3", "A-1-1"}
		}, "seat A-1-1 is in two acknowledged orders: o1 and o2", "double"},
		{"acknowledged order missing", func(l *Ledger, s *ServerState) {
			delete(s.Orders, "o1")
		}, "acknowledged order o1 (hold h1, buyer b1) is missing", "lost"},
		{"sold seat without acknowledged order", func(l *Ledger, s *ServerState) {
			setSeat(s, "A-1-4", client.SeatSold)
		}, "sold seat A-1-4 belongs to no acknowledged purchase", ""},
		{"acknowledged seat not sold", func(l *Ledger, s *ServerState) {
			setSeat(s, "A-1-2", client.SeatFree)
		}, "seat A-1-2 of acknowledged order o1 is free", "lost"},
		{"acknowledged order cancelled", func(l *Ledger, s *ServerState) {
			s.Orders["o2"].State = client.OrderCancelled
		}, "acknowledged order o2 is cancelled, not paid", "lost"},
		{"acknowledged order with other seats", func(l *Ledger, s *ServerState) {
			s.Orders["o1"].Seats = []string{"A-1-1"}
		}, "acknowledged order o1 has seats [A-1-1] on the server", "lost"},
		{"held seat of no open hold", func(l *Ledger, s *ServerState) {
			setSeat(s, "A-1-4", client.SeatHeld)
		}, "held seat A-1-4 belongs to no hold the bench knows to be open", ""},
		{"held seat of a released hold", func(l *Ledger, s *ServerState) {
			l.Holds[3].Outcome = HoldReleased
		}, "held seat A-1-5 belongs to no hold", ""},
		{"hold granted on a sold seat", func(l *Ledger, s *ServerState) {
			l.Holds = append(l.Holds, HoldRecord{ID: "h9", Buyer: "b9", Seats: []string{"A-1-1"},
				Start: l.Holds[0].End.Add(time.Second), End: l.Holds[0].End.Add(2 * time.Second), Outcome: HoldReleased})
		}, "seat A-1-1: hold h9 was granted", "double"},
		{"two open holds at once", func(l *Ledger, s *ServerState) {
			h := l.Holds[3]
			h.ID, h.Start, h.End = "h8", h.End.Add(time.Millisecond), h.End.Add(5*time.Millisecond)
			l.Holds = append(l.Holds, h)
		}, "seat A-1-5: hold h8 was granted", "double"},
		{"order sold other seats than its hold", func(l *Ledger, s *ServerState) {
			l.Holds[0].Seats = []string{"A-1-1", "A-1-4"}
		}, "order o1 sold seats [A-1-1 A-1-2] of hold h1, which held [A-1-1 A-1-4]", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, s := scenario()
			tc.corrupt(l, s)
			r := Check(l, s, time.Second)
			require.False(t, r.OK, "not detected")
			assert.Positive(t, r.ViolationCount)
			assert.True(t, containsPrefix(r.Violations, tc.want), "want %q in %q", tc.want, r.Violations)
			switch tc.kind {
			case "double":
				assert.Positive(t, r.DoubleSales)
				assert.Zero(t, r.LostWrites)
			case "lost":
				assert.Positive(t, r.LostWrites)
				assert.Zero(t, r.DoubleSales)
			default:
				assert.Zero(t, r.DoubleSales)
				assert.Zero(t, r.LostWrites)
			}
		})
	}
}

// TestCheckUnknownOutcomes: seats a write with an unknown outcome may have
// taken are unresolved, not violations; a hold that surely expired before
// another was granted is no violation either.
func TestCheckUnknownOutcomes(t *testing.T) {
	l, s := scenario()
	setSeat(s, "A-1-4", client.SeatSold)
	l.Unknown = append(l.Unknown, UnknownWrite{Op: "purchase", Key: "k", Hold: "h7", Seats: []string{"A-1-4"}, Err: "timeout"})
	r := Check(l, s, time.Second)
	assert.True(t, r.OK, "violations: %v", r.Violations)
	assert.False(t, r.Conclusive)
	require.Len(t, r.Unresolved, 1)
	assert.Contains(t, r.Unresolved[0], "A-1-4")

	l, s = scenario()
	old := l.Holds[3]
	old.ID, old.Outcome = "h0", HoldExpired
	old.Start, old.End = old.Start.Add(-2*time.Minute), old.End.Add(-2*time.Minute)
	old.ExpiresAt = old.End.Add(time.Minute) // expired a minute before h4 was asked for
	l.Holds = append(l.Holds, old)
	r = Check(l, s, time.Second)
	assert.True(t, r.OK, "violations: %v", r.Violations)

	// An order that could not be read back is unresolved, not missing.
	l, s = scenario()
	delete(s.Orders, "o2")
	s.OrderErrors["o2"] = "503 unavailable"
	r = Check(l, s, time.Second)
	assert.True(t, r.OK, "violations: %v", r.Violations)
	assert.False(t, r.Conclusive)
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
