package httpapi

import (
	"bufio"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// The live seat map: GET /v1/events/{event}/changes is a stream of
// Server-Sent Events, one per applied batch that changed the event's seats,
// read from this node's own replica (fsm.Feed). Each event's id is the
// shard's applied index after the batch, so a browser's EventSource resumes
// with Last-Event-ID after a reconnect; a reader too far behind gets
// `event: reset` and reloads the seat map (whose "index" it resumes from).
//
//	id: 1234
//	data: {"index":1234,"nowMs":…,"seats":[{"id":"A-1-1","state":"held","expiresAtMs":…}]}

// Limits of the change streams.
const (
	// changeBatchSeatsMax bounds the seats one message carries.
	changeBatchSeatsMax = 4096
	// changeMinInterval spaces a stream's reads of the feed: during an
	// on-sale a batch is applied every few milliseconds, and one message a
	// tenth of a second is live enough for a seat map.
	changeMinInterval = 100 * time.Millisecond
	// changeRetryMs is the reconnection delay the stream asks EventSource for.
	changeRetryMs = 1000
)

// changes serves an event's change stream.
func (s *Server) changes(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "event", id) {
		return
	}
	shard := s.node.ShardOfEvent(id)
	st := s.node.Store(shard)
	if _, err := st.Layout(id); err != nil {
		writeError(ctx, err)
		return
	}
	from, ok, err := changesFrom(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if !ok {
		// No index: the reader wants what happens from now on.
		from = st.Feed().Head()
	}
	if n := s.streams.Add(1); n > int64(s.cfg.ChangeStreamsMax) {
		s.streams.Add(-1)
		writeProblem(ctx, boxoffice.CodeUnavailable, fmt.Sprintf("this node serves %d change streams already; retry, or ask another node", s.cfg.ChangeStreamsMax))
		return
	}
	// The server's WriteTimeout would end the stream after 30 s; the
	// stream ends itself at ChangeStreamMax (EventSource reconnects).
	if err := ctx.SetWriteDeadline(time.Now().Add(s.cfg.ChangeStreamMax + 30*time.Second)); err != nil {
		s.streams.Add(-1)
		writeError(ctx, fmt.Errorf("set the stream's write deadline: %w", err))
		return
	}
	ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(st.AppliedIndex(), 10))
	ctx.Response.Header.SetContentType("text/event-stream; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer it
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Add(-1)
		s.streamChanges(w, st, id, from)
	})
}

// changesFrom reads the index a reader has seen: Last-Event-ID (an
// EventSource reconnecting), else ?from=.
func changesFrom(ctx *fasthttp.RequestCtx) (uint64, bool, error) {
	raw := ctx.Request.Header.Peek("Last-Event-ID")
	name := "Last-Event-ID"
	if len(raw) == 0 {
		raw = ctx.QueryArgs().Peek("from")
		name = "from"
	}
	if len(raw) == 0 {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil || len(raw) > 20 {
		return 0, false, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "%s must be an applied index (a non-negative integer)", name)
	}
	return n, true, nil
}

// streamChanges writes the stream until its time is up, the server shuts
// down or the client goes away (a write fails).
func (s *Server) streamChanges(w *bufio.Writer, st *fsm.Store, event string, from uint64) {
	end := time.NewTimer(s.cfg.ChangeStreamMax)
	defer end.Stop()
	heartbeat := time.NewTicker(s.cfg.ChangeHeartbeat)
	defer heartbeat.Stop()

	fmt.Fprintf(w, "retry: %d\n\n", changeRetryMs)
	if w.Flush() != nil {
		return
	}
	cursor, sent := from, from
	buf := make([]byte, 0, 4096)
	for {
		r := st.Feed().Since(cursor, event, changeBatchSeatsMax)
		if r.Reset {
			buf = append(buf[:0], "event: reset\ndata: {\"index\":"...)
			buf = strconv.AppendUint(buf, r.Head, 10)
			buf = append(buf, "}\n\n"...)
			w.Write(buf)
			w.Flush()
			return // the reader reloads the seat map and opens a new stream
		}
		if len(r.Batches) > 0 {
			l, err := st.Layout(event)
			if err != nil {
				return
			}
			for _, b := range r.Batches {
				buf = appendChangeMessage(buf[:0], l, b)
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
			if w.Flush() != nil {
				return
			}
			sent = r.Batches[len(r.Batches)-1].Index
		}
		cursor = r.Head
		if len(r.Batches) > 0 {
			continue // more may be waiting (a read returns a bounded number)
		}
		select {
		case <-r.Wake:
		case <-heartbeat.C:
			// A comment keeps proxies from closing an idle stream and finds
			// a client that went away; an id alone moves the reader's
			// Last-Event-ID past batches of other events, so that a
			// reconnect does not ask for changes long forgotten.
			buf = append(buf[:0], ": heartbeat\n"...)
			if cursor > sent {
				buf = append(buf, "id: "...)
				buf = strconv.AppendUint(buf, cursor, 10)
				buf = append(buf, '\n')
				sent = cursor
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil || w.Flush() != nil {
				return
			}
			continue
		case <-end.C:
			return
		case <-s.closing:
			return
		}
		// Let a burst of batches gather into one message.
		select {
		case <-time.After(changeMinInterval):
		case <-s.closing:
			return
		}
	}
}

// appendChangeMessage writes one batch as an SSE message.
func appendChangeMessage(b []byte, l *boxoffice.Layout, fb fsm.FeedBatch) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, fb.Index, 10)
	b = append(b, "\ndata: {\"index\":"...)
	b = strconv.AppendUint(b, fb.Index, 10)
	b = append(b, `,"nowMs":`...)
	b = strconv.AppendInt(b, fb.NowMs, 10)
	b = append(b, `,"seats":[`...)
	n := 0
	for _, c := range fb.Changes {
		if int(c.Seat) >= l.Span() {
			continue // a seat of a layout this node has not applied yet
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"id":"`...)
		b = l.AppendID(b, int(c.Seat)) // ids need no escaping
		b = append(b, `","state":"`...)
		b = append(b, c.State.String()...)
		b = append(b, '"')
		if c.State == boxoffice.SeatHeld {
			b = append(b, `,"expiresAtMs":`...)
			b = strconv.AppendInt(b, c.ExpiresAtMs, 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n\n"...)
}
