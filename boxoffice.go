// Package boxoffice is the domain language of the seat-inventory store:
// events and their venues, seats and their states, holds, orders, the error
// codes every layer shares, and the PaymentGateway interface.
//
// It imports only the standard library. Every other package adds one
// capability around these nouns (see DESIGN.md).
package boxoffice

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Limits on identifiers and on the shape of an event. They are enforced
// before a command is proposed and again inside the state machine.
const (
	IDLenMax             = 64
	NameLenMax           = 200
	CategoriesMax        = 32
	SectionsMax          = 1000
	RowsPerSectionMax    = 1000
	SeatsPerRowMax       = 1000
	SeatsPerEventMax     = 200_000
	SeatsPerHoldMax      = 32
	MaxSeatsPerBuyerMax  = 1000
	HoldTTLMax           = 3600 // seconds
	DefaultHoldTTL       = 600  // seconds
	DefaultSeatsPerBuyer = 8
	// HoldLifetimeFactor bounds extensions: a hold lives at most this many
	// times its event's hold TTL, counted from its creation.
	HoldLifetimeFactor = 2
	// CheckoutLeaseMaxMs bounds how long a checkout may keep its seats
	// while its charge is in flight.
	CheckoutLeaseMaxMs = 10 * 60 * 1000
	// IdempotencyKeyLenMax bounds an Idempotency-Key; IdempotencyTTLMs is
	// how long the state machine remembers one.
	IdempotencyKeyLenMax = 128
	IdempotencyTTLMs     = 24 * 60 * 60 * 1000
)

// ShardOfID returns the shard named in a hold or order id: the state
// machine makes them "<kind>_<shard>.<index>.<pos>" from the log, so that
// any node, and a client, can tell where one lives. ok is false for an id
// of another shape.
func ShardOfID(id string) (shard int, ok bool) {
	_, rest, ok := strings.Cut(id, "_")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	s, err := strconv.Atoi(num)
	if err != nil || s < 0 {
		return 0, false
	}
	return s, true
}

// ValidID reports whether s is a creator-chosen identifier: [A-Za-z0-9._-]{1,64}.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > IDLenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// SeatState is the one state a seat is in at any moment.
type SeatState uint8

const (
	SeatFree SeatState = iota
	SeatHeld
	SeatSold
)

func (s SeatState) String() string {
	switch s {
	case SeatFree:
		return "free"
	case SeatHeld:
		return "held"
	case SeatSold:
		return "sold"
	}
	return "SeatState(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeatState is the inverse of SeatState.String.
func ParseSeatState(s string) (SeatState, bool) {
	switch s {
	case "free":
		return SeatFree, true
	case "held":
		return SeatHeld, true
	case "sold":
		return SeatSold, true
	}
	return 0, false
}

// HoldState is where a hold is in its life.
type HoldState uint8

const (
	HoldActive HoldState = iota + 1
	HoldCheckingOut
	HoldReleased
	HoldExpired
	HoldPurchased
)

func (s HoldState) String() string {
	switch s {
	case HoldActive:
		return "active"
	case HoldCheckingOut:
		return "checking-out"
	case HoldReleased:
		return "released"
	case HoldExpired:
		return "expired"
	case HoldPurchased:
		return "purchased"
	}
	return "HoldState(" + strconv.Itoa(int(s)) + ")"
}

// OrderState is where an order is in its life.
type OrderState uint8

const (
	OrderPending OrderState = iota + 1 // checkout begun: the charge is in flight
	OrderPaid
	OrderCancelled // cancelled after payment: the refund is in flight
	OrderRefunded
	OrderFailed // the charge was declined, or could not be kept (refunded)
)

func (s OrderState) String() string {
	switch s {
	case OrderPending:
		return "pending"
	case OrderPaid:
		return "paid"
	case OrderCancelled:
		return "cancelled"
	case OrderRefunded:
		return "refunded"
	case OrderFailed:
		return "failed"
	}
	return "OrderState(" + strconv.Itoa(int(s)) + ")"
}

// Category is a price class of seats.
type Category struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
}

// Section is a block of seats of one category: Rows rows of SeatsPerRow
// seats, less what RowSeats and Gaps leave out. Seat ids are
// "<section>-<row>-<number>", from 1.
type Section struct {
	ID          string `json:"id"`
	Category    string `json:"category"`
	Rows        int    `json:"rows"`
	SeatsPerRow int    `json:"seatsPerRow"`
	Position    *Point `json:"position,omitempty"`
	// RowSeats, if set, is the seat count of each row (one per row, each
	// 1..SeatsPerRow): row r has seats 1..RowSeats[r-1].
	RowSeats []int `json:"rowSeats,omitempty"`
	// Gaps are seats ("<row>-<number>") that do not exist: an aisle, a
	// pillar. Numbers are not shifted: the seat after a gap keeps its own.
	Gaps []string `json:"gaps,omitempty"`
	// Flags mark seats ("<row>-<number>"), e.g. {"flag":"accessible"}.
	Flags []SeatFlag `json:"flags,omitempty"`
}

// SeatFlag marks some seats of a section.
type SeatFlag struct {
	Flag  string   `json:"flag"`
	Seats []string `json:"seats"`
}

// Equal reports whether two sections are the same (Position by value).
func (s Section) Equal(o Section) bool {
	if s.ID != o.ID || s.Category != o.Category || s.Rows != o.Rows || s.SeatsPerRow != o.SeatsPerRow ||
		!slices.Equal(s.RowSeats, o.RowSeats) || !slices.Equal(s.Gaps, o.Gaps) ||
		!slices.EqualFunc(s.Flags, o.Flags, func(a, b SeatFlag) bool { return a.Flag == b.Flag && slices.Equal(a.Seats, b.Seats) }) {
		return false
	}
	if s.Position == nil || o.Position == nil {
		return s.Position == nil && o.Position == nil
	}
	return *s.Position == *o.Position
}

// Seats is the number of seats of a valid section.
func (s Section) Seats() int {
	n := s.Rows * s.SeatsPerRow
	if len(s.RowSeats) == s.Rows {
		n = 0
		for _, c := range s.RowSeats {
			n += c
		}
	}
	return n - len(s.Gaps)
}

// exists reports whether seat (row, num) of a valid section exists, gaps
// given as a set.
func (s Section) exists(row, num int, gaps map[[2]int]bool) bool {
	if row < 1 || row > s.Rows || num < 1 || num > s.SeatsPerRow {
		return false
	}
	if len(s.RowSeats) == s.Rows && num > s.RowSeats[row-1] {
		return false
	}
	return !gaps[[2]int{row, num}]
}

// ParseRowSeat parses "<row>-<number>" (canonical decimal, from 1).
func ParseRowSeat(s string) (row, num int, ok bool) {
	r, n, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	row, err1 := strconv.Atoi(r)
	num, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil || row < 1 || num < 1 || strconv.Itoa(row) != r || strconv.Itoa(num) != n {
		return 0, 0, false
	}
	return row, num, true
}

// Venue is the seat layout of an event, described compactly: a 100,000-seat
// venue is a handful of sections, expanded into seats only where needed.
// Areas are its general-admission areas, numbered after the sections.
type Venue struct {
	Sections []Section `json:"sections"`
	Areas    []Area    `json:"areas,omitempty"`
}

// Capacity is the number of places in the venue: seats and
// general-admission places.
func (v Venue) Capacity() int {
	n := 0
	for _, s := range v.Sections {
		n += s.Seats()
	}
	for _, a := range v.Areas {
		n += a.Capacity
	}
	return n
}

// Area returns the general-admission area with the given id.
func (v Venue) Area(id string) (Area, bool) {
	for _, a := range v.Areas {
		if a.ID == id {
			return a, true
		}
	}
	return Area{}, false
}

// Limits bound what one buyer may do on one event.
type Limits struct {
	MaxSeatsPerBuyer int `json:"maxSeatsPerBuyer"`
	HoldTTLSeconds   int `json:"holdTTLSeconds"`
}

// Event is one on-sale: its venue, categories and limits.
type Event struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Type       string     `json:"type,omitempty"`
	Location   string     `json:"location,omitempty"`
	StartsAtMs int64      `json:"-"`
	Organiser  string     `json:"organiser,omitempty"`
	Categories []Category `json:"categories"`
	Venue      Venue      `json:"venue"`
	Limits     Limits     `json:"limits"`
	// VenueID and VenueVersion name the reusable venue (and its version)
	// the event's venue was copied from, if any.
	VenueID      string `json:"venueId,omitempty"`
	VenueVersion int    `json:"venueVersion,omitempty"`
}

// Category returns the category with the given id.
func (e *Event) Category(id string) (Category, bool) {
	for _, c := range e.Categories {
		if c.ID == id {
			return c, true
		}
	}
	return Category{}, false
}

// Validate checks an event's shape: ids, names, categories, sections and limits.
// It lists every problem at once.
func (e *Event) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if !ValidID(e.ID) {
		add("id %q must match [A-Za-z0-9._-]{1,%d}", e.ID, IDLenMax)
	}
	if e.Name == "" || len(e.Name) > NameLenMax {
		add("name must be 1..%d bytes", NameLenMax)
	}
	if len(e.Type) > NameLenMax || len(e.Location) > NameLenMax || len(e.Organiser) > IDLenMax {
		add("type and location must be at most %d bytes, organiser at most %d", NameLenMax, IDLenMax)
	}
	if len(e.Categories) == 0 || len(e.Categories) > CategoriesMax {
		add("categories: 1..%d required", CategoriesMax)
	}
	cats := make(map[string]bool, len(e.Categories))
	for _, c := range e.Categories {
		switch {
		case !ValidID(c.ID):
			add("category id %q is not a valid id", c.ID)
		case cats[c.ID]:
			add("category %q appears twice", c.ID)
		}
		cats[c.ID] = true
		if len(c.Name) > NameLenMax {
			add("category %q: name longer than %d bytes", c.ID, NameLenMax)
		}
		if c.PriceCents < 0 {
			add("category %q: priceCents must not be negative", c.ID)
		}
	}
	validateLayout(e.Venue, cats, add)
	if e.VenueID != "" && !ValidID(e.VenueID) || e.VenueVersion < 0 || e.VenueVersion > VenueVersionsMax || e.VenueID == "" && e.VenueVersion != 0 {
		add("venueId %q must be a valid id and venueVersion 1..%d", e.VenueID, VenueVersionsMax)
	}
	if e.Limits.MaxSeatsPerBuyer < 1 || e.Limits.MaxSeatsPerBuyer > MaxSeatsPerBuyerMax {
		add("limits.maxSeatsPerBuyer must be 1..%d", MaxSeatsPerBuyerMax)
	}
	if e.Limits.HoldTTLSeconds < 1 || e.Limits.HoldTTLSeconds > HoldTTLMax {
		add("limits.holdTTLSeconds must be 1..%d", HoldTTLMax)
	}
	if len(probs) > 0 {
		return Errorf(CodeInvalidArgument, "invalid event: %s", strings.Join(probs, "; "))
	}
	return nil
}

// Seat is one seat of an event and who has it.
type Seat struct {
	ID       string    `json:"id"`
	Category string    `json:"category"`
	State    SeatState `json:"-"`
	Hold     string    `json:"hold,omitempty"`
	Order    string    `json:"order,omitempty"`
	// Flags are the section's flags of the seat, e.g. "accessible".
	Flags []string `json:"flags,omitempty"`
}

// Hold is a time-limited claim of one buyer on some seats of one event.
type Hold struct {
	ID          string    `json:"id"`
	Event       string    `json:"event"`
	Buyer       string    `json:"buyer"`
	Seats       []string  `json:"seats"`
	CreatedAtMs int64     `json:"-"`
	ExpiresAtMs int64     `json:"-"`
	State       HoldState `json:"-"`
	Order       string    `json:"order,omitempty"`
}

// Order is a buyer's purchase of the seats of a hold.
type Order struct {
	ID          string     `json:"id"`
	Event       string     `json:"event"`
	Hold        string     `json:"hold"`
	Buyer       string     `json:"buyer"`
	Seats       []string   `json:"seats"`
	AmountCents int64      `json:"amountCents"`
	PaymentRef  string     `json:"paymentRef,omitempty"`
	CreatedAtMs int64      `json:"-"`
	State       OrderState `json:"-"`
	// Checkout: the payment method, and how long the charge may be in
	// flight (its seats stay taken until then).
	PaymentMethod string `json:"-"`
	LeaseUntilMs  int64  `json:"-"`
	// FailReason says why a checkout failed; RefundRef is the gateway's
	// reference of the refund of a cancelled order (or of a charge that
	// could not be kept).
	FailReason string `json:"-"`
	RefundRef  string `json:"-"`
}

// CategoryCount is the state of one category's seats.
type CategoryCount struct {
	Category string `json:"id"`
	Capacity int    `json:"capacity"`
	Free     int    `json:"free"`
	Held     int    `json:"held"`
	Sold     int    `json:"sold"`
}

// Node is a member of the cluster and where to reach it.
type Node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raftAddr"`
	HTTPAddr string `json:"httpAddr"`
}

// Charge is a payment through a gateway.
type Charge struct {
	// Ref is the gateway's reference of the charge (a PaymentIntent id).
	Ref            string
	IdempotencyKey string
	AmountCents    int64
	// Refunded is set once the charge has been refunded in full.
	Refunded bool
}

// PaymentGateway charges buyers and refunds them. Every call carries an
// idempotency key, so that a call repeated after a lost answer is never a
// second charge or a second refund: the gateway answers it as it answered
// the first.
//
// Errors: ErrPaymentDeclined when the payment method was refused (nothing
// was charged); ErrPaymentUnknown when the outcome is not known (a timeout,
// an outage: the charge may or may not have happened — look it up with the
// same key, never charge again with a new one); ErrNotFound from Lookup
// when no charge was made with the key.
type PaymentGateway interface {
	Charge(ctx context.Context, idempotencyKey string, amountCents int64, paymentMethod string) (Charge, error)
	// Refund refunds a charge in full and returns the refund's reference.
	Refund(ctx context.Context, idempotencyKey string, chargeRef string) (string, error)
	// Lookup finds the charge made with the key.
	Lookup(ctx context.Context, idempotencyKey string) (Charge, error)
}

// requestIDKey is the context key of RequestID.
type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the client request it serves
// (the X-Request-Id the HTTP layer gives every request), so that log lines
// further down (the checkout saga's) name the request they belong to.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
