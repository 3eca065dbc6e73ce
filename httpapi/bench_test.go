package httpapi_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice/httpapi"
	"boxoffice/internal/cputime"
	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

// BenchmarkHoldsHTTP3Nodes measures holds through the whole write path: a
// fasthttp client, any of three in-process nodes (two thirds of requests
// land on a follower and are forwarded), batching, Raft with fsync, Pebble.
// Each hold takes one free seat of a 100,000-seat event, so none conflicts.
// via=follower sends every hold to a follower of the event's shard, so each
// is forwarded. cpu-µs/hold is the CPU of the whole process (three nodes and
// the client) per hold: less noisy than holds/s on a shared machine.
//
//	go test ./httpapi -run XXX -bench HoldsHTTP3Nodes -benchtime 60000x
func BenchmarkHoldsHTTP3Nodes(b *testing.B) {
	for _, clients := range []int{64, 256} {
		for _, via := range []string{"any", "follower"} {
			b.Run(fmt.Sprintf("clients=%d/via=%s", clients, via), func(b *testing.B) {
				benchHolds(b, clients, via == "follower")
			})
		}
	}
}

func benchHolds(b *testing.B, clients int, viaFollower bool) {
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
	targets := c.Members
	if viaFollower {
		shard := raftnode.ShardOf("bench-0", 2)
		targets = nil
		for _, m := range c.Members {
			if !m.Node.IsLeader(shard) {
				targets = append(targets, m)
			}
		}
	}
	hc := &fasthttp.Client{MaxConnsPerHost: clients}
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	cpu := cputime.Start()
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
				m := targets[i%len(targets)]
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
	cpuPerHold := cpu.PerOp(b.N)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d holds failed; first: %v", n, b.N, firstErr.Load())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "holds/s")
	b.ReportMetric(cpuPerHold, "cpu-µs/hold")
}
