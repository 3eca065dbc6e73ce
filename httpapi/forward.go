package httpapi

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
)

// Headers between nodes.
const (
	// headerForwarded marks a request a node forwarded to a leader; the
	// leader never forwards it again.
	headerForwarded = "X-Boxoffice-Forwarded-By"
	// headerNotLeader marks an answer that means "nothing was done, I am
	// not the leader": the forwarding node may try again elsewhere.
	headerNotLeader = "X-Boxoffice-Not-Leader"
)

func forwarded(ctx *fasthttp.RequestCtx) bool {
	return len(ctx.Request.Header.Peek(headerForwarded)) > 0
}

// forwarder relays requests to other nodes over pooled keep-alive
// connections, one pool per node.
type forwarder struct {
	self     string
	connsMax int
	timeout  time.Duration

	mu      sync.Mutex
	clients map[string]*fasthttp.HostClient
}

func newForwarder(self string, connsMax int, timeout time.Duration) *forwarder {
	return &forwarder{self: self, connsMax: connsMax, timeout: timeout, clients: make(map[string]*fasthttp.HostClient)}
}

func (f *forwarder) client(addr string) *fasthttp.HostClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.clients[addr]
	if c == nil {
		c = &fasthttp.HostClient{
			Addr:                          addr,
			MaxConns:                      f.connsMax,
			MaxIdleConnDuration:           time.Minute,
			ReadTimeout:                   f.timeout,
			WriteTimeout:                  f.timeout,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			// Never retry on its own: a write must not be sent twice.
			RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		}
		f.clients[addr] = c
	}
	return c
}

// forward sends ctx's request to addr and, unless the answer says the target
// was not the leader, copies the answer into ctx. retry is true when nothing
// was done there and the caller may try again: the target was not the
// leader, or the connection could not be made. A failure after the request
// was sent has an unknown outcome: it is answered 503 unavailable, not
// retried.
//
// While it waits, it asks stale every forwardPollInterval whether the
// target is still worth waiting for; once stale says no (another node now
// leads the shard: the target was frozen or cut off and has been replaced),
// it stops waiting and answers 503 unavailable at once, so that the client
// retries, with its Idempotency-Key, at a node that reaches the new leader,
// instead of hanging until the write timeout. The request in flight is left
// to end in the background (within the forwarder's timeout).
func (f *forwarder) forward(ctx *fasthttp.RequestCtx, addr string, stale func() bool) (retry bool, err error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	ctx.Request.CopyTo(req)
	req.Header.Set(headerForwarded, f.self)
	req.SetHost(addr)
	done := make(chan error, 1)
	go func() { done <- f.client(addr).DoTimeout(req, resp, f.timeout) }()
	release := func() {
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	tick := time.NewTicker(forwardPollInterval)
	defer tick.Stop()
	for {
		select {
		case err = <-done:
		case <-tick.C:
			if stale == nil || !stale() {
				continue
			}
			go func() {
				<-done
				release()
			}()
			writeProblem(ctx, boxoffice.CodeUnavailable, "the shard's leader changed while the write was forwarded to it; its outcome is unknown: retry with the same Idempotency-Key")
			return false, nil
		}
		break
	}
	defer release()
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, fasthttp.ErrDialTimeout) {
			return true, err
		}
		writeProblem(ctx, boxoffice.CodeUnavailable, "the leader did not answer; the outcome of this write is unknown")
		return false, nil
	}
	if len(resp.Header.Peek(headerNotLeader)) > 0 {
		return true, nil
	}
	resp.CopyTo(&ctx.Response)
	return false, nil
}

// forwardPollInterval is how often a forwarding node checks that the node
// it forwarded a write to still leads the shard.
const forwardPollInterval = 50 * time.Millisecond
