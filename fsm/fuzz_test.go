package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// FuzzApply runs programs of commands against a small store (the two
// events of the property tests) and checks, after every ApplyEntries call:
//
//   - the store never halts (ApplyEntries returns no error, nothing panics)
//     on any command that decodes: bad input is a rejection, never a halt;
//   - every rejection is a *boxoffice.Error with a code of boxoffice.Codes(),
//     never internal;
//   - a rejected command changes nothing (but the idempotency record of an
//     Idempotent one);
//   - the cross-index invariants of checkInvariants hold, and the queries
//     agree with them (checkQueries);
//
// and, at the end, that applying the whole log again to a fresh store in one
// ApplyEntries call gives the same answers and the same store, and that a
// snapshot restored into another store makes it the same store, which then
// answers the next entry as the original does.
//
// A program is a sequence of 8-byte instructions (see fuzzRun.step), so that
// the fuzzer mutates commands rather than encodings; instruction kind 15
// carries raw bytes that DecodeCommand must accept first, so every command
// the decoder lets through reaches the state machine too.
func FuzzApply(f *testing.F) {
	for _, p := range fuzzApplySeeds() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newFuzzRun(t)
		r.run(prog)
		r.replayInOneCall()
		r.snapshotRoundTrip()
	})
}

// fuzzIns is one instruction: kind, five argument bytes, flags, clock step.
type fuzzIns [8]byte

const (
	insHold = iota
	insRelease
	insPurchase
	insExpire
	insExtend
	insCancel
	insExchange
	insCheckoutBegin
	insCheckoutComplete
	insCheckoutFail
	insRefundDone
	insVerifyDone
	insUpdateEvent
	insCreateEvent
	insNode
	insRaw
)

// Flags of an instruction.
const (
	flagIdem      = 1 << 0 // wrap in Idempotent (where allowed)
	flagSubject2  = 1 << 1 // the wrapper's subject: u2 rather than u1
	flagKey2      = 1 << 2 // its key: k2 rather than k1
	flagHash2     = 1 << 3 // its request hash: the second one
	flagBadIdem   = 1 << 4 // an invalid wrapper (empty key)
	flagSameEntry = 1 << 6 // the next command goes into the same entry
	flagSameCall  = 1 << 7 // the next entry goes into the same ApplyEntries call
)

// fuzzMaxIns bounds the instructions of one program.
const fuzzMaxIns = 200

// clockSteps are the steps instruction byte 7 chooses from (ms); its high
// bit makes the stamp go back by that much instead, which the state machine
// must ignore.
var clockSteps = []int64{0, 1, 999, 1000, 5_000, 61_000, 600_000, 25 * 3600 * 1000}

type fuzzRun struct {
	t       *testing.T
	s       *Store
	index   uint64
	stampMs int64
	holds   []string // ids of holds created, oldest first
	orders  []string
	log     []Entry
	cmds    [][]Command // the commands of each entry of log
	results [][]string  // fmtResult of each command of each entry
	codes   map[boxoffice.Code]bool
}

func newFuzzRun(t *testing.T) *fuzzRun {
	r := &fuzzRun{t: t, s: newMemStore(t), stampMs: 1_000_000, codes: map[boxoffice.Code]bool{}}
	for _, c := range boxoffice.Codes() {
		r.codes[c] = true
	}
	var cmds []Command
	for _, ev := range propEvents() {
		cmds = append(cmds, &CreateEvent{Event: ev})
	}
	r.apply([][]Command{cmds})
	return r
}

// run interprets a program: one command per instruction, grouped into
// entries and ApplyEntries calls by the flags.
func (r *fuzzRun) run(prog []byte) {
	var call [][]Command
	var entry []Command
	for n := 0; len(prog) >= len(fuzzIns{}) && n < fuzzMaxIns; n++ {
		var ins fuzzIns
		copy(ins[:], prog)
		prog = prog[len(ins):]
		var raw []byte
		if ins[0]%16 == insRaw {
			l := min(int(ins[1]), len(prog))
			raw, prog = prog[:l], prog[l:]
		}
		r.tick(ins[7])
		if c := r.command(ins, raw); c != nil {
			entry = append(entry, c)
		}
		if ins[6]&flagSameEntry != 0 && len(entry) < 4 {
			continue
		}
		if len(entry) > 0 {
			call = append(call, entry)
			entry = nil
		}
		if ins[6]&flagSameCall != 0 && len(call) < 3 {
			continue
		}
		if len(call) > 0 {
			r.apply(call)
			call = nil
		}
	}
	if len(entry) > 0 {
		call = append(call, entry)
	}
	if len(call) > 0 {
		r.apply(call)
	}
}

func (r *fuzzRun) tick(b byte) {
	step := clockSteps[int(b&0x7f)%len(clockSteps)]
	if b&0x80 != 0 {
		r.stampMs = max(0, r.stampMs-step)
		return
	}
	r.stampMs += step
}

// apply applies entries of commands in one ApplyEntries call and checks
// what FuzzApply promises.
func (r *fuzzRun) apply(call [][]Command) {
	t := r.t
	var entries []Entry
	for _, cmds := range call {
		r.index++
		entries = append(entries, entryOf(r.index, r.stampMs, cmds...))
	}
	single := len(call) == 1 && len(call[0]) == 1
	var before string
	if single {
		before = r.stateWithoutIdem()
	}
	rs, err := r.s.ApplyEntries(entries)
	require.NoError(t, err, "the store halted on %s", fmtCall(call))
	require.Len(t, rs, len(call))
	for i, cmds := range call {
		require.Len(t, rs[i], len(cmds))
		var out []string
		for j, c := range cmds {
			res := rs[i][j]
			out = append(out, fmtResult(c, res))
			if res.Err != nil {
				var e *boxoffice.Error
				require.True(t, errors.As(res.Err, &e), "%T rejected with an error without a code: %v", c, res.Err)
				require.True(t, r.codes[e.Code], "%T rejected with unknown code %q", c, e.Code)
				require.NotEqual(t, boxoffice.CodeInternal, e.Code, "%T: %v", c, res.Err)
				if single {
					require.Equal(t, before, r.stateWithoutIdem(), "rejected %#v (%v) changed the store", c, res.Err)
				}
			}
			if res.Hold != nil && !slices.Contains(r.holds, res.Hold.ID) {
				r.holds = append(r.holds, res.Hold.ID)
			}
			if res.Order != nil && !slices.Contains(r.orders, res.Order.ID) {
				r.orders = append(r.orders, res.Order.ID)
			}
		}
		r.results = append(r.results, out)
	}
	r.log = append(r.log, entries...)
	r.cmds = append(r.cmds, call...)
	checkInvariants(t, r.s)
	r.checkQueries()
}

// checkQueries checks the read path the API serves from against the holds
// and orders: each event's seat map and its counts agree; a seat shows held
// by an unexpired hold, or checking-out one within its lease, that lists
// it, and sold by a paid order that lists it; and every such hold and
// order shows on the map as owning each of its seats.
func (r *fuzzRun) checkQueries() {
	t, s, now := r.t, r.s, r.s.NowMs()
	owner := map[string]string{} // event/seat → "held h" or "sold o", from the holds and orders
	for _, id := range r.holds {
		h, err := s.Hold(id)
		require.NoError(t, err)
		until := h.ExpiresAtMs
		switch h.State {
		case boxoffice.HoldActive:
		case boxoffice.HoldCheckingOut:
			o, err := s.Order(h.Order)
			require.NoError(t, err)
			until = max(until, o.LeaseUntilMs)
		default:
			continue
		}
		if until > now {
			for _, seat := range h.Seats {
				owner[h.Event+"/"+seat] = "held " + h.ID
			}
		}
	}
	for _, id := range r.orders {
		o, err := s.Order(id)
		require.NoError(t, err)
		if o.State == boxoffice.OrderPaid {
			for _, seat := range o.Seats {
				require.NotContains(t, owner, o.Event+"/"+seat, "seat %s of paid order %s also held", seat, o.ID)
				owner[o.Event+"/"+seat] = "sold " + o.ID
			}
		}
	}
	// The events to look at: the programs' own, and any a raw command
	// made a hold or order in.
	events := slices.Clone(fuzzEvents)
	for k := range owner {
		if ev, _, _ := strings.Cut(k, "/"); !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	shown := map[string]string{}
	for _, ev := range events {
		e, err := s.Event(ev)
		if err != nil {
			continue
		}
		if e.Venue.Capacity() > 2*seatPoolMax {
			// The large venue: only its taken seats.
			for _, st := range []boxoffice.SeatState{boxoffice.SeatHeld, boxoffice.SeatSold} {
				seats, err := s.Seats(ev, SeatFilter{State: &st})
				require.NoError(t, err)
				for _, seat := range seats {
					shown[ev+"/"+seat.ID] = fmt.Sprintf("%s %s%s", seat.State, seat.Hold, seat.Order)
				}
			}
			continue
		}
		seats, err := s.Seats(ev, SeatFilter{})
		require.NoError(t, err)
		require.Len(t, seats, e.Venue.Capacity())
		counts, err := s.Counts(ev)
		require.NoError(t, err)
		tally := map[string]*boxoffice.CategoryCount{}
		for _, c := range e.Categories {
			tally[c.ID] = &boxoffice.CategoryCount{Category: c.ID}
		}
		for _, seat := range seats {
			c := tally[seat.Category]
			c.Capacity++
			switch seat.State {
			case boxoffice.SeatFree:
				c.Free++
				continue
			case boxoffice.SeatHeld:
				c.Held++
			case boxoffice.SeatSold:
				c.Sold++
			}
			shown[ev+"/"+seat.ID] = fmt.Sprintf("%s %s%s", seat.State, seat.Hold, seat.Order)
		}
		for i, c := range e.Categories {
			require.Equal(t, *tally[c.ID], counts[i], "counts of %s in %s", c.ID, ev)
		}
	}
	require.Equal(t, owner, shown, "the seat maps and the holds and orders disagree")
}

// stateWithoutIdem is the store's state but for the idempotency tables: an
// Idempotent command whose command was rejected records that rejection.
func (r *fuzzRun) stateWithoutIdem() string {
	return stateHashWithout(r.t, r.s, tagIdem, tagIdemAge)
}

// replayInOneCall applies the whole log to a fresh store in a single
// ApplyEntries call: the same answers, the same store.
func (r *fuzzRun) replayInOneCall() {
	t := r.t
	s := newMemStore(t)
	rs, err := s.ApplyEntries(r.log)
	require.NoError(t, err)
	require.Len(t, rs, len(r.log))
	for i, entry := range rs {
		var out []string
		for j, res := range entry {
			out = append(out, fmtResult(r.cmds[i][j], res))
		}
		require.Equal(t, r.results[i], out, "entry %d answered otherwise in one call", r.log[i].Index)
	}
	require.Equal(t, mustHash(t, r.s), mustHash(t, s), "one call built another store")
}

// snapshotRoundTrip restores a snapshot of the store into a store with
// other contents, and applies one more entry to both.
func (r *fuzzRun) snapshotRoundTrip() {
	t := r.t
	sn, err := r.s.Snapshot()
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = sn.WriteTo(&buf)
	require.NoError(t, err)
	require.NoError(t, sn.Close())

	dst := newMemStore(t)
	ev := propEvents()[1]
	ev.Venue.Sections = []boxoffice.Section{{ID: "Q", Category: "ga", Rows: 1, SeatsPerRow: 1}}
	applyOne(t, dst, 1, 1, &CreateEvent{Event: ev}) // another e2, in dst's event cache
	require.NoError(t, dst.Restore(&buf))
	require.Equal(t, mustHash(t, r.s), mustHash(t, dst))
	require.Equal(t, r.s.AppliedIndex(), dst.AppliedIndex())
	require.Equal(t, r.s.NowMs(), dst.NowMs())
	checkInvariants(t, dst)

	next := []Command{&Hold{Event: "e2", Buyer: "u9", Seats: []string{"C-1-1"}}, &Expire{}}
	want := applyOne(t, r.s, r.index+1, r.stampMs+1, next...)
	got := applyOne(t, dst, r.index+1, r.stampMs+1, next...)
	for i := range next {
		require.Equal(t, fmtResult(next[i], want[i]), fmtResult(next[i], got[i]))
	}
	require.Equal(t, mustHash(t, r.s), mustHash(t, dst))
}

func fmtCall(call [][]Command) string {
	var b strings.Builder
	for _, cmds := range call {
		for _, c := range cmds {
			fmt.Fprintf(&b, "%#v; ", c)
		}
	}
	return b.String()
}

// ---- building commands from instructions ----

var (
	fuzzBuyers   = []string{"u1", "u2", "u3", "", "not an id"}
	fuzzEvents   = []string{"e1", "e2", "e3", "nope"}
	fuzzTTLs     = []int{0, 1, 4, 10, 30, -5, boxoffice.HoldTTLMax + 1}
	fuzzBadSeats = []string{"A-0-1", "A-01-1", "Z-1-1", "", "A-1-1-1", "A-1-9999999999999999999"}
	fuzzHashes   = [][]byte{bytes.Repeat([]byte{1}, IdempotencyHashLen), bytes.Repeat([]byte{2}, IdempotencyHashLen)}
)

func pick[T any](list []T, b byte) T { return list[int(b)%len(list)] }

// recent picks among ids, newest first, or (past their end) an id that
// does not exist and an empty one.
func recent(ids []string, b byte, kind string) string {
	i := int(b) % (len(ids) + 2)
	switch {
	case i < len(ids):
		return ids[len(ids)-1-i]
	case i == len(ids):
		return kind + "_0.99999.0"
	}
	return ""
}

// seatPoolMax bounds the seat ids a pool names: the first and the last of
// a large venue.
const seatPoolMax = 64

// seatPool is an event's seat ids (all of them for a small venue) and a few
// that are not seats of it.
func (r *fuzzRun) seatPool(event string) []string {
	l, err := r.s.Layout(event)
	if err != nil {
		l, _ = r.s.Layout("e1")
	}
	n := l.Capacity()
	pool := make([]string, 0, seatPoolMax+len(fuzzBadSeats))
	for i := 0; i < n; i++ {
		if n > seatPoolMax && i == seatPoolMax/2 {
			i = n - seatPoolMax/2
		}
		pool = append(pool, l.ID(i))
	}
	return append(pool, fuzzBadSeats...)
}

// seats picks n ids from pool: start, start+stride, ... (a zero stride
// repeats one seat).
func seats(pool []string, n int, start, stride byte) []string {
	if n == 0 || len(pool) == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = pool[(int(start)+i*int(stride))%len(pool)]
	}
	return out
}

func (r *fuzzRun) holdSeats(id string) []string {
	if h, err := r.s.Hold(id); err == nil {
		return append(slices.Clone(h.Seats), "A-0-1")
	}
	return r.seatPool("e1")
}

func (r *fuzzRun) orderOf(id string) (seats []string, event string) {
	if o, err := r.s.Order(id); err == nil {
		return append(slices.Clone(o.Seats), "A-0-1"), o.Event
	}
	return r.seatPool("e1"), "e1"
}

// command builds the command of an instruction (nil: nothing to apply).
//
//	byte 0     kind (mod 16)
//	bytes 1-5  arguments, read per kind below
//	byte 6     flags
//	byte 7     clock step (see tick)
func (r *fuzzRun) command(ins fuzzIns, raw []byte) Command {
	a1, a2, a3, a4, a5 := ins[1], ins[2], ins[3], ins[4], ins[5]
	buyer := pick(fuzzBuyers, a2>>4)
	var c Command
	switch ins[0] % 16 {
	case insHold:
		ev := pick(fuzzEvents, a1)
		c = &Hold{Event: ev, Buyer: buyer, Seats: seats(r.seatPool(ev), int(a2&7), a3, a4), TTLSeconds: pick(fuzzTTLs, a5)}
		if a2&8 != 0 { // a standing hold: a quantity of an area's places
			c = &HoldArea{Event: ev, Buyer: buyer, Area: pick([]string{"PIT", "PIT", "PIT", "NOPE", "A"}, a3),
				Quantity: pick([]int{1, 2, 3, 8, 0, boxoffice.SeatsPerHoldMax + 1}, a4), TTLSeconds: pick(fuzzTTLs, a5)}
		}
	case insRelease:
		h := recent(r.holds, a1, "h")
		c = &Release{Hold: h, Buyer: buyer, Seats: seats(r.holdSeats(h), int(a2&7)%4, a3, a4)}
	case insPurchase:
		c = &Purchase{Hold: recent(r.holds, a1, "h"), Buyer: buyer, PaymentRef: pick([]string{"", "pi_1"}, a3)}
	case insExpire:
		c = &Expire{Max: pick([]int{0, 1, 2, -1, ExpireMax + 1}, a1)}
	case insExtend:
		c = &ExtendHold{Hold: recent(r.holds, a1, "h"), Buyer: buyer, TTLSeconds: pick(fuzzTTLs, a5)}
	case insCancel:
		c = &CancelOrder{Order: recent(r.orders, a1, "o"), Buyer: buyer}
	case insExchange:
		o := recent(r.orders, a1, "o")
		owned, ev := r.orderOf(o)
		n := int(a2&7) % 4
		m := n
		if a2&8 != 0 {
			m = int(a5>>5) % 4
		}
		c = &Exchange{Order: o, Buyer: buyer, Release: seats(owned, n, a3, 1), Take: seats(r.seatPool(ev), m, a4, a5&31)}
	case insCheckoutBegin:
		c = &CheckoutBegin{Hold: recent(r.holds, a1, "h"), Buyer: buyer,
			PaymentMethod: pick([]string{"pm_card_visa", "", strings.Repeat("x", boxoffice.IDLenMax+1)}, a3),
			LeaseMs:       pick([]int64{120_000, 1000, 999, 5000, boxoffice.CheckoutLeaseMaxMs, boxoffice.CheckoutLeaseMaxMs + 1}, a4)}
	case insCheckoutComplete:
		c = &CheckoutComplete{Order: recent(r.orders, a1, "o"), ChargeRef: pick([]string{"ch_1", "ch_2", "", strings.Repeat("c", 256)}, a3)}
	case insCheckoutFail:
		c = &CheckoutFail{Order: recent(r.orders, a1, "o"), Reason: pick([]string{"declined", "", strings.Repeat("r", boxoffice.NameLenMax+1)}, a3),
			VerifyMs: pick([]int64{0, 60_000, -1, VerifyMsMax + 1}, a4)}
	case insRefundDone:
		c = &RefundDone{Order: recent(r.orders, a1, "o"), RefundRef: pick([]string{"re_1", "", strings.Repeat("r", 256)}, a3)}
	case insVerifyDone:
		c = &VerifyDone{Order: recent(r.orders, a1, "o")}
	case insUpdateEvent:
		c = r.updateEvent(a1, a2, a3, a4, a5)
	case insCreateEvent:
		c = r.createEvent(a1, a2, a3)
	case insNode:
		id := pick([]string{"n1", "n2", "", "a\x00b"}, a2)
		if a1&1 == 0 {
			c = &PutNode{Node: boxoffice.Node{ID: id, RaftAddr: "127.0.0.1:7000", HTTPAddr: pick([]string{"127.0.0.1:8080", ""}, a3)}}
		} else {
			c = &RemoveNode{ID: id}
		}
	case insRaw:
		var err error
		if c, err = DecodeCommand(raw); err != nil {
			return nil
		}
	}
	if ins[6]&flagIdem != 0 && idempotentOK(c.Type()) {
		w := &Idempotent{Subject: "u1", Key: "k1", Hash: fuzzHashes[0], Command: c}
		if ins[6]&flagSubject2 != 0 {
			w.Subject = "u2"
		}
		if ins[6]&flagKey2 != 0 {
			w.Key = "k2"
		}
		if ins[6]&flagHash2 != 0 {
			w.Hash = fuzzHashes[1]
		}
		if ins[6]&flagBadIdem != 0 {
			w.Key = ""
		}
		c = w
	}
	return c
}

// updateEvent changes an event the way a PATCH might, or badly.
func (r *fuzzRun) updateEvent(a1, a2, a3, a4, a5 byte) Command {
	id := pick(fuzzEvents, a1)
	cur, err := r.s.Event(id)
	if err != nil {
		cur = &propEvents()[1]
	}
	ev := *cur
	ev.ID = id
	ev.Categories = slices.Clone(ev.Categories)
	ev.Venue.Sections = slices.Clone(ev.Venue.Sections)
	switch a2 % 8 {
	case 1: // append a section
		ev.Venue.Sections = append(ev.Venue.Sections, boxoffice.Section{ID: fmt.Sprintf("N%d", a3%4), Category: ev.Categories[0].ID, Rows: 1 + int(a4%3), SeatsPerRow: 1 + int(a5%3)})
	case 2: // drop the last section
		if len(ev.Venue.Sections) > 1 {
			ev.Venue.Sections = ev.Venue.Sections[:len(ev.Venue.Sections)-1]
		}
	case 3: // resize the first section
		ev.Venue.Sections[0].Rows = 1 + int(a3%4)
		ev.Venue.Sections[0].SeatsPerRow = 1 + int(a4%4)
	case 4: // reprice
		ev.Categories[0].PriceCents = int64(a3) * 10
	case 5: // new limits, maybe invalid
		ev.Limits = boxoffice.Limits{MaxSeatsPerBuyer: int(a3 % 10), HoldTTLSeconds: int(a4 % 40)}
	case 6: // invalid
		ev.Name = ""
	case 7: // another organiser: the state machine keeps the first
		ev.Organiser = "someone-else"
	}
	var base []byte
	switch a5 % 3 {
	case 1:
		base = EventHash(cur)
	case 2:
		base = bytes.Repeat([]byte{9}, 16)
	}
	return &UpdateEvent{Event: ev, Base: base}
}

// createEvent creates an event of one of a few shapes, some invalid.
func (r *fuzzRun) createEvent(a1, a2, a3 byte) Command {
	ev := propEvents()[a2%2]
	ev.ID = pick([]string{"e3", "e1", "e4", "bad id"}, a1)
	switch a3 % 4 {
	case 1: // one seat
		ev.Venue.Sections = []boxoffice.Section{{ID: "S", Category: ev.Categories[0].ID, Rows: 1, SeatsPerRow: 1}}
	case 2: // the largest venue there may be
		ev.Venue.Sections = []boxoffice.Section{{ID: "L", Category: ev.Categories[0].ID, Rows: boxoffice.RowsPerSectionMax, SeatsPerRow: boxoffice.SeatsPerEventMax / boxoffice.RowsPerSectionMax}}
	case 3: // one seat too many
		ev.Venue.Sections = []boxoffice.Section{{ID: "L", Category: ev.Categories[0].ID, Rows: boxoffice.RowsPerSectionMax, SeatsPerRow: boxoffice.SeatsPerEventMax/boxoffice.RowsPerSectionMax + 1}}
	}
	return &CreateEvent{Event: ev}
}

// ---- seeds ----

// ins builds one instruction.
func ins(kind, a1, a2, a3, a4, a5, flags, step byte) []byte {
	return []byte{kind, a1, a2, a3, a4, a5, flags, step}
}

// rawIns carries an encoded command.
func rawIns(c Command) []byte {
	b := EncodeCommand(c)
	if len(b) > 255 {
		panic("seed command too long")
	}
	return append(ins(insRaw, byte(len(b)), 0, 0, 0, 0, 0, 1), b...)
}

func prog(parts ...[]byte) []byte { return slices.Concat(parts...) }

// fuzzApplySeeds are programs that walk the main paths: buy and exchange and
// cancel; checkout that completes, fails, charges late; expiry and partial
// release; idempotent retries; layout changes under held seats; every
// command type through the decoder; a clock that goes back.
func fuzzApplySeeds() [][]byte {
	u1, u2 := byte(0x00), byte(0x10) // a2 high nibble: the buyer
	seeds := [][]byte{
		// u1 holds A-1-1, A-1-2 (e1: seats 0 and 1), buys, exchanges one
		// seat for B-1-1 (index 15: wrong category, rejected) then for
		// A-2-1 (index 5), cancels, and the refund is done.
		prog(
			ins(insHold, 0, u1|2, 0, 1, 0, 0, 1),
			ins(insPurchase, 0, u1, 1, 0, 0, 0, 1),
			ins(insExchange, 0, u1|1, 0, 15, 0, 0, 1),
			ins(insExchange, 0, u1|1, 0, 5, 0, 0, 1),
			ins(insCancel, 0, u1, 0, 0, 0, 0, 1),
			ins(insRefundDone, 0, 0, 0, 0, 0, 0, 1),
			ins(insCancel, 0, u1, 0, 0, 0, 0, 1),
		),
		// Checkout: begin, complete; another: begin, fail with a watch for
		// a late charge, the late charge (refund due), refund, watch done.
		prog(
			ins(insHold, 0, u1|3, 2, 1, 0, 0, 1),
			ins(insCheckoutBegin, 0, u1, 0, 0, 0, 0, 1),
			ins(insCheckoutComplete, 0, 0, 0, 0, 0, 0, 1),
			ins(insHold, 0, u2|1, 7, 0, 0, 0, 1),
			ins(insCheckoutBegin, 0, u2, 0, 0, 0, 0, 1),
			ins(insCheckoutFail, 0, 0, 0, 1, 0, 0, 1),
			ins(insCheckoutComplete, 0, 0, 1, 0, 0, 0, 1),
			ins(insRefundDone, 0, 0, 0, 0, 0, 0, 1),
			ins(insVerifyDone, 0, 0, 0, 0, 0, 0, 1),
		),
		// A checkout whose lease ends and whose seats go to another buyer
		// before the charge completes.
		prog(
			ins(insHold, 0, u1|1, 3, 0, 3, 0, 1),
			ins(insCheckoutBegin, 0, u1, 0, 1, 0, 0, 1),
			ins(insHold, 0, u2|1, 3, 0, 0, 0, 5),
			ins(insCheckoutComplete, 0, 0, 0, 0, 0, 0, 1),
			ins(insRefundDone, 0, 0, 0, 0, 0, 0, 1),
		),
		// Expiry: hold, time passes, another buyer takes a seat of the
		// expired hold, the sweep, partial release, extension.
		prog(
			ins(insHold, 1, u1|2, 0, 1, 2, 0, 1),
			ins(insHold, 1, u2|1, 1, 0, 0, 0, 5),
			ins(insExpire, 0, 0, 0, 0, 0, 0, 1),
			ins(insHold, 0, u1|3, 4, 1, 0, 0, 1),
			ins(insRelease, 0, u1|1, 1, 0, 0, 0, 1),
			ins(insExtend, 0, u1, 0, 0, 0, 0, 3),
			ins(insExtend, 0, u2, 0, 0, 0, 0, 1),
			ins(insRelease, 0, u1, 0, 0, 0, 0, 1),
		),
		// Idempotent retries: the same key and request, the same key with
		// another request, a rejection remembered, an invalid wrapper.
		prog(
			ins(insHold, 0, u1|1, 9, 0, 0, flagIdem, 1),
			ins(insHold, 0, u1|1, 9, 0, 0, flagIdem, 1),
			ins(insHold, 0, u1|1, 9, 0, 0, flagIdem|flagHash2, 1),
			ins(insHold, 3, u1|1, 9, 0, 0, flagIdem|flagKey2, 1),
			ins(insHold, 3, u1|1, 9, 0, 0, flagIdem|flagKey2, 1),
			ins(insPurchase, 0, u1, 0, 0, 0, flagIdem|flagSubject2, 1),
			ins(insHold, 0, u1|1, 9, 0, 0, flagIdem|flagBadIdem, 7),
			ins(insHold, 0, u1|1, 9, 0, 0, flagIdem, 1),
		),
		// Layout changes of e2 with a seat held (only appending passes),
		// then with none.
		prog(
			ins(insHold, 1, u1|1, 0, 0, 0, 0, 1),
			ins(insUpdateEvent, 1, 3, 1, 1, 1, 0, 1),
			ins(insUpdateEvent, 1, 1, 0, 1, 1, 0, 1),
			ins(insUpdateEvent, 1, 2, 0, 0, 1, 0, 1),
			ins(insRelease, 0, u1, 0, 0, 0, 0, 1),
			ins(insUpdateEvent, 1, 3, 2, 2, 1, 0, 1),
			ins(insUpdateEvent, 0, 5, 0, 0, 2, 0, 1),
			ins(insUpdateEvent, 0, 7, 0, 0, 0, 0, 1),
			ins(insCreateEvent, 0, 0, 2, 0, 0, 0, 1),
			ins(insCreateEvent, 2, 1, 3, 0, 0, 0, 1),
			ins(insHold, 2, u1|1, 0, 0, 0, 0, 1),
		),
		// Several commands per entry and several entries per call, with
		// the clock going back in between.
		prog(
			ins(insHold, 0, u1|2, 0, 1, 0, flagSameEntry, 1),
			ins(insHold, 0, u2|2, 1, 1, 0, flagSameEntry, 1),
			ins(insPurchase, 0, u1, 0, 0, 0, flagSameCall, 1),
			ins(insRelease, 1, u1, 0, 0, 0, flagSameCall, 0x80|4),
			ins(insExpire, 0, 0, 0, 0, 0, 0, 6),
			ins(insNode, 0, 0, 0, 0, 0, 0, 1),
			ins(insNode, 1, 0, 0, 0, 0, 0, 1),
		),
	}
	// Every command type through the decoder.
	var all []byte
	for _, c := range sampleCommands() {
		if len(EncodeCommand(c)) <= 255 {
			all = append(all, rawIns(c)...)
		}
	}
	return append(seeds, all)
}
