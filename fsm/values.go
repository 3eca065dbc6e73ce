package fsm

import (
	"fmt"
	"slices"
	"strings"

	"boxoffice"
)

// Values stored in Pebble. Each starts with a format version byte so that a
// later release can read what an earlier one wrote.
const valueVersion uint8 = 1

// seatRec is a taken seat. A seat with no record is free.
type seatRec struct {
	state       boxoffice.SeatState // SeatHeld or SeatSold
	owner       string              // hold id or order id
	expiresAtMs int64               // for a held seat: its hold's expiry
}

// takenAt reports whether the seat is still taken at now: sold, or held by a
// hold that has not expired.
func (s seatRec) takenAt(nowMs int64) bool {
	return s.state == boxoffice.SeatSold || (s.state == boxoffice.SeatHeld && s.expiresAtMs > nowMs)
}

func encodeSeat(s seatRec) []byte {
	w := writer{b: make([]byte, 0, 8+len(s.owner))}
	w.u8(valueVersion)
	w.u8(uint8(s.state))
	w.str(s.owner)
	w.varint(s.expiresAtMs)
	return w.b
}

func decodeSeat(b []byte) (seatRec, error) {
	r := reader{b: b}
	var s seatRec
	if v := r.u8(); v != valueVersion {
		return s, fmt.Errorf("seat value version %d: %w", v, errMalformed)
	}
	s.state = boxoffice.SeatState(r.u8())
	s.owner = r.str()
	s.expiresAtMs = r.varint()
	return s, r.done("seat")
}

// decodeSeatState is decodeSeat without the owner, allocating nothing.
func decodeSeatState(b []byte) (state boxoffice.SeatState, expiresAtMs int64, err error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return 0, 0, fmt.Errorf("seat value version %d: %w", v, errMalformed)
	}
	state = boxoffice.SeatState(r.u8())
	r.bytes()
	expiresAtMs = r.varint()
	return state, expiresAtMs, r.done("seat")
}

func encodeHold(h *boxoffice.Hold) []byte {
	w := writer{b: make([]byte, 0, 64)}
	w.u8(valueVersion)
	w.str(h.ID)
	w.str(h.Event)
	w.str(h.Buyer)
	w.strs(h.Seats)
	w.varint(h.CreatedAtMs)
	w.varint(h.ExpiresAtMs)
	w.u8(uint8(h.State))
	w.str(h.Order)
	return w.b
}

func decodeHold(b []byte) (*boxoffice.Hold, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, fmt.Errorf("hold value version %d: %w", v, errMalformed)
	}
	h := &boxoffice.Hold{}
	h.ID = r.str()
	h.Event = r.str()
	h.Buyer = r.str()
	h.Seats = r.strs()
	h.CreatedAtMs = r.varint()
	h.ExpiresAtMs = r.varint()
	h.State = boxoffice.HoldState(r.u8())
	h.Order = r.str()
	return h, r.done("hold")
}

func encodeOrder(o *boxoffice.Order) []byte {
	w := writer{b: make([]byte, 0, 64)}
	w.u8(valueVersion)
	w.str(o.ID)
	w.str(o.Event)
	w.str(o.Hold)
	w.str(o.Buyer)
	w.strs(o.Seats)
	w.varint(o.AmountCents)
	w.str(o.PaymentRef)
	w.varint(o.CreatedAtMs)
	w.u8(uint8(o.State))
	w.str(o.PaymentMethod)
	w.varint(o.LeaseUntilMs)
	w.str(o.FailReason)
	w.str(o.RefundRef)
	return w.b
}

func decodeOrder(b []byte) (*boxoffice.Order, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, fmt.Errorf("order value version %d: %w", v, errMalformed)
	}
	o := &boxoffice.Order{}
	o.ID = r.str()
	o.Event = r.str()
	o.Hold = r.str()
	o.Buyer = r.str()
	o.Seats = r.strs()
	o.AmountCents = r.varint()
	o.PaymentRef = r.str()
	o.CreatedAtMs = r.varint()
	o.State = boxoffice.OrderState(r.u8())
	o.PaymentMethod = r.str()
	o.LeaseUntilMs = r.varint()
	o.FailReason = r.str()
	o.RefundRef = r.str()
	return o, r.done("order")
}

func encodeEventValue(e *boxoffice.Event) []byte {
	w := writer{b: make([]byte, 0, 128)}
	w.u8(valueVersion)
	encodeEvent(&w, e)
	return w.b
}

func decodeEventValue(b []byte) (*boxoffice.Event, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, fmt.Errorf("event value version %d: %w", v, errMalformed)
	}
	e := &boxoffice.Event{}
	decodeEvent(&r, e)
	return e, r.done("event")
}

// buyerRec is what the per-buyer cap needs of one buyer in one event: the
// seats bought, and the holds still active (not released, purchased or
// swept; some may have expired). One record per buyer and event, read and
// rewritten by each of the buyer's commands, so that the cap costs one read.
type buyerRec struct {
	sold  int
	holds []buyerHold // in hold id order
}

type buyerHold struct {
	id          string
	expiresAtMs int64
	seats       int
}

// setHold adds or replaces the entry of a hold.
func (r *buyerRec) setHold(h buyerHold) {
	i, found := slices.BinarySearchFunc(r.holds, h.id, func(e buyerHold, id string) int { return strings.Compare(e.id, id) })
	if found {
		r.holds[i] = h
		return
	}
	r.holds = slices.Insert(r.holds, i, h)
}

func (r *buyerRec) dropHold(id string) {
	r.holds = slices.DeleteFunc(r.holds, func(e buyerHold) bool { return e.id == id })
}

// buyerHoldsMax bounds the active holds decoded from one record.
const buyerHoldsMax = 1 << 16

func encodeBuyerRec(r buyerRec) []byte {
	w := writer{b: make([]byte, 0, 8+len(r.holds)*24)}
	w.u8(valueVersion)
	w.int(r.sold)
	w.uvarint(uint64(len(r.holds)))
	for _, h := range r.holds {
		w.str(h.id)
		w.varint(h.expiresAtMs)
		w.int(h.seats)
	}
	return w.b
}

func decodeBuyerRec(b []byte) (buyerRec, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return buyerRec{}, fmt.Errorf("buyer value version %d: %w", v, errMalformed)
	}
	rec := buyerRec{sold: r.int()}
	rec.holds = make([]buyerHold, r.count(buyerHoldsMax, 3))
	for i := range rec.holds {
		rec.holds[i] = buyerHold{id: r.str(), expiresAtMs: r.varint(), seats: r.int()}
	}
	return rec, r.done("buyer")
}

func encodeNode(n boxoffice.Node) []byte {
	w := writer{}
	w.u8(valueVersion)
	w.str(n.ID)
	w.str(n.RaftAddr)
	w.str(n.HTTPAddr)
	return w.b
}

func decodeNode(b []byte) (boxoffice.Node, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return boxoffice.Node{}, fmt.Errorf("node value version %d: %w", v, errMalformed)
	}
	n := boxoffice.Node{ID: r.str(), RaftAddr: r.str(), HTTPAddr: r.str()}
	return n, r.done("node")
}
