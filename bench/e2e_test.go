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
	cfg.Duration = 30 * time.Second // a bound; it sells out in a few seconds
	cfg.SeatMapMaxAge = 200 * time.Millisecond
	cfg.Token = testcluster.AdminToken()
	cfg.Mint = func(subject, role string) (string, error) {
		return httpapi.MintToken(testcluster.Secret, subject, httpapi.Role(role), time.Hour)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
