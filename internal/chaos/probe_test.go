package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/client"
	"boxoffice/internal/history"
	"boxoffice/raftnode"
)

// TestProbeKeys pins what the meter relies on to count the probe's writes
// apart: every write a history.Client sends carries a key that starts with
// probeKeyPrefix.
func TestProbeKeys(t *testing.T) {
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"h_0.1.0","event":"e","buyer":"b","seats":["P-1-1"],"state":"active"}`))
	}))
	defer srv.Close()
	cc := client.DefaultConfig()
	cc.Nodes = []string{srv.URL}
	cl, err := client.New(cc)
	require.NoError(t, err)
	c := history.NewRecorder().NewClient(cl, "b")
	h := c.Hold(context.Background(), "e", []string{"P-1-1"})
	require.Equal(t, history.OK, h.Outcome, h.Detail)
	c.Release(context.Background(), "e", h.Hold)
	require.Len(t, keys, 2)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, probeKeyPrefix), "key %q", k)
	}
}

func TestProbeEventID(t *testing.T) {
	for shard := 0; shard < 4; shard++ {
		id := probeEventID(7, 2, shard, 4)
		assert.Equal(t, shard, raftnode.ShardOf(id, 4), id)
		assert.True(t, strings.HasPrefix(id, "chaos-7-r2-probe"), id)
	}
}
