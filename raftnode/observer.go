package raftnode

import "time"

// Observer receives measurements of the write path. raftnode knows nothing
// of how they are exported (the HTTP layer turns them into Prometheus
// metrics); a nil Observer in Config records nothing. Methods are called
// from the hot path and must not block.
type Observer interface {
	// EntryCommitted: an entry of `commands` commands that this node
	// proposed as leader was committed and applied, `latency` after it was
	// handed to Raft.
	EntryCommitted(shard, commands int, latency time.Duration)
	// BatchApplied: this replica's state machine applied `entries` entries
	// in one batch, taking d.
	BatchApplied(shard, entries int, d time.Duration)
	// HoldsExpired: a sweep this node proposed as leader ended n holds.
	HoldsExpired(shard, n int)
}

type nopObserver struct{}

func (nopObserver) EntryCommitted(int, int, time.Duration) {}
func (nopObserver) BatchApplied(int, int, time.Duration)   {}
func (nopObserver) HoldsExpired(int, int)                  {}
