package raftnode

import (
	"context"
	"slices"

	"github.com/hashicorp/raft"

	"boxoffice"
	"boxoffice/fsm"
)

// Shard-indexed forms of the Shard methods, so that callers (httpapi) can
// depend on a small interface of Node alone.

// Propose replicates c through shard's log; see Shard.Propose.
func (n *Node) Propose(ctx context.Context, shard int, c fsm.Command) (fsm.Result, error) {
	return n.shards[shard].Propose(ctx, c)
}

// Store is a shard's local state.
func (n *Node) Store(shard int) *fsm.Store { return n.shards[shard].store }

// IsLeader reports whether this node leads shard.
func (n *Node) IsLeader(shard int) bool { return n.shards[shard].IsLeader() }

// CaughtUp returns once this node, leading shard, has applied everything
// committed before its term (see Shard.CaughtUp).
func (n *Node) CaughtUp(shard int) error { return n.shards[shard].CaughtUp() }

// ReadBarrier prepares a linearizable read of shard; see Shard.ReadBarrier.
func (n *Node) ReadBarrier(ctx context.Context, shard int) error {
	return n.shards[shard].ReadBarrier(ctx)
}

// AddMember adds m to shard, which this node must lead.
func (n *Node) AddMember(ctx context.Context, shard int, m boxoffice.Node) error {
	return n.shards[shard].AddMember(ctx, m)
}

// RemoveMember removes node id from shard, which this node must lead.
func (n *Node) RemoveMember(ctx context.Context, shard int, id string) error {
	return n.shards[shard].RemoveMember(ctx, id)
}

// TransferLeadership hands shard's leadership to node `to` (any if "").
func (n *Node) TransferLeadership(shard int, to string) error {
	return n.shards[shard].TransferLeadership(to)
}

// Status reports every shard as this node sees it.
func (n *Node) Status() []Status {
	out := make([]Status, len(n.shards))
	for i, s := range n.shards {
		out[i] = s.Status()
	}
	return out
}

// IsVoter reports whether this node is a voter of every shard, as its own
// replicas see their configurations.
func (n *Node) IsVoter() bool {
	for _, s := range n.shards {
		servers, err := s.servers()
		if err != nil || !slices.ContainsFunc(servers, func(srv raft.Server) bool {
			return string(srv.ID) == n.cfg.ID && srv.Suffrage == raft.Voter
		}) {
			return false
		}
	}
	return true
}
