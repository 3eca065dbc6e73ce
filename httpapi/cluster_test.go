package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

type holdBody struct {
	ID        string   `json:"id"`
	Event     string   `json:"event"`
	Buyer     string   `json:"buyer"`
	Seats     []string `json:"seats"`
	ExpiresAt string   `json:"expiresAt"`
	State     string   `json:"state"`
}

type seatsBody struct {
	Event string `json:"event"`
	Index uint64 `json:"index"`
	Seats []struct {
		ID       string `json:"id"`
		Category string `json:"category"`
		State    string `json:"state"`
	} `json:"seats"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "body: %s", b)
	return v
}

func buyer(name string) string     { return testcluster.Token(name, httpapi.RoleBuyer) }
func organiser(name string) string { return testcluster.Token(name, httpapi.RoleOrganiser) }

// createEvent creates an event through a follower of its shard.
func createEvent(t *testing.T, c *testcluster.Cluster, ev map[string]any) {
	t.Helper()
	shard := raftnode.ShardOf(ev["id"].(string), 2)
	code, body := c.Do(c.Follower(shard), "POST", "/v1/events", organiser("org1"), ev)
	require.Equal(t, 201, code, "%s", body)
}

// heldSeats reads the held seats of an event from one member's local state.
func heldSeats(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, event string) map[string]string {
	code, body := c.Do(m, "GET", "/v1/events/"+event+"/seats?status=held", "", nil)
	require.Equal(t, 200, code, "%s", body)
	out := map[string]string{}
	for _, s := range decode[seatsBody](t, body).Seats {
		out[s.ID] = s.State
	}
	return out
}

func TestHoldThroughFollowerIsForwardedAndReplicated(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	ev := testcluster.Event("fwd-1", 2, 10, 10)
	createEvent(t, c, ev)
	shard := raftnode.ShardOf("fwd-1", 2)
	leader, follower := c.Leader(shard), c.Follower(shard)

	code, body, hdr := testcluster.DoHeader(follower.HTTPAddr, "POST", "/v1/events/fwd-1/holds", buyer("u1"), `{"seats":["A-1-1","B-10-10"]}`)
	require.Equal(t, 201, code, "%s", body)
	assert.Equal(t, follower.ID, hdr.Get("X-Boxoffice-Node"), "the follower answered")
	assert.Equal(t, leader.ID, hdr.Get("X-Boxoffice-Leader"), "the leader ran the forwarded write")
	assert.Equal(t, strconv.Itoa(shard), hdr.Get("X-Boxoffice-Shard"))
	index, err := strconv.ParseUint(hdr.Get("X-Boxoffice-Index"), 10, 64)
	require.NoError(t, err)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		_, _, h := testcluster.DoHeader(follower.HTTPAddr, "GET", path, "", nil)
		assert.NotEmpty(t, h.Get("X-Boxoffice-Index"), "%s carries the applied index too", path)
	}
	h := decode[holdBody](t, body)
	assert.Equal(t, "u1", h.Buyer)
	assert.Equal(t, []string{"A-1-1", "B-10-10"}, h.Seats)
	assert.Equal(t, "active", h.State)
	assert.True(t, strings.HasPrefix(h.ID, fmt.Sprintf("h_%d.", shard)), h.ID)

	// Every node's own replica shows the hold once it applied its index.
	for _, m := range c.Members {
		require.Eventually(t, func() bool { return m.Node.Store(shard).AppliedIndex() >= index }, 5*time.Second, 5*time.Millisecond)
		assert.Equal(t, map[string]string{"A-1-1": "held", "B-10-10": "held"}, heldSeats(t, c, m, "fwd-1"), "node %s", m.ID)
		code, body := c.Do(m, "GET", "/v1/holds/"+h.ID, buyer("u1"), nil)
		require.Equal(t, 200, code, "node %s: %s", m.ID, body)
		assert.Equal(t, h.Seats, decode[holdBody](t, body).Seats)
	}

	// A strong read through a follower sees a write acknowledged just before.
	code, body = c.Do(follower, "POST", "/v1/events/fwd-1/holds", buyer("u2"), `{"seats":["A-2-2"]}`)
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(follower, "GET", "/v1/events/fwd-1/seats?status=held&consistency=strong", "", nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Len(t, decode[seatsBody](t, body).Seats, 3)

	// Release through another follower frees the seats everywhere.
	other := c.Members[0]
	if other == follower || other == leader {
		other = c.Members[1]
		if other == follower || other == leader {
			other = c.Members[2]
		}
	}
	code, body = c.Do(other, "DELETE", "/v1/holds/"+h.ID, buyer("u1"), nil)
	require.Equal(t, 204, code, "%s", body)
	code, body = c.Do(other, "GET", "/v1/events/fwd-1/seats?status=held&consistency=strong", "", nil)
	require.Equal(t, 200, code, "%s", body)
	held := decode[seatsBody](t, body).Seats
	require.Len(t, held, 1)
	assert.Equal(t, "A-2-2", held[0].ID)
}

func TestTwoBuyersRaceForOneSeat(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("race-1", 1, 5, 5))

	const buyers = 24
	codes := make([]int, buyers)
	bodies := make([][]byte, buyers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < buyers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			m := c.Members[i%len(c.Members)]
			codes[i], bodies[i] = c.Do(m, "POST", "/v1/events/race-1/holds", buyer(fmt.Sprintf("b%d", i)), `{"seats":["A-3-3"]}`)
		}()
	}
	close(start)
	wg.Wait()

	won := 0
	for i := range codes {
		switch codes[i] {
		case 201:
			won++
		case 409:
			assert.Equal(t, "seat_unavailable", decode[problemBody](t, bodies[i]).Code)
		default:
			t.Errorf("buyer %d: unexpected %d %s", i, codes[i], bodies[i])
		}
	}
	assert.Equal(t, 1, won, "exactly one buyer holds the seat")
	code, body := c.Do(c.Members[0], "GET", "/v1/events/race-1/seats?status=held&consistency=strong", "", nil)
	require.Equal(t, 200, code)
	assert.Len(t, decode[seatsBody](t, body).Seats, 1)
}

func TestPurchaseAndExpiredHold(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	ev := testcluster.Event("buy-1", 1, 5, 5)
	ev["limits"] = map[string]any{"maxSeatsPerBuyer": 4, "holdTTLSeconds": 1}
	createEvent(t, c, ev)
	m := c.Members[2]

	code, body := c.Do(m, "POST", "/v1/events/buy-1/holds", buyer("u1"), `{"seats":["A-1-1","A-1-2"]}`)
	require.Equal(t, 201, code, "%s", body)
	h := decode[holdBody](t, body)
	// Someone else may not buy it.
	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/purchase", buyer("u2"), `{"paymentMethod":"pm_card_visa"}`)
	assert.Equal(t, 403, code, "%s", body)
	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/purchase", buyer("u1"), `{"paymentMethod":"pm_card_visa"}`)
	require.Equal(t, 201, code, "%s", body)
	var order struct {
		ID          string   `json:"id"`
		Hold        string   `json:"hold"`
		Seats       []string `json:"seats"`
		AmountCents int64    `json:"amountCents"`
		State       string   `json:"state"`
	}
	require.NoError(t, json.Unmarshal(body, &order))
	assert.Equal(t, h.ID, order.Hold)
	assert.Equal(t, int64(2*5000), order.AmountCents)
	assert.Equal(t, "paid", order.State)
	code, body = c.Do(c.Members[0], "GET", "/v1/orders/"+order.ID+"?consistency=strong", buyer("u1"), nil)
	require.Equal(t, 200, code, "%s", body)
	code, _ = c.Do(c.Members[0], "GET", "/v1/orders/"+order.ID+"?consistency=strong", buyer("u2"), nil)
	assert.Equal(t, 403, code)
	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/purchase", buyer("u1"), nil)
	assert.Equal(t, 409, code, "a purchased hold cannot be bought again: %s", body)

	// A hold whose time ran out cannot be bought, and its seats are free.
	code, body = c.Do(m, "POST", "/v1/events/buy-1/holds", buyer("u1"), `{"seats":["A-2-1"]}`)
	require.Equal(t, 201, code, "%s", body)
	h2 := decode[holdBody](t, body)
	require.Eventually(t, func() bool {
		code, body := c.Do(m, "GET", "/v1/holds/"+h2.ID+"?consistency=strong", buyer("u1"), nil)
		return code == 200 && decode[holdBody](t, body).State == "expired"
	}, 10*time.Second, 50*time.Millisecond, "the hold never reads as expired")
	code, body = c.Do(m, "POST", "/v1/holds/"+h2.ID+"/purchase", buyer("u1"), nil)
	require.Equal(t, 410, code, "%s", body)
	assert.Equal(t, "hold_expired", decode[problemBody](t, body).Code)
	code, body = c.Do(m, "POST", "/v1/events/buy-1/holds", buyer("u3"), `{"seats":["A-2-1"]}`)
	assert.Equal(t, 201, code, "the expired hold's seat is free again: %s", body)
}

func TestBadInputGetsProblemAndChangesNothing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("bad-1", 2, 5, 5))
	code, body := c.Do(c.Members[0], "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-1-1"]}`)
	require.Equal(t, 201, code, "%s", body)

	// The state a client can see: every taken seat and every event, on
	// every node. (The applied index moves on: leaders sweep expired holds.)
	shard := raftnode.ShardOf("bad-1", 2)
	snapshot := func() []string {
		// Followers' local lists lag the leader: let them catch up first.
		index := c.Leader(shard).Node.Store(shard).AppliedIndex()
		for _, m := range c.Members {
			require.Eventually(t, func() bool { return m.Node.Store(shard).AppliedIndex() >= index }, 5*time.Second, 5*time.Millisecond)
		}
		var out []string
		for _, m := range c.Members {
			for _, status := range []string{"held", "sold"} {
				code, body := c.Do(m, "GET", "/v1/events/bad-1/seats?consistency=strong&status="+status, "", nil)
				require.Equal(t, 200, code, "%s", body)
				for _, s := range decode[seatsBody](t, body).Seats {
					out = append(out, m.ID+" "+s.ID+" "+s.State)
				}
			}
			code, events := c.Do(m, "GET", "/v1/events", "", nil)
			require.Equal(t, 200, code)
			out = append(out, m.ID+" "+string(events))
		}
		return out
	}
	before := snapshot()

	noSections := testcluster.Event("bad-2", 1, 1, 1)
	noSections["venue"] = map[string]any{"sections": []any{}}
	tooMany := make([]string, 40)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("A-1-%d", i+1)
	}
	expired, err := httpapi.MintToken(testcluster.Secret, "u1", httpapi.RoleBuyer, -time.Minute)
	require.NoError(t, err)
	otherSecret, err := httpapi.MintToken([]byte("another-secret-0123456789"), "u1", httpapi.RoleBuyer, time.Hour)
	require.NoError(t, err)
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"unknown event", "POST", "/v1/events/nope/holds", buyer("u1"), `{"seats":["A-1-1"]}`, 404, "event_not_found"},
		{"seat that does not exist", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-9-9"]}`, 400, "seat_not_found"},
		{"non-canonical seat id", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-01-1"]}`, 400, "seat_not_found"},
		{"section that does not exist", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["Q-1-1"]}`, 400, "seat_not_found"},
		{"duplicate seats", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-1-2","A-1-2"]}`, 400, "invalid_argument"},
		{"empty hold", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":[]}`, 400, "invalid_argument"},
		{"no body", "POST", "/v1/events/bad-1/holds", buyer("u1"), nil, 400, "invalid_argument"},
		{"too many seats", "POST", "/v1/events/bad-1/holds", buyer("u1"), map[string]any{"seats": tooMany}, 400, "invalid_argument"},
		{"malformed JSON", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-1-2"`, 400, "invalid_argument"},
		{"wrong JSON type", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":"A-1-2"}`, 400, "invalid_argument"},
		{"unknown field", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-1-2"],"seatz":1}`, 400, "invalid_argument"},
		{"trailing data", "POST", "/v1/events/bad-1/holds", buyer("u1"), `{"seats":["A-1-2"]} {}`, 400, "invalid_argument"},
		{"seat already held", "POST", "/v1/events/bad-1/holds", buyer("u2"), `{"seats":["A-1-2","A-1-1"]}`, 409, "seat_unavailable"},
		{"no token", "POST", "/v1/events/bad-1/holds", "", `{"seats":["A-1-2"]}`, 401, "unauthorized"},
		{"bad token", "POST", "/v1/events/bad-1/holds", "not.a.token", `{"seats":["A-1-2"]}`, 401, "unauthorized"},
		{"expired token", "POST", "/v1/events/bad-1/holds", expired, `{"seats":["A-1-2"]}`, 401, "unauthorized"},
		{"token of another secret", "POST", "/v1/events/bad-1/holds", otherSecret, `{"seats":["A-1-2"]}`, 401, "unauthorized"},
		{"buyer creates event", "POST", "/v1/events", buyer("u1"), testcluster.Event("bad-3", 1, 1, 1), 403, "forbidden"},
		{"event without sections", "POST", "/v1/events", organiser("o1"), noSections, 400, "invalid_argument"},
		{"event exists", "POST", "/v1/events", organiser("o1"), testcluster.Event("bad-1", 1, 1, 1), 409, "event_exists"},
		{"bad event id", "GET", "/v1/events/bad%20id", "", nil, 400, "invalid_argument"},
		{"unknown hold", "DELETE", "/v1/holds/h_0.99999.0", buyer("u1"), nil, 404, "hold_not_found"},
		{"hold id without shard", "DELETE", "/v1/holds/nonsense", buyer("u1"), nil, 404, "hold_not_found"},
		{"bad status filter", "GET", "/v1/events/bad-1/seats?status=gone", "", nil, 400, "invalid_argument"},
		{"bad consistency", "GET", "/v1/events/bad-1/seats?consistency=eventual", "", nil, 400, "invalid_argument"},
		{"buyer changes membership", "POST", "/v1/cluster/members", buyer("u1"), `{"id":"n9","raftAddr":"127.0.0.1:1","httpAddr":"127.0.0.1:2"}`, 403, "forbidden"},
		{"no route", "GET", "/v1/nothing", "", nil, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range c.Members {
				code, body, hdr := testcluster.DoHeader(m.HTTPAddr, tc.method, tc.path, tc.token, tc.body)
				require.Equal(t, tc.status, code, "node %s: %s", m.ID, body)
				assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
				p := decode[problemBody](t, body)
				assert.Equal(t, tc.code, p.Code)
				assert.Equal(t, tc.status, p.Status)
				assert.NotEmpty(t, p.Title)
				assert.True(t, strings.HasPrefix(p.Type, "urn:boxoffice:problem:"), p.Type)
			}
		})
	}
	// A body over the limit is refused from its Content-Length, before it
	// is read. (The server then closes the connection with the body
	// unread, which a client still writing it sees as a reset; this client
	// sends the headers only.)
	for _, m := range c.Members {
		conn, err := net.Dial("tcp", m.HTTPAddr)
		require.NoError(t, err)
		fmt.Fprintf(conn, "POST /v1/events/bad-1/holds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", buyer("u1"), 2<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		require.Equal(t, 413, resp.StatusCode, "%s", body)
		assert.Equal(t, "body_too_large", decode[problemBody](t, body).Code)
	}
	assert.Equal(t, before, snapshot(), "bad requests changed state")
}

func TestClusterStatusAndMembership(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	code, body := c.Do(c.Members[1], "GET", "/v1/cluster", "", nil)
	require.Equal(t, 200, code, "%s", body)
	var cl struct {
		Nodes []struct {
			ID       string `json:"id"`
			HTTPAddr string `json:"httpAddr"`
			Voter    bool   `json:"voter"`
		} `json:"nodes"`
		Shards []struct {
			ID       int      `json:"id"`
			Leader   string   `json:"leader"`
			Replicas []string `json:"replicas"`
		} `json:"shards"`
	}
	require.NoError(t, json.Unmarshal(body, &cl))
	require.Len(t, cl.Nodes, 3)
	require.Len(t, cl.Shards, 2)
	for _, n := range cl.Nodes {
		assert.True(t, n.Voter, n.ID)
	}
	for _, s := range cl.Shards {
		assert.NotEmpty(t, s.Leader)
		assert.ElementsMatch(t, []string{"n1", "n2", "n3"}, s.Replicas)
	}

	// Transfer leadership of shard 0 through a node that does not lead it.
	from := c.Leader(0)
	var to *testcluster.Member
	for _, m := range c.Members {
		if m != from {
			to = m
		}
	}
	// The follower forwards it; the leader it forwarded to may hand over
	// before answering, and the follower then answers 503 (outcome
	// unknown). A transfer to the node that leads already is done, so a
	// client retries, as this one does.
	via := c.Follower(0)
	require.Eventually(t, func() bool {
		code, body = c.Do(via, "POST", "/v1/cluster/transfer-leadership", testcluster.AdminToken(), map[string]any{"shard": 0, "to": to.ID})
		require.Contains(t, []int{200, 503}, code, "%s", body)
		return code == 200
	}, 30*time.Second, 50*time.Millisecond, "transfer never answered 200: %s", body)
	require.Eventually(t, func() bool { return to.Node.IsLeader(0) }, 5*time.Second, 10*time.Millisecond)

	// Remove n3 through n1: it leaves every shard's configuration.
	n3 := c.Members[2]
	// Removal is idempotent: a client retries a 503 (a shard electing
	// after the transfer above) until every shard has removed n3.
	require.Eventually(t, func() bool {
		code, body = c.Do(c.Members[0], "DELETE", "/v1/cluster/members/n3", testcluster.AdminToken(), nil)
		return code == 200
	}, 20*time.Second, 50*time.Millisecond, "remove n3: %d %s", code, body)
	c.Stop(n3)
	for s := 0; s < 2; s++ {
		st := c.Leader(s).Node.Status()[s]
		assert.ElementsMatch(t, []string{"n1", "n2"}, st.Replicas, "shard %d", s)
	}
	// The two remaining nodes still accept writes.
	createEvent(t, c, testcluster.Event("after-remove", 1, 2, 2))
}

// Without a quorum there is no leader: a write waits about LeaderWait for
// one, then answers 503 no_leader with Retry-After, and changes nothing.
func TestWriteWithoutQuorumAnswersNoLeader(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("noq-1", 1, 2, 2))
	last := c.Members[2]
	c.Stop(c.Members[0])
	c.Stop(c.Members[1])
	shard := raftnode.ShardOf("noq-1", 2)
	require.Eventually(t, func() bool { _, ok := last.Node.LeaderNode(shard); return !ok }, 10*time.Second, 10*time.Millisecond,
		"the last node still believes in a leader")

	start := time.Now()
	code, body, hdr := testcluster.DoHeader(last.HTTPAddr, "POST", "/v1/events/noq-1/holds", buyer("u1"), `{"seats":["A-1-1"]}`)
	waited := time.Since(start)
	require.Equal(t, 503, code, "%s", body)
	assert.Equal(t, "no_leader", decode[problemBody](t, body).Code)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	assert.GreaterOrEqual(t, waited, time.Second, "the write waited LeaderWait for a leader")
	assert.Less(t, waited, 6*time.Second, "the wait is bounded")

	// Reads are still served from the local replica.
	code, body = c.Do(last, "GET", "/v1/events/noq-1/seats", "", nil)
	require.Equal(t, 200, code, "%s", body)
	for _, s := range decode[seatsBody](t, body).Seats {
		assert.Equal(t, "free", s.State)
	}
}
