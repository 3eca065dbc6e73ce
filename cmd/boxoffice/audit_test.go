package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/client"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
	"boxoffice/payment"
)

// newSimGateway serves a simulated gateway over HTTP, as `local` does, and
// returns it with its URL.
func newSimGateway(t *testing.T) (*payment.Sim, string) {
	cfg := payment.DefaultSimConfig()
	cfg.LatencyMedian = time.Millisecond
	sim, err := payment.NewSim(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(payment.SimServer(sim))
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// retry calls fn until it succeeds or its error is not worth trying again
// (a 503 during a leader change), bounded by count and by a long deadline.
func retry[T any](t *testing.T, fn func(ctx context.Context) (T, error)) (T, error) {
	t.Helper()
	var v T
	var err error
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; attempt < 30 && time.Now().Before(deadline); attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err = fn(ctx)
		cancel()
		if exitCode(err) != exitUnavailable {
			return v, err
		}
		time.Sleep(200 * time.Millisecond) // a client's backoff before retrying
	}
	return v, err
}

// The audit against a 3-node cluster after a small on-sale: purchases, a
// live hold, a released hold and a cancelled (refunded) order. It passes,
// with the charges looked up at the gateway the nodes used; looked up at
// another gateway, which never saw them, it finds every charge missing
// and exits 6.
func TestAuditAfterAnOnSale(t *testing.T) {
	sim, simURL := newSimGateway(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, Gateway: sim})
	var nodes []string
	for _, m := range c.Members {
		nodes = append(nodes, "http://"+m.HTTPAddr)
	}
	target := "--target=" + strings.Join(nodes, ",")
	orgTok := testcluster.Token("org1", httpapi.RoleOrganiser)
	newClient := func(tok string) *client.Client {
		cfg := client.DefaultConfig()
		cfg.Nodes, cfg.Token = nodes, tok
		cl, err := client.New(cfg)
		require.NoError(t, err)
		return cl
	}
	org := newClient(orgTok)
	ev := &client.Event{ID: "audit-1", Name: "Audit night",
		Categories: []client.Category{{ID: "floor", Name: "Floor", PriceCents: 5000}, {ID: "tier", Name: "Tier", PriceCents: 2500}},
		Venue:      client.Venue{Sections: []client.Section{{ID: "A", Category: "floor", Rows: 3, SeatsPerRow: 4}, {ID: "B", Category: "tier", Rows: 2, SeatsPerRow: 5}}},
	}
	_, err := retry(t, func(ctx context.Context) (*client.Event, error) { return org.CreateEvent(ctx, ev) })
	require.NoError(t, err)

	var paid []*client.Order
	buy := func(who string, seats ...string) *client.Order {
		cl := newClient(testcluster.Token(who, httpapi.RoleBuyer))
		h, err := retry(t, func(ctx context.Context) (*client.Hold, error) {
			return cl.Hold(ctx, "audit-1", client.HoldRequest{Seats: seats})
		})
		require.NoError(t, err)
		o, err := retry(t, func(ctx context.Context) (*client.Order, error) { return cl.Purchase(ctx, h.ID, "pm_card_visa") })
		require.NoError(t, err)
		require.Equal(t, client.OrderPaid, o.State)
		return o
	}
	paid = append(paid, buy("b1", "A-1-1", "A-1-2"), buy("b2", "B-1-1"), buy("b3", "A-2-1", "A-2-2", "B-2-5"))
	cancelled := buy("b4", "A-3-4")
	b4 := newClient(testcluster.Token("b4", httpapi.RoleBuyer))
	_, err = retry(t, func(ctx context.Context) (*client.Order, error) { return b4.CancelOrder(ctx, cancelled.ID) })
	require.NoError(t, err)
	b5 := newClient(testcluster.Token("b5", httpapi.RoleBuyer))
	_, err = retry(t, func(ctx context.Context) (*client.Hold, error) {
		return b5.Hold(ctx, "audit-1", client.HoldRequest{Seats: []string{"B-1-2", "B-1-3"}})
	})
	require.NoError(t, err)
	gone, err := retry(t, func(ctx context.Context) (*client.Hold, error) {
		return b5.Hold(ctx, "audit-1", client.HoldRequest{Seats: []string{"A-3-1"}})
	})
	require.NoError(t, err)
	_, err = retry(t, func(ctx context.Context) (*client.Hold, error) { return b5.Release(ctx, gone.ID) })
	require.NoError(t, err)

	// The refund of the cancelled order is done by the saga, soon after.
	require.Eventually(t, func() bool {
		o, err := org.EventOrders(context.Background(), "audit-1", "", 0)
		if err != nil {
			return false
		}
		for _, x := range o.Orders {
			if x.ID == cancelled.ID {
				return x.State == client.OrderRefunded
			}
		}
		return false
	}, 2*time.Minute, 50*time.Millisecond, "the cancelled order is refunded")

	var out string
	var code int
	for attempt := 0; attempt < 10; attempt++ {
		out, code = run(t, "audit", "audit-1", target, "--token="+orgTok, "--payment-gateway", simURL, "-o", "json")
		if code != exitUnavailable {
			break
		}
	}
	require.Equal(t, exitOK, code, out)
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Empty(t, rep.Violations)
	assert.Equal(t, 22, rep.Capacity)
	assert.Equal(t, 6, rep.Sold)
	assert.Equal(t, 2, rep.Held)
	assert.Equal(t, 14, rep.Free)
	assert.Equal(t, 6, rep.PaidSeats)
	assert.Equal(t, int64(2*5000+2500+2*5000+2500), rep.RevenueCents)
	assert.Equal(t, map[string]int{"paid": 3, "refunded": 1}, rep.Orders)
	assert.Equal(t, map[string]int{"purchased": 4, "active": 1, "released": 1}, rep.Holds)
	assert.Equal(t, 4, rep.ChargesChecked, "three paid orders and the refunded one")

	out, code = run(t, "audit", "audit-1", target, "--token="+orgTok)
	require.Equal(t, exitOK, code, out)
	t.Logf("audit:\n%s", out)
	assert.Contains(t, out, "OK: no seat sold twice")
	assert.Contains(t, out, "not looked up")

	// Another gateway never saw these charges: each is missing there.
	_, otherURL := newSimGateway(t)
	out, code = run(t, "audit", "audit-1", target, "--token="+orgTok, "--payment-gateway", otherURL)
	assert.Equal(t, exitViolation, code, out)
	assert.Equal(t, 4, strings.Count(out, "charge_missing"), out)
	for _, o := range paid {
		assert.Contains(t, out, o.ID)
	}

	// Only the event's organiser, its grantees or an admin may audit it.
	out, code = run(t, "audit", "audit-1", target, "--token="+testcluster.Token("org2", httpapi.RoleOrganiser))
	assert.Equal(t, exitError, code, out)
	assert.Contains(t, out, "another organiser")
	out, code = run(t, "audit", "nope", target, "--token="+testcluster.AdminToken())
	assert.Equal(t, exitNotFound, code, out)
	out, code = run(t, "audit", "audit-1", target, "--token="+orgTok, "--payment-gateway", "paypal")
	assert.Equal(t, exitUsage, code, out)
}

// consistentLedger is a small event in a state the audit accepts: two paid
// orders, one live hold, a refunded order and a released hold.
func consistentLedger() ledger {
	return ledger{
		Event: client.Event{ID: "e", Capacity: 6,
			Categories:   []client.Category{{ID: "std", PriceCents: 100}},
			Availability: []client.Availability{{ID: "std", Capacity: 6, Free: 2, Held: 1, Sold: 3}}},
		Seats: []client.Seat{
			{ID: "A-1-1", Category: "std", State: "sold", Order: "o1"},
			{ID: "A-1-2", Category: "std", State: "sold", Order: "o1"},
			{ID: "A-1-3", Category: "std", State: "sold", Order: "o2"},
			{ID: "A-2-1", Category: "std", State: "held", Hold: "h3"},
			{ID: "A-2-2", Category: "std", State: "free"},
			{ID: "A-2-3", Category: "std", State: "free"},
		},
		Orders: []client.Order{
			{ID: "o1", Event: "e", Hold: "h1", Seats: []string{"A-1-1", "A-1-2"}, AmountCents: 200, PaymentRef: "pi_1", State: "paid"},
			{ID: "o2", Event: "e", Hold: "h2", Seats: []string{"A-1-3"}, AmountCents: 100, PaymentRef: "pi_2", State: "paid"},
			{ID: "o4", Event: "e", Hold: "h4", Seats: []string{"A-2-2"}, AmountCents: 100, PaymentRef: "pi_4", RefundRef: "re_4", State: "refunded"},
		},
		Holds: []client.Hold{
			{ID: "h1", Event: "e", Seats: []string{"A-1-1", "A-1-2"}, State: "purchased", Order: "o1"},
			{ID: "h2", Event: "e", Seats: []string{"A-1-3"}, State: "purchased", Order: "o2"},
			{ID: "h3", Event: "e", Seats: []string{"A-2-1"}, State: "active"},
			{ID: "h4", Event: "e", Seats: []string{"A-2-2"}, State: "purchased", Order: "o4"},
			{ID: "h5", Event: "e", Seats: []string{"A-2-3"}, State: "released"},
		},
	}
}

func kinds(fs []auditFinding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

// The checker on hand-made histories: the consistent one passes, and each
// corruption (a seat sold twice, a sold seat without its order, a paid order
// without a charge, counts that do not add up, ...) is found and named.
func TestCheckLedgerFindsEachViolation(t *testing.T) {
	r := checkLedger(consistentLedger())
	require.Empty(t, r.Violations)
	assert.Equal(t, 3, r.Sold)
	assert.Equal(t, int64(300), r.RevenueCents)

	for name, tc := range map[string]struct {
		corrupt func(l *ledger)
		want    []string
	}{
		"a seat in two paid orders": {func(l *ledger) {
			l.Orders[1].Seats = append(l.Orders[1].Seats, "A-1-1")
			l.Orders[1].AmountCents = 200
		}, []string{"double_sale", "paid_seat_sold_to_other", "sold_count"}},
		"a paid order without a charge": {func(l *ledger) { l.Orders[0].PaymentRef = "" }, []string{"paid_without_charge"}},
		"a sold seat of no order": {func(l *ledger) {
			l.Seats[4] = client.Seat{ID: "A-2-2", Category: "std", State: "sold", Order: "o9"}
			l.Event.Availability[0].Free, l.Event.Availability[0].Sold = 1, 4
		}, []string{"sold_without_order", "sold_count"}},
		"a seat sold to a refunded order": {func(l *ledger) {
			l.Seats[4] = client.Seat{ID: "A-2-2", Category: "std", State: "sold", Order: "o4"}
			l.Event.Availability[0].Free, l.Event.Availability[0].Sold = 1, 4
		}, []string{"sold_to_unpaid_order", "sold_count"}},
		"a paid order's seat is free": {func(l *ledger) {
			l.Seats[2] = client.Seat{ID: "A-1-3", Category: "std", State: "free"}
			l.Event.Availability[0].Free, l.Event.Availability[0].Sold = 3, 2
		}, []string{"paid_seat_not_sold", "sold_count"}},
		"a seat in two live holds": {func(l *ledger) {
			l.Holds[4].State = "active"
			l.Holds[4].Seats = []string{"A-2-1"}
		}, []string{"double_hold", "held_seat_not_held"}},
		"a held seat of a released hold": {func(l *ledger) { l.Holds[2].State = "released" }, []string{"held_by_dead_hold"}},
		"the event's counts disagree":    {func(l *ledger) { l.Event.Availability[0].Held = 0 }, []string{"counts"}},
		"a seat missing from the map": {func(l *ledger) {
			l.Seats = l.Seats[:5]
			l.Event.Availability[0].Free = 1
		}, []string{"seat_count"}},
		"a paid order whose hold was not purchased": {func(l *ledger) { l.Holds[1].State = "expired" }, []string{"paid_order_hold"}},
	} {
		t.Run(name, func(t *testing.T) {
			l := consistentLedger()
			tc.corrupt(&l)
			got := checkLedger(l)
			assert.ElementsMatch(t, tc.want, kinds(got.Violations), "%+v", got.Violations)
		})
	}
}

// fakeGateway is a hand-written gateway: charges by order id.
type fakeGateway map[string]boxoffice.Charge

func (g fakeGateway) Charge(context.Context, string, int64, string) (boxoffice.Charge, error) {
	panic("the audit never charges")
}

func (g fakeGateway) Refund(context.Context, string, string) (string, error) {
	panic("the audit never refunds")
}

func (g fakeGateway) Lookup(_ context.Context, key string) (boxoffice.Charge, error) {
	if c, ok := g[key]; ok {
		return c, nil
	}
	return boxoffice.Charge{}, boxoffice.Errorf(boxoffice.CodeNotFound, "no charge %q", key)
}

var _ boxoffice.PaymentGateway = fakeGateway(nil)

func TestCheckChargesFindsMismatches(t *testing.T) {
	l := consistentLedger()
	good := fakeGateway{
		"o1": {Ref: "pi_1", AmountCents: 200},
		"o2": {Ref: "pi_2", AmountCents: 100},
		"o4": {Ref: "pi_4", AmountCents: 100, Refunded: true},
	}
	r := &auditReport{}
	require.NoError(t, checkCharges(context.Background(), good, l.Orders, r))
	assert.Empty(t, r.Violations)
	assert.Equal(t, 3, r.ChargesChecked)

	bad := fakeGateway{
		"o1": {Ref: "pi_other", AmountCents: 150},
		"o4": {Ref: "pi_4", AmountCents: 100},
	}
	r = &auditReport{}
	require.NoError(t, checkCharges(context.Background(), bad, l.Orders, r))
	assert.ElementsMatch(t, []string{"charge_ref", "charge_amount", "charge_missing", "refund_missing"}, kinds(r.Violations))
}

// The audit treats general-admission places as seats: an event made from a
// venue with a floor, where places were bought by quantity (through the Go
// client) and one order cancelled, audits clean with every count right.
func TestAuditCountsStandingPlaces(t *testing.T) {
	sim, simURL := newSimGateway(t)
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2, Gateway: sim})
	var nodes []string
	for _, m := range c.Members {
		nodes = append(nodes, "http://"+m.HTTPAddr)
	}
	orgTok := testcluster.Token("org1", httpapi.RoleOrganiser)
	newClient := func(tok string) *client.Client {
		cfg := client.DefaultConfig()
		cfg.Nodes, cfg.Token = nodes, tok
		cl, err := client.New(cfg)
		require.NoError(t, err)
		return cl
	}
	org := newClient(orgTok)
	_, err := retry(t, func(ctx context.Context) (*client.VenueChart, error) {
		return org.CreateVenue(ctx, &client.VenueChart{ID: "club", Name: "Club",
			Categories: []client.VenueCategory{{ID: "seat"}, {ID: "ga", Name: "Floor"}},
			Sections:   []client.Section{{ID: "A", Category: "seat", Rows: 1, SeatsPerRow: 4}},
			Areas:      []client.Area{{ID: "FLOOR", Category: "ga", Capacity: 10}}})
	})
	require.NoError(t, err)
	_, err = retry(t, func(ctx context.Context) (*client.Event, error) {
		return org.CreateEvent(ctx, &client.Event{ID: "club-1", Name: "Club night", VenueID: "club",
			Categories: []client.Category{{ID: "seat", PriceCents: 4000}, {ID: "ga", PriceCents: 1500}}})
	})
	require.NoError(t, err)
	buy := func(who string, r client.HoldRequest) *client.Order {
		cl := newClient(testcluster.Token(who, httpapi.RoleBuyer))
		h, err := retry(t, func(ctx context.Context) (*client.Hold, error) { return cl.Hold(ctx, "club-1", r) })
		require.NoError(t, err)
		o, err := retry(t, func(ctx context.Context) (*client.Order, error) { return cl.Purchase(ctx, h.ID, "pm_card_visa") })
		require.NoError(t, err)
		return o
	}
	o1 := buy("b1", client.HoldRequest{Area: "FLOOR", Quantity: 3})
	assert.Equal(t, []string{"GA-FLOOR-1", "GA-FLOOR-2", "GA-FLOOR-3"}, o1.Seats)
	buy("b2", client.HoldRequest{Seats: []string{"A-1-1"}})
	gone := buy("b3", client.HoldRequest{Area: "FLOOR", Quantity: 2})
	b3 := newClient(testcluster.Token("b3", httpapi.RoleBuyer))
	_, err = retry(t, func(ctx context.Context) (*client.Order, error) { return b3.CancelOrder(ctx, gone.ID) })
	require.NoError(t, err)
	// The cancelled places go back to the floor: the next buyer gets them.
	o4 := buy("b4", client.HoldRequest{Area: "FLOOR", Quantity: 2})
	assert.ElementsMatch(t, gone.Seats, o4.Seats)
	require.Eventually(t, func() bool {
		o, err := org.EventOrders(context.Background(), "club-1", "", 0)
		if err != nil {
			return false
		}
		for _, x := range o.Orders {
			if x.ID == gone.ID {
				return x.State == client.OrderRefunded
			}
		}
		return false
	}, 2*time.Minute, 50*time.Millisecond, "the cancelled order is refunded")

	var out string
	var code int
	for attempt := 0; attempt < 10; attempt++ {
		out, code = run(t, "audit", "club-1", "--target="+strings.Join(nodes, ","), "--token="+orgTok, "--payment-gateway", simURL, "-o", "json")
		if code != exitUnavailable {
			break
		}
	}
	require.Equal(t, exitOK, code, out)
	var rep auditReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Empty(t, rep.Violations)
	assert.Equal(t, 14, rep.Capacity)
	assert.Equal(t, 6, rep.Sold)
	assert.Equal(t, 8, rep.Free)
	assert.Equal(t, 6, rep.PaidSeats)
	assert.Equal(t, int64(5*1500+4000), rep.RevenueCents)
}
