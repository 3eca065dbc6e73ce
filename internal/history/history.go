// Package history records what clients did to a boxoffice cluster and judges
// it: a linearizability check of seat ownership with porcupine, and direct
// invariant checks of the final state (no double sale, every acknowledged
// write present, no seat lost). A fault test, in process or against a
// cluster of containers, uses it in four steps:
//
//	rec := history.NewRecorder()
//	c := rec.NewClient(apiClient.WithToken(buyerToken), "buyer-1") // one per sequential actor
//	c.Hold(ctx, event, seats); c.Release(…); c.Purchase(…); c.ReadSeats(…); c.ReadHold(…)
//	… faults, then heal …
//	rec.Resolve(ctx)                                  // learn unknown outcomes by retrying with their keys
//	rec.Collect(ctx, adminClient, event, capacity)    // strong final reads
//	v, err := history.Check(rec.History(), history.Options{Dir: artifactDir})
//	if !v.OK() { … v.Violations, v.Artifacts (porcupine's HTML, the history as JSON) … }
//
// Other harnesses may record operations themselves (Recorder.Add, with
// times from Recorder.Now) as long as they follow the same rules.
//
// # The model
//
// The state is who owns each seat of one event: free, held by a hold, or
// sold through the purchase of a hold. Holds name explicit seats; a hold is
// all or nothing; a release frees some or all seats of an active hold; a
// purchase sells all seats a hold still has; a strong read of the seat map
// or of a hold sees the state at one point between its call and return.
// Definite refusals are checked too: seat_unavailable needs a seat that is
// not free, hold_not_active a hold that no longer holds anything,
// payment_declined an active hold (which stays active).
//
// # Unknown outcomes
//
// A write whose answer was lost (a timeout, a 5xx, a cut connection) may or
// may not have taken effect, at any time after its call. It is checked with
// an open return time: porcupine may place its effect anywhere after its
// call, including after every other operation (which is "it never
// happened"), and the model applies it if it could have succeeded at that
// point. Resolve narrows this: it sends such a write again with its
// idempotency key; the server answers a key it has applied with the first
// answer, and applies it now otherwise, so the write took effect (or not)
// between its call and the resolving answer, which is then its return.
//
// # Rules for the workload
//
//   - Holds must not expire within a history: use a long hold TTL (an
//     event's holdTTLSeconds up to 3600) and histories of minutes. Expiry
//     is not modelled; hold_expired is a violation.
//   - Every write carries its own idempotency key (the Client does this).
//   - A hold is acted on by the client that made it, one call at a time,
//     and not at all after a call on it whose outcome is unknown (a
//     purchase still in flight would make a release fail in a way the
//     atomic model cannot explain).
//   - A purchase's outcome is at its completion: the model treats the whole
//     checkout saga as one step, which holds because nobody else touches
//     the hold meanwhile.
//
// # Partitions
//
// Operations are split into independent groups of seats (the connected
// components of the seats that writes touch together), so each group is
// checked on its own and checking stays fast. A read of many seats is split
// into one read per group: each part must be linearizable in its group,
// which is weaker than requiring one point for the whole read, never
// stronger, so the split cannot report a false violation.
package history

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Kind is what an operation did.
type Kind string

const (
	KindHold      Kind = "hold"       // hold explicit seats
	KindHoldArea  Kind = "hold-area"  // hold a quantity of a general-admission area's places
	KindRelease   Kind = "release"    // release some or all seats of a hold
	KindPurchase  Kind = "purchase"   // check out a hold
	KindReadSeats Kind = "read-seats" // strong read of seat states
	KindReadHold  Kind = "read-hold"  // strong read of a hold
)

// Outcome is how an operation ended, as its caller saw it.
type Outcome string

const (
	// OK: the operation succeeded.
	OK Outcome = "ok"
	// Fail: the operation was refused (a 4xx with a code): nothing changed.
	Fail Outcome = "fail"
	// Unknown: no definite answer (timeout, 5xx, cut connection): it may or
	// may not have taken effect, at any time after its call.
	Unknown Outcome = "unknown"
)

// Op is one recorded operation: its input, its times and its output. Its
// JSON is the raw history saved with a failed check.
type Op struct {
	ID     int    `json:"id"`
	Client int    `json:"client"`
	Kind   Kind   `json:"kind"`
	Event  string `json:"event,omitempty"`
	Buyer  string `json:"buyer,omitempty"`
	// Key is a write's idempotency key.
	Key string `json:"key,omitempty"`

	// Input. Seats: hold — the seats asked for; release — the seats to
	// free (empty: all). Hold: release, purchase, read-hold — the hold
	// acted on; hold — the hold made (output).
	Seats         []string `json:"seats,omitempty"`
	Hold          string   `json:"hold,omitempty"`
	PaymentMethod string   `json:"paymentMethod,omitempty"`
	// Area and Quantity: hold-area — what was asked for. Its Seats are
	// the places it was given (known once it succeeded).
	Area     string `json:"area,omitempty"`
	Quantity int    `json:"quantity,omitempty"`

	// Call and Return are nanoseconds since the recorder started
	// (monotonic). Return means nothing while Outcome is Unknown.
	Call   int64 `json:"call"`
	Return int64 `json:"return"`

	Outcome Outcome `json:"outcome"`
	// Code is a failure's code, or what made an outcome unknown.
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Resolved: the outcome was learnt later, by sending the write again
	// with its key; Return is that answer's time.
	Resolved bool `json:"resolved,omitempty"`

	// Output. HoldSeats: hold — the seats held; release — the seats the
	// hold keeps; purchase — the order's seats; read-hold — the hold's
	// seats. State: read-hold — the hold's state; release — the hold's
	// state after it. Order: purchase — the order made; read-hold — the
	// hold's order.
	HoldSeats []string `json:"holdSeats,omitempty"`
	State     string   `json:"state,omitempty"`
	Order     string   `json:"order,omitempty"`
	// Observed is a read-seats' answer: the state of each seat read.
	Observed map[string]string `json:"observed,omitempty"`
}

// IsWrite reports whether the operation may change state.
func (o *Op) IsWrite() bool {
	return o.Kind == KindHold || o.Kind == KindHoldArea || o.Kind == KindRelease || o.Kind == KindPurchase
}

// String is a short description: "c3 hold [A-1-1 A-1-2] → ok h_0.12.0".
func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d c%d %s", o.ID, o.Client, o.Kind)
	if o.Hold != "" && o.Kind != KindHold {
		b.WriteString(" " + o.Hold)
	}
	if len(o.Seats) > 0 {
		fmt.Fprintf(&b, " %v", o.Seats)
	}
	b.WriteString(" → " + string(o.Outcome))
	if o.Code != "" {
		b.WriteString(" " + o.Code)
	}
	switch o.Kind {
	case KindHold, KindHoldArea:
		if o.Hold != "" {
			fmt.Fprintf(&b, " %s %v", o.Hold, o.HoldSeats)
		}
	case KindRelease:
		if o.Outcome == OK {
			fmt.Fprintf(&b, " %s %v", o.State, o.HoldSeats)
		}
	case KindPurchase:
		if o.Order != "" {
			fmt.Fprintf(&b, " %s %v", o.Order, o.HoldSeats)
		}
	case KindReadHold:
		if o.Outcome == OK {
			fmt.Fprintf(&b, " %s %v", o.State, o.HoldSeats)
		}
	case KindReadSeats:
		if o.Outcome == OK {
			b.WriteString(" " + describeObserved(o.Observed))
		}
	}
	if o.Resolved {
		b.WriteString(" (resolved)")
	}
	return b.String()
}

func describeObserved(m map[string]string) string {
	seats := make([]string, 0, len(m))
	for s := range m {
		seats = append(seats, s)
	}
	slices.Sort(seats)
	parts := make([]string, len(seats))
	for i, s := range seats {
		parts[i] = s + ":" + m[s]
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// Final is the state of the event after the run, read with strong reads
// once the cluster healed: the input of the invariant checks.
type Final struct {
	Event string `json:"event"`
	// Capacity is the number of seats the event has (0: not checked).
	Capacity int `json:"capacity"`
	// Seats is the state of every seat, from one strong read of the map.
	Seats map[string]string `json:"seats"`
	// Holds are the holds the history names, by id, read strongly.
	Holds map[string]HoldView `json:"holds"`
	// Orders are the orders of those holds, by id, read strongly.
	Orders map[string]OrderView `json:"orders"`
}

// HoldView is a hold as the final reads saw it.
type HoldView struct {
	ID    string   `json:"id"`
	Seats []string `json:"seats"`
	State string   `json:"state"`
	Order string   `json:"order,omitempty"`
}

// OrderView is an order as the final reads saw it.
type OrderView struct {
	ID          string   `json:"id"`
	Hold        string   `json:"hold"`
	Buyer       string   `json:"buyer"`
	Seats       []string `json:"seats"`
	State       string   `json:"state"`
	PaymentRef  string   `json:"paymentRef,omitempty"`
	AmountCents int64    `json:"amountCents"`
}

// History is a recorded run: its operations and the final state.
type History struct {
	Ops   []Op   `json:"ops"`
	Final *Final `json:"final,omitempty"`
}

// Marshal is the history as indented JSON.
func (h History) Marshal() ([]byte, error) { return json.MarshalIndent(h, "", " ") }

// Unmarshal reads a history saved by Marshal.
func Unmarshal(b []byte) (History, error) {
	var h History
	err := json.Unmarshal(b, &h)
	return h, err
}
