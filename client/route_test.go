package client

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// routedNode fakes a node of a cluster whose shard 2 is led by "n2": every
// answer names the node, every write answer names shard 2 and its leader.
func routedNode(t *testing.T, id string, answer func(w http.ResponseWriter, r *http.Request)) *fakeNode {
	return newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set(headerNode, id)
		if r.URL.Path == "/healthz" {
			writeJSON(w, 200, map[string]string{"status": "ok", "node": id})
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set(headerShard, "2")
			w.Header().Set(headerLeader, "n2")
		}
		answer(w, r)
	})
}

func holdOrOrder(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/purchase") {
		writeJSON(w, 201, orderAnswer)
		return
	}
	writeJSON(w, 201, holdAnswer)
}

func TestWritesGoStraightToTheLeaderOnceItIsKnown(t *testing.T) {
	n1 := routedNode(t, "n1", holdOrOrder)
	n2 := routedNode(t, "n2", holdOrOrder)
	n3 := routedNode(t, "n3", holdOrOrder)
	c, _ := newTestClient(t, nil, n1.URL(), n2.URL(), n3.URL())
	ctx := context.Background()

	// The first write goes where the client sticks (n1, which forwards);
	// its answer names shard 2 and its leader n2, a node the client has not
	// heard from: it looks the ids up in the background.
	_, err := c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-1"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.route.known(1) }, 10*time.Second, 5*time.Millisecond, "n2's id is looked up")

	before := len(n2.requests())
	_, err = c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-2"}})
	require.NoError(t, err)
	_, err = c.Purchase(ctx, "h_2.17.0", "pm_card_visa")
	require.NoError(t, err)
	assert.Equal(t, before+2, len(n2.requests()), "a hold of event e1 and a purchase of a hold of shard 2 went to the leader")

	// Reads still go where the client sticks.
	_, err = c.GetEvent(ctx, "e1")
	require.NoError(t, err)
	assert.Equal(t, "/v1/events/e1", n1.requests()[len(n1.requests())-1].Path)

	// Another shard, unknown event: no hint.
	_, err = c.Purchase(ctx, "h_5.1.0", "pm_card_visa")
	require.NoError(t, err)
	assert.Equal(t, "/v1/holds/h_5.1.0/purchase", n1.requests()[len(n1.requests())-1].Path)
}

func TestAFailingLeaderHintIsForgotten(t *testing.T) {
	n1 := routedNode(t, "n1", holdOrOrder)
	down := false
	n2 := routedNode(t, "n2", func(w http.ResponseWriter, r *http.Request) {
		if down {
			writeProblem(w, 503, boxoffice.CodeNotLeader, "not the leader any more", "")
			return
		}
		holdOrOrder(w, r)
	})
	c, _ := newTestClient(t, nil, n1.URL(), n2.URL())
	ctx := context.Background()
	_, err := c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-1"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.route.known(1) }, 10*time.Second, 5*time.Millisecond)
	_, ok := c.route.start("/v1/events/e1/holds")
	require.True(t, ok)

	down = true
	_, err = c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-2"}})
	require.NoError(t, err, "the call moves on to another node")
	last := n1.requests()[len(n1.requests())-1]
	assert.Equal(t, "/v1/events/e1/holds", last.Path)
	// n1 answered naming n2 as leader again (the fake does): the hint is
	// back, as it would be from a real follower that forwarded the write.
	_, ok = c.route.start("/v1/events/e1/holds")
	assert.True(t, ok)
}

func TestSpreadWritesIgnoresHints(t *testing.T) {
	n1 := routedNode(t, "n1", holdOrOrder)
	n2 := routedNode(t, "n2", holdOrOrder)
	c, _ := newTestClient(t, func(cfg *Config) { cfg.SpreadWrites = true }, n1.URL(), n2.URL())
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		c.discoverNodes()
		_, err := c.Hold(ctx, "e1", HoldRequest{Seats: []string{"A-1-1"}})
		require.NoError(t, err)
	}
	for _, r := range n2.requests() {
		assert.Equal(t, "/healthz", r.Path, "no write reaches n2 directly")
	}
}

func TestRouterTarget(t *testing.T) {
	r := newRouter(nil)
	r.learn(0, "/v1/events/e9/holds", "n1", "3", "n2")
	for _, tc := range []struct {
		path  string
		shard int
		ok    bool
	}{
		{"/v1/events/e9/holds", 3, true},
		{"/v1/events/e9?x=1", 3, true},
		{"/v1/events/other/holds", 0, false},
		{"/v1/events", 0, false},
		{"/v1/holds/h_12.5.0/purchase", 12, true},
		{"/v1/orders/o_4.9.1/cancel", 4, true},
		{"/v1/holds/h_x.5.0", 0, false},
		{"/v1/holds/h_-1.5.0", 0, false},
		{"/v1/holds/bad", 0, false},
		{"/v1/me/holds", 0, false},
	} {
		shard, ok := r.target(tc.path)
		assert.Equal(t, tc.ok, ok, tc.path)
		assert.Equal(t, tc.shard, shard, tc.path)
	}
}
