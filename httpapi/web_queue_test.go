package httpapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// The waiting room in the page: a buyer who opens a protected on-sale is
// sent to its queue, joins, sees its position follow the queue live (SSE),
// and is moved to the seat map once admitted, where its hold carries the
// pass. Another buyer (through the API) holds the one seat ahead of her;
// only his release lets her in.
func TestWebQueue(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Shards: 1,
		TuneHTTP: func(cfg *httpapi.Config) { cfg.DevSignIn = true }})
	m := c.Members[0]
	base := "http://" + m.HTTPAddr
	createWebEvent(t, c, testcluster.Event("web-queue", 1, 1, 1))
	code, body := write(t, m, "PUT", "/v1/events/web-queue/queue", testcluster.Token("org", httpapi.RoleOrganiser),
		map[string]any{"opensAt": time.Now().Add(-time.Second).UTC().Format(time.RFC3339), "admitPercent": 100})
	require.Equal(t, 200, code, "%s", body)
	require.Eventually(t, func() bool {
		_, body := c.Do(m, "GET", "/v1/events/web-queue/queue", "", nil)
		var q queueBody
		return json.Unmarshal(body, &q) == nil && q.Opened
	}, time.Minute, 20*time.Millisecond)

	// Bob is first in, and admitted: the one free seat is his turn.
	bob := testcluster.Token("bob", httpapi.RoleBuyer)
	code, body = write(t, m, "POST", "/v1/events/web-queue/queue", bob, nil)
	require.Equal(t, 200, code, "%s", body)
	var bp placeBody
	require.Eventually(t, func() bool {
		_, body := c.Do(m, "GET", "/v1/events/web-queue/queue/me", bob, nil)
		return json.Unmarshal(body, &bp) == nil && bp.State == "admitted"
	}, time.Minute, 20*time.Millisecond)

	alice := newPage(t, browser(t))
	signIn(t, alice, base, "alice", "buyer")
	run(t, alice, chromedp.Navigate(base+"/#/event/web-queue"))
	waitJS(t, alice, `location.hash === '#/queue/web-queue' && !document.querySelector('#q-join').hidden`, time.Minute)
	run(t, alice, chromedp.Click("#q-join"))
	waitJS(t, alice, `window.boxoffice.place && window.boxoffice.place.state === 'waiting' && window.boxoffice.place.position === 1`, time.Minute)
	waitJS(t, alice, `document.querySelector('#q-position').textContent === '1' && document.querySelector('#q-live').textContent === 'live'`, time.Minute)

	// Bob holds the seat, then releases it: the seat is free again, and
	// Alice's page, told by its stream, moves to the seat map.
	code, body, _ = testcluster.DoHeaderWith(m.HTTPAddr, "POST", "/v1/events/web-queue/holds", bob,
		map[string]any{"seats": []string{"A-1-1"}}, map[string]string{"X-Admission-Pass": bp.Pass.Token})
	require.Equal(t, 201, code, "%s", body)
	var h struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &h))
	require.Equal(t, "waiting", eval[string](t, alice, `window.boxoffice.place.state`), "no seat is free while Bob holds it")
	code, body = write(t, m, "DELETE", "/v1/holds/"+h.ID, bob, nil)
	require.Equal(t, 204, code, "%s", body)

	waitJS(t, alice, `location.hash === '#/event/web-queue' && window.boxoffice.ready()`, time.Minute)
	require.True(t, eval[bool](t, alice, `!!sessionStorage.getItem('boxoffice.pass.web-queue')`), "the page keeps the pass")
	// Her hold through the page carries the pass.
	require.Equal(t, 1, eval[int](t, alice, `window.boxoffice.pick(['A-1-1'])`))
	run(t, alice, chromedp.Click("#hold-btn", chromedp.NodeEnabled))
	waitJS(t, alice, `window.boxoffice.seatState('A-1-1') === 'mine'`, time.Minute)
}
