package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// Reusable venues. A venue lives in the shard its id hashes to (as an event
// id would): writes go to that shard's leader. An event made from a venue
// reads the venue once, strongly, when it is created, and carries a copy of
// the layout in its CreateEvent command: its holds never read the venue's
// shard, and editing the venue (a new version) never changes the event.

// venuesScanMax bounds the venues one list reads per shard.
const venuesScanMax = 10_000

// venueJSON is a venue on the wire. On a request, version, owner,
// updatedAt and capacity are ignored (the server sets them).
type venueJSON struct {
	ID         string                    `json:"id"`
	Version    int                       `json:"version,omitempty"`
	Name       string                    `json:"name"`
	Location   string                    `json:"location,omitempty"`
	Owner      string                    `json:"owner,omitempty"`
	UpdatedAt  string                    `json:"updatedAt,omitempty"`
	Categories []boxoffice.VenueCategory `json:"categories"`
	Sections   []boxoffice.Section       `json:"sections"`
	Areas      []boxoffice.Area          `json:"areas,omitempty"`
	Capacity   int                       `json:"capacity,omitempty"`
}

func venueOut(v *boxoffice.VenueChart) venueJSON {
	secs := v.Sections
	if secs == nil {
		secs = []boxoffice.Section{}
	}
	return venueJSON{
		ID: v.ID, Version: v.Version, Name: v.Name, Location: v.Location, Owner: v.Owner,
		UpdatedAt: rfc3339(v.UpdatedAtMs), Categories: v.Categories, Sections: secs, Areas: v.Areas,
		Capacity: v.Layout().Capacity(),
	}
}

func (j *venueJSON) toVenue() boxoffice.VenueChart {
	v := boxoffice.VenueChart{
		ID: j.ID, Name: j.Name, Location: j.Location,
		Categories: j.Categories, Sections: j.Sections, Areas: j.Areas,
	}
	// One venue, one value: none and an empty list are the same.
	l := v.Layout()
	l.Normalize()
	v.Sections, v.Areas = l.Sections, l.Areas
	if len(v.Sections) == 0 {
		v.Sections = nil
	}
	return v
}

// readVenueRequest reads the body of POST /v1/venues and PUT
// /v1/venues/{venue} (pathID, which the body's id must match if it has
// one), validated; the owner is the caller's, set by the handler.
func readVenueRequest(ctx *fasthttp.RequestCtx, pathID string) (boxoffice.VenueChart, error) {
	var in venueJSON
	if err := readJSON(ctx, &in); err != nil {
		return boxoffice.VenueChart{}, err
	}
	if pathID != "" {
		if in.ID != "" && in.ID != pathID {
			return boxoffice.VenueChart{}, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "the body's id differs from the path's")
		}
		in.ID = pathID
	}
	v := in.toVenue()
	return v, v.Validate()
}

func (s *Server) createVenue(ctx *fasthttp.RequestCtx) { s.putVenue(ctx, "") }

func (s *Server) updateVenue(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "venue", id) {
		return
	}
	s.putVenue(ctx, id)
}

// putVenue creates a venue (id "") or adds a version of venue id.
func (s *Server) putVenue(ctx *fasthttp.RequestCtx, id string) {
	p, idem, ok := s.writer(ctx, RoleOrganiser, RoleAdmin)
	if !ok {
		return
	}
	v, err := readVenueRequest(ctx, id)
	if err != nil {
		writeError(ctx, err)
		return
	}
	v.Owner = p.Subject
	create := id == ""
	shard := s.node.ShardOfEvent(v.ID)
	s.write(ctx, shard, func(cctx context.Context) error {
		res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.PutVenue{Venue: v, Create: create, Admin: p.Role == RoleAdmin})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		status := 200
		if create {
			status = 201
		}
		writeJSON(ctx, status, venueOut(res.Venue))
		return nil
	})
}

// venueVersionArg reads ?version= (0: the newest).
func venueVersionArg(ctx *fasthttp.RequestCtx) (int, error) {
	v := ctx.QueryArgs().Peek("version")
	if len(v) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 || n > boxoffice.VenueVersionsMax {
		return 0, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "version must be 1..%d", boxoffice.VenueVersionsMax)
	}
	return n, nil
}

func (s *Server) getVenue(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "venue", id) {
		return
	}
	version, err := venueVersionArg(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(id)
	s.read(ctx, shard, func() error {
		v, err := s.node.Store(shard).Venue(id, version)
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, venueOut(v))
		return nil
	})
}

// listVenues lists the newest version of every venue on this node's
// shards, in id order, a page at a time.
func (s *Server) listVenues(ctx *fasthttp.RequestCtx) {
	a := ctx.QueryArgs()
	cursor := string(a.Peek("cursor"))
	if cursor != "" && !boxoffice.ValidID(cursor) {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "cursor is not one this server gave")
		return
	}
	limit := pageDefault
	if v := a.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > pageMax {
			writeProblem(ctx, boxoffice.CodeInvalidArgument, fmt.Sprintf("limit must be 1..%d", pageMax))
			return
		}
		limit = n
	}
	var found []*boxoffice.VenueChart
	for i := 0; i < s.node.ShardCount(); i++ {
		vs, err := s.node.Store(i).Venues(cursor, min(limit+1, venuesScanMax))
		if err != nil {
			writeError(ctx, err)
			return
		}
		found = append(found, vs...)
	}
	slices.SortFunc(found, func(a, b *boxoffice.VenueChart) int { return strings.Compare(a.ID, b.ID) })
	next := ""
	if len(found) > limit {
		found = found[:limit]
		next = found[len(found)-1].ID
	}
	out := make([]venueJSON, len(found))
	for i, v := range found {
		out[i] = venueOut(v)
	}
	writeJSON(ctx, 200, map[string]any{"venues": out, "nextCursor": next})
}

// venueFetchTimeout bounds the read of a venue from another node.
const venueFetchTimeout = 5 * time.Second

// venueFor reads a venue's version (0: the newest) linearizably, for an
// event made from it: on this node after a read barrier if it leads the
// venue's shard, else from the shard's leader over HTTP. A given version
// never changes, so a replica that has it may answer from local state.
func (s *Server) venueFor(cctx context.Context, id string, version int) (*boxoffice.VenueChart, error) {
	shard := s.node.ShardOfEvent(id)
	st := s.node.Store(shard)
	if version != 0 {
		if v, err := st.Venue(id, version); err == nil {
			return v, nil
		}
	}
	if s.node.IsLeader(shard) {
		if err := s.node.ReadBarrier(cctx, shard); err != nil {
			return nil, err
		}
		return st.Venue(id, version)
	}
	leader, ok := s.node.LeaderNode(shard)
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeNoLeader, "the shard of venue %q has no known leader; retry", id)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	uri := "http://" + leader.HTTPAddr + "/v1/venues/" + url.PathEscape(id) + "?consistency=strong"
	if version != 0 {
		uri += "&version=" + strconv.Itoa(version)
	}
	req.SetRequestURI(uri)
	req.Header.SetMethod(fasthttp.MethodGet)
	timeout := venueFetchTimeout
	if d, ok := cctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if err := s.fwd.client(leader.HTTPAddr).DoTimeout(req, resp, timeout); err != nil {
		return nil, boxoffice.Errorf(boxoffice.CodeUnavailable, "read venue %q from node %s: %v", id, leader.ID, err)
	}
	if resp.StatusCode() != 200 {
		var prob problem
		if json.Unmarshal(resp.Body(), &prob) == nil && prob.Code != "" {
			return nil, boxoffice.Errorf(prob.Code, "%s", prob.Detail)
		}
		return nil, boxoffice.Errorf(boxoffice.CodeUnavailable, "read venue %q from node %s: status %d", id, leader.ID, resp.StatusCode())
	}
	var j venueJSON
	if err := json.Unmarshal(resp.Body(), &j); err != nil {
		return nil, fmt.Errorf("decode venue %q from node %s: %w", id, leader.ID, err)
	}
	v := j.toVenue()
	v.Version, v.Owner = j.Version, j.Owner
	return &v, nil
}

// eventFromVenue fills an event's layout and categories from a venue: the
// request prices every category of the venue (names default to the
// venue's), and names no other.
func eventFromVenue(e *boxoffice.Event, v *boxoffice.VenueChart) error {
	priced := make(map[string]boxoffice.Category, len(e.Categories))
	for _, c := range e.Categories {
		if _, dup := priced[c.ID]; dup {
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "category %q appears twice", c.ID)
		}
		priced[c.ID] = c
	}
	cats := make([]boxoffice.Category, 0, len(v.Categories))
	for _, vc := range v.Categories {
		c, ok := priced[vc.ID]
		if !ok {
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "category %q of venue %q has no price", vc.ID, v.ID)
		}
		delete(priced, vc.ID)
		if c.Name == "" {
			c.Name = vc.Name
		}
		cats = append(cats, c)
	}
	if len(priced) > 0 {
		extra := slices.Sorted(maps.Keys(priced))
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "categories %q are not of venue %q", extra, v.ID)
	}
	e.Categories = cats
	e.Venue = v.Layout()
	e.VenueID, e.VenueVersion = v.ID, v.Version
	return e.Validate()
}
