package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
)

// demo against a 3-node cluster: the first run creates the event and has
// the buyers buy and hold; the second finds all of it and adds nothing; the
// audit of the result passes.
func TestDemoIsIdempotent(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	var nodes []string
	for _, m := range c.Members {
		nodes = append(nodes, "http://"+m.HTTPAddr)
	}
	target := "--target=" + strings.Join(nodes, ",")
	secret := "--auth-secret=" + string(testcluster.Secret)

	demo := func() demoReport {
		t.Helper()
		var out string
		var code int
		for attempt := 0; attempt < 5; attempt++ { // a 503 during a leader change: run it again
			if out, code = run(t, "demo", target, secret, "-o", "json"); code != exitUnavailable {
				break
			}
		}
		require.Equal(t, exitOK, code, out)
		var rep demoReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		return rep
	}
	first := demo()
	assert.True(t, first.Created)
	assert.Equal(t, 12800, first.Seats.Capacity)
	assert.Equal(t, 10, first.Seats.Sold)
	assert.Equal(t, 5, first.Seats.Held)

	second := demo()
	assert.False(t, second.Created)
	assert.Equal(t, first.Seats, second.Seats, "nothing more bought or held")
	for _, s := range second.Steps {
		assert.NotContains(t, s, "bought", "a second run buys nothing")
	}

	out, code := run(t, "demo", target, secret)
	require.Equal(t, exitOK, code, out)
	t.Logf("demo:\n%s", out)
	assert.Contains(t, out, "demo-tour: 12800 seats, 12785 free, 5 held, 10 sold")

	out, code = run(t, "audit", "demo-tour", target, "--token="+testcluster.AdminToken())
	assert.Equal(t, exitOK, code, out)

	out, code = run(t, "demo", target, "--auth-secret=", "--data-dir", t.TempDir())
	assert.Equal(t, exitUsage, code, out)
}
