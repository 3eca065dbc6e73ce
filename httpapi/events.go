package httpapi

import (
	"context"
	"strconv"

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

func (s *Server) listEvents(ctx *fasthttp.RequestCtx) {
	limit := pageDefault
	if v := ctx.QueryArgs().Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > pageMax {
			writeProblem(ctx, boxoffice.CodeInvalidArgument, "limit must be 1.."+strconv.Itoa(pageMax))
			return
		}
		limit = n
	}
	var out []eventJSON
	for i := 0; i < s.node.ShardCount(); i++ {
		evs, err := s.node.Store(i).Events("", pageMax)
		if err != nil {
			writeError(ctx, err)
			return
		}
		for _, e := range evs {
			out = append(out, eventOut(e))
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	writeJSON(ctx, 200, map[string]any{"events": out})
}

func (s *Server) createEvent(ctx *fasthttp.RequestCtx) {
	p, err := s.require(ctx, RoleOrganiser, RoleAdmin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var in eventJSON
	if err := readJSON(ctx, &in); err != nil {
		writeError(ctx, err)
		return
	}
	ev, err := in.toEvent()
	if err != nil {
		writeError(ctx, err)
		return
	}
	ev.Organiser = p.Subject
	shard := s.node.ShardOfEvent(ev.ID)
	s.write(ctx, shard, func(cctx context.Context) error {
		if _, err := s.node.Store(shard).Event(ev.ID); err == nil {
			return boxoffice.Errorf(boxoffice.CodeEventExists, "event %q exists", ev.ID)
		}
		res, err := s.propose(cctx, shard, &fsm.CreateEvent{Event: ev})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 201, eventOut(res.Event))
		return nil
	})
}

func (s *Server) updateEvent(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "event", id) {
		return
	}
	p, err := s.require(ctx, RoleOrganiser, RoleAdmin)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var in eventJSON
	if err := readJSON(ctx, &in); err != nil {
		writeError(ctx, err)
		return
	}
	if in.ID != "" && in.ID != id {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "the body's id differs from the path's")
		return
	}
	in.ID = id
	ev, err := in.toEvent()
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(id)
	s.write(ctx, shard, func(cctx context.Context) error {
		cur, err := s.node.Store(shard).Event(id)
		if err != nil {
			return err
		}
		if p.Role != RoleAdmin && cur.Organiser != p.Subject {
			return boxoffice.Errorf(boxoffice.CodeForbidden, "event %q belongs to another organiser", id)
		}
		res, err := s.propose(cctx, shard, &fsm.UpdateEvent{Event: ev})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, eventOut(res.Event))
		return nil
	})
}

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

func (s *Server) seats(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "event", id) {
		return
	}
	q := ctx.QueryArgs()
	f := fsm.SeatFilter{Section: string(q.Peek("section")), Category: string(q.Peek("category"))}
	if v := q.Peek("status"); len(v) > 0 {
		st, ok := boxoffice.ParseSeatState(string(v))
		if !ok {
			writeProblem(ctx, boxoffice.CodeInvalidArgument, "status must be free, held or sold")
			return
		}
		f.State = &st
	}
	shard := s.node.ShardOfEvent(id)
	s.read(ctx, shard, func() error {
		st := s.node.Store(shard)
		index := st.AppliedIndex()
		seats, err := st.Seats(id, f)
		if err != nil {
			return err
		}
		out := make([]seatJSON, len(seats))
		for i, seat := range seats {
			out[i] = seatJSON{ID: seat.ID, Category: seat.Category, State: seat.State.String()}
		}
		ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(index, 10))
		writeJSON(ctx, 200, map[string]any{"event": id, "index": index, "seats": out})
		return nil
	})
}
