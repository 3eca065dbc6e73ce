package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
)

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fmt.Errorf("encode answer: %w", err))
		return
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

// readJSON decodes the request body strictly into v: one JSON value of the
// expected shape, no unknown fields, nothing after it.
func readJSON(ctx *fasthttp.RequestCtx, v any) error {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "malformed JSON body: %s", jsonErr(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "malformed JSON body: data after the JSON value")
	}
	return nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
// Ids ([A-Za-z0-9._-]) take the fast path.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func rfc3339(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// Wire shapes. They are the contract of DESIGN.md's "Core shapes".

type eventJSON struct {
	ID         string               `json:"id"`
	Name       string               `json:"name"`
	Type       string               `json:"type,omitempty"`
	StartsAt   string               `json:"startsAt,omitempty"`
	Location   string               `json:"location,omitempty"`
	Organiser  string               `json:"organiser,omitempty"`
	Categories []boxoffice.Category `json:"categories"`
	Venue      boxoffice.Venue      `json:"venue"`
	Limits     *boxoffice.Limits    `json:"limits,omitempty"`
	Capacity   int                  `json:"capacity,omitempty"`
	// VenueID (with VenueVersion, 0: the newest) makes the event from a
	// reusable venue instead of Venue.
	VenueID      string `json:"venueId,omitempty"`
	VenueVersion int    `json:"venueVersion,omitempty"`
	// Availability is per category, on reads.
	Availability []boxoffice.CategoryCount `json:"availability,omitempty"`
}

func (j *eventJSON) toEvent() (boxoffice.Event, error) {
	e := boxoffice.Event{
		ID: j.ID, Name: j.Name, Type: j.Type, Location: j.Location,
		Categories: j.Categories, Venue: j.Venue,
		Limits:  boxoffice.Limits{MaxSeatsPerBuyer: boxoffice.DefaultSeatsPerBuyer, HoldTTLSeconds: boxoffice.DefaultHoldTTL},
		VenueID: j.VenueID, VenueVersion: j.VenueVersion,
	}
	e.Venue.Normalize()
	if j.Limits != nil {
		if j.Limits.MaxSeatsPerBuyer != 0 {
			e.Limits.MaxSeatsPerBuyer = j.Limits.MaxSeatsPerBuyer
		}
		if j.Limits.HoldTTLSeconds != 0 {
			e.Limits.HoldTTLSeconds = j.Limits.HoldTTLSeconds
		}
	}
	if j.StartsAt != "" {
		ms, err := parseStartsAt(j.StartsAt)
		if err != nil {
			return e, err
		}
		e.StartsAtMs = ms
	}
	if j.VenueID != "" {
		// The layout comes from the venue, read on the leader; the event
		// is validated once it is filled in (eventFromVenue).
		switch {
		case len(j.Venue.Sections) > 0 || len(j.Venue.Areas) > 0:
			return e, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "give either venue or venueId, not both")
		case !boxoffice.ValidID(j.VenueID):
			return e, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "venueId must be a venue id")
		case j.VenueVersion < 0 || j.VenueVersion > boxoffice.VenueVersionsMax:
			return e, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "venueVersion must be 1..%d (or absent: the newest)", boxoffice.VenueVersionsMax)
		}
		return e, nil
	}
	if j.VenueVersion != 0 {
		return e, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "venueVersion needs a venueId")
	}
	return e, e.Validate()
}

// parseStartsAt reads an event's start, an RFC 3339 time, as Unix
// milliseconds. The time must fall in the years 0000..9999 in UTC too, as
// answers give it: "9999-12-31T23:00:00-02:00" is a valid RFC 3339 time, but
// in UTC it is in the year 10000, which RFC 3339 cannot write, and the
// event's own answer would be a startsAt that no request may send.
func parseStartsAt(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "startsAt %q is not an RFC 3339 time", s)
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return 0, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "startsAt %q is outside the years 0000..9999 in UTC", s)
	}
	return t.UnixMilli(), nil
}

func eventOut(e *boxoffice.Event) eventJSON {
	l := e.Limits
	return eventJSON{
		ID: e.ID, Name: e.Name, Type: e.Type, Location: e.Location, Organiser: e.Organiser,
		StartsAt: rfc3339(e.StartsAtMs), Categories: e.Categories, Venue: e.Venue, Limits: &l,
		Capacity: e.Venue.Capacity(), VenueID: e.VenueID, VenueVersion: e.VenueVersion,
	}
}

type holdJSON struct {
	ID        string   `json:"id"`
	Event     string   `json:"event"`
	Buyer     string   `json:"buyer"`
	Seats     []string `json:"seats"`
	CreatedAt string   `json:"createdAt"`
	ExpiresAt string   `json:"expiresAt"`
	State     string   `json:"state"`
	Order     string   `json:"order,omitempty"`
}

func holdOut(h *boxoffice.Hold) holdJSON {
	return holdJSON{
		ID: h.ID, Event: h.Event, Buyer: h.Buyer, Seats: h.Seats,
		CreatedAt: rfc3339(h.CreatedAtMs), ExpiresAt: rfc3339(h.ExpiresAtMs),
		State: h.State.String(), Order: h.Order,
	}
}

type orderJSON struct {
	ID          string   `json:"id"`
	Event       string   `json:"event"`
	Hold        string   `json:"hold"`
	Buyer       string   `json:"buyer"`
	Seats       []string `json:"seats"`
	AmountCents int64    `json:"amountCents"`
	PaymentRef  string   `json:"paymentRef,omitempty"`
	CreatedAt   string   `json:"createdAt"`
	State       string   `json:"state"`
}

func orderOut(o *boxoffice.Order) orderJSON {
	return orderJSON{
		ID: o.ID, Event: o.Event, Hold: o.Hold, Buyer: o.Buyer, Seats: o.Seats,
		AmountCents: o.AmountCents, PaymentRef: o.PaymentRef, CreatedAt: rfc3339(o.CreatedAtMs),
		State: o.State.String(),
	}
}
