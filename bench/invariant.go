package bench

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"boxoffice/client"
)

// HoldOutcome is what became of a hold the bench was acknowledged.
type HoldOutcome string

const (
	// HoldOpen: still held when the run ended (a declined purchase whose
	// release failed); it expires by itself.
	HoldOpen HoldOutcome = "open"
	// HoldReleased: released (204).
	HoldReleased HoldOutcome = "released"
	// HoldPurchased: bought (201); its seats are sold for good.
	HoldPurchased HoldOutcome = "purchased"
	// HoldExpired: the purchase answered hold_expired.
	HoldExpired HoldOutcome = "expired"
	// HoldUnknown: the outcome of its release or purchase stayed unknown.
	HoldUnknown HoldOutcome = "unknown"
)

// HoldRecord is a hold the bench got a 201 for, and what became of it.
type HoldRecord struct {
	ID    string
	Event string
	Buyer string
	Seats []string
	// Start and End bracket the hold call: the hold took effect at some
	// instant between them.
	Start, End time.Time
	// ExpiresAt is the server's expiry of the hold.
	ExpiresAt time.Time
	Outcome   HoldOutcome
	// EndStart and EndEnd bracket the release or purchase that ended it.
	EndStart, EndEnd time.Time
	// Order is the order a purchased hold became.
	Order string
}

// OrderRecord is a purchase the bench got a 201 for.
type OrderRecord struct {
	ID    string
	Event string
	Hold  string
	Buyer string
	Seats []string
	// Resolved is true when the 201 came from sending a write whose first
	// answer was lost again with the same Idempotency-Key.
	Resolved bool
}

// UnknownWrite is a write whose outcome the bench could not learn.
type UnknownWrite struct {
	Op    string   `json:"op"`
	Event string   `json:"event"`
	Key   string   `json:"key"`
	Hold  string   `json:"hold,omitempty"`
	Seats []string `json:"seats"`
	Err   string   `json:"err"`
}

// Ledger is everything the bench was acknowledged, merged from its users.
type Ledger struct {
	Holds   []HoldRecord
	Orders  []OrderRecord
	Unknown []UnknownWrite
}

// only returns the part of the ledger about event.
func (l *Ledger) only(event string) *Ledger {
	out := &Ledger{}
	for _, h := range l.Holds {
		if h.Event == event {
			out.Holds = append(out.Holds, h)
		}
	}
	for _, o := range l.Orders {
		if o.Event == event {
			out.Orders = append(out.Orders, o)
		}
	}
	for _, u := range l.Unknown {
		if u.Event == event {
			out.Unknown = append(out.Unknown, u)
		}
	}
	return out
}

// mergeChecks adds up the checks of several events (multi): it passes when
// every one does; messages say which event they are about, and Index is
// the highest index read.
func mergeChecks(events []*eventRun, checks []CheckResult) CheckResult {
	out := CheckResult{OK: true, Conclusive: true}
	for i, c := range checks {
		id := events[i].id
		out.OK = out.OK && c.OK
		out.Conclusive = out.Conclusive && c.Conclusive
		out.Index = max(out.Index, c.Index)
		out.SeatsFree += c.SeatsFree
		out.SeatsHeld += c.SeatsHeld
		out.SeatsSold += c.SeatsSold
		out.AckedOrders += c.AckedOrders
		out.AckedSeats += c.AckedSeats
		out.OrdersRead += c.OrdersRead
		out.HoldsChecked += c.HoldsChecked
		out.ViolationCount += c.ViolationCount
		out.DoubleSales += c.DoubleSales
		out.LostWrites += c.LostWrites
		for _, v := range c.Violations {
			if len(out.Violations) < violationsKept {
				out.Violations = append(out.Violations, id+": "+v)
			}
		}
		for _, u := range c.Unresolved {
			if len(out.Unresolved) < violationsKept {
				out.Unresolved = append(out.Unresolved, id+": "+u)
			}
		}
	}
	return out
}

func (l *Ledger) merge(o *Ledger) {
	l.Holds = append(l.Holds, o.Holds...)
	l.Orders = append(l.Orders, o.Orders...)
	l.Unknown = append(l.Unknown, o.Unknown...)
}

// ServerState is the end state read back from the cluster with strong
// reads, after every user stopped.
type ServerState struct {
	// Index is the applied index the seat map was read at.
	Index uint64
	// Seats is the whole seat map.
	Seats []client.Seat
	// Orders are the acknowledged orders as read back, by id; an id that is
	// absent was not found (404).
	Orders map[string]*client.Order
	// OrderErrors are the reads that failed otherwise (the check cannot
	// say whether those orders exist).
	OrderErrors map[string]string
	// AllOrders, when the system can list them (the peers), are every
	// order the server has for the event, acknowledged or not; nil when
	// it cannot (boxoffice: only the acknowledged ones are read back).
	AllOrders []*client.Order
	// SeatOrders, when the system records it per seat (the peers), is the
	// order each sold seat belongs to on the server; nil otherwise.
	SeatOrders map[string]string
}

// CheckResult is the outcome of Check.
type CheckResult struct {
	// OK is true when no violation was found.
	OK bool `json:"ok"`
	// Conclusive is false when some writes' outcomes stayed unknown, so a
	// seat could not be attributed for sure (see Unresolved).
	Conclusive     bool   `json:"conclusive"`
	Index          uint64 `json:"index"`
	SeatsFree      int    `json:"seatsFree"`
	SeatsHeld      int    `json:"seatsHeld"`
	SeatsSold      int    `json:"seatsSold"`
	AckedOrders    int    `json:"ackedOrders"`
	AckedSeats     int    `json:"ackedSeats"`
	OrdersRead     int    `json:"ordersRead"`
	HoldsChecked   int    `json:"holdsChecked"`
	ViolationCount int    `json:"violationCount"`
	// DoubleSales counts the violations in which one seat had two owners:
	// a seat in two acknowledged orders (or twice in one), or a hold
	// granted while another surely owned the seat.
	DoubleSales int `json:"doubleSales"`
	// LostWrites counts the violations in which an acknowledged purchase is
	// not in the end state: its order missing, not paid or with other
	// seats, or one of its seats not sold.
	LostWrites int      `json:"lostWrites"`
	Violations []string `json:"violations"`
	Unresolved []string `json:"unresolved"`
	// ReadSeconds is how long the strong reads took.
	ReadSeconds float64 `json:"readSeconds"`
}

// violationsKept bounds the messages a CheckResult keeps (all are counted).
const violationsKept = 100

// forever stands for "owned for good": a sold seat never comes back, the
// bench cancels no order.
var forever = time.Unix(1<<40, 0)

// Check compares what the bench was acknowledged (l) with the cluster's end
// state (s). It finds:
//
//   - a seat in two acknowledged orders, or twice in one;
//   - an acknowledged order that is missing, not paid, or has other seats,
//     or sold other seats than its hold held;
//   - a seat of an acknowledged order that is not sold;
//   - a sold seat that belongs to no acknowledged order;
//   - a held seat that belongs to no hold the bench knows to be open (a
//     hold that expired shows as free);
//   - where the server says which order owns a seat or lists all its
//     orders (the peers): a seat sold to another order than the
//     acknowledged one, or in two of the server's paid orders;
//   - two holds that surely owned one seat at once: hold B was requested
//     after hold A was acknowledged and acknowledged before A surely ended
//     (its release was requested, or its expiry minus skew; never, once
//     bought). The brackets are the calls' own start and end, so a
//     violation is certain, whatever the order the server applied them in.
//
// Seats of writes whose outcome stayed unknown cannot be attributed: they
// are listed as unresolved, not as violations.
func Check(l *Ledger, s *ServerState, skew time.Duration) CheckResult {
	r := CheckResult{Index: s.Index, Conclusive: true}
	// violate records a violation, also counted in kind (nil: no kind).
	violate := func(kind *int, format string, args ...any) {
		r.ViolationCount++
		if kind != nil {
			*kind++
		}
		if len(r.Violations) < violationsKept {
			r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
		}
	}
	unresolved := func(format string, args ...any) {
		r.Conclusive = false
		if len(r.Unresolved) < violationsKept {
			r.Unresolved = append(r.Unresolved, fmt.Sprintf(format, args...))
		}
	}

	// Seats the bench cannot attribute for sure.
	unknownSeat := map[string]bool{}
	for _, u := range l.Unknown {
		for _, seat := range u.Seats {
			unknownSeat[seat] = true
		}
	}
	holds := make(map[string]*HoldRecord, len(l.Holds))
	openSeat := map[string]bool{}
	for i := range l.Holds {
		h := &l.Holds[i]
		holds[h.ID] = h
		switch h.Outcome {
		case HoldOpen:
			for _, seat := range h.Seats {
				openSeat[seat] = true
			}
		case HoldUnknown:
			for _, seat := range h.Seats {
				unknownSeat[seat] = true
			}
		}
	}

	// Acknowledged orders: disjoint, present, paid, as acknowledged.
	orderOf := make(map[string]string, len(l.Orders)*4)
	r.AckedOrders = len(l.Orders)
	for _, o := range l.Orders {
		seen := map[string]bool{}
		for _, seat := range o.Seats {
			if seen[seat] {
				violate(&r.DoubleSales, "acknowledged order %s lists seat %s twice", o.ID, seat)
				continue
			}
			seen[seat] = true
			if prev, ok := orderOf[seat]; ok {
				violate(&r.DoubleSales, "seat %s is in two acknowledged orders: %s and %s", seat, prev, o.ID)
				continue
			}
			orderOf[seat] = o.ID
			r.AckedSeats++
		}
		if h, ok := holds[o.Hold]; ok && !sameSet(h.Seats, o.Seats) {
			violate(nil, "order %s sold seats %v of hold %s, which held %v", o.ID, o.Seats, o.Hold, h.Seats)
		}
		got, ok := s.Orders[o.ID]
		switch {
		case !ok && s.OrderErrors[o.ID] != "":
			unresolved("order %s could not be read back: %s", o.ID, s.OrderErrors[o.ID])
		case !ok:
			violate(&r.LostWrites, "acknowledged order %s (hold %s, buyer %s) is missing", o.ID, o.Hold, o.Buyer)
		default:
			r.OrdersRead++
			if got.State != client.OrderPaid {
				violate(&r.LostWrites, "acknowledged order %s is %s, not paid", o.ID, got.State)
			}
			if !sameSet(got.Seats, o.Seats) {
				violate(&r.LostWrites, "acknowledged order %s has seats %v on the server, %v when acknowledged", o.ID, got.Seats, o.Seats)
			}
		}
	}

	// The seat map against the orders and the open holds.
	stateOf := make(map[string]string, len(s.Seats))
	for _, seat := range s.Seats {
		stateOf[seat.ID] = seat.State
		switch seat.State {
		case client.SeatFree:
			r.SeatsFree++
		case client.SeatHeld:
			r.SeatsHeld++
			switch {
			case openSeat[seat.ID]:
			case unknownSeat[seat.ID]:
				unresolved("held seat %s: the hold or release that touched it has an unknown outcome", seat.ID)
			default:
				violate(nil, "held seat %s belongs to no hold the bench knows to be open", seat.ID)
			}
		case client.SeatSold:
			r.SeatsSold++
			if _, ok := orderOf[seat.ID]; ok {
				break
			}
			if unknownSeat[seat.ID] {
				unresolved("sold seat %s: the purchase that may have sold it has an unknown outcome", seat.ID)
			} else {
				violate(nil, "sold seat %s belongs to no acknowledged purchase", seat.ID)
			}
		default:
			violate(nil, "seat %s has unknown state %q", seat.ID, seat.State)
		}
	}
	// The server's own record of who bought what, where it has one: a seat
	// sold to another order than the acknowledged one, or in two orders
	// at once, was sold twice.
	for _, seat := range s.Seats {
		on, ok := s.SeatOrders[seat.ID]
		if ack, acked := orderOf[seat.ID]; ok && acked && seat.State == client.SeatSold && on != ack {
			violate(&r.DoubleSales, "seat %s is sold to order %s on the server, but was acknowledged as sold in order %s", seat.ID, on, ack)
		}
	}
	soldIn := map[string]string{}
	for _, o := range s.AllOrders {
		if o.State != client.OrderPaid {
			continue
		}
		for _, seat := range o.Seats {
			if prev, ok := soldIn[seat]; ok && prev != o.ID {
				violate(&r.DoubleSales, "seat %s is sold in two orders on the server: %s and %s", seat, prev, o.ID)
				continue
			}
			soldIn[seat] = o.ID
		}
	}
	for seat, id := range orderOf {
		if st := stateOf[seat]; st != client.SeatSold {
			if st == "" {
				st = "not in the seat map"
			}
			violate(&r.LostWrites, "seat %s of acknowledged order %s is %s", seat, id, st)
		}
	}

	// The history of holds, seat by seat.
	bySeat := map[string][]*HoldRecord{}
	for i := range l.Holds {
		h := &l.Holds[i]
		r.HoldsChecked++
		for _, seat := range h.Seats {
			bySeat[seat] = append(bySeat[seat], h)
		}
	}
	seats := make([]string, 0, len(bySeat))
	for seat := range bySeat {
		seats = append(seats, seat)
	}
	sort.Strings(seats) // violations in a stable order
	for _, seat := range seats {
		hs := bySeat[seat]
		for _, a := range hs {
			until := surelyOwnedUntil(a, skew)
			for _, b := range hs {
				if a != b && b.Start.After(a.End) && b.End.Before(until) {
					violate(&r.DoubleSales, "seat %s: hold %s was granted (%s..%s) while hold %s surely owned it (%s..%s)",
						seat, b.ID, clock(b.Start), clock(b.End), a.ID, clock(a.End), clock(until))
				}
			}
		}
	}
	r.OK = r.ViolationCount == 0
	return r
}

// surelyOwnedUntil is the last instant a hold surely still owned its seats.
func surelyOwnedUntil(h *HoldRecord, skew time.Duration) time.Time {
	switch h.Outcome {
	case HoldReleased:
		return h.EndStart
	case HoldPurchased:
		return forever
	}
	if h.ExpiresAt.IsZero() {
		return h.End
	}
	return h.ExpiresAt.Add(-skew)
}

func clock(t time.Time) string {
	if t.Equal(forever) {
		return "sold"
	}
	return t.Format("15:04:05.000000")
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
