package raftnode

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"boxoffice/fsm"
)

// raftFSM adapts an fsm.Store to hashicorp/raft. Raft hands it committed
// entries in batches; all of a batch's effects and the new applied index go
// into one Pebble batch.
type raftFSM struct {
	store *fsm.Store
	obs   Observer

	// applied is closed and replaced after every batch, waking strong
	// reads that wait for an index.
	mu      sync.Mutex
	applied chan struct{}
}

var _ raft.BatchingFSM = (*raftFSM)(nil)

func newRaftFSM(store *fsm.Store, obs Observer) *raftFSM {
	return &raftFSM{store: store, obs: obs, applied: make(chan struct{})}
}

func (f *raftFSM) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]fsm.Entry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type == raft.LogCommand {
			entries[i].Data = l.Data
		}
	}
	start := time.Now()
	results, err := f.store.ApplyEntries(entries)
	f.obs.BatchApplied(f.store.Shard(), len(entries), time.Since(start))
	if err != nil {
		// The log holds something this replica cannot apply, or Pebble
		// failed. Going on would let replicas diverge: halt.
		panic(fmt.Sprintf("raftnode: shard %d: %v", f.store.Shard(), err))
	}
	out := make([]any, len(logs))
	for i, r := range results {
		if r != nil {
			out[i] = r
		}
	}
	f.mu.Lock()
	close(f.applied)
	f.applied = make(chan struct{})
	f.mu.Unlock()
	return out
}

func (f *raftFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// appliedCh returns a channel closed at the next applied batch.
func (f *raftFSM) appliedCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// Snapshot syncs Pebble (Raft will drop the log up to this index) and pins a
// Pebble snapshot that Persist streams off the FSM goroutine.
func (f *raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return &raftSnapshot{sn: sn}, nil
}

func (f *raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return err
	}
	f.mu.Lock()
	close(f.applied)
	f.applied = make(chan struct{})
	f.mu.Unlock()
	return nil
}

type raftSnapshot struct{ sn *fsm.Snapshot }

func (s *raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *raftSnapshot) Release() { s.sn.Close() }
