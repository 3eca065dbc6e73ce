package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
)

// A proposal made while its shard closes must get an answer. The proposer
// is stopped before any proposal, so no entry ever reaches Raft (which is
// why a nil *raft.Raft is enough here): every proposal must come back at
// once with "unavailable", whatever its context, rather than sit in the
// queue after the batching loop has gone and wait for a deadline that may
// never come.
func TestProposeAfterCloseIsAnswered(t *testing.T) {
	cfg := DefaultConfig()
	p := newProposer(nil, &cfg, 0, nil)
	p.close()

	cmd := fsm.EncodeCommand(&fsm.Expire{Max: 1})
	for i := 0; i < 50; i++ {
		done := make(chan error, 1)
		go func() {
			_, err := p.propose(context.Background(), cmd)
			done <- err
		}()
		select {
		case err := <-done:
			require.Equal(t, boxoffice.CodeUnavailable, boxoffice.CodeOf(err), "attempt %d: %v", i, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("attempt %d: a proposal made after close was never answered", i)
		}
	}
}

// raftErr keeps apart the errors that mean "never appended, retry on the
// leader" and "outcome unknown".
func TestRaftErrCodes(t *testing.T) {
	require.NoError(t, raftErr(nil))
	for _, tc := range []struct {
		err  error
		want boxoffice.Code
	}{
		{raft.ErrNotLeader, boxoffice.CodeNotLeader},
		{fmt.Errorf("apply: %w", raft.ErrNotLeader), boxoffice.CodeNotLeader},
		{raft.ErrLeadershipTransferInProgress, boxoffice.CodeNotLeader},
		{raft.ErrLeadershipLost, boxoffice.CodeUnavailable},
		{raft.ErrRaftShutdown, boxoffice.CodeUnavailable},
		{raft.ErrEnqueueTimeout, boxoffice.CodeTimeout},
		{raft.ErrAbortedByRestore, boxoffice.CodeInternal},
	} {
		require.Equal(t, tc.want, boxoffice.CodeOf(raftErr(tc.err)), "%v", tc.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	require.Equal(t, boxoffice.CodeTimeout, boxoffice.CodeOf(ctxErr(ctx)))
}

// Concurrent proposals must share log entries: that is what makes a single
// on-sale fast (DESIGN.md, Batching). The batching loop fills an entry while
// earlier ones commit, which only happens if it is made to wait for them;
// if it may hand Raft as many entries as there are callers, every command
// becomes an entry of its own.
func TestConcurrentProposalsShareEntries(t *testing.T) {
	const (
		proposers = 64
		each      = 8
	)
	c := newCluster(t, 3, 1, nil)
	ev := testEvent("batching", 40, 40)
	ev.Limits.HoldTTLSeconds = boxoffice.HoldTTLMax
	c.proposeOK(0, &fsm.CreateEvent{Event: ev})
	leader := c.leader(0).Shard(0)
	before := raftStat(t, leader, "last_log_index")

	var wg sync.WaitGroup
	errs := make(chan error, proposers*each)
	for w := 0; w < proposers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; k++ {
				n := w*each + k
				res, err := leader.Propose(context.Background(), &fsm.Hold{Event: ev.ID, Buyer: fmt.Sprintf("b%d", n), Seats: []string{nthSeat(n, 40, 40)}})
				if err == nil {
					err = res.Err
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("hold failed: %v", err)
	}
	entries := raftStat(t, leader, "last_log_index") - before
	perEntry := float64(proposers*each) / float64(entries)
	t.Logf("%d holds in %d entries: %.1f per entry", proposers*each, entries, perEntry)
	require.GreaterOrEqual(t, perEntry, 3.0, "%d concurrent proposers must share entries", proposers)
	c.waitSame(0)
}
