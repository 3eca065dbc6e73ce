package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// The waiting room of a protected on-sale (fsm/QUEUE.md):
//
//	PUT  /v1/events/{event}/queue           organiser: protect the on-sale {"opensAt","passTTLSeconds","admitPercent"}
//	GET  /v1/events/{event}/queue           the queue's counters (anyone)
//	POST /v1/events/{event}/queue           join: the caller's place, with a place token
//	GET  /v1/events/{event}/queue/me        the caller's place (bearer, or ?place=<place token>);
//	                                        once admitted, with a signed admission pass
//	GET  /v1/events/{event}/queue/stream?place=<place token>   the same, live (Server-Sent Events)
//
// Joins are writes (forwarded to the leader, one small command each, batched
// with others into shared entries); everything else is read from the local
// replica. A hold of a protected event carries the pass in X-Admission-Pass;
// any node checks its signature, event, buyer and expiry itself.

type protectRequest struct {
	OpensAt string `json:"opensAt"`
	// Absent: the default; given, it must be in range (0 is not).
	PassTTLSeconds *int `json:"passTTLSeconds"`
	AdmitPercent   *int `json:"admitPercent"`
}

type queueJSON struct {
	Event          string `json:"event"`
	OpensAt        string `json:"opensAt"`
	PassTTLSeconds int    `json:"passTTLSeconds"`
	AdmitPercent   int    `json:"admitPercent"`
	Opened         bool   `json:"opened"`
	Joined         int64  `json:"joined"`
	Admitted       int64  `json:"admitted"`
	Waiting        int64  `json:"waiting"`
	Outstanding    int64  `json:"admittedNotHolding"`
	SoldOut        bool   `json:"soldOut"`
}

type passJSON struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

type placeJSON struct {
	Event string `json:"event"`
	Buyer string `json:"buyer"`
	// State: waiting, admitted, expired, sold_out.
	State string `json:"state"`
	// Position is 1 for the next to be admitted; null until the opening
	// for those who joined before it (their order is drawn then).
	Position *int64 `json:"position"`
	Early    bool   `json:"early"`
	// EstimatedWaitSeconds is the wait at the admission rate so far; null
	// while unknown.
	EstimatedWaitSeconds *int64    `json:"estimatedWaitSeconds"`
	PlaceToken           string    `json:"placeToken"`
	Pass                 *passJSON `json:"pass,omitempty"`
	Queue                queueJSON `json:"queue"`
}

func queueOut(q *boxoffice.Queue) queueJSON {
	return queueJSON{
		Event: q.Event, OpensAt: rfc3339(q.Config.OpensAtMs), PassTTLSeconds: q.Config.PassTTLSeconds,
		AdmitPercent: q.Config.AdmitPercent, Opened: q.Opened, Joined: q.Joined, Admitted: q.Admitted,
		Waiting: q.Waiting(), Outstanding: q.Outstanding, SoldOut: q.SoldOut,
	}
}

func (s *Server) placeOut(p *boxoffice.Place, q *boxoffice.Queue, nowMs int64) placeJSON {
	out := placeJSON{Event: p.Event, Buyer: p.Buyer, State: p.State.String(), Early: p.Early,
		PlaceToken: s.signer.sign(kindPlace, p.Event, p.Buyer, 0), Queue: queueOut(q)}
	if p.Ahead >= 0 && (p.State == boxoffice.PlaceWaiting || p.State == boxoffice.PlaceSoldOut) {
		pos := p.Ahead + 1
		out.Position = &pos
		if elapsed := nowMs - q.OpenedAtMs; q.Admitted > 0 && elapsed > 0 && p.State == boxoffice.PlaceWaiting {
			wait := pos * elapsed / q.Admitted / 1000
			out.EstimatedWaitSeconds = &wait
		}
	}
	if p.State == boxoffice.PlaceAdmitted {
		out.Pass = &passJSON{Token: s.signer.sign(kindPass, p.Event, p.Buyer, p.PassExpiresAtMs), ExpiresAt: rfc3339(p.PassExpiresAtMs)}
	}
	return out
}

// readProtectRequest reads the body of PUT /v1/events/{event}/queue.
func readProtectRequest(ctx *fasthttp.RequestCtx) (boxoffice.QueueConfig, error) {
	var in protectRequest
	if err := readJSON(ctx, &in); err != nil {
		return boxoffice.QueueConfig{}, err
	}
	cfg := boxoffice.QueueConfig{PassTTLSeconds: boxoffice.DefaultPassTTL, AdmitPercent: boxoffice.DefaultAdmitPercent}
	if in.PassTTLSeconds != nil {
		cfg.PassTTLSeconds = *in.PassTTLSeconds
	}
	if in.AdmitPercent != nil {
		cfg.AdmitPercent = *in.AdmitPercent
	}
	if in.OpensAt == "" {
		return cfg, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "opensAt (RFC 3339) is required")
	}
	t, err := time.Parse(time.RFC3339, in.OpensAt)
	if err != nil {
		return cfg, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "opensAt must be an RFC 3339 time")
	}
	cfg.OpensAtMs = t.UnixMilli()
	return cfg, cfg.Validate()
}

func (s *Server) protectSale(ctx *fasthttp.RequestCtx, event string) {
	if !validPathID(ctx, "event", event) {
		return
	}
	// A PUT: the same request twice has the same effect, so it records no
	// Idempotency-Key.
	// Any caller with manage on the event (a grant may go to a buyer's
	// account), as for the other organiser writes: checked below.
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	cfg, err := readProtectRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(event)
	s.write(ctx, shard, func(cctx context.Context) error {
		// Refuse early (a stranger learns nothing); the state machine
		// checks the grant again when the command applies.
		if _, err := s.node.Store(shard).Event(event); err != nil {
			return err
		}
		if err := checkAccess(s.node.Store(shard), p, event, boxoffice.AccessManage); err != nil {
			return err
		}
		res, err := s.node.Propose(cctx, shard, &fsm.Authorized{Event: event, Actor: p.Subject, Admin: isAdmin(p), Need: boxoffice.AccessManage,
			Command: &fsm.ProtectSale{Event: event, Config: cfg}})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, queueOut(res.Queue))
		return nil
	})
}

func (s *Server) getQueue(ctx *fasthttp.RequestCtx, event string) {
	if !validPathID(ctx, "event", event) {
		return
	}
	shard := s.node.ShardOfEvent(event)
	s.read(ctx, shard, func() error {
		q, err := s.node.Store(shard).Queue(event)
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, queueOut(q))
		return nil
	})
}

// joinQueue gives the caller a place; joining again answers the same place.
// The answer comes once the join is committed: a place acknowledged is
// never lost, whatever happens to the leader.
func (s *Server) joinQueue(ctx *fasthttp.RequestCtx, event string) {
	if !validPathID(ctx, "event", event) {
		return
	}
	// The Idempotency-Key is checked but not recorded: a join is
	// idempotent by itself (the same buyer gets the same place), and
	// recording a million keys would double what each join writes.
	p, _, ok := s.writer(ctx)
	if !ok {
		return
	}
	shard := s.node.ShardOfEvent(event)
	s.write(ctx, shard, func(cctx context.Context) error {
		res, err := s.node.Propose(cctx, shard, &fsm.JoinQueue{Event: event, Buyer: p.Subject})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, s.placeOut(res.Place, res.Queue, s.node.Store(shard).NowMs()))
		return nil
	})
}

// placeBuyer is the buyer a place look-up is about: the bearer token's
// subject, or the buyer a place token names (for the page's stream, which
// cannot send a header).
func (s *Server) placeBuyer(ctx *fasthttp.RequestCtx, event string) (string, error) {
	if tok := ctx.QueryArgs().Peek("place"); len(tok) > 0 {
		ev, buyer, _, ok := s.signer.verify(kindPlace, string(tok))
		if !ok || ev != event {
			return "", boxoffice.Errorf(boxoffice.CodeUnauthorized, "the place token is not valid for event %q", event)
		}
		return buyer, nil
	}
	p, err := s.authenticate(ctx)
	return p.Subject, err
}

func (s *Server) myPlace(ctx *fasthttp.RequestCtx, event string) {
	if !validPathID(ctx, "event", event) {
		return
	}
	buyer, err := s.placeBuyer(ctx, event)
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(event)
	s.read(ctx, shard, func() error {
		out, err := s.lookUpPlace(shard, event, buyer)
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, out)
		return nil
	})
}

// lookUpPlace reads a place from the local replica: two point reads.
func (s *Server) lookUpPlace(shard int, event, buyer string) (placeJSON, error) {
	st := s.node.Store(shard)
	now := max(time.Now().UnixMilli(), st.NowMs())
	p, err := st.Place(event, buyer, now)
	if err != nil {
		return placeJSON{}, err
	}
	q, err := st.Queue(event)
	if err != nil {
		return placeJSON{}, err
	}
	return s.placeOut(p, q, now), nil
}

// Queue streams.
const (
	// queueStreamInterval spaces a stream's look-ups: a position needs no
	// fresher news than this.
	queueStreamInterval = 250 * time.Millisecond
)

// queueStream serves a buyer's place as Server-Sent Events: a message
// whenever it changes (position, admission, sold out), so that the page
// moves to the seat map the moment its buyer is admitted.
func (s *Server) queueStream(ctx *fasthttp.RequestCtx, event string) {
	if !validPathID(ctx, "event", event) {
		return
	}
	buyer, err := s.placeBuyer(ctx, event)
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := s.node.ShardOfEvent(event)
	if _, err := s.lookUpPlace(shard, event, buyer); err != nil {
		writeError(ctx, err)
		return
	}
	if n := s.streams.Add(1); n > int64(s.cfg.ChangeStreamsMax) {
		s.streams.Add(-1)
		writeProblem(ctx, boxoffice.CodeUnavailable, fmt.Sprintf("this node serves %d streams already; retry, or ask another node", s.cfg.ChangeStreamsMax))
		return
	}
	if err := ctx.SetWriteDeadline(time.Now().Add(s.cfg.ChangeStreamMax + 30*time.Second)); err != nil {
		s.streams.Add(-1)
		writeError(ctx, fmt.Errorf("set the stream's write deadline: %w", err))
		return
	}
	s.setIndex(ctx, shard)
	ctx.Response.Header.SetContentType("text/event-stream; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Add(-1)
		s.streamPlace(w, shard, event, buyer)
	})
}

func (s *Server) streamPlace(w *bufio.Writer, shard int, event, buyer string) {
	end := time.NewTimer(s.cfg.ChangeStreamMax)
	defer end.Stop()
	tick := time.NewTicker(queueStreamInterval)
	defer tick.Stop()
	heartbeat := time.NewTicker(s.cfg.ChangeHeartbeat)
	defer heartbeat.Stop()
	fmt.Fprintf(w, "retry: %d\n\n", changeRetryMs)
	if w.Flush() != nil {
		return
	}
	var last []byte
	for {
		out, err := s.lookUpPlace(shard, event, buyer)
		if err != nil {
			return
		}
		out.Queue.Outstanding = 0 // changes without changing this buyer's view
		b, err := json.Marshal(out)
		if err != nil {
			return
		}
		if string(b) != string(last) {
			last = b
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil || w.Flush() != nil {
				return
			}
		}
		if out.State == boxoffice.PlaceAdmitted.String() || out.State == boxoffice.PlaceExpired.String() {
			return // the place will not change again: the page moves on
		}
		select {
		case <-tick.C:
		case <-heartbeat.C:
			if _, err := w.WriteString(": heartbeat\n\n"); err != nil || w.Flush() != nil {
				return
			}
		case <-end.C:
			return
		case <-s.closing:
			return
		}
	}
}

// checkHoldPass refuses a hold of a protected event without a valid
// admission pass for it and its buyer. It reads only local state (whether
// the event is protected) and the pass itself.
func (s *Server) checkHoldPass(ctx *fasthttp.RequestCtx, event, buyer string) error {
	shard := s.node.ShardOfEvent(event)
	if _, err := s.node.Store(shard).Queue(event); boxoffice.CodeOf(err) == boxoffice.CodeQueueNotFound {
		return nil
	} else if err != nil {
		return err
	}
	reason, err := s.signer.checkPass(string(ctx.Request.Header.Peek(headerPass)), event, buyer, time.Now())
	if err != nil && !forwarded(ctx) {
		s.metrics.passRejections.WithLabelValues(string(reason)).Inc()
	}
	return err
}
