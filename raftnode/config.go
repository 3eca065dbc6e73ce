package raftnode

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"boxoffice"
)

// Config configures one node of the cluster.
type Config struct {
	// ID names the node in every shard's Raft configuration.
	ID string
	// DataDir holds one directory per shard: raft.db (log and stable
	// store), snapshots/, and pebble/.
	DataDir string
	// RaftBind is the listen address of the node's one Raft port;
	// RaftAddr is the address peers dial (RaftBind if empty).
	RaftBind string
	RaftAddr string
	// HTTPAddr is where the node's HTTP API is reached; it is replicated so
	// that a follower can forward to a leader.
	HTTPAddr string
	// Shards is the number of shard groups, fixed when the cluster is
	// bootstrapped. A node that joins or restarts must use the same value.
	Shards int
	// Bootstrap makes this node the first member of a new cluster. It is
	// ignored when the data dir already holds Raft state.
	Bootstrap bool

	// Raft timing, tuned for a LAN of loaded machines: a leader heartbeats
	// every HeartbeatTimeout/10; a follower that hears nothing for
	// HeartbeatTimeout..2×HeartbeatTimeout starts an election, so a dead
	// leader is replaced in about a second. A leader that cannot reach a
	// quorum for LeaderLeaseTimeout steps down.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long a leader waits with nothing to send before
	// it tells followers the commit index; low, so follower reads are fresh.
	CommitTimeout time.Duration
	// MaxAppendEntries bounds the entries per AppendEntries RPC and per
	// disk write.
	MaxAppendEntries int

	// Snapshots: every SnapshotInterval, a shard whose log grew by
	// SnapshotThreshold entries since its last snapshot takes one, then
	// keeps TrailingLogs entries so that a briefly lagging follower catches
	// up from the log rather than a snapshot.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotsRetained int

	// Proposal batching: concurrent proposals to a shard are coalesced into
	// one log entry of at most BatchCommandsMax commands and BatchBytesMax
	// bytes. Batching false proposes one entry per command (benchmarks).
	Batching         bool
	BatchCommandsMax int
	BatchBytesMax    int
	// InflightEntriesMax bounds entries proposed but not yet committed.
	// Keep it small: the batcher fills the next entry only while it waits
	// for this bound, so a bound as large as the number of concurrent
	// callers makes every command an entry of its own.
	InflightEntriesMax int

	// ApplyTimeout bounds one proposal's wait for commit and apply.
	ApplyTimeout time.Duration
	// SweepInterval is how often a leader proposes an expiry sweep.
	SweepInterval time.Duration
	// AdmissionInterval is how often a leader looks at the waiting rooms
	// of its shards and proposes the openings and admission steps due.
	AdmissionInterval time.Duration
	// RebalanceInterval is how often a node checks the spread of leaders;
	// zero disables rebalancing.
	RebalanceInterval time.Duration

	// Dial, if set, opens every connection this node makes to a peer's
	// Raft port (Raft RPCs and liveness pings) instead of net.DialTimeout.
	// Tests set it to put a fault-injecting network between nodes
	// (internal/faultnet); production leaves it nil and pays nothing.
	Dial DialFunc

	Logger *slog.Logger
	// Observer receives write-path measurements (nil: none).
	Observer Observer
	// RaftLogOutput receives hashicorp/raft's own log (io.Discard if nil).
	RaftLogOutput io.Writer
	RaftLogLevel  string
}

// DefaultConfig returns defaults for everything but the node's identity and
// addresses.
func DefaultConfig() Config {
	return Config{
		Shards:             4,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		MaxAppendEntries:   128,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  16384,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
		Batching:           true,
		BatchCommandsMax:   512,
		BatchBytesMax:      512 << 10,
		InflightEntriesMax: 4,
		ApplyTimeout:       5 * time.Second,
		SweepInterval:      time.Second,
		AdmissionInterval:  200 * time.Millisecond,
		RebalanceInterval:  2 * time.Second,
		RaftLogLevel:       "warn",
	}
}

// ShardsMax bounds the shard count.
const ShardsMax = 1024

// Validate lists every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("raftnode: "+format, args...)) }
	if !boxoffice.ValidID(c.ID) {
		add("ID %q must match [A-Za-z0-9._-]{1,64}", c.ID)
	}
	if c.DataDir == "" {
		add("DataDir is required")
	}
	if c.RaftBind == "" {
		add("RaftBind is required")
	}
	if c.HTTPAddr == "" {
		add("HTTPAddr is required")
	}
	if c.Shards < 1 || c.Shards > ShardsMax {
		add("Shards %d out of range 1..%d", c.Shards, ShardsMax)
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond {
		add("HeartbeatTimeout and ElectionTimeout must be at least 5ms")
	}
	if c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		add("LeaderLeaseTimeout must be in (0, HeartbeatTimeout]")
	}
	if c.CommitTimeout <= 0 || c.CommitTimeout > c.HeartbeatTimeout {
		add("CommitTimeout must be in (0, HeartbeatTimeout]")
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		add("MaxAppendEntries %d out of range 1..1024", c.MaxAppendEntries)
	}
	if c.SnapshotInterval <= 0 || c.SnapshotThreshold < 1 || c.SnapshotsRetained < 1 {
		add("SnapshotInterval, SnapshotThreshold and SnapshotsRetained must be positive")
	}
	if c.BatchCommandsMax < 1 || c.BatchCommandsMax > 4096 {
		add("BatchCommandsMax %d out of range 1..4096", c.BatchCommandsMax)
	}
	if c.BatchBytesMax < 1<<10 || c.BatchBytesMax > 8<<20 {
		add("BatchBytesMax %d out of range 1KiB..8MiB", c.BatchBytesMax)
	}
	if c.InflightEntriesMax < 1 || c.InflightEntriesMax > 1<<16 {
		add("InflightEntriesMax %d out of range 1..65536", c.InflightEntriesMax)
	}
	if c.ApplyTimeout <= 0 || c.SweepInterval <= 0 || c.RebalanceInterval < 0 {
		add("ApplyTimeout and SweepInterval must be positive, RebalanceInterval not negative")
	}
	if c.AdmissionInterval < 10*time.Millisecond || c.AdmissionInterval > time.Minute {
		add("AdmissionInterval %s out of range 10ms..1m", c.AdmissionInterval)
	}
	return errors.Join(errs...)
}
