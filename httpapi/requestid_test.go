package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

// syncBuffer is a log sink shared by the nodes' loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// A request keeps its id from the client through the forward to the
// leader, in the answer and in both nodes' logs; a request without one gets
// one.
func TestRequestIDFollowsTheRequest(t *testing.T) {
	var logs syncBuffer
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, TuneHTTP: func(cfg *httpapi.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	createEvent(t, c, testcluster.Event("rid-1", 1, 2, 2))
	f := c.Follower(raftnode.ShardOf("rid-1", 2))

	code, b, hdr := testcluster.DoHeaderWith(f.HTTPAddr, "POST", "/v1/events/rid-1/holds", buyer("u1"), `{"seats":["A-1-1"]}`,
		map[string]string{"X-Request-Id": "client-req-42"})
	require.Equal(t, 201, code, "%s", b)
	assert.Equal(t, "client-req-42", hdr.Get("X-Request-Id"))

	shard := float64(raftnode.ShardOf("rid-1", 2))
	nodes := map[string]bool{}
	for _, l := range logs.lines() {
		if l["request_id"] == "client-req-42" {
			nodes[l["path"].(string)] = true
			assert.Equal(t, shard, l["shard"], "a request's log line names its shard: %v", l)
			if l["forwarded_by"] != nil {
				assert.Equal(t, f.ID, l["forwarded_by"], "the leader logs who forwarded it")
				nodes["leader"] = true
			}
		}
	}
	assert.True(t, nodes["leader"], "the leader logged the forwarded request with the client's id")

	// Strong: the follower may not have applied the event yet.
	code, _, hdr = testcluster.DoHeaderWith(f.HTTPAddr, "GET", "/v1/events/rid-1?consistency=strong", "", "", map[string]string{"X-Request-Id": "bad id with spaces"})
	require.Equal(t, 200, code)
	assert.True(t, strings.HasPrefix(hdr.Get("X-Request-Id"), f.ID+"-"), "an invalid id is replaced: %q", hdr.Get("X-Request-Id"))
}
