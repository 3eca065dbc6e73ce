package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	raft  *raft.Raft
	store *fsm.Store
	fsm   *raftFSM
	prop  *proposer

	bolt      *raftboltdb.BoltStore
	transport *raft.NetworkTransport

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
	s := &Shard{id: id, node: n, store: store, fsm: newRaftFSM(store, observerOf(&n.cfg))}
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
	logs, err := raft.NewLogCache(1024, bolt)
	if err != nil {
		return err
	}
	logOut := cfg.RaftLogOutput
	if logOut == nil {
		logOut = discard{}
	}
	snaps, err := raft.NewFileSnapshotStore(dir, cfg.SnapshotsRetained, logOut)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
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
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          s.node.mux.layer(s.id),
		MaxPool:         8,
		Timeout:         10 * time.Second,
		MaxRPCsInFlight: 1,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   fmt.Sprintf("raft-net[%s/%d]", cfg.ID, s.id),
			Level:  hclog.LevelFromString(cfg.RaftLogLevel),
			Output: logOut,
		}),
	})

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
	if err := s.checkSnapshotCovered(snaps); err != nil {
		return err
	}

	hasState, err := raft.HasExistingState(logs, bolt, snaps)
	if err != nil {
		return err
	}
	if cfg.Bootstrap && !hasState {
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(s.node.raftAddr),
		}}}
		if err := raft.BootstrapCluster(rc, logs, bolt, snaps, s.transport, conf); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, bolt, snaps, s.transport)
	if err != nil {
		return err
	}
	s.raft = r
	s.prop = newProposer(r, &s.node.cfg, s.id)
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
	if s.raft.State() != raft.Leader {
		return fsm.Result{}, boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	return s.prop.propose(ctx, fsm.EncodeCommand(c))
}

// Store is the shard's local state, for reads.
func (s *Shard) Store() *fsm.Store { return s.store }

// ID is the shard id.
func (s *Shard) ID() int { return s.id }

// IsLeader reports whether this node leads the shard now.
func (s *Shard) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the id of the shard's leader as this node knows it, or "".
func (s *Shard) Leader() string {
	_, id := s.raft.LeaderWithID()
	return string(id)
}

// ReadBarrier makes a following local read linearizable: it confirms that
// this node still leads the shard (a quorum answers) and waits until the
// state machine has applied everything committed before the call.
func (s *Shard) ReadBarrier(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	if err := s.CaughtUp(); err != nil {
		return err
	}
	commit := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
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
	term := s.raft.CurrentTerm()
	if s.readyTerm.Load() == term {
		return nil
	}
	if err := s.raft.Barrier(s.node.cfg.ApplyTimeout).Error(); err != nil {
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
		Term:         s.raft.CurrentTerm(),
		AppliedIndex: s.store.AppliedIndex(),
		CommitIndex:  s.raft.CommitIndex(),
		State:        s.raft.State().String(),
		Replicas:     []string{},
		Voters:       []string{},
	}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
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
	f := s.raft.GetConfiguration()
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
	f := s.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, s.node.cfg.ApplyTimeout)
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
	if err := waitFuture(ctx, s.raft.RemoveServer(raft.ServerID(id), 0, s.node.cfg.ApplyTimeout)); err != nil {
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
func (s *Shard) TransferLeadership(to string) error {
	if !s.IsLeader() {
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "node %s does not lead shard %d", s.node.cfg.ID, s.id)
	}
	if to == "" {
		return raftErr(s.raft.LeadershipTransfer().Error())
	}
	servers, err := s.servers()
	if err != nil {
		return raftErr(err)
	}
	for _, srv := range servers {
		if string(srv.ID) == to && srv.Suffrage == raft.Voter {
			return raftErr(s.raft.LeadershipTransferToServer(srv.ID, srv.Address).Error())
		}
	}
	return boxoffice.Errorf(boxoffice.CodeMemberNotFound, "node %q is not a voter of shard %d", to, s.id)
}

// Snapshot takes a Raft snapshot now (tests and operators).
func (s *Shard) Snapshot() error { return s.raft.Snapshot().Error() }

// close stops the shard in order: no new proposals, wait for in-flight ones,
// stop Raft, then close the log and Pebble.
func (s *Shard) close() error {
	// In-flight entries get ApplyTimeout to commit. One that cannot (the
	// shard lost its quorum) would hold the proposer forever: shutting Raft
	// down answers it, as unavailable.
	proposed := make(chan struct{})
	go func() {
		s.prop.close()
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
	go func() { shut <- s.raft.Shutdown().Error() }()
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
