package payment_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
	"boxoffice/payment"
	"boxoffice/raftnode"
)

// The checkout saga against a real in-process 3-node cluster whose nodes
// share one simulated gateway with injected faults. After every scenario an
// audit checks the promises: every successful charge ends as exactly one
// paid order or one refund; no seat is sold without a charge; nobody is
// charged twice for one order.

type sagaEnv struct {
	t   *testing.T
	c   *testcluster.Cluster
	sim *payment.Sim
}

func newSagaEnv(t *testing.T, sim payment.SimConfig) *sagaEnv {
	g, err := payment.NewSim(sim)
	require.NoError(t, err)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, Gateway: g, TunePayment: func(cfg *payment.Config) {
		cfg.Lease = 8 * time.Second
		cfg.Margin = 2 * time.Second
		cfg.CallTimeout = 3 * time.Second
		cfg.RecoveryInterval = 100 * time.Millisecond
	}})
	ev := testcluster.Event("pay-1", 1, 5, 5)
	code, body := c.Do(c.Members[0], "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), ev)
	require.Equal(t, 201, code, "%s", body)
	return &sagaEnv{t: t, c: c, sim: g}
}

const shardOfPay1 = 1 // raftnode.ShardOf("pay-1", 2), checked in TestShardOfPay1

func TestShardOfPay1(t *testing.T) { require.Equal(t, shardOfPay1, raftnode.ShardOf("pay-1", 2)) }

func buyer(name string) string { return testcluster.Token(name, httpapi.RoleBuyer) }

func fsmSold() fsm.SeatFilter {
	sold := boxoffice.SeatSold
	return fsm.SeatFilter{State: &sold}
}

type orderJSON struct {
	ID          string   `json:"id"`
	Hold        string   `json:"hold"`
	Seats       []string `json:"seats"`
	AmountCents int64    `json:"amountCents"`
	PaymentRef  string   `json:"paymentRef"`
	State       string   `json:"state"`
}

type problemJSON struct {
	Code string `json:"code"`
}

func (e *sagaEnv) hold(m *testcluster.Member, who string, seats ...string) string {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{"seats": seats})
	code, body := e.c.Do(m, "POST", "/v1/events/pay-1/holds", buyer(who), string(b))
	require.Equal(e.t, 201, code, "%s", body)
	var h struct{ ID string }
	require.NoError(e.t, json.Unmarshal(body, &h))
	return h.ID
}

func (e *sagaEnv) purchase(m *testcluster.Member, who, hold, key, method string) (int, []byte) {
	code, body, _ := testcluster.DoHeaderWith(m.HTTPAddr, "POST", "/v1/holds/"+hold+"/purchase", buyer(who),
		`{"paymentMethod":"`+method+`"}`, map[string]string{"Idempotency-Key": key})
	return code, body
}

// purchaseSettled is purchase for a test that expects a final answer: a 503
// (payment_unknown, when a step of the saga did not commit in time, as
// happens on a loaded machine; or no leader) is retried with the same key
// for up to a minute, as the API asks a client to. The answer that counts is
// the first that is not a 503.
func (e *sagaEnv) purchaseSettled(m *testcluster.Member, who, hold, key, method string) (int, []byte) {
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := e.purchase(m, who, hold, key, method)
		if code != 503 || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(50 * time.Millisecond) // a client's backoff between retries
	}
}

// order reads an order with a strong read.
func (e *sagaEnv) order(id string) orderJSON {
	e.t.Helper()
	code, body := e.c.Do(e.c.Running()[0], "GET", "/v1/orders/"+id+"?consistency=strong", testcluster.AdminToken(), nil)
	require.Equal(e.t, 200, code, "%s", body)
	var o orderJSON
	require.NoError(e.t, json.Unmarshal(body, &o))
	return o
}

// audit checks the payment promises against the gateway and the cluster.
func (e *sagaEnv) audit() {
	t := e.t
	t.Helper()
	leader := e.c.Leader(shardOfPay1)
	require.NoError(t, leader.Node.ReadBarrier(t.Context(), shardOfPay1))
	st := leader.Node.Store(shardOfPay1)
	charges := e.sim.Charges()
	byRef := map[string]boxoffice.Charge{}
	for _, ch := range charges {
		byRef[ch.Ref] = ch
	}
	// Every sold seat belongs to a paid order with a charge.
	seats, err := st.Seats("pay-1", fsmSold())
	require.NoError(t, err)
	soldBy := map[string][]string{}
	for _, s := range seats {
		o, err := st.Order(s.Order)
		require.NoError(t, err)
		require.Equal(t, boxoffice.OrderPaid, o.State, "seat %s sold by %s order %s", s.ID, o.State, o.ID)
		ch, ok := byRef[o.PaymentRef]
		require.True(t, ok, "seat %s sold by order %s without a charge", s.ID, o.ID)
		require.False(t, ch.Refunded, "seat %s sold by order %s whose charge was refunded", s.ID, o.ID)
		soldBy[o.ID] = append(soldBy[o.ID], s.ID)
	}
	// Every charge is one order's (its key is the order id), and ends as a
	// sale or a refund — once nothing is in flight.
	for _, ch := range charges {
		o, err := st.Order(ch.IdempotencyKey)
		require.NoError(t, err, "charge %s has no order", ch.Ref)
		require.Equal(t, ch.Ref, o.PaymentRef, "order %s records another charge", o.ID)
		require.Equal(t, ch.AmountCents, o.AmountCents)
		switch o.State {
		case boxoffice.OrderPaid:
			require.False(t, ch.Refunded, "paid order %s was refunded", o.ID)
			require.Len(t, soldBy[o.ID], len(o.Seats), "paid order %s owns its seats", o.ID)
		case boxoffice.OrderRefunded:
			require.True(t, ch.Refunded, "order %s reads refunded but the gateway did not refund", o.ID)
		default:
			t.Fatalf("charge %s ended as a %s order %s", ch.Ref, o.State, o.ID)
		}
	}
	pending, err := st.PendingCheckouts(100)
	require.NoError(t, err)
	require.Empty(t, pending, "checkouts still in flight")
	refunds, err := st.PendingRefunds(100)
	require.NoError(t, err)
	require.Empty(t, refunds, "refunds still due")
}

// settle waits until no checkout or refund is in flight on the shard.
func (e *sagaEnv) settle() {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		l := e.c.Leader(shardOfPay1)
		p, _ := l.Node.Store(shardOfPay1).PendingCheckouts(10)
		r, _ := l.Node.Store(shardOfPay1).PendingRefunds(10)
		return len(p) == 0 && len(r) == 0
	}, 30*time.Second, 20*time.Millisecond, "checkouts or refunds stay in flight")
}

func TestPurchaseChargesOnceAndSells(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: 5 * time.Millisecond, DuplicateRate: 0.5, Seed: 2})
	f := e.c.Follower(shardOfPay1)
	h := e.hold(f, "u1", "A-1-1", "A-1-2")
	code, body := e.purchaseSettled(f, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 201, code, "%s", body)
	var o orderJSON
	require.NoError(t, json.Unmarshal(body, &o))
	assert.Equal(t, "paid", o.State)
	assert.NotEmpty(t, o.PaymentRef)
	assert.Equal(t, int64(10000), o.AmountCents)
	// Retried on another node with the same key: the same order, no charge.
	code, again := e.purchaseSettled(e.c.Leader(shardOfPay1), "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 201, code, "%s", again)
	assert.JSONEq(t, string(body), string(again))
	require.Len(t, e.sim.Charges(), 1)
	e.audit()
}

func TestDeclinedPurchaseKeepsTheHold(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: time.Millisecond, Seed: 3})
	m := e.c.Members[0]
	h := e.hold(m, "u1", "A-2-1")
	code, body := e.purchaseSettled(m, "u1", h, "k1", "pm_card_chargeDeclined")
	require.Equal(t, 402, code, "%s", body)
	var p problemJSON
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "payment_declined", p.Code)
	code, body = e.c.Do(m, "GET", "/v1/holds/"+h+"?consistency=strong", buyer("u1"), nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(body), `"state":"active"`, "the hold is active again")
	assert.Empty(t, e.sim.Charges())
	// Another card, another key: bought.
	code, body = e.purchaseSettled(m, "u1", h, "k2", "pm_card_visa")
	require.Equal(t, 201, code, "%s", body)
	e.audit()
}

// The charge happens but its answer is lost: the saga looks it up with the
// same key and completes; it never charges again under a new key.
func TestTimedOutChargeIsLookedUpNotRepeated(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: time.Millisecond, TimeoutRate: 1, Seed: 4})
	m := e.c.Members[1]
	h := e.hold(m, "u1", "A-3-1")
	code, body := e.purchaseSettled(m, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 201, code, "%s", body)
	require.Len(t, e.sim.Charges(), 1)
	e.audit()
}

// The gateway is down: the purchase answers payment_unknown and the seats
// stay taken; once it is back, the leader's recovery charges with the same
// key, and the buyer's retry with its key finds the order paid.
func TestOutageIsResolvedByRecovery(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: time.Millisecond, Outage: true, Seed: 5})
	m := e.c.Members[2]
	h := e.hold(m, "u1", "A-4-1")
	code, body := e.purchase(m, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 503, code, "%s", body)
	var p problemJSON
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "payment_unknown", p.Code)
	code, _ = e.c.Do(m, "POST", "/v1/events/pay-1/holds", buyer("u2"), `{"seats":["A-4-1"]}`)
	assert.Equal(t, 409, code, "the seat stays taken while the charge is unresolved")

	require.NoError(t, e.sim.SetConfig(payment.SimConfig{LatencyMedian: time.Millisecond, Seed: 5}))
	e.settle()
	code, body = e.purchaseSettled(m, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 201, code, "%s", body)
	assert.Contains(t, string(body), `"state":"paid"`)
	require.Len(t, e.sim.Charges(), 1)
	e.audit()
}

// The leader dies while the charge is in flight (before the complete step):
// the new leader's recovery finds the charge by its key and completes the
// order; the buyer's retry elsewhere gets it; one charge, one sale.
func TestLeaderKilledDuringChargeIsRecovered(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: 600 * time.Millisecond, Seed: 6})
	leader := e.c.Leader(shardOfPay1)
	h := e.hold(leader, "u1", "A-5-1")
	var wg sync.WaitGroup
	var first int
	wg.Add(1)
	go func() {
		defer wg.Done()
		first, _ = e.purchase(leader, "u1", h, "k1", "pm_card_visa")
	}()
	// Crash the leader once the charge has landed at the gateway (half-way
	// through its latency), before the saga's complete step.
	require.Eventually(t, func() bool { return len(e.sim.Charges()) == 1 }, 10*time.Second, 2*time.Millisecond)
	e.c.Crash(leader)
	wg.Wait()
	require.NotEqual(t, 201, first, "the crashed leader could not have completed the order")

	e.settle()
	other := e.c.Running()[0]
	code, body := e.purchaseSettled(other, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 201, code, "%s", body)
	assert.Contains(t, string(body), `"state":"paid"`)
	require.Len(t, e.sim.Charges(), 1)
	e.audit()
}

// Cancelling a paid order frees the seats and refunds the charge, once,
// even if the gateway fails the first refund.
func TestCancelRefundsExactlyOnce(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: time.Millisecond, Seed: 7})
	m := e.c.Members[0]
	h := e.hold(m, "u1", "A-1-5")
	code, body := e.purchaseSettled(m, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 201, code, "%s", body)
	var o orderJSON
	require.NoError(t, json.Unmarshal(body, &o))

	require.NoError(t, e.sim.SetConfig(payment.SimConfig{Outage: true, Seed: 7}))
	code, body = e.c.Do(m, "POST", "/v1/orders/"+o.ID+"/cancel", buyer("u1"), nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"state":"cancelled"`, "the refund waits for the gateway")
	code, _ = e.c.Do(m, "POST", "/v1/events/pay-1/holds", buyer("u2"), `{"seats":["A-1-5"]}`)
	assert.Equal(t, 201, code, "the seat is free at once")

	require.NoError(t, e.sim.SetConfig(payment.SimConfig{LatencyMedian: time.Millisecond, Seed: 7}))
	e.settle()
	assert.Equal(t, "refunded", e.order(o.ID).State)
	e.audit()
}

// Many buyers buy at once through every node while the gateway declines,
// loses and times out some calls: every seat is sold at most once, every
// charge is a sale, nobody pays twice.
func TestConcurrentPurchasesWithFaults(t *testing.T) {
	e := newSagaEnv(t, payment.SimConfig{LatencyMedian: 3 * time.Millisecond, LatencySpread: 1, DeclineRate: 0.2, TimeoutRate: 0.2, LostRate: 0.1, DuplicateRate: 0.2, Seed: 8})
	var wg sync.WaitGroup
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := e.c.Members[i%3]
			who := fmt.Sprintf("b%d", i)
			seat := fmt.Sprintf("A-%d-%d", i/5+1, i%5+1)
			code, body := e.c.Do(m, "POST", "/v1/events/pay-1/holds", buyer(who), `{"seats":["`+seat+`"]}`)
			if code != 201 {
				t.Errorf("hold %s: %d %s", seat, code, body)
				return
			}
			var h struct{ ID string }
			json.Unmarshal(body, &h)
			// Declined: try again under a new key. Unknown: the leader
			// resolves it; ask again under the same key until it has.
			key, keys := "k-0", 1
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				code, body := e.purchase(m, who, h.ID, key, "pm_card_visa")
				switch code {
				case 201:
					return
				case 402:
					key = fmt.Sprintf("k-%d", keys)
					keys++
				case 503:
					time.Sleep(20 * time.Millisecond) // poll the resolution
				default:
					t.Errorf("purchase %s: %d %s", seat, code, body)
					return
				}
			}
			t.Errorf("purchase %s never resolved", seat)
		}()
	}
	wg.Wait()
	e.settle()
	e.audit()
}

// hookPoint stops the first purchase that reaches a saga step on any node,
// until released: the test crashes the leader there.
type hookPoint struct {
	step    string
	armed   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func newHookPoint(step string) *hookPoint {
	h := &hookPoint{step: step, reached: make(chan struct{}), release: make(chan struct{})}
	h.armed.Store(step != "")
	return h
}

func (h *hookPoint) hook(_, step string) {
	if step == h.step && h.armed.CompareAndSwap(true, false) {
		close(h.reached)
		<-h.release
	}
}

// A leader that hands its shard over in the middle of a purchase (a
// rolling restart drains it; the rebalancer moves the shard) does not leave
// the buyer waiting for the next leader's recovery round: the purchase,
// which carries its Idempotency-Key, goes on to the new leader, which
// finds the charge under the order's key and completes the order. Recovery
// is off here, so only that path can answer in time.
func TestPurchaseFollowsTheLeadAcrossATransfer(t *testing.T) {
	g, err := payment.NewSim(payment.SimConfig{LatencyMedian: 2 * time.Millisecond, Seed: 11})
	require.NoError(t, err)
	hp := newHookPoint("charged")
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, Gateway: g, TunePayment: func(cfg *payment.Config) {
		cfg.RecoveryInterval = time.Hour
		cfg.StepHook = hp.hook
	}})
	e := &sagaEnv{t: t, c: c, sim: g}
	code, body := c.Do(c.Members[0], "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), testcluster.Event("pay-1", 1, 5, 5))
	require.Equal(t, 201, code, "%s", body)
	leader := c.Leader(shardOfPay1)
	h := e.hold(leader, "u1", "A-1-1")

	type answer struct {
		code int
		body []byte
	}
	done := make(chan answer, 1)
	go func() {
		code, body := e.purchase(leader, "u1", h, "k1", "pm_card_visa")
		done <- answer{code, body}
	}()
	select {
	case <-hp.reached:
	case a := <-done:
		t.Fatalf("the purchase ended before its charge: %d %s", a.code, a.body)
	}
	code, body = c.TransferLeadership(shardOfPay1, "")
	require.Equal(t, 200, code, "%s", body)
	require.Eventually(t, func() bool { return c.Leader(shardOfPay1) != leader }, time.Minute, 10*time.Millisecond)
	close(hp.release)

	a := <-done
	require.Equal(t, 201, a.code, "the buyer's one request is answered by the new leader: %s", a.body)
	assert.Contains(t, string(a.body), `"state":"paid"`)
	require.Len(t, g.Charges(), 1, "one charge")
	e.settle()
	e.audit()
}

// The fault matrix: each gateway fault × a crash of the shard's leader
// after each step of the saga (or none). Whatever happens, once the new
// leader has resolved what was in flight, the buyer's retry with the same
// key gets the final answer, and the audit holds.
func TestFaultMatrix(t *testing.T) {
	healthy := payment.SimConfig{LatencyMedian: 2 * time.Millisecond, Seed: 9}
	faults := map[string]payment.SimConfig{
		"ok":      healthy,
		"decline": {LatencyMedian: 2 * time.Millisecond, DeclineRate: 1, Seed: 9},
		"timeout": {LatencyMedian: 2 * time.Millisecond, TimeoutRate: 1, Seed: 9},
		"lost":    {LatencyMedian: 2 * time.Millisecond, LostRate: 1, Seed: 9},
		"outage":  {LatencyMedian: 2 * time.Millisecond, Outage: true, Seed: 9},
	}
	for _, fault := range []string{"ok", "decline", "timeout", "lost", "outage"} {
		for _, step := range []string{"", "begun", "charged", "completed"} {
			t.Run(fmt.Sprintf("%s/crash-after-%s", fault, step), func(t *testing.T) {
				g, err := payment.NewSim(faults[fault])
				require.NoError(t, err)
				hp := newHookPoint(step)
				c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, Gateway: g, TunePayment: func(cfg *payment.Config) {
					// A lease far longer than a write's timeout (10 s): a
					// purchase whose leader lost the lead under load waits
					// up to that long for the next one, and the charge
					// must still fit in the lease after it.
					cfg.Lease = 30 * time.Second
					cfg.Margin = 5 * time.Second
					cfg.CallTimeout = 2 * time.Second
					cfg.LookupAttempts = 2
					cfg.RecoveryInterval = 50 * time.Millisecond
					cfg.StepHook = hp.hook
				}})
				e := &sagaEnv{t: t, c: c, sim: g}
				code, body := c.Do(c.Members[0], "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), testcluster.Event("pay-1", 1, 5, 5))
				require.Equal(t, 201, code, "%s", body)
				leader := c.Leader(shardOfPay1)
				h := e.hold(leader, "u1", "A-1-1", "A-1-2")

				done := make(chan int, 1)
				go func() {
					code, _ := e.purchase(leader, "u1", h, "k1", "pm_card_visa")
					done <- code
				}()
				select {
				case <-hp.reached:
					c.Crash(leader)
					close(hp.release)
					<-done
				case code := <-done:
					// This fault never reaches the step: no crash.
					require.NotEqual(t, 0, code)
					hp.armed.Store(false)
				case <-time.After(20 * time.Second):
					t.Fatal("the purchase neither reached the step nor finished")
				}
				require.NoError(t, g.SetConfig(healthy))
				if fault == "decline" {
					require.NoError(t, g.SetConfig(faults["decline"])) // a declined card stays declined
				}
				e.settle()

				code, body = e.purchaseSettled(c.Running()[0], "u1", h, "k1", "pm_card_visa")
				switch fault {
				case "decline":
					require.Equal(t, 402, code, "%s", body)
					assert.Empty(t, g.Charges())
				default:
					require.Equal(t, 201, code, "%s", body)
					assert.Contains(t, string(body), `"state":"paid"`)
					require.Len(t, g.Charges(), 1, "one charge")
					// The hold was never let expire while its charge was in flight.
					code, hb := c.Do(c.Running()[0], "GET", "/v1/holds/"+h+"?consistency=strong", buyer("u1"), nil)
					require.Equal(t, 200, code)
					assert.Contains(t, string(hb), `"state":"purchased"`)
				}
				e.audit()
			})
		}
	}
}

// Recovery fails a checkout whose charge it cannot find once the lease has
// ended; if a slow gateway makes the charge after all, the watch that
// follows finds it and refunds it: a charge never ends as nothing.
func TestLateChargeAfterFailureIsRefunded(t *testing.T) {
	// Every charge request is lost on its way; look-ups answer: not found.
	g, err := payment.NewSim(payment.SimConfig{LatencyMedian: time.Millisecond, LostRate: 1, Seed: 10})
	require.NoError(t, err)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, Gateway: g, TunePayment: func(cfg *payment.Config) {
		cfg.Lease = 3 * time.Second
		cfg.Margin = time.Second
		cfg.CallTimeout = time.Second
		cfg.RecoveryInterval = 50 * time.Millisecond
	}})
	e := &sagaEnv{t: t, c: c, sim: g}
	code, body := c.Do(c.Members[0], "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), testcluster.Event("pay-1", 1, 5, 5))
	require.Equal(t, 201, code, "%s", body)
	m := c.Leader(shardOfPay1)
	h := e.hold(m, "u1", "A-1-1")
	code, body = e.purchase(m, "u1", h, "k1", "pm_card_visa")
	require.Equal(t, 503, code, "%s", body)

	// The lease ends with no charge found: recovery fails the order.
	var orderID string
	require.Eventually(t, func() bool {
		l := c.Leader(shardOfPay1)
		w, _ := l.Node.Store(shardOfPay1).PendingVerifications(10)
		if len(w) == 1 {
			orderID = w[0].Order.ID
		}
		return len(w) == 1
	}, 20*time.Second, 20*time.Millisecond, "the checkout was never failed and watched")
	assert.Equal(t, "failed", e.order(orderID).State)

	// The gateway makes the charge late after all.
	require.NoError(t, g.SetConfig(payment.SimConfig{LatencyMedian: time.Millisecond, Seed: 10}))
	_, err = g.Charge(t.Context(), orderID, 5000, "pm_card_visa")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.order(orderID).State == "refunded" }, 20*time.Second, 20*time.Millisecond,
		"the late charge was not refunded")
	e.settle()
	require.Len(t, g.Charges(), 1)
	assert.True(t, g.Charges()[0].Refunded)
	e.audit()
}
