package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"boxoffice/fsm"
)

// Regression, found by internal/faulttest (TestFaults3Nodes, seed
// 1795610960668341149, round 1: "add n4, remove" the leader, through the
// API, while clients wrote). A leader that removes itself shuts its Raft
// down on its own (ShutdownOnRemove), and hashicorp/raft never answers the
// entries still waiting in its apply queue then (BatchApplyCh buffers it;
// ApplyLog's futures have no shutdown channel): the proposer's completer
// waited for them forever, and so did the node's Close. Close now gives up
// on them after ApplyTimeout; their callers' own deadlines answer them, as
// unknown outcomes.
func TestCloseReturnsAfterTheLeaderRemovedItselfWithWritesQueued(t *testing.T) {
	const shards = 1
	// One command per entry and many entries in flight, so that the
	// apply queue is seldom empty.
	c := newCluster(t, 3, shards, func(cfg *Config) {
		cfg.Batching = false
		cfg.InflightEntriesMax = 256
	})
	c.proposeOK(0, &fsm.CreateEvent{Event: testEvent("remove-self", 10, 10)})

	for round := 0; round < 3; round++ {
		// Many writers keep the leader's apply queue busy.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					c.tryPropose(0, &fsm.Expire{Max: 1})
				}
			}()
		}
		time.Sleep(100 * time.Millisecond)
		// The leader removes itself (as the API's DELETE does when it
		// reaches the leader); under load the change may lose the lead
		// first, then the next leader tries.
		var leader *Node
		c.waitFor(fmt.Sprintf("round %d: a leader removes itself", round), func() error {
			leader = c.leader(0)
			ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
			err := leader.Shard(0).RemoveMember(ctx, leader.ID())
			cancel()
			if st := leader.Shard(0).rf().State(); st != raft.Shutdown {
				return fmt.Errorf("%s: %v, state %v", leader.ID(), err, st)
			}
			return nil
		})
		t.Logf("round %d: %s removed itself", round, leader.ID())

		m := c.member(leader.ID())
		c.mu.Lock()
		m.node = nil
		c.mu.Unlock()
		closed := make(chan error, 1)
		go func() { closed <- leader.Close() }()
		select {
		case <-closed:
		case <-time.After(waitTimeout):
			t.Fatalf("round %d: Close of %s, removed while writes were queued, did not return", round, leader.ID())
		}
		close(stop)
		wg.Wait()

		// Back to three voters for the next round.
		id := fmt.Sprintf("r%d", round)
		c.addMember(id, func(cfg *Config) {
			cfg.Batching = false
			cfg.InflightEntriesMax = 256
		})
		c.join(id)
	}
}
