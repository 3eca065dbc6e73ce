package client_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/client"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// Integration tests: the client against a real in-process cluster of three
// nodes (raft, Pebble, the fasthttp API).

func nodesOf(c *testcluster.Cluster) []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, "http://"+m.HTTPAddr)
	}
	return out
}

func newClient(t *testing.T, nodes []string, token string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Nodes = nodes
	cfg.Token = token
	cl, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

func buyer(sub string) string { return testcluster.Token(sub, httpapi.RoleBuyer) }

// testEvent has sections A and B of 10 rows × 10 seats, category std at
// 5000 cents.
func testEvent(id string) *client.Event {
	return &client.Event{
		ID: id, Name: "Test " + id, Type: "concert", Location: "Berlin",
		StartsAt:   time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC),
		Categories: []client.Category{{ID: "std", Name: "Standard", PriceCents: 5000}},
		Venue: client.Venue{Sections: []client.Section{
			{ID: "A", Category: "std", Rows: 10, SeatsPerRow: 10},
			{ID: "B", Category: "std", Rows: 10, SeatsPerRow: 10},
		}},
		Limits: client.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 300},
	}
}

func seatIDs(m client.SeatMap) []string {
	var out []string
	for _, s := range m.Seats {
		out = append(out, s.ID)
	}
	return out
}

func TestClusterEndToEnd(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := newClient(t, nodesOf(c), testcluster.Token("org1", httpapi.RoleOrganiser))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	created, err := org.CreateEvent(ctx, testEvent("e2e-1"))
	require.NoError(t, err)
	assert.Equal(t, "org1", created.Organiser)
	assert.Equal(t, 200, created.Capacity)
	assert.Equal(t, time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC), created.StartsAt.UTC())
	assert.Equal(t, client.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 300}, created.Limits)

	t.Run("event and list", func(t *testing.T) {
		ev, err := org.GetEvent(client.WithStrongRead(ctx), "e2e-1")
		require.NoError(t, err)
		assert.Equal(t, "Test e2e-1", ev.Name)
		require.Len(t, ev.Availability, 1)
		assert.Equal(t, client.Availability{ID: "std", Capacity: 200, Free: 200}, ev.Availability[0])

		_, err = org.GetEvent(ctx, "no-such-event")
		require.ErrorIs(t, err, boxoffice.ErrEventNotFound)

		_, err = org.CreateEvent(ctx, testEvent("e2e-1"))
		require.ErrorIs(t, err, boxoffice.ErrEventExists)

		// The list is read from the answering node's replica: wait until
		// it has applied the creation.
		require.Eventually(t, func() bool {
			page, err := org.ListEvents(ctx, client.EventQuery{Location: "berlin", Limit: 10})
			return err == nil && slices.ContainsFunc(page.Events, func(e client.Event) bool { return e.ID == "e2e-1" })
		}, 10*time.Second, 20*time.Millisecond)
	})

	t.Run("hold, seat map, release, purchase, order", func(t *testing.T) {
		u1 := org.WithToken(buyer("u1"))
		h, err := u1.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-1-1", "A-1-2"}})
		require.NoError(t, err)
		assert.Equal(t, "e2e-1", h.Event)
		assert.Equal(t, "u1", h.Buyer)
		assert.Equal(t, client.HoldActive, h.State)
		assert.ElementsMatch(t, []string{"A-1-1", "A-1-2"}, h.Seats)
		assert.True(t, h.ExpiresAt.After(h.CreatedAt), "expiresAt %v after createdAt %v", h.ExpiresAt, h.CreatedAt)

		held, err := u1.Seats(ctx, "e2e-1", client.SeatQuery{Section: "A", Status: client.SeatHeld, Strong: true})
		require.NoError(t, err)
		assert.Equal(t, "e2e-1", held.Event)
		assert.NotZero(t, held.Index)
		assert.ElementsMatch(t, []string{"A-1-1", "A-1-2"}, seatIDs(held))

		// Another buyer cannot have them: all or nothing.
		u2 := org.WithToken(buyer("u2"))
		_, err = u2.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-1-3", "A-1-2"}})
		require.ErrorIs(t, err, boxoffice.ErrSeatUnavailable)
		var e *client.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 409, e.Status)
		assert.False(t, e.Retryable)

		// Nor see the hold.
		_, err = u2.GetHold(ctx, h.ID)
		require.Error(t, err)

		rest, err := u1.Release(ctx, h.ID, "A-1-2")
		require.NoError(t, err)
		require.NotNil(t, rest, "some seats are still held")
		assert.Equal(t, []string{"A-1-1"}, rest.Seats)
		held, err = u1.Seats(ctx, "e2e-1", client.SeatQuery{Section: "A", Status: client.SeatHeld, Strong: true})
		require.NoError(t, err)
		assert.Equal(t, []string{"A-1-1"}, seatIDs(held))

		o, err := u1.Purchase(ctx, h.ID, "pm_card_visa")
		require.NoError(t, err)
		assert.Equal(t, client.OrderPaid, o.State)
		assert.Equal(t, h.ID, o.Hold)
		assert.Equal(t, []string{"A-1-1"}, o.Seats)
		assert.Equal(t, int64(5000), o.AmountCents)
		assert.Equal(t, "u1", o.Buyer)

		got, err := u1.GetOrder(client.WithStrongRead(ctx), o.ID)
		require.NoError(t, err)
		assert.Equal(t, o, got)

		hold, err := u1.GetHold(client.WithStrongRead(ctx), h.ID)
		require.NoError(t, err)
		assert.Equal(t, client.HoldPurchased, hold.State)
		assert.Equal(t, o.ID, hold.Order)

		sold, err := u1.Seats(ctx, "e2e-1", client.SeatQuery{Status: client.SeatSold, Strong: true})
		require.NoError(t, err)
		assert.Equal(t, []string{"A-1-1"}, seatIDs(sold))

		// A purchased hold cannot be bought again.
		_, err = u1.Purchase(ctx, h.ID, "pm_card_visa")
		require.ErrorIs(t, err, boxoffice.ErrHoldNotActive)

		// Releasing a whole hold answers no hold.
		h2, err := u1.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"B-1-1"}})
		require.NoError(t, err)
		rest, err = u1.Release(ctx, h2.ID)
		require.NoError(t, err)
		assert.Nil(t, rest)
		free, err := u1.Seats(ctx, "e2e-1", client.SeatQuery{Section: "B", Status: client.SeatFree, Strong: true})
		require.NoError(t, err)
		assert.Contains(t, seatIDs(free), "B-1-1")
	})

	t.Run("retried writes with one idempotency key act once", func(t *testing.T) {
		u3 := org.WithToken(buyer("u3"))
		kctx := client.WithIdempotencyKey(ctx, "u3-hold-1")
		h1, err := u3.Hold(kctx, "e2e-1", client.HoldRequest{Seats: []string{"A-2-1"}})
		require.NoError(t, err)
		h2, err := u3.Hold(kctx, "e2e-1", client.HoldRequest{Seats: []string{"A-2-1"}})
		require.NoError(t, err, "the same key and body get the first answer")
		assert.Equal(t, h1.ID, h2.ID)

		_, err = u3.Hold(kctx, "e2e-1", client.HoldRequest{Seats: []string{"A-2-2"}})
		require.ErrorIs(t, err, &boxoffice.Error{Code: boxoffice.CodeIdempotencyReused})

		pctx := client.WithIdempotencyKey(ctx, "u3-buy-1")
		o1, err := u3.Purchase(pctx, h1.ID, "pm_card_visa")
		require.NoError(t, err)
		o2, err := u3.Purchase(pctx, h1.ID, "pm_card_visa")
		require.NoError(t, err, "a retried purchase returns its order")
		assert.Equal(t, o1.ID, o2.ID)
	})

	t.Run("my holds and orders", func(t *testing.T) {
		u4 := org.WithToken(buyer("u4"))
		h, err := u4.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-3-1", "A-3-2"}})
		require.NoError(t, err)
		h2, err := u4.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-3-3"}})
		require.NoError(t, err)
		o, err := u4.Purchase(ctx, h2.ID, "pm_card_visa")
		require.NoError(t, err)

		// Lists are read from the answering node's replica.
		require.Eventually(t, func() bool {
			holds, err := u4.MyHolds(ctx)
			if err != nil || len(holds) != 2 {
				return false
			}
			orders, err := u4.MyOrders(ctx)
			return err == nil && len(orders) == 1 && orders[0].ID == o.ID
		}, 10*time.Second, 20*time.Millisecond)
		holds, err := u4.MyHolds(ctx)
		require.NoError(t, err)
		var ids []string
		for _, x := range holds {
			ids = append(ids, x.ID)
			assert.Equal(t, "u4", x.Buyer)
		}
		assert.ElementsMatch(t, []string{h.ID, h2.ID}, ids)

		none, err := org.WithToken(buyer("nobody")).MyOrders(ctx)
		require.NoError(t, err)
		assert.Empty(t, none)
	})

	t.Run("extend hold", func(t *testing.T) {
		u5 := org.WithToken(buyer("u5"))
		h, err := u5.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-4-1"}, TTL: 10 * time.Second})
		require.NoError(t, err)
		longer, err := u5.ExtendHold(ctx, h.ID, 200*time.Second)
		require.NoError(t, err)
		assert.True(t, longer.ExpiresAt.After(h.ExpiresAt), "%v after %v", longer.ExpiresAt, h.ExpiresAt)
		assert.Equal(t, client.HoldActive, longer.State)
	})

	t.Run("cancel order", func(t *testing.T) {
		u6 := org.WithToken(buyer("u6"))
		h, err := u6.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-5-1"}})
		require.NoError(t, err)
		o, err := u6.Purchase(ctx, h.ID, "pm_card_visa")
		require.NoError(t, err)
		cancelled, err := u6.CancelOrder(ctx, o.ID)
		require.NoError(t, err)
		// The simulated gateway refunds at once.
		assert.Equal(t, client.OrderRefunded, cancelled.State)
		free, err := u6.Seats(ctx, "e2e-1", client.SeatQuery{Section: "A", Status: client.SeatFree, Strong: true})
		require.NoError(t, err)
		assert.Contains(t, seatIDs(free), "A-5-1")
	})

	t.Run("exchange seats", func(t *testing.T) {
		u7 := org.WithToken(buyer("u7"))
		h, err := u7.Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-6-1", "A-6-2"}})
		require.NoError(t, err)
		o, err := u7.Purchase(ctx, h.ID, "pm_card_visa")
		require.NoError(t, err)
		swapped, err := u7.ExchangeSeats(ctx, o.ID, []string{"A-6-2"}, []string{"B-6-2"})
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"A-6-1", "B-6-2"}, swapped.Seats)
		sold, err := u7.Seats(ctx, "e2e-1", client.SeatQuery{Status: client.SeatSold, Strong: true})
		require.NoError(t, err)
		assert.Contains(t, seatIDs(sold), "B-6-2")
		assert.NotContains(t, seatIDs(sold), "A-6-2")
	})

	t.Run("hold by category", func(t *testing.T) {
		u8 := org.WithToken(buyer("u8"))
		h, err := u8.Hold(ctx, "e2e-1", client.HoldRequest{Category: "std", Quantity: 3, Adjacent: true})
		require.NoError(t, err)
		assert.Len(t, h.Seats, 3)
	})

	t.Run("update event partially", func(t *testing.T) {
		ev, err := org.UpdateEvent(ctx, "e2e-1", client.EventPatch{Name: new("Renamed")})
		require.NoError(t, err)
		assert.Equal(t, "Renamed", ev.Name)
		assert.Equal(t, "Berlin", ev.Location, "fields not in the patch are kept")
		assert.Len(t, ev.Venue.Sections, 2)

		_, err = org.WithToken(testcluster.Token("org2", httpapi.RoleOrganiser)).UpdateEvent(ctx, "e2e-1", client.EventPatch{Name: new("Mine")})
		require.ErrorIs(t, err, &boxoffice.Error{Code: boxoffice.CodeForbidden})
	})

	t.Run("cluster status", func(t *testing.T) {
		st, err := org.Cluster(ctx)
		require.NoError(t, err)
		assert.NotEmpty(t, st.Node)
		require.Len(t, st.Nodes, 3)
		require.Len(t, st.Shards, 2)
		leads := 0
		for _, n := range st.Nodes {
			assert.True(t, n.Voter, n.ID)
			assert.NotEmpty(t, n.HTTPAddr)
			leads += len(n.Leads)
		}
		assert.Equal(t, 2, leads, "every shard has one leader")
		for _, s := range st.Shards {
			assert.NotEmpty(t, s.Leader, "shard %d", s.ID)
			assert.Len(t, s.Voters, 3)
			assert.NotZero(t, s.AppliedIndex)
		}
	})

	t.Run("auth errors", func(t *testing.T) {
		_, err := org.WithToken("").Hold(ctx, "e2e-1", client.HoldRequest{Seats: []string{"A-9-9"}})
		require.ErrorIs(t, err, &boxoffice.Error{Code: boxoffice.CodeUnauthorized})
		_, err = org.WithToken(buyer("u9")).CreateEvent(ctx, testEvent("e2e-2"))
		require.ErrorIs(t, err, &boxoffice.Error{Code: boxoffice.CodeForbidden})
		err = org.RemoveMember(ctx, "n2")
		require.ErrorIs(t, err, &boxoffice.Error{Code: boxoffice.CodeForbidden}, "membership is for admins")
	})
}

// TestStoppedNodeIsSkipped lists a node that is down first: the client
// moves past it to a live one, and keeps working when the node it was
// using stops.
func TestStoppedNodeIsSkipped(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := nodesOf(c)

	c.Stop(c.Members[0])
	org := newClient(t, nodes, testcluster.Token("org1", httpapi.RoleOrganiser))
	_, err := org.CreateEvent(ctx, testEvent("skip-1"))
	require.NoError(t, err)
	u1 := org.WithToken(buyer("u1"))
	h, err := u1.Hold(ctx, "skip-1", client.HoldRequest{Seats: []string{"A-1-1"}})
	require.NoError(t, err)
	held, err := u1.Seats(ctx, "skip-1", client.SeatQuery{Status: client.SeatHeld, Strong: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-1"}, seatIDs(held))

	// The client now uses n2 (the next in its list). Stop it too after
	// restarting n1, so that a majority stays up: the client's kept-alive
	// connections to n2 break, and it moves on.
	c.Restart(c.Members[0])
	c.WaitReady()
	c.Stop(c.Members[1])
	o, err := u1.Purchase(ctx, h.ID, "pm_card_visa")
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-1"}, o.Seats)
	got, err := u1.GetOrder(client.WithStrongRead(ctx), o.ID)
	require.NoError(t, err)
	assert.Equal(t, client.OrderPaid, got.State)

	admin := org.WithToken(testcluster.AdminToken())
	st, err := admin.Cluster(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, c.Members[1].ID, st.Node, "a stopped node does not answer")
}

// relayed is a node's count of writes it forwarded to a leader and relayed
// the answer of (its /metrics).
func relayed(t *testing.T, m *testcluster.Member) int {
	t.Helper()
	code, body, _ := testcluster.DoHeader(m.HTTPAddr, "GET", "/metrics", "", nil)
	require.Equal(t, 200, code)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, `boxoffice_forwards_total{outcome="relayed"} `) {
			n, err := strconv.ParseFloat(strings.Fields(line)[1], 64)
			require.NoError(t, err)
			return int(n)
		}
	}
	return 0
}

// TestWritesGoToTheLeaderWithoutForwarding: a client that starts at a
// follower learns the leader from the answers' route hints and sends the
// rest of its writes there, so no node forwards them.
func TestWritesGoToTheLeaderWithoutForwarding(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	shard := c.ShardOf("route-1")
	follower := c.Follower(shard)
	nodes := []string{"http://" + follower.HTTPAddr}
	for _, m := range c.Members {
		if m != follower {
			nodes = append(nodes, "http://"+m.HTTPAddr)
		}
	}
	org := newClient(t, nodes, testcluster.Token("org1", httpapi.RoleOrganiser))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := org.CreateEvent(ctx, testEvent("route-1"))
	require.NoError(t, err)

	u := org.WithToken(buyer("u1"))
	_, err = u.Hold(ctx, "route-1", client.HoldRequest{Seats: []string{"A-1-1"}})
	require.NoError(t, err)
	// The ids of the other nodes are looked up in the background: wait
	// until a write no longer goes through the follower.
	before := relayed(t, follower)
	seat := 2
	require.Eventually(t, func() bool {
		n := relayed(t, follower)
		h, err := u.Hold(ctx, "route-1", client.HoldRequest{Seats: []string{fmt.Sprintf("A-1-%d", seat)}})
		require.NoError(t, err)
		_, err = u.Release(ctx, h.ID)
		require.NoError(t, err)
		seat++
		return relayed(t, follower) == n
	}, 30*time.Second, 10*time.Millisecond)

	was := map[string]int{}
	for _, m := range c.Members {
		was[m.ID] = relayed(t, m)
	}
	for i := 1; i <= 5; i++ {
		h, err := u.Hold(ctx, "route-1", client.HoldRequest{Seats: []string{fmt.Sprintf("B-1-%d", i)}})
		require.NoError(t, err)
		_, err = u.Purchase(ctx, h.ID, "pm_card_visa")
		require.NoError(t, err)
	}
	for _, m := range c.Members {
		assert.Equal(t, was[m.ID], relayed(t, m), "%s forwarded none of the holds and purchases", m.ID)
	}
	assert.GreaterOrEqual(t, before, 1, "the first writes went through the follower")
}
