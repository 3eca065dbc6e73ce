package fsm

import (
	"fmt"
	"slices"

	"boxoffice"
)

func (a *applier) extendHold(c *ExtendHold) (Result, error) {
	h, rej, err := a.activeHold(c.Hold, c.Buyer)
	if err != nil || rej != nil {
		return Result{Err: errOrNil(rej)}, err
	}
	ei, err := a.mustEvent(h.Event, h.ID)
	if err != nil {
		return Result{}, err
	}
	ttl := ei.ev.Limits.HoldTTLSeconds
	if c.TTLSeconds > 0 && c.TTLSeconds < ttl {
		ttl = c.TTLSeconds
	}
	expires := a.nowMs + int64(ttl)*1000
	limit := h.CreatedAtMs + int64(boxoffice.HoldLifetimeFactor*ei.ev.Limits.HoldTTLSeconds)*1000
	if expires <= h.ExpiresAtMs {
		return Result{Hold: h}, nil // already expires later: nothing to do
	}
	if expires > limit {
		return reject(boxoffice.CodeHoldExtendLimit, "hold %q may live until %d ms at most (%d times the event's hold TTL)", h.ID, limit, boxoffice.HoldLifetimeFactor)
	}
	seat := encodeSeat(seatRec{state: boxoffice.SeatHeld, owner: h.ID, expiresAtMs: expires})
	for _, id := range h.Seats {
		n, ok := ei.layout.Index(id)
		if !ok {
			return Result{}, fmt.Errorf("seat %q of hold %q is not in event %q", id, h.ID, h.Event)
		}
		if err := a.set(seatKey(h.Event, n), seat); err != nil {
			return Result{}, err
		}
	}
	if err := a.del(expiryKey(h.ExpiresAtMs, h.ID)); err != nil {
		return Result{}, err
	}
	h.ExpiresAtMs = expires
	if err := a.putActiveHold(h); err != nil {
		return Result{}, err
	}
	return Result{Hold: h}, nil
}

func (a *applier) getOrder(id string) (*boxoffice.Order, error) {
	v, ok, err := a.get(key(tagOrder, id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeOrder(v)
}

// paidOrder loads an order that the buyer may change: it exists, belongs to
// the buyer (when one is named) and is paid.
func (a *applier) paidOrder(id, buyer string) (*boxoffice.Order, *boxoffice.Error, error) {
	o, err := a.getOrder(id)
	switch {
	case err != nil:
		return nil, nil, err
	case o == nil:
		return nil, &boxoffice.Error{Code: boxoffice.CodeOrderNotFound, Detail: fmt.Sprintf("order %q", id)}, nil
	case buyer != "" && o.Buyer != buyer:
		return nil, &boxoffice.Error{Code: boxoffice.CodeForbidden, Detail: fmt.Sprintf("order %q belongs to another buyer", id)}, nil
	case o.State != boxoffice.OrderPaid:
		return nil, &boxoffice.Error{Code: boxoffice.CodeOrderNotActive, Detail: fmt.Sprintf("order %q is %s", id, o.State)}, nil
	}
	return o, nil, nil
}

func (a *applier) cancelOrder(c *CancelOrder) (Result, error) {
	o, rej, err := a.paidOrder(c.Order, c.Buyer)
	if err != nil || rej != nil {
		return Result{Err: errOrNil(rej)}, err
	}
	if err := a.freeSeats(o.Event, o.ID, o.Seats); err != nil {
		return Result{}, err
	}
	if err := a.addSold(o.Event, o.Buyer, -len(o.Seats)); err != nil {
		return Result{}, err
	}
	o.State = boxoffice.OrderCancelled
	if err := a.set(key(tagOrder, o.ID), encodeOrder(o)); err != nil {
		return Result{}, err
	}
	if o.PaymentRef != "" {
		// The buyer paid: the refund is due, and the leader makes it.
		if err := a.set(key(tagRefund, o.ID), nil); err != nil {
			return Result{}, err
		}
	}
	return Result{Order: o}, nil
}

// addSold changes the count of seats a buyer bought for an event.
func (a *applier) addSold(event, buyer string, delta int) error {
	rec, err := a.buyer(event, buyer)
	if err != nil {
		return err
	}
	if rec.sold+delta < 0 {
		return fmt.Errorf("buyer %q of event %q would own %d seats", buyer, event, rec.sold+delta)
	}
	rec.sold += delta
	return a.putBuyer(event, buyer, rec)
}

func (a *applier) exchange(c *Exchange) (Result, error) {
	o, rej, err := a.paidOrder(c.Order, c.Buyer)
	if err != nil || rej != nil {
		return Result{Err: errOrNil(rej)}, err
	}
	ei, err := a.mustEvent(o.Event, o.ID)
	if err != nil {
		return Result{}, err
	}
	if len(c.Release) != len(c.Take) {
		return reject(boxoffice.CodeInvalidArgument, "release %d seats and take %d: the counts must match", len(c.Release), len(c.Take))
	}
	for i, id := range c.Release {
		if !slices.Contains(o.Seats, id) {
			return reject(boxoffice.CodeInvalidArgument, "seat %q is not in order %q", id, o.ID)
		}
		if slices.Contains(c.Release[:i], id) {
			return reject(boxoffice.CodeInvalidArgument, "seat %q given twice", id)
		}
	}
	take, err := checkSeats(ei.layout, c.Take)
	if err != nil {
		return Result{Err: err}, nil
	}
	if rej := noPlaces(ei.layout, c.Take, take); rej != nil {
		return Result{Err: rej}, nil
	}
	catOf := func(n int) string { s, _, _ := ei.layout.Section(n); return s.Category }
	var relCats, takeCats []string
	for _, id := range c.Release {
		n, _ := ei.layout.Index(id)
		relCats = append(relCats, catOf(n))
	}
	for i, n := range take {
		if slices.Contains(o.Seats, c.Take[i]) {
			return reject(boxoffice.CodeInvalidArgument, "seat %q is already in order %q", c.Take[i], o.ID)
		}
		s, ok, err := a.seat(o.Event, n)
		if err != nil {
			return Result{}, err
		}
		if ok && s.takenAt(a.nowMs) {
			return reject(boxoffice.CodeSeatUnavailable, "seat %q is %s", c.Take[i], s.state)
		}
		takeCats = append(takeCats, catOf(n))
	}
	slices.Sort(relCats)
	slices.Sort(takeCats)
	if !slices.Equal(relCats, takeCats) {
		return reject(boxoffice.CodeInvalidArgument, "an exchange keeps categories: release %v, take %v", relCats, takeCats)
	}

	if err := a.freeSeats(o.Event, o.ID, c.Release); err != nil {
		return Result{}, err
	}
	sold := encodeSeat(seatRec{state: boxoffice.SeatSold, owner: o.ID})
	for _, n := range take {
		if err := a.set(seatKey(o.Event, n), sold); err != nil {
			return Result{}, err
		}
	}
	var seats []string
	for _, id := range o.Seats {
		if !slices.Contains(c.Release, id) {
			seats = append(seats, id)
		}
	}
	o.Seats = append(seats, c.Take...)
	if err := a.set(key(tagOrder, o.ID), encodeOrder(o)); err != nil {
		return Result{}, err
	}
	return Result{Order: o}, nil
}
