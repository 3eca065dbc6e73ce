package httpapi_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// accessPrincipal is one kind of caller of the organiser routes.
type accessPrincipal struct {
	name  string
	token string
	// level is what the caller holds on the test's event.
	level boxoffice.AccessLevel
}

// grantsOf reads an event's grants as "user level" lines, in user order.
func grantsOf(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, event string) []string {
	t.Helper()
	code, body := c.Do(m, "GET", "/v1/events/"+event+"/access?consistency=strong", testcluster.AdminToken(), nil)
	require.Equal(t, 200, code, "%s", body)
	out := decode[struct {
		Grants []struct{ User, Level string }
	}](t, body)
	var lines []string
	for _, g := range out.Grants {
		lines = append(lines, g.User+" "+g.Level)
	}
	sort.Strings(lines)
	return lines
}

// paidOrder buys seat of event for buyer and returns the order id.
func paidOrder(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, event, who, seat string) string {
	t.Helper()
	code, body := c.Do(m, "POST", "/v1/events/"+event+"/holds", buyer(who), `{"seats":["`+seat+`"]}`)
	require.Equal(t, 201, code, "%s", body)
	h := decode[holdBody](t, body)
	code, body = c.Do(m, "POST", "/v1/holds/"+h.ID+"/purchase", buyer(who), `{"paymentMethod":"pm_card_visa"}`)
	require.Equal(t, 201, code, "%s", body)
	return decode[orderBody](t, body).ID
}

// Every organiser route, walked from the server's own table, against the
// owner, a manager, a viewer, a stranger organiser, a buyer and an admin,
// through every node: each gets the route's success or 403 as its level
// says, and an unknown event or order is 404 even to an admin. A route
// added to the table without a request here fails the test.
func TestOrganiserRoutesEnforceAccess(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("acc-1", 1, 4, 10))
	m0 := c.Members[0]
	owner := organiser("org1")
	code, body := c.Do(m0, "PUT", "/v1/events/acc-1/access/mgr", owner, `{"level":"manage"}`)
	require.Equal(t, 200, code, "%s", body)
	code, body = c.Do(m0, "PUT", "/v1/events/acc-1/access/door", owner, `{"level":"view"}`)
	require.Equal(t, 200, code, "%s", body)

	who := []accessPrincipal{
		{"owner", owner, boxoffice.AccessOwner},
		{"manager", organiser("mgr"), boxoffice.AccessManage},
		{"viewer", buyer("door"), boxoffice.AccessView},
		{"stranger", organiser("org2"), boxoffice.AccessNone},
		{"buyer", buyer("b1"), boxoffice.AccessNone},
		{"admin", testcluster.AdminToken(), boxoffice.AccessOwner},
	}
	seat := 0
	// request builds the call of a route by one principal on event (order
	// ids: a fresh paid order of the event, or "" for an unknown one).
	request := map[string]func(p accessPrincipal, event string) (method, path string, body any){
		"PATCH /events/{event}": func(p accessPrincipal, event string) (string, string, any) {
			return "PATCH", "/v1/events/" + event, `{"location":"set by ` + p.name + `"}`
		},
		"GET /events/{event}/holds": func(_ accessPrincipal, event string) (string, string, any) {
			return "GET", "/v1/events/" + event + "/holds", nil
		},
		"GET /events/{event}/orders": func(_ accessPrincipal, event string) (string, string, any) {
			return "GET", "/v1/events/" + event + "/orders", nil
		},
		"GET /events/{event}/seats?owners=true": func(_ accessPrincipal, event string) (string, string, any) {
			return "GET", "/v1/events/" + event + "/seats?owners=true", nil
		},
		"GET /events/{event}/report": func(_ accessPrincipal, event string) (string, string, any) {
			return "GET", "/v1/events/" + event + "/report", nil
		},
		"GET /events/{event}/access": func(_ accessPrincipal, event string) (string, string, any) {
			return "GET", "/v1/events/" + event + "/access", nil
		},
		"PUT /events/{event}/access/{user}": func(p accessPrincipal, event string) (string, string, any) {
			return "PUT", "/v1/events/" + event + "/access/x-" + p.name, `{"level":"view"}`
		},
		"DELETE /events/{event}/access/{user}": func(p accessPrincipal, event string) (string, string, any) {
			return "DELETE", "/v1/events/" + event + "/access/x-" + p.name, nil
		},
		"PUT /events/{event}/queue": func(_ accessPrincipal, event string) (string, string, any) {
			return "PUT", "/v1/events/" + event + "/queue", `{"opensAt":"2030-01-01T10:00:00Z"}`
		},
		"POST /orders/{order}/cancel": func(p accessPrincipal, event string) (string, string, any) {
			order := "o_0.999999.0"
			if event == "acc-1" {
				seat++
				order = paidOrder(t, c, m0, event, "b-"+p.name, fmt.Sprintf("A-%d-%d", 1+seat/10, 1+seat%10))
			}
			return "POST", "/v1/orders/" + order + "/cancel", nil
		},
	}
	routes := httpapi.OrganiserRoutes()
	require.NotEmpty(t, routes)
	// Protecting acc-1's on-sale makes every later hold of it need an
	// admission pass, and the cancel requests hold seats: protect last.
	slices.SortStableFunc(routes, func(a, b httpapi.OrganiserRoute) int {
		last := func(r httpapi.OrganiserRoute) bool { return r.Method == "PUT" && r.Path == "/events/{event}/queue" }
		switch {
		case last(a) && !last(b):
			return 1
		case last(b) && !last(a):
			return -1
		}
		return 0
	})
	n := 0
	for _, r := range routes {
		name := r.Method + " " + r.Path
		if r.Query != "" {
			name += "?" + r.Query
		}
		build, ok := request[name]
		require.True(t, ok, "route %s has no request in this test", name)
		for _, p := range who {
			m := c.Members[n%len(c.Members)]
			n++
			method, path, body := build(p, "acc-1")
			want := 403
			if p.level >= r.Need {
				want = r.OK
			}
			code, got := c.Do(m, method, path, p.token, body)
			assert.Equal(t, want, code, "%s by %s (%s) via %s: %s", name, p.name, p.level, m.ID, got)
			if want == 403 && code == 403 {
				assert.Equal(t, "forbidden", decode[problemBody](t, got).Code)
			}
		}
		method, path, body := build(who[5], "no-such-event")
		code, got := c.Do(m0, method, path, testcluster.AdminToken(), body)
		assert.Equal(t, 404, code, "%s of an unknown event by an admin: %s", name, got)
	}
	// The refused grants changed nothing; the others came and went.
	assert.Equal(t, []string{"door view", "mgr manage"}, grantsOf(t, c, m0, "acc-1"))
	// Only those who may manage set the location; the last was the admin.
	code, body = c.Do(m0, "GET", "/v1/events/acc-1?consistency=strong", owner, nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"set by admin"`)
}

// Manage grants need the owner (or an admin); a manager grants view only.
// Bad input gets a problem and changes nothing.
func TestGrantLevelsAndBadInput(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("acc-2", 1, 2, 2))
	m := c.Members[1]
	owner := organiser("org1")
	code, body := c.Do(m, "PUT", "/v1/events/acc-2/access/mgr", owner, `{"level":"manage"}`)
	require.Equal(t, 200, code, "%s", body)

	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"a manager grants manage", "PUT", "/v1/events/acc-2/access/u2", organiser("mgr"), `{"level":"manage"}`, 403, "forbidden"},
		{"a manager revokes a manager", "DELETE", "/v1/events/acc-2/access/mgr", organiser("mgr"), nil, 403, "forbidden"},
		{"an unknown level", "PUT", "/v1/events/acc-2/access/u2", owner, `{"level":"owner"}`, 400, "invalid_argument"},
		{"no level", "PUT", "/v1/events/acc-2/access/u2", owner, `{}`, 400, "invalid_argument"},
		{"an unknown field", "PUT", "/v1/events/acc-2/access/u2", owner, `{"level":"view","until":"never"}`, 400, "invalid_argument"},
		{"not JSON", "PUT", "/v1/events/acc-2/access/u2", owner, `level=view`, 400, "invalid_argument"},
		{"no body", "PUT", "/v1/events/acc-2/access/u2", owner, nil, 400, "invalid_argument"},
		{"a bad user id", "PUT", "/v1/events/acc-2/access/a%20b", owner, `{"level":"view"}`, 400, "invalid_argument"},
		{"the owner itself", "PUT", "/v1/events/acc-2/access/org1", owner, `{"level":"view"}`, 400, "invalid_argument"},
		{"no token", "PUT", "/v1/events/acc-2/access/u2", "", `{"level":"view"}`, 401, "unauthorized"},
		{"an unknown event", "PUT", "/v1/events/nope/access/u2", owner, `{"level":"view"}`, 404, "event_not_found"},
	} {
		code, body := c.Do(m, tc.method, tc.path, tc.token, tc.body)
		if assert.Equal(t, tc.status, code, "%s: %s", tc.name, body) {
			assert.Equal(t, tc.code, decode[problemBody](t, body).Code, tc.name)
			assert.True(t, strings.HasPrefix(string(body), "{"), tc.name)
		}
	}
	assert.Equal(t, []string{"mgr manage"}, grantsOf(t, c, m, "acc-2"))

	// A manager grants and revokes view; the owner revokes the manager.
	code, body = c.Do(m, "PUT", "/v1/events/acc-2/access/door", organiser("mgr"), `{"level":"view"}`)
	require.Equal(t, 200, code, "%s", body)
	assert.JSONEq(t, `{"event":"acc-2","user":"door","level":"view"}`, string(body))
	code, body = c.Do(m, "DELETE", "/v1/events/acc-2/access/mgr", owner, nil)
	require.Equal(t, 204, code, "%s", body)
	assert.Equal(t, []string{"door view"}, grantsOf(t, c, m, "acc-2"))
}

// A revocation acknowledged through one node stops the grantee's next write
// and read through another node at once: the write because the state
// machine checks the grant when the write applies, the read because a
// grantee's read is strong.
func TestRevocationStopsWritesAndReadsOnAnotherNode(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("acc-3", 1, 2, 2))
	leader := c.Leader(c.ShardOf("acc-3"))
	var followers []*testcluster.Member
	for _, m := range c.Members {
		if m != leader {
			followers = append(followers, m)
		}
	}
	grantVia, useVia := followers[0], followers[1]
	owner, mgr := organiser("org1"), organiser("mgr")

	for round := range 3 {
		code, body := c.Do(grantVia, "PUT", "/v1/events/acc-3/access/mgr", owner, `{"level":"manage"}`)
		require.Equal(t, 200, code, "%s", body)
		// The grant takes effect at once on the other follower too.
		code, body = c.Do(useVia, "PATCH", "/v1/events/acc-3", mgr, fmt.Sprintf(`{"location":"round %d"}`, round))
		require.Equal(t, 200, code, "round %d: the grantee's write: %s", round, body)
		code, body = c.Do(useVia, "GET", "/v1/events/acc-3/orders", mgr, nil)
		require.Equal(t, 200, code, "round %d: the grantee's read: %s", round, body)

		code, body = c.Do(grantVia, "DELETE", "/v1/events/acc-3/access/mgr", owner, nil)
		require.Equal(t, 204, code, "%s", body)
		code, body = c.Do(useVia, "PATCH", "/v1/events/acc-3", mgr, `{"location":"after revocation"}`)
		assert.Equal(t, 403, code, "round %d: a write after the revocation: %s", round, body)
		code, body = c.Do(useVia, "GET", "/v1/events/acc-3/orders", mgr, nil)
		assert.Equal(t, 403, code, "round %d: a read after the revocation: %s", round, body)
	}
	code, body := c.Do(leader, "GET", "/v1/events/acc-3?consistency=strong", owner, nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"round 2"`)
	assert.NotContains(t, string(body), "after revocation")
}

// The report counts what was held and sold, per category and section, with
// revenue and sales by minute, as JSON and as CSV, to a viewer through any
// node; an unknown format is a 400 that changes nothing.
func TestReportJSONAndCSV(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("rep-1", 2, 2, 5))
	m := c.Members[2]
	code, body := c.Do(m, "PUT", "/v1/events/rep-1/access/acct", organiser("org1"), `{"level":"view"}`)
	require.Equal(t, 200, code, "%s", body)
	paidOrder(t, c, m, "rep-1", "b1", "A-1-1")
	paidOrder(t, c, m, "rep-1", "b2", "B-2-5")
	code, body = c.Do(m, "POST", "/v1/events/rep-1/holds", buyer("b3"), `{"seats":["A-2-1","A-2-2"]}`)
	require.Equal(t, 201, code, "%s", body)

	code, body = c.Do(c.Members[0], "GET", "/v1/events/rep-1/report", buyer("acct"), nil)
	require.Equal(t, 200, code, "%s", body)
	type line struct {
		ID           string `json:"id"`
		Category     string `json:"category"`
		Capacity     int    `json:"capacity"`
		Free, Held   int
		Sold         int   `json:"sold"`
		RevenueCents int64 `json:"revenueCents"`
	}
	rep := decode[struct {
		Event          string `json:"event"`
		Categories     []line `json:"categories"`
		Sections       []line `json:"sections"`
		Total          line   `json:"total"`
		SalesPerMinute []struct {
			Minute       string `json:"minute"`
			Seats        int    `json:"seats"`
			RevenueCents int64  `json:"revenueCents"`
		} `json:"salesPerMinute"`
	}](t, body)
	assert.Equal(t, "rep-1", rep.Event)
	assert.Equal(t, []line{{ID: "std", Capacity: 20, Free: 16, Held: 2, Sold: 2, RevenueCents: 10000}}, rep.Categories)
	assert.Equal(t, []line{
		{ID: "A", Category: "std", Capacity: 10, Free: 7, Held: 2, Sold: 1, RevenueCents: 5000},
		{ID: "B", Category: "std", Capacity: 10, Free: 9, Sold: 1, RevenueCents: 5000},
	}, rep.Sections)
	assert.Equal(t, line{ID: "total", Capacity: 20, Free: 16, Held: 2, Sold: 2, RevenueCents: 10000}, rep.Total)
	require.NotEmpty(t, rep.SalesPerMinute)
	var seats int
	for _, mn := range rep.SalesPerMinute {
		seats += mn.Seats
		assert.True(t, strings.HasSuffix(mn.Minute, ":00Z"), mn.Minute)
	}
	assert.Equal(t, 2, seats)

	code, body, h := testcluster.DoHeader(c.Members[1].HTTPAddr, "GET", "/v1/events/rep-1/report?format=csv", buyer("acct"), nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Equal(t, "text/csv; charset=utf-8", h.Get("Content-Type"))
	rows := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.GreaterOrEqual(t, len(rows), 6)
	assert.Equal(t, []string{
		"kind,id,category,capacity,free,held,sold,revenueCents",
		"category,std,,20,16,2,2,10000",
		"section,A,std,10,7,2,1,5000",
		"section,B,std,10,9,0,1,5000",
		"total,total,,20,16,2,2,10000",
	}, rows[:5])
	assert.True(t, strings.HasPrefix(rows[5], "minute,"), rows[5])

	code, body = c.Do(m, "GET", "/v1/events/rep-1/report?format=xml", buyer("acct"), nil)
	assert.Equal(t, 400, code, "%s", body)
	assert.Equal(t, "invalid_argument", decode[problemBody](t, body).Code)
	code, _ = c.Do(m, "GET", "/v1/events/rep-1/report", buyer("b1"), nil)
	assert.Equal(t, 403, code)
}
