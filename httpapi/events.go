package httpapi

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// Page sizes of list routes.
const (
	pageDefault = 50
	pageMax     = 500
)

// validPathID rejects a malformed id in a path before any lookup.
func validPathID(ctx *fasthttp.RequestCtx, what, id string) bool {
	if !boxoffice.ValidID(id) {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, what+" id must match [A-Za-z0-9._-]{1,64}")
		return false
	}
	return true
}

func strongRead(ctx *fasthttp.RequestCtx) (bool, error) {
	switch c := string(ctx.QueryArgs().Peek("consistency")); c {
	case "", "local":
		return false, nil
	case "strong":
		return true, nil
	default:
		return false, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "consistency must be local or strong, not %q", c)
	}
}

// read serves a read of shard: from local state, or, for
// ?consistency=strong, on the leader after a read barrier.
func (s *Server) read(ctx *fasthttp.RequestCtx, shard int, fn func() error) {
	strong, err := strongRead(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if !strong {
		ctx.SetUserValue(userValueShard, shard)
		if err := fn(); err != nil {
			writeError(ctx, err)
		}
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		if err := s.node.ReadBarrier(cctx, shard); err != nil {
			return err
		}
		return fn()
	})
}

// eventsScanMax bounds the events one search reads per shard.
const eventsScanMax = 10_000

// eventQuery is a search over events: every given criterion must match.
type eventQuery struct {
	q, typ, location string // case-insensitive: substring of name, equal type, substring of location
	fromMs, toMs     int64  // startsAt in [from, to); 0 = open
	cursor           string // the last id of the previous page
	limit            int
}

func parseEventQuery(ctx *fasthttp.RequestCtx) (eventQuery, error) {
	a := ctx.QueryArgs()
	q := eventQuery{
		q:        strings.ToLower(string(a.Peek("q"))),
		typ:      strings.ToLower(string(a.Peek("type"))),
		location: strings.ToLower(string(a.Peek("location"))),
		cursor:   string(a.Peek("cursor")),
		limit:    pageDefault,
	}
	if len(q.q) > boxoffice.NameLenMax || len(q.typ) > boxoffice.NameLenMax || len(q.location) > boxoffice.NameLenMax {
		return q, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "q, type and location are at most %d bytes", boxoffice.NameLenMax)
	}
	if q.cursor != "" && !boxoffice.ValidID(q.cursor) {
		return q, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "cursor is not one this server gave")
	}
	if v := a.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > pageMax {
			return q, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "limit must be 1..%d", pageMax)
		}
		q.limit = n
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"from", &q.fromMs}, {"to", &q.toMs}} {
		if v := a.Peek(f.name); len(v) > 0 {
			t, err := time.Parse(time.RFC3339, string(v))
			if err != nil {
				return q, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "%s must be an RFC 3339 time", f.name)
			}
			*f.dst = t.UnixMilli()
		}
	}
	return q, nil
}

func (q *eventQuery) match(e *boxoffice.Event) bool {
	switch {
	case q.q != "" && !strings.Contains(strings.ToLower(e.Name), q.q):
		return false
	case q.typ != "" && strings.ToLower(e.Type) != q.typ:
		return false
	case q.location != "" && !strings.Contains(strings.ToLower(e.Location), q.location):
		return false
	case q.fromMs != 0 && e.StartsAtMs < q.fromMs:
		return false
	case q.toMs != 0 && e.StartsAtMs >= q.toMs:
		return false
	}
	return true
}

// listEvents searches every shard's events on this node and pages through
// the matches in id order.
func (s *Server) listEvents(ctx *fasthttp.RequestCtx) {
	q, err := parseEventQuery(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var found []*boxoffice.Event
	for i := 0; i < s.node.ShardCount(); i++ {
		evs, err := s.node.Store(i).Events(q.cursor, eventsScanMax)
		if err != nil {
			writeError(ctx, err)
			return
		}
		for _, e := range evs {
			if q.match(e) {
				found = append(found, e)
			}
		}
	}
	slices.SortFunc(found, func(a, b *boxoffice.Event) int { return strings.Compare(a.ID, b.ID) })
	next := ""
	if len(found) > q.limit {
		found = found[:q.limit]
		next = found[len(found)-1].ID
	}
	out := make([]eventJSON, len(found))
	for i, e := range found {
		out[i] = eventOut(e)
	}
	writeJSON(ctx, 200, map[string]any{"events": out, "nextCursor": next})
}

func (s *Server) createEvent(ctx *fasthttp.RequestCtx) {
	p, idem, ok := s.writer(ctx, RoleOrganiser, RoleAdmin)
	if !ok {
		return
	}
	ev, err := readEventRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ev.Organiser = p.Subject
	shard := s.node.ShardOfEvent(ev.ID)
	s.write(ctx, shard, func(cctx context.Context) error {
		if ev.VenueID != "" {
			// Copy the venue's layout into the command, so that the
			// event's shard never reads the venue's again.
			v, err := s.venueFor(cctx, ev.VenueID, ev.VenueVersion)
			if err == nil {
				err = eventFromVenue(&ev, v)
			}
			if err != nil {
				// A retry whose first try created the event gets that
				// answer, whatever the venue has become since.
				res, err := s.storedOr(ctx, cctx, shard, idem, err)
				if err != nil {
					return err
				}
				s.setIndex(ctx, shard)
				writeJSON(ctx, 201, eventOut(res.Event))
				return nil
			}
		}
		// Without a key, refuse an existing id before proposing. With one,
		// the state machine decides: a retry must get its first answer.
		if !idem.on() {
			if _, err := s.node.Store(shard).Event(ev.ID); err == nil {
				return boxoffice.Errorf(boxoffice.CodeEventExists, "event %q exists", ev.ID)
			}
		}
		res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.CreateEvent{Event: ev})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 201, eventOut(res.Event))
		return nil
	})
}

// readEventRequest reads the body of POST /v1/events: the event, validated
// (its organiser is the caller's, set by the handler).
func readEventRequest(ctx *fasthttp.RequestCtx) (boxoffice.Event, error) {
	var in eventJSON
	if err := readJSON(ctx, &in); err != nil {
		return boxoffice.Event{}, err
	}
	return in.toEvent()
}

// readEventPatch reads the body of PATCH /v1/events/{id}; it is validated
// when applied to the current event.
func readEventPatch(ctx *fasthttp.RequestCtx, id string) (eventPatch, error) {
	var in eventPatch
	if err := readJSON(ctx, &in); err != nil {
		return in, err
	}
	if in.ID != nil && *in.ID != id {
		return in, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "the body's id differs from the path's")
	}
	return in, nil
}

// eventPatch is a partial update: the fields present replace the event's.
type eventPatch struct {
	ID         *string               `json:"id"`
	Name       *string               `json:"name"`
	Type       *string               `json:"type"`
	StartsAt   *string               `json:"startsAt"`
	Location   *string               `json:"location"`
	Categories *[]boxoffice.Category `json:"categories"`
	Venue      *boxoffice.Venue      `json:"venue"`
	Limits     *limitsPatch          `json:"limits"`
}

// limitsPatch changes the limits it names and keeps the others.
type limitsPatch struct {
	MaxSeatsPerBuyer *int `json:"maxSeatsPerBuyer"`
	HoldTTLSeconds   *int `json:"holdTTLSeconds"`
}

// apply returns the event with the patch applied, validated.
func (p *eventPatch) apply(cur boxoffice.Event) (boxoffice.Event, error) {
	e := cur
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&e.Name, p.Name)
	set(&e.Type, p.Type)
	set(&e.Location, p.Location)
	if p.StartsAt != nil {
		e.StartsAtMs = 0
		if *p.StartsAt != "" {
			ms, err := parseStartsAt(*p.StartsAt)
			if err != nil {
				return e, err
			}
			e.StartsAtMs = ms
		}
	}
	if p.Categories != nil {
		e.Categories = *p.Categories
	}
	if p.Venue != nil {
		e.Venue = *p.Venue
		e.Venue.Normalize()
		// The layout is the event's own now, no longer a venue's copy.
		e.VenueID, e.VenueVersion = "", 0
	}
	if p.Limits != nil {
		if p.Limits.MaxSeatsPerBuyer != nil {
			e.Limits.MaxSeatsPerBuyer = *p.Limits.MaxSeatsPerBuyer
		}
		if p.Limits.HoldTTLSeconds != nil {
			e.Limits.HoldTTLSeconds = *p.Limits.HoldTTLSeconds
		}
	}
	return e, e.Validate()
}

func (s *Server) updateEvent(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "event", id) {
		return
	}
	// Any caller: the state machine checks that it may manage the event.
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	in, err := readEventPatch(ctx, id)
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(id)
	s.write(ctx, shard, func(cctx context.Context) error {
		// Read, patch, and propose the whole event on condition that it is
		// still the one read: a concurrent PATCH (or a leader whose replica
		// trails) makes it a conflict, and we read again.
		for attempt := 1; ; attempt++ {
			cur, err := s.node.Store(shard).Event(id)
			if err != nil {
				return err
			}
			// Refuse before validating the patch, so that a stranger learns
			// nothing of the event; the state machine checks again when it
			// applies the update, against the grants of that moment.
			if err := checkAccess(s.node.Store(shard), p, id, boxoffice.AccessManage); err != nil {
				if boxoffice.CodeOf(err) != boxoffice.CodeForbidden {
					return err
				}
				// A retry whose first try applied (before a revocation)
				// gets that answer.
				res, err := s.storedOr(ctx, cctx, shard, idem, err)
				if err != nil {
					return err
				}
				s.setIndex(ctx, shard)
				writeJSON(ctx, 200, eventOut(res.Event))
				return nil
			}
			ev, err := in.apply(*cur)
			if err != nil {
				return err
			}
			update := &fsm.UpdateEvent{Event: ev, Base: fsm.EventHash(cur)}
			res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.Authorized{Event: id, Actor: p.Subject, Admin: isAdmin(p), Need: boxoffice.AccessManage, Command: update})
			if boxoffice.CodeOf(err) == boxoffice.CodeConflict && attempt < patchAttemptsMax {
				continue
			}
			if err != nil {
				return err
			}
			s.setIndex(ctx, shard)
			writeJSON(ctx, 200, eventOut(res.Event))
			return nil
		}
	})
}

// patchAttemptsMax bounds the read-patch-propose rounds of one PATCH.
const patchAttemptsMax = 8

func (s *Server) getEvent(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "event", id) {
		return
	}
	shard := s.node.ShardOfEvent(id)
	s.read(ctx, shard, func() error {
		st := s.node.Store(shard)
		ev, err := st.Event(id)
		if err != nil {
			return err
		}
		counts, err := st.Counts(id)
		if err != nil {
			return err
		}
		out := eventOut(ev)
		out.Availability = counts
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, out)
		return nil
	})
}

// parseSeatFilter reads the query of GET /v1/events/{event}/seats.
func parseSeatFilter(ctx *fasthttp.RequestCtx) (fsm.SeatFilter, error) {
	q := ctx.QueryArgs()
	f := fsm.SeatFilter{Section: string(q.Peek("section")), Category: string(q.Peek("category"))}
	if v := q.Peek("status"); len(v) > 0 {
		st, ok := boxoffice.ParseSeatState(string(v))
		if !ok {
			return f, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "status must be free, held or sold")
		}
		f.State = &st
	}
	return f, nil
}

func (s *Server) seats(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "event", id) {
		return
	}
	f, err := parseSeatFilter(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	switch o := string(ctx.QueryArgs().Peek("owners")); o {
	case "", "false":
	case "true":
		s.seatOwners(ctx, id, f)
		return
	default:
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "owners must be true or false")
		return
	}
	shard := s.node.ShardOfEvent(id)
	s.read(ctx, shard, func() error {
		st := s.node.Store(shard)
		index := st.AppliedIndex()
		layout, seats, err := st.SeatMap(id, f)
		if err != nil {
			return err
		}
		b := appendSeatMap(make([]byte, 0, 64+len(seats)*seatJSONBytes), id, index, layout, seats)
		ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(index, 10))
		ctx.Response.Header.SetContentType("application/json")
		ctx.SetStatusCode(200)
		ctx.Response.SetBodyRaw(b)
		return nil
	})
}

// seatJSONBytes is about what one seat takes in a seat map, to size it.
const seatJSONBytes = 52

// appendSeatMap writes a seat map as encoding/json would write
// {"event":…,"index":…,"seats":[{"id":…,"category":…,"state":…},…]} (a test
// checks), but without a string or a struct per seat: a 100,000-seat map is
// ~5 MB, and encoding/json took 140 ms of CPU for it, most of the on-sale's
// seat-map cost.
func appendSeatMap(b []byte, event string, index uint64, l *boxoffice.Layout, seats []fsm.MapSeat) []byte {
	b = append(b, `{"event":`...)
	b = appendJSONString(b, event)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, `,"seats":[`...)
	for i, seat := range seats {
		if i > 0 {
			b = append(b, ',')
		}
		sec, row, num := l.Section(int(seat.Index))
		b = append(b, `{"id":"`...)
		if l.InArea(int(seat.Index)) {
			b = l.AppendID(b, int(seat.Index)) // "GA-<area>-<n>"
		} else {
			b = append(b, sec.ID...) // an id: nothing to escape
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(row), 10)
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(num), 10)
		}
		b = append(b, `","category":`...)
		b = appendJSONString(b, sec.Category)
		b = append(b, `,"state":"`...)
		b = append(b, seat.State.String()...)
		b = append(b, '"')
		if flags := l.Flags(int(seat.Index)); len(flags) > 0 {
			b = append(b, `,"flags":[`...)
			for i, f := range flags {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, f)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
