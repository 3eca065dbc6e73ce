package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/client"
	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

func statusOf(leaders []string, voters ...[]string) client.ClusterStatus {
	var st client.ClusterStatus
	for i, l := range leaders {
		v := []string{"n1", "n2", "n3"}
		if i < len(voters) && voters[i] != nil {
			v = voters[i]
		}
		st.Shards = append(st.Shards, client.ShardStatus{ID: i, Leader: l, Voters: v})
	}
	return st
}

// leadsAfter applies moves to st and counts the shards each node leads.
func leadsAfter(st client.ClusterStatus, moves []leaderMove) map[string]int {
	leader := map[int]string{}
	for _, s := range st.Shards {
		leader[s.ID] = s.Leader
	}
	for _, m := range moves {
		leader[m.Shard] = m.To
	}
	out := map[string]int{}
	for _, s := range st.Shards {
		for _, v := range s.Voters {
			out[v] += 0
		}
		if l := leader[s.ID]; l != "" {
			out[l]++
		}
	}
	return out
}

func TestPlanRebalance(t *testing.T) {
	// Six shards all led by n1: two move to each of n2 and n3.
	st := statusOf([]string{"n1", "n1", "n1", "n1", "n1", "n1"})
	moves := planRebalance(st)
	assert.Len(t, moves, 4)
	assert.Equal(t, map[string]int{"n1": 2, "n2": 2, "n3": 2}, leadsAfter(st, moves))
	assert.Equal(t, moves, planRebalance(st), "the plan is deterministic")

	// Spread already: nothing to do, with S not a multiple of N too.
	assert.Empty(t, planRebalance(statusOf([]string{"n1", "n2", "n3", "n1"})))

	// A leaderless shard stays as it is; the others spread.
	st = statusOf([]string{"", "n2", "n2", "n2"})
	moves = planRebalance(st)
	for _, m := range moves {
		assert.NotEqual(t, 0, m.Shard)
	}
	assert.Equal(t, map[string]int{"n1": 1, "n2": 1, "n3": 1}, leadsAfter(st, moves))

	// A shard's leader can only go to one of its voters: n3 votes in shard
	// 1 alone, so it gets shard 1 and nothing else can reach it.
	st = statusOf([]string{"n1", "n1", "n1"}, []string{"n1", "n2"}, []string{"n1", "n2", "n3"}, []string{"n1", "n2"})
	moves = planRebalance(st)
	got := leadsAfter(st, moves)
	assert.Equal(t, map[string]int{"n1": 1, "n2": 1, "n3": 1}, got)
	for _, m := range moves {
		if m.To == "n3" {
			assert.Equal(t, 1, m.Shard)
		}
	}
}

// cluster rebalance against a cluster whose nodes do not rebalance on
// their own: every shard's leadership is put on one node, --dry-run shows
// the moves and changes nothing, and without it each node leads one shard.
func TestClusterRebalance(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 3, Tune: func(cfg *raftnode.Config) { cfg.RebalanceInterval = 0 }})
	var nodes []string
	for _, m := range c.Members {
		nodes = append(nodes, "http://"+m.HTTPAddr)
	}
	target := "--target=" + strings.Join(nodes, ",")
	admin := "--token=" + testcluster.AdminToken()
	first := c.Members[0].ID
	leads := func() map[string]int {
		out, code := run(t, "cluster", "status", target, "-o", "json")
		require.Equal(t, exitOK, code, out)
		var st client.ClusterStatus
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		got := map[string]int{}
		for _, s := range st.Shards {
			got[s.Leader]++
		}
		return got
	}
	// A transfer may time out on a loaded machine (500): try again, as an
	// operator would, a bounded number of times.
	for attempt := 0; attempt < 10 && leads()[first] != 3; attempt++ {
		for shard := 0; shard < 3; shard++ {
			if l := c.Leader(shard); l != nil && l.ID == first {
				continue
			}
			out, code := run(t, "cluster", "transfer-leadership", target, admin, "--shard", fmt.Sprint(shard), "--to", first)
			if code != exitOK {
				t.Logf("transfer of shard %d (trying again): %s", shard, out)
			}
		}
	}
	require.Eventually(t, func() bool { return leads()[first] == 3 }, 2*time.Minute, 100*time.Millisecond, "every shard led by %s", first)

	out, code := run(t, "cluster", "rebalance", target, admin, "--dry-run")
	require.Equal(t, exitOK, code, out)
	t.Logf("rebalance --dry-run:\n%s", out)
	assert.Equal(t, 2, strings.Count(out, "would move"), out)
	assert.Equal(t, 3, leads()[first], "a dry run moves nothing")

	// Transfers are an admin's: a buyer's rebalance moves nothing.
	out, code = run(t, "cluster", "rebalance", target, "--token="+testcluster.Token("b1", "buyer"))
	assert.Equal(t, exitError, code, out)
	assert.Contains(t, out, "forbidden")
	assert.Contains(t, out, "not moved")

	var plan struct {
		Moves []leaderMove `json:"moves"`
	}
	for attempt := 0; attempt < 5; attempt++ {
		out, code = run(t, "cluster", "rebalance", target, admin, "-o", "json")
		if code == exitOK {
			break
		}
		t.Logf("rebalance (trying again): %s", out)
	}
	require.Equal(t, exitOK, code, out)
	require.NoError(t, json.Unmarshal([]byte(out), &plan), out)
	for _, m := range plan.Moves {
		assert.True(t, m.Done, "%+v", m)
	}
	require.Eventually(t, func() bool {
		l := leads()
		return len(l) == 3 && l[""] == 0 && l[c.Members[0].ID] == 1 && l[c.Members[1].ID] == 1 && l[c.Members[2].ID] == 1
	}, 2*time.Minute, 100*time.Millisecond, "one shard per node")

	out, code = run(t, "cluster", "rebalance", target, admin)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "nothing to move")
}
