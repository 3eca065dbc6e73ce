package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// TestQueueWorkload runs a small queue workload against a real 3-node
// cluster: every join is acknowledged and counted once by the queue, the
// look-ups all answer, and the summary names the figures.
func TestQueueWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	cfg := QueueConfig{Seats: 100, Users: 16, Joins: 600, Lookups: 600, Duration: 2 * time.Minute, Seed: 1,
		Token: testcluster.AdminToken(),
		Mint: func(subject, role string) (string, error) {
			return httpapi.MintToken(testcluster.Secret, subject, httpapi.Role(role), time.Hour)
		}}
	for _, m := range c.Members {
		cfg.Targets = append(cfg.Targets, "http://"+m.HTTPAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := RunQueue(ctx, cfg)
	require.NoError(t, err)
	require.True(t, res.OK, "%+v", res)
	require.Equal(t, int64(600), res.Joins)
	require.Zero(t, res.JoinErrors, res.FirstErr)
	require.Equal(t, int64(600), res.QueueJoined, "one place per acknowledged join")
	require.Equal(t, int64(600), res.Lookups)
	require.Zero(t, res.LookupErrors, res.FirstErr)
	require.Positive(t, res.JoinsPerSec)
	require.Positive(t, res.QueueAdmitted, "the leader admits while the joins go on")
	var out bytes.Buffer
	WriteQueueSummary(&out, res)
	require.Contains(t, out.String(), "joins:")
	require.Contains(t, out.String(), "check: ok=true")

	bad := cfg
	bad.Joins = 0
	require.Error(t, bad.Validate())
}
