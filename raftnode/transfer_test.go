package raftnode

import (
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
)

// TestTransferNotRepeatedToAFailedTargetInOneTerm: once a transfer to a
// node failed, a second one to the same node in the same term is refused
// before it reaches hashicorp/raft. In v1.8.0 (#696) a failed transfer can
// leave a catch-up request in that follower's one-slot replication
// channel; a second transfer then blocks on it, and if the leader steps
// down meanwhile the leadership-transfer flag stays set for good, so the
// node refuses every write in every term it leads afterwards.
func TestTransferNotRepeatedToAFailedTargetInOneTerm(t *testing.T) {
	c := newCluster(t, 3, 1, nil)
	ev := testEvent("xfer", 2, 2)
	c.proposeOK(0, &fsm.CreateEvent{Event: ev})
	leader := c.leader(0)
	var target, other string
	for _, n := range c.live() {
		if n == leader {
			continue
		}
		if target == "" {
			target = n.ID()
		} else {
			other = n.ID()
		}
	}
	require.NoError(t, leader.Shard(0).TransferLeadership(leader.ID()), "a transfer to the leader itself is done already")
	// A stopped target cannot take over: the transfer fails.
	c.stop(target)
	s := leader.Shard(0)
	term := s.rf().CurrentTerm()
	err := s.TransferLeadership(target)
	require.Error(t, err, "a transfer to the stopped %s", target)
	require.Equal(t, boxoffice.CodeUnavailable, boxoffice.CodeOf(err), "a failed transfer is a retryable 503: %v", err)
	if s.rf().CurrentTerm() != term || !s.IsLeader() {
		// Rare (an election during the failed transfer, on a starved
		// machine): the rule under test holds within one term, so there is
		// nothing left to check in this run; it runs in make test and
		// checks the rule on every run where the term stays.
		t.Skipf("the leadership moved during the failed transfer (term %d → %d); the rule is about one term", term, s.rf().CurrentTerm())
	}

	err = s.TransferLeadership(target)
	require.Error(t, err)
	require.Equal(t, boxoffice.CodeUnavailable, boxoffice.CodeOf(err))
	require.Contains(t, err.Error(), fmt.Sprintf("already failed in term %d", term), "refused without asking raft again")

	// The shard still takes writes, and a transfer to another node works.
	c.proposeOK(0, &fsm.Hold{Event: ev.ID, Buyer: "u1", Seats: []string{"A-1-1"}})
	c.waitFor("a transfer to "+other, func() error {
		l := c.leader(0)
		if l.ID() == other {
			return nil
		}
		return l.Shard(0).TransferLeadership(other)
	})
	c.proposeOK(0, &fsm.Hold{Event: ev.ID, Buyer: "u2", Seats: []string{"A-1-2"}})
}

// TestPeerLastIndex: a node answers a peer's question about its last log
// index of a shard on the Raft port; a shard it does not have, or a node
// that does not answer, is not caught up.
func TestPeerLastIndex(t *testing.T) {
	c := newCluster(t, 1, 2, nil)
	n := c.node("n1")
	c.proposeOK(1, &fsm.CreateEvent{Event: testEvent(eventOnShard("idx", 1, 2), 1, 1)})
	for s := 0; s < 2; s++ {
		got, ok := peerLastIndex(nil, n.Self().RaftAddr, s, waitTimeout)
		require.True(t, ok, "shard %d", s)
		require.Equal(t, n.Shard(s).rf().LastIndex(), got, "shard %d", s)
	}
	_, ok := peerLastIndex(nil, n.Self().RaftAddr, 7, waitTimeout)
	require.False(t, ok, "a shard the node does not have")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m := newMux(ln, ln.Addr().String(), slog.New(slog.DiscardHandler), nil)
	go m.serve()
	defer m.close()
	_, ok = peerLastIndex(nil, ln.Addr().String(), 0, waitTimeout)
	require.False(t, ok, "a node whose shards are not open yet")
}

// TestStuckTransferRecovered: a leader that has refused writes for a
// leadership transfer for longer than any transfer takes restarts its
// shard's Raft (hashicorp/raft#696 leaves the flag set forever otherwise),
// and the shard serves writes again with nothing lost. The flag itself is
// private to hashicorp/raft, so the test puts the shard in the state the
// leader records when its writes are refused for it.
func TestStuckTransferRecovered(t *testing.T) {
	c := newCluster(t, 3, 1, func(cfg *Config) { cfg.SweepInterval = 100 * time.Millisecond })
	ev := testEvent("stuck", 2, 2)
	c.proposeOK(0, &fsm.CreateEvent{Event: ev})
	c.proposeOK(0, &fsm.Hold{Event: ev.ID, Buyer: "u1", Seats: []string{"A-1-1"}})
	leader := c.leader(0)
	s := leader.Shard(0)

	// What the leader records from Raft's refusals: the first refusal
	// starts the clock, a later one keeps it, a success clears it.
	s.noteApply(raft.ErrLeadershipTransferInProgress)
	blocked := func() (int64, uint64) {
		s.xferBlockedMu.Lock()
		defer s.xferBlockedMu.Unlock()
		return s.xferBlockedSince, s.xferBlockedTerm
	}
	first, term := blocked()
	require.NotZero(t, first)
	require.Equal(t, s.rf().CurrentTerm(), term)
	s.noteApply(raft.ErrLeadershipTransferInProgress)
	again, _ := blocked()
	require.Equal(t, first, again)
	require.False(t, s.transferStuck(time.Now()), "not stuck before a transfer could have ended")
	require.True(t, s.transferStuck(time.Now().Add(time.Hour)) || !s.IsLeader(), "stuck long after")
	// Refusals of an earlier term say nothing of this one.
	s.setTransferBlocked(time.Now().Add(-time.Hour).UnixNano(), term-1)
	require.False(t, s.transferStuck(time.Now()), "refusals of an earlier term")
	s.noteApply(nil)
	cleared, _ := blocked()
	require.Zero(t, cleared)

	old := s.rf()
	c.waitFor("the leader restarts its raft", func() error {
		if s.restarts.Load() > 0 {
			return nil
		}
		if s.IsLeader() {
			s.setTransferBlocked(time.Now().Add(-time.Hour).UnixNano(), s.rf().CurrentTerm())
		}
		return fmt.Errorf("no restart yet (leader: %v)", s.IsLeader())
	})
	require.NotSame(t, old, s.rf(), "a new Raft")
	cleared, _ = blocked()
	require.Zero(t, cleared)

	c.proposeOK(0, &fsm.Hold{Event: ev.ID, Buyer: "u2", Seats: []string{"A-1-2"}})
	c.waitSame(0)
	for _, n := range c.live() {
		h, err := n.Shard(0).Store().HoldsOf("u1")
		require.NoError(t, err)
		require.Len(t, h, 1, "u1's hold on %s survives the restart", n.ID())
	}
	// The restarted replica rejoins the group: it can lead again.
	c.waitFor("the restarted node leads again", func() error {
		if s.IsLeader() {
			return nil
		}
		if l := c.leader(0); l != leader {
			if err := l.Shard(0).TransferLeadership(leader.ID()); err != nil {
				return err
			}
		}
		return fmt.Errorf("%s does not lead", leader.ID())
	})
	c.proposeOK(0, &fsm.Hold{Event: ev.ID, Buyer: "u3", Seats: []string{"A-2-1"}})
}

// The rebalancer hands away the quietest of the shards a node leads: a
// transfer stops a shard's writes for a moment, so the one under an
// on-sale moves last.
func TestQuietestShardFirst(t *testing.T) {
	shards := []*Shard{{id: 0}, {id: 1}, {id: 2}, {id: 3}}
	ids := func(ss []*Shard) []int {
		var out []int
		for _, s := range ss {
			out = append(out, s.id)
		}
		return out
	}
	require.Equal(t, []int{2, 3, 0, 1}, ids(quietestFirst(shards, map[int]uint64{0: 10, 1: 5000, 2: 0, 3: 10})))
	require.Equal(t, []int{3, 2, 1, 0}, ids(quietestFirst(shards, nil)), "without a measure, the highest id first")
	require.Equal(t, []int{0, 1, 2, 3}, ids(shards), "the input is left alone")
}
