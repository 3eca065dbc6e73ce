package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"boxoffice"
	"boxoffice/fsm"
)

// Shard is one Raft group on this node: its log, its state machine and its
// proposal batcher.
type Shard struct {
	id    int
	node  *Node
	store *fsm.Store
	fsm   *raftFSM

	// The shard's Raft and its proposer. They are replaced together, once
	// in a long while, when a stuck leadership transfer is recovered from
	// (restartRaft); readers load them through rf and pr.
	raftP atomic.Pointer[raft.Raft]
	propP atomic.Pointer[proposer]

	// What a restart of Raft reuses: its config and stores.
	rc    *raft.Config
	bolt  *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
	// transport is the current Raft's; only restartRaft and close, under
	// lifeMu, replace or close it after the start.
	transport *raft.NetworkTransport
	// lifeMu orders restartRaft and close; closed is set by close.
	lifeMu sync.Mutex
	closed bool
	// xferBlockedSince is when (unix ns) this shard, as leader in term
	// xferBlockedTerm, began to refuse writes because a leadership
	// transfer is in progress; 0 while it does not.
	xferBlockedMu    sync.Mutex
	xferBlockedSince int64
	xferBlockedTerm  uint64
	restarts         atomic.Int64

	// xferMu serializes leadership transfers; xferFailed holds, per
	// target ("" for any), the term in which a transfer to it failed
	// (see TransferLeadership).
	xferMu     sync.Mutex
	xferFailed map[string]uint64

	// readyTerm is the term in which this node, as leader, has applied a
	// barrier: from then on its commit index covers every entry committed
	// by earlier leaders, and strong reads may rely on it.
	readyTerm atomic.Uint64
}

func openShard(n *Node, id int) (*Shard, error) {
	cfg := n.cfg
	dir := filepath.Join(cfg.DataDir, fmt.Sprintf("shard-%d", id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	scfg := fsm.DefaultConfig()
	scfg.Dir = filepath.Join(dir, "pebble")
	scfg.Shard = id
	store, err := fsm.Open(scfg)
	if err != nil {
		return nil, err
	}
	s := &Shard{id: id, node: n, store: store, fsm: newRaftFSM(store, observerOf(&n.cfg)), xferFailed: map[string]uint64{}}
	if err := s.startRaft(dir); err != nil {
		store.Close()
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	return s, nil
}

func (s *Shard) startRaft(dir string) error {
	cfg := s.node.cfg
	// fsync stays on: an acknowledged write must survive SIGKILL.
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	s.bolt = bolt
	logOut := cfg.RaftLogOutput
	if logOut == nil {
		logOut = discard{}
	}
	snaps, err := raft.NewFileSnapshotStore(dir, cfg.SnapshotsRetained, logOut)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	s.snaps = snaps

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	// Pebble keeps its own applied index, durable at least up to the newest
	// snapshot (Snapshot syncs it), and skips entries it already has: no
	// need to reload the snapshot on every start.
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = hclog.New(&hclog.LoggerOptions{
		Name:   fmt.Sprintf("raft[%s/%d]", cfg.ID, s.id),
		Level:  hclog.LevelFromString(cfg.RaftLogLevel),
		Output: logOut,
	})
	s.rc = rc
	if err := s.checkSnapshotCovered(snaps); err != nil {
		return err
	}
	return s.newRaft(s.node.mux.layer(s.id), cfg.Bootstrap)
}

// transportTimeout bounds one Raft RPC (an AppendEntries of up to
// MaxAppendEntries entries, a TimeoutNow) on a connection.
const transportTimeout = 10 * time.Second

// newRaft starts the shard's Raft (and its proposer) on its stores, with a
// new transport on stream. It bootstraps a single-node cluster first if
// asked to and the stores are empty.
func (s *Shard) newRaft(stream *streamLayer, bootstrap bool) error {
	cfg := s.node.cfg
	logOut := cfg.RaftLogOutput
	if logOut == nil {
		logOut = discard{}
	}
	logs, err := raft.NewLogCache(1024, s.bolt)
	if err != nil {
		return err
	}
	// No pipelined replication (MaxRPCsInFlight 1): hashicorp/raft v1.8.0's
	// pipeline can wedge for good. Its answer decoder stops at the first
	// refused or failed answer, its channels are unbuffered at the default
	// of 2 in flight, and the sending loop, if it picks one more entry to
	// send before it notices the decoder ended, blocks forever handing it
	// over: that follower never gets another entry (heartbeats, from
	// another goroutine, keep it from calling an election) and Shutdown
	// waits for the stuck goroutine forever. internal/faulttest hit it
	// (3 nodes, seed 1795613084506142756, round 107, a membership change);
	// hashicorp/raft#612 reports the symptom. Without the pipeline each
	// follower gets one AppendEntries at a time, of up to MaxAppendEntries
	// entries, which the proposer's batching keeps full under load.
	transport := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          stream,
		MaxPool:         8,
		Timeout:         transportTimeout,
		MaxRPCsInFlight: 1,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   fmt.Sprintf("raft-net[%s/%d]", cfg.ID, s.id),
			Level:  hclog.LevelFromString(cfg.RaftLogLevel),
			Output: logOut,
		}),
	})
	hasState, err := raft.HasExistingState(logs, s.bolt, s.snaps)
	if err != nil {
		transport.Close()
		return err
	}
	if bootstrap && !hasState {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(s.node.raftAddr),
		}}}
		if err := raft.BootstrapCluster(s.rc, logs, s.bolt, s.snaps, transport, conf); err != nil {
			transport.Close()
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(s.rc, s.fsm, logs, s.bolt, s.snaps, transport)
	if err != nil {
		transport.Close()
		return err
	}
	s.transport = transport
	s.raftP.Store(r)
	s.propP.Store(newProposer(r, &s.node.cfg, s.id, s.noteApply))
	return nil
}

// rf is the shard's current Raft.
func (s *Shard) rf() *raft.Raft { return s.raftP.Load() }

// pr is the shard's current proposer.
func (s *Shard) pr() *proposer { return s.propP.Load() }

// noteApply learns from each outcome of an entry or barrier this node
// proposed whether a leadership transfer is blocking its writes.
func (s *Shard) noteApply(err error) {
	switch {
	case err == nil:
		s.setTransferBlocked(0, 0)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		term := s.rf().CurrentTerm()
		s.xferBlockedMu.Lock()
		if s.xferBlockedSince == 0 || s.xferBlockedTerm != term {
			s.xferBlockedSince, s.xferBlockedTerm = time.Now().UnixNano(), term
		}
		s.xferBlockedMu.Unlock()
	}
}

func (s *Shard) setTransferBlocked(since int64, term uint64) {
	s.xferBlockedMu.Lock()
	s.xferBlockedSince, s.xferBlockedTerm = since, term
	s.xferBlockedMu.Unlock()
}

// transferStuckAfter is how long a leader may refuse writes for a
// leadership transfer before it is taken to be stuck: longer than a
// transfer can take in hashicorp/raft (the wait for the target to catch
// up, the TimeoutNow RPC, and the wait for the target's election).
func (s *Shard) transferStuckAfter() time.Duration {
	return 2*s.node.cfg.ElectionTimeout + transportTimeout + 2*s.node.cfg.HeartbeatTimeout
}

// transferStuck reports whether this shard, leading, has refused writes
// for a leadership transfer, all through its current term, for longer
// than any transfer takes.
func (s *Shard) transferStuck(now time.Time) bool {
	s.xferBlockedMu.Lock()
	since, term := s.xferBlockedSince, s.xferBlockedTerm
	s.xferBlockedMu.Unlock()
	return since != 0 && s.IsLeader() && term == s.rf().CurrentTerm() &&
		now.Sub(time.Unix(0, since)) > s.transferStuckAfter()
}

// restartRaft stops the shard's Raft and starts a new one on the same
// stores, as a restart of the process would, but for this shard alone.
//
// It is the way out of hashicorp/raft v1.8.0's stuck leadership transfer
// (#696, fixed upstream by PR #708, unreleased): a transfer goroutine
// blocked forever on a follower's replication channel keeps the
// leadership-transfer flag set, and nothing else clears it, so the node
// refuses every write of every term it leads while Raft keeps it leader
// (its heartbeats still reach the followers). A new Raft has a clear flag;
// the blocked goroutine of the old one stays parked (it touches nothing).
// Entries queued in the old proposer are answered as unavailable (their
// outcome unknown, as on any leader change).
func (s *Shard) restartRaft(reason string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return nil
	}
	old := s.rf()
	s.node.logger.Warn("restarting the shard's raft", "shard", s.id, "reason", reason)
	proposed := make(chan struct{})
	go func() {
		s.pr().close()
		close(proposed)
	}()
	shut := make(chan error, 1)
	go func() { shut <- old.Shutdown().Error() }()
	select {
	case <-shut:
	case <-time.After(shutdownWaitMax):
		return fmt.Errorf("raftnode: shard %d: raft did not shut down within %v for a restart", s.id, shutdownWaitMax)
	}
	select {
	case <-proposed:
	case <-time.After(s.node.cfg.ApplyTimeout):
		s.node.logger.Warn("restarting raft with entries it never answered", "shard", s.id)
	}
	// Shutdown closed the old transport and with it the stream layer:
	// the new transport needs a fresh one.
	if err := s.newRaft(s.node.mux.replaceLayer(s.id), false); err != nil {
		return fmt.Errorf("raftnode: shard %d: restart raft: %w", s.id, err)
	}
	s.readyTerm.Store(0)
	s.setTransferBlocked(0, 0)
	s.restarts.Add(1)
	return nil
}

// checkSnapshotCovered enforces the rule that makes NoSnapshotRestoreOnStart
// safe: Raft replays only the entries after its newest snapshot, so Pebble
// must already hold everything up to that snapshot. If it does not (Pebble
// lost its directory, or a restore was interrupted), restore the snapshot
// into Pebble before Raft starts.
func (s *Shard) checkSnapshotCovered(snaps *raft.FileSnapshotStore) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	newest := metas[0]
	if s.store.AppliedIndex() >= newest.Index {
		return nil
	}
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", newest.ID, err)
	}
	s.node.logger.Warn("pebble is behind the newest raft snapshot; restoring it", "shard", s.id,
		"pebble_applied", s.store.AppliedIndex(), "snapshot_index", newest.Index)
	return s.fsm.Restore(rc)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Propose replicates one command through this shard's log and returns its
// result. It fails with CodeNotLeader unless this node leads the shard.
func (s *Shard) Propose(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	if s.rf().State() != raft.Leader {
		return fsm.Result{}, boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	return s.pr().propose(ctx, fsm.EncodeCommand(c))
}

// Store is the shard's local state, for reads.
func (s *Shard) Store() *fsm.Store { return s.store }

// ID is the shard id.
func (s *Shard) ID() int { return s.id }

// IsLeader reports whether this node leads the shard now.
func (s *Shard) IsLeader() bool { return s.rf().State() == raft.Leader }

// Leader returns the id of the shard's leader as this node knows it, or "".
func (s *Shard) Leader() string {
	_, id := s.rf().LeaderWithID()
	return string(id)
}

// ReadBarrier makes a following local read linearizable: it confirms that
// this node still leads the shard (a quorum answers) and waits until the
// state machine has applied everything committed before the call.
func (s *Shard) ReadBarrier(ctx context.Context) error {
	if s.rf().State() != raft.Leader {
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	if err := s.CaughtUp(); err != nil {
		return err
	}
	commit := s.rf().CommitIndex()
	if err := s.rf().VerifyLeader().Error(); err != nil {
		return raftErr(err)
	}
	return s.WaitApplied(ctx, s.lastFSMIndex(commit))
}

// CaughtUp returns once this leader's state machine has applied every
// entry committed before its term: at once after the first call of a term.
// A new leader's commit index may lag the entries its predecessors
// committed until it commits one of its own term, so until then its local
// state can miss them (an event just created reads as not found); handlers
// that check a write against local state before proposing call this first.
func (s *Shard) CaughtUp() error {
	term := s.rf().CurrentTerm()
	if s.readyTerm.Load() == term {
		return nil
	}
	if err := s.rf().Barrier(s.node.cfg.ApplyTimeout).Error(); err != nil {
		s.noteApply(err)
		return raftErr(err)
	}
	s.readyTerm.Store(term)
	return nil
}

// lastFSMIndex returns the newest index at or below index of an entry that
// the state machine is handed. hashicorp/raft hands it commands and
// configuration changes only: a new leader's no-op and the barriers above
// never move the store's applied index, so waiting for one of them would
// wait for the next write.
func (s *Shard) lastFSMIndex(index uint64) uint64 {
	for index > s.store.AppliedIndex() {
		var l raft.Log
		if err := s.bolt.GetLog(index, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				// Compacted: a snapshot covers it, and the store holds
				// everything that snapshot holds.
				return 0
			}
			return index // cannot tell: wait for it, as for any entry
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return index
		}
		index--
	}
	return index
}

// WaitApplied waits until the state machine has applied index.
func (s *Shard) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := s.fsm.appliedCh()
		if s.store.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
}

// Status is one shard's view for /v1/cluster.
type Status struct {
	ID           int      `json:"id"`
	Leader       string   `json:"leader"`
	Replicas     []string `json:"replicas"`
	Voters       []string `json:"voters"`
	Term         uint64   `json:"term"`
	AppliedIndex uint64   `json:"appliedIndex"`
	CommitIndex  uint64   `json:"commitIndex"`
	State        string   `json:"state"`
}

// Status reports the shard as this node sees it.
func (s *Shard) Status() Status {
	st := Status{
		ID:           s.id,
		Leader:       s.Leader(),
		Term:         s.rf().CurrentTerm(),
		AppliedIndex: s.store.AppliedIndex(),
		CommitIndex:  s.rf().CommitIndex(),
		State:        s.rf().State().String(),
		Replicas:     []string{},
		Voters:       []string{},
	}
	if f := s.rf().GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			st.Replicas = append(st.Replicas, string(srv.ID))
			if srv.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, string(srv.ID))
			}
		}
	}
	return st
}

// servers returns the shard's Raft configuration.
func (s *Shard) servers() ([]raft.Server, error) {
	f := s.rf().GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// AddMember adds a node as a voter of this shard and records its addresses.
// This node must lead the shard. Adding a member that is already a voter
// with the same address only refreshes its record.
func (s *Shard) AddMember(ctx context.Context, m boxoffice.Node) error {
	if !s.IsLeader() {
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	// Record the addresses first, so that by the time the new voter counts
	// for quorum every replica can route to it.
	if res, err := s.Propose(ctx, &fsm.PutNode{Node: m}); err != nil {
		return err
	} else if res.Err != nil {
		return res.Err
	}
	f := s.rf().AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, s.node.cfg.ApplyTimeout)
	return raftErr(waitFuture(ctx, f))
}

// waitFuture waits for a Raft future or for ctx. hashicorp/raft may never
// answer a future it had not finished when it shut down, and it shuts down
// on its own when a leader removes itself (ShutdownOnRemove): waiting on
// Error alone would then wait forever. A future left unanswered costs one
// parked goroutine.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// RemoveMember removes a node from this shard. This node must lead it.
// Removing a node that is not a member is not an error.
func (s *Shard) RemoveMember(ctx context.Context, id string) error {
	if !s.IsLeader() {
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	if err := waitFuture(ctx, s.rf().RemoveServer(raft.ServerID(id), 0, s.node.cfg.ApplyTimeout)); err != nil {
		return raftErr(err)
	}
	res, err := s.Propose(ctx, &fsm.RemoveNode{ID: id})
	if err != nil {
		return err
	}
	return res.Err
}

// TransferLeadership hands this shard's leadership to the node `to`, or to
// any up-to-date voter if to is "".
//
// A transfer to a node that failed to take over earlier in the same term
// is refused (CodeUnavailable): in hashicorp/raft v1.8.0 (#696) the failed
// transfer may have left a catch-up request queued on that follower's
// replication channel, whose one slot a second transfer then blocks on;
// if the leader steps down meanwhile, the follower's replication stops
// without ever taking it, and the leadership-transfer flag stays set for
// good: every later term this node leads refuses all writes. Transfers of
// one shard also run one at a time.
func (s *Shard) TransferLeadership(to string) error {
	s.xferMu.Lock()
	defer s.xferMu.Unlock()
	if !s.IsLeader() {
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	if to == s.node.cfg.ID {
		return nil // it leads already (the request raced an earlier move to it)
	}
	term := s.rf().CurrentTerm()
	if t, failed := s.xferFailed[to]; failed && t == term {
		target := to
		if target == "" {
			target = "any voter"
		}
		return boxoffice.Errorf(boxoffice.CodeUnavailable,
			"a leadership transfer of shard %d to %s already failed in term %d; retry in the next term or to another node", s.id, target, term)
	}
	var err error
	if to == "" {
		err = s.rf().LeadershipTransfer().Error()
	} else {
		var servers []raft.Server
		servers, err = s.servers()
		if err != nil {
			return raftErr(err)
		}
		i := slices.IndexFunc(servers, func(srv raft.Server) bool { return string(srv.ID) == to && srv.Suffrage == raft.Voter })
		if i < 0 {
			return boxoffice.Errorf(boxoffice.CodeMemberNotFound, "node %q is not a voter of shard %d", to, s.id)
		}
		err = s.rf().LeadershipTransferToServer(servers[i].ID, servers[i].Address).Error()
	}
	if err != nil {
		// Remember only the newest term's failures: older terms cannot
		// come back, so the map stays as small as the set of voters.
		for k, t := range s.xferFailed {
			if t < term {
				delete(s.xferFailed, k)
			}
		}
		s.xferFailed[to] = term
		if c := raftErr(err); boxoffice.CodeOf(c) != boxoffice.CodeInternal {
			return c
		}
		// A timeout, or the target refused or could not be reached: the
		// shard keeps its leader, and trying later may succeed.
		return boxoffice.Errorf(boxoffice.CodeUnavailable, "leadership transfer of shard %d failed: %v", s.id, err)
	}
	return nil
}

// Snapshot takes a Raft snapshot now (tests and operators).
func (s *Shard) Snapshot() error { return s.rf().Snapshot().Error() }

// close stops the shard in order: no new proposals, wait for in-flight ones,
// stop Raft, then close the log and Pebble.
func (s *Shard) close() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.closed = true
	// In-flight entries get ApplyTimeout to commit. One that cannot (the
	// shard lost its quorum) would hold the proposer forever: shutting Raft
	// down answers it, as unavailable.
	proposed := make(chan struct{})
	go func() {
		s.pr().close()
		close(proposed)
	}()
	select {
	case <-proposed:
	case <-time.After(s.node.cfg.ApplyTimeout):
		s.node.logger.Warn("closing shard with entries still uncommitted", "shard", s.id)
	}
	// hashicorp/raft's Shutdown waits for its goroutines; we have seen it
	// never return (a replication goroutine parked in the AppendEntries
	// pipeline, now switched off in the transport config; raft#612). Still
	// bounded, so that closing a node cannot hang its caller:
	// past the bound the stores stay open (a goroutine may still use them)
	// and the error says so.
	shut := make(chan error, 1)
	go func() { shut <- s.rf().Shutdown().Error() }()
	var errs []error
	select {
	case err := <-shut:
		errs = append(errs, err)
	case <-time.After(shutdownWaitMax):
		s.node.logger.Error("raft did not shut down; leaving its stores open", "shard", s.id, "waited", shutdownWaitMax)
		return fmt.Errorf("raftnode: shard %d: raft did not shut down within %v", s.id, shutdownWaitMax)
	}
	// Raft answers every entry it took from its apply queue, but not those
	// still in the queue when it stops (BatchApplyCh buffers it, and
	// ApplyLog's futures have no shutdown channel). That happens when a
	// leader removes itself and ShutdownOnRemove stops its Raft with writes
	// queued: the completer then waits forever on such an entry. Give up on
	// it; its callers' deadlines answer them, as outcomes unknown. The
	// completer goroutine stays blocked on a future that can never be
	// answered and touches nothing else.
	select {
	case <-proposed:
	case <-time.After(s.node.cfg.ApplyTimeout):
		s.node.logger.Warn("closing shard with entries Raft never answered", "shard", s.id)
	}
	errs = append(errs, s.transport.Close(), s.bolt.Close(), s.store.Close())
	return errors.Join(errs...)
}

// shutdownWaitMax bounds the wait for hashicorp/raft's Shutdown.
const shutdownWaitMax = 30 * time.Second
