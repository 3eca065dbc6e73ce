package fsm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// checkoutEnv is a store with one event (p1, from pick_test.go), its clock
// and log index.
type checkoutEnv struct {
	t     *testing.T
	s     *Store
	index uint64
	now   int64
}

func newCheckoutEnv(t *testing.T) *checkoutEnv {
	e := &checkoutEnv{t: t, s: newStore(t), now: 1_000}
	e.apply(&CreateEvent{Event: pickEvent()}) // hold TTL 60 s
	return e
}

func (e *checkoutEnv) apply(cmds ...Command) []Result {
	e.t.Helper()
	e.index++
	rs := applyOne(e.t, e.s, e.index, e.now, cmds...)
	checkInvariants(e.t, e.s)
	return rs
}

func (e *checkoutEnv) one(c Command) Result {
	e.t.Helper()
	return e.apply(c)[0]
}

func (e *checkoutEnv) hold(buyer string, seats ...string) *boxoffice.Hold {
	e.t.Helper()
	r := e.one(&Hold{Event: "p1", Buyer: buyer, Seats: seats})
	require.NoError(e.t, r.Err)
	return r.Hold
}

func (e *checkoutEnv) begin(h *boxoffice.Hold, leaseMs int64) *boxoffice.Order {
	e.t.Helper()
	r := e.one(&CheckoutBegin{Hold: h.ID, Buyer: h.Buyer, PaymentMethod: "pm_card_visa", LeaseMs: leaseMs})
	require.NoError(e.t, r.Err)
	return r.Order
}

func (e *checkoutEnv) seatState(id string) string {
	e.t.Helper()
	seats, err := e.s.Seats("p1", SeatFilter{})
	require.NoError(e.t, err)
	for _, s := range seats {
		if s.ID == id {
			return s.State.String()
		}
	}
	e.t.Fatalf("no seat %s", id)
	return ""
}

func TestCheckoutBeginThenComplete(t *testing.T) {
	e := newCheckoutEnv(t)
	h := e.hold("u1", "A-1-1", "U-1-1")
	o := e.begin(h, 120_000)
	assert.Equal(t, boxoffice.OrderPending, o.State)
	assert.Equal(t, int64(150), o.AmountCents)
	assert.Equal(t, e.now+120_000, o.LeaseUntilMs)
	got, err := e.s.Hold(h.ID)
	require.NoError(t, err)
	assert.Equal(t, boxoffice.HoldCheckingOut, got.State)
	pending, err := e.s.PendingCheckouts(10)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, o.ID, pending[0].ID)

	// A second checkout of the hold is refused; so is another buyer's.
	r := e.one(&CheckoutBegin{Hold: h.ID, Buyer: "u1", LeaseMs: 120_000})
	assert.Equal(t, boxoffice.CodeHoldNotActive, boxoffice.CodeOf(r.Err))

	// Past the hold's own expiry the seats stay taken while the lease runs,
	// and the sweep leaves the checkout alone.
	e.now += 90_000
	assert.Equal(t, 0, e.one(&Expire{}).Expired)
	assert.Equal(t, "held", e.seatState("A-1-1"))
	r = e.one(&Hold{Event: "p1", Buyer: "u2", Seats: []string{"A-1-1"}})
	assert.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(r.Err))

	r = e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_1"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderPaid, r.Order.State)
	assert.Equal(t, "pi_1", r.Order.PaymentRef)
	assert.Equal(t, "sold", e.seatState("A-1-1"))
	assert.Equal(t, "sold", e.seatState("U-1-1"))
	// Told twice: the same answer, nothing more.
	r = e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_1"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderPaid, r.Order.State)
	r = e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_2"})
	assert.Equal(t, boxoffice.CodeOrderNotActive, boxoffice.CodeOf(r.Err))
	r = e.one(&CheckoutFail{Order: o.ID, Reason: "late"})
	assert.Equal(t, boxoffice.CodeOrderNotActive, boxoffice.CodeOf(r.Err), "a paid checkout cannot fail")
	pending, err = e.s.PendingCheckouts(10)
	require.NoError(t, err)
	assert.Empty(t, pending)
}

func TestCheckoutFailMakesTheHoldActiveAgain(t *testing.T) {
	e := newCheckoutEnv(t)
	h := e.hold("u1", "A-1-1")
	o := e.begin(h, 30_000)
	r := e.one(&CheckoutFail{Order: o.ID, Reason: "declined"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderFailed, r.Order.State)
	assert.Equal(t, "declined", r.Order.FailReason)
	got, err := e.s.Hold(h.ID)
	require.NoError(t, err)
	assert.Equal(t, boxoffice.HoldActive, got.State)
	assert.Equal(t, h.ExpiresAtMs, got.ExpiresAtMs, "the hold keeps its own expiry")
	assert.Equal(t, "held", e.seatState("A-1-1"))
	// Told twice: nothing more. A charge that arrives after all is refunded.
	require.NoError(t, e.one(&CheckoutFail{Order: o.ID, Reason: "declined"}).Err)
	// The buyer may try again: a new checkout of the same hold.
	o2 := e.begin(h, 30_000)
	assert.NotEqual(t, o.ID, o2.ID)
	require.NoError(t, e.one(&CheckoutComplete{Order: o2.ID, ChargeRef: "pi_2"}).Err)

	r = e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_late"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderFailed, r.Order.State)
	assert.Equal(t, "pi_late", r.Order.PaymentRef)
	refunds, err := e.s.PendingRefunds(10)
	require.NoError(t, err)
	require.Len(t, refunds, 1)
	assert.Equal(t, o.ID, refunds[0].ID)
	require.NoError(t, e.one(&RefundDone{Order: o.ID, RefundRef: "re_1"}).Err)
	assert.Equal(t, "sold", e.seatState("A-1-1"), "the second checkout's sale stands")
}

// A checkout whose lease ended before it was resolved lost its seats to
// another buyer: the charge that then arrives is refunded, never kept, and
// no seat is sold twice.
func TestCheckoutPastItsLeaseIsRefunded(t *testing.T) {
	e := newCheckoutEnv(t)
	h := e.hold("u1", "A-1-1")
	o := e.begin(h, 90_000)
	e.now += 91_000
	assert.Equal(t, 0, e.one(&Expire{}).Expired, "the sweep leaves a checkout alone, even past its lease")
	assert.Equal(t, "free", e.seatState("A-1-1"))
	other := e.hold("u2", "A-1-1")

	r := e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_1"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderFailed, r.Order.State)
	got, err := e.s.Hold(other.ID)
	require.NoError(t, err)
	assert.Equal(t, boxoffice.HoldActive, got.State, "the other buyer keeps the seat")
	assert.Equal(t, "held", e.seatState("A-1-1"))
	refunds, err := e.s.PendingRefunds(10)
	require.NoError(t, err)
	require.Len(t, refunds, 1)
	r = e.one(&RefundDone{Order: o.ID, RefundRef: "re_1"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderRefunded, r.Order.State)
	require.NoError(t, e.one(&RefundDone{Order: o.ID, RefundRef: "re_1"}).Err, "told twice")
}

func TestCancelAfterPaymentRefundsOnce(t *testing.T) {
	e := newCheckoutEnv(t)
	h := e.hold("u1", "A-1-1")
	o := e.begin(h, 30_000)
	require.NoError(t, e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_1"}).Err)
	r := e.one(&RefundDone{Order: o.ID, RefundRef: "re_0"})
	assert.Equal(t, boxoffice.CodeOrderNotActive, boxoffice.CodeOf(r.Err), "no refund is due on a paid order")

	r = e.one(&CancelOrder{Order: o.ID, Buyer: "u1"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderCancelled, r.Order.State)
	assert.Equal(t, "free", e.seatState("A-1-1"))
	refunds, err := e.s.PendingRefunds(10)
	require.NoError(t, err)
	require.Len(t, refunds, 1)
	r = e.one(&RefundDone{Order: o.ID, RefundRef: "re_1"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderRefunded, r.Order.State)
	assert.Equal(t, "re_1", r.Order.RefundRef)
	refunds, err = e.s.PendingRefunds(10)
	require.NoError(t, err)
	assert.Empty(t, refunds)
}

func TestCheckoutRejectsBadSteps(t *testing.T) {
	e := newCheckoutEnv(t)
	h := e.hold("u1", "A-1-1")
	for _, c := range []Command{
		&CheckoutBegin{Hold: h.ID, Buyer: "u1", LeaseMs: 10},
		&CheckoutBegin{Hold: h.ID, Buyer: "u1", LeaseMs: boxoffice.CheckoutLeaseMaxMs + 1},
		&CheckoutComplete{Order: "o_0.1.0", ChargeRef: ""},
		&RefundDone{Order: "o_0.1.0", RefundRef: ""},
	} {
		assert.Equal(t, boxoffice.CodeInvalidArgument, boxoffice.CodeOf(e.one(c).Err), "%#v", c)
	}
	assert.Equal(t, boxoffice.CodeForbidden, boxoffice.CodeOf(e.one(&CheckoutBegin{Hold: h.ID, Buyer: "u2", LeaseMs: 5000}).Err))
	for _, c := range []Command{
		&CheckoutComplete{Order: "o_0.1.0", ChargeRef: "pi"},
		&CheckoutFail{Order: "o_0.1.0"},
		&RefundDone{Order: "o_0.1.0", RefundRef: "re"},
	} {
		assert.Equal(t, boxoffice.CodeOrderNotFound, boxoffice.CodeOf(e.one(c).Err), "%#v", c)
	}
}

// A checkout failed because no charge was found may still be charged by a
// slow gateway: it is watched, and a late CheckoutComplete makes the charge
// due for refund and ends the watch.
func TestFailedCheckoutIsWatchedForALateCharge(t *testing.T) {
	e := newCheckoutEnv(t)
	h := e.hold("u1", "A-1-1")
	o := e.begin(h, 30_000)
	r := e.one(&CheckoutFail{Order: o.ID, Reason: "no charge found", VerifyMs: 600_000})
	require.NoError(t, r.Err)
	w, err := e.s.PendingVerifications(10)
	require.NoError(t, err)
	require.Len(t, w, 1)
	assert.Equal(t, o.ID, w[0].Order.ID)
	assert.Equal(t, e.now+600_000, w[0].UntilMs)

	r = e.one(&CheckoutComplete{Order: o.ID, ChargeRef: "pi_late"})
	require.NoError(t, r.Err)
	assert.Equal(t, boxoffice.OrderFailed, r.Order.State)
	w, err = e.s.PendingVerifications(10)
	require.NoError(t, err)
	assert.Empty(t, w, "the late charge ended the watch")
	refunds, err := e.s.PendingRefunds(10)
	require.NoError(t, err)
	require.Len(t, refunds, 1)

	// Without a late charge, the leader ends the watch.
	h2 := e.hold("u2", "A-1-2")
	o2 := e.begin(h2, 30_000)
	require.NoError(t, e.one(&CheckoutFail{Order: o2.ID, Reason: "no charge found", VerifyMs: 1000}).Err)
	require.NoError(t, e.one(&VerifyDone{Order: o2.ID}).Err)
	w, err = e.s.PendingVerifications(10)
	require.NoError(t, err)
	assert.Empty(t, w)
	assert.Equal(t, boxoffice.CodeInvalidArgument, boxoffice.CodeOf(e.one(&CheckoutFail{Order: o2.ID, VerifyMs: -1}).Err))
}
