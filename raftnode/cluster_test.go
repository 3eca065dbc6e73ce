package raftnode

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
)

// TestReplication: an event and a hold made on the shard's leader reach
// every replica; a follower refuses proposals; and of two concurrent holds
// of the same seat exactly one wins, the other is refused with
// seat_unavailable and takes none of its seats.
func TestReplication(t *testing.T) {
	const shards = 2
	c := newCluster(t, 3, shards, nil)

	ev := testEvent("replication", 30, 10)
	shard := ShardOf(ev.ID, shards)
	res := c.proposeOK(shard, &fsm.CreateEvent{Event: ev})
	require.NotNil(t, res.Event)
	require.Equal(t, ev.ID, res.Event.ID)

	// A follower refuses to propose: it never appends, so the caller may
	// retry on the leader.
	leader := c.leader(shard)
	for _, n := range c.live() {
		if n != leader {
			_, err := n.Shard(shard).Propose(context.Background(), &fsm.Hold{Event: ev.ID, Buyer: "u0", Seats: []string{"A-1-1"}})
			require.Equal(t, boxoffice.CodeNotLeader, boxoffice.CodeOf(err), "propose on follower %s", n.ID())
		}
	}

	res = c.proposeOK(shard, &fsm.Hold{Event: ev.ID, Buyer: "u1", Seats: []string{"A-1-1", "A-1-2"}})
	require.NotNil(t, res.Hold)
	hold := *res.Hold
	require.True(t, strings.HasPrefix(hold.ID, fmt.Sprintf("h_%d.", shard)), "hold id %q names its shard", hold.ID)
	require.Equal(t, boxoffice.HoldActive, hold.State)

	c.waitFor("the hold on every replica", func() error {
		for _, n := range c.live() {
			got, err := n.Shard(shard).Store().Hold(hold.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", n.ID(), err)
			}
			if got.Buyer != "u1" || !assert.ObjectsAreEqual(hold.Seats, got.Seats) || got.State != boxoffice.HoldActive {
				return fmt.Errorf("%s has %+v", n.ID(), got)
			}
		}
		return nil
	})
	for _, n := range c.live() {
		s, ok := n.ShardOfID(hold.ID)
		require.True(t, ok)
		require.Equal(t, shard, s, "ShardOfID on %s", n.ID())
		e, err := n.Shard(shard).Store().Event(ev.ID)
		require.NoError(t, err, "event on %s", n.ID())
		require.Equal(t, ev.Venue, e.Venue)
		require.Equal(t, ev.Limits, e.Limits)
	}

	// Concurrent holds of overlapping seats by different buyers: one wins,
	// all or nothing. Many rounds, so that the two land both in one entry
	// and in consecutive entries.
	acked := []ackedHold{{id: hold.ID, buyer: "u1", seats: hold.Seats}}
	const rounds = 20
	for r := 0; r < rounds; r++ {
		row := r + 2
		seatsX := []string{fmt.Sprintf("A-%d-1", row), fmt.Sprintf("A-%d-2", row)}
		seatsY := []string{fmt.Sprintf("A-%d-2", row), fmt.Sprintf("A-%d-3", row)}
		cmds := []*fsm.Hold{
			{Event: ev.ID, Buyer: fmt.Sprintf("x%d", r), Seats: seatsX},
			{Event: ev.ID, Buyer: fmt.Sprintf("y%d", r), Seats: seatsY},
		}
		var results [2]fsm.Result
		var errs [2]error
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range cmds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				results[i], errs[i] = leader.Shard(shard).Propose(context.Background(), cmds[i])
			}()
		}
		start.Done()
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		won := 0
		for i, res := range results {
			if res.Err == nil {
				require.NotNil(t, res.Hold)
				won++
				acked = append(acked, ackedHold{id: res.Hold.ID, buyer: cmds[i].Buyer, seats: cmds[i].Seats})
			} else {
				require.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(res.Err), "round %d: loser's error: %v", r, res.Err)
				require.Nil(t, res.Hold)
			}
		}
		require.Equal(t, 1, won, "round %d: exactly one of two holds of seat A-%d-2 must win", r, row)
	}

	c.waitSame(shard)
	for _, n := range c.live() {
		checkOwnership(t, n, shard, ev.ID, acked)
		counts, err := n.Shard(shard).Store().Counts(ev.ID)
		require.NoError(t, err)
		// The first hold took 2 seats, each round's winner 2 more: all or
		// nothing, so the loser's seat outside the overlap stays free.
		require.Equal(t, 2+2*rounds, counts[0].Held, "held floor seats on %s", n.ID())
		require.Equal(t, 0, counts[1].Held, "held balcony seats on %s", n.ID())
		require.Equal(t, 30*10-2-2*rounds, counts[0].Free, "free floor seats on %s", n.ID())
	}
}

// TestLeaderKillDuringHolds kills the leader of a shard in the middle of a
// stream of holds, three times over (each killed node is restarted as a
// follower while the stream goes on). Every acknowledged hold survives with
// its seats, no seat has two owners, and after each kill writes are
// accepted again within 3s.
func TestLeaderKillDuringHolds(t *testing.T) {
	const (
		shards  = 2
		workers = 12
		rows    = 100
		perRow  = 100
		cycles  = 3
		perLeg  = 100 // acknowledged holds before each kill and after it
	)
	c := newCluster(t, 3, shards, nil)
	ev := testEvent("failover", rows, perRow)
	ev.Limits.MaxSeatsPerBuyer = 1
	shard := ShardOf(ev.ID, shards)
	c.proposeOK(shard, &fsm.CreateEvent{Event: ev})

	type ack struct {
		hold ackedHold
		node string
		at   time.Time
	}
	var (
		mu       sync.Mutex
		acks     []ack
		errCodes = map[boxoffice.Code]int{}
		rejected []error
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	countAcks := func(pred func(ack) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range acks {
			if pred(a) {
				n++
			}
		}
		return n
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each attempt takes a fresh seat and a fresh buyer, so that an
			// attempt whose outcome is unknown (it may have committed)
			// never collides with a later one.
			for k := 0; !stop.Load(); k++ {
				seatN := w + k*workers
				if seatN >= 2*rows*perRow {
					return
				}
				var leader *Node
				for _, n := range c.live() {
					if n.Shard(shard).IsLeader() {
						leader = n
					}
				}
				if leader == nil {
					time.Sleep(pollInterval)
					continue
				}
				cmd := &fsm.Hold{Event: ev.ID, Buyer: fmt.Sprintf("w%d-%d", w, k), Seats: []string{nthSeat(seatN, rows, perRow)}}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				res, err := leader.Shard(shard).Propose(ctx, cmd)
				cancel()
				mu.Lock()
				switch {
				case err != nil:
					errCodes[boxoffice.CodeOf(err)]++
				case res.Err != nil:
					rejected = append(rejected, res.Err)
				default:
					acks = append(acks, ack{
						hold: ackedHold{id: res.Hold.ID, buyer: cmd.Buyer, seats: cmd.Seats},
						node: leader.ID(),
						at:   time.Now(),
					})
				}
				mu.Unlock()
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	for cycle := 0; cycle < cycles; cycle++ {
		base := countAcks(func(ack) bool { return true })
		waitFor(t, waitTimeout, "holds before the kill", func() error {
			if n := countAcks(func(ack) bool { return true }); n < base+perLeg {
				return fmt.Errorf("%d acknowledged", n-base)
			}
			return nil
		})
		old := c.leader(shard).ID()
		killedAt := time.Now()
		c.stop(old)
		after := func(a ack) bool { return a.node != old && a.at.After(killedAt) }
		waitFor(t, waitTimeout, "holds on the new leader", func() error {
			if n := countAcks(after); n < perLeg {
				return fmt.Errorf("%d acknowledged by the new leader", n)
			}
			return nil
		})
		var first time.Time
		mu.Lock()
		for _, a := range acks {
			if after(a) && (first.IsZero() || a.at.Before(first)) {
				first = a.at
			}
		}
		mu.Unlock()
		recovery := first.Sub(killedAt)
		t.Logf("cycle %d: killed leader %s; first write on the new leader %v later", cycle, old, recovery)
		require.Less(t, recovery, 3*time.Second, "cycle %d: writes must succeed again within 3s of the leader's death", cycle)
		// The old leader comes back as a follower while the stream goes
		// on, with whatever it had appended but not committed.
		c.start(old)
	}
	stop.Store(true)
	wg.Wait()

	t.Logf("%d holds acknowledged; errors during failovers: %v", len(acks), errCodes)
	require.Empty(t, rejected, "no attempt reuses a seat or a buyer, so none may be rejected")
	for code := range errCodes {
		require.Contains(t, []boxoffice.Code{boxoffice.CodeNotLeader, boxoffice.CodeUnavailable, boxoffice.CodeTimeout}, code,
			"unexpected error code during failover")
	}
	acked := make([]ackedHold, len(acks))
	for i, a := range acks {
		acked[i] = a.hold
	}
	for s := 0; s < shards; s++ {
		c.waitSame(s)
	}
	for _, n := range c.live() {
		checkOwnership(t, n, shard, ev.ID, acked)
	}
}

// TestTransferLeadership: only a leader hands over leadership, to a voter;
// the new leader takes writes and serves strong reads; TransferAll empties
// a node of leaderships before a planned stop (Drain, which also keeps the
// rebalancer from handing them back). Every replica knows the
// members and their addresses.
func TestTransferLeadership(t *testing.T) {
	c := newCluster(t, 3, 1, nil)
	leader := c.leader(0)
	var followers []*Node
	for _, n := range c.live() {
		if n != leader {
			followers = append(followers, n)
		}
	}
	ctx := context.Background()
	for _, f := range followers {
		require.Equal(t, boxoffice.CodeNotLeader, boxoffice.CodeOf(f.Shard(0).TransferLeadership(leader.ID())))
		require.Equal(t, boxoffice.CodeNotLeader, boxoffice.CodeOf(f.Shard(0).ReadBarrier(ctx)))
		require.Equal(t, boxoffice.CodeNotLeader, boxoffice.CodeOf(f.Shard(0).AddMember(ctx, f.Self())))
		require.Equal(t, boxoffice.CodeNotLeader, boxoffice.CodeOf(f.Shard(0).RemoveMember(ctx, leader.ID())))
	}
	require.Equal(t, boxoffice.CodeMemberNotFound, boxoffice.CodeOf(leader.Shard(0).TransferLeadership("nobody")))

	target := followers[0]
	require.NoError(t, leader.Shard(0).TransferLeadership(target.ID()))
	c.waitFor("the target leads", func() error {
		if !target.Shard(0).IsLeader() {
			return fmt.Errorf("leader is %q", target.Shard(0).Leader())
		}
		return nil
	})
	ev := testEvent("transfer", 5, 5)
	c.proposeOK(0, &fsm.CreateEvent{Event: ev})
	require.NoError(t, target.Shard(0).ReadBarrier(ctx))
	_, err := target.Shard(0).Store().Event(ev.ID)
	require.NoError(t, err, "a strong read on the leader sees the acknowledged write")

	st := target.Shard(0).Status()
	require.Equal(t, target.ID(), st.Leader)
	require.Equal(t, []string{"n1", "n2", "n3"}, st.Voters)
	require.Equal(t, "Leader", st.State)
	require.GreaterOrEqual(t, st.CommitIndex, st.AppliedIndex)

	require.True(t, ping(target.cfg.Dial, target.Self().RaftAddr, time.Second), "a serving node answers pings as live")
	target.Drain(5 * time.Second)
	c.waitFor("another node leads", func() error {
		if l := c.leader(0); l == target {
			return fmt.Errorf("%s still leads", l.ID())
		}
		return nil
	})
	// A draining node is no rebalancing target: its pings say so.
	require.False(t, ping(target.cfg.Dial, target.Self().RaftAddr, time.Second), "a draining node is not live to the rebalancer")
	c.waitSame(0)
	for _, n := range c.live() {
		members, err := n.Members()
		require.NoError(t, err)
		require.Len(t, members, 3, "members known to %s", n.ID())
		for _, m := range members {
			require.Equal(t, c.node(m.ID).Self(), m, "record of %s on %s", m.ID, n.ID())
		}
	}
}

// TestRestartCatchesUp: a stopped node, restarted from its data dir on the
// same port, catches up with the writes made while it was down — first
// from the log, then, after the leader compacted its log, from a snapshot
// installed over its existing store.
func TestRestartCatchesUp(t *testing.T) {
	const shards = 2
	c := newCluster(t, 3, shards, func(cfg *Config) {
		cfg.TrailingLogs = 10
		cfg.SnapshotThreshold = 64
	})
	ev := testEvent("restart", 50, 20)
	shard := ShardOf(ev.ID, shards)
	c.proposeOK(shard, &fsm.CreateEvent{Event: ev})

	var acked []ackedHold
	seat := 0
	hold := func(n, workers int) {
		cmds := make([]fsm.Command, n)
		for i := range cmds {
			cmds[i] = &fsm.Hold{Event: ev.ID, Buyer: fmt.Sprintf("b%d", seat), Seats: []string{nthSeat(seat, 50, 20)}}
			seat++
		}
		for i, res := range c.proposeAll(shard, cmds, workers) {
			require.NoError(t, res.Err)
			h := cmds[i].(*fsm.Hold)
			acked = append(acked, ackedHold{id: res.Hold.ID, buyer: h.Buyer, seats: h.Seats})
		}
	}
	hold(40, 8)
	c.waitSame(shard)

	// A follower of the shard goes down; writes and a purchase go on.
	leader := c.leader(shard)
	var down string
	for _, n := range c.live() {
		if n != leader {
			down = n.ID()
		}
	}
	c.stop(down)
	hold(40, 8)
	res := c.proposeOK(shard, &fsm.Purchase{Hold: acked[0].id, Buyer: acked[0].buyer, PaymentRef: "pay-1"})
	require.NotNil(t, res.Order)
	acked[0].order = res.Order.ID
	c.waitSame(shard)

	c.start(down)
	for s := 0; s < shards; s++ {
		c.waitSame(s)
	}
	checkOwnership(t, c.node(down), shard, ev.ID, acked)
	require.Equal(t, c.leader(shard).Shard(shard).Store().AppliedIndex(), c.node(down).Shard(shard).Store().AppliedIndex())

	// Down again; this time the leader compacts its log past the node's
	// last entry, so the node must be sent a snapshot on restart, which
	// replaces the store it already has.
	downLastLog := raftStat(t, c.node(down).Shard(shard), "last_log_index")
	c.stop(down)
	hold(100, 2) // few workers: many entries, more than TrailingLogs
	// Every live replica compacts, so that whichever leads when the node
	// comes back has to send it a snapshot.
	c.waitSame(shard)
	snapIndex := uint64(1 << 63)
	for _, n := range c.live() {
		snapshotNow(t, n.Shard(shard))
		snapIndex = min(snapIndex, raftStat(t, n.Shard(shard), "last_snapshot_index"))
		first, err := n.Shard(shard).bolt.FirstIndex()
		require.NoError(t, err)
		require.Greater(t, first, downLastLog+1, "%s's log must no longer hold the entries the stopped node lacks", n.ID())
	}
	c.start(down)
	c.waitSame(shard)
	// Raft records the installed snapshot a moment after the store has
	// restored it (which waitSame sees): wait for the record.
	require.Eventually(t, func() bool {
		return raftStat(t, c.node(down).Shard(shard), "last_snapshot_index") >= snapIndex
	}, 10*time.Second, 5*time.Millisecond, "the restarted node must have installed a snapshot")
	checkOwnership(t, c.node(down), shard, ev.ID, acked)
}

// TestJoinReceivesSnapshot: a node that joins after the leader compacted its
// log receives a snapshot of a 100,000-seat event with its held and sold
// seats, restores it, and ends identical to the others.
func TestJoinReceivesSnapshot(t *testing.T) {
	const (
		shards = 2
		rows   = 100
		perRow = 500 // 2 sections × 100 rows × 500 = 100,000 seats
		holds  = 1500
		seats  = 4
	)
	c := newCluster(t, 3, shards, func(cfg *Config) {
		cfg.TrailingLogs = 10
		cfg.SnapshotThreshold = 128
		cfg.SnapshotInterval = time.Second
	})
	ev := testEvent("bigarena", rows, perRow)
	ev.Limits.MaxSeatsPerBuyer = 32
	require.Equal(t, 100_000, ev.Venue.Capacity())
	shard := ShardOf(ev.ID, shards)
	c.proposeOK(shard, &fsm.CreateEvent{Event: ev})

	cmds := make([]fsm.Command, holds)
	for i := range cmds {
		h := &fsm.Hold{Event: ev.ID, Buyer: fmt.Sprintf("b%d", i%500)}
		for j := 0; j < seats; j++ {
			// Spread over the whole venue.
			h.Seats = append(h.Seats, nthSeat((i*seats+j)*16, rows, perRow))
		}
		cmds[i] = h
	}
	var acked []ackedHold
	for i, res := range c.proposeAll(shard, cmds, 32) {
		require.NoError(t, res.Err)
		h := cmds[i].(*fsm.Hold)
		acked = append(acked, ackedHold{id: res.Hold.ID, buyer: h.Buyer, seats: h.Seats})
	}
	for i := 0; i < 50; i++ {
		res := c.proposeOK(shard, &fsm.Purchase{Hold: acked[i].id, Buyer: acked[i].buyer, PaymentRef: fmt.Sprintf("pay-%d", i)})
		acked[i].order = res.Order.ID
	}

	leader := c.leader(shard)
	snapshotNow(t, leader.Shard(shard))
	snapIndex := raftStat(t, leader.Shard(shard), "last_snapshot_index")
	first, err := leader.Shard(shard).bolt.FirstIndex()
	require.NoError(t, err)
	require.Greater(t, first, uint64(1), "the leader must have compacted its log")

	m := c.addMember("n4", func(cfg *Config) {
		cfg.TrailingLogs = 10
		cfg.SnapshotThreshold = 128
		cfg.SnapshotInterval = time.Second
	})
	n4 := c.join(m.id)
	c.waitSame(shard)

	s4 := n4.Shard(shard)
	// n4 never saw the entries the leader had dropped: its own log begins
	// after a snapshot at least as new as the one forced above, and that
	// snapshot is in its data dir.
	n4First, err := s4.bolt.FirstIndex()
	require.NoError(t, err)
	require.Greater(t, n4First, snapIndex, "n4's log must start after the snapshot")
	require.GreaterOrEqual(t, raftStat(t, s4, "last_snapshot_index"), snapIndex)
	require.NotEmpty(t, snapshotsOnDisk(t, m.cfg.DataDir, shard), "n4 keeps the snapshot it installed")

	got, err := s4.Store().Event(ev.ID)
	require.NoError(t, err)
	require.Equal(t, 100_000, got.Venue.Capacity())
	counts, err := s4.Store().Counts(ev.ID)
	require.NoError(t, err)
	held, sold := 0, 0
	for _, cc := range counts {
		held += cc.Held
		sold += cc.Sold
	}
	require.Equal(t, (holds-50)*seats, held)
	require.Equal(t, 50*seats, sold)
	checkOwnership(t, n4, shard, ev.ID, acked)

	// n4 is a voter now and the shard still takes writes.
	require.Contains(t, c.leader(shard).Shard(shard).Status().Voters, "n4")
	c.proposeOK(shard, &fsm.Hold{Event: ev.ID, Buyer: "late", Seats: []string{"A-1-2"}})
	c.waitSame(shard)
}

// TestRemovedMemberNoLongerCounts removes n3 from every shard while n3 keeps
// running. {n1, n2} still commit; once n2 is stopped, n1 must not commit on
// its own even though n3 is alive: a removed node no longer counts for
// quorum (if it did, n1 and n3 would be a majority of three).
func TestRemovedMemberNoLongerCounts(t *testing.T) {
	const shards = 2
	c := newCluster(t, 3, shards, nil)
	ev := testEvent("remove", 10, 10)
	shard := ShardOf(ev.ID, shards)
	c.proposeOK(shard, &fsm.CreateEvent{Event: ev})

	for s := 0; s < shards; s++ {
		c.removeFromShard(s, "n3")
	}
	for s := 0; s < shards; s++ {
		c.waitFor(fmt.Sprintf("n3 gone from shard %d", s), func() error {
			for _, id := range []string{"n1", "n2"} {
				st := c.node(id).Shard(s).Status()
				if !assert.ObjectsAreEqual([]string{"n1", "n2"}, st.Voters) {
					return fmt.Errorf("%s sees voters %v", id, st.Voters)
				}
				if _, ok, err := c.node(id).Shard(s).Store().Node("n3"); err != nil || ok {
					return fmt.Errorf("%s still records n3's addresses (err %v)", id, err)
				}
			}
			return nil
		})
	}
	res := c.proposeOK(shard, &fsm.Hold{Event: ev.ID, Buyer: "u1", Seats: []string{"A-1-1"}})
	acked := []ackedHold{{id: res.Hold.ID, buyer: "u1", seats: []string{"A-1-1"}}}

	c.stop("n2")
	n1, n3 := c.node("n1"), c.node("n3")
	// For several election rounds, nothing commits and n3 never leads.
	deadline := time.Now().Add(10 * testElectionTimeout)
	attempts := 0
	for i := 0; time.Now().Before(deadline); i++ {
		for _, n := range []*Node{n1, n3} {
			ctx, cancel := context.WithTimeout(context.Background(), 4*testHeartbeatTimeout)
			res, err := n.Shard(shard).Propose(ctx, &fsm.Hold{Event: ev.ID, Buyer: fmt.Sprintf("v%d", i), Seats: []string{nthSeat(10+i, 10, 10)}})
			cancel()
			attempts++
			require.Error(t, err, "%s committed a write without a quorum (result %+v)", n.ID(), res)
			require.Contains(t, []boxoffice.Code{boxoffice.CodeNotLeader, boxoffice.CodeUnavailable, boxoffice.CodeTimeout}, boxoffice.CodeOf(err), "%v", err)
		}
		for s := 0; s < shards; s++ {
			require.False(t, n3.Shard(s).IsLeader(), "removed n3 leads shard %d", s)
		}
		time.Sleep(5 * pollInterval)
	}
	t.Logf("%d proposals refused without a quorum", attempts)
	for s := 0; s < shards; s++ {
		require.False(t, n1.Shard(s).IsLeader(), "n1 alone still leads shard %d", s)
	}

	// With n2 back, {n1, n2} commit again; n3 stays out.
	c.start("n2")
	res = c.proposeOK(shard, &fsm.Hold{Event: ev.ID, Buyer: "u2", Seats: []string{"A-1-2"}})
	acked = append(acked, ackedHold{id: res.Hold.ID, buyer: "u2", seats: []string{"A-1-2"}})
	c.stop("n3")
	c.waitSame(shard)
	for _, n := range c.live() {
		checkOwnership(t, n, shard, ev.ID, acked)
		require.Equal(t, []string{"n1", "n2"}, n.Shard(shard).Status().Voters)
	}
}

// TestWholeClusterRestart stops every node and starts them all again from
// their data dirs: every acknowledged hold and purchase is still there, on
// every shard, and the cluster takes writes again. Some nodes took
// snapshots before the stop, so they restart from a snapshot plus the log
// after it, the others from the log alone.
func TestWholeClusterRestart(t *testing.T) {
	const shards = 2
	c := newCluster(t, 3, shards, func(cfg *Config) { cfg.TrailingLogs = 16 })
	type evState struct {
		ev     boxoffice.Event
		shard  int
		acked  []ackedHold
		nextSt int
	}
	var events []*evState
	for s := 0; s < shards; s++ {
		ev := testEvent(eventOnShard("restart-all", s, shards), 20, 20)
		c.proposeOK(s, &fsm.CreateEvent{Event: ev})
		events = append(events, &evState{ev: ev, shard: s})
	}
	write := func(e *evState, n int) {
		cmds := make([]fsm.Command, n)
		for i := range cmds {
			cmds[i] = &fsm.Hold{Event: e.ev.ID, Buyer: fmt.Sprintf("b%d", e.nextSt), Seats: []string{nthSeat(e.nextSt, 20, 20)}}
			e.nextSt++
		}
		for i, res := range c.proposeAll(e.shard, cmds, 8) {
			require.NoError(t, res.Err)
			h := cmds[i].(*fsm.Hold)
			e.acked = append(e.acked, ackedHold{id: res.Hold.ID, buyer: h.Buyer, seats: h.Seats})
		}
		for i := len(e.acked) - n; i < len(e.acked); i += 5 {
			a := &e.acked[i]
			res := c.proposeOK(e.shard, &fsm.Purchase{Hold: a.id, Buyer: a.buyer, PaymentRef: "pay-" + a.id})
			a.order = res.Order.ID
		}
	}
	for _, e := range events {
		write(e, 60)
	}
	for s := 0; s < shards; s++ {
		c.waitSame(s)
		snapshotNow(t, c.node("n1").Shard(s))
		snapshotNow(t, c.node("n2").Shard(s))
	}
	for _, e := range events {
		write(e, 60)
	}

	for _, id := range []string{"n3", "n2", "n1"} {
		c.stop(id)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	for _, e := range events {
		c.leader(e.shard)
		// A new leader's barrier commits everything its predecessors did.
		c.retryOnLeader(e.shard, "read barrier", func(ctx context.Context, s *Shard) error { return s.ReadBarrier(ctx) })
		c.waitSame(e.shard)
		for _, n := range c.live() {
			checkOwnership(t, n, e.shard, e.ev.ID, e.acked)
		}
		// Writes resume, and an owned seat stays owned.
		res := c.propose(e.shard, &fsm.Hold{Event: e.ev.ID, Buyer: "again", Seats: []string{nthSeat(0, 20, 20)}})
		require.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(res.Err))
		write(e, 10)
		c.waitSame(e.shard)
		for _, n := range c.live() {
			checkOwnership(t, n, e.shard, e.ev.ID, e.acked)
		}
	}
}

// TestFollowerSnapshotThenStop takes a snapshot on a follower, writes more,
// stops the follower and restarts it: it restarts from its snapshot and the
// log after it (Raft replays only what follows the snapshot, so Pebble must
// already hold everything up to it) and loses nothing.
func TestFollowerSnapshotThenStop(t *testing.T) {
	const shards = 1
	c := newCluster(t, 3, shards, func(cfg *Config) { cfg.TrailingLogs = 8 })
	ev := testEvent("follower-snap", 20, 20)
	c.proposeOK(0, &fsm.CreateEvent{Event: ev})
	var acked []ackedHold
	next := 0
	write := func(n int) {
		cmds := make([]fsm.Command, n)
		for i := range cmds {
			cmds[i] = &fsm.Hold{Event: ev.ID, Buyer: fmt.Sprintf("b%d", next), Seats: []string{nthSeat(next, 20, 20)}}
			next++
		}
		for i, res := range c.proposeAll(0, cmds, 8) {
			require.NoError(t, res.Err)
			h := cmds[i].(*fsm.Hold)
			acked = append(acked, ackedHold{id: res.Hold.ID, buyer: h.Buyer, seats: h.Seats})
		}
	}
	write(50)
	leader := c.leader(0)
	var follower *Node
	for _, n := range c.live() {
		if n != leader {
			follower = n
		}
	}
	c.waitSame(0)
	snapshotNow(t, follower.Shard(0))
	snapIndex := raftStat(t, follower.Shard(0), "last_snapshot_index")
	require.Greater(t, snapIndex, uint64(0))
	write(30)
	c.waitSame(0)
	id := follower.ID()
	c.stop(id)
	rec := &logRecorder{}
	c.member(id).cfg.Logger = slog.New(rec)
	c.start(id)
	c.waitSame(0)
	checkOwnership(t, c.node(id), 0, ev.ID, acked)
	// Pebble already held everything up to the snapshot: the restart did
	// not have to load it again.
	require.False(t, rec.contains(restoreOnStartMsg), "restart fell back to restoring the snapshot")
}

// TestLeaderSpread: with rebalancing on, the leaders of 4 shards spread over
// 3 nodes so that each leads 1 or 2 (floor(S/N)..ceil(S/N)).
func TestLeaderSpread(t *testing.T) {
	const (
		shards = 4
		nodes  = 3
	)
	c := newCluster(t, nodes, shards, func(cfg *Config) { cfg.RebalanceInterval = 300 * time.Millisecond })
	lo, hi := shards/nodes, (shards+nodes-1)/nodes
	spread := func() (map[string]int, error) {
		leads := map[string]int{}
		for s := 0; s < shards; s++ {
			var leader string
			for _, n := range c.live() {
				if n.Shard(s).IsLeader() {
					leader = n.ID()
				}
			}
			if leader == "" {
				return leads, fmt.Errorf("shard %d has no leader", s)
			}
			leads[leader]++
		}
		for _, n := range c.live() {
			if l := leads[n.ID()]; l < lo || l > hi {
				return leads, fmt.Errorf("%s leads %d shards, want %d..%d (all: %v)", n.ID(), l, lo, hi, leads)
			}
		}
		return leads, nil
	}
	c.waitFor("leaders spread over the nodes", func() error { _, err := spread(); return err })
	// The spread is stable: no node keeps handing shards around.
	time.Sleep(3 * 300 * time.Millisecond)
	leads, err := spread()
	require.NoError(t, err)
	t.Logf("leaders per node: %v", leads)

	// Every shard still takes writes on its (new) leader, and every replica
	// knows where each leader is.
	for s := 0; s < shards; s++ {
		ev := testEvent(eventOnShard("spread", s, shards), 2, 2)
		c.proposeOK(s, &fsm.CreateEvent{Event: ev})
		c.waitFor(fmt.Sprintf("leader of shard %d known everywhere", s), func() error {
			want := c.leader(s).Self()
			for _, n := range c.live() {
				if got, ok := n.LeaderNode(s); !ok || got != want {
					return fmt.Errorf("%s thinks the leader is %+v (ok %v), want %+v", n.ID(), got, ok, want)
				}
			}
			return nil
		})
	}
}

// TestLeaderSpreadSettlesWithADeadNode: when a voter dies and the survivors
// cannot all lead within floor(S/N)..ceil(S/N) (3 shards over 2 live nodes
// of 3), rebalancing must settle on the best spread it can (2 and 1) rather
// than hand a shard back and forth between the survivors forever: every
// hand-over is a moment in which the shard refuses writes.
func TestLeaderSpreadSettlesWithADeadNode(t *testing.T) {
	const (
		shards    = 3
		interval  = 200 * time.Millisecond
		nodeCount = 3
	)
	c := newCluster(t, nodeCount, shards, func(cfg *Config) { cfg.RebalanceInterval = interval })
	leads := func() map[string]int {
		m := map[string]int{}
		for s := 0; s < shards; s++ {
			m[c.leader(s).ID()]++
		}
		return m
	}
	c.waitFor("one shard per node", func() error {
		m := leads()
		if len(m) != nodeCount {
			return fmt.Errorf("leaders: %v", m)
		}
		return nil
	})

	c.stop("n3")
	c.waitFor("the survivors lead 2 and 1", func() error {
		m := leads()
		if m["n1"]+m["n2"] != shards || m["n1"] == 0 || m["n2"] == 0 {
			return fmt.Errorf("leaders: %v", m)
		}
		return nil
	})
	terms := func() []uint64 {
		var out []uint64
		for s := 0; s < shards; s++ {
			out = append(out, c.node("n1").Shard(s).rf().CurrentTerm())
		}
		return out
	}
	before := terms()
	time.Sleep(10 * interval) // ten rebalancing rounds
	after := terms()
	require.Equal(t, before, after, "leadership kept moving between n1 and n2: terms per shard went from %v to %v", before, after)
}

// TestReadBarrierOnIdleShard: a strong read must not wait for the next
// write. hashicorp/raft hands the FSM commands and configuration changes
// only, not a new leader's no-op nor the barrier a strong read appends, so
// the store's applied index can stay below the commit index; the read must
// still return at once when those are all that it lacks.
func TestReadBarrierOnIdleShard(t *testing.T) {
	c := newCluster(t, 3, 1, func(cfg *Config) {
		cfg.SweepInterval = time.Hour // no periodic writes: the shard is idle
	})
	ev := testEvent("idle", 5, 5)
	c.proposeOK(0, &fsm.CreateEvent{Event: ev})

	strongRead := func(n *Node) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		require.NoError(t, n.Shard(0).ReadBarrier(ctx), "strong read on %s", n.ID())
		_, err := n.Shard(0).Store().Event(ev.ID)
		require.NoError(t, err, "a strong read on %s sees the acknowledged event", n.ID())
	}
	leader := c.leader(0)
	strongRead(leader) // the first in this term appends a barrier
	strongRead(leader) // the barrier is now the newest entry

	// A new leader's newest entry is its no-op.
	var next *Node
	for _, n := range c.live() {
		if n != leader {
			next = n
		}
	}
	require.NoError(t, leader.Shard(0).TransferLeadership(next.ID()))
	c.waitFor("the new leader", func() error {
		if !next.Shard(0).IsLeader() {
			return fmt.Errorf("%s does not lead yet", next.ID())
		}
		return nil
	})
	strongRead(next)
	strongRead(next)

	// Writes after the barrier are seen as well.
	res := c.proposeOK(0, &fsm.Hold{Event: ev.ID, Buyer: "u1", Seats: []string{"A-1-1"}})
	strongRead(next)
	_, err := next.Shard(0).Store().Hold(res.Hold.ID)
	require.NoError(t, err)
}
