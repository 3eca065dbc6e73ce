package httpapi_test

// Retries of keyed writes whose checks changed between tries (found in a
// review of the venues, access and queue work).

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
)

// A hold with an Idempotency-Key, retried with the same key, body and pass
// after the pass expired, must get its first answer again (DESIGN.md: the
// same key with the same body returns the first answer).
func TestHoldRetriedAfterItsPassExpiredReplays(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("idq", 1, 1, 10))
	protect(t, c, "idq", time.Now().Add(-time.Second), 2, 100)
	join(t, c, c.Members[0], "idq", "u1")
	var p placeBody
	require.Eventually(t, func() bool {
		p = place(t, c, "idq", "u1")
		return p.State == "admitted"
	}, 20*time.Second, 20*time.Millisecond)
	m := c.Follower(c.ShardOf("idq"))
	b, _ := json.Marshal(map[string]any{"seats": []string{"A-1-1"}})
	h := map[string]string{"X-Admission-Pass": p.Pass.Token, "Idempotency-Key": "k-review-1"}
	code, body, _ := testcluster.DoHeaderWith(m.HTTPAddr, "POST", "/v1/events/idq/holds", buyer("u1"), b, h)
	require.Equal(t, 201, code, "%s", body)
	exp, _ := time.Parse(time.RFC3339Nano, p.Pass.ExpiresAt)
	time.Sleep(time.Until(exp) + 300*time.Millisecond) // the pass expires by the wall clock: wait it out
	code2, body2, _ := testcluster.DoHeaderWith(m.HTTPAddr, "POST", "/v1/events/idq/holds", buyer("u1"), b, h)
	require.Equal(t, 201, code2, "retry with the same key must replay the first answer, got: %s", body2)
}

// An event created from a venue with an Idempotency-Key, retried with the
// same key and body after the venue got a new version, must replay 201.
func TestEventFromVenueRetriedAfterANewVersionReplays(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	m := c.Members[0]
	org := organiser("org1")
	secs := []map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 4}}
	areas := []map[string]any{{"id": "PIT", "category": "ga", "capacity": 4}}
	code, body := doRetry(m, "POST", "/v1/venues", org, venueDoc("rv", secs, areas), nil)
	require.Equal(t, 201, code, "%s", body)
	ev, _ := json.Marshal(venueEvent("rv-night", "rv", 0, 4))
	h := map[string]string{"Idempotency-Key": "k-review-ev"}
	code, body, _ = testcluster.DoHeaderWith(m.HTTPAddr, "POST", "/v1/events", org, ev, h)
	require.Equal(t, 201, code, "%s", body)
	// Version 2 drops the standing category.
	v2 := venueDoc("rv", secs, nil)
	v2["categories"] = []map[string]any{{"id": "seat", "name": "Seated"}}
	code, body = doRetry(m, "PUT", "/v1/venues/rv", org, v2, nil)
	require.Equal(t, 200, code, "%s", body)
	code, body, _ = testcluster.DoHeaderWith(m.HTTPAddr, "POST", "/v1/events", org, ev, h)
	require.Equal(t, 201, code, "the retry must replay the first answer: %s", body)
}

// Route labels of the metrics must not carry ids from the path: a stranger
// asking for venues that do not exist adds one series per id.
func TestVenueIDsStayOutOfMetricLabels(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	m := c.Members[0]
	for _, id := range []string{"nope-1", "nope-2", "nope-3"} {
		code, _ := c.Do(m, "GET", "/v1/venues/"+id, "", nil)
		require.Equal(t, 404, code)
	}
	code, _ := c.Do(m, "PUT", "/v1/venues/nope-4", organiser("x"), venueDoc("nope-4", []map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 1}}, nil))
	require.Equal(t, 404, code)
	_, metrics := c.Do(m, "GET", "/metrics", "", nil)
	require.NotContains(t, string(metrics), "/v1/venues/nope-", "a series per venue id asked for")
}

// A manager's PATCH with an Idempotency-Key, retried after the grant was
// revoked, must replay its first answer (it changes nothing either way).
func TestPatchRetriedAfterRevocationReplays(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("pr-1", 1, 1, 10))
	m := c.Members[0]
	code, body := doRetry(m, "PUT", "/v1/events/pr-1/access/mgr", organiser("org1"), map[string]any{"level": "manage"}, nil)
	require.Equal(t, 200, code, "%s", body)
	h := map[string]string{"Idempotency-Key": "k-review-patch"}
	patch := []byte(`{"location":"Hamburg"}`)
	code, body, _ = testcluster.DoHeaderWith(m.HTTPAddr, "PATCH", "/v1/events/pr-1", organiser("mgr"), patch, h)
	require.Equal(t, 200, code, "%s", body)
	code, body = doRetry(m, "DELETE", "/v1/events/pr-1/access/mgr", organiser("org1"), nil, nil)
	require.Equal(t, 204, code, "%s", body)
	code, body, _ = testcluster.DoHeaderWith(m.HTTPAddr, "PATCH", "/v1/events/pr-1", organiser("mgr"), patch, h)
	require.Equal(t, 200, code, "the retry must replay the first answer: %s", body)
}
