// Package raftnode is one node of the cluster: its shard groups (one
// hashicorp/raft group per shard, log and stable store in raft-boltdb, state
// in fsm on Pebble), the one TCP port they share, bootstrap, membership,
// leadership transfer and spread, proposal batching and strong reads.
//
// It knows nothing of HTTP: httpapi forwards requests between nodes using the
// addresses this package replicates.
package raftnode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"boxoffice"
	"boxoffice/fsm"
)

// Node hosts a replica of every shard.
type Node struct {
	cfg      Config
	logger   *slog.Logger
	raftAddr string
	mux      *mux
	shards   []*Shard

	stop chan struct{}
	wg   sync.WaitGroup
}

// New opens the node's data dir, starts its Raft port and every shard group.
// With cfg.Bootstrap on an empty data dir it founds a new cluster; otherwise
// it resumes from its data dir or waits to be added by a member.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RaftAddr == "" {
		cfg.RaftAddr = cfg.RaftBind
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	if err := checkShardCount(cfg.DataDir, cfg.Shards); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.RaftBind)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftBind, err)
	}
	raftAddr := cfg.RaftAddr
	if strings.HasSuffix(raftAddr, ":0") { // tests bind port 0
		raftAddr = ln.Addr().String()
	}
	n := &Node{
		cfg:      cfg,
		logger:   cfg.Logger.With("node", cfg.ID),
		raftAddr: raftAddr,
		mux:      newMux(ln, raftAddr, cfg.Logger, cfg.Dial),
		stop:     make(chan struct{}),
	}
	for i := 0; i < cfg.Shards; i++ {
		n.mux.layer(i) // register before serving, so no early dial is refused
	}
	go n.mux.serve()
	for i := 0; i < cfg.Shards; i++ {
		s, err := openShard(n, i)
		if err != nil {
			n.closeShards()
			n.mux.close()
			return nil, err
		}
		n.shards = append(n.shards, s)
	}
	n.mux.setLastIndex(func(shard int) (uint64, bool) {
		if shard < 0 || shard >= len(n.shards) {
			return 0, false
		}
		return n.shards[shard].rf().LastIndex(), true
	})
	n.wg.Add(1)
	go n.leaderDuties()
	if cfg.RebalanceInterval > 0 {
		n.wg.Add(1)
		go n.rebalanceLoop()
	}
	return n, nil
}

// checkShardCount records the shard count in the data dir on first start and
// refuses a different count later: events would hash to other shards.
func checkShardCount(dir string, shards int) error {
	path := dir + "/SHARDS"
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return os.WriteFile(path, []byte(strconv.Itoa(shards)+"\n"), 0o644)
	}
	if err != nil {
		return err
	}
	have, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if have != shards {
		return fmt.Errorf("data dir %s was created with %d shards, not %d", dir, have, shards)
	}
	return nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Self is this node's record: id and addresses.
func (n *Node) Self() boxoffice.Node {
	return boxoffice.Node{ID: n.cfg.ID, RaftAddr: n.raftAddr, HTTPAddr: n.cfg.HTTPAddr}
}

// Shards returns every shard group of the node.
func (n *Node) Shards() []*Shard { return n.shards }

// Shard returns shard i.
func (n *Node) Shard(i int) *Shard { return n.shards[i] }

// ShardCount is the number of shards.
func (n *Node) ShardCount() int { return len(n.shards) }

// ShardOf is the shard an event lives in: FNV-1a (64-bit) of the event id,
// modulo the shard count. This function is part of the on-disk format: a
// cluster's events stay where it put them, so never change it.
func ShardOf(eventID string, shards int) int {
	h := fnv.New64a()
	h.Write([]byte(eventID))
	return int(h.Sum64() % uint64(shards))
}

// ShardOfEvent is ShardOf for this node's shard count.
func (n *Node) ShardOfEvent(eventID string) int { return ShardOf(eventID, len(n.shards)) }

// ShardOfID returns the shard named in a hold or order id
// ("h_<shard>.<index>.<pos>"), which fsm derives from the log.
func (n *Node) ShardOfID(id string) (int, bool) {
	s, ok := boxoffice.ShardOfID(id)
	if !ok || s >= len(n.shards) {
		return 0, false
	}
	return s, true
}

// LeaderNode returns the leader of a shard and its addresses as this node
// knows them; ok is false while there is no known leader or its addresses
// are not replicated yet.
func (n *Node) LeaderNode(shard int) (boxoffice.Node, bool) {
	s := n.shards[shard]
	id := s.Leader()
	if id == "" {
		return boxoffice.Node{}, false
	}
	if id == n.cfg.ID {
		return n.Self(), true
	}
	m, ok, err := s.store.Node(id)
	if err != nil || !ok {
		return boxoffice.Node{}, false
	}
	return m, true
}

// Members lists the cluster's members as replicated in shard 0, with this
// node's own record first if shard 0 does not know it yet.
func (n *Node) Members() ([]boxoffice.Node, error) {
	nodes, err := n.shards[0].store.Nodes()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(nodes, func(m boxoffice.Node) bool { return m.ID == n.cfg.ID }) {
		nodes = append([]boxoffice.Node{n.Self()}, nodes...)
	}
	return nodes, nil
}

// sweepIdleTicks: a leader proposes a sweep when one is due, and at least
// every sweepIdleTicks-th SweepInterval even when none is, so that an idle
// leader wedged by a stuck transfer is still seen (transferStuck needs a
// refused write).
const sweepIdleTicks = 10

// leaderDuties runs what only a shard's leader does: it records this node's
// addresses in the shard (so followers can forward to it) and proposes
// expiry sweeps when holds or idempotency records are due.
func (n *Node) leaderDuties() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SweepInterval)
	defer t.Stop()
	ticks := 0
	announce := time.NewTicker(100 * time.Millisecond)
	defer announce.Stop()
	admit := time.NewTicker(n.cfg.AdmissionInterval)
	defer admit.Stop()
	self := n.Self()
	for {
		select {
		case <-n.stop:
			return
		case <-announce.C:
			for _, s := range n.shards {
				if !s.IsLeader() {
					continue
				}
				if m, ok, err := s.store.Node(self.ID); err == nil && ok && m == self {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
				if _, err := s.Propose(ctx, &fsm.PutNode{Node: self}); err != nil {
					n.logger.Debug("announce addresses", "shard", s.id, "err", err)
				}
				cancel()
			}
		case <-admit.C:
			for _, s := range n.shards {
				if s.IsLeader() {
					n.admissionSteps(s)
				}
			}
		case <-t.C:
			ticks++
			for _, s := range n.shards {
				if !s.IsLeader() {
					continue
				}
				// The sweep below is a write at least every sweepIdleTicks
				// intervals, so a leader wedged by a stuck transfer is seen
				// even when idle.
				if s.transferStuck(time.Now()) {
					if err := s.restartRaft("leadership transfer stuck (hashicorp/raft#696)"); err != nil {
						n.logger.Error("recover from a stuck leadership transfer", "shard", s.id, "err", err)
					}
					continue
				}
				// The state machine's clock may run ahead of this node's
				// (a former leader's clock): it is the one Expire uses.
				nowMs := max(time.Now().UnixMilli(), s.store.NowMs())
				if due, err := s.store.SweepDue(nowMs); err == nil && !due && ticks%sweepIdleTicks != 0 {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
				if res, err := s.Propose(ctx, &fsm.Expire{Max: fsm.ExpireMax}); err == nil && res.Expired > 0 {
					observerOf(&n.cfg).HoldsExpired(s.id, res.Expired)
					n.logger.Debug("expired holds", "shard", s.id, "count", res.Expired)
				}
				cancel()
			}
		}
	}
}

// rebalanceLoop spreads leadership so that each node leads about S/N shards.
// Each node looks only at itself: if it leads more than its share, it hands
// one shard to the live voter that leads the fewest, provided that one leads
// at least two fewer: a transfer always narrows the gap between the two
// nodes, so two nodes never hand a shard back and forth (even while a dead
// voter keeps the live ones from all reaching their share).
//
// A transfer is only tried to a node that has answered every liveness ping
// for at least rebalanceHealthyRounds intervals and whose copy of the shard's
// log is within catchUpLagMax entries of this leader's: a transfer to a
// node still catching up (just restarted, or just added) stops the shard's
// writes while it waits and then fails, and repeated failed transfers to one
// node are what wedges hashicorp/raft v1.8.0 (#696, see
// Shard.TransferLeadership). After a failure the shard is left alone for a
// backoff that doubles up to rebalanceBackoffMax.
func (n *Node) rebalanceLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.RebalanceInterval)
	defer t.Stop()
	rb := &rebalancer{healthySince: map[string]time.Time{}, backoff: map[int]shardBackoff{}, lastIndex: map[int]uint64{}}
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.rebalanceOnce(rb, time.Now())
		}
	}
}

// Rebalancing bounds.
const (
	// rebalanceHealthyRounds: how many rebalance intervals a node must have
	// answered every ping before it is handed a shard.
	rebalanceHealthyRounds = 3
	// rebalanceBackoffMax bounds the wait after failed transfers of a shard.
	rebalanceBackoffMax = time.Minute
	// rebalancePingTimeout bounds one liveness ping or index query.
	rebalancePingTimeout = 300 * time.Millisecond
)

// rebalancer is the rebalancing loop's memory; only that loop touches it.
type rebalancer struct {
	// healthySince is when each peer started answering pings without a
	// miss since.
	healthySince map[string]time.Time
	backoff      map[int]shardBackoff
	// lastIndex is each shard's last log index at the previous round: the
	// growth since tells a busy shard from a quiet one.
	lastIndex map[int]uint64
}

// quietestFirst orders the shards a node may hand away: the one whose log
// grew least since the last round first (a transfer stops a shard's writes
// for a moment and sends its clients' requests elsewhere: better a quiet
// shard than the one an on-sale is hammering), the highest id first among
// equals.
func quietestFirst(shards []*Shard, growth map[int]uint64) []*Shard {
	out := slices.Clone(shards)
	slices.SortStableFunc(out, func(a, b *Shard) int {
		if ga, gb := growth[a.id], growth[b.id]; ga != gb {
			if ga < gb {
				return -1
			}
			return 1
		}
		return b.id - a.id
	})
	return out
}

type shardBackoff struct {
	until time.Time
	wait  time.Duration
}

// catchUpLagMax is how far behind the leader's log a transfer target may
// be: one AppendEntries worth of entries, which the leader sends in one
// round trip before it asks the target to take over.
func (n *Node) catchUpLagMax() uint64 { return uint64(n.cfg.MaxAppendEntries) }

func (n *Node) rebalanceOnce(rb *rebalancer, now time.Time) {
	servers, err := n.shards[0].servers()
	if err != nil || len(servers) < 2 {
		return
	}
	leads := make(map[string]int, len(servers))
	addr := make(map[string]string, len(servers))
	var ids []string
	for _, srv := range servers {
		ids = append(ids, string(srv.ID))
		addr[string(srv.ID)] = string(srv.Address)
		leads[string(srv.ID)] = 0
	}
	slices.Sort(ids)
	growth := make(map[int]uint64, len(n.shards))
	for _, s := range n.shards {
		last := s.rf().LastIndex()
		if prev, ok := rb.lastIndex[s.id]; ok && last >= prev {
			growth[s.id] = last - prev
		}
		rb.lastIndex[s.id] = last
	}
	var mine []*Shard
	for _, s := range n.shards {
		l := s.Leader()
		if l == "" {
			return // an election is under way: look again later
		}
		leads[l]++
		if l == n.cfg.ID {
			mine = append(mine, s)
		}
	}
	// Every peer is pinged every round, so that a node that missed one
	// ping starts its healthy period again.
	healthy := map[string]bool{}
	for id := range rb.healthySince {
		if !slices.Contains(ids, id) {
			delete(rb.healthySince, id) // removed from the cluster
		}
	}
	for _, id := range ids {
		if id == n.cfg.ID {
			continue
		}
		if !ping(n.cfg.Dial, addr[id], rebalancePingTimeout) {
			delete(rb.healthySince, id)
			continue
		}
		since, ok := rb.healthySince[id]
		if !ok {
			rb.healthySince[id] = now
			continue
		}
		healthy[id] = now.Sub(since) >= rebalanceHealthyRounds*n.cfg.RebalanceInterval
	}
	floor, ceil := len(n.shards)/len(ids), (len(n.shards)+len(ids)-1)/len(ids)
	// The healthy node that leads the fewest shards, lowest id first.
	target := ""
	for _, id := range ids {
		if id == n.cfg.ID || !healthy[id] || (target != "" && leads[id] >= leads[target]) {
			continue
		}
		target = id
	}
	if target == "" || len(mine) == 0 {
		return
	}
	// Hand a shard over only if that narrows the gap between the two
	// nodes. While a voter is down the live ones may be unable to all
	// lead within floor..ceil; without this check, two of them above
	// ceil would pass a shard back and forth forever.
	if leads[target]+1 >= len(mine) {
		return
	}
	if !(len(mine) > ceil || (len(mine) > floor && leads[target] < floor)) {
		return
	}
	for _, s := range quietestFirst(mine, growth) {
		if b, ok := rb.backoff[s.id]; ok && now.Before(b.until) {
			continue
		}
		theirs, ok := peerLastIndex(n.cfg.Dial, addr[target], s.id, rebalancePingTimeout)
		if ours := s.rf().LastIndex(); !ok || theirs+n.catchUpLagMax() < ours {
			n.logger.Debug("rebalance: target not caught up", "shard", s.id, "to", target, "their_last", theirs, "our_last", ours, "answered", ok)
			continue
		}
		if err := s.TransferLeadership(target); err != nil {
			b := rb.backoff[s.id]
			b.wait = min(max(2*b.wait, n.cfg.RebalanceInterval), rebalanceBackoffMax)
			b.until = now.Add(b.wait)
			rb.backoff[s.id] = b
			n.logger.Info("rebalance: transfer failed", "shard", s.id, "to", target, "err", err, "backoff", b.wait)
			return
		}
		delete(rb.backoff, s.id)
		n.logger.Info("rebalance: transferred leadership", "shard", s.id, "to", target)
		return
	}
}

// Drain prepares a planned shutdown while the node still serves: it tells
// its peers (through their liveness pings) not to hand it leaderships, then
// hands every shard it leads to another voter (TransferAll). A node that
// stopped serving HTTP first would leave its shards' writes waiting for the
// drain and the transfer, since followers forward writes to it until it
// stops leading; drained first, it forwards them on like any follower.
func (n *Node) Drain(timeout time.Duration) {
	n.mux.draining.Store(true)
	n.TransferAll(timeout)
}

// TransferAll hands every shard this node leads to another voter, so that a
// planned shutdown does not wait for elections. It is best effort.
func (n *Node) TransferAll(timeout time.Duration) {
	var wg sync.WaitGroup
	for _, s := range n.shards {
		if !s.IsLeader() {
			continue
		}
		if servers, err := s.servers(); err != nil || len(servers) < 2 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			go func() { done <- s.TransferLeadership("") }()
			select {
			case <-done:
			case <-time.After(timeout):
			}
		}()
	}
	wg.Wait()
}

// Close stops background work, then every shard (in-flight proposals finish
// first), then the Raft port.
func (n *Node) Close() error {
	close(n.stop)
	n.wg.Wait()
	err := n.closeShards()
	return errors.Join(err, n.mux.close())
}

func (n *Node) closeShards() error {
	var errs []error
	for _, s := range n.shards {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// admissionSteps proposes the waiting-room steps due in a shard this node
// leads: the opening of a queue whose time has come, with a seed drawn
// now (nobody knows it before the opening, so arriving early gives no
// edge), and the admission steps that would admit someone or change the
// sold-out state. The state machine computes each step from its own state,
// so a step proposed on stale knowledge does no harm.
func (n *Node) admissionSteps(s *Shard) {
	steps, err := s.store.QueueSteps(time.Now().UnixMilli())
	if err != nil {
		n.logger.Warn("queue steps", "shard", s.id, "err", err)
		return
	}
	if len(steps) == 0 {
		return // the common case: no queue, or nothing due (no write, no barrier)
	}
	if s.CaughtUp() != nil {
		return // a new leader first applies what its predecessors committed
	}
	for _, c := range steps {
		if o, ok := c.(*fsm.OpenQueue); ok {
			var seed [8]byte
			if _, err := rand.Read(seed[:]); err != nil {
				n.logger.Error("draw a queue seed", "shard", s.id, "err", err)
				return
			}
			o.Seed = binary.LittleEndian.Uint64(seed[:])
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
		res, err := s.Propose(ctx, c)
		cancel()
		if err != nil {
			n.logger.Debug("queue step", "shard", s.id, "err", err)
			return
		}
		if res.Admitted > 0 {
			n.logger.Debug("admitted", "shard", s.id, "event", res.Queue.Event, "count", res.Admitted)
		}
	}
}
