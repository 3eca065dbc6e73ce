package raftnode

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/fsm"
	"boxoffice/internal/cputime"
)

// BenchmarkCommitHolds3Nodes measures committed holds per second on one
// shard of a 3-node in-process cluster with fsync on: 256 goroutines
// propose one-seat holds of distinct seats by distinct buyers on the
// shard's leader, b.N in all. With batching on (the default config),
// concurrent holds share log entries (one append and fsync per node for
// many); with it off, each hold is its own entry (hashicorp/raft still
// groups entries per disk write). holds/entry reports how well they shared;
// cpu-µs/hold is the CPU of the process (three nodes) per hold.
//
//	go test ./raftnode -run XXX -bench CommitHolds -benchtime 20000x
func BenchmarkCommitHolds3Nodes(b *testing.B) {
	for _, batching := range []bool{true, false} {
		name := "batching=off"
		if batching {
			name = "batching=on"
		}
		b.Run(name, func(b *testing.B) { benchCommitHolds(b, batching) })
	}
}

const (
	benchProposers = 256
	benchRows      = 100
	benchPerRow    = 500 // 2 sections × 100 × 500: 100,000 seats per event
	benchSeats     = 2 * benchRows * benchPerRow
)

func benchCommitHolds(b *testing.B, batching bool) {
	shards := DefaultConfig().Shards
	c := newCluster(b, 3, shards, func(cfg *Config) {
		// Production timings: the benchmark is about the commit path, not
		// about fast failover.
		def := DefaultConfig()
		cfg.HeartbeatTimeout = def.HeartbeatTimeout
		cfg.ElectionTimeout = def.ElectionTimeout
		cfg.LeaderLeaseTimeout = def.LeaderLeaseTimeout
		cfg.Batching = batching
		if !batching {
			// One command per entry, as many entries in flight as there
			// are proposers: what hashicorp/raft alone does with them
			// (it still groups entries per disk write).
			cfg.InflightEntriesMax = benchProposers
		}
	})
	// One on-sale is one shard with one leader; b.N may need several
	// 100,000-seat events, all on that shard.
	const shard = 0
	events := make([]string, (b.N+benchSeats-1)/benchSeats)
	for i := range events {
		events[i] = eventOnShard(fmt.Sprintf("bench%d", i), shard, shards)
		ev := testEvent(events[i], benchRows, benchPerRow)
		ev.Limits.HoldTTLSeconds = 3600
		c.proposeOK(shard, &fsm.CreateEvent{Event: ev})
	}
	leader := c.leader(shard).Shard(shard)
	cmds := make([]*fsm.Hold, b.N)
	for i := range cmds {
		cmds[i] = &fsm.Hold{
			Event: events[i/benchSeats],
			Buyer: fmt.Sprintf("u%d", i),
			Seats: []string{nthSeat(i%benchSeats, benchRows, benchPerRow)},
		}
	}
	firstIndex := raftStat(b, leader, "last_log_index")

	var (
		next    atomic.Int64
		failed  atomic.Int64
		errOnce sync.Once
		firstEr error
		wg      sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	cpu := cputime.Start()
	for w := 0; w < benchProposers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cmds) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
				res, err := leader.Propose(ctx, cmds[i])
				cancel()
				if err == nil {
					err = res.Err
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstEr = err })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuPerHold := cpu.PerOp(b.N)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d holds failed; first: %v", n, b.N, firstEr)
	}
	entries := raftStat(b, leader, "last_log_index") - firstIndex
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "holds/s")
	b.ReportMetric(float64(b.N)/float64(max(entries, 1)), "holds/entry")
	b.ReportMetric(cpuPerHold, "cpu-µs/hold")
}
