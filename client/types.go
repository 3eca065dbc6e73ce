package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// The shapes of the API (DESIGN.md, "Core shapes"). Times travel as RFC 3339
// strings and are time.Time here; an absent or empty time is the zero
// time.Time.

// Category is a price class of an event's seats.
type Category struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
}

// Section is a block of Rows × SeatsPerRow seats of one category; its seat
// ids are "<section>-<row>-<number>", from 1.
type Section struct {
	ID          string `json:"id"`
	Category    string `json:"category"`
	Rows        int    `json:"rows"`
	SeatsPerRow int    `json:"seatsPerRow"`
	Position    *Point `json:"position,omitempty"`
	// RowSeats, if set, is the seat count of each row; Gaps are seats
	// ("<row>-<number>") that do not exist; Flags mark seats, e.g.
	// {Flag: "accessible", Seats: []string{"1-1"}}.
	RowSeats []int      `json:"rowSeats,omitempty"`
	Gaps     []string   `json:"gaps,omitempty"`
	Flags    []SeatFlag `json:"flags,omitempty"`
}

// SeatFlag marks some seats of a section.
type SeatFlag struct {
	Flag  string   `json:"flag"`
	Seats []string `json:"seats"`
}

// Point is where a section or area sits on the venue's map.
type Point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// Area is a general-admission area: Capacity places, no seat ids. A hold
// asks it for a quantity (HoldRequest.Area) and gets places "GA-<area>-<n>".
type Area struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Capacity int    `json:"capacity"`
	Position *Point `json:"position,omitempty"`
}

// Venue is an event's seat layout: seated sections and general-admission
// areas.
type Venue struct {
	Sections []Section `json:"sections"`
	Areas    []Area    `json:"areas,omitempty"`
}

// VenueCategory is a category of a reusable venue: named, not priced.
type VenueCategory struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// VenueChart is a reusable, versioned venue. CreateVenue and UpdateVenue
// send ID, Name, Location, Categories, Sections and Areas; the server sets
// Version, Owner, UpdatedAt and Capacity.
type VenueChart struct {
	ID         string          `json:"id"`
	Version    int             `json:"version,omitempty"`
	Name       string          `json:"name"`
	Location   string          `json:"location,omitempty"`
	Owner      string          `json:"owner,omitempty"`
	UpdatedAt  string          `json:"updatedAt,omitempty"`
	Categories []VenueCategory `json:"categories"`
	Sections   []Section       `json:"sections"`
	Areas      []Area          `json:"areas,omitempty"`
	Capacity   int             `json:"capacity,omitempty"`
}

// VenuePage is one page of ListVenues.
type VenuePage struct {
	Venues     []VenueChart `json:"venues"`
	NextCursor string       `json:"nextCursor"`
}

// Limits bound what one buyer may do on an event. A zero field is left out
// of a request: the server's default when creating, unchanged when patching.
type Limits struct {
	MaxSeatsPerBuyer int `json:"maxSeatsPerBuyer,omitempty"`
	HoldTTLSeconds   int `json:"holdTTLSeconds,omitempty"`
}

// Availability counts the seats of one category by state.
type Availability struct {
	ID       string `json:"id"`
	Capacity int    `json:"capacity"`
	Free     int    `json:"free"`
	Held     int    `json:"held"`
	Sold     int    `json:"sold"`
}

// Event is an on-sale. CreateEvent sends ID, Name, Type, StartsAt,
// Location, Categories, Venue and Limits; the server sets Organiser (the
// token's subject) and Capacity, and fills Availability on GetEvent.
//
// VenueID (with VenueVersion, 0 for the newest) makes the event from a
// reusable venue instead of Venue; then Categories price the venue's
// categories.
type Event struct {
	ID           string
	Name         string
	Type         string
	StartsAt     time.Time
	Location     string
	Organiser    string
	Categories   []Category
	Venue        Venue
	Limits       Limits
	Capacity     int
	Availability []Availability
	VenueID      string
	VenueVersion int
}

type eventJSON struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Type         string         `json:"type,omitempty"`
	StartsAt     string         `json:"startsAt,omitempty"`
	Location     string         `json:"location,omitempty"`
	Organiser    string         `json:"organiser,omitempty"`
	Categories   []Category     `json:"categories"`
	Venue        Venue          `json:"venue"`
	Limits       *Limits        `json:"limits,omitempty"`
	Capacity     int            `json:"capacity,omitempty"`
	Availability []Availability `json:"availability,omitempty"`
	VenueID      string         `json:"venueId,omitempty"`
	VenueVersion int            `json:"venueVersion,omitempty"`
}

// MarshalJSON writes the wire shape, times in RFC 3339.
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{
		ID: e.ID, Name: e.Name, Type: e.Type, StartsAt: formatTime(e.StartsAt), Location: e.Location,
		Organiser: e.Organiser, Categories: e.Categories, Venue: e.Venue,
		Capacity: e.Capacity, Availability: e.Availability, VenueID: e.VenueID, VenueVersion: e.VenueVersion,
	}
	if e.Limits != (Limits{}) {
		l := e.Limits
		j.Limits = &l
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the wire shape.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := parseTime("startsAt", j.StartsAt)
	if err != nil {
		return err
	}
	*e = Event{
		ID: j.ID, Name: j.Name, Type: j.Type, StartsAt: t, Location: j.Location, Organiser: j.Organiser,
		Categories: j.Categories, Venue: j.Venue, Capacity: j.Capacity, Availability: j.Availability,
		VenueID: j.VenueID, VenueVersion: j.VenueVersion,
	}
	if j.Limits != nil {
		e.Limits = *j.Limits
	}
	return nil
}

// eventInput is what CreateEvent sends: the fields a creator chooses.
func eventInput(e *Event) eventJSON {
	j := eventJSON{
		ID: e.ID, Name: e.Name, Type: e.Type, StartsAt: formatTime(e.StartsAt), Location: e.Location,
		Categories: e.Categories, Venue: e.Venue, VenueID: e.VenueID, VenueVersion: e.VenueVersion,
	}
	if e.Limits != (Limits{}) {
		l := e.Limits
		j.Limits = &l
	}
	return j
}

// EventPatch is a partial update of an event: only the fields that are set
// (non-nil) change. Go 1.26's new(expr) makes a pointer of a value:
// EventPatch{Name: new("Encore")}. A StartsAt pointing at the zero time
// clears it. Categories, Venue and Limits replace the event's whole value:
// set both limits, and once seats are taken sections may only be appended.
type EventPatch struct {
	Name       *string
	Type       *string
	StartsAt   *time.Time
	Location   *string
	Categories []Category
	Venue      *Venue
	Limits     *Limits
}

type eventPatchJSON struct {
	Name       *string    `json:"name,omitempty"`
	Type       *string    `json:"type,omitempty"`
	StartsAt   *string    `json:"startsAt,omitempty"`
	Location   *string    `json:"location,omitempty"`
	Categories []Category `json:"categories,omitempty"`
	Venue      *Venue     `json:"venue,omitempty"`
	Limits     *Limits    `json:"limits,omitempty"`
}

// MarshalJSON writes the fields that are set, times in RFC 3339.
func (p EventPatch) MarshalJSON() ([]byte, error) {
	j := eventPatchJSON{Name: p.Name, Type: p.Type, Location: p.Location, Categories: p.Categories, Venue: p.Venue, Limits: p.Limits}
	if p.StartsAt != nil {
		s := formatTime(*p.StartsAt)
		j.StartsAt = &s
	}
	return json.Marshal(j)
}

// EventQuery filters ListEvents; zero fields do not filter.
type EventQuery struct {
	// Q matches words of the name.
	Q        string
	Type     string
	From, To time.Time
	Location string
	// Cursor continues a listing from an EventPage's NextCursor.
	Cursor string
	// Limit bounds the page; 0 is the server's default.
	Limit int
}

// EventPage is one page of ListEvents.
type EventPage struct {
	Events []Event `json:"events"`
	// NextCursor fetches the next page; empty on the last.
	NextCursor string `json:"nextCursor"`
}

// Seat states as the API spells them (boxoffice.SeatState's String).
const (
	SeatFree = "free"
	SeatHeld = "held"
	SeatSold = "sold"
)

// SeatQuery filters Seats; zero fields do not filter.
type SeatQuery struct {
	Section  string
	Category string
	// Status is SeatFree, SeatHeld or SeatSold.
	Status string
	// Strong asks for a linearizable read (as WithStrongRead does).
	Strong bool
	// Owners asks for the hold or order of every taken seat (the event's
	// organiser or an admin only).
	Owners bool
}

// Seat is one seat and its state.
type Seat struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	State    string `json:"state"`
	// Hold and Order own a held or sold seat, with SeatQuery.Owners.
	Hold  string `json:"hold,omitempty"`
	Order string `json:"order,omitempty"`
	// Flags are the seat's flags, e.g. "accessible".
	Flags []string `json:"flags,omitempty"`
}

// SeatMap is the seats of an event as of the shard's applied Raft Index.
type SeatMap struct {
	Event string `json:"event"`
	Index uint64 `json:"index"`
	Seats []Seat `json:"seats"`
}

// HoldRequest asks for seats, either by id (Seats) or by count (Category,
// Quantity, Adjacent). All or nothing: on seat_unavailable no seat is held.
//
// Area asks a general-admission area for Quantity places instead.
type HoldRequest struct {
	Seats    []string
	Area     string
	Category string
	Quantity int
	// Adjacent asks for Quantity seats next to each other in one row.
	Adjacent bool
	// TTL is how long the hold lasts, rounded up to whole seconds; 0 is
	// the event's holdTTLSeconds.
	TTL time.Duration
}

type holdRequestJSON struct {
	Seats      []string `json:"seats,omitempty"`
	Area       string   `json:"area,omitempty"`
	Category   string   `json:"category,omitempty"`
	Quantity   int      `json:"quantity,omitempty"`
	Adjacent   bool     `json:"adjacent,omitempty"`
	TTLSeconds int      `json:"ttlSeconds,omitempty"`
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// Hold states as the API spells them (boxoffice.HoldState's String).
const (
	HoldActive      = "active"
	HoldCheckingOut = "checking-out"
	HoldReleased    = "released"
	HoldExpired     = "expired"
	HoldPurchased   = "purchased"
)

// Hold is a buyer's time-limited claim on seats.
type Hold struct {
	ID        string
	Event     string
	Buyer     string
	Seats     []string
	CreatedAt time.Time
	ExpiresAt time.Time
	State     string
	// Order is the order the hold became, once purchased.
	Order string
}

type holdJSON struct {
	ID        string   `json:"id"`
	Event     string   `json:"event"`
	Buyer     string   `json:"buyer"`
	Seats     []string `json:"seats"`
	CreatedAt string   `json:"createdAt,omitempty"`
	ExpiresAt string   `json:"expiresAt,omitempty"`
	State     string   `json:"state"`
	Order     string   `json:"order,omitempty"`
}

// MarshalJSON writes the wire shape, times in RFC 3339.
func (h Hold) MarshalJSON() ([]byte, error) {
	return json.Marshal(holdJSON{
		ID: h.ID, Event: h.Event, Buyer: h.Buyer, Seats: h.Seats,
		CreatedAt: formatTime(h.CreatedAt), ExpiresAt: formatTime(h.ExpiresAt), State: h.State, Order: h.Order,
	})
}

// UnmarshalJSON reads the wire shape.
func (h *Hold) UnmarshalJSON(b []byte) error {
	var j holdJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	created, err := parseTime("createdAt", j.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := parseTime("expiresAt", j.ExpiresAt)
	if err != nil {
		return err
	}
	*h = Hold{ID: j.ID, Event: j.Event, Buyer: j.Buyer, Seats: j.Seats, CreatedAt: created, ExpiresAt: expires, State: j.State, Order: j.Order}
	return nil
}

// Order states as the API spells them (boxoffice.OrderState's String).
const (
	OrderPending   = "pending"
	OrderPaid      = "paid"
	OrderCancelled = "cancelled"
	OrderRefunded  = "refunded"
	OrderFailed    = "failed"
)

// Order is a purchase of a hold's seats.
type Order struct {
	ID          string
	Event       string
	Hold        string
	Buyer       string
	Seats       []string
	AmountCents int64
	PaymentRef  string
	CreatedAt   time.Time
	State       string
	// FailReason and RefundRef are in an event's order list (EventOrders).
	FailReason string
	RefundRef  string
}

type orderJSON struct {
	ID          string   `json:"id"`
	Event       string   `json:"event"`
	Hold        string   `json:"hold"`
	Buyer       string   `json:"buyer"`
	Seats       []string `json:"seats"`
	AmountCents int64    `json:"amountCents"`
	PaymentRef  string   `json:"paymentRef,omitempty"`
	CreatedAt   string   `json:"createdAt,omitempty"`
	State       string   `json:"state"`
	FailReason  string   `json:"failReason,omitempty"`
	RefundRef   string   `json:"refundRef,omitempty"`
}

// MarshalJSON writes the wire shape, times in RFC 3339.
func (o Order) MarshalJSON() ([]byte, error) {
	return json.Marshal(orderJSON{
		ID: o.ID, Event: o.Event, Hold: o.Hold, Buyer: o.Buyer, Seats: o.Seats, AmountCents: o.AmountCents,
		PaymentRef: o.PaymentRef, CreatedAt: formatTime(o.CreatedAt), State: o.State,
		FailReason: o.FailReason, RefundRef: o.RefundRef,
	})
}

// UnmarshalJSON reads the wire shape.
func (o *Order) UnmarshalJSON(b []byte) error {
	var j orderJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	created, err := parseTime("createdAt", j.CreatedAt)
	if err != nil {
		return err
	}
	*o = Order{
		ID: j.ID, Event: j.Event, Hold: j.Hold, Buyer: j.Buyer, Seats: j.Seats, AmountCents: j.AmountCents,
		PaymentRef: j.PaymentRef, CreatedAt: created, State: j.State,
		FailReason: j.FailReason, RefundRef: j.RefundRef,
	}
	return nil
}

// Member is a node of the cluster and where to reach it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raftAddr"`
	HTTPAddr string `json:"httpAddr"`
}

// NodeStatus is a member, whether it votes, and the shards it leads.
type NodeStatus struct {
	Member
	Voter bool  `json:"voter"`
	Leads []int `json:"leads"`
}

// ShardStatus is one shard (Raft group) as the answering node sees it.
type ShardStatus struct {
	ID           int      `json:"id"`
	Leader       string   `json:"leader"`
	Replicas     []string `json:"replicas"`
	Voters       []string `json:"voters"`
	Term         uint64   `json:"term"`
	AppliedIndex uint64   `json:"appliedIndex"`
	CommitIndex  uint64   `json:"commitIndex"`
	State        string   `json:"state"`
}

// ClusterStatus is the cluster as Node, the answering node, sees it.
type ClusterStatus struct {
	Node   string        `json:"node"`
	Nodes  []NodeStatus  `json:"nodes"`
	Shards []ShardStatus `json:"shards"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", field, s)
	}
	return t, nil
}

// EventOrdersPage is one page of an event's orders (EventOrders).
type EventOrdersPage struct {
	Event  string  `json:"event"`
	Index  uint64  `json:"index"`
	Orders []Order `json:"orders"`
	// NextCursor fetches the next page; empty on the last.
	NextCursor string `json:"nextCursor"`
}

// EventHoldsPage is one page of an event's holds (EventHolds).
type EventHoldsPage struct {
	Event string `json:"event"`
	Index uint64 `json:"index"`
	Holds []Hold `json:"holds"`
	// NextCursor fetches the next page; empty on the last.
	NextCursor string `json:"nextCursor"`
}
