package bench

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompare: the ratios are base/peer, a figure of zero (not sold out)
// gets none, and the table and JSON name every system.
func TestCompare(t *testing.T) {
	mk := func(system string, soldPerS, sellOutS, holdP99 float64, soldOut bool) *Result {
		return &Result{System: system, Workload: WorkloadOnsale, Seats: 1000, Users: 8, SoldPerS: soldPerS, SellOutS: sellOutS, SoldOut: soldOut,
			Sold: 1000, Latency: map[string]Latency{"hold": {P99Ms: holdP99}}, Check: CheckResult{OK: system != SystemPostgres, ViolationCount: 1}}
	}
	c := Compare([]*Result{mk(SystemBoxoffice, 1000, 1, 2, true), mk(SystemEtcd, 200, 5, 10, true), mk(SystemPostgres, 250, 0, 8, false)})
	require.Equal(t, SystemBoxoffice, c.Base)
	rows := map[string]ComparisonRow{}
	for _, r := range c.Table {
		rows[r.Metric] = r
	}
	assert.InDelta(t, 5.0, rows["sold seats/s"].Ratios[SystemEtcd], 1e-9)
	assert.InDelta(t, 4.0, rows["sold seats/s"].Ratios[SystemPostgres], 1e-9)
	assert.InDelta(t, 0.2, rows["time to sell out"].Ratios[SystemEtcd], 1e-9)
	assert.NotContains(t, rows["time to sell out"].Ratios, SystemPostgres, "not sold out: no ratio")
	assert.InDelta(t, 0.2, rows["hold p99"].Ratios[SystemEtcd], 1e-9)

	var out bytes.Buffer
	WriteComparison(&out, c)
	s := out.String()
	assert.Contains(t, s, "boxoffice/etcd")
	assert.Contains(t, s, "5.00×")
	assert.Contains(t, s, "not sold out")
	assert.Contains(t, s, "FAILED (1)")

	var js bytes.Buffer
	require.NoError(t, WriteComparisonJSON(&js, c))
	var back struct {
		Base    string   `json:"base"`
		Systems []Result `json:"systems"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, SystemBoxoffice, back.Base)
	require.Len(t, back.Systems, 3)
	assert.Equal(t, SystemPostgres, back.Systems[2].System)
}
