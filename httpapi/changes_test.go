package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// sseStream reads the events of a change stream.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
}

func openChanges(t *testing.T, addr, event string, headers map[string]string, query string) (*http.Response, *sseStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/events/"+event+"/changes"+query, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		return resp, nil
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 1000)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" || ev.event != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return resp, s
}

func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		require.True(t, ok, "the stream ended")
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
	}
	return sseEvent{}
}

type changeMsg struct {
	Index uint64 `json:"index"`
	NowMs int64  `json:"nowMs"`
	Seats []struct {
		ID          string `json:"id"`
		State       string `json:"state"`
		ExpiresAtMs int64  `json:"expiresAtMs"`
	} `json:"seats"`
}

// waitSeat reads messages until one says seat is in state.
func (s *sseStream) waitSeat(t *testing.T, seat, state string) changeMsg {
	t.Helper()
	for {
		ev := s.next(t)
		require.Empty(t, ev.event, "unexpected %s", ev.event)
		var m changeMsg
		require.NoError(t, json.Unmarshal([]byte(ev.data), &m), ev.data)
		require.Equal(t, strconv.FormatUint(m.Index, 10), ev.id, "the event id is the applied index")
		for _, st := range m.Seats {
			if st.ID == seat && st.State == state {
				return m
			}
		}
	}
}

func TestChangeStream(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 1, TuneHTTP: func(cfg *httpapi.Config) {
		cfg.ChangeStreamsMax = 3
		cfg.ChangeHeartbeat = 200 * time.Millisecond
	}})
	org := testcluster.Token("org", httpapi.RoleOrganiser)
	buyer := testcluster.Token("b1", httpapi.RoleBuyer)
	ev := testcluster.Event("live-1", 2, 3, 4)
	ev["limits"].(map[string]any)["holdTTLSeconds"] = 2
	code, body := c.Do(c.Members[0], "POST", "/v1/events", org, ev)
	require.Equal(t, 201, code, "%s", body)

	// A follower serves the stream from its own replica.
	f := c.Follower(0)
	var seatMap struct {
		Index uint64 `json:"index"`
	}
	require.Eventually(t, func() bool {
		code, body = c.Do(f, "GET", "/v1/events/live-1/seats", "", nil)
		return code == 200 && json.Unmarshal(body, &seatMap) == nil
	}, time.Minute, 20*time.Millisecond, "the follower has the event")
	resp, s := openChanges(t, f.HTTPAddr, "live-1", nil, "?from="+strconv.FormatUint(seatMap.Index, 10))
	require.NotNil(t, s)
	assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	code, body = c.Do(c.Members[0], "POST", "/v1/events/live-1/holds", buyer, map[string]any{"seats": []string{"A-1-1", "B-3-4"}})
	require.Equal(t, 201, code, "%s", body)
	held := s.waitSeat(t, "B-3-4", "held")
	require.Len(t, held.Seats, 2)
	assert.Equal(t, "A-1-1", held.Seats[0].ID)
	assert.Positive(t, held.Seats[0].ExpiresAtMs)
	assert.InDelta(t, held.NowMs+2000, held.Seats[0].ExpiresAtMs, 1000, "the hold's expiry: 2 s after it was taken")

	// The hold expires by time; the leader's sweep frees its seats, and
	// the stream says so.
	freed := s.waitSeat(t, "A-1-1", "free")
	assert.Greater(t, freed.Index, held.Index)

	// A reader resuming with Last-Event-ID gets what it missed, from the
	// header rather than ?from=.
	_, again := openChanges(t, f.HTTPAddr, "live-1", map[string]string{"Last-Event-ID": strconv.FormatUint(seatMap.Index, 10)}, "?from=999999999")
	require.NotNil(t, again)
	again.waitSeat(t, "B-3-4", "held")
	again.waitSeat(t, "B-3-4", "free")

	// A reader from an index this replica cannot serve must reload.
	_, ahead := openChanges(t, f.HTTPAddr, "live-1", nil, "?from=999999999")
	require.NotNil(t, ahead)
	reset := ahead.next(t)
	assert.Equal(t, "reset", reset.event)
	assert.Contains(t, reset.data, `"index":`)

	// Three streams are open on the follower (one ended after its reset):
	// wait for the ended one to be let go, then fill the cap.
	require.Eventually(t, func() bool {
		resp, s := openChanges(t, f.HTTPAddr, "live-1", nil, "")
		if s == nil {
			resp.Body.Close()
		}
		return s != nil
	}, time.Minute, 50*time.Millisecond)
	code, body, h := testcluster.DoHeader(f.HTTPAddr, "GET", "/v1/events/live-1/changes", "", nil)
	assert.Equal(t, 503, code)
	assert.Equal(t, "application/problem+json", h.Get("Content-Type"))
	assert.Contains(t, string(body), `"code":"unavailable"`)

	// Bad input: a malformed index, an unknown event.
	code, body = c.Do(c.Members[0], "GET", "/v1/events/live-1/changes?from=-1", "", nil)
	assert.Equal(t, 400, code)
	assert.Contains(t, string(body), `"code":"invalid_argument"`)
	code, body = c.Do(c.Members[0], "GET", "/v1/events/nope/changes", "", nil)
	assert.Equal(t, 404, code)
	assert.Contains(t, string(body), `"code":"event_not_found"`)
}

// A stream ends when the server shuts down, rather than holding Shutdown
// until its deadline.
func TestChangeStreamEndsAtShutdown(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Shards: 1})
	m := c.Members[0]
	code, body := c.Do(m, "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), testcluster.Event("live-2", 1, 2, 2))
	require.Equal(t, 201, code, "%s", body)
	_, s := openChanges(t, m.HTTPAddr, "live-2", nil, "")
	require.NotNil(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	require.NoError(t, m.Server.Shutdown(ctx))
	assert.Less(t, time.Since(start), 30*time.Second, "shutdown waited for the stream")
	for range s.events {
	}
}
