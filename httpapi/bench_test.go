package httpapi_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

// BenchmarkHoldsHTTP3Nodes measures holds through the whole write path: a
// fasthttp client, any of three in-process nodes (two thirds of requests
// land on a follower and are forwarded), batching, Raft with fsync, Pebble.
// Each hold takes one free seat of a 100,000-seat event, so none conflicts.
func BenchmarkHoldsHTTP3Nodes(b *testing.B) {
	for _, clients := range []int{64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			benchHolds(b, clients)
		})
	}
}

func benchHolds(b *testing.B, clients int) {
	c := testcluster.Start(b, testcluster.Options{Nodes: 3, Shards: 2, Tune: func(cfg *raftnode.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	}})
	events := (b.N + 99_999) / 100_000
	for e := 0; e < events; e++ {
		ev := testcluster.Event(fmt.Sprintf("bench-%d", e), 20, 100, 50)
		ev["limits"] = map[string]any{"maxSeatsPerBuyer": 8, "holdTTLSeconds": 3600}
		if code, body := c.Do(c.Members[0], "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), ev); code != 201 {
			b.Fatalf("create event: %d %s", code, body)
		}
	}
	// A buyer holds at most 8 seats of an event: every 8 holds get a new buyer.
	tokens := make([]string, b.N/8+1)
	for i := range tokens {
		tokens[i] = testcluster.Token(fmt.Sprintf("b%d", i), httpapi.RoleBuyer)
	}
	hc := &fasthttp.Client{MaxConnsPerHost: clients}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				ev, seat := i/100_000, i%100_000
				sec, row, num := seat/5000, seat%5000/50+1, seat%50+1
				m := c.Members[i%3]
				req.Reset()
				req.Header.SetMethod("POST")
				req.SetRequestURI(fmt.Sprintf("http://%s/v1/events/bench-%d/holds", m.HTTPAddr, ev))
				req.Header.Set("Authorization", "Bearer "+tokens[i/8])
				req.SetBodyString(fmt.Sprintf(`{"seats":["%c-%d-%d"]}`, 'A'+sec, row, num))
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 201 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%v %d %s", err, resp.StatusCode(), resp.Body()))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d holds failed; first: %v", n, b.N, firstErr.Load())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "holds/s")
}
