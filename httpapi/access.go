package httpapi

import (
	"context"
	"strings"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// Per-event access. An event's organiser (its owner) and admins may do
// everything on it; other users what a grant gives them (boxoffice.AccessLevel).
// Writes carry the actor into the log (fsm.Authorized, fsm.SetGrant) and the
// state machine checks the grants when it applies them. Reads by a grantee
// are strong: the grant is checked on the leader after a read barrier, so a
// revocation acknowledged anywhere stops them at once on every node.

// OrganiserRoute is a route that acts on one event for its owner, its
// grantees and admins, and the level it needs.
type OrganiserRoute struct {
	Method string
	// Path is the route as the OpenAPI document writes it, after /v1.
	Path string
	// Query is a query the route is selected by ("owners=true"), if any.
	Query string
	Need  boxoffice.AccessLevel
	// OK is the status of a success.
	OK int
	// handle serves the route with the path's parts; nil for a route that
	// another route's handler dispatches (by its query).
	handle func(s *Server, ctx *fasthttp.RequestCtx, p []string)
}

// organiserRoutes is every route checked against per-event access, in one
// place: the router serves them from here and the authorization test walks
// it, so that a route added here without its test fails the test.
var organiserRoutes = []OrganiserRoute{
	{Method: "PATCH", Path: "/events/{event}", Need: boxoffice.AccessManage, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.updateEvent(c, p[1]) }},
	{Method: "GET", Path: "/events/{event}/holds", Need: boxoffice.AccessView, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.eventHolds(c, p[1]) }},
	{Method: "GET", Path: "/events/{event}/orders", Need: boxoffice.AccessView, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.eventOrders(c, p[1]) }},
	// Served by the public seat map's handler, which sees the query.
	{Method: "GET", Path: "/events/{event}/seats", Query: "owners=true", Need: boxoffice.AccessView, OK: 200},
	{Method: "GET", Path: "/events/{event}/report", Need: boxoffice.AccessView, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.report(c, p[1]) }},
	{Method: "GET", Path: "/events/{event}/access", Need: boxoffice.AccessManage, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.listAccess(c, p[1]) }},
	// Granting manage needs the owner; view, manage.
	{Method: "PUT", Path: "/events/{event}/access/{user}", Need: boxoffice.AccessManage, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.putAccess(c, p[1], p[3]) }},
	{Method: "DELETE", Path: "/events/{event}/access/{user}", Need: boxoffice.AccessManage, OK: 204,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.deleteAccess(c, p[1], p[3]) }},
	// Protecting an on-sale with a waiting room (queue.go).
	{Method: "PUT", Path: "/events/{event}/queue", Need: boxoffice.AccessManage, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.protectSale(c, p[1]) }},
	// The order's buyer may cancel it too.
	{Method: "POST", Path: "/orders/{order}/cancel", Need: boxoffice.AccessManage, OK: 200,
		handle: func(s *Server, c *fasthttp.RequestCtx, p []string) { s.cancelOrder(c, p[1]) }},
}

// OrganiserRoutes returns the routes checked against per-event access.
func OrganiserRoutes() []OrganiserRoute {
	out := make([]OrganiserRoute, len(organiserRoutes))
	copy(out, organiserRoutes)
	return out
}

// organiserRoute finds the handler of a method and path (split after /v1/)
// among organiserRoutes.
func (s *Server) organiserRoute(method string, p []string) (handler, bool) {
	for i := range organiserRoutes {
		r := &organiserRoutes[i]
		if r.Method != method || r.handle == nil {
			continue
		}
		pat := strings.Split(r.Path[1:], "/")
		if len(pat) != len(p) {
			continue
		}
		match := true
		for j, seg := range pat {
			if !strings.HasPrefix(seg, "{") && seg != p[j] {
				match = false
				break
			}
		}
		if match {
			return func(c *fasthttp.RequestCtx) { r.handle(s, c, p) }, true
		}
	}
	return nil, false
}

func isAdmin(p Principal) bool { return p.Role == RoleAdmin }

// eventRead serves a read of one event that needs a level of access: the
// caller is checked against the event's grants before fn runs. The owner and
// admins read as any reader (local, or strong on request); anyone else reads
// strongly, on the leader after a read barrier, so that the grant checked is
// the latest.
func (s *Server) eventRead(ctx *fasthttp.RequestCtx, event string, need boxoffice.AccessLevel, fn func(st *fsm.Store) error) {
	if !validPathID(ctx, "event", event) {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	strong, err := strongRead(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(event)
	st := s.node.Store(shard)
	if lvl, err := st.Access(event, p.Subject, isAdmin(p)); err != nil || lvl < boxoffice.AccessOwner {
		strong = true // a grantee, a stranger, or an event this replica has not seen yet
	}
	check := func() error {
		st := s.node.Store(shard)
		if err := checkAccess(st, p, event, need); err != nil {
			return err
		}
		return fn(st)
	}
	if !strong {
		ctx.SetUserValue(userValueShard, shard)
		if err := check(); err != nil {
			writeError(ctx, err)
		}
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		if err := s.node.ReadBarrier(cctx, shard); err != nil {
			return err
		}
		return check()
	})
}

// checkAccess refuses p unless it holds need on event by st's grants (a
// check before proposing or reading: the state machine checks writes again
// when they apply).
func checkAccess(st *fsm.Store, p Principal, event string, need boxoffice.AccessLevel) error {
	lvl, err := st.Access(event, p.Subject, isAdmin(p))
	if err != nil {
		return err
	}
	if lvl < need {
		return accessDenied(p, event, need, lvl)
	}
	return nil
}

// accessDenied says why a caller may not do what needs need on event.
func accessDenied(p Principal, event string, need, have boxoffice.AccessLevel) error {
	if have == boxoffice.AccessNone {
		return boxoffice.Errorf(boxoffice.CodeForbidden, "event %q belongs to another organiser, and %q holds no grant on it", event, p.Subject)
	}
	return boxoffice.Errorf(boxoffice.CodeForbidden, "%q needs %s on event %q and has %s", p.Subject, need, event, have)
}

type grantJSON struct {
	User  string `json:"user"`
	Level string `json:"level"`
}

// listAccess serves GET /v1/events/{event}/access.
func (s *Server) listAccess(ctx *fasthttp.RequestCtx, event string) {
	s.eventRead(ctx, event, boxoffice.AccessManage, func(st *fsm.Store) error {
		index := st.AppliedIndex()
		ev, err := st.Event(event)
		if err != nil {
			return err
		}
		gs, err := st.Grants(event)
		if err != nil {
			return err
		}
		out := make([]grantJSON, len(gs))
		for i, g := range gs {
			out[i] = grantJSON{User: g.User, Level: g.Level.String()}
		}
		s.setIndex(ctx, s.node.ShardOfEvent(event))
		writeJSON(ctx, 200, map[string]any{"event": event, "owner": ev.Organiser, "index": index, "grants": out})
		return nil
	})
}

// readGrantRequest reads the body of PUT /v1/events/{event}/access/{user}.
func readGrantRequest(ctx *fasthttp.RequestCtx) (boxoffice.AccessLevel, error) {
	var in struct {
		Level string `json:"level"`
	}
	if err := readJSON(ctx, &in); err != nil {
		return 0, err
	}
	l, ok := boxoffice.ParseGrantLevel(in.Level)
	if !ok {
		return 0, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "level must be view or manage, not %q", in.Level)
	}
	return l, nil
}

func (s *Server) putAccess(ctx *fasthttp.RequestCtx, event, user string) {
	if !validPathID(ctx, "event", event) || !validPathID(ctx, "user", user) {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	level, err := readGrantRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	// A PUT is the same when repeated: it needs no Idempotency-Key.
	s.setGrant(ctx, p, idempotency{}, event, user, level)
}

func (s *Server) deleteAccess(ctx *fasthttp.RequestCtx, event, user string) {
	if !validPathID(ctx, "event", event) || !validPathID(ctx, "user", user) {
		return
	}
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	s.setGrant(ctx, p, idem, event, user, boxoffice.AccessNone)
}

// setGrant proposes a grant change; the state machine checks the caller's
// right to make it.
func (s *Server) setGrant(ctx *fasthttp.RequestCtx, p Principal, idem idempotency, event, user string, level boxoffice.AccessLevel) {
	shard := s.node.ShardOfEvent(event)
	s.write(ctx, shard, func(cctx context.Context) error {
		_, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.SetGrant{Event: event, Actor: p.Subject, Admin: isAdmin(p), User: user, Level: level})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		if level == boxoffice.AccessNone {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return nil
		}
		writeJSON(ctx, 200, map[string]any{"event": event, "user": user, "level": level.String()})
		return nil
	})
}
