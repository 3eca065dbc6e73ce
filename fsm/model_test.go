package fsm

import (
	"cmp"
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
	sold   map[string]int // event + "/" + buyer -> seats bought
}

// mEvent is an event and its seats, numbered independently of
// boxoffice.Layout: section by section, row by row.
type mEvent struct {
	ev   boxoffice.Event
	ids  []string
	cats []string
	idx  map[string]int
}

func newMEvent(ev boxoffice.Event) *mEvent {
	me := &mEvent{ev: ev, idx: map[string]int{}}
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
	return me
}

func newModel(shard int) *model {
	return &model{
		shard:  shard,
		events: map[string]*mEvent{},
		seats:  map[string]map[int]seatRec{},
		holds:  map[string]*boxoffice.Hold{},
		orders: map[string]*boxoffice.Order{},
		sold:   map[string]int{},
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
		if !(len(ns) >= len(os) && slices.Equal(ns[:len(os)], os)) {
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
	case *Release:
		return m.release(c)
	case *Purchase:
		return m.purchase(c, pos)
	case *Expire:
		return m.expire(c)
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
		if rec, ok := m.seats[c.Event][n]; ok && m.taken(rec) {
			return mReject(boxoffice.CodeSeatUnavailable)
		}
	}
	have := m.sold[c.Event+"/"+c.Buyer]
	for _, h := range m.holds {
		if h.Event == c.Event && h.Buyer == c.Buyer && h.State == boxoffice.HoldActive && h.ExpiresAtMs > m.nowMs {
			have += len(h.Seats)
		}
	}
	if have+len(idx) > me.ev.Limits.MaxSeatsPerBuyer {
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
			Categories: []boxoffice.Category{{ID: "floor", PriceCents: 1000}, {ID: "balcony", PriceCents: 2500}},
			Venue:      boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 3, SeatsPerRow: 5}, {ID: "B", Category: "balcony", Rows: 3, SeatsPerRow: 5}}},
			Limits:     boxoffice.Limits{MaxSeatsPerBuyer: 6, HoldTTLSeconds: 10},
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
	// whose layout updates change. Sold seats never come back (and pin a
	// layout), so once most of big's seats, or any of small's, are sold,
	// the log creates a new event of the same shape and moves there.
	big, small string
	events     int
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
	case n < 45:
		return g.hold()
	case n < 65:
		return g.release()
	case n < 80:
		return g.purchase()
	case n < 92:
		if g.pct(60) {
			return &Expire{}
		}
		return &Expire{Max: 1 + g.r.IntN(3)}
	case n < 97:
		ev := propEvents()[1]
		ev.ID = g.smallEvent()
		ev.Venue.Sections = e2Shapes[g.r.IntN(len(e2Shapes))]
		ev.Categories[0].PriceCents = int64(100 * (1 + g.r.IntN(9)))
		ev.Organiser = "ignored"
		if g.pct(10) {
			ev.Limits.HoldTTLSeconds = 0 // invalid
		}
		return &UpdateEvent{Event: ev}
	default:
		return &CreateEvent{Event: propEvents()[g.r.IntN(2)]} // exists
	}
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
			if s.State == boxoffice.SeatFree {
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
