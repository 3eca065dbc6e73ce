package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
	"boxoffice/httpapi"
	"boxoffice/payment"
	"boxoffice/raftnode"
)

// memNode is a one-node, one-shard cluster without Raft: a proposal is
// applied at once to an in-memory fsm.Store, as the next log entry, stamped
// with a clock that moves 1 ms per proposal. It is what FuzzHandler serves
// requests from, thousands of times a second.
type memNode struct {
	mu      sync.Mutex
	store   *fsm.Store
	index   uint64
	nowMs   int64
	halt    error // the store refused an entry: a bug
	changes int   // proposals that changed state (accepted, not replayed)
	// loseNext makes the next proposal commit but answer "outcome unknown",
	// as a leader that loses its lead right after the commit does; lost is
	// what it would have answered.
	loseNext bool
	lost     *fsm.Result
}

var _ httpapi.Node = (*memNode)(nil)
var _ payment.Node = (*memNode)(nil)

func newMemNode(t testing.TB) *memNode {
	cfg := fsm.DefaultConfig()
	cfg.Dir = "/db"
	cfg.FS = vfs.NewMem()
	cfg.MemTableBytes = 1 << 20
	cfg.CacheBytes = 0
	s, err := fsm.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return &memNode{store: s, nowMs: 1_800_000_000_000}
}

func (n *memNode) ID() string { return "n1" }
func (n *memNode) Self() boxoffice.Node {
	return boxoffice.Node{ID: "n1", RaftAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:8001"}
}
func (n *memNode) ShardCount() int                           { return 1 }
func (n *memNode) ShardOfEvent(string) int                   { return 0 }
func (n *memNode) IsLeader(int) bool                         { return true }
func (n *memNode) LeaderNode(int) (boxoffice.Node, bool)     { return n.Self(), true }
func (n *memNode) ReadBarrier(context.Context, int) error    { return nil }
func (n *memNode) CaughtUp(int) error                        { return nil }
func (n *memNode) Store(int) *fsm.Store                      { return n.store }
func (n *memNode) Members() ([]boxoffice.Node, error)        { return n.store.Nodes() }
func (n *memNode) Status() []raftnode.Status                 { return []raftnode.Status{n.status()} }
func (n *memNode) TransferLeadership(_ int, to string) error { return n.transfer(to) }

// ShardOfID reads "<kind>_<shard>.<index>.<pos>" as raftnode does.
func (n *memNode) ShardOfID(id string) (int, bool) {
	_, rest, ok := strings.Cut(id, "_")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ".")
	s, err := strconv.Atoi(num)
	return 0, ok && err == nil && s == 0
}

func (n *memNode) status() raftnode.Status {
	return raftnode.Status{ID: 0, Leader: "n1", Replicas: []string{"n1"}, Voters: []string{"n1"}, Term: 1,
		AppliedIndex: n.store.AppliedIndex(), CommitIndex: n.store.AppliedIndex(), State: "Leader"}
}

func (n *memNode) transfer(to string) error {
	if to == "" || to == "n1" {
		return boxoffice.Errorf(boxoffice.CodeUnavailable, "no other voter to hand shard 0 to")
	}
	return boxoffice.Errorf(boxoffice.CodeMemberNotFound, "node %q is not a voter of shard 0", to)
}

func (n *memNode) Propose(_ context.Context, _ int, c fsm.Command) (fsm.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.halt != nil {
		return fsm.Result{}, n.halt
	}
	n.index++
	n.nowMs++
	rs, err := n.store.ApplyEntries([]fsm.Entry{{Index: n.index, Data: fsm.EncodeEntry(n.nowMs, [][]byte{fsm.EncodeCommand(c)})}})
	if err != nil {
		n.halt = err
		return fsm.Result{}, err
	}
	res := rs[0][0]
	if res.Err == nil && !res.Replayed {
		n.changes++
	}
	if n.loseNext {
		n.loseNext, n.lost = false, &res
		return fsm.Result{}, boxoffice.Errorf(boxoffice.CodeUnavailable, "leadership lost before the write committed; its outcome is unknown")
	}
	return res, nil
}

func (n *memNode) AddMember(ctx context.Context, shard int, m boxoffice.Node) error {
	res, err := n.Propose(ctx, shard, &fsm.PutNode{Node: m})
	if err != nil {
		return err
	}
	return res.Err
}

// RemoveMember forgets a member, known or not, as raftnode's does.
func (n *memNode) RemoveMember(ctx context.Context, shard int, id string) error {
	res, err := n.Propose(ctx, shard, &fsm.RemoveNode{ID: id})
	if err != nil {
		return err
	}
	return res.Err
}

func (n *memNode) changed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changes
}

func (n *memNode) loseNextAnswer() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loseNext = true
}

// lostAnswer is what the proposal whose answer was lost would have
// answered, if one was.
func (n *memNode) lostAnswer() *fsm.Result {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lost
}

// fuzzWorld is what every FuzzHandler input starts from: two events, an
// active hold and a paid order of u1, an active hold of u2. Its ids are
// fixed (they derive from log positions), so seeds can name them.
const (
	fuzzHoldU1  = "h_0.4.0"
	fuzzOrderU1 = "o_0.6.0"
	fuzzHoldU2  = "h_0.8.0"
)

func newFuzzServer(t testing.TB) (*httpapi.Server, *memNode) {
	n := newMemNode(t)
	must := func(c fsm.Command) fsm.Result {
		res, err := n.Propose(context.Background(), 0, c)
		require.NoError(t, err)
		require.NoError(t, res.Err)
		return res
	}
	must(&fsm.PutNode{Node: n.Self()})
	must(&fsm.CreateEvent{Event: boxoffice.Event{ID: "ev1", Name: "One", Organiser: "o1", StartsAtMs: 1_800_100_000_000,
		Categories: []boxoffice.Category{{ID: "floor", Name: "Floor", PriceCents: 1000}, {ID: "balcony", PriceCents: 2500}},
		Venue:      boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 3, SeatsPerRow: 4}, {ID: "B", Category: "balcony", Rows: 2, SeatsPerRow: 3}}},
		Limits:     boxoffice.Limits{MaxSeatsPerBuyer: 6, HoldTTLSeconds: 600}}})
	must(&fsm.CreateEvent{Event: boxoffice.Event{ID: "ev2", Name: "Two", Organiser: "o2",
		Categories: []boxoffice.Category{{ID: "ga", PriceCents: 700}},
		Venue:      boxoffice.Venue{Sections: []boxoffice.Section{{ID: "C", Category: "ga", Rows: 1, SeatsPerRow: 3}}},
		Limits:     boxoffice.Limits{MaxSeatsPerBuyer: 2, HoldTTLSeconds: 60}}})
	h := must(&fsm.Hold{Event: "ev1", Buyer: "u1", Seats: []string{"A-1-1", "A-1-2"}}).Hold
	require.Equal(t, fuzzHoldU1, h.ID)
	h = must(&fsm.Hold{Event: "ev1", Buyer: "u1", Seats: []string{"A-2-1"}}).Hold
	o := must(&fsm.CheckoutBegin{Hold: h.ID, Buyer: "u1", PaymentMethod: "pm_card_visa", LeaseMs: 120_000}).Order
	require.Equal(t, fuzzOrderU1, o.ID)
	must(&fsm.CheckoutComplete{Order: o.ID, ChargeRef: "pi_seed"})
	h = must(&fsm.Hold{Event: "ev1", Buyer: "u2", Seats: []string{"B-1-1"}}).Hold
	require.Equal(t, fuzzHoldU2, h.ID)

	sim, err := payment.NewSim(payment.SimConfig{Seed: 1})
	require.NoError(t, err)
	pcfg := payment.DefaultConfig()
	checkout, err := payment.New(n, sim, pcfg)
	require.NoError(t, err)
	cfg := httpapi.DefaultConfig()
	cfg.AuthSecret = fuzzSecret
	cfg.Checkout = checkout
	srv, err := httpapi.New(n, cfg)
	require.NoError(t, err)
	return srv, n
}

var fuzzSecret = []byte("fuzz-secret-0123456789abcdef")

var fuzzMethods = []string{"GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"}

// fuzzTokens are the callers a request may come from, chosen by its who
// byte: nobody, buyers u1 and u2, organisers o1 (of ev1) and o2 (of ev2),
// an admin, a malformed token and an expired one.
func fuzzTokens(t testing.TB) []string {
	mint := func(sub string, role httpapi.Role, ttl time.Duration) string {
		tok, err := httpapi.MintToken(fuzzSecret, sub, role, ttl)
		require.NoError(t, err)
		return tok
	}
	return []string{"",
		mint("u1", httpapi.RoleBuyer, 24*time.Hour), mint("u2", httpapi.RoleBuyer, 24*time.Hour),
		mint("o1", httpapi.RoleOrganiser, 24*time.Hour), mint("o2", httpapi.RoleOrganiser, 24*time.Hour),
		mint("admin", httpapi.RoleAdmin, 24*time.Hour), "not.a.token", mint("u1", httpapi.RoleBuyer, -time.Minute)}
}

// requireLostAnswerFound: the retry of a request whose first commit's
// answer was lost gets what that commit did. (A rejection it recorded is
// answered again by the state machine itself.)
func requireLostAnswerFound(t *testing.T, lost *fsm.Result, again fuzzAnswer, where string) {
	if lost.Err != nil || lost.Replayed {
		return
	}
	where = fmt.Sprintf("%s\nthe lost answer was a success; the retry answered %d %s", where, again.status, again.body)
	if lost.Order != nil && lost.Order.State == boxoffice.OrderPending {
		// The lost commit began a checkout: the purchase goes on from
		// there, and its answer is the charge's outcome for that same
		// order — paid, or declined (402), or the seats lost (410).
		if again.status == 402 || again.status == 410 {
			require.Contains(t, again.body, lost.Order.ID, where)
			return
		}
	}
	require.Contains(t, []int{200, 201, 204}, again.status, where)
	if again.status == 204 {
		return
	}
	var out struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(again.body), &out), where)
	switch {
	case lost.Order != nil && strings.HasPrefix(out.ID, "o_"):
		require.Equal(t, lost.Order.ID, out.ID, where)
	case lost.Hold != nil && strings.HasPrefix(out.ID, "h_"):
		require.Equal(t, lost.Hold.ID, out.ID, where)
	case lost.Event != nil && out.ID != "":
		require.Equal(t, lost.Event.ID, out.ID, where)
	}
}

// readAfterWrite reads what a write answered — its hold, order or event —
// and requires the same (an event's read adds its availability).
func readAfterWrite(t *testing.T, srv *httpapi.Server, admin string, a fuzzAnswer, where string) {
	var out struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(a.body), &out), where)
	var uri string
	switch {
	case strings.HasPrefix(out.ID, "h_"):
		uri = "/v1/holds/" + out.ID
	case strings.HasPrefix(out.ID, "o_"):
		uri = "/v1/orders/" + out.ID
	case strings.HasPrefix(a.path, "/v1/events") && strings.Count(a.path, "/") <= 3 && out.ID != "":
		uri = "/v1/events/" + out.ID
	default:
		return
	}
	r := serve(srv, "GET", uri, admin, "", nil)
	require.Equal(t, 200, r.status, "read of %s after %s: %s", uri, where, r.body)
	if !strings.HasPrefix(uri, "/v1/events/") {
		require.Equal(t, a.body, r.body, "read of %s after %s", uri, where)
		return
	}
	var wrote, read map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &wrote))
	require.NoError(t, json.Unmarshal([]byte(r.body), &read))
	delete(read, "availability")
	require.Equal(t, wrote, read, "read of %s after %s", uri, where)
}

type fuzzAnswer struct {
	status int
	ctype  string
	body   string
	index  string
	path   string // as routed, after fasthttp's normalization
}

func serve(srv *httpapi.Server, method, uri, token, key string, body []byte) fuzzAnswer {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		ctx.Request.Header.Set("Idempotency-Key", key)
	}
	ctx.Request.SetBody(body)
	srv.Handle(&ctx)
	return fuzzAnswer{
		status: ctx.Response.StatusCode(),
		ctype:  string(ctx.Response.Header.ContentType()),
		body:   string(ctx.Response.Body()),
		index:  string(ctx.Response.Header.Peek("X-Boxoffice-Index")),
		path:   string(ctx.Path()),
	}
}

// FuzzHandler sends one fuzzed request (method, URI, body, caller,
// Idempotency-Key) through the whole HTTP layer — routing, auth, decoding,
// validation, idempotency, the payment saga — to a memNode, and checks:
//
//   - the answer is a 2xx, or an RFC 9457 problem+json whose code is one of
//     boxoffice.Codes() with that code's status; never a 500;
//   - every answer of a route carries X-Boxoffice-Index;
//   - the state machine never halts on what the layer proposed;
//   - a refused request changed nothing (a declined payment records its
//     failed order: that 402 is the exception);
//   - what a write answers (a hold, an order, an event) is what a read of
//     it right after answers;
//   - with an Idempotency-Key, the same request again gets the same
//     status and body;
//   - when the fault byte says so, the request's first proposal commits but
//     its answer is lost (503, outcome unknown, as when a leader loses its
//     lead right after the commit): then the same request with the same
//     key must get what the commit did — a success names the same hold,
//     order or event.
func FuzzHandler(f *testing.F) {
	type seed struct {
		method    uint8
		uri, body string
		who       uint8
		key       string
		fault     uint8
	}
	const (
		get, post, patch, del, put = 0, 1, 2, 3, 4
		nobody, u1, u2, o1, o2     = 0, 1, 2, 3, 4
		admin, junk, expired       = 5, 6, 7
	)
	for _, s := range []seed{
		{get, "/healthz", "", nobody, "", 0},
		{get, "/readyz", "", nobody, "", 0},
		{get, "/v1/events?q=one&limit=1", "", nobody, "", 0},
		{get, "/v1/events?cursor=ev1&from=2020-01-01T00:00:00Z", "", nobody, "", 0},
		{get, "/v1/events/ev1?consistency=strong", "", nobody, "", 0},
		{get, "/v1/events/ev1/seats?status=held&section=A", "", nobody, "", 0},
		{get, "/v1/events/nope/seats", "", nobody, "", 0},
		{post, "/v1/events", `{"id":"ev3","name":"Three","startsAt":"2027-01-01T20:00:00+01:00","categories":[{"id":"c","priceCents":5}],"venue":{"sections":[{"id":"A","category":"c","rows":2,"seatsPerRow":2}]}}`, o1, "k1", 0},
		{post, "/v1/events", `{"id":"ev1","name":"Again","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`, o1, "", 0},
		{post, "/v1/events", `{"id":"ev3","name":"Three","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`, u1, "", 0},
		{patch, "/v1/events/ev1", `{"name":"Renamed","limits":{"holdTTLSeconds":30}}`, o1, "k2", 0},
		{patch, "/v1/events/ev1", `{"venue":{"sections":[{"id":"A","category":"floor","rows":1,"seatsPerRow":1}]}}`, admin, "", 0},
		{patch, "/v1/events/ev1", `{"venue":{"sections":[{"id":"A","category":"floor","rows":3,"seatsPerRow":4},{"id":"B","category":"balcony","rows":2,"seatsPerRow":3},{"id":"Z","category":"floor","rows":1,"seatsPerRow":2}]}}`, o1, "", 0},
		{patch, "/v1/events/ev1", `{"name":"Mine now"}`, o2, "", 0},
		{post, "/v1/events/ev1/holds", `{"seats":["A-3-1","A-3-2"]}`, u2, "k3", 0},
		{post, "/v1/events/ev1/holds", `{"seats":["A-1-1"]}`, u2, "", 0},
		{post, "/v1/events/ev1/holds", `{"category":"floor","quantity":3,"adjacent":true,"ttlSeconds":60}`, u2, "k4", 0},
		{post, "/v1/events/ev1/holds", `{"category":"balcony","quantity":7}`, u1, "", 0},
		{post, "/v1/events/ev2/holds", `{"seats":["C-1-1","C-1-2","C-1-3"]}`, u1, "", 0},
		{post, "/v1/events/ev1/holds", `{"seats":["A-9-9"]}`, u1, "k5", 0},
		{get, "/v1/holds/" + fuzzHoldU1, "", u1, "", 0},
		{get, "/v1/holds/" + fuzzHoldU1, "", u2, "", 0},
		{del, "/v1/holds/" + fuzzHoldU1, `{"seats":["A-1-2"]}`, u1, "k6", 0},
		{del, "/v1/holds/" + fuzzHoldU1, "", admin, "", 0},
		{del, "/v1/holds/" + fuzzHoldU2, "", u1, "", 0},
		{post, "/v1/holds/" + fuzzHoldU1 + "/extend", `{"ttlSeconds":900}`, u1, "k7", 0},
		{post, "/v1/holds/" + fuzzHoldU1 + "/extend", ``, u1, "", 0},
		{post, "/v1/holds/" + fuzzHoldU1 + "/purchase", `{"paymentMethod":"pm_card_visa"}`, u1, "k8", 0},
		{post, "/v1/holds/" + fuzzHoldU1 + "/purchase", `{"paymentMethod":"pm_card_chargeDeclined"}`, u1, "k9", 0},
		{post, "/v1/holds/" + fuzzHoldU2 + "/purchase", ``, u1, "", 0},
		{post, "/v1/holds/h_0.99.0/purchase", ``, u1, "", 0},
		{get, "/v1/orders/" + fuzzOrderU1, "", u1, "", 0},
		{post, "/v1/orders/" + fuzzOrderU1 + "/exchange", `{"release":["A-2-1"],"take":["A-2-2"]}`, u1, "k10", 0},
		{post, "/v1/orders/" + fuzzOrderU1 + "/exchange", `{"release":["A-2-1"],"take":["B-2-1"]}`, u1, "", 0},
		{post, "/v1/orders/" + fuzzOrderU1 + "/cancel", "", u1, "k11", 0},
		{post, "/v1/orders/" + fuzzOrderU1 + "/cancel", "", u2, "", 0},
		{get, "/v1/me/holds", "", u1, "", 0},
		{get, "/v1/me/orders", "", u1, "", 0},
		{get, "/v1/me/orders", "", expired, "", 0},
		{get, "/v1/cluster", "", nobody, "", 0},
		{post, "/v1/cluster/members", `{"id":"n2","raftAddr":"127.0.0.1:7002","httpAddr":"127.0.0.1:8002"}`, admin, "k12", 0},
		{post, "/v1/cluster/members?shard=0", `{"id":"n2","raftAddr":"127.0.0.1:7002","httpAddr":"127.0.0.1:8002"}`, u1, "", 0},
		{del, "/v1/cluster/members/n1", "", admin, "", 0},
		{del, "/v1/cluster/members/n9?shard=1", "", admin, "", 0},
		{post, "/v1/cluster/transfer-leadership", `{"shard":0,"to":"n2"}`, admin, "", 0},
		{get, "/v1/openapi.yaml", "", nobody, "", 0},
		{put, "/v1/events/ev1", `{}`, admin, "", 0},
		{get, "/v1/events/bad%20id", "", nobody, "", 0},
		{get, "/v1/holds/h_1.2.3", "", u1, "", 0},
		{post, "/v1/events/ev1/holds", `{"seats":["A-3-3"]}`, junk, "", 0},
		{post, "/v1/events/ev1/holds", `{"seats":["A-3-3"]}`, u1, strings.Repeat("k", 129), 0},
		{post, "/v1/events/ev1/holds", `{"seats":["A-3-3"]}`, u1, "key with spaces", 0},
		{get, "/nothing/../v1/events//ev1/", "", nobody, "", 0},
		// Per-event access and the report.
		{put, "/v1/events/ev1/access/u2", `{"level":"view"}`, o1, "", 0},
		{put, "/v1/events/ev1/access/u2", `{"level":"manage"}`, o2, "", 0},
		{put, "/v1/events/ev1/access/u2", `{"level":"owner"}`, o1, "", 0},
		{del, "/v1/events/ev1/access/u2", "", o1, "k13", 0},
		{get, "/v1/events/ev1/access", "", o1, "", 0},
		{get, "/v1/events/ev1/report?format=csv", "", o1, "", 0},
		{get, "/v1/events/ev1/report", "", u1, "", 0},
		{post, "/v1/orders/" + fuzzOrderU1 + "/cancel", "", o1, "k14", 0},
		// The first commit's answer is lost; the retry with the key must
		// find what it did.
		{post, "/v1/events/ev1/holds", `{"seats":["A-3-1"]}`, u2, "lost-1", 1},
		{post, "/v1/events/ev1/holds", `{"category":"floor","quantity":1}`, u2, "lost-3", 1},
		{post, "/v1/holds/" + fuzzHoldU1 + "/purchase", `{"paymentMethod":"pm_card_visa"}`, u1, "lost-4", 1},
		{patch, "/v1/events/ev1", `{"name":"Lost"}`, o1, "lost-5", 1},
		{post, "/v1/events", `{"id":"ev3","name":"Three","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`, o1, "lost-6", 1},
		{post, "/v1/orders/" + fuzzOrderU1 + "/cancel", "", u1, "lost-7", 1},
		{del, "/v1/holds/" + fuzzHoldU1, "", u1, "lost-8", 1},
		{post, "/v1/holds/" + fuzzHoldU1 + "/extend", `{"ttlSeconds":60}`, u1, "lost-9", 1},
		{post, "/v1/cluster/members", `{"id":"n2","raftAddr":"127.0.0.1:7002","httpAddr":"127.0.0.1:8002"}`, admin, "lost-10", 1},
		{del, "/v1/events/ev1/access/u2", "", o1, "lost-11", 1},
	} {
		f.Add(s.method, s.uri, []byte(s.body), s.who, s.key, s.fault)
	}
	tokens := fuzzTokens(f)
	codes := map[boxoffice.Code]bool{}
	for _, c := range boxoffice.Codes() {
		codes[c] = true
	}
	f.Fuzz(func(t *testing.T, method uint8, uri string, body []byte, who uint8, key string, fault uint8) {
		srv, node := newFuzzServer(t)
		m, token := fuzzMethods[int(method)%len(fuzzMethods)], tokens[int(who)%len(tokens)]
		before := node.changed()
		if fault%4 == 1 {
			node.loseNextAnswer()
		}
		a := serve(srv, m, uri, token, key, body)
		lost := node.lostAnswer()
		where := fmt.Sprintf("%s %q (caller %d, key %q, fault %d, body %q) → %d %s", m, uri, who%8, key, fault%4, body, a.status, a.body)

		require.NoError(t, node.halt, where)
		// Every answer of a route carries the index. (Health checks and
		// paths without a route do not.)
		routed := strings.HasPrefix(a.path, "/v1/") && !strings.Contains(a.body, `"detail":"no route `)
		if routed {
			require.NotEmpty(t, a.index, "no X-Boxoffice-Index: %s", where)
		}
		switch {
		case a.status >= 400:
			require.Equal(t, "application/problem+json", a.ctype, where)
			var p struct {
				Type   string         `json:"type"`
				Title  string         `json:"title"`
				Status int            `json:"status"`
				Detail string         `json:"detail"`
				Code   boxoffice.Code `json:"code"`
			}
			require.NoError(t, json.Unmarshal([]byte(a.body), &p), where)
			require.True(t, codes[p.Code], "unknown code: %s", where)
			require.NotEqual(t, boxoffice.CodeInternal, p.Code, where)
			require.Equal(t, a.status, p.Status, where)
			require.Equal(t, httpapi.StatusOf(p.Code), a.status, where)
			require.Equal(t, "urn:boxoffice:problem:"+string(p.Code), p.Type, where)
			require.NotEmpty(t, p.Title, where)
			if p.Code != boxoffice.CodePaymentDeclined && lost == nil {
				require.Equal(t, before, node.changed(), "a refused request changed state: %s", where)
			}
		case a.status == 204:
			require.Empty(t, a.body, where)
		default:
			require.Contains(t, []int{200, 201}, a.status, where)
			if a.ctype == "application/json" {
				require.True(t, json.Valid([]byte(a.body)), where)
			}
		}

		if m != "GET" && (a.status == 200 || a.status == 201) && a.ctype == "application/json" {
			readAfterWrite(t, srv, tokens[admin], a, where)
		}

		if key == "" {
			return
		}
		again := serve(srv, m, uri, token, key, body)
		require.NoError(t, node.halt, where)
		if lost != nil {
			requireLostAnswerFound(t, lost, again, where)
			return
		}
		require.Equal(t, a.status, again.status, "the retry with the key answered otherwise: %s\nthen: %s", where, again.body)
		require.Equal(t, a.body, again.body, "the retry with the key answered otherwise: %s", where)
	})
}
