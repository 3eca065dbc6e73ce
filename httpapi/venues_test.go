package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

type venueBody struct {
	ID       string           `json:"id"`
	Version  int              `json:"version"`
	Owner    string           `json:"owner"`
	Capacity int              `json:"capacity"`
	Sections []map[string]any `json:"sections"`
	Areas    []map[string]any `json:"areas"`
}

type venueEventBody struct {
	ID           string `json:"id"`
	VenueID      string `json:"venueId"`
	VenueVersion int    `json:"venueVersion"`
	Capacity     int    `json:"capacity"`
	Venue        struct {
		Sections []map[string]any `json:"sections"`
		Areas    []map[string]any `json:"areas"`
	} `json:"venue"`
	Availability []struct {
		ID       string `json:"id"`
		Capacity int    `json:"capacity"`
		Free     int    `json:"free"`
		Held     int    `json:"held"`
		Sold     int    `json:"sold"`
	} `json:"availability"`
}

func venueDoc(id string, sections []map[string]any, areas []map[string]any) map[string]any {
	return map[string]any{
		"id": id, "name": "Venue " + id, "location": "Berlin",
		"categories": []map[string]any{{"id": "seat", "name": "Seated"}, {"id": "ga", "name": "Standing"}},
		"sections":   sections, "areas": areas,
	}
}

func venueEvent(id, venue string, version, perBuyer int) map[string]any {
	ev := map[string]any{
		"id": id, "name": "Night " + id, "venueId": venue,
		"categories": []map[string]any{{"id": "seat", "priceCents": 5000}, {"id": "ga", "name": "Pit", "priceCents": 3000}},
		"limits":     map[string]any{"maxSeatsPerBuyer": perBuyer, "holdTTLSeconds": 600},
	}
	if version != 0 {
		ev["venueVersion"] = version
	}
	return ev
}

// idOnShard returns prefix-<n> for the first n whose shard is shard.
func idOnShard(prefix string, shard int) string {
	for n := 0; ; n++ {
		id := fmt.Sprintf("%s-%d", prefix, n)
		if raftnode.ShardOf(id, 2) == shard {
			return id
		}
	}
}

// An event made from a venue keeps the version it was made from, whatever
// happens to the venue afterwards. The event lives on the other shard than
// the venue and is created through a node that leads neither, so the venue
// is read from its shard's leader over HTTP.
func TestEventsKeepTheirVenueVersion(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := organiser("vorg")
	venue := "hall"
	vShard := raftnode.ShardOf(venue, 2)
	code, body := c.Do(c.Members[0], "POST", "/v1/venues", org, venueDoc(venue,
		[]map[string]any{{"id": "A", "category": "seat", "rows": 2, "seatsPerRow": 3}},
		[]map[string]any{{"id": "PIT", "category": "ga", "capacity": 4}}))
	require.Equal(t, 201, code, "%s", body)
	v1 := decode[venueBody](t, body)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, "vorg", v1.Owner)
	require.Equal(t, 10, v1.Capacity)

	evShard := 1 - vShard
	ev1 := idOnShard("hall-ev", evShard)
	via := c.Members[0]
	for _, m := range c.Members {
		if m.ID != c.Leader(vShard).ID && m.ID != c.Leader(evShard).ID {
			via = m
		}
	}
	code, body = c.Do(via, "POST", "/v1/events", org, venueEvent(ev1, venue, 0, 8))
	require.Equal(t, 201, code, "%s", body)
	e := decode[venueEventBody](t, body)
	require.Equal(t, venue, e.VenueID)
	require.Equal(t, 1, e.VenueVersion)
	require.Equal(t, 10, e.Capacity)

	// Hold some of both kinds before the venue changes.
	code, body = c.Do(c.Members[1], "POST", "/v1/events/"+ev1+"/holds", buyer("b1"), `{"area":"PIT","quantity":2}`)
	require.Equal(t, 201, code, "%s", body)
	require.Equal(t, []string{"GA-PIT-1", "GA-PIT-2"}, decode[holdBody](t, body).Seats)
	code, body = c.Do(c.Members[2], "POST", "/v1/events/"+ev1+"/holds", buyer("b2"), `{"seats":["A-2-3"]}`)
	require.Equal(t, 201, code, "%s", body)

	// Version 2: another layout. Only its owner (or an admin) may make it.
	v2doc := venueDoc(venue, []map[string]any{{"id": "B", "category": "seat", "rows": 1, "seatsPerRow": 1}},
		[]map[string]any{{"id": "PIT", "category": "ga", "capacity": 100}})
	code, body = c.Do(c.Members[2], "PUT", "/v1/venues/"+venue, organiser("someone-else"), v2doc)
	require.Equal(t, 403, code, "%s", body)
	code, body = c.Do(c.Members[2], "PUT", "/v1/venues/"+venue, org, v2doc)
	require.Equal(t, 200, code, "%s", body)
	v2 := decode[venueBody](t, body)
	require.Equal(t, 2, v2.Version)
	require.Equal(t, 101, v2.Capacity)

	// The event still has version 1's layout, on every node.
	for _, m := range c.Members {
		code, body = c.Do(m, "GET", "/v1/events/"+ev1+"?consistency=strong", "", nil)
		require.Equal(t, 200, code, "%s", body)
		got := decode[venueEventBody](t, body)
		assert.Equal(t, 1, got.VenueVersion, "on %s", m.ID)
		assert.Equal(t, 10, got.Capacity, "on %s", m.ID)
		assert.Equal(t, "A", got.Venue.Sections[0]["id"], "on %s", m.ID)
		assert.EqualValues(t, 4, got.Venue.Areas[0]["capacity"], "on %s", m.ID)
	}
	// Its places keep working against its own copy: two left in the pit.
	code, body = c.Do(c.Members[0], "POST", "/v1/events/"+ev1+"/holds", buyer("b3"), `{"area":"PIT","quantity":3}`)
	require.Equal(t, 409, code, "%s", body)
	code, body = c.Do(c.Members[0], "POST", "/v1/events/"+ev1+"/holds", buyer("b3"), `{"area":"PIT","quantity":2}`)
	require.Equal(t, 201, code, "%s", body)
	require.Equal(t, []string{"GA-PIT-3", "GA-PIT-4"}, decode[holdBody](t, body).Seats)

	// A new event gets the newest version, or the one it asks for.
	ev2 := idOnShard("hall-ev2", vShard)
	code, body = c.Do(c.Members[1], "POST", "/v1/events", org, venueEvent(ev2, venue, 0, 8))
	require.Equal(t, 201, code, "%s", body)
	got := decode[venueEventBody](t, body)
	assert.Equal(t, 2, got.VenueVersion)
	assert.Equal(t, 101, got.Capacity)
	ev3 := idOnShard("hall-ev3", evShard)
	code, body = c.Do(c.Members[2], "POST", "/v1/events", org, venueEvent(ev3, venue, 1, 8))
	require.Equal(t, 201, code, "%s", body)
	got = decode[venueEventBody](t, body)
	assert.Equal(t, 1, got.VenueVersion)
	assert.Equal(t, 10, got.Capacity)

	// Both versions stay readable; the list shows the newest.
	code, body = c.Do(c.Members[0], "GET", "/v1/venues/"+venue+"?version=1&consistency=strong", "", nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, 10, decode[venueBody](t, body).Capacity)
	code, body = c.Do(c.Members[0], "GET", "/v1/venues", "", nil)
	require.Equal(t, 200, code, "%s", body)
	list := decode[struct{ Venues []venueBody }](t, body)
	require.Len(t, list.Venues, 1)
	assert.Equal(t, 2, list.Venues[0].Version)
}

// Bad input gets a 4xx problem+json and changes nothing: a venue with
// duplicate seat ids or none, a general-admission hold naming seat ids, a
// quantity above the area's free places, an event pricing too few of its
// venue's categories.
func TestVenueBadInputChangesNothing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := organiser("vorg")
	code, body := c.Do(c.Members[0], "POST", "/v1/venues", org, venueDoc("club",
		[]map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 2}},
		[]map[string]any{{"id": "PIT", "category": "ga", "capacity": 3}}))
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[1], "POST", "/v1/events", org, venueEvent("club-night", "club", 0, 8))
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[1], "POST", "/v1/events/club-night/holds", buyer("b1"), `{"area":"PIT","quantity":2}`)
	require.Equal(t, 201, code, "%s", body)

	snapshot := func() string {
		var parts []string
		for _, path := range []string{"/v1/venues/club?consistency=strong", "/v1/events/club-night?consistency=strong",
			"/v1/events/club-night/seats?consistency=strong"} {
			code, body := c.Do(c.Members[2], "GET", path, "", nil)
			require.Equal(t, 200, code, "%s: %s", path, body)
			if strings.Contains(path, "/seats") {
				// The seat map's index moves with every entry, a
				// refused one too; its seats must not.
				body, _ = json.Marshal(decode[seatsBody](t, body).Seats)
			}
			parts = append(parts, string(body))
		}
		return strings.Join(parts, "\n")
	}
	before := snapshot()
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"duplicate seat ids", "POST", "/v1/venues", org, venueDoc("dup",
			[]map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 2}, {"id": "A", "category": "seat", "rows": 2, "seatsPerRow": 2}}, nil), 400, "invalid_argument"},
		{"a section and an area of one id", "POST", "/v1/venues", org, venueDoc("dup",
			[]map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 2}}, []map[string]any{{"id": "A", "category": "ga", "capacity": 5}}), 400, "invalid_argument"},
		{"zero seats", "POST", "/v1/venues", org, venueDoc("none", nil, nil), 400, "invalid_argument"},
		{"a zero-capacity area", "POST", "/v1/venues", org, venueDoc("none", nil, []map[string]any{{"id": "PIT", "category": "ga", "capacity": 0}}), 400, "invalid_argument"},
		{"a new version with duplicate seat ids", "PUT", "/v1/venues/club", org, venueDoc("club",
			[]map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 2}, {"id": "A", "category": "seat", "rows": 2, "seatsPerRow": 2}}, nil), 400, "invalid_argument"},
		{"an existing venue", "POST", "/v1/venues", org, venueDoc("club", nil, []map[string]any{{"id": "PIT", "category": "ga", "capacity": 1}}), 409, "venue_exists"},
		{"a buyer making a venue", "POST", "/v1/venues", buyer("b1"), venueDoc("mine", nil, []map[string]any{{"id": "PIT", "category": "ga", "capacity": 1}}), 403, "forbidden"},
		{"a GA hold with seat ids", "POST", "/v1/events/club-night/holds", buyer("b2"), `{"area":"PIT","quantity":1,"seats":["GA-PIT-3"]}`, 400, "invalid_argument"},
		{"a GA place named as a seat", "POST", "/v1/events/club-night/holds", buyer("b2"), `{"seats":["GA-PIT-3"]}`, 400, "invalid_argument"},
		{"a quantity above the area's free places", "POST", "/v1/events/club-night/holds", buyer("b2"), `{"area":"PIT","quantity":2}`, 409, "seat_unavailable"},
		{"an unknown area", "POST", "/v1/events/club-night/holds", buyer("b2"), `{"area":"BAR","quantity":1}`, 400, "invalid_argument"},
		{"best available of a standing category", "POST", "/v1/events/club-night/holds", buyer("b2"), `{"category":"ga","quantity":1}`, 400, "invalid_argument"},
		{"an area and a category", "POST", "/v1/events/club-night/holds", buyer("b2"), `{"area":"PIT","category":"ga","quantity":1}`, 400, "invalid_argument"},
		{"an unpriced venue category", "POST", "/v1/events", org, map[string]any{"id": "club-2", "name": "X", "venueId": "club",
			"categories": []map[string]any{{"id": "seat", "priceCents": 1}}}, 400, "invalid_argument"},
		{"an unknown venue", "POST", "/v1/events", org, venueEvent("club-3", "nowhere", 0, 8), 404, "venue_not_found"},
		{"an unknown venue version", "POST", "/v1/events", org, venueEvent("club-4", "club", 7, 8), 404, "venue_not_found"},
		{"a venue and a venueId", "POST", "/v1/events", org, map[string]any{"id": "club-5", "name": "X", "venueId": "club",
			"categories": []map[string]any{{"id": "seat", "priceCents": 1}}, "venue": map[string]any{"sections": []map[string]any{{"id": "A", "category": "seat", "rows": 1, "seatsPerRow": 1}}}}, 400, "invalid_argument"},
	} {
		for _, m := range c.Members {
			code, body, hdr := testcluster.DoHeader(m.HTTPAddr, tc.method, tc.path, tc.token, tc.body)
			require.Equal(t, tc.status, code, "%s via %s: %s", tc.name, m.ID, body)
			require.Equal(t, "application/problem+json", hdr.Get("Content-Type"), "%s", tc.name)
			require.Equal(t, tc.code, decode[map[string]any](t, body)["code"], "%s: %s", tc.name, body)
		}
	}
	require.Equal(t, before, snapshot(), "a refused request changed something")
	for _, path := range []string{"/v1/venues/dup", "/v1/venues/none", "/v1/venues/mine", "/v1/events/club-2", "/v1/events/club-3", "/v1/events/club-4", "/v1/events/club-5"} {
		code, body := c.Do(c.Members[0], "GET", path+"?consistency=strong", "", nil)
		require.Equal(t, 404, code, "%s: %s", path, body)
	}
}

// A 100,000-place event — a 60,000-seat venue and a 40,000-place floor —
// sells out through the API: buyers on all three nodes race for the seats
// (a row per hold, every fifth row asked for by two buyers at once) and for
// the floor (by quantity until it is full), then pay. Holds are as large as
// a hold may be (32) so that the run stays within minutes under -race. No place is sold twice,
// every place is sold, and no hold succeeds once a part is full.
func TestHundredThousandPlacesSellOut(t *testing.T) {
	if testing.Short() {
		t.Skip("sells 100,000 places: a minute or more; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := organiser("promoter")
	const (
		sections   = 15
		rows       = 125
		perRow     = 32                       // a row is one hold: boxoffice.SeatsPerHoldMax
		seats      = sections * rows * perRow // 60,000
		floor      = 40_000
		gaQuantity = 32 // places per floor hold
		raceEvery  = 5  // every 5th row is asked for by two buyers at once
		perBuyer   = 1000
		workers    = 48
	)
	var secs []map[string]any
	for i := 0; i < sections; i++ {
		secs = append(secs, map[string]any{"id": fmt.Sprintf("S%d", i), "category": "seat", "rows": rows, "seatsPerRow": perRow})
	}
	code, body := c.Do(c.Members[0], "POST", "/v1/venues", org, venueDoc("stadium", secs,
		[]map[string]any{{"id": "FLOOR", "category": "ga", "capacity": floor}}))
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[1], "POST", "/v1/events", org, venueEvent("stadium-night", "stadium", 1, perBuyer))
	require.Equal(t, 201, code, "%s", body)
	require.Equal(t, seats+floor, decode[venueEventBody](t, body).Capacity)
	start := time.Now()

	// One hold per row; some rows twice, so that two buyers race for them.
	jobs := make(chan string, 2*sections*rows)
	raced := 0
	for s := 0; s < sections; s++ {
		for r := 1; r <= rows; r++ {
			ids := make([]string, perRow)
			for i := range ids {
				ids[i] = fmt.Sprintf(`"S%d-%d-%d"`, s, r, i+1)
			}
			b := `{"seats":[` + strings.Join(ids, ",") + `]}`
			jobs <- b
			if (s*rows+r)%raceEvery == 0 {
				jobs <- b
				raced++
			}
		}
	}
	close(jobs)

	var mu sync.Mutex
	var holds []holdBody
	var seatLost, seatWon, gaRefused atomic.Int64
	// post retries an answer of unknown outcome (503) with the same
	// Idempotency-Key, as a client does.
	post := func(m *testcluster.Member, path, token, key, body string) (int, []byte) {
		deadline := time.Now().Add(time.Minute)
		for {
			code, b, _ := doWithKey(m.HTTPAddr, "POST", path, token, key, body)
			if code != 503 || time.Now().After(deadline) {
				return code, b
			}
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := c.Members[w%3]
			n := 0
			who := func() string { return buyer(fmt.Sprintf("w%d-%d", w, n/30)) } // 30 holds of 32: under the cap
			keep := func(b []byte) {
				h := decode[holdBody](t, b)
				mu.Lock()
				holds = append(holds, h)
				mu.Unlock()
				n++
			}
			for j := range jobs {
				code, b := post(m, "/v1/events/stadium-night/holds", who(), fmt.Sprintf("s-%d-%d", w, n), j)
				switch code {
				case 201:
					if n := seatWon.Add(1); n%250 == 0 {
						t.Logf("%d seated holds after %s", n, time.Since(start).Round(time.Millisecond))
					}
					keep(b)
				case 409:
					seatLost.Add(1)
				default:
					t.Errorf("seated hold: %d %s", code, b)
					return
				}
			}
			for {
				code, b := post(m, "/v1/events/stadium-night/holds", who(), fmt.Sprintf("g-%d-%d", w, n), fmt.Sprintf(`{"area":"FLOOR","quantity":%d}`, gaQuantity))
				if code == 409 {
					gaRefused.Add(1)
					return // full (floor is a multiple of gaQuantity)
				}
				if code != 201 {
					t.Errorf("floor hold: %d %s", code, b)
					return
				}
				keep(b)
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	held := time.Since(start)
	assert.EqualValues(t, sections*rows, seatWon.Load(), "each row is won by exactly one buyer")
	assert.EqualValues(t, raced, seatLost.Load(), "each raced row is lost by exactly one buyer")
	assert.EqualValues(t, workers, gaRefused.Load())

	// Pay for every hold.
	hq := make(chan holdBody, len(holds))
	for _, h := range holds {
		hq <- h
	}
	close(hq)
	var orders []orderBody
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range hq {
				code, b := post(c.Members[w%3], "/v1/holds/"+h.ID+"/purchase", buyer(h.Buyer), "p-"+h.ID, `{"paymentMethod":"pm_card_visa"}`)
				if code != 201 {
					t.Errorf("purchase %s: %d %s", h.ID, code, b)
					return
				}
				o := decode[orderBody](t, b)
				mu.Lock()
				orders = append(orders, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	t.Logf("%d places: %d holds in %s, all paid after %s", seats+floor, len(holds), held.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// No place in two orders; every place in one.
	owner := make(map[string]string, seats+floor)
	var revenue int64
	for _, o := range orders {
		require.Equal(t, "paid", o.State)
		revenue += o.AmountCents
		for _, s := range o.Seats {
			prev, dup := owner[s]
			require.False(t, dup, "place %s sold to %s and %s", s, prev, o.ID)
			owner[s] = o.ID
		}
	}
	require.Len(t, owner, seats+floor)
	for i := 1; i <= floor; i++ {
		_, ok := owner[fmt.Sprintf("GA-FLOOR-%d", i)]
		require.True(t, ok, "GA-FLOOR-%d not sold", i)
	}
	assert.EqualValues(t, seats*5000+floor*3000, revenue)
	// The servers agree: every place sold, none free or held, on every node.
	for _, m := range c.Members {
		code, body := c.Do(m, "GET", "/v1/events/stadium-night?consistency=strong", "", nil)
		require.Equal(t, 200, code, "%s", body)
		for _, a := range decode[venueEventBody](t, body).Availability {
			assert.Equal(t, a.Capacity, a.Sold, "%s on %s", a.ID, m.ID)
			assert.Zero(t, a.Free+a.Held, "%s on %s", a.ID, m.ID)
		}
	}
	code, body = c.Do(c.Members[2], "GET", "/v1/events/stadium-night/seats?status=free&consistency=strong", "", nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Empty(t, decode[seatsBody](t, body).Seats)
	code, body = c.Do(c.Members[0], "POST", "/v1/events/stadium-night/holds", buyer("late"), `{"area":"FLOOR","quantity":1}`)
	assert.Equal(t, 409, code, "%s", body)
}

// The sales report counts an area as a section of its own id (its places
// held and sold), and a section's capacity without the seats that its row
// lengths and aisles leave out.
func TestReportCountsAreasAndHoles(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := organiser("vorg")
	code, body := c.Do(c.Members[0], "POST", "/v1/venues", org, venueDoc("rep-hall",
		[]map[string]any{{"id": "A", "category": "seat", "rows": 2, "seatsPerRow": 4, "rowSeats": []int{3, 4}, "gaps": []string{"2-2"}}},
		[]map[string]any{{"id": "PIT", "category": "ga", "capacity": 20}}))
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[1], "POST", "/v1/events", org, venueEvent("rep-night", "rep-hall", 0, 8))
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[2], "POST", "/v1/events/rep-night/holds", buyer("b1"), `{"area":"PIT","quantity":3}`)
	require.Equal(t, 201, code, "%s", body)
	h := decode[holdBody](t, body)
	code, body = c.Do(c.Members[2], "POST", "/v1/holds/"+h.ID+"/purchase", buyer("b1"), `{"paymentMethod":"pm_card_visa"}`)
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[0], "POST", "/v1/events/rep-night/holds", buyer("b2"), `{"area":"PIT","quantity":2}`)
	require.Equal(t, 201, code, "%s", body)

	code, body = c.Do(c.Members[0], "GET", "/v1/events/rep-night/report?consistency=strong", org, nil)
	require.Equal(t, 200, code, "%s", body)
	rep := decode[struct {
		Sections []struct {
			ID                         string
			Capacity, Free, Held, Sold int
			RevenueCents               int64 `json:"revenueCents"`
		} `json:"sections"`
	}](t, body)
	require.Len(t, rep.Sections, 2, "%s", body)
	assert.Equal(t, "A", rep.Sections[0].ID)
	assert.Equal(t, 3+4-1, rep.Sections[0].Capacity, "row lengths and the aisle leave out two seats")
	assert.Equal(t, "PIT", rep.Sections[1].ID)
	assert.Equal(t, 20, rep.Sections[1].Capacity)
	assert.Equal(t, 3, rep.Sections[1].Sold)
	assert.Equal(t, 2, rep.Sections[1].Held)
	assert.Equal(t, 15, rep.Sections[1].Free)
	assert.EqualValues(t, 3*3000, rep.Sections[1].RevenueCents)
}
