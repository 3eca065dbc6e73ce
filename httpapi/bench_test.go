package httpapi_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice/fsm"
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
// is forwarded; via=leader sends every hold to the leader, as a client that
// knows the placement does. cpu-µs/hold is the CPU of the whole process (three nodes and
// the client) per hold: less noisy than holds/s on a shared machine.
//
//	go test ./httpapi -run XXX -bench HoldsHTTP3Nodes -benchtime 60000x
func BenchmarkHoldsHTTP3Nodes(b *testing.B) {
	for _, clients := range []int{64, 256} {
		for _, via := range []string{"any", "follower", "leader"} {
			b.Run(fmt.Sprintf("clients=%d/via=%s", clients, via), func(b *testing.B) {
				benchHolds(b, clients, via)
			})
		}
	}
}

func benchHolds(b *testing.B, clients int, via string) {
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
	if via != "any" {
		shard := raftnode.ShardOf("bench-0", 2)
		targets = nil
		for _, m := range c.Members {
			if m.Node.IsLeader(shard) == (via == "leader") {
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

// BenchmarkSeatMap100k measures one seat map of a 100,000-seat event of
// which half the seats are held, read from one node over HTTP: the whole map,
// and the free seats only (what the on-sale's users reload every second).
// cpu-µs/map is the process's CPU (server and client) per map.
//
//	go test ./httpapi -run XXX -bench SeatMap100k -benchtime 20x
func BenchmarkSeatMap100k(b *testing.B) {
	c := testcluster.Start(b, testcluster.Options{Nodes: 1, Shards: 1})
	m := c.Members[0]
	ev := testcluster.Event("map", 20, 100, 50)
	ev["limits"] = map[string]any{"maxSeatsPerBuyer": 1000, "holdTTLSeconds": 3600}
	if code, body := c.Do(m, "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), ev); code != 201 {
		b.Fatalf("create event: %d %s", code, body)
	}
	// Hold every other seat, 32 seats per hold, 960 per buyer.
	var seats []string
	for i := 0; i < 100_000; i += 2 {
		sec, row, num := i/5000, i%5000/50+1, i%50+1
		seats = append(seats, fmt.Sprintf("%c-%d-%d", 'A'+sec, row, num))
	}
	for i := 0; i < len(seats); i += 32 {
		res, err := m.Node.Propose(b.Context(), 0, &fsm.Hold{Event: "map", Buyer: fmt.Sprintf("b%d", i/960), Seats: seats[i:min(i+32, len(seats))]})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []string{"", "?status=free"} {
		b.Run("query="+q, func(b *testing.B) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + m.HTTPAddr + "/v1/events/map/seats" + q)
			hc := &fasthttp.Client{MaxResponseBodySize: 64 << 20}
			b.ResetTimer()
			cpu := cputime.Start()
			var bytes int
			for range b.N {
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("%v %d", err, resp.StatusCode())
				}
				bytes = len(resp.Body())
			}
			b.ReportMetric(cpu.PerOp(b.N), "cpu-µs/map")
			b.ReportMetric(float64(bytes), "bytes/map")
		})
	}
}
