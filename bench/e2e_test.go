package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// TestOnsaleSellsOutAndChecks runs a small on-sale against a real 3-node
// cluster (loopback TCP, fsync on): it must sell out, pass the invariant
// check, and render its reports. Then the check is fed the same end state
// with one acknowledged order forgotten, and must say so.
func TestOnsaleSellsOutAndChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	cfg := DefaultConfig()
	for _, m := range c.Members {
		cfg.Targets = append(cfg.Targets, "http://"+m.HTTPAddr)
	}
	cfg.Workload = WorkloadRush
	cfg.Seats, cfg.Users = 2_000, 32
	// A bound, not a target: it sells out in a few seconds on a quiet
	// machine, but the race detector on a loaded one makes it 10× slower.
	cfg.Duration = 4 * time.Minute
	cfg.SeatMapMaxAge = 200 * time.Millisecond
	cfg.Token = testcluster.AdminToken()
	cfg.Mint = func(subject, role string) (string, error) {
		return httpapi.MintToken(testcluster.Secret, subject, httpapi.Role(role), time.Hour)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	t.Logf("%s after %.2f s: %d sold, %d holds, %d conflicts, check read %.2f s",
		res.StopReason, res.LoadS, res.Sold, res.HoldsOK, res.Conflicts, res.Check.ReadSeconds)
	require.True(t, res.SoldOut, "not sold out: %s, %d sold", res.StopReason, res.Sold)
	require.True(t, res.Check.OK, "violations: %v", res.Check.Violations)
	assert.True(t, res.Check.Conclusive, "unresolved: %v", res.Check.Unresolved)
	assert.Equal(t, int64(2_000), res.Sold)
	assert.Equal(t, 2_000, res.Check.SeatsSold)
	assert.Equal(t, 2_000, res.Check.AckedSeats)
	assert.Equal(t, res.Check.AckedOrders, res.Check.OrdersRead)
	assert.Equal(t, res.PurchasesOK, int64(res.Check.AckedOrders))
	assert.True(t, res.HotSoldOut)
	assert.LessOrEqual(t, res.HotSellOutS, res.SellOutS)
	assert.Equal(t, res.HoldsOK, res.PurchasesOK+res.ReleasesOK, "every hold was bought or released")
	assert.Zero(t, res.Errors, "errors: %v", res.ErrorsByCode)
	assert.Positive(t, res.Latency["hold"].Count)
	assert.Positive(t, res.Latency["seatmap"].Count)
	assert.NotEmpty(t, res.Series)
	assert.Greater(t, res.Identities, int64(2_000/cfg.MaxSeatsPerBuyer), "buyers rotate identities")

	// The reports render.
	var sum, js, page bytes.Buffer
	WriteSummary(&sum, res)
	assert.Contains(t, sum.String(), "invariant       OK")
	require.NoError(t, WriteJSON(&js, res))
	var back Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, res.Sold, back.Sold)
	require.NoError(t, WriteHTML(&page, res))
	assert.True(t, strings.HasPrefix(page.String(), "<!doctype html>"))
	assert.Contains(t, page.String(), "<svg")
	assert.NotContains(t, page.String(), "http://cdn", "self-contained")

	// The same end state, one acknowledged order forgotten: its seats are
	// sold with no acknowledged purchase.
	led := *res.ledger
	led.Orders = slices.Clone(led.Orders[1:])
	bad := Check(&led, res.state, time.Second)
	assert.False(t, bad.OK)
	assert.True(t, containsPrefix(bad.Violations, "sold seat "), "%v", bad.Violations)
}

// smallRun runs workload against a fresh 3-node cluster with 32 users and
// seats seats, bounded to 4 minutes of load; it must sell out, pass the
// invariant check and render its reports.
func smallRun(t *testing.T, workload string, seats int, tweak func(*Config)) *Result {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	cfg := DefaultConfig()
	for _, m := range c.Members {
		cfg.Targets = append(cfg.Targets, "http://"+m.HTTPAddr)
	}
	cfg.Workload = workload
	cfg.Seats, cfg.Users = seats, 32
	// A bound, not a target: it sells out in a few seconds on a quiet
	// machine, but the race detector on a loaded one makes it 10× slower.
	cfg.Duration = 4 * time.Minute
	cfg.Ramp = 200 * time.Millisecond
	cfg.SeatMapMaxAge = 200 * time.Millisecond
	cfg.Token = testcluster.AdminToken()
	cfg.Mint = func(subject, role string) (string, error) {
		return httpapi.MintToken(testcluster.Secret, subject, httpapi.Role(role), time.Hour)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	t.Logf("%s: %s after %.2f s: %d sold, %d holds, %d conflicts, errors %v",
		workload, res.StopReason, res.LoadS, res.Sold, res.HoldsOK, res.Conflicts, res.ErrorsByCode)
	require.True(t, res.SoldOut, "not sold out: %s, %d sold", res.StopReason, res.Sold)
	require.True(t, res.Check.OK, "violations: %v", res.Check.Violations)
	assert.True(t, res.Check.Conclusive, "unresolved: %v", res.Check.Unresolved)
	assert.Equal(t, int64(seats), res.Sold)
	assert.Equal(t, seats, res.Check.SeatsSold)
	assert.Equal(t, seats, res.Check.AckedSeats)
	assert.Equal(t, res.Check.AckedOrders, res.Check.OrdersRead)
	assert.Equal(t, res.HoldsOK, res.PurchasesOK+res.ReleasesOK, "every hold was bought or released")
	assert.Equal(t, workload, res.Workload)

	var sum, js, page bytes.Buffer
	WriteSummary(&sum, res)
	assert.Contains(t, sum.String(), "boxoffice bench: "+workload)
	assert.Contains(t, sum.String(), "invariant       OK")
	require.NoError(t, WriteJSON(&js, res))
	var back Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, res.Sold, back.Sold)
	assert.Equal(t, workload, back.Workload)
	require.NoError(t, WriteHTML(&page, res))
	assert.Contains(t, page.String(), workload)
	return res
}

// TestBestAvailableSellsOutAndChecks: users hold by category and quantity.
func TestBestAvailableSellsOutAndChecks(t *testing.T) {
	res := smallRun(t, WorkloadBestAvailable, 1_500, nil)
	assert.Positive(t, res.Latency["hold"].Count)
	assert.Empty(t, res.Events)
}

// TestMultiSellsOutAndChecks: four events at once, each sold out and
// checked on its own.
func TestMultiSellsOutAndChecks(t *testing.T) {
	res := smallRun(t, WorkloadMulti, 2_000, func(c *Config) { c.Events = 4 })
	require.Len(t, res.Events, 4)
	ids := map[string]bool{}
	for _, e := range res.Events {
		ids[e.ID] = true
		assert.Equal(t, 500, e.Seats)
		assert.Equal(t, int64(500), e.Sold)
		assert.True(t, e.SoldOut, "%s not sold out", e.ID)
		assert.True(t, e.CheckOK, "%s check", e.ID)
	}
	assert.Len(t, ids, 4)
	assert.LessOrEqual(t, res.Events[0].SellOutS, res.SellOutS)
}
