package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// ExpireMax bounds the holds one Expire command sweeps.
const ExpireMax = 10_000

// applier applies the entries of one ApplyEntries call into one indexed
// batch, which reads its own writes: a command sees every earlier command of
// the same batch.
type applier struct {
	s       *Store
	b       *pebble.Batch
	nowMs   int64
	applied uint64
	index   uint64 // entry being applied
	pos     int    // command position in the entry
	events  map[string]*eventInfo
	pending map[string]cachedValue     // this batch's writes of cacheable keys
	changes []SeatChange               // this batch's seat writes, for the feed
	counts  map[countKey]*sectionCount // this batch's changes to report counters (report.go)
	minutes map[countKey]*sectionCount // this batch's sales, by minute
	prices  map[string][]catPrice      // orders' unit prices read or written in this batch
	seatEI  *eventInfo                 // the event of the last seat counted
}

func (a *applier) applyEntry(e Entry) ([]Result, error) {
	stamp, cmds, err := DecodeEntry(e.Data)
	if err != nil {
		return nil, err
	}
	// The clock never goes backwards, whatever a new leader's clock says.
	a.nowMs = max(a.nowMs, stamp)
	a.index = e.Index
	results := make([]Result, len(cmds))
	for i, raw := range cmds {
		c, err := DecodeCommand(raw)
		if err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		a.pos = i
		res, err := a.apply(c)
		if err != nil {
			return nil, fmt.Errorf("command %d (type %d): %w", i, c.Type(), err)
		}
		results[i] = res
	}
	return results, nil
}

// apply runs one command. A rejection goes into Result.Err and leaves the
// batch untouched (every check precedes every write); a returned error is a
// storage failure or a broken invariant.
func (a *applier) apply(c Command) (Result, error) {
	switch c := c.(type) {
	case *CreateEvent:
		return a.createEvent(c)
	case *UpdateEvent:
		return a.updateEvent(c)
	case *Hold:
		return a.hold(c)
	case *HoldArea:
		return a.holdArea(c)
	case *PutVenue:
		return a.putVenue(c)
	case *Release:
		return a.release(c)
	case *Purchase:
		return a.purchase(c)
	case *Expire:
		return a.expire(c)
	case *PutNode:
		return Result{}, a.set(key(tagNode, c.Node.ID), encodeNode(c.Node))
	case *RemoveNode:
		return Result{}, a.del(key(tagNode, c.ID))
	case *ExtendHold:
		return a.extendHold(c)
	case *CancelOrder:
		return a.cancelOrder(c)
	case *Exchange:
		return a.exchange(c)
	case *Idempotent:
		return a.idempotent(c)
	case *CheckoutBegin:
		return a.checkoutBegin(c)
	case *CheckoutComplete:
		return a.checkoutComplete(c)
	case *CheckoutFail:
		return a.checkoutFail(c)
	case *RefundDone:
		return a.refundDone(c)
	case *VerifyDone:
		return Result{}, a.del(key(tagVerify, c.Order))
	case *SetGrant:
		return a.setGrant(c)
	case *Authorized:
		return a.authorized(c)
	case *ProtectSale:
		return a.protectSale(c)
	case *JoinQueue:
		return a.joinQueue(c)
	case *OpenQueue:
		return a.openQueue(c)
	case *AdvanceAdmission:
		return a.advanceAdmission(c)
	}
	return Result{}, fmt.Errorf("no handler for command type %d", c.Type())
}

// newID derives a hold or order id from the log: kind, shard, index and
// position in the entry. Every replica derives the same id; the shard in it
// lets any node route a request by id alone.
func (a *applier) newID(kind string) string {
	return kind + "_" + strconv.Itoa(a.s.cfg.Shard) + "." + strconv.FormatUint(a.index, 10) + "." + strconv.Itoa(a.pos)
}

func reject(code boxoffice.Code, format string, args ...any) (Result, error) {
	return Result{Err: boxoffice.Errorf(code, format, args...)}, nil
}

// get reads a key: from this batch's writes, the store's value cache, or
// Pebble (through the batch). The value returned must not be modified.
func (a *applier) get(k []byte) ([]byte, bool, error) {
	cacheable := cacheableKey(k)
	if cacheable {
		if v, ok := a.pending[string(k)]; ok {
			return v.v, v.ok, nil
		}
		if p := completePrefix(k); p != nil {
			// Committed state only: this batch's writes are in pending.
			if err := a.s.kv.load(a.s.db, p); err != nil {
				return nil, false, err
			}
		}
		if v, ok := a.s.kv.get(k); ok {
			return v.v, v.ok, nil
		}
	}
	v, closer, err := a.b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		if cacheable {
			// No write of this batch touched k (pending would hold it), so
			// this is the committed state.
			a.s.kv.put(k, cachedValue{})
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	v = slices.Clone(v)
	if cacheable {
		a.s.kv.put(k, cachedValue{v: v, ok: true})
	}
	return v, true, nil
}

// set and del write through the batch; every write of the applier goes
// through them, so that pending mirrors the batch for cacheable keys.
func (a *applier) set(k, v []byte) error {
	if k[0] == tagSeat {
		state, expiresAtMs, err := decodeSeatState(v)
		if err != nil {
			return fmt.Errorf("seat value written: %w", err)
		}
		if err := a.seatCounted(k, v); err != nil {
			return err
		}
		a.seatChanged(k, state, expiresAtMs)
	}
	if cacheableKey(k) {
		a.pending[string(k)] = cachedValue{v: v, ok: true}
	}
	return a.b.Set(k, v, nil)
}

func (a *applier) del(k []byte) error {
	if k[0] == tagSeat {
		if err := a.seatCounted(k, nil); err != nil {
			return err
		}
		a.seatChanged(k, boxoffice.SeatFree, 0)
	}
	if cacheableKey(k) {
		a.pending[string(k)] = cachedValue{}
	}
	return a.b.Delete(k, nil)
}

// seatCounted adds a seat write to the report's counters: it reads the
// seat's record before the write (from this batch, the cache, or Pebble;
// the command has mostly just read it).
func (a *applier) seatCounted(k, next []byte) error {
	prev, ok, err := a.get(k)
	if err != nil {
		return err
	}
	if !ok {
		prev = nil
	}
	return a.countSeat(k, prev, next)
}

// seatChanged records a seat write for the change feed. Every seat write
// goes through set or del, so the feed misses none. It only appends to a
// slice that the store publishes after the commit: nothing in apply reads
// it back.
func (a *applier) seatChanged(k []byte, state boxoffice.SeatState, expiresAtMs int64) {
	ev := k[1 : len(k)-5] // seatKey: tag, event, 0, u32
	event := ""
	if n := len(a.changes); n > 0 && a.changes[n-1].Event == string(ev) {
		event = a.changes[n-1].Event // one string for a run of one event's seats
	} else {
		event = string(ev)
	}
	if a.changes == nil {
		a.changes = make([]SeatChange, 0, 16) // a hold's seats without regrowing
	}
	a.changes = append(a.changes, SeatChange{Event: event, Seat: int32(seatIndexOf(k)), State: state, ExpiresAtMs: expiresAtMs})
}

func (a *applier) event(id string) (*eventInfo, error) {
	if ei := a.events[id]; ei != nil {
		return ei, nil
	}
	if ei := a.s.events.get(id); ei != nil {
		return ei, nil
	}
	v, ok, err := a.get(key(tagEvent, id))
	if err != nil || !ok {
		return nil, err
	}
	ev, err := decodeEventValue(v)
	if err != nil {
		return nil, err
	}
	ei := newEventInfo(ev)
	a.s.events.put(ei)
	return ei, nil
}

// mustEvent loads the event of a hold or order (named by owner, for the
// error). Events are never deleted, so a missing one is a broken invariant.
func (a *applier) mustEvent(id, owner string) (*eventInfo, error) {
	ei, err := a.event(id)
	if err == nil && ei == nil {
		err = fmt.Errorf("event %q of %s is missing", id, owner)
	}
	return ei, err
}

func (a *applier) putEvent(ev *boxoffice.Event) error {
	if a.events == nil {
		a.events = make(map[string]*eventInfo)
	}
	a.events[ev.ID] = newEventInfo(ev)
	a.seatEI = nil
	return a.set(key(tagEvent, ev.ID), encodeEventValue(ev))
}

func (a *applier) createEvent(c *CreateEvent) (Result, error) {
	ev := c.Event
	if err := ev.Validate(); err != nil {
		return Result{Err: err}, nil
	}
	if ei, err := a.event(ev.ID); err != nil {
		return Result{}, err
	} else if ei != nil {
		return reject(boxoffice.CodeEventExists, "event %q exists", ev.ID)
	}
	if err := a.putEvent(&ev); err != nil {
		return Result{}, err
	}
	return Result{Event: &ev}, nil
}

func (a *applier) updateEvent(c *UpdateEvent) (Result, error) {
	ev := c.Event
	if err := ev.Validate(); err != nil {
		return Result{Err: err}, nil
	}
	ei, err := a.event(ev.ID)
	if err != nil {
		return Result{}, err
	}
	if ei == nil {
		return reject(boxoffice.CodeEventNotFound, "event %q", ev.ID)
	}
	if c.Base != nil && !bytes.Equal(c.Base, EventHash(ei.ev)) {
		return reject(boxoffice.CodeConflict, "event %q changed since the update read it", ev.ID)
	}
	if !keepsLayout(ei.ev.Venue, ev.Venue) {
		taken, err := a.layoutInUse(ev.ID)
		if err != nil {
			return Result{}, err
		}
		if taken {
			return reject(boxoffice.CodeLayoutShrink, "event %q has held or sold seats: sections may only be appended", ev.ID)
		}
		// Nothing is taken: the areas' allocators start afresh.
		if err := a.resetAreas(ev.ID); err != nil {
			return Result{}, err
		}
	}
	ev.Organiser = ei.ev.Organiser
	if err := a.putEvent(&ev); err != nil {
		return Result{}, err
	}
	return Result{Event: &ev}, nil
}

// keepsLayout reports whether every seat and place of the old venue keeps
// its index and id in the new one: sections may be appended while there are
// no areas (areas are numbered after the sections), areas appended while
// the sections stay as they are.
func keepsLayout(old, new boxoffice.Venue) bool {
	eq := func(a, b boxoffice.Section) bool { return a.Equal(b) }
	if len(old.Areas) == 0 && len(new.Areas) == 0 {
		return len(new.Sections) >= len(old.Sections) && slices.EqualFunc(new.Sections[:len(old.Sections)], old.Sections, eq)
	}
	areaEq := func(a, b boxoffice.Area) bool {
		return a.ID == b.ID && a.Category == b.Category && a.Capacity == b.Capacity
	}
	return slices.EqualFunc(new.Sections, old.Sections, eq) &&
		len(new.Areas) >= len(old.Areas) && slices.EqualFunc(new.Areas[:len(old.Areas)], old.Areas, areaEq)
}

// layoutInUse reports whether any seat of the event has a record (held,
// sold, or held by an expired hold not yet swept), or any hold of the event
// is still indexed as active. The second matters for an expired hold whose
// seats a later hold took and released: it has no seat record left, but the
// sweep will still resolve its seat ids in the layout, so the layout must
// not change under it.
func (a *applier) layoutInUse(event string) (bool, error) {
	p := prefix(tagSeat, event)
	it, err := a.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return false, err
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil || found {
		return found, err
	}
	p = prefix(tagBuyer, event)
	it, err = a.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return false, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		rec, err := decodeBuyerRec(it.Value())
		if err != nil {
			return false, err
		}
		if len(rec.holds) > 0 {
			return true, nil
		}
	}
	return false, it.Error()
}

func (a *applier) seat(event string, idx int) (seatRec, bool, error) {
	v, ok, err := a.get(seatKey(event, idx))
	if err != nil || !ok {
		return seatRec{}, false, err
	}
	s, err := decodeSeat(v)
	return s, true, err
}

// checkSeats resolves seat ids to indexes, rejecting an empty or oversized
// list, unknown ids and duplicates.
func checkSeats(l *boxoffice.Layout, seats []string) ([]int, error) {
	if len(seats) == 0 {
		return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "no seats given")
	}
	if len(seats) > boxoffice.SeatsPerHoldMax {
		return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "%d seats, at most %d per hold", len(seats), boxoffice.SeatsPerHoldMax)
	}
	idx := make([]int, len(seats))
	for i, id := range seats {
		n, ok := l.Index(id)
		if !ok {
			return nil, boxoffice.Errorf(boxoffice.CodeSeatNotFound, "seat %q does not exist", id)
		}
		for _, prev := range idx[:i] {
			if prev == n {
				return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "seat %q given twice", id)
			}
		}
		idx[i] = n
	}
	return idx, nil
}

// buyer reads the record of a buyer's holds and purchases in an event.
func (a *applier) buyer(event, buyer string) (buyerRec, error) {
	v, ok, err := a.get(key(tagBuyer, event, buyer))
	if err != nil || !ok {
		return buyerRec{}, err
	}
	return decodeBuyerRec(v)
}

func (a *applier) putBuyer(event, buyer string, rec buyerRec) error {
	if rec.sold == 0 && len(rec.holds) == 0 {
		return a.del(key(tagBuyer, event, buyer))
	}
	return a.set(key(tagBuyer, event, buyer), encodeBuyerRec(rec))
}

// buyerSeats counts the seats a buyer holds (in unexpired holds) or bought
// for an event: the quantity the per-buyer cap limits.
func (a *applier) buyerSeats(event, buyer string) (int, error) {
	rec, err := a.buyer(event, buyer)
	if err != nil {
		return 0, err
	}
	n := rec.sold
	for _, h := range rec.holds {
		if h.expiresAtMs > a.nowMs {
			n += h.seats
		}
	}
	return n, nil
}

func (a *applier) hold(c *Hold) (Result, error) {
	if !boxoffice.ValidID(c.Buyer) {
		return reject(boxoffice.CodeInvalidArgument, "buyer %q is not a valid id", c.Buyer)
	}
	ei, err := a.event(c.Event)
	if err != nil {
		return Result{}, err
	}
	if ei == nil {
		return reject(boxoffice.CodeEventNotFound, "event %q", c.Event)
	}
	idx, err := checkSeats(ei.layout, c.Seats)
	if err != nil {
		return Result{Err: err}, nil
	}
	if rej := noPlaces(ei.layout, c.Seats, idx); rej != nil {
		return Result{Err: rej}, nil
	}
	for i, n := range idx {
		s, ok, err := a.seat(c.Event, n)
		if err != nil {
			return Result{}, err
		}
		if ok && s.takenAt(a.nowMs) {
			return reject(boxoffice.CodeSeatUnavailable, "seat %q is %s", c.Seats[i], s.state)
		}
	}
	return a.takeSeats(ei, c.Buyer, c.Seats, idx, c.TTLSeconds)
}

// noPlaces rejects general-admission places named by id: a hold asks an
// area for a quantity, and the area's allocator picks them.
func noPlaces(l *boxoffice.Layout, seats []string, idx []int) error {
	for i, n := range idx {
		if l.InArea(n) {
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "%q is a general-admission place: ask its area for a quantity instead", seats[i])
		}
	}
	return nil
}

// takeSeats holds free seats (checked by the caller) for buyer, within the
// buyer's cap: the common end of a hold of named seats and of an area hold.
func (a *applier) takeSeats(ei *eventInfo, buyer string, seats []string, idx []int, ttlSeconds int) (Result, error) {
	event := ei.ev.ID
	limit := ei.ev.Limits.MaxSeatsPerBuyer
	have, err := a.buyerSeats(event, buyer)
	if err != nil {
		return Result{}, err
	}
	if have+len(idx) > limit {
		return reject(boxoffice.CodeBuyerLimit, "buyer %q has %d seats of event %q; %d more would pass the limit of %d", buyer, have, event, len(idx), limit)
	}
	// A protected on-sale: the buyer must hold a valid admission.
	q, place, rej, err := a.admissionCheck(event, buyer)
	if err != nil || rej != nil {
		return Result{Err: rej}, err
	}
	ttl := ei.ev.Limits.HoldTTLSeconds
	if ttlSeconds > 0 && ttlSeconds < ttl {
		ttl = ttlSeconds
	}

	h := &boxoffice.Hold{
		ID:          a.newID("h"),
		Event:       event,
		Buyer:       buyer,
		Seats:       slices.Clone(seats),
		CreatedAtMs: a.nowMs,
		ExpiresAtMs: a.nowMs + int64(ttl)*1000,
		State:       boxoffice.HoldActive,
	}
	seat := encodeSeat(seatRec{state: boxoffice.SeatHeld, owner: h.ID, expiresAtMs: h.ExpiresAtMs})
	for _, n := range idx {
		if err := a.set(seatKey(event, n), seat); err != nil {
			return Result{}, err
		}
	}
	if err := a.putActiveHold(h); err != nil {
		return Result{}, err
	}
	if err := a.set(key(tagHoldsBy, h.Buyer, h.ID), nil); err != nil {
		return Result{}, err
	}
	if place != nil {
		if err := a.markHolding(event, buyer, q, place); err != nil {
			return Result{}, err
		}
	}
	return Result{Hold: h}, nil
}

// putActiveHold writes an active hold and its indexes.
func (a *applier) putActiveHold(h *boxoffice.Hold) error {
	if err := a.set(key(tagHold, h.ID), encodeHold(h)); err != nil {
		return err
	}
	rec, err := a.buyer(h.Event, h.Buyer)
	if err != nil {
		return err
	}
	rec.setHold(buyerHold{id: h.ID, expiresAtMs: h.ExpiresAtMs, seats: len(h.Seats)})
	if err := a.putBuyer(h.Event, h.Buyer, rec); err != nil {
		return err
	}
	return a.set(expiryKey(h.ExpiresAtMs, h.ID), nil)
}

// endHold writes a hold that is no longer active and drops its indexes.
func (a *applier) endHold(h *boxoffice.Hold, state boxoffice.HoldState) error {
	rec, err := a.buyer(h.Event, h.Buyer)
	if err != nil {
		return err
	}
	rec.dropHold(h.ID)
	if err := a.putBuyer(h.Event, h.Buyer, rec); err != nil {
		return err
	}
	if err := a.del(expiryKey(h.ExpiresAtMs, h.ID)); err != nil {
		return err
	}
	h.State = state
	return a.set(key(tagHold, h.ID), encodeHold(h))
}

func (a *applier) getHold(id string) (*boxoffice.Hold, error) {
	v, ok, err := a.get(key(tagHold, id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeHold(v)
}

// activeHold loads a hold that the buyer may change: it exists, belongs to
// the buyer (when one is named), is active and has not expired.
func (a *applier) activeHold(id, buyer string) (*boxoffice.Hold, *boxoffice.Error, error) {
	h, err := a.getHold(id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case h == nil:
		return nil, &boxoffice.Error{Code: boxoffice.CodeHoldNotFound, Detail: fmt.Sprintf("hold %q", id)}, nil
	case buyer != "" && h.Buyer != buyer:
		return nil, &boxoffice.Error{Code: boxoffice.CodeForbidden, Detail: fmt.Sprintf("hold %q belongs to another buyer", id)}, nil
	case h.State == boxoffice.HoldExpired || (h.State == boxoffice.HoldActive && h.ExpiresAtMs <= a.nowMs):
		return nil, &boxoffice.Error{Code: boxoffice.CodeHoldExpired, Detail: fmt.Sprintf("hold %q expired", id)}, nil
	case h.State != boxoffice.HoldActive:
		return nil, &boxoffice.Error{Code: boxoffice.CodeHoldNotActive, Detail: fmt.Sprintf("hold %q is %s", id, h.State)}, nil
	}
	return h, nil, nil
}

// freeSeats deletes the seat records that still belong to owner.
func (a *applier) freeSeats(event, owner string, seats []string) error {
	ei, err := a.mustEvent(event, owner)
	if err != nil {
		return err
	}
	for _, id := range seats {
		n, ok := ei.layout.Index(id)
		if !ok {
			return fmt.Errorf("seat %q of %s is not in event %q", id, owner, event)
		}
		s, ok, err := a.seat(event, n)
		if err != nil {
			return err
		}
		if ok && s.owner == owner {
			if err := a.del(seatKey(event, n)); err != nil {
				return err
			}
			if ei.layout.InArea(n) {
				if err := a.pushFreePlace(ei, n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (a *applier) release(c *Release) (Result, error) {
	h, rej, err := a.activeHold(c.Hold, c.Buyer)
	if err != nil || rej != nil {
		return Result{Err: errOrNil(rej)}, err
	}
	free := h.Seats
	var keep []string
	if len(c.Seats) > 0 {
		for i, id := range c.Seats {
			if !slices.Contains(h.Seats, id) {
				return reject(boxoffice.CodeInvalidArgument, "seat %q is not in hold %q", id, h.ID)
			}
			if slices.Contains(c.Seats[:i], id) {
				return reject(boxoffice.CodeInvalidArgument, "seat %q given twice", id)
			}
		}
		free = c.Seats
		for _, id := range h.Seats {
			if !slices.Contains(c.Seats, id) {
				keep = append(keep, id)
			}
		}
	}
	if err := a.freeSeats(h.Event, h.ID, free); err != nil {
		return Result{}, err
	}
	if len(keep) == 0 {
		if err := a.endHold(h, boxoffice.HoldReleased); err != nil {
			return Result{}, err
		}
		return Result{Hold: h}, nil
	}
	h.Seats = keep
	if err := a.putActiveHold(h); err != nil {
		return Result{}, err
	}
	return Result{Hold: h}, nil
}

func (a *applier) purchase(c *Purchase) (Result, error) {
	h, rej, err := a.activeHold(c.Hold, c.Buyer)
	if err != nil || rej != nil {
		return Result{Err: errOrNil(rej)}, err
	}
	ei, err := a.mustEvent(h.Event, h.ID)
	if err != nil {
		return Result{}, err
	}
	o := &boxoffice.Order{
		ID:          a.newID("o"),
		Event:       h.Event,
		Hold:        h.ID,
		Buyer:       h.Buyer,
		Seats:       h.Seats,
		PaymentRef:  c.PaymentRef,
		CreatedAtMs: a.nowMs,
		State:       boxoffice.OrderPaid,
	}
	// Before the seats are sold: their sale counts at these prices.
	if err := a.putOrderPrices(ei, o); err != nil {
		return Result{}, err
	}
	sold := encodeSeat(seatRec{state: boxoffice.SeatSold, owner: o.ID})
	for _, id := range h.Seats {
		n, ok := ei.layout.Index(id)
		if !ok {
			return Result{}, fmt.Errorf("seat %q of hold %q is not in event %q", id, h.ID, h.Event)
		}
		s, ok, err := a.seat(h.Event, n)
		if err != nil {
			return Result{}, err
		}
		// The invariant that makes a double sale impossible: an active,
		// unexpired hold owns each of its seats.
		if !ok || s.state != boxoffice.SeatHeld || s.owner != h.ID {
			panic(fmt.Sprintf("fsm: invariant broken: seat %q of active hold %q is %+v", id, h.ID, s))
		}
		cat, _, _ := ei.layout.Section(n)
		price, _ := ei.ev.Category(cat.Category)
		o.AmountCents += price.PriceCents
		if err := a.set(seatKey(h.Event, n), sold); err != nil {
			return Result{}, err
		}
	}
	if err := a.addSold(h.Event, h.Buyer, len(h.Seats)); err != nil {
		return Result{}, err
	}
	h.Order = o.ID
	if err := a.endHold(h, boxoffice.HoldPurchased); err != nil {
		return Result{}, err
	}
	a.countSale(o)
	if err := a.set(key(tagOrder, o.ID), encodeOrder(o)); err != nil {
		return Result{}, err
	}
	if err := a.set(key(tagOrdersBy, o.Buyer, o.ID), nil); err != nil {
		return Result{}, err
	}
	return Result{Order: o, Hold: h}, nil
}

// expire sweeps holds whose expiry is at or before now, oldest first.
func (a *applier) expire(c *Expire) (Result, error) {
	limit := c.Max
	if limit <= 0 || limit > ExpireMax {
		limit = ExpireMax
	}
	lower := []byte{tagExpiry}
	upper := expiryKey(a.nowMs+1, "")
	it, err := a.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return Result{}, err
	}
	var ids []string
	for it.First(); it.Valid() && len(ids) < limit; it.Next() {
		ids = append(ids, string(it.Key()[9:]))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return Result{}, err
	}
	for _, id := range ids {
		h, err := a.getHold(id)
		if err != nil {
			return Result{}, err
		}
		if h == nil || h.State != boxoffice.HoldActive {
			return Result{}, fmt.Errorf("expiry index names hold %q which is not active", id)
		}
		if err := a.freeSeats(h.Event, h.ID, h.Seats); err != nil {
			return Result{}, err
		}
		if err := a.endHold(h, boxoffice.HoldExpired); err != nil {
			return Result{}, err
		}
	}
	// The same sweep forgets idempotency records past their TTL.
	if _, err := a.expireIdem(limit); err != nil {
		return Result{}, err
	}
	return Result{Expired: len(ids)}, nil
}

func errOrNil(e *boxoffice.Error) error {
	if e == nil {
		return nil
	}
	return e
}
