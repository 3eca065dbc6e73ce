package raftnode

import (
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// Each shard replicates without hashicorp/raft's pipeline, whose sender can
// block forever (see startRaft): the transport refuses to pipeline, and
// Raft then sends one AppendEntries at a time.
func TestTransportDoesNotPipeline(t *testing.T) {
	c := newCluster(t, 1, 2, nil)
	for _, s := range c.node("n1").Shards() {
		_, err := s.transport.AppendEntriesPipeline("n2", "127.0.0.1:1")
		require.ErrorIs(t, err, raft.ErrPipelineReplicationNotSupported, "shard %d", s.ID())
	}
}
