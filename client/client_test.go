package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// fakeNode is a hand-written fake of a boxoffice node: an httptest server
// that records every request and answers with the test's function.
type fakeNode struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, body []byte)

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

func newFake(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeNode {
	t.Helper()
	f := &fakeNode{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		f.answer(w, r, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) URL() string { return f.srv.URL }

func (f *fakeNode) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeNode) count() int { return len(f.requests()) }

// deadNode is the URL of a loopback port nothing listens on: connecting to
// it is refused.
func deadNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// waits records the waits between tries instead of taking them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// newTestClient builds a client of nodes whose waits are recorded, not
// taken.
func newTestClient(t *testing.T, tune func(*Config), nodes ...string) (*Client, *waits) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Nodes = nodes
	cfg.Token = "tok-1"
	if tune != nil {
		tune(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	w := &waits{}
	c.sleep = w.sleep
	return c, w
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Boxoffice-Index", "7")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, code boxoffice.Code, detail, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "urn:boxoffice:problem:" + string(code), "title": http.StatusText(status),
		"status": status, "detail": detail, "code": code,
	})
}

var eventAnswer = map[string]any{
	"id": "e1", "name": "Event one", "type": "concert", "startsAt": "2026-12-01T20:00:00Z", "location": "Berlin",
	"organiser":    "org1",
	"categories":   []any{map[string]any{"id": "std", "name": "Standard", "priceCents": 5000}},
	"venue":        map[string]any{"sections": []any{map[string]any{"id": "A", "category": "std", "rows": 2, "seatsPerRow": 3}}},
	"limits":       map[string]any{"maxSeatsPerBuyer": 8, "holdTTLSeconds": 300},
	"capacity":     6,
	"availability": []any{map[string]any{"id": "std", "capacity": 6, "free": 4, "held": 1, "sold": 1}},
}

var holdAnswer = map[string]any{
	"id": "h_1", "event": "e1", "buyer": "u1", "seats": []string{"A-1-1", "A-1-2"},
	"createdAt": "2026-11-25T10:00:00.123Z", "expiresAt": "2026-11-25T10:05:00.123Z", "state": "active",
}

var orderAnswer = map[string]any{
	"id": "o_1", "event": "e1", "hold": "h_1", "buyer": "u1", "seats": []string{"A-1-1"},
	"amountCents": 5000, "paymentRef": "ch_1", "createdAt": "2026-11-25T10:01:00Z", "state": "paid",
}

func eventHandler(w http.ResponseWriter, r *http.Request, _ []byte) { writeJSON(w, 200, eventAnswer) }

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = []string{"http://127.0.0.1:8081", "127.0.0.1:8082"}
	require.NoError(t, cfg.Validate())

	bad := Config{
		Nodes:       []string{"ftp://x:1", "http://a:1/v1", "http://a:1", "a:1"},
		Token:       "x\ny",
		Timeout:     0,
		DialTimeout: time.Second,
		MaxAttempts: 0, BackoffMin: time.Second, BackoffMax: time.Millisecond,
		RetryAfterMax: -1, ConnsPerNodeMax: 1, IdleConnsPerNodeMax: 2, ResponseBytesMax: 10,
	}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"ftp://x:1", "http://a:1/v1", "appears twice", "Token", "Timeout 0s", "DialTimeout",
		"MaxAttempts", "BackoffMin", "RetryAfterMax", "IdleConnsPerNodeMax", "ResponseBytesMax"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = New(bad)
	require.Error(t, err, "New validates")

	_, err = New(Config{})
	require.ErrorContains(t, err, "Nodes: 1..64")
}

func TestNewNormalizesNodes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = []string{"127.0.0.1:8081", "http://127.0.0.1:8082/", "https://node3:443"}
	c, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082", "https://node3:443"}, c.Nodes())
}

func TestFailoverOnConnectionRefusedSticksToTheNodeThatAnswers(t *testing.T) {
	good := newFake(t, eventHandler)
	c, w := newTestClient(t, nil, deadNode(t), good.URL())

	ev, err := c.GetEvent(context.Background(), "e1")
	require.NoError(t, err)
	assert.Equal(t, "Event one", ev.Name)
	assert.Empty(t, w.all(), "the first pass over the nodes after a refused connection does not wait")

	_, err = c.GetEvent(context.Background(), "e1")
	require.NoError(t, err)
	assert.Equal(t, 2, good.count())
	assert.Equal(t, 1, c.sel.current(2), "the client sticks to the node that answered")
}

func TestFailoverOn503And504(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   boxoffice.Code
	}{
		{503, boxoffice.CodeNoLeader},
		{503, boxoffice.CodeNotLeader},
		{503, boxoffice.CodeUnavailable},
		{504, boxoffice.CodeTimeout},
	} {
		t.Run(string(tc.code), func(t *testing.T) {
			busy := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				writeProblem(w, tc.status, tc.code, "try elsewhere", "1")
			})
			good := newFake(t, eventHandler)
			c, w := newTestClient(t, func(cfg *Config) { cfg.BackoffMin, cfg.BackoffMax = time.Millisecond, 10*time.Millisecond }, busy.URL(), good.URL())

			_, err := c.GetEvent(context.Background(), "e1")
			require.NoError(t, err)
			_, err = c.GetEvent(context.Background(), "e1")
			require.NoError(t, err)
			assert.Equal(t, 1, busy.count(), "the second call starts at the node that answered")
			assert.Equal(t, 2, good.count())
			waits := w.all()
			require.Len(t, waits, 1)
			assert.LessOrEqual(t, waits[0], time.Millisecond, "the next node is tried after the short backoff, not the busy node's Retry-After")
		})
	}
}

func TestPlainText503IsRetriedToo(t *testing.T) {
	// fasthttp answers 503 in plain text when its concurrency limit is hit.
	busy := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Error(w, "The connection cannot be served because Server.Concurrency limit exceeded", http.StatusServiceUnavailable)
	})
	good := newFake(t, eventHandler)
	c, _ := newTestClient(t, nil, busy.URL(), good.URL())
	_, err := c.GetEvent(context.Background(), "e1")
	require.NoError(t, err)
	assert.Equal(t, 1, good.count())
}

func TestIdempotencyKeyReusedAcrossRetriesOfOneCall(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	node := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		tries[key]++
		n := tries[key]
		mu.Unlock()
		if n <= 2 {
			writeProblem(w, 503, boxoffice.CodeUnavailable, "outcome unknown", "")
			return
		}
		writeJSON(w, 201, holdAnswer)
	})
	other := newFake(t, node.answer)
	c, _ := newTestClient(t, nil, node.URL(), other.URL())
	req := HoldRequest{Seats: []string{"A-1-1", "A-1-2"}}

	_, err := c.Hold(context.Background(), "e1", req)
	require.NoError(t, err)
	_, err = c.Hold(context.Background(), "e1", req)
	require.NoError(t, err)

	var keys []string
	for _, r := range append(node.requests(), other.requests()...) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
	}
	require.Len(t, keys, 6)
	distinct := map[string]int{}
	for _, k := range keys {
		require.NotEmpty(t, k)
		distinct[k]++
	}
	assert.Len(t, distinct, 2, "one key per call: %v", keys)
	for k, n := range distinct {
		assert.Equal(t, 3, n, "key %s is sent with each of the three tries of its call", k)
	}

	// The caller's key is sent as given, on every try.
	ctx := WithIdempotencyKey(context.Background(), "checkout-42")
	_, err = c.Hold(ctx, "e1", req)
	require.NoError(t, err)
	mu.Lock()
	assert.Equal(t, 3, tries["checkout-42"])
	mu.Unlock()
}

func TestReadsCarryNoIdempotencyKeyAndBadKeysAreRefused(t *testing.T) {
	node := newFake(t, eventHandler)
	c, _ := newTestClient(t, nil, node.URL())
	_, err := c.GetEvent(context.Background(), "e1")
	require.NoError(t, err)
	require.Len(t, node.requests(), 1)
	assert.Empty(t, node.requests()[0].Header.Get("Idempotency-Key"))

	for _, key := range []string{strings.Repeat("k", boxoffice.IdempotencyKeyLenMax+1), "with space", "é"} {
		_, err = c.Hold(WithIdempotencyKey(context.Background(), key), "e1", HoldRequest{Seats: []string{"A-1-1"}})
		var e *Error
		require.ErrorAs(t, err, &e, key)
		assert.Equal(t, 0, e.Status, "refused before sending")
		assert.True(t, errors.Is(err, boxoffice.ErrInvalidArgument))
	}
	assert.Len(t, node.requests(), 1, "nothing was sent")
}

func TestRetryAfterIsHonouredButCapped(t *testing.T) {
	busy := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeProblem(w, 503, boxoffice.CodeNoLeader, "election", "120")
	}
	a, b := newFake(t, busy), newFake(t, busy)
	c, w := newTestClient(t, func(cfg *Config) {
		cfg.MaxAttempts = 3
		cfg.BackoffMin, cfg.BackoffMax = time.Millisecond, 10*time.Millisecond
		cfg.RetryAfterMax = 300 * time.Millisecond
	}, a.URL(), b.URL())

	_, err := c.GetEvent(context.Background(), "e1")
	require.Error(t, err)
	waits := w.all()
	require.Len(t, waits, 2)
	assert.LessOrEqual(t, waits[0], time.Millisecond, "the other node is tried without waiting for the first one's Retry-After")
	assert.Equal(t, 300*time.Millisecond, waits[1], "once both nodes asked to wait, Retry-After is honoured, capped")
	assert.Equal(t, 2, a.count(), "tries alternate between the nodes")
	assert.Equal(t, 1, b.count())
	assert.ErrorIs(t, err, boxoffice.ErrNoLeader)
	assert.ErrorContains(t, err, "gave up after 3 tries")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.True(t, e.Retryable)
	assert.Equal(t, 503, e.Status)
}

func TestBackoffGrowsExponentiallyWithJitter(t *testing.T) {
	busy := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeProblem(w, 503, boxoffice.CodeNoLeader, "election", "")
	})
	c, w := newTestClient(t, func(cfg *Config) {
		cfg.MaxAttempts = 6
		cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	}, busy.URL())
	_, err := c.GetEvent(context.Background(), "e1")
	require.Error(t, err)
	got := w.all()
	require.Len(t, got, 5)
	for i, d := range []time.Duration{10, 20, 40, 50, 50} {
		d *= time.Millisecond
		assert.GreaterOrEqual(t, got[i], d/2, "wait %d", i)
		assert.LessOrEqual(t, got[i], d, "wait %d", i)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, 3*time.Second, parseRetryAfter("3", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("-1", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	assert.Equal(t, RetryAfterMaxMax, parseRetryAfter("99999999999", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, time.Duration(0), parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
}

func TestContextDeadlineBoundsAHangingNode(t *testing.T) {
	release := make(chan struct{})
	hang := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c, _ := newTestClient(t, nil, hang.URL())
	c.sleep = sleepCtx

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetEvent(ctx, "e1")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, hang.count(), "a call whose context is done is not retried")
}

func TestContextDeadlineCutsTheWaitForRetryAfter(t *testing.T) {
	busy := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeProblem(w, 503, boxoffice.CodeNoLeader, "election", "30")
	})
	c, w := newTestClient(t, func(cfg *Config) { cfg.RetryAfterMax = time.Minute }, busy.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.GetEvent(ctx, "e1")
	require.Error(t, err)
	assert.ErrorIs(t, err, boxoffice.ErrNoLeader, "the last answer is returned")
	assert.ErrorContains(t, err, "after the context's deadline")
	assert.Empty(t, w.all(), "no wait that would outlast the context")
	assert.Equal(t, 1, busy.count())
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	busy := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeProblem(w, 503, boxoffice.CodeUnavailable, "busy", "1")
	})
	c, _ := newTestClient(t, nil, busy.URL())
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(ctx context.Context, d time.Duration) error {
		cancel() // the caller gives up during the wait
		return sleepCtx(ctx, d)
	}
	_, err := c.GetEvent(ctx, "e1")
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, &boxoffice.Error{Code: boxoffice.CodeUnavailable}, "the last answer is kept")
	assert.Equal(t, 1, busy.count())
}

func TestPerTryTimeoutMovesToTheNextNode(t *testing.T) {
	release := make(chan struct{})
	hang := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	good := newFake(t, eventHandler)
	c, _ := newTestClient(t, func(cfg *Config) {
		cfg.Timeout, cfg.DialTimeout = 200*time.Millisecond, 100*time.Millisecond
	}, hang.URL(), good.URL())
	_, err := c.GetEvent(context.Background(), "e1")
	require.NoError(t, err)
	assert.Equal(t, 1, hang.count())
	assert.Equal(t, 1, good.count())
}

// A node that accepts a write but never answers it (paused, or cut off
// after the connection was made) holds the write only WriteFailoverAfter,
// not Timeout: the write moves on with the same Idempotency-Key. The last
// node left is waited for as long as Timeout allows, and reads are not
// moved.
func TestWriteMovesOnFromAFrozenNode(t *testing.T) {
	release := make(chan struct{})
	frozen := func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	hang := newFake(t, frozen)
	t.Cleanup(func() { close(release) })
	good := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Method == http.MethodGet {
			eventHandler(w, r, nil)
			return
		}
		writeJSON(w, 201, holdAnswer)
	})
	c, _ := newTestClient(t, func(cfg *Config) {
		// Timeout is far beyond the test's deadline: only the failover
		// can end the first try in time.
		cfg.WriteFailoverAfter = 50 * time.Millisecond
	}, hang.URL(), good.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-1"}})
	require.NoError(t, err)
	require.Equal(t, 1, hang.count())
	require.Equal(t, 1, good.count())
	key := hang.requests()[0].Header.Get("Idempotency-Key")
	require.NotEmpty(t, key)
	assert.Equal(t, key, good.requests()[0].Header.Get("Idempotency-Key"), "the second try is the same write")

	// The only node left is not abandoned early: the call ends with the
	// caller's deadline, after one try.
	solo, _ := newTestClient(t, func(cfg *Config) { cfg.WriteFailoverAfter = 50 * time.Millisecond }, hang.URL())
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	_, err = solo.Hold(sctx, "e1", HoldRequest{Seats: []string{"A-1-1"}})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 2, hang.count(), "one try: nothing to move to")

	// A read is not moved either: it waits for its answer.
	reader, _ := newTestClient(t, func(cfg *Config) { cfg.WriteFailoverAfter = 50 * time.Millisecond }, hang.URL(), good.URL())
	rctx, rcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer rcancel()
	_, err = reader.GetEvent(rctx, "e1")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 3, hang.count())
	assert.Equal(t, 1, good.count(), "the read never reached the second node")
}

func TestProblemsBecomeTypedErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   boxoffice.Code
		is     error
	}{
		{409, boxoffice.CodeSeatUnavailable, boxoffice.ErrSeatUnavailable},
		{410, boxoffice.CodeHoldExpired, boxoffice.ErrHoldExpired},
		{404, boxoffice.CodeHoldNotFound, boxoffice.ErrHoldNotFound},
		{409, boxoffice.CodeHoldNotActive, boxoffice.ErrHoldNotActive},
		{400, boxoffice.CodeInvalidArgument, boxoffice.ErrInvalidArgument},
		{402, boxoffice.CodePaymentDeclined, &boxoffice.Error{Code: boxoffice.CodePaymentDeclined}},
		{422, boxoffice.CodeIdempotencyReused, &boxoffice.Error{Code: boxoffice.CodeIdempotencyReused}},
		{401, boxoffice.CodeUnauthorized, &boxoffice.Error{Code: boxoffice.CodeUnauthorized}},
	} {
		t.Run(string(tc.code), func(t *testing.T) {
			node := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				writeProblem(w, tc.status, tc.code, "the detail", "")
			})
			other := newFake(t, eventHandler)
			c, _ := newTestClient(t, nil, node.URL(), other.URL())
			_, err := c.Hold(context.Background(), "e1", HoldRequest{Seats: []string{"A-1-1"}})
			require.Error(t, err)

			assert.ErrorIs(t, err, tc.is)
			assert.NotErrorIs(t, err, boxoffice.ErrEventNotFound)
			assert.NotErrorIs(t, err, &boxoffice.Error{Code: tc.code, Detail: "another detail"},
				"a target with a detail is not a sentinel")
			assert.ErrorIs(t, err, &Error{Code: tc.code})
			assert.Equal(t, tc.code, boxoffice.CodeOf(err))

			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, Error{Status: tc.status, Code: tc.code, Title: http.StatusText(tc.status), Detail: "the detail"}, *e)
			assert.Contains(t, err.Error(), fmt.Sprintf("%d %s: the detail", tc.status, tc.code))
			assert.Equal(t, 1, node.count(), "not retried")
			assert.Equal(t, 0, other.count())
		})
	}
}

func TestNonProblemAnswersAreInternalErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		detail      string
	}{
		{"plain text", "text/plain", "boom\n", "boom"},
		{"json without a code", "application/json", `{"error":"x"}`, `{"error":"x"}`},
		{"long html", "text/html", strings.Repeat("x", 2000), strings.Repeat("x", problemDetailBytesMax) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(500)
				_, _ = io.WriteString(w, tc.body)
			})
			c, _ := newTestClient(t, nil, node.URL())
			_, err := c.GetEvent(context.Background(), "e1")
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, Error{Status: 500, Code: boxoffice.CodeInternal, Title: "Internal Server Error", Detail: tc.detail}, *e)
			assert.Equal(t, 1, node.count())
		})
	}
}

func TestMalformedSuccessIsAnError(t *testing.T) {
	node := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]any{"id": "h_1", "createdAt": "yesterday"})
	})
	c, _ := newTestClient(t, nil, node.URL())
	_, err := c.GetHold(context.Background(), "h_1")
	require.ErrorContains(t, err, `createdAt "yesterday" is not an RFC 3339 time`)
	assert.Equal(t, 1, node.count())
}

func TestOversizedAnswerIsRefused(t *testing.T) {
	node := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeJSON(w, 200, map[string]any{"events": []any{}, "pad": strings.Repeat("x", 4096)})
	})
	c, _ := newTestClient(t, func(cfg *Config) { cfg.ResponseBytesMax = 1024 }, node.URL())
	_, err := c.ListEvents(context.Background(), EventQuery{})
	require.ErrorContains(t, err, "larger than ResponseBytesMax")
}

func TestBadIDsAreRefusedBeforeSending(t *testing.T) {
	node := newFake(t, eventHandler)
	c, _ := newTestClient(t, nil, node.URL())
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"empty event": func() error { _, err := c.GetEvent(ctx, ""); return err },
		"dot-dot":     func() error { _, err := c.GetHold(ctx, ".."); return err },
		"slash":       func() error { _, err := c.Release(ctx, "h/1"); return err },
		"space":       func() error { _, err := c.Purchase(ctx, "h 1", "pm"); return err },
		"node":        func() error { return c.RemoveMember(ctx, "") },
	} {
		err := call()
		var e *Error
		require.ErrorAs(t, err, &e, name)
		assert.Equal(t, boxoffice.CodeInvalidArgument, e.Code, name)
		assert.Equal(t, 0, e.Status, name)
	}
	assert.Equal(t, 0, node.count())
}

func TestWithTokenSharesConnectionsAndNodeChoice(t *testing.T) {
	node := newFake(t, eventHandler)
	c, _ := newTestClient(t, nil, deadNode(t), node.URL())
	c2 := c.WithToken("tok-2")
	ctx := context.Background()
	_, err := c.GetEvent(ctx, "e1")
	require.NoError(t, err)
	_, err = c2.GetEvent(ctx, "e1")
	require.NoError(t, err)
	anon := c.WithToken("")
	_, err = anon.GetEvent(ctx, "e1")
	require.NoError(t, err)

	reqs := node.requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, "Bearer tok-1", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer tok-2", reqs[1].Header.Get("Authorization"))
	assert.Empty(t, reqs[2].Header.Get("Authorization"))
	assert.Same(t, c.http, c2.http)
	assert.Same(t, c.sel, c2.sel)
	assert.Equal(t, 1, c2.sel.current(2), "c2 starts where c moved to")

	_, err = c.WithToken("bad\ntoken").GetEvent(ctx, "e1")
	require.ErrorIs(t, err, boxoffice.ErrInvalidArgument)
	assert.Len(t, node.requests(), 3)
}

func TestConcurrentCallsFailOverTogether(t *testing.T) {
	good := newFake(t, eventHandler)
	c, _ := newTestClient(t, nil, deadNode(t), good.URL(), deadNode(t))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := c.GetEvent(context.Background(), "e1")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 32, good.count())
	assert.Equal(t, 1, c.sel.current(3))
}

// TestRequestShapes checks each call's method, path, query, headers and body
// against the API contract, and the decoding of its answer.
func TestRequestShapes(t *testing.T) {
	var (
		mu     sync.Mutex
		status int
		answer any
	)
	node := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		s, a := status, answer
		mu.Unlock()
		if a == nil {
			w.WriteHeader(s)
			return
		}
		writeJSON(w, s, a)
	})
	c, _ := newTestClient(t, nil, node.URL())
	ctx := context.Background()
	starts := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)

	for _, tc := range []struct {
		name       string
		status     int
		answer     any
		call       func(t *testing.T)
		method     string
		path       string
		query      string
		body       string // JSON; "" for none
		strongRead bool
	}{
		{
			name: "ListEvents", status: 200,
			answer: map[string]any{"events": []any{eventAnswer}, "nextCursor": "c2"},
			call: func(t *testing.T) {
				page, err := c.ListEvents(ctx, EventQuery{Q: "rock night", Type: "concert", From: starts, To: starts.Add(24 * time.Hour),
					Location: "Berlin", Cursor: "c1", Limit: 20})
				require.NoError(t, err)
				require.Len(t, page.Events, 1)
				assert.Equal(t, "c2", page.NextCursor)
				assert.Equal(t, "e1", page.Events[0].ID)
			},
			method: "GET", path: "/v1/events",
			query: "cursor=c1&from=2026-12-01T20%3A00%3A00Z&limit=20&location=Berlin&q=rock+night&to=2026-12-02T20%3A00%3A00Z&type=concert",
		},
		{
			name: "CreateEvent", status: 201, answer: eventAnswer,
			call: func(t *testing.T) {
				ev, err := c.CreateEvent(ctx, &Event{
					ID: "e1", Name: "Event one", Type: "concert", StartsAt: starts, Location: "Berlin",
					Organiser:  "ignored",
					Categories: []Category{{ID: "std", Name: "Standard", PriceCents: 5000}},
					Venue:      Venue{Sections: []Section{{ID: "A", Category: "std", Rows: 2, SeatsPerRow: 3}}},
					Limits:     Limits{MaxSeatsPerBuyer: 8},
				})
				require.NoError(t, err)
				assert.Equal(t, &Event{
					ID: "e1", Name: "Event one", Type: "concert", StartsAt: starts, Location: "Berlin", Organiser: "org1",
					Categories:   []Category{{ID: "std", Name: "Standard", PriceCents: 5000}},
					Venue:        Venue{Sections: []Section{{ID: "A", Category: "std", Rows: 2, SeatsPerRow: 3}}},
					Limits:       Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 300},
					Capacity:     6,
					Availability: []Availability{{ID: "std", Capacity: 6, Free: 4, Held: 1, Sold: 1}},
				}, ev)
			},
			method: "POST", path: "/v1/events",
			body: `{"id":"e1","name":"Event one","type":"concert","startsAt":"2026-12-01T20:00:00Z","location":"Berlin",
				"categories":[{"id":"std","name":"Standard","priceCents":5000}],
				"venue":{"sections":[{"id":"A","category":"std","rows":2,"seatsPerRow":3}]},
				"limits":{"maxSeatsPerBuyer":8}}`,
		},
		{
			name: "GetEvent strong", status: 200, answer: eventAnswer,
			call: func(t *testing.T) {
				ev, err := c.GetEvent(WithStrongRead(ctx), "e1")
				require.NoError(t, err)
				assert.Equal(t, starts, ev.StartsAt)
			},
			method: "GET", path: "/v1/events/e1", query: "consistency=strong",
		},
		{
			name: "UpdateEvent", status: 200, answer: eventAnswer,
			call: func(t *testing.T) {
				_, err := c.UpdateEvent(ctx, "e1", EventPatch{Name: new("Encore"), Limits: &Limits{HoldTTLSeconds: 60}})
				require.NoError(t, err)
			},
			method: "PATCH", path: "/v1/events/e1", body: `{"name":"Encore","limits":{"holdTTLSeconds":60}}`,
		},
		{
			name: "UpdateEvent clears startsAt", status: 200, answer: eventAnswer,
			call: func(t *testing.T) {
				_, err := c.UpdateEvent(ctx, "e1", EventPatch{StartsAt: &time.Time{}, Categories: []Category{{ID: "std", Name: "S", PriceCents: 1}}})
				require.NoError(t, err)
			},
			method: "PATCH", path: "/v1/events/e1", body: `{"startsAt":"","categories":[{"id":"std","name":"S","priceCents":1}]}`,
		},
		{
			name: "Seats", status: 200,
			answer: map[string]any{"event": "e1", "index": 42, "seats": []any{map[string]any{"id": "A-1-1", "category": "std", "state": "held"}}},
			call: func(t *testing.T) {
				m, err := c.Seats(ctx, "e1", SeatQuery{Section: "A", Category: "std", Status: SeatHeld, Strong: true})
				require.NoError(t, err)
				assert.Equal(t, SeatMap{Event: "e1", Index: 42, Seats: []Seat{{ID: "A-1-1", Category: "std", State: SeatHeld}}}, m)
			},
			method: "GET", path: "/v1/events/e1/seats", query: "category=std&consistency=strong&section=A&status=held",
		},
		{
			name: "Hold by seats", status: 201, answer: holdAnswer,
			call: func(t *testing.T) {
				h, err := c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-1", "A-1-2"}, TTL: 90*time.Second + time.Millisecond})
				require.NoError(t, err)
				assert.Equal(t, &Hold{
					ID: "h_1", Event: "e1", Buyer: "u1", Seats: []string{"A-1-1", "A-1-2"},
					CreatedAt: time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC),
					ExpiresAt: time.Date(2026, 11, 25, 10, 5, 0, 123e6, time.UTC),
					State:     HoldActive,
				}, h)
			},
			method: "POST", path: "/v1/events/e1/holds", body: `{"seats":["A-1-1","A-1-2"],"ttlSeconds":91}`,
		},
		{
			name: "Hold by category", status: 201, answer: holdAnswer,
			call: func(t *testing.T) {
				_, err := c.Hold(ctx, "e1", HoldRequest{Category: "floor", Quantity: 4, Adjacent: true})
				require.NoError(t, err)
			},
			method: "POST", path: "/v1/events/e1/holds", body: `{"category":"floor","quantity":4,"adjacent":true}`,
		},
		{
			name: "GetHold", status: 200, answer: holdAnswer,
			call: func(t *testing.T) {
				h, err := c.GetHold(ctx, "h_1")
				require.NoError(t, err)
				assert.Equal(t, "h_1", h.ID)
			},
			method: "GET", path: "/v1/holds/h_1",
		},
		{
			name: "Release all", status: 204,
			call: func(t *testing.T) {
				h, err := c.Release(ctx, "h_1")
				require.NoError(t, err)
				assert.Nil(t, h, "the whole hold was released")
			},
			method: "DELETE", path: "/v1/holds/h_1",
		},
		{
			name: "Release some", status: 200, answer: holdAnswer,
			call: func(t *testing.T) {
				h, err := c.Release(ctx, "h_1", "A-1-3")
				require.NoError(t, err)
				require.NotNil(t, h)
				assert.Equal(t, []string{"A-1-1", "A-1-2"}, h.Seats)
			},
			method: "DELETE", path: "/v1/holds/h_1", body: `{"seats":["A-1-3"]}`,
		},
		{
			name: "ExtendHold", status: 200, answer: holdAnswer,
			call: func(t *testing.T) {
				_, err := c.ExtendHold(ctx, "h_1", 2*time.Minute)
				require.NoError(t, err)
			},
			method: "POST", path: "/v1/holds/h_1/extend", body: `{"ttlSeconds":120}`,
		},
		{
			name: "Purchase", status: 201, answer: orderAnswer,
			call: func(t *testing.T) {
				o, err := c.Purchase(ctx, "h_1", "pm_card_visa")
				require.NoError(t, err)
				assert.Equal(t, &Order{
					ID: "o_1", Event: "e1", Hold: "h_1", Buyer: "u1", Seats: []string{"A-1-1"}, AmountCents: 5000,
					PaymentRef: "ch_1", CreatedAt: time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC), State: OrderPaid,
				}, o)
			},
			method: "POST", path: "/v1/holds/h_1/purchase", body: `{"paymentMethod":"pm_card_visa"}`,
		},
		{
			name: "GetOrder strong", status: 200, answer: orderAnswer,
			call: func(t *testing.T) {
				_, err := c.GetOrder(WithStrongRead(ctx), "o_1")
				require.NoError(t, err)
			},
			method: "GET", path: "/v1/orders/o_1", query: "consistency=strong",
		},
		{
			name: "CancelOrder", status: 200, answer: orderAnswer,
			call: func(t *testing.T) {
				_, err := c.CancelOrder(ctx, "o_1")
				require.NoError(t, err)
			},
			method: "POST", path: "/v1/orders/o_1/cancel",
		},
		{
			name: "ExchangeSeats", status: 200, answer: orderAnswer,
			call: func(t *testing.T) {
				_, err := c.ExchangeSeats(ctx, "o_1", []string{"A-1-1"}, []string{"A-2-1"})
				require.NoError(t, err)
			},
			method: "POST", path: "/v1/orders/o_1/exchange", body: `{"release":["A-1-1"],"take":["A-2-1"]}`,
		},
		{
			name: "MyHolds", status: 200, answer: map[string]any{"holds": []any{holdAnswer}},
			call: func(t *testing.T) {
				hs, err := c.MyHolds(ctx)
				require.NoError(t, err)
				require.Len(t, hs, 1)
				assert.Equal(t, "h_1", hs[0].ID)
			},
			method: "GET", path: "/v1/me/holds",
		},
		{
			name: "MyOrders", status: 200, answer: map[string]any{"orders": []any{orderAnswer}},
			call: func(t *testing.T) {
				os, err := c.MyOrders(ctx)
				require.NoError(t, err)
				require.Len(t, os, 1)
				assert.Equal(t, "o_1", os[0].ID)
			},
			method: "GET", path: "/v1/me/orders",
		},
		{
			name: "Cluster", status: 200,
			answer: map[string]any{
				"node":   "n1",
				"nodes":  []any{map[string]any{"id": "n1", "raftAddr": "r1:1", "httpAddr": "h1:1", "voter": true, "leads": []int{0}}},
				"shards": []any{map[string]any{"id": 0, "leader": "n1", "replicas": []string{"n1"}, "voters": []string{"n1"}, "term": 2, "appliedIndex": 9, "commitIndex": 9, "state": "Leader"}},
			},
			call: func(t *testing.T) {
				st, err := c.Cluster(ctx)
				require.NoError(t, err)
				assert.Equal(t, ClusterStatus{
					Node:   "n1",
					Nodes:  []NodeStatus{{Member: Member{ID: "n1", RaftAddr: "r1:1", HTTPAddr: "h1:1"}, Voter: true, Leads: []int{0}}},
					Shards: []ShardStatus{{ID: 0, Leader: "n1", Replicas: []string{"n1"}, Voters: []string{"n1"}, Term: 2, AppliedIndex: 9, CommitIndex: 9, State: "Leader"}},
				}, st)
			},
			method: "GET", path: "/v1/cluster",
		},
		{
			name: "AddMember", status: 200, answer: map[string]any{"ok": true},
			call: func(t *testing.T) {
				require.NoError(t, c.AddMember(ctx, Member{ID: "n4", RaftAddr: "r4:1", HTTPAddr: "h4:1"}))
			},
			method: "POST", path: "/v1/cluster/members", body: `{"id":"n4","raftAddr":"r4:1","httpAddr":"h4:1"}`,
		},
		{
			name: "RemoveMember", status: 200, answer: map[string]any{"ok": true},
			call: func(t *testing.T) {
				require.NoError(t, c.RemoveMember(ctx, "n4"))
			},
			method: "DELETE", path: "/v1/cluster/members/n4",
		},
		{
			name: "TransferLeadership", status: 200, answer: map[string]any{"ok": true},
			call: func(t *testing.T) {
				require.NoError(t, c.TransferLeadership(ctx, 0, "n2"))
			},
			method: "POST", path: "/v1/cluster/transfer-leadership", body: `{"shard":0,"to":"n2"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			status, answer = tc.status, tc.answer
			mu.Unlock()
			before := node.count()
			tc.call(t)
			reqs := node.requests()
			require.Len(t, reqs, before+1, "one request")
			r := reqs[before]
			assert.Equal(t, tc.method, r.Method)
			assert.Equal(t, tc.path, r.Path)
			assert.Equal(t, tc.query, r.Query)
			assert.Equal(t, "Bearer tok-1", r.Header.Get("Authorization"))
			if tc.body == "" {
				assert.Empty(t, r.Body)
			} else {
				assert.JSONEq(t, tc.body, string(r.Body))
				assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			}
			if tc.method == "GET" {
				assert.Empty(t, r.Header.Get("Idempotency-Key"))
			} else {
				assert.Len(t, r.Header.Get("Idempotency-Key"), 26, "every write carries a key")
			}
		})
	}
}

func TestTypesRoundTripThroughJSON(t *testing.T) {
	h := Hold{ID: "h_1", Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"},
		CreatedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), State: HoldActive}
	b, err := json.Marshal(h)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"h_1","event":"e1","buyer":"u1","seats":["A-1-1"],"createdAt":"2026-11-25T10:00:00Z","state":"active"}`, string(b))
	var back Hold
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, h, back)
	assert.True(t, back.ExpiresAt.IsZero(), "an absent time is the zero time")

	var o Order
	require.NoError(t, json.Unmarshal([]byte(`{"id":"o_1","createdAt":"","state":"paid"}`), &o))
	assert.True(t, o.CreatedAt.IsZero(), "an empty time is the zero time")

	ev := Event{ID: "e1", Name: "n", Categories: []Category{{ID: "c"}}}
	b, err = json.Marshal(ev)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"e1","name":"n","categories":[{"id":"c","name":"","priceCents":0}],"venue":{"sections":null}}`, string(b))
	var evBack Event
	require.NoError(t, json.Unmarshal(b, &evBack))
	assert.Equal(t, ev, evBack)
}

// BenchmarkHold measures the client's own cost of a write (encoding, the
// key, headers, decoding) against a fake node on loopback.
func BenchmarkHold(b *testing.B) {
	body, err := json.Marshal(holdAnswer)
	require.NoError(b, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Nodes = []string{srv.URL}
	cfg.Token = "tok"
	c, err := New(cfg)
	require.NoError(b, err)
	defer c.CloseIdleConnections()
	req := HoldRequest{Seats: []string{"A-1-1", "A-1-2"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Hold(context.Background(), "e1", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
