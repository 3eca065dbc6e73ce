package httpapi_test

import (
	"bytes"
	"fmt"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

// scrape reads a node's /metrics.
func scrape(t *testing.T, c *testcluster.Cluster, m *testcluster.Member) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := c.Do(m, "GET", "/metrics", "", nil)
	require.Equal(t, 200, code, "%s", body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	return fams
}

// sample sums a family's samples whose labels include want.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// Metrics summed over the nodes count each client request once, whichever
// node it reached, and agree with what the clients saw.
func TestMetricsCountWhatClientsSaw(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("metrics-1", 1, 4, 5))
	shard := raftnode.ShardOf("metrics-1", 2)

	// Three holds through every node; then two conflicts.
	var holds []holdBody
	for i, m := range c.Members {
		code, b := c.Do(m, "POST", "/v1/events/metrics-1/holds", buyer(fmt.Sprintf("m%d", i)), fmt.Sprintf(`{"seats":["A-1-%d"]}`, i+1))
		require.Equal(t, 201, code, "%s", b)
		holds = append(holds, decode[holdBody](t, b))
	}
	for i := range 2 {
		code, b := c.Do(c.Members[i], "POST", "/v1/events/metrics-1/holds", buyer("late"), `{"seats":["A-1-1"]}`)
		require.Equal(t, 409, code, "%s", b)
	}
	// One purchase, through a follower.
	code, b := c.Do(c.Follower(shard), "POST", "/v1/holds/"+holds[0].ID+"/purchase", buyer("m0"), `{"paymentMethod":"pm_card_visa"}`)
	require.Equal(t, 201, code, "%s", b)

	var created, conflicts, forwardedIn, paid, sold, commits, applies, activeHolds, leaders float64
	for _, m := range c.Members {
		fams := scrape(t, c, m)
		created += sample(fams, "boxoffice_http_requests_total", map[string]string{"route": "POST /v1/events/{id}/holds", "status": "201"})
		conflicts += sample(fams, "boxoffice_problems_total", map[string]string{"code": "seat_unavailable"})
		forwardedIn += sample(fams, "boxoffice_forwarded_in_total", nil)
		paid += sample(fams, "boxoffice_payment_outcomes_total", map[string]string{"outcome": "paid"})
		sold += sample(fams, "boxoffice_seats_sold_total", nil)
		commits += sample(fams, "boxoffice_raft_commit_seconds", nil)
		applies += sample(fams, "boxoffice_fsm_apply_seconds", nil)
		leaders += sample(fams, "boxoffice_raft_leader", map[string]string{"shard": fmt.Sprint(shard)})
		if m == c.Leader(shard) {
			activeHolds = sample(fams, "boxoffice_holds_active", map[string]string{"shard": fmt.Sprint(shard)})
		}
		assert.Contains(t, fams, "go_goroutines", "runtime metrics")
	}
	assert.Equal(t, 3.0, created, "each client request counted once")
	assert.Equal(t, 2.0, conflicts)
	assert.GreaterOrEqual(t, forwardedIn, 3.0, "writes that reached followers were forwarded")
	assert.Equal(t, 1.0, paid)
	assert.Equal(t, 1.0, sold)
	assert.Equal(t, 2.0, activeHolds, "three holds, one purchased")
	assert.Equal(t, 1.0, leaders, "one leader per shard")
	assert.Positive(t, commits)
	assert.GreaterOrEqual(t, applies, commits, "every replica applies what its leader commits")
}
