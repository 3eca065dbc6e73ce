package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"boxoffice"
)

// The calls of the API, one method per route. Each takes ctx first and
// honours its deadline across all tries; writes carry an Idempotency-Key
// (see the package doc).

// checkID refuses an id the server would refuse, before it is put in a path
// where an empty or odd one would name another route.
func checkID(what, id string) error {
	// "." and ".." are valid ids but would be cleaned out of the path.
	if !boxoffice.ValidID(id) || id == "." || id == ".." {
		return localError(boxoffice.CodeInvalidArgument,
			fmt.Sprintf("%s id %q must match [A-Za-z0-9._-]{1,%d}", what, id, boxoffice.IDLenMax))
	}
	return nil
}

// withQuery appends the non-empty values of q to path, and consistency=strong
// when ctx asks for a strong read.
func withQuery(ctx context.Context, path string, q url.Values) string {
	if strongRead(ctx) {
		q.Set("consistency", "strong")
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// ListEvents lists events matching q, one page at a time.
func (c *Client) ListEvents(ctx context.Context, q EventQuery) (EventPage, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("q", q.Q)
	set("type", q.Type)
	set("from", formatTime(q.From))
	set("to", formatTime(q.To))
	set("location", q.Location)
	set("cursor", q.Cursor)
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var page EventPage
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events", v), nil, &page)
	return page, err
}

// CreateEvent creates ev (organiser or admin) and returns it as stored.
func (c *Client) CreateEvent(ctx context.Context, ev *Event) (*Event, error) {
	if err := checkID("event", ev.ID); err != nil {
		return nil, err
	}
	var out Event
	if _, err := c.do(ctx, http.MethodPost, "/v1/events", eventInput(ev), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetEvent returns an event with its availability per category.
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	if err := checkID("event", id); err != nil {
		return nil, err
	}
	var out Event
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+id, url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateEvent changes the fields of an event that p sets (its organiser or
// an admin) and returns the event as stored.
func (c *Client) UpdateEvent(ctx context.Context, id string, p EventPatch) (*Event, error) {
	if err := checkID("event", id); err != nil {
		return nil, err
	}
	var out Event
	if _, err := c.do(ctx, http.MethodPatch, "/v1/events/"+id, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Seats returns the seat map of an event, filtered by q.
func (c *Client) Seats(ctx context.Context, event string, q SeatQuery) (SeatMap, error) {
	if err := checkID("event", event); err != nil {
		return SeatMap{}, err
	}
	v := url.Values{}
	if q.Section != "" {
		v.Set("section", q.Section)
	}
	if q.Category != "" {
		v.Set("category", q.Category)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Owners {
		v.Set("owners", "true")
	}
	if q.Strong {
		ctx = WithStrongRead(ctx)
	}
	var out SeatMap
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/seats", v), nil, &out)
	return out, err
}

// Hold holds seats of an event for the token's buyer, all or nothing:
// boxoffice.ErrSeatUnavailable if any is held or sold.
func (c *Client) Hold(ctx context.Context, event string, r HoldRequest) (*Hold, error) {
	if err := checkID("event", event); err != nil {
		return nil, err
	}
	in := holdRequestJSON{Seats: r.Seats, Area: r.Area, Category: r.Category, Quantity: r.Quantity, Adjacent: r.Adjacent, TTLSeconds: seconds(r.TTL)}
	var out Hold
	if _, err := c.do(ctx, http.MethodPost, "/v1/events/"+event+"/holds", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EventOrders returns a page of an event's orders in every state, in id
// order, after cursor ("" for the first; a page's NextCursor for the next):
// for the event's organiser or an admin. limit 0 is the server's default.
func (c *Client) EventOrders(ctx context.Context, event, cursor string, limit int) (EventOrdersPage, error) {
	var out EventOrdersPage
	err := c.eventPage(ctx, event, "orders", cursor, limit, &out)
	return out, err
}

// EventHolds is EventOrders for holds.
func (c *Client) EventHolds(ctx context.Context, event, cursor string, limit int) (EventHoldsPage, error) {
	var out EventHoldsPage
	err := c.eventPage(ctx, event, "holds", cursor, limit, &out)
	return out, err
}

func (c *Client) eventPage(ctx context.Context, event, what, cursor string, limit int, out any) error {
	if err := checkID("event", event); err != nil {
		return err
	}
	v := url.Values{}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/events/"+event+"/"+what, v), nil, out)
	return err
}

// GetHold returns a hold of the token's buyer (any hold for an admin).
func (c *Client) GetHold(ctx context.Context, id string) (*Hold, error) {
	if err := checkID("hold", id); err != nil {
		return nil, err
	}
	var out Hold
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/holds/"+id, url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Release frees seats of a hold at once: the given ones, or all of them
// when none are given. It returns the rest of the hold, or nil when the
// whole hold was released.
func (c *Client) Release(ctx context.Context, hold string, seats ...string) (*Hold, error) {
	if err := checkID("hold", hold); err != nil {
		return nil, err
	}
	var in any
	if len(seats) > 0 {
		in = struct {
			Seats []string `json:"seats"`
		}{seats}
	}
	var out Hold
	status, err := c.do(ctx, http.MethodDelete, "/v1/holds/"+hold, in, &out)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent {
		return nil, nil
	}
	return &out, nil
}

// ExtendHold sets an active hold to expire ttl (rounded up to whole seconds;
// 0 or more than the event's hold TTL mean the event's hold TTL) from now.
// A hold never expires earlier than it did, nor later than
// boxoffice.HoldLifetimeFactor times the event's hold TTL after its
// creation: past that the error is code hold_extension_limit.
func (c *Client) ExtendHold(ctx context.Context, hold string, ttl time.Duration) (*Hold, error) {
	if err := checkID("hold", hold); err != nil {
		return nil, err
	}
	in := struct {
		TTLSeconds int `json:"ttlSeconds"`
	}{seconds(ttl)}
	var out Hold
	if _, err := c.do(ctx, http.MethodPost, "/v1/holds/"+hold+"/extend", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Purchase turns a hold into a paid order, charging paymentMethod (e.g.
// "pm_card_visa"). Errors: payment_declined (the hold stays active),
// hold_expired, hold_not_active. A purchase whose answer was lost is
// retried with the same idempotency key, so the buyer is charged once.
func (c *Client) Purchase(ctx context.Context, hold, paymentMethod string) (*Order, error) {
	if err := checkID("hold", hold); err != nil {
		return nil, err
	}
	in := struct {
		PaymentMethod string `json:"paymentMethod,omitempty"`
	}{paymentMethod}
	var out Order
	if _, err := c.do(ctx, http.MethodPost, "/v1/holds/"+hold+"/purchase", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetOrder returns an order of the token's buyer (any order for an admin).
func (c *Client) GetOrder(ctx context.Context, id string) (*Order, error) {
	if err := checkID("order", id); err != nil {
		return nil, err
	}
	var out Order
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/orders/"+id, url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelOrder cancels an order, freeing its seats, and returns it.
func (c *Client) CancelOrder(ctx context.Context, id string) (*Order, error) {
	if err := checkID("order", id); err != nil {
		return nil, err
	}
	var out Order
	if _, err := c.do(ctx, http.MethodPost, "/v1/orders/"+id+"/cancel", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExchangeSeats gives back the release seats of an order and takes the
// take seats instead, in one step: either both happen or neither.
func (c *Client) ExchangeSeats(ctx context.Context, order string, release, take []string) (*Order, error) {
	if err := checkID("order", order); err != nil {
		return nil, err
	}
	in := struct {
		Release []string `json:"release"`
		Take    []string `json:"take"`
	}{release, take}
	var out Order
	if _, err := c.do(ctx, http.MethodPost, "/v1/orders/"+order+"/exchange", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MyHolds lists the holds of the token's buyer.
func (c *Client) MyHolds(ctx context.Context) ([]Hold, error) {
	var out struct {
		Holds []Hold `json:"holds"`
	}
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/me/holds", url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return out.Holds, nil
}

// MyOrders lists the orders of the token's buyer.
func (c *Client) MyOrders(ctx context.Context) ([]Order, error) {
	var out struct {
		Orders []Order `json:"orders"`
	}
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/me/orders", url.Values{}), nil, &out); err != nil {
		return nil, err
	}
	return out.Orders, nil
}

// Cluster returns the members and shards as the answering node sees them.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, error) {
	var out ClusterStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, &out)
	return out, err
}

// AddMember adds a node to every shard (admin).
func (c *Client) AddMember(ctx context.Context, m Member) error {
	if err := checkID("node", m.ID); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/members", m, nil)
	return err
}

// RemoveMember removes a node from every shard (admin).
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	if err := checkID("node", id); err != nil {
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/cluster/members/"+id, nil, nil)
	return err
}

// TransferLeadership moves the leadership of shard to node to, or to any
// other voter when to is empty (admin).
func (c *Client) TransferLeadership(ctx context.Context, shard int, to string) error {
	if to != "" {
		if err := checkID("node", to); err != nil {
			return err
		}
	}
	in := struct {
		Shard int    `json:"shard"`
		To    string `json:"to,omitempty"`
	}{shard, to}
	_, err := c.do(ctx, http.MethodPost, "/v1/cluster/transfer-leadership", in, nil)
	return err
}

// CreateVenue creates a reusable venue, version 1 (organiser or admin).
func (c *Client) CreateVenue(ctx context.Context, v *VenueChart) (*VenueChart, error) {
	if err := checkID("venue", v.ID); err != nil {
		return nil, err
	}
	var out VenueChart
	if _, err := c.do(ctx, http.MethodPost, "/v1/venues", venueInput(v), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateVenue replaces venue v.ID with a new version (its owner or an
// admin); events made from earlier versions keep theirs.
func (c *Client) UpdateVenue(ctx context.Context, v *VenueChart) (*VenueChart, error) {
	if err := checkID("venue", v.ID); err != nil {
		return nil, err
	}
	var out VenueChart
	if _, err := c.do(ctx, http.MethodPut, "/v1/venues/"+v.ID, venueInput(v), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetVenue returns a venue's version, 0 for the newest.
func (c *Client) GetVenue(ctx context.Context, id string, version int) (*VenueChart, error) {
	if err := checkID("venue", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	if version != 0 {
		q.Set("version", strconv.Itoa(version))
	}
	var out VenueChart
	if _, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/venues/"+id, q), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListVenues lists venues (their newest versions) in id order, after
// cursor ("" for the first page); limit 0 is the server's default.
func (c *Client) ListVenues(ctx context.Context, cursor string, limit int) (VenuePage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page VenuePage
	_, err := c.do(ctx, http.MethodGet, withQuery(ctx, "/v1/venues", q), nil, &page)
	return page, err
}

// venueInput is what CreateVenue and UpdateVenue send: the fields a
// creator chooses.
func venueInput(v *VenueChart) VenueChart {
	return VenueChart{ID: v.ID, Name: v.Name, Location: v.Location, Categories: v.Categories, Sections: v.Sections, Areas: v.Areas}
}
