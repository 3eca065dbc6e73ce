package fsm

import (
	"fmt"

	"boxoffice"
)

// The checkout saga, as the state machine sees it. Each step is a command:
//
//	CheckoutBegin     hold active → checking-out; order pending; seats taken until the lease ends
//	CheckoutComplete  order pending → paid, seats sold        (or → failed + refund due, if the
//	                                                           hold no longer owns its seats)
//	CheckoutFail      order pending → failed, hold active again
//	RefundDone        refund due → order refunded
//
// The payment package drives the steps on the leader and resolves, after a
// leader change, every checkout and refund still in flight (the 'k' and 'r'
// indexes list them).

func (a *applier) checkoutBegin(c *CheckoutBegin) (Result, error) {
	if c.LeaseMs < 1000 || c.LeaseMs > boxoffice.CheckoutLeaseMaxMs {
		return reject(boxoffice.CodeInvalidArgument, "checkout lease must be 1 s..%d ms", boxoffice.CheckoutLeaseMaxMs)
	}
	if len(c.PaymentMethod) > boxoffice.IDLenMax {
		return reject(boxoffice.CodeInvalidArgument, "payment method is longer than %d bytes", boxoffice.IDLenMax)
	}
	h, rej, err := a.activeHold(c.Hold, c.Buyer)
	if err != nil || rej != nil {
		return Result{Err: errOrNil(rej)}, err
	}
	ei, err := a.mustEvent(h.Event, h.ID)
	if err != nil {
		return Result{}, err
	}
	o := &boxoffice.Order{
		ID:            a.newID("o"),
		Event:         h.Event,
		Hold:          h.ID,
		Buyer:         h.Buyer,
		Seats:         h.Seats,
		CreatedAtMs:   a.nowMs,
		State:         boxoffice.OrderPending,
		PaymentMethod: c.PaymentMethod,
		LeaseUntilMs:  a.nowMs + c.LeaseMs,
	}
	// The seats stay taken while the charge is in flight, even past the
	// hold's own expiry: until the lease ends.
	taken := max(h.ExpiresAtMs, o.LeaseUntilMs)
	seat := encodeSeat(seatRec{state: boxoffice.SeatHeld, owner: h.ID, expiresAtMs: taken})
	for _, id := range h.Seats {
		n, ok := ei.layout.Index(id)
		if !ok {
			return Result{}, fmt.Errorf("seat %q of hold %q is not in event %q", id, h.ID, h.Event)
		}
		cat, _, _ := ei.layout.Section(n)
		price, _ := ei.ev.Category(cat.Category)
		o.AmountCents += price.PriceCents
		if err := a.set(seatKey(h.Event, n), seat); err != nil {
			return Result{}, err
		}
	}
	// The prices the amount was computed from: the seats' sale counts at
	// these, whenever the charge completes.
	if err := a.putOrderPrices(ei, o); err != nil {
		return Result{}, err
	}
	// Out of the expiry index: the sweep ends active holds only. The buyer's
	// record counts the seats until the lease ends.
	if err := a.del(expiryKey(h.ExpiresAtMs, h.ID)); err != nil {
		return Result{}, err
	}
	rec, err := a.buyer(h.Event, h.Buyer)
	if err != nil {
		return Result{}, err
	}
	rec.setHold(buyerHold{id: h.ID, expiresAtMs: taken, seats: len(h.Seats)})
	if err := a.putBuyer(h.Event, h.Buyer, rec); err != nil {
		return Result{}, err
	}
	h.State = boxoffice.HoldCheckingOut
	h.Order = o.ID
	if err := a.set(key(tagHold, h.ID), encodeHold(h)); err != nil {
		return Result{}, err
	}
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	if err := a.set(key(tagOrdersBy, o.Buyer, o.ID), nil); err != nil {
		return Result{}, err
	}
	if err := a.set(key(tagCheckout, o.ID), nil); err != nil {
		return Result{}, err
	}
	return Result{Order: o, Hold: h}, nil
}

func (a *applier) putOrder(o *boxoffice.Order) error {
	return a.set(key(tagOrder, o.ID), encodeOrder(o))
}

// checkoutOrder loads the order and hold of a checkout step.
func (a *applier) checkoutOrder(id string) (*boxoffice.Order, *boxoffice.Hold, *eventInfo, error) {
	o, err := a.getOrder(id)
	if err != nil || o == nil {
		return nil, nil, nil, err
	}
	h, err := a.getHold(o.Hold)
	if err != nil {
		return nil, nil, nil, err
	}
	if h == nil {
		return nil, nil, nil, fmt.Errorf("hold %q of order %q is missing", o.Hold, o.ID)
	}
	ei, err := a.mustEvent(o.Event, o.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	return o, h, ei, nil
}

func (a *applier) checkoutComplete(c *CheckoutComplete) (Result, error) {
	if c.ChargeRef == "" || len(c.ChargeRef) > 255 {
		return reject(boxoffice.CodeInvalidArgument, "a charge reference of 1..255 bytes is required")
	}
	o, h, ei, err := a.checkoutOrder(c.Order)
	if err != nil {
		return Result{}, err
	}
	if o == nil {
		return reject(boxoffice.CodeOrderNotFound, "order %q", c.Order)
	}
	switch {
	case o.State == boxoffice.OrderPaid && o.PaymentRef == c.ChargeRef:
		return Result{Order: o, Hold: h}, nil // told twice: nothing more to do
	case o.State == boxoffice.OrderPending:
	case o.PaymentRef == "" && o.State == boxoffice.OrderFailed:
		// Failed, yet charged after all: the money goes back.
		return a.refundDue(o, h, c.ChargeRef, "charged after the checkout failed")
	default:
		// A second charge for one order cannot happen with one key; if
		// it ever did, it is refunded, never kept.
		return reject(boxoffice.CodeOrderNotActive, "order %q is %s with charge %q, not %q", o.ID, o.State, o.PaymentRef, c.ChargeRef)
	}
	// Does the hold still own every seat? It does unless the lease passed
	// and another hold took one.
	idx := make([]int, len(o.Seats))
	owned := true
	for i, id := range o.Seats {
		n, ok := ei.layout.Index(id)
		if !ok {
			return Result{}, fmt.Errorf("seat %q of order %q is not in event %q", id, o.ID, o.Event)
		}
		idx[i] = n
		s, ok, err := a.seat(o.Event, n)
		if err != nil {
			return Result{}, err
		}
		owned = owned && ok && s.state == boxoffice.SeatHeld && s.owner == h.ID
	}
	if err := a.del(key(tagCheckout, o.ID)); err != nil {
		return Result{}, err
	}
	if !owned {
		if err := a.freeSeats(o.Event, h.ID, o.Seats); err != nil {
			return Result{}, err
		}
		if err := a.endHold(h, boxoffice.HoldExpired); err != nil {
			return Result{}, err
		}
		return a.refundDue(o, h, c.ChargeRef, "the checkout's lease ended and its seats went to others")
	}
	sold := encodeSeat(seatRec{state: boxoffice.SeatSold, owner: o.ID})
	for _, n := range idx {
		if err := a.set(seatKey(o.Event, n), sold); err != nil {
			return Result{}, err
		}
	}
	if err := a.endHold(h, boxoffice.HoldPurchased); err != nil {
		return Result{}, err
	}
	if err := a.addSold(o.Event, o.Buyer, len(o.Seats)); err != nil {
		return Result{}, err
	}
	o.State = boxoffice.OrderPaid
	o.PaymentRef = c.ChargeRef
	a.countSale(o)
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	return Result{Order: o, Hold: h}, nil
}

// VerifyMsMax bounds the watch for a late charge.
const VerifyMsMax = 24 * 60 * 60 * 1000

// refundDue fails an order that was charged but cannot be sold, and records
// that its charge must be refunded.
func (a *applier) refundDue(o *boxoffice.Order, h *boxoffice.Hold, chargeRef, reason string) (Result, error) {
	if err := a.del(key(tagVerify, o.ID)); err != nil { // the late charge arrived
		return Result{}, err
	}
	o.State = boxoffice.OrderFailed
	o.PaymentRef = chargeRef
	o.FailReason = reason
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	if err := a.set(key(tagRefund, o.ID), nil); err != nil {
		return Result{}, err
	}
	return Result{Order: o, Hold: h}, nil
}

func (a *applier) checkoutFail(c *CheckoutFail) (Result, error) {
	if len(c.Reason) > boxoffice.NameLenMax {
		return reject(boxoffice.CodeInvalidArgument, "reason is longer than %d bytes", boxoffice.NameLenMax)
	}
	if c.VerifyMs < 0 || c.VerifyMs > VerifyMsMax {
		return reject(boxoffice.CodeInvalidArgument, "verify window must be 0..%d ms", VerifyMsMax)
	}
	o, h, ei, err := a.checkoutOrder(c.Order)
	if err != nil {
		return Result{}, err
	}
	if o == nil {
		return reject(boxoffice.CodeOrderNotFound, "order %q", c.Order)
	}
	switch o.State {
	case boxoffice.OrderFailed:
		return Result{Order: o, Hold: h}, nil // told twice
	case boxoffice.OrderPending:
	default:
		return reject(boxoffice.CodeOrderNotActive, "order %q is %s: a checkout that charged cannot fail", o.ID, o.State)
	}
	if err := a.del(key(tagCheckout, o.ID)); err != nil {
		return Result{}, err
	}
	if c.VerifyMs > 0 {
		w := writer{}
		w.varint(a.nowMs + c.VerifyMs)
		if err := a.set(key(tagVerify, o.ID), w.b); err != nil {
			return Result{}, err
		}
	}
	o.State = boxoffice.OrderFailed
	o.FailReason = c.Reason
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	// The hold is active again with its own expiry, on the seats it still
	// owns (all of them, unless the lease ended and others took some: then
	// it gives up the rest too).
	owned := true
	for _, id := range h.Seats {
		n, _ := ei.layout.Index(id)
		s, ok, err := a.seat(h.Event, n)
		if err != nil {
			return Result{}, err
		}
		owned = owned && ok && s.state == boxoffice.SeatHeld && s.owner == h.ID
	}
	h.Order = ""
	if !owned || h.ExpiresAtMs <= a.nowMs {
		if err := a.freeSeats(h.Event, h.ID, h.Seats); err != nil {
			return Result{}, err
		}
		if err := a.endHold(h, boxoffice.HoldExpired); err != nil {
			return Result{}, err
		}
		return Result{Order: o, Hold: h}, nil
	}
	seat := encodeSeat(seatRec{state: boxoffice.SeatHeld, owner: h.ID, expiresAtMs: h.ExpiresAtMs})
	for _, id := range h.Seats {
		n, _ := ei.layout.Index(id)
		if err := a.set(seatKey(h.Event, n), seat); err != nil {
			return Result{}, err
		}
	}
	h.State = boxoffice.HoldActive
	if err := a.putActiveHold(h); err != nil {
		return Result{}, err
	}
	return Result{Order: o, Hold: h}, nil
}

func (a *applier) refundDone(c *RefundDone) (Result, error) {
	if c.RefundRef == "" || len(c.RefundRef) > 255 {
		return reject(boxoffice.CodeInvalidArgument, "a refund reference of 1..255 bytes is required")
	}
	o, err := a.getOrder(c.Order)
	if err != nil {
		return Result{}, err
	}
	if o == nil {
		return reject(boxoffice.CodeOrderNotFound, "order %q", c.Order)
	}
	if o.State == boxoffice.OrderRefunded {
		return Result{Order: o}, nil // told twice
	}
	_, due, err := a.get(key(tagRefund, o.ID))
	if err != nil {
		return Result{}, err
	}
	if !due {
		return reject(boxoffice.CodeOrderNotActive, "order %q is %s: no refund is due", o.ID, o.State)
	}
	if err := a.del(key(tagRefund, o.ID)); err != nil {
		return Result{}, err
	}
	o.State = boxoffice.OrderRefunded
	o.RefundRef = c.RefundRef
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	return Result{Order: o}, nil
}
