package httpapi

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"boxoffice"
)

// A write forwarded to a leader that stops answering (a frozen process, a
// cut link) is given up as soon as another node leads the shard: the
// client gets 503 unavailable (outcome unknown) at once and retries with
// its Idempotency-Key, instead of hanging until the write timeout.
func TestForwardGivesUpWhenTheLeaderChanges(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing: a frozen leader
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	f := newForwarder("n2", 4, time.Minute)
	var polls atomic.Int32
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/events/e1/holds")
	ctx.Request.SetBodyString(`{"seats":["A-1-1"]}`)
	start := time.Now()
	retry, err := f.forward(&ctx, ln.Addr().String(), func() bool { return polls.Add(1) >= 3 })
	require.NoError(t, err)
	assert.False(t, retry, "the write may have been done: not retried by the node")
	assert.Less(t, time.Since(start), 30*time.Second, "given up long before the forward timeout")
	assert.GreaterOrEqual(t, polls.Load(), int32(3))
	assert.Equal(t, 503, ctx.Response.StatusCode())
	assert.Equal(t, string(boxoffice.CodeUnavailable), string(ctx.Response.Header.Peek(headerProblem)))

	// While the leader stays the same, the forward waits for its answer.
	ok := fakeLeader(t, 200, `{"id":"h1"}`)
	var ctx2 fasthttp.RequestCtx
	ctx2.Request.Header.SetMethod("POST")
	ctx2.Request.SetRequestURI("/v1/events/e1/holds")
	retry, err = f.forward(&ctx2, ok, func() bool { return false })
	require.NoError(t, err)
	assert.False(t, retry)
	assert.Equal(t, 200, ctx2.Response.StatusCode())
	assert.Equal(t, `{"id":"h1"}`, string(ctx2.Response.Body()))
}

// fakeLeader serves one fixed answer after a short wait; it returns its
// address.
func fakeLeader(t *testing.T, status int, body string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		time.Sleep(3 * forwardPollInterval) // several polls while it waits
		ctx.SetStatusCode(status)
		ctx.SetBodyString(body)
	}}
	go srv.Serve(ln) //nolint:errcheck // ends at Shutdown
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}
