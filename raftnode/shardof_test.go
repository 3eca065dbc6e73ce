package raftnode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ShardOf is part of the on-disk format: a cluster's events live where it
// first put them. This table was computed once; if it changes, existing
// clusters would look for their events on the wrong shard.
func TestShardOfGolden(t *testing.T) {
	for _, tc := range []struct {
		event     string
		of4, of16 int
	}{
		{"a", 0, 12}, // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c
		{"arena-2026-12-01", 1, 9},
		{"berlin-philharmonie-2027-01-15", 3, 7},
		{"concert-1", 3, 15},
		{"concert-2", 2, 2},
		{"concert-3", 1, 5},
		{"evt_000001", 0, 12},
		{"Z", 1, 13},
		{"x.y_z-1", 1, 1},
		{"0123456789012345678901234567890123456789012345678901234567890123", 1, 9},
	} {
		require.Equal(t, tc.of4, ShardOf(tc.event, 4), "ShardOf(%q, 4)", tc.event)
		require.Equal(t, tc.of16, ShardOf(tc.event, 16), "ShardOf(%q, 16)", tc.event)
		require.Equal(t, 0, ShardOf(tc.event, 1), "ShardOf(%q, 1)", tc.event)
	}
}

// Events spread over all shards, and a node routes ids the way fsm makes
// them ("h_<shard>.<index>.<pos>").
func TestShardRouting(t *testing.T) {
	const shards = 16
	seen := make([]int, shards)
	for i := 0; i < 1600; i++ {
		s := ShardOf(fmt.Sprintf("event-%d", i), shards)
		require.True(t, s >= 0 && s < shards)
		seen[s]++
	}
	for s, n := range seen {
		require.Greater(t, n, 50, "shard %d got %d of 1600 events", s, n)
	}

	n := &Node{shards: make([]*Shard, 4)}
	for _, tc := range []struct {
		id    string
		shard int
		ok    bool
	}{
		{"h_0.12.3", 0, true},
		{"o_3.7.0", 3, true},
		{"h_4.1.0", 0, false}, // no shard 4
		{"h_-1.1.0", 0, false},
		{"h_x.1.0", 0, false},
		{"h_2", 0, false},
		{"nounderscore", 0, false},
		{"", 0, false},
	} {
		s, ok := n.ShardOfID(tc.id)
		require.Equal(t, tc.ok, ok, "ShardOfID(%q)", tc.id)
		if ok {
			require.Equal(t, tc.shard, s, "ShardOfID(%q)", tc.id)
		}
	}
	require.Equal(t, ShardOf("concert-1", 4), n.ShardOfEvent("concert-1"))
}

// Validate lists every problem at once, and New refuses a bad config.
func TestConfigValidate(t *testing.T) {
	cfg := testConfig("n1", t.TempDir(), 4)
	require.NoError(t, cfg.Validate())
	def := DefaultConfig()
	def.ID, def.DataDir, def.RaftBind, def.HTTPAddr = "n1", "/data", ":7000", ":8080"
	require.NoError(t, def.Validate(), "the defaults must be valid")

	bad := cfg
	bad.ID = "bad id"
	bad.DataDir = ""
	bad.Shards = 0
	bad.LeaderLeaseTimeout = 2 * bad.HeartbeatTimeout
	bad.BatchCommandsMax = 0
	bad.RebalanceInterval = -1
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"ID", "DataDir", "Shards", "LeaderLeaseTimeout", "BatchCommandsMax", "RebalanceInterval"} {
		require.True(t, strings.Contains(err.Error(), want), "%q missing from %v", want, err)
	}
	_, err = New(bad)
	require.Error(t, err)
}

// A data dir remembers its shard count: reopening it with another would
// route events to the wrong shards.
func TestShardCountIsFixed(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("n1", dir, 2)
	cfg.Bootstrap = true
	n, err := New(cfg)
	require.NoError(t, err)
	require.Equal(t, 2, n.ShardCount())
	require.NoError(t, n.Close())

	cfg.Shards = 3
	_, err = New(cfg)
	require.ErrorContains(t, err, "created with 2 shards")
}
