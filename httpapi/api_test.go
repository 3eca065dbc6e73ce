package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

type orderBody struct {
	ID          string   `json:"id"`
	Hold        string   `json:"hold"`
	Buyer       string   `json:"buyer"`
	Seats       []string `json:"seats"`
	AmountCents int64    `json:"amountCents"`
	State       string   `json:"state"`
}

// 200 buyers race for the 50 seats of an event, half naming seats and half
// asking for the best available (some side by side), through all three
// nodes. Every seat ends with at most one owner, every acknowledged hold
// owns exactly its seats, and nothing else is held.
func TestTwoHundredBuyersRaceForFiftySeats(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("race-50", 1, 5, 10))

	type outcome struct {
		code int
		body []byte
	}
	const buyers = 200
	out := make([]outcome, buyers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < buyers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			var body string
			if i%2 == 0 {
				n := 1 + r.IntN(2)
				seats := make([]string, 0, n)
				for len(seats) < n {
					s := fmt.Sprintf(`"A-%d-%d"`, 1+r.IntN(5), 1+r.IntN(10))
					if !strings.Contains(strings.Join(seats, ","), s) {
						seats = append(seats, s)
					}
				}
				body = `{"seats":[` + strings.Join(seats, ",") + `]}`
			} else {
				body = fmt.Sprintf(`{"category":"std","quantity":%d,"adjacent":%v}`, 1+r.IntN(3), r.IntN(2) == 0)
			}
			<-start
			// As a real client does: an unknown outcome (a leader lost
			// its lead under load) is retried with the same key until it
			// is known, so every hold that took seats is acknowledged.
			key := fmt.Sprintf("race-%d", i)
			deadline := time.Now().Add(30 * time.Second)
			for {
				code, b, _ := doWithKey(c.Members[i%3].HTTPAddr, "POST", "/v1/events/race-50/holds", buyer(fmt.Sprintf("r%d", i)), key, body)
				out[i] = outcome{code, b}
				if code != 503 || time.Now().After(deadline) {
					break
				}
			}
		}()
	}
	close(start)
	wg.Wait()

	owner := map[string]string{}
	won := 0
	for i, o := range out {
		switch o.code {
		case 201:
			won++
			h := decode[holdBody](t, o.body)
			for _, s := range h.Seats {
				prev, taken := owner[s]
				require.False(t, taken, "seat %s held by %s and %s", s, prev, h.ID)
				owner[s] = h.ID
			}
		case 409:
			assert.Equal(t, "seat_unavailable", decode[problemBody](t, o.body).Code, "buyer %d", i)
		default:
			t.Errorf("buyer %d: %d %s", i, o.code, o.body)
		}
	}
	require.Greater(t, won, 10)
	// Best-available buyers found seats while any were free: the event is
	// nearly sold out (a few single seats may remain between held ones).
	assert.GreaterOrEqual(t, len(owner), 40)

	code, body := c.Do(c.Members[1], "GET", "/v1/events/race-50/seats?status=held&consistency=strong", "", nil)
	require.Equal(t, 200, code)
	held := map[string]bool{}
	for _, s := range decode[seatsBody](t, body).Seats {
		held[s.ID] = true
		_, ok := owner[s.ID]
		assert.True(t, ok, "seat %s is held but no acknowledged hold has it", s.ID)
	}
	assert.Len(t, held, len(owner))
}

// A purchase retried with its Idempotency-Key after the shard's leader died
// returns the first order, through another node; the key with another
// request is refused.
func TestIdempotentPurchaseRetryAcrossLeaderKill(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("idem-1", 1, 5, 5))
	shard := raftnode.ShardOf("idem-1", 2)
	leader := c.Leader(shard)
	var other []*testcluster.Member
	for _, m := range c.Members {
		if m != leader {
			other = append(other, m)
		}
	}

	hold := func(seat string) holdBody {
		code, body, _ := testcluster.DoHeader(other[0].HTTPAddr, "POST", "/v1/events/idem-1/holds", buyer("u1"), `{"seats":["`+seat+`"]}`)
		require.Equal(t, 201, code, "%s", body)
		return decode[holdBody](t, body)
	}
	h := hold("A-1-1")
	purchase := func(m *testcluster.Member, key, body string) (int, []byte, string) {
		code, b, hdr := doWithKey(m.HTTPAddr, "POST", "/v1/holds/"+h.ID+"/purchase", buyer("u1"), key, body)
		return code, b, hdr
	}
	code, body, replayed := purchase(other[0], "buy-1", `{"paymentMethod":"pm_card_visa"}`)
	require.Equal(t, 201, code, "%s", body)
	first := decode[orderBody](t, body)
	assert.Empty(t, replayed)

	c.Stop(leader)
	var retry []byte
	require.Eventually(t, func() bool {
		code, retry, replayed = purchase(other[1], "buy-1", `{"paymentMethod":"pm_card_visa"}`)
		return code == 201
	}, 10*time.Second, 50*time.Millisecond, "retry after the leader died: %d %s", code, retry)
	assert.Equal(t, "true", replayed)
	again := decode[orderBody](t, retry)
	assert.Equal(t, first, again, "the retry returns the first order")

	code, body, _ = purchase(other[1], "buy-1", `{"paymentMethod":"pm_card_amex"}`)
	require.Equal(t, 422, code, "%s", body)
	assert.Equal(t, "idempotency_key_reused", decode[problemBody](t, body).Code)

	// One order, one sale: the buyer owns one order of this event.
	code, body = c.Do(other[1], "GET", "/v1/me/orders", buyer("u1"), nil)
	require.Equal(t, 200, code)
	var mine struct{ Orders []orderBody }
	require.NoError(t, json.Unmarshal(body, &mine))
	require.Len(t, mine.Orders, 1)
	assert.Equal(t, first.ID, mine.Orders[0].ID)

	// A hold retried with its key is not a second hold.
	code, b1, _ := doWithKey(other[0].HTTPAddr, "POST", "/v1/events/idem-1/holds", buyer("u2"), "hold-1", `{"seats":["A-2-1"]}`)
	require.Equal(t, 201, code, "%s", b1)
	code, b2, rep := doWithKey(other[1].HTTPAddr, "POST", "/v1/events/idem-1/holds", buyer("u2"), "hold-1", `{"seats":["A-2-1"]}`)
	require.Equal(t, 201, code, "%s", b2)
	assert.Equal(t, "true", rep)
	assert.JSONEq(t, string(b1), string(b2))
}

func doWithKey(addr, method, path, token, key, body string) (int, []byte, string) {
	code, b, hdr := testcluster.DoHeaderWith(addr, method, path, token, body, map[string]string{"Idempotency-Key": key})
	if hdr == nil {
		return code, b, ""
	}
	return code, b, hdr.Get("Idempotent-Replayed")
}

func TestEventSearchPagesAndPatch(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := organiser("org1")
	mk := func(id, name, typ, loc, at string) {
		ev := testcluster.Event(id, 1, 2, 2)
		ev["name"], ev["type"], ev["location"], ev["startsAt"] = name, typ, loc, at
		code, body := c.Do(c.Members[0], "POST", "/v1/events", org, ev)
		require.Equal(t, 201, code, "%s", body)
	}
	mk("s-1", "Rock Night", "concert", "Berlin", "2026-12-01T20:00:00Z")
	mk("s-2", "Jazz Evening", "concert", "Hamburg", "2026-12-05T20:00:00Z")
	mk("s-3", "Hamlet", "theatre", "Berlin", "2027-01-10T19:00:00Z")
	mk("s-4", "ROCK the BLOCK", "festival", "Berlin-Mitte", "2027-02-01T12:00:00Z")

	// Wait until this node has every event (local reads lag the leaders).
	m := c.Members[2]
	search := func(query string) ([]string, string) {
		code, body := c.Do(m, "GET", "/v1/events?"+query, "", nil)
		require.Equal(t, 200, code, "%s", body)
		var page struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
			NextCursor string `json:"nextCursor"`
		}
		require.NoError(t, json.Unmarshal(body, &page))
		var ids []string
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		return ids, page.NextCursor
	}
	require.Eventually(t, func() bool { ids, _ := search(""); return len(ids) == 4 }, 5*time.Second, 10*time.Millisecond)

	ids, _ := search("q=rock")
	assert.Equal(t, []string{"s-1", "s-4"}, ids, "case-insensitive substring of the name")
	ids, _ = search("type=CONCERT&location=berlin")
	assert.Equal(t, []string{"s-1"}, ids)
	ids, _ = search("from=2026-12-02T00:00:00Z&to=2027-01-31T00:00:00Z")
	assert.Equal(t, []string{"s-2", "s-3"}, ids)
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 4)
		ids, next := search("limit=3&cursor=" + cursor)
		all = append(all, ids...)
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, []string{"s-1", "s-2", "s-3", "s-4"}, all)
	for _, bad := range []string{"limit=0", "limit=501", "from=yesterday", "cursor=a%20b"} {
		code, body := c.Do(m, "GET", "/v1/events?"+bad, "", nil)
		assert.Equal(t, 400, code, "%s: %s", bad, body)
	}

	// PATCH changes only what it names.
	code, body := c.Do(m, "PATCH", "/v1/events/s-1", org, `{"name":"Rock Night II","limits":{"maxSeatsPerBuyer":2,"holdTTLSeconds":120}}`)
	require.Equal(t, 200, code, "%s", body)
	var ev struct {
		Name     string `json:"name"`
		Location string `json:"location"`
		Limits   struct {
			MaxSeatsPerBuyer int `json:"maxSeatsPerBuyer"`
		} `json:"limits"`
	}
	require.NoError(t, json.Unmarshal(body, &ev))
	assert.Equal(t, "Rock Night II", ev.Name)
	assert.Equal(t, "Berlin", ev.Location)
	assert.Equal(t, 2, ev.Limits.MaxSeatsPerBuyer)
	code, body = c.Do(m, "PATCH", "/v1/events/s-1", org, `{"limits":{"holdTTLSeconds":90}}`)
	require.Equal(t, 200, code, "%s", body)
	require.NoError(t, json.Unmarshal(body, &ev))
	assert.Equal(t, 2, ev.Limits.MaxSeatsPerBuyer, "a limit not named is kept")
	code, _ = c.Do(m, "PATCH", "/v1/events/s-1", organiser("org2"), `{"name":"Mine now"}`)
	assert.Equal(t, 403, code)
	code, _ = c.Do(m, "PATCH", "/v1/events/s-1", testcluster.AdminToken(), `{"location":"Potsdam"}`)
	assert.Equal(t, 200, code, "an admin manages every event")
	// The layout cannot shrink under a held seat.
	code, body = c.Do(m, "POST", "/v1/events/s-1/holds", buyer("u1"), `{"seats":["A-2-2"]}`)
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(m, "PATCH", "/v1/events/s-1", org, `{"venue":{"sections":[{"id":"A","category":"std","rows":1,"seatsPerRow":2}]}}`)
	assert.Equal(t, 409, code, "%s", body)
	assert.Equal(t, "layout_in_use", decode[problemBody](t, body).Code)
	code, body = c.Do(m, "PATCH", "/v1/events/s-1", org, `{"venue":{"sections":[{"id":"A","category":"std","rows":2,"seatsPerRow":2},{"id":"B","category":"std","rows":1,"seatsPerRow":3}]}}`)
	assert.Equal(t, 200, code, "appending a section is allowed: %s", body)
	code, body = c.Do(m, "PATCH", "/v1/events/s-1", org, `{"limits":{"maxSeatsPerBuyer":0,"holdTTLSeconds":1}}`)
	assert.Equal(t, 400, code, "%s", body)
}

func TestExtendCancelExchangeAndMyLists(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	ev := testcluster.Event("ops-1", 2, 2, 5)
	ev["categories"] = []map[string]any{{"id": "std", "name": "Std", "priceCents": 5000}, {"id": "vip", "name": "VIP", "priceCents": 9000}}
	ev["venue"] = map[string]any{"sections": []map[string]any{
		{"id": "A", "category": "std", "rows": 2, "seatsPerRow": 5},
		{"id": "V", "category": "vip", "rows": 1, "seatsPerRow": 4},
	}}
	ev["limits"] = map[string]any{"maxSeatsPerBuyer": 4, "holdTTLSeconds": 60}
	createEvent(t, c, ev)
	m := c.Members[1]
	u1 := buyer("u1")

	code, body := c.Do(m, "POST", "/v1/events/ops-1/holds", u1, `{"seats":["A-1-1","V-1-1"],"ttlSeconds":10}`)
	require.Equal(t, 201, code, "%s", body)
	h := decode[holdBody](t, body)
	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/extend", u1, `{"ttlSeconds":60}`)
	require.Equal(t, 200, code, "%s", body)
	ext := decode[holdBody](t, body)
	assert.Greater(t, ext.ExpiresAt, h.ExpiresAt)
	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/extend", buyer("u2"), `{}`)
	assert.Equal(t, 403, code, "%s", body)

	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/purchase", u1, `{"paymentMethod":"pm_card_visa"}`)
	require.Equal(t, 201, code, "%s", body)
	o := decode[orderBody](t, body)
	assert.Equal(t, int64(14000), o.AmountCents)

	// Exchange keeps categories, all or nothing.
	code, body = c.Do(m, "POST", "/v1/orders/"+o.ID+"/exchange", u1, `{"release":["A-1-1"],"take":["V-1-2"]}`)
	assert.Equal(t, 400, code, "categories differ: %s", body)
	code, body = c.Do(m, "POST", "/v1/orders/"+o.ID+"/exchange", u1, `{"release":["A-1-1","V-1-1"],"take":["A-2-5","V-1-4"]}`)
	require.Equal(t, 200, code, "%s", body)
	o2 := decode[orderBody](t, body)
	sort.Strings(o2.Seats)
	assert.Equal(t, []string{"A-2-5", "V-1-4"}, o2.Seats)
	assert.Equal(t, o.AmountCents, o2.AmountCents)
	code, body = c.Do(m, "GET", "/v1/events/ops-1/seats?status=sold&consistency=strong", "", nil)
	require.Equal(t, 200, code)
	var sold []string
	for _, s := range decode[seatsBody](t, body).Seats {
		sold = append(sold, s.ID)
	}
	assert.Equal(t, []string{"A-2-5", "V-1-4"}, sold)

	code, body = c.Do(m, "GET", "/v1/me/holds", u1, nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), h.ID)
	code, body = c.Do(m, "GET", "/v1/me/holds", buyer("u2"), nil)
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"holds":[]}`, string(body))

	code, body = c.Do(m, "POST", "/v1/orders/"+o.ID+"/cancel", buyer("u2"), nil)
	assert.Equal(t, 403, code, "%s", body)
	code, body = c.Do(m, "POST", "/v1/orders/"+o.ID+"/cancel", u1, nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, "refunded", decode[orderBody](t, body).State, "the simulated gateway refunds at once")
	code, body = c.Do(m, "POST", "/v1/orders/"+o.ID+"/cancel", u1, nil)
	assert.Equal(t, 409, code, "%s", body)
	assert.Equal(t, "order_not_active", decode[problemBody](t, body).Code)
	code, body = c.Do(m, "GET", "/v1/events/ops-1/seats?status=sold&consistency=strong", "", nil)
	require.Equal(t, 200, code)
	assert.Empty(t, decode[seatsBody](t, body).Seats, "a cancelled order's seats are free")
	// /v1/me reads this node's replica, which may trail the refund's step.
	require.Eventually(t, func() bool {
		code, body = c.Do(m, "GET", "/v1/me/orders", u1, nil)
		return code == 200 && strings.Contains(string(body), `"state":"refunded"`)
	}, 5*time.Second, 10*time.Millisecond, "%s", body)

	// Bad input on the new routes.
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/holds/" + h.ID + "/extend", `{"ttlSeconds":-1}`, 400},
		{"POST", "/v1/orders/" + o.ID + "/exchange", `{"release":["A-1-1"],"take":[]}`, 400},
		{"POST", "/v1/orders/o_9.1.0/cancel", ``, 404},
		{"POST", "/v1/events/ops-1/holds", `{"category":"std","quantity":0}`, 400},
		{"POST", "/v1/events/ops-1/holds", `{"category":"std","quantity":2,"seats":["A-1-1"]}`, 400},
		{"POST", "/v1/events/ops-1/holds", `{"category":"gold","quantity":1}`, 400},
	} {
		code, body := c.Do(m, tc.method, tc.path, u1, tc.body)
		assert.Equal(t, tc.status, code, "%s %s: %s", tc.method, tc.path, body)
	}
	code, body = c.Do(m, "GET", "/v1/me/orders", "", nil)
	assert.Equal(t, 401, code, "%s", body)
}

// A best-available hold retried with its key after it took the last seats
// (its client never learned the outcome) replays that hold: it must not
// answer "no free seats" because its own first run took them.
func TestBestAvailableRetryReplaysWhenItTookTheLastSeats(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("idem-best", 1, 1, 2))
	body := `{"category":"std","quantity":2}`
	code, first, _ := doWithKey(c.Members[0].HTTPAddr, "POST", "/v1/events/idem-best/holds", buyer("u1"), "best-1", body)
	require.Equal(t, 201, code, "%s", first)
	for _, m := range c.Members {
		code, again, replayed := doWithKey(m.HTTPAddr, "POST", "/v1/events/idem-best/holds", buyer("u1"), "best-1", body)
		require.Equal(t, 201, code, "%s", again)
		assert.Equal(t, "true", replayed)
		assert.JSONEq(t, string(first), string(again))
	}
	// Another key finds no seats, as before; the key with another request
	// is refused, as it would be had it been proposed.
	code, b, _ := doWithKey(c.Members[1].HTTPAddr, "POST", "/v1/events/idem-best/holds", buyer("u1"), "best-2", body)
	require.Equal(t, 409, code, "%s", b)
	code, b, _ = doWithKey(c.Members[2].HTTPAddr, "POST", "/v1/events/idem-best/holds", buyer("u1"), "best-1", `{"category":"std","quantity":1}`)
	require.Equal(t, 422, code, "%s", b)
	assert.Equal(t, "idempotency_key_reused", decode[problemBody](t, b).Code)
}
