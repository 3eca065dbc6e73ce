package fsm

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"boxoffice"
)

// model is a small in-memory seat state machine written from the rules
// alone, against which the property tests check the Pebble store. It keeps
// the same records the store keeps (a seat record stays until freed or
// overwritten, a hold stays active until released, bought or swept) so that
// its answers are comparable command by command.
type model struct {
	shard  int
	nowMs  int64
	index  uint64
	events map[string]*mEvent
	seats  map[string]map[int]seatRec // event -> seat index -> record
	holds  map[string]*boxoffice.Hold
	orders map[string]*boxoffice.Order
	sold   map[string]int    // event + "/" + buyer -> seats of paid orders
	idem   map[string]*mIdem // subject + NUL + key -> record
	areas  map[string]*mArea // event + NUL + area -> allocator
	// reruns counts Idempotent commands that ran again because their
	// key's record had expired (for the property test's statistics).
	reruns int
}

// mIdem is what the model remembers of an Idempotent command. A record past
// its TTL counts as absent, so the model needs no sweep of its own.
type mIdem struct {
	hash        []byte
	createdAtMs int64
	res         Result
}

// mEvent is an event and its seats, numbered independently of
// boxoffice.Layout: section by section, row by row, then the places of each
// general-admission area.
type mEvent struct {
	ev   boxoffice.Event
	ids  []string
	cats []string
	idx  map[string]int
	area map[int]string // index of a general-admission place -> its area
}

func newMEvent(ev boxoffice.Event) *mEvent {
	me := &mEvent{ev: ev, idx: map[string]int{}, area: map[int]string{}}
	for _, s := range ev.Venue.Sections {
		for r := 1; r <= s.Rows; r++ {
			for n := 1; n <= s.SeatsPerRow; n++ {
				id := fmt.Sprintf("%s-%d-%d", s.ID, r, n)
				me.idx[id] = len(me.ids)
				me.ids = append(me.ids, id)
				me.cats = append(me.cats, s.Category)
			}
		}
	}
	for _, a := range ev.Venue.Areas {
		for n := 1; n <= a.Capacity; n++ {
			id := fmt.Sprintf("GA-%s-%d", a.ID, n)
			me.area[len(me.ids)] = a.ID
			me.idx[id] = len(me.ids)
			me.ids = append(me.ids, id)
			me.cats = append(me.cats, a.Category)
		}
	}
	return me
}

// mArea is a general-admission area's allocator, as the store keeps it:
// places 1..next handed out once, released ones on a stack (by index).
type mArea struct {
	next int
	free []int
}

func newModel(shard int) *model {
	return &model{
		shard:  shard,
		events: map[string]*mEvent{},
		seats:  map[string]map[int]seatRec{},
		holds:  map[string]*boxoffice.Hold{},
		orders: map[string]*boxoffice.Order{},
		sold:   map[string]int{},
		idem:   map[string]*mIdem{},
		areas:  map[string]*mArea{},
	}
}

func cloneHold(h *boxoffice.Hold) *boxoffice.Hold {
	c := *h
	c.Seats = slices.Clone(h.Seats)
	return &c
}

func cloneOrder(o *boxoffice.Order) *boxoffice.Order {
	c := *o
	c.Seats = slices.Clone(o.Seats)
	return &c
}

func mReject(code boxoffice.Code) Result { return Result{Err: &boxoffice.Error{Code: code}} }

// applyEntry applies one entry's commands as the store should, and returns
// their results (nil for an entry without data).
func (m *model) applyEntry(index uint64, nowMs int64, cmds []Command) []Result {
	m.index = index
	if cmds == nil {
		return nil
	}
	m.nowMs = max(m.nowMs, nowMs)
	out := make([]Result, len(cmds))
	for pos, c := range cmds {
		out[pos] = m.apply(c, pos)
	}
	return out
}

func (m *model) id(kind string, pos int) string {
	return fmt.Sprintf("%s_%d.%d.%d", kind, m.shard, m.index, pos)
}

func (m *model) taken(rec seatRec) bool {
	return rec.state == boxoffice.SeatSold || rec.expiresAtMs > m.nowMs
}

func (m *model) apply(c Command, pos int) Result {
	switch c := c.(type) {
	case *CreateEvent:
		ev := c.Event
		if err := ev.Validate(); err != nil {
			return mReject(boxoffice.CodeInvalidArgument)
		}
		if m.events[ev.ID] != nil {
			return mReject(boxoffice.CodeEventExists)
		}
		m.events[ev.ID] = newMEvent(ev)
		m.seats[ev.ID] = map[int]seatRec{}
		return Result{Event: &ev}
	case *UpdateEvent:
		ev := c.Event
		if err := ev.Validate(); err != nil {
			return mReject(boxoffice.CodeInvalidArgument)
		}
		old := m.events[ev.ID]
		if old == nil {
			return mReject(boxoffice.CodeEventNotFound)
		}
		os, ns := old.ev.Venue.Sections, ev.Venue.Sections
		if !(len(ns) >= len(os) && slices.EqualFunc(ns[:len(os)], os, boxoffice.Section.Equal)) {
			inUse := len(m.seats[ev.ID]) > 0
			for _, h := range m.holds {
				inUse = inUse || (h.Event == ev.ID && h.State == boxoffice.HoldActive)
			}
			if inUse {
				return mReject(boxoffice.CodeLayoutShrink)
			}
		}
		ev.Organiser = old.ev.Organiser
		m.events[ev.ID] = newMEvent(ev)
		return Result{Event: &ev}
	case *Hold:
		return m.hold(c, pos)
	case *HoldArea:
		return m.holdArea(c, pos)
	case *Release:
		return m.release(c)
	case *Purchase:
		return m.purchase(c, pos)
	case *Expire:
		return m.expire(c)
	case *ExtendHold:
		return m.extend(c)
	case *CancelOrder:
		return m.cancel(c)
	case *Exchange:
		return m.exchange(c)
	case *Idempotent:
		return m.idempotent(c, pos)
	}
	panic(fmt.Sprintf("model: no command %T", c))
}

func (m *model) hold(c *Hold, pos int) Result {
	if !boxoffice.ValidID(c.Buyer) {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	me := m.events[c.Event]
	if me == nil {
		return mReject(boxoffice.CodeEventNotFound)
	}
	if len(c.Seats) == 0 || len(c.Seats) > boxoffice.SeatsPerHoldMax {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	var idx []int
	for _, id := range c.Seats {
		n, ok := me.idx[id]
		if !ok {
			return mReject(boxoffice.CodeSeatNotFound)
		}
		if slices.Contains(idx, n) {
			return mReject(boxoffice.CodeInvalidArgument)
		}
		idx = append(idx, n)
	}
	for _, n := range idx {
		if me.area[n] != "" {
			return mReject(boxoffice.CodeInvalidArgument) // places are held by quantity
		}
	}
	for _, n := range idx {
		if rec, ok := m.seats[c.Event][n]; ok && m.taken(rec) {
			return mReject(boxoffice.CodeSeatUnavailable)
		}
	}
	return m.take(me, c, idx, pos)
}

// take holds free seats for a buyer within the cap: the end of a hold of
// named seats and of an area hold.
func (m *model) take(me *mEvent, c *Hold, idx []int, pos int) Result {
	if m.buyerHas(c.Event, c.Buyer)+len(idx) > me.ev.Limits.MaxSeatsPerBuyer {
		return mReject(boxoffice.CodeBuyerLimit)
	}
	ttl := me.ev.Limits.HoldTTLSeconds
	if c.TTLSeconds > 0 && c.TTLSeconds < ttl {
		ttl = c.TTLSeconds
	}
	h := &boxoffice.Hold{
		ID: m.id("h", pos), Event: c.Event, Buyer: c.Buyer, Seats: slices.Clone(c.Seats),
		CreatedAtMs: m.nowMs, ExpiresAtMs: m.nowMs + int64(ttl)*1000, State: boxoffice.HoldActive,
	}
	for _, n := range idx {
		m.seats[c.Event][n] = seatRec{state: boxoffice.SeatHeld, owner: h.ID, expiresAtMs: h.ExpiresAtMs}
	}
	m.holds[h.ID] = h
	return Result{Hold: cloneHold(h)}
}

// holdArea mirrors the store's checks in order, and hands out places as
// its allocator does: the stack first, newest first, then new numbers.
func (m *model) holdArea(c *HoldArea, pos int) Result {
	if !boxoffice.ValidID(c.Buyer) || c.Quantity < 1 || c.Quantity > boxoffice.SeatsPerHoldMax {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	me := m.events[c.Event]
	if me == nil {
		return mReject(boxoffice.CodeEventNotFound)
	}
	a, ok := me.ev.Venue.Area(c.Area)
	if !ok {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	key := c.Event + "\x00" + c.Area
	ar := m.areas[key]
	if ar == nil {
		ar = &mArea{}
		m.areas[key] = ar
	}
	if c.Quantity > a.Capacity-ar.next+len(ar.free) {
		return mReject(boxoffice.CodeSeatUnavailable)
	}
	if m.buyerHas(c.Event, c.Buyer)+c.Quantity > me.ev.Limits.MaxSeatsPerBuyer {
		return mReject(boxoffice.CodeBuyerLimit)
	}
	first := me.idx[fmt.Sprintf("GA-%s-1", c.Area)]
	var idx []int
	for len(idx) < c.Quantity && len(ar.free) > 0 {
		idx = append(idx, ar.free[len(ar.free)-1])
		ar.free = ar.free[:len(ar.free)-1]
	}
	for len(idx) < c.Quantity {
		idx = append(idx, first+ar.next)
		ar.next++
	}
	slices.Sort(idx)
	seats := make([]string, len(idx))
	for i, n := range idx {
		seats[i] = me.ids[n]
	}
	return m.take(me, &Hold{Event: c.Event, Buyer: c.Buyer, Seats: seats, TTLSeconds: c.TTLSeconds}, idx, pos)
}

// buyerHas counts the seats a buyer bought or holds (unexpired) in an event.
func (m *model) buyerHas(event, buyer string) int {
	have := m.sold[event+"/"+buyer]
	for _, h := range m.holds {
		if h.Event == event && h.Buyer == buyer && h.State == boxoffice.HoldActive && h.ExpiresAtMs > m.nowMs {
			have += len(h.Seats)
		}
	}
	return have
}

// activeHold mirrors the checks a release or purchase makes, in order.
func (m *model) activeHold(id, buyer string) (*boxoffice.Hold, boxoffice.Code) {
	h := m.holds[id]
	switch {
	case h == nil:
		return nil, boxoffice.CodeHoldNotFound
	case buyer != "" && h.Buyer != buyer:
		return nil, boxoffice.CodeForbidden
	case h.State == boxoffice.HoldExpired || (h.State == boxoffice.HoldActive && h.ExpiresAtMs <= m.nowMs):
		return nil, boxoffice.CodeHoldExpired
	case h.State != boxoffice.HoldActive:
		return nil, boxoffice.CodeHoldNotActive
	}
	return h, ""
}

// free deletes the records of seats that still belong to owner.
func (m *model) free(event, owner string, seats []string) {
	me := m.events[event]
	for _, id := range seats {
		n, ok := me.idx[id]
		if !ok {
			panic(fmt.Sprintf("model: seat %s of %s not in event %s", id, owner, event))
		}
		if rec, ok := m.seats[event][n]; ok && rec.owner == owner {
			delete(m.seats[event], n)
			if a := me.area[n]; a != "" {
				ar := m.areas[event+"\x00"+a]
				ar.free = append(ar.free, n)
			}
		}
	}
}

func (m *model) release(c *Release) Result {
	h, code := m.activeHold(c.Hold, c.Buyer)
	if code != "" {
		return mReject(code)
	}
	free, keep := h.Seats, []string(nil)
	if len(c.Seats) > 0 {
		for i, id := range c.Seats {
			if !slices.Contains(h.Seats, id) || slices.Contains(c.Seats[:i], id) {
				return mReject(boxoffice.CodeInvalidArgument)
			}
		}
		free = c.Seats
		for _, id := range h.Seats {
			if !slices.Contains(c.Seats, id) {
				keep = append(keep, id)
			}
		}
	}
	m.free(h.Event, h.ID, free)
	if len(keep) == 0 {
		h.State = boxoffice.HoldReleased
	} else {
		h.Seats = keep
	}
	return Result{Hold: cloneHold(h)}
}

func (m *model) purchase(c *Purchase, pos int) Result {
	h, code := m.activeHold(c.Hold, c.Buyer)
	if code != "" {
		return mReject(code)
	}
	me := m.events[h.Event]
	o := &boxoffice.Order{
		ID: m.id("o", pos), Event: h.Event, Hold: h.ID, Buyer: h.Buyer, Seats: slices.Clone(h.Seats),
		PaymentRef: c.PaymentRef, CreatedAtMs: m.nowMs, State: boxoffice.OrderPaid,
	}
	for _, id := range h.Seats {
		n := me.idx[id]
		cat, _ := me.ev.Category(me.cats[n])
		o.AmountCents += cat.PriceCents
		m.seats[h.Event][n] = seatRec{state: boxoffice.SeatSold, owner: o.ID}
	}
	m.sold[h.Event+"/"+h.Buyer] += len(h.Seats)
	h.State, h.Order = boxoffice.HoldPurchased, o.ID
	m.orders[o.ID] = o
	return Result{Order: cloneOrder(o), Hold: cloneHold(h)}
}

func (m *model) extend(c *ExtendHold) Result {
	h, code := m.activeHold(c.Hold, c.Buyer)
	if code != "" {
		return mReject(code)
	}
	me := m.events[h.Event]
	ttl := me.ev.Limits.HoldTTLSeconds
	if c.TTLSeconds > 0 && c.TTLSeconds < ttl {
		ttl = c.TTLSeconds
	}
	expires := m.nowMs + int64(ttl)*1000
	if expires > h.CreatedAtMs+int64(boxoffice.HoldLifetimeFactor*me.ev.Limits.HoldTTLSeconds)*1000 {
		return mReject(boxoffice.CodeHoldExtendLimit)
	}
	if expires > h.ExpiresAtMs {
		h.ExpiresAtMs = expires
		for _, id := range h.Seats {
			m.seats[h.Event][me.idx[id]] = seatRec{state: boxoffice.SeatHeld, owner: h.ID, expiresAtMs: expires}
		}
	}
	return Result{Hold: cloneHold(h)}
}

// paidOrder mirrors the checks a cancel or exchange makes, in order.
func (m *model) paidOrder(id, buyer string) (*boxoffice.Order, boxoffice.Code) {
	o := m.orders[id]
	switch {
	case o == nil:
		return nil, boxoffice.CodeOrderNotFound
	case buyer != "" && o.Buyer != buyer:
		return nil, boxoffice.CodeForbidden
	case o.State != boxoffice.OrderPaid:
		return nil, boxoffice.CodeOrderNotActive
	}
	return o, ""
}

func (m *model) cancel(c *CancelOrder) Result {
	o, code := m.paidOrder(c.Order, c.Buyer)
	if code != "" {
		return mReject(code)
	}
	m.free(o.Event, o.ID, o.Seats)
	m.sold[o.Event+"/"+o.Buyer] -= len(o.Seats)
	o.State = boxoffice.OrderCancelled
	return Result{Order: cloneOrder(o)}
}

func (m *model) exchange(c *Exchange) Result {
	o, code := m.paidOrder(c.Order, c.Buyer)
	if code != "" {
		return mReject(code)
	}
	me := m.events[o.Event]
	if len(c.Release) != len(c.Take) {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	var relCats, takeCats []string
	for i, id := range c.Release {
		if !slices.Contains(o.Seats, id) || slices.Contains(c.Release[:i], id) {
			return mReject(boxoffice.CodeInvalidArgument)
		}
		relCats = append(relCats, me.cats[me.idx[id]])
	}
	if len(c.Take) == 0 || len(c.Take) > boxoffice.SeatsPerHoldMax {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	var take []int
	for _, id := range c.Take {
		n, ok := me.idx[id]
		if !ok {
			return mReject(boxoffice.CodeSeatNotFound)
		}
		if slices.Contains(take, n) {
			return mReject(boxoffice.CodeInvalidArgument)
		}
		take = append(take, n)
	}
	for _, n := range take {
		if me.area[n] != "" {
			return mReject(boxoffice.CodeInvalidArgument)
		}
	}
	for i, n := range take {
		if slices.Contains(o.Seats, c.Take[i]) {
			return mReject(boxoffice.CodeInvalidArgument)
		}
		if rec, ok := m.seats[o.Event][n]; ok && m.taken(rec) {
			return mReject(boxoffice.CodeSeatUnavailable)
		}
		takeCats = append(takeCats, me.cats[n])
	}
	slices.Sort(relCats)
	slices.Sort(takeCats)
	if !slices.Equal(relCats, takeCats) {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	m.free(o.Event, o.ID, c.Release)
	for _, n := range take {
		m.seats[o.Event][n] = seatRec{state: boxoffice.SeatSold, owner: o.ID}
	}
	var seats []string
	for _, id := range o.Seats {
		if !slices.Contains(c.Release, id) {
			seats = append(seats, id)
		}
	}
	o.Seats = append(seats, c.Take...)
	return Result{Order: cloneOrder(o)}
}

func (m *model) idempotent(c *Idempotent, pos int) Result {
	if !boxoffice.ValidID(c.Subject) || c.Key == "" || len(c.Key) > boxoffice.IdempotencyKeyLenMax || len(c.Hash) != IdempotencyHashLen {
		return mReject(boxoffice.CodeInvalidArgument)
	}
	k := c.Subject + "\x00" + c.Key
	if rec := m.idem[k]; rec != nil {
		if rec.createdAtMs+boxoffice.IdempotencyTTLMs > m.nowMs {
			if !bytes.Equal(rec.hash, c.Hash) {
				return mReject(boxoffice.CodeIdempotencyReused)
			}
			res := rec.res
			res.Replayed = true
			return res
		}
		m.reruns++
	}
	res := m.apply(c.Command, pos)
	// A conflict is not remembered: the key stays unused, and a retry
	// runs again.
	if resultCode(res) != boxoffice.CodeSeatUnavailable {
		m.idem[k] = &mIdem{hash: slices.Clone(c.Hash), createdAtMs: m.nowMs, res: res}
	}
	return res
}

func (m *model) expire(c *Expire) Result {
	limit := c.Max
	if limit <= 0 || limit > ExpireMax {
		limit = ExpireMax
	}
	var due []*boxoffice.Hold
	for _, h := range m.holds {
		if h.State == boxoffice.HoldActive && h.ExpiresAtMs <= m.nowMs {
			due = append(due, h)
		}
	}
	slices.SortFunc(due, func(a, b *boxoffice.Hold) int {
		return cmp.Or(cmp.Compare(a.ExpiresAtMs, b.ExpiresAtMs), strings.Compare(a.ID, b.ID))
	})
	due = due[:min(len(due), limit)]
	for _, h := range due {
		m.free(h.Event, h.ID, h.Seats)
		h.State = boxoffice.HoldExpired
	}
	return Result{Expired: len(due)}
}

// seatMap is the seat map the store should answer, in layout order.
func (m *model) seatMap(event string) []boxoffice.Seat {
	me := m.events[event]
	out := make([]boxoffice.Seat, len(me.ids))
	for n, id := range me.ids {
		s := boxoffice.Seat{ID: id, Category: me.cats[n], State: boxoffice.SeatFree}
		if rec, ok := m.seats[event][n]; ok && m.taken(rec) {
			s.State = rec.state
			if rec.state == boxoffice.SeatHeld {
				s.Hold = rec.owner
			} else {
				s.Order = rec.owner
			}
		}
		out[n] = s
	}
	return out
}

func (m *model) counts(event string) []boxoffice.CategoryCount {
	me := m.events[event]
	var out []boxoffice.CategoryCount
	for _, c := range me.ev.Categories {
		cc := boxoffice.CategoryCount{Category: c.ID}
		for _, s := range m.seatMap(event) {
			if s.Category != c.ID {
				continue
			}
			cc.Capacity++
			switch s.State {
			case boxoffice.SeatFree:
				cc.Free++
			case boxoffice.SeatHeld:
				cc.Held++
			case boxoffice.SeatSold:
				cc.Sold++
			}
		}
		out = append(out, cc)
	}
	return out
}

// holdView is a hold as Store.Hold answers it: an active hold past its
// expiry reads as expired.
func (m *model) holdView(id string) *boxoffice.Hold {
	h := cloneHold(m.holds[id])
	if h.State == boxoffice.HoldActive && h.ExpiresAtMs <= m.nowMs {
		h.State = boxoffice.HoldExpired
	}
	return h
}

// ---- random logs ----

// propEvents are the events of the random logs: a 30-seat venue in two
// categories, and a 6-seat one whose layout the log may change.
func propEvents() []boxoffice.Event {
	return []boxoffice.Event{
		{
			ID: "e1", Name: "One", Organiser: "org1",
			Categories: []boxoffice.Category{{ID: "floor", PriceCents: 1000}, {ID: "balcony", PriceCents: 2500}, {ID: "pit", PriceCents: 400}},
			Venue: boxoffice.Venue{
				Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 3, SeatsPerRow: 5}, {ID: "B", Category: "balcony", Rows: 3, SeatsPerRow: 5}},
				Areas:    []boxoffice.Area{{ID: "PIT", Category: "pit", Capacity: 8}},
			},
			Limits: boxoffice.Limits{MaxSeatsPerBuyer: 6, HoldTTLSeconds: 10},
		},
		{
			ID: "e2", Name: "Two", Organiser: "org2",
			Categories: []boxoffice.Category{{ID: "ga", PriceCents: 700}},
			Venue:      boxoffice.Venue{Sections: []boxoffice.Section{{ID: "C", Category: "ga", Rows: 2, SeatsPerRow: 3}}},
			Limits:     boxoffice.Limits{MaxSeatsPerBuyer: 3, HoldTTLSeconds: 5},
		},
	}
}

// e2Shapes are the venues an UpdateEvent of e2 may switch between: the
// second appends to the first; the third changes it.
var e2Shapes = [][]boxoffice.Section{
	{{ID: "C", Category: "ga", Rows: 2, SeatsPerRow: 3}},
	{{ID: "C", Category: "ga", Rows: 2, SeatsPerRow: 3}, {ID: "D", Category: "ga", Rows: 1, SeatsPerRow: 2}},
	{{ID: "C", Category: "ga", Rows: 3, SeatsPerRow: 2}},
}

var propBuyers = []string{"u1", "u2", "u3", "u4", "u5"}

// gen draws commands from the model's current state, so that most of them
// touch real holds and seats.
type gen struct {
	r *rand.Rand
	m *model
	// big is the 30-seat event most holds go to, small the 6-seat one
	// whose layout updates change. Sold seats come back only when an order
	// is cancelled (and pin a layout), so once most of big's seats, or any
	// of small's, are sold, the log creates a new event of the same shape
	// and moves there.
	big, small string
	events     int
	// idems are recent Idempotent commands, which the log retries.
	idems []*Idempotent
}

func (g *gen) bigEvent() string   { return cmp.Or(g.big, "e1") }
func (g *gen) smallEvent() string { return cmp.Or(g.small, "e2") }

// sold counts the sold seats of an event the model knows (0 for one that a
// command of the batch being drawn creates).
func (g *gen) sold(event string) int {
	if g.m.events[event] == nil {
		return 0
	}
	n := 0
	for _, s := range g.m.seatMap(event) {
		if s.State == boxoffice.SeatSold {
			n++
		}
	}
	return n
}

func (g *gen) pct(p int) bool { return g.r.IntN(100) < p }

func (g *gen) pick(ss []string) string { return ss[g.r.IntN(len(ss))] }

func (g *gen) holdIDs() []string { return sortedKeys(g.m.holds) }

func (g *gen) command() Command {
	if g.sold(g.bigEvent()) >= 20 || (g.sold(g.smallEvent()) > 0 && g.pct(20)) {
		g.events++
		i := 0
		if g.sold(g.bigEvent()) < 20 {
			i = 1
		}
		ev := propEvents()[i]
		ev.ID = fmt.Sprintf("%s.%d", ev.ID, g.events)
		if i == 0 {
			g.big = ev.ID
		} else {
			g.small = ev.ID
		}
		return &CreateEvent{Event: ev}
	}
	switch n := g.r.IntN(100); {
	case n < 30:
		return g.maybeIdem(g.hold())
	case n < 38:
		return g.maybeIdem(g.holdArea())
	case n < 52:
		return g.maybeIdem(g.release())
	case n < 65:
		return g.maybeIdem(g.purchase())
	case n < 75:
		return g.maybeIdem(g.extend())
	case n < 79:
		return g.maybeIdem(g.cancel())
	case n < 86:
		return g.maybeIdem(g.exchange())
	case n < 95:
		if g.pct(60) {
			return &Expire{}
		}
		return &Expire{Max: 1 + g.r.IntN(3)}
	case n < 98:
		ev := propEvents()[1]
		ev.ID = g.smallEvent()
		ev.Venue.Sections = e2Shapes[g.r.IntN(len(e2Shapes))]
		ev.Categories[0].PriceCents = int64(100 * (1 + g.r.IntN(9)))
		ev.Organiser = "ignored"
		if g.pct(10) {
			ev.Limits.HoldTTLSeconds = 0 // invalid
		}
		return g.maybeIdem(&UpdateEvent{Event: ev})
	default:
		return g.maybeIdem(&CreateEvent{Event: propEvents()[g.r.IntN(2)]}) // exists
	}
}

// maybeIdem sometimes wraps a client write in an Idempotent: a fresh key,
// a key used before (with another request, or after its record expired),
// a retry of an earlier request, or a malformed wrapper.
func (g *gen) maybeIdem(c Command) Command {
	if !g.pct(20) {
		return c
	}
	if len(g.idems) > 0 && g.pct(35) {
		prev := *g.idems[g.r.IntN(len(g.idems))]
		return &prev
	}
	subject := "admin"
	switch c := c.(type) {
	case *Hold:
		subject = c.Buyer
	case *HoldArea:
		subject = c.Buyer
	case *Release:
		subject = c.Buyer
	case *Purchase:
		subject = c.Buyer
	case *ExtendHold:
		subject = c.Buyer
	case *CancelOrder:
		subject = c.Buyer
	case *Exchange:
		subject = c.Buyer
	}
	sum := sha256.Sum256(EncodeCommand(c))
	w := &Idempotent{Subject: cmp.Or(subject, "admin"), Key: fmt.Sprintf("k%d", g.r.IntN(40)), Hash: sum[:IdempotencyHashLen], Command: c}
	switch n := g.r.IntN(100); {
	case n < 2:
		w.Key = ""
	case n < 4:
		w.Subject = "bad/subject"
	case n < 5:
		w.Hash = w.Hash[:8]
	}
	if len(g.idems) == 20 {
		g.idems = g.idems[1:]
	}
	g.idems = append(g.idems, w)
	return w
}

func (g *gen) hold() Command {
	event := g.bigEvent()
	switch n := g.r.IntN(100); {
	case n < 25:
		event = g.smallEvent()
	case n < 28:
		event = "e1" // mostly sold out after a while
	case n < 30:
		event = "nope"
	}
	c := &Hold{Event: event, Buyer: g.pick(propBuyers)}
	if g.pct(2) {
		c.Buyer = g.pick([]string{"", "bad/buyer"})
	}
	if g.pct(30) {
		c.TTLSeconds = g.r.IntN(16) - 2
	}
	me := g.m.events[event]
	if me == nil {
		me = g.m.events["e1"] // an event the batch creates; any seat ids do
	}
	// Mostly seats that are free now, so that holds do not all collide.
	pool := me.ids
	if g.pct(70) {
		pool = nil
		for _, s := range g.m.seatMap(me.ev.ID) {
			// General-admission places are refused by id: now and then.
			if s.State == boxoffice.SeatFree && (!strings.HasPrefix(s.ID, "GA-") || g.pct(3)) {
				pool = append(pool, s.ID)
			}
		}
		if len(pool) == 0 {
			pool = me.ids
		}
	}
	k := min(len(pool), 1+g.r.IntN(3))
	for _, i := range g.r.Perm(len(pool))[:k] {
		c.Seats = append(c.Seats, pool[i])
	}
	switch n := g.r.IntN(100); {
	case n < 3:
		c.Seats = append(c.Seats, c.Seats[0]) // twice
	case n < 6:
		c.Seats = append(c.Seats, g.pick([]string{"A-01-1", "A-9-9", "Z-1-1", "C-1-9", "D-1-1", "C-3-1"}))
	case n < 7:
		c.Seats = nil
	case n < 8:
		c.Seats = slices.Repeat([]string{"A-1-1"}, boxoffice.SeatsPerHoldMax+1)
	}
	return c
}

// holdArea asks the pit of the big event for a few places, now and then
// of an event or area without one, or for a bad quantity.
func (g *gen) holdArea() Command {
	c := &HoldArea{Event: g.bigEvent(), Buyer: g.pick(propBuyers), Area: "PIT", Quantity: 1 + g.r.IntN(4)}
	switch n := g.r.IntN(100); {
	case n < 5:
		c.Event = g.smallEvent() // no areas
	case n < 7:
		c.Event = "nope"
	case n < 9:
		c.Area = g.pick([]string{"A", "NOPE", ""})
	case n < 12:
		c.Quantity = g.pick2([]int{0, -1, boxoffice.SeatsPerHoldMax + 1, 9})
	case n < 13:
		c.Buyer = "bad/buyer"
	}
	if g.pct(20) {
		c.TTLSeconds = g.r.IntN(16) - 2
	}
	return c
}

func (g *gen) pick2(ns []int) int { return ns[g.r.IntN(len(ns))] }

// holdRef picks a hold id (mostly an existing one, in any state) and a
// buyer (mostly its owner).
func (g *gen) holdRef() (id, buyer string) {
	ids := g.holdIDs()
	if len(ids) == 0 || g.pct(5) {
		return fmt.Sprintf("h_%d.%d.0", g.m.shard, g.r.IntN(1000)), g.pick(propBuyers)
	}
	var live []string
	for _, id := range ids {
		if h := g.m.holds[id]; h.State == boxoffice.HoldActive && h.ExpiresAtMs > g.m.nowMs {
			live = append(live, id)
		}
	}
	if len(live) > 0 && g.pct(70) {
		id = g.pick(live)
	} else {
		id = g.pick(ids)
	}
	buyer = g.m.holds[id].Buyer
	switch n := g.r.IntN(100); {
	case n < 10:
		buyer = g.pick(propBuyers)
	case n < 25:
		buyer = ""
	}
	return id, buyer
}

func (g *gen) release() Command {
	id, buyer := g.holdRef()
	c := &Release{Hold: id, Buyer: buyer}
	h := g.m.holds[id]
	if h == nil || g.pct(55) {
		return c
	}
	for _, i := range g.r.Perm(len(h.Seats))[:1+g.r.IntN(len(h.Seats))] {
		c.Seats = append(c.Seats, h.Seats[i])
	}
	switch n := g.r.IntN(100); {
	case n < 5:
		c.Seats = append(c.Seats, c.Seats[0])
	case n < 10:
		c.Seats = append(c.Seats, "B-3-5")
	}
	return c
}

func (g *gen) purchase() Command {
	id, buyer := g.holdRef()
	return &Purchase{Hold: id, Buyer: buyer, PaymentRef: fmt.Sprintf("pay%d", g.r.IntN(1000))}
}

func (g *gen) extend() Command {
	id, buyer := g.holdRef()
	if g.pct(70) {
		// The oldest live hold, so that extensions reach the lifetime
		// bound.
		var oldest *boxoffice.Hold
		for _, hid := range g.holdIDs() {
			h := g.m.holds[hid]
			if h.State == boxoffice.HoldActive && h.ExpiresAtMs > g.m.nowMs && (oldest == nil || h.CreatedAtMs < oldest.CreatedAtMs) {
				oldest = h
			}
		}
		if oldest != nil {
			id, buyer = oldest.ID, oldest.Buyer
		}
	}
	c := &ExtendHold{Hold: id, Buyer: buyer}
	if g.pct(40) {
		c.TTLSeconds = g.r.IntN(14) - 1
	}
	return c
}

// orderRef picks an order id (mostly a paid one) and a buyer (mostly its
// owner).
func (g *gen) orderRef() (id, buyer string) {
	ids := sortedKeys(g.m.orders)
	if len(ids) == 0 || g.pct(5) {
		return fmt.Sprintf("o_%d.%d.0", g.m.shard, g.r.IntN(1000)), g.pick(propBuyers)
	}
	var paid []string
	for _, id := range ids {
		if g.m.orders[id].State == boxoffice.OrderPaid {
			paid = append(paid, id)
		}
	}
	if len(paid) > 0 && g.pct(85) {
		id = g.pick(paid)
	} else {
		id = g.pick(ids)
	}
	buyer = g.m.orders[id].Buyer
	switch n := g.r.IntN(100); {
	case n < 8:
		buyer = g.pick(propBuyers)
	case n < 20:
		buyer = ""
	}
	return id, buyer
}

func (g *gen) cancel() Command {
	id, buyer := g.orderRef()
	return &CancelOrder{Order: id, Buyer: buyer}
}

// exchange swaps some seats of an order, mostly for free seats of the same
// categories, sometimes with one of the mistakes the command must refuse.
func (g *gen) exchange() Command {
	id, buyer := g.orderRef()
	c := &Exchange{Order: id, Buyer: buyer}
	o := g.m.orders[id]
	if o == nil {
		c.Release, c.Take = []string{"A-1-1"}, []string{"A-1-2"}
		return c
	}
	me := g.m.events[o.Event]
	free := map[string][]string{} // category -> free seats
	for _, s := range g.m.seatMap(o.Event) {
		if s.State == boxoffice.SeatFree || g.pct(5) {
			free[s.Category] = append(free[s.Category], s.ID)
		}
	}
	for _, i := range g.r.Perm(len(o.Seats))[:1+g.r.IntN(len(o.Seats))] {
		rel := o.Seats[i]
		cat := me.cats[me.idx[rel]]
		if g.pct(5) {
			cat = g.pick(me.cats) // perhaps another category
		}
		pool := free[cat]
		if len(pool) == 0 {
			pool = me.ids
		}
		c.Release = append(c.Release, rel)
		c.Take = append(c.Take, g.pick(pool))
	}
	switch n := g.r.IntN(100); {
	case n < 4:
		c.Take = c.Take[1:] // counts differ
	case n < 7:
		c.Take = append(c.Take, c.Take[0])
		c.Release = append(c.Release, g.pick(me.ids)) // perhaps not the order's
	case n < 9:
		c.Take[0] = g.pick([]string{"Z-1-1", "A-9-9", "C-1-9"})
	case n < 11:
		c.Take[0] = g.pick(o.Seats)
	case n < 12:
		c.Release, c.Take = nil, nil
	}
	return c
}

// genEntry is one entry of a random log: its commands (nil for an entry
// without data) and stamp.
type genEntry struct {
	index uint64
	nowMs int64
	cmds  []Command
}

func (e genEntry) entry() Entry {
	if e.cmds == nil {
		return Entry{Index: e.index}
	}
	return entryOf(e.index, e.nowMs, e.cmds...)
}

// next draws the next entry and applies it to the model, returning the
// results the store must give.
func (g *gen) next() (genEntry, []Result) {
	e := genEntry{index: g.m.index + 1}
	if g.m.index == 0 {
		for _, ev := range propEvents() {
			e.cmds = append(e.cmds, &CreateEvent{Event: ev})
		}
		e.nowMs = 1000
		return e, g.m.applyEntry(e.index, e.nowMs, e.cmds)
	}
	// Mostly forward, sometimes standing still, sometimes a stamp from the
	// past (which must not move the clock back). Steps are multiples of
	// 250 ms and TTLs of a second, so the clock often lands exactly on an
	// expiry, where a hold has just ended.
	switch n := g.r.IntN(100); {
	case n < 1:
		e.nowMs = g.m.nowMs + boxoffice.IdempotencyTTLMs - 1000*int64(g.r.IntN(3)) // around the records' expiry
	case n < 15:
		e.nowMs = g.m.nowMs
	case n < 25:
		e.nowMs = max(0, g.m.nowMs-250*int64(g.r.IntN(20)))
	case n < 30:
		e.nowMs = g.m.nowMs + 1000*int64(3+g.r.IntN(8)) // a jump past some expiries
	default:
		e.nowMs = g.m.nowMs + 250*int64(1+g.r.IntN(2))
	}
	switch n := g.r.IntN(100); {
	case n < 4:
		// an entry without data
	case n < 74:
		e.cmds = []Command{g.command()}
	default:
		// A batch: later commands are drawn before the earlier ones are
		// applied to the model, as a leader coalesces proposals; they may
		// then see each other's effects.
		for range 2 + g.r.IntN(7) {
			e.cmds = append(e.cmds, g.command())
		}
	}
	return e, g.m.applyEntry(e.index, e.nowMs, e.cmds)
}

// randomLog draws a log of n entries from seed.
func randomLog(seed uint64, n int) []genEntry {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: newModel(0)}
	out := make([]genEntry, n)
	for i := range out {
		out[i], _ = g.next()
	}
	return out
}
