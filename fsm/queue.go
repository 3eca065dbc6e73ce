package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// The waiting room of a protected on-sale; see QUEUE.md for the design.
//
//	q <event>                                → queue: config, counters, seed
//	Q <event>                                → (empty) the list of queues, for the leader's look-ahead
//	j <event> 0 <buyer>                      → place: seq, admission, holding
//	J <event> 0 <seq u64 BE>                 → buyer of a place, in join order
//	w <event> 0 <passExpiresAtMs u64 BE> <seq u64 BE> → admitted, holds nothing yet
//
// A place's admission rank is its join sequence, except in the early group
// (the places given before the opening), whose ranks are a permutation of
// their sequences drawn from the seed the leader wrote at the opening. The
// permutation is computed, not stored: opening a queue of a million early
// joiners writes one record, and either direction (rank of a buyer, buyer
// of a rank) costs a few hash rounds.

// ProtectSale protects an event's on-sale: from then on holding its seats
// needs an admission from its queue. Proposed again, it changes the pass
// TTL and admission ratio; the opening may change until the queue opens.
type ProtectSale struct {
	Event  string
	Config boxoffice.QueueConfig
}

// JoinQueue gives Buyer a place in the event's queue, or returns the place
// it has: one place per buyer.
type JoinQueue struct {
	Event string
	Buyer string
}

// OpenQueue opens an event's queue: the places given so far form the early
// group, shuffled by Seed. The leader proposes it at the opening time with
// a seed nobody knew before.
type OpenQueue struct {
	Event string
	Seed  uint64
}

// AdvanceAdmission moves an event's admission cursor by as many places as
// the state allows (at most Max): the admitted buyers who hold nothing yet
// are kept at the event's admit ratio of the free seats; none are admitted
// while no seat is free. It also ends the admissions whose pass expired
// unused and records whether the event is sold out.
type AdvanceAdmission struct {
	Event string
	Max   int
}

func (ProtectSale) Type() Type      { return TypeProtectSale }
func (JoinQueue) Type() Type        { return TypeJoinQueue }
func (OpenQueue) Type() Type        { return TypeOpenQueue }
func (AdvanceAdmission) Type() Type { return TypeAdvanceAdmission }

func (c *ProtectSale) encode(w *writer) {
	w.str(c.Event)
	w.varint(c.Config.OpensAtMs)
	w.int(c.Config.PassTTLSeconds)
	w.int(c.Config.AdmitPercent)
}

func (c *ProtectSale) decode(r *reader) {
	c.Event = r.str()
	c.Config.OpensAtMs = r.varint()
	c.Config.PassTTLSeconds = r.int()
	c.Config.AdmitPercent = r.int()
}

func (c *JoinQueue) encode(w *writer) { w.str(c.Event); w.str(c.Buyer) }
func (c *JoinQueue) decode(r *reader) { c.Event = r.str(); c.Buyer = r.str() }
func (c *OpenQueue) encode(w *writer) { w.str(c.Event); w.uvarint(c.Seed) }
func (c *OpenQueue) decode(r *reader) { c.Event = r.str(); c.Seed = r.uvarint() }
func (c *AdvanceAdmission) encode(w *writer) {
	w.str(c.Event)
	w.int(c.Max)
}
func (c *AdvanceAdmission) decode(r *reader) { c.Event = r.str(); c.Max = r.int() }

// queueRec is the stored queue of an event.
type queueRec struct {
	cfg         boxoffice.QueueConfig
	opened      bool
	openedAtMs  int64
	seed        uint64
	joined      uint64
	early       uint64
	admitted    uint64
	outstanding uint64
	soldOut     bool
}

func bool8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (r *reader) bool() bool {
	switch r.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail()
	return false
}

func encodeQueue(q *queueRec) []byte {
	w := writer{b: make([]byte, 0, 48)}
	w.u8(valueVersion)
	w.varint(q.cfg.OpensAtMs)
	w.int(q.cfg.PassTTLSeconds)
	w.int(q.cfg.AdmitPercent)
	w.u8(bool8(q.opened))
	w.varint(q.openedAtMs)
	w.uvarint(q.seed)
	w.uvarint(q.joined)
	w.uvarint(q.early)
	w.uvarint(q.admitted)
	w.uvarint(q.outstanding)
	w.u8(bool8(q.soldOut))
	return w.b
}

func decodeQueue(b []byte) (*queueRec, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, fmt.Errorf("queue value version %d: %w", v, errMalformed)
	}
	q := &queueRec{}
	q.cfg.OpensAtMs = r.varint()
	q.cfg.PassTTLSeconds = r.int()
	q.cfg.AdmitPercent = r.int()
	q.opened = r.bool()
	q.openedAtMs = r.varint()
	q.seed = r.uvarint()
	q.joined = r.uvarint()
	q.early = r.uvarint()
	q.admitted = r.uvarint()
	q.outstanding = r.uvarint()
	q.soldOut = r.bool()
	return q, r.done("queue")
}

func (q *queueRec) view(event string) *boxoffice.Queue {
	return &boxoffice.Queue{
		Event: event, Config: q.cfg, Opened: q.opened, OpenedAtMs: q.openedAtMs,
		Joined: int64(q.joined), Early: int64(q.early), Admitted: int64(q.admitted),
		Outstanding: int64(q.outstanding), SoldOut: q.soldOut,
	}
}

// placeRec is a buyer's place. passExpiresAtMs is fixed at admission, so
// that a later change of the pass TTL moves no pass.
type placeRec struct {
	seq             uint64
	admittedAtMs    int64 // 0: not admitted
	passExpiresAtMs int64
	holding         bool // made a hold since admission
}

func encodePlace(p placeRec) []byte {
	w := writer{b: make([]byte, 0, 24)}
	w.u8(valueVersion)
	w.uvarint(p.seq)
	w.varint(p.admittedAtMs)
	w.varint(p.passExpiresAtMs)
	w.u8(bool8(p.holding))
	return w.b
}

func decodePlace(b []byte) (placeRec, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return placeRec{}, fmt.Errorf("place value version %d: %w", v, errMalformed)
	}
	var p placeRec
	p.seq = r.uvarint()
	p.admittedAtMs = r.varint()
	p.passExpiresAtMs = r.varint()
	p.holding = r.bool()
	return p, r.done("place")
}

func placeSeqKey(event string, seq uint64) []byte {
	k := make([]byte, 0, len(event)+10)
	k = append(k, tagPlaceSeq)
	k = append(k, event...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func admitKey(event string, passExpiresAtMs int64, seq uint64) []byte {
	k := make([]byte, 0, len(event)+18)
	k = append(k, tagAdmit)
	k = append(k, event...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(passExpiresAtMs))
	return binary.BigEndian.AppendUint64(k, seq)
}

// rankOf is the admission rank of a join sequence; seqOf its inverse.
func (q *queueRec) rankOf(seq uint64) uint64 {
	if seq < q.early {
		return permute(q.seed, q.early, seq)
	}
	return seq
}

func (q *queueRec) seqOf(rank uint64) uint64 {
	if rank < q.early {
		return unpermute(q.seed, q.early, rank)
	}
	return rank
}

// placeView is what a place looks like at now.
func (q *queueRec) placeView(event, buyer string, p placeRec, nowMs int64) *boxoffice.Place {
	v := &boxoffice.Place{Event: event, Buyer: buyer, Seq: int64(p.seq), Rank: -1, Ahead: -1,
		Early: !q.opened || p.seq < q.early, State: boxoffice.PlaceWaiting,
		AdmittedAtMs: p.admittedAtMs, PassExpiresAtMs: p.passExpiresAtMs}
	if !q.opened {
		return v
	}
	rank := q.rankOf(p.seq)
	v.Rank = int64(rank)
	switch {
	case rank < q.admitted && nowMs < p.passExpiresAtMs:
		v.State, v.Ahead = boxoffice.PlaceAdmitted, 0
	case rank < q.admitted:
		v.State, v.Ahead = boxoffice.PlaceExpired, 0
	case q.soldOut:
		v.State, v.Ahead = boxoffice.PlaceSoldOut, int64(rank-q.admitted)
	default:
		v.Ahead = int64(rank - q.admitted)
	}
	return v
}

// A keyed permutation of [0, n): a four-round Feistel network on the
// smallest even number of bits that covers n, with cycle walking to stay
// below n. It is a bijection for every seed, and cheap both ways.
const feistelRounds = 4

func feistelHalf(n uint64) uint {
	bits := uint(1)
	for n-1 > 0 && bits < 64 && uint64(1)<<bits < n {
		bits++
	}
	return (bits + 1) / 2
}

func feistelF(seed uint64, round int, x uint64) uint64 {
	z := seed ^ (uint64(round)+1)*0x9e3779b97f4a7c15 ^ x
	// splitmix64's finaliser
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func feistel(seed uint64, half uint, x uint64, inverse bool) uint64 {
	mask := uint64(1)<<half - 1
	l, r := x>>half, x&mask
	if !inverse {
		for i := 0; i < feistelRounds; i++ {
			l, r = r, l^(feistelF(seed, i, r)&mask)
		}
	} else {
		for i := feistelRounds - 1; i >= 0; i-- {
			l, r = r^(feistelF(seed, i, l)&mask), l
		}
	}
	return l<<half | r
}

func permute(seed, n, x uint64) uint64 {
	half := feistelHalf(n)
	for x = feistel(seed, half, x, false); x >= n; x = feistel(seed, half, x, false) {
	}
	return x
}

func unpermute(seed, n, x uint64) uint64 {
	half := feistelHalf(n)
	for x = feistel(seed, half, x, true); x >= n; x = feistel(seed, half, x, true) {
	}
	return x
}

// Apply.

func (a *applier) queue(event string) (*queueRec, error) {
	v, ok, err := a.get(key(tagQueue, event))
	if err != nil || !ok {
		return nil, err
	}
	return decodeQueue(v)
}

func (a *applier) putQueue(event string, q *queueRec) error {
	return a.set(key(tagQueue, event), encodeQueue(q))
}

func (a *applier) place(event, buyer string) (placeRec, bool, error) {
	v, ok, err := a.get(key(tagPlace, event, buyer))
	if err != nil || !ok {
		return placeRec{}, false, err
	}
	p, err := decodePlace(v)
	return p, true, err
}

func (a *applier) protectSale(c *ProtectSale) (Result, error) {
	if err := c.Config.Validate(); err != nil {
		return Result{Err: err}, nil
	}
	ei, err := a.event(c.Event)
	if err != nil {
		return Result{}, err
	}
	if ei == nil {
		return reject(boxoffice.CodeEventNotFound, "event %q", c.Event)
	}
	q, err := a.queue(c.Event)
	if err != nil {
		return Result{}, err
	}
	if q == nil {
		q = &queueRec{}
		// The q record is rewritten by every join: listing queues by
		// scanning those would step over every old version of them in
		// the memtable. The list has its own key, written once.
		if err := a.set(key(tagQueueList, c.Event), nil); err != nil {
			return Result{}, err
		}
	} else if q.opened && q.cfg.OpensAtMs != c.Config.OpensAtMs {
		return reject(boxoffice.CodeConflict, "the queue of event %q is open: its opening cannot move", c.Event)
	}
	q.cfg = c.Config
	if err := a.putQueue(c.Event, q); err != nil {
		return Result{}, err
	}
	return Result{Queue: q.view(c.Event)}, nil
}

func (a *applier) joinQueue(c *JoinQueue) (Result, error) {
	if !boxoffice.ValidID(c.Buyer) {
		return reject(boxoffice.CodeInvalidArgument, "buyer %q is not a valid id", c.Buyer)
	}
	q, err := a.queue(c.Event)
	if err != nil {
		return Result{}, err
	}
	if q == nil {
		return reject(boxoffice.CodeQueueNotFound, "the on-sale of event %q has no queue", c.Event)
	}
	p, ok, err := a.place(c.Event, c.Buyer)
	if err != nil {
		return Result{}, err
	}
	if ok {
		return Result{Place: q.placeView(c.Event, c.Buyer, p, a.nowMs), Queue: q.view(c.Event)}, nil
	}
	if q.joined >= boxoffice.QueueJoinersMax {
		return reject(boxoffice.CodeUnavailable, "the queue of event %q is full", c.Event)
	}
	p = placeRec{seq: q.joined}
	q.joined++
	if err := a.set(key(tagPlace, c.Event, c.Buyer), encodePlace(p)); err != nil {
		return Result{}, err
	}
	if err := a.set(placeSeqKey(c.Event, p.seq), []byte(c.Buyer)); err != nil {
		return Result{}, err
	}
	if err := a.putQueue(c.Event, q); err != nil {
		return Result{}, err
	}
	return Result{Place: q.placeView(c.Event, c.Buyer, p, a.nowMs), Queue: q.view(c.Event)}, nil
}

func (a *applier) openQueue(c *OpenQueue) (Result, error) {
	q, err := a.queue(c.Event)
	if err != nil {
		return Result{}, err
	}
	switch {
	case q == nil:
		return reject(boxoffice.CodeQueueNotFound, "the on-sale of event %q has no queue", c.Event)
	case q.opened:
		return reject(boxoffice.CodeConflict, "the queue of event %q is open already", c.Event)
	case a.nowMs < q.cfg.OpensAtMs:
		return reject(boxoffice.CodeConflict, "the queue of event %q opens at %d, not before", c.Event, q.cfg.OpensAtMs)
	}
	q.opened, q.openedAtMs, q.seed, q.early = true, a.nowMs, c.Seed, q.joined
	if err := a.putQueue(c.Event, q); err != nil {
		return Result{}, err
	}
	return Result{Queue: q.view(c.Event)}, nil
}

func (a *applier) advanceAdmission(c *AdvanceAdmission) (Result, error) {
	q, err := a.queue(c.Event)
	if err != nil {
		return Result{}, err
	}
	if q == nil {
		return reject(boxoffice.CodeQueueNotFound, "the on-sale of event %q has no queue", c.Event)
	}
	if !q.opened {
		return reject(boxoffice.CodeConflict, "the queue of event %q is not open yet", c.Event)
	}
	ei, err := a.mustEvent(c.Event, "queue "+c.Event)
	if err != nil {
		return Result{}, err
	}
	limit := c.Max
	if limit <= 0 || limit > boxoffice.AdmitPerStepMax {
		limit = boxoffice.AdmitPerStepMax
	}
	pl, err := planAdmission(a.b, c.Event, q, ei.layout, a.nowMs, limit)
	if err != nil {
		return Result{}, err
	}
	for _, k := range pl.expired {
		if err := a.del(k); err != nil {
			return Result{}, err
		}
	}
	q.outstanding -= uint64(len(pl.expired))
	passExp := a.nowMs + int64(q.cfg.PassTTLSeconds)*1000
	for i := range pl.admit {
		seq := q.seqOf(q.admitted + uint64(i))
		buyer, ok, err := a.get(placeSeqKey(c.Event, seq))
		if err != nil {
			return Result{}, err
		}
		if !ok {
			return Result{}, fmt.Errorf("queue %q: place %d has no buyer", c.Event, seq)
		}
		p, ok, err := a.place(c.Event, string(buyer))
		if err != nil {
			return Result{}, err
		}
		if !ok || p.seq != seq || p.admittedAtMs != 0 {
			panic(fmt.Sprintf("fsm: invariant broken: queue %q place %d of %q is %+v (found %v)", c.Event, seq, buyer, p, ok))
		}
		p.admittedAtMs, p.passExpiresAtMs = a.nowMs, passExp
		if err := a.set(key(tagPlace, c.Event, string(buyer)), encodePlace(p)); err != nil {
			return Result{}, err
		}
		if err := a.set(admitKey(c.Event, passExp, seq), nil); err != nil {
			return Result{}, err
		}
	}
	q.admitted += uint64(pl.admit)
	q.outstanding += uint64(pl.admit)
	q.soldOut = pl.soldOut
	if err := a.putQueue(c.Event, q); err != nil {
		return Result{}, err
	}
	return Result{Queue: q.view(c.Event), Admitted: pl.admit}, nil
}

// admissionCheck is the check of a hold of a protected event: the buyer
// was admitted and the pass has not expired. It returns the place to mark
// holding (nil when nothing needs writing) or a rejection.
func (a *applier) admissionCheck(event, buyer string) (q *queueRec, p *placeRec, rej error, err error) {
	q, err = a.queue(event)
	if err != nil || q == nil {
		return nil, nil, nil, err
	}
	pl, ok, err := a.place(event, buyer)
	if err != nil {
		return nil, nil, nil, err
	}
	switch {
	case !ok:
		return nil, nil, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "the on-sale of event %q is protected: join its queue first", event), nil
	case pl.admittedAtMs == 0:
		return nil, nil, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "buyer %q is not admitted to event %q yet", buyer, event), nil
	case a.nowMs >= pl.passExpiresAtMs:
		return nil, nil, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "the admission of buyer %q to event %q expired", buyer, event), nil
	case pl.holding:
		return nil, nil, nil, nil
	}
	return q, &pl, nil, nil
}

// markHolding records an admitted buyer's first hold: it no longer counts
// as admitted-but-not-holding.
func (a *applier) markHolding(event, buyer string, q *queueRec, p *placeRec) error {
	if err := a.del(admitKey(event, p.passExpiresAtMs, p.seq)); err != nil {
		return err
	}
	p.holding = true
	if err := a.set(key(tagPlace, event, buyer), encodePlace(*p)); err != nil {
		return err
	}
	if q.outstanding == 0 {
		panic(fmt.Sprintf("fsm: invariant broken: queue %q counts no outstanding admission, but %q holds none", event, buyer))
	}
	q.outstanding--
	return a.putQueue(event, q)
}

// admission is what an admission step would do at nowMs.
type admission struct {
	expired [][]byte // outstanding admissions whose pass expired
	admit   int
	soldOut bool
}

// planAdmission computes an admission step from state (r is the applier's
// batch, or the store for the leader's look-ahead).
func planAdmission(r pebble.Reader, event string, q *queueRec, layout *boxoffice.Layout, nowMs int64, limit int) (admission, error) {
	// Seat indexes run up to the layout's span (rows' holes and aisles
	// included, general-admission places last); the capacity counts only
	// the places that exist.
	capacity := layout.Capacity()
	var pl admission
	p := prefix(tagAdmit, event)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: admitKey(event, nowMs+1, 0)})
	if err != nil {
		return pl, err
	}
	for it.First(); it.Valid() && len(pl.expired) < boxoffice.AdmitPerStepMax; it.Next() {
		pl.expired = append(pl.expired, append([]byte(nil), it.Key()...))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return pl, err
	}
	taken, sold := 0, 0
	it, err = r.NewIter(&pebble.IterOptions{LowerBound: seatKey(event, 0), UpperBound: seatKey(event, layout.Span())})
	if err != nil {
		return pl, err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return pl, err
		}
		state, expiresAtMs, err := decodeSeatState(v)
		if err != nil {
			it.Close()
			return pl, err
		}
		if (seatRec{state: state, expiresAtMs: expiresAtMs}).takenAt(nowMs) {
			taken++
			if state == boxoffice.SeatSold {
				sold++
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return pl, err
	}
	pl.soldOut = sold >= capacity
	free := int64(capacity - taken)
	target := free * int64(q.cfg.AdmitPercent) / 100
	if free > 0 && target == 0 {
		target = 1
	}
	outstanding := int64(q.outstanding) - int64(len(pl.expired))
	n := min(target-outstanding, int64(q.joined-q.admitted), int64(limit))
	pl.admit = int(max(n, 0))
	return pl, nil
}

// Queries.

// Queue returns an event's queue, or ErrQueueNotFound.
func (s *Store) Queue(event string) (*boxoffice.Queue, error) {
	q, err := s.queueRec(event)
	if err != nil {
		return nil, err
	}
	return q.view(event), nil
}

func (s *Store) queueRec(event string) (*queueRec, error) {
	v, ok, err := s.get(key(tagQueue, event))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeQueueNotFound, "the on-sale of event %q has no queue", event)
	}
	return decodeQueue(v)
}

// Place returns a buyer's place in an event's queue, as it stands at nowMs
// (the reader's clock; the state machine's if that is later: with no entry
// applied since, the store's clock may lag a pass's expiry), or
// ErrQueueNotFound. Two point reads, no scan.
func (s *Store) Place(event, buyer string, nowMs int64) (*boxoffice.Place, error) {
	q, err := s.queueRec(event)
	if err != nil {
		return nil, err
	}
	v, ok, err := s.get(key(tagPlace, event, buyer))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeQueueNotFound, "buyer %q has no place in the queue of event %q", buyer, event)
	}
	p, err := decodePlace(v)
	if err != nil {
		return nil, err
	}
	return q.placeView(event, buyer, p, max(nowMs, s.NowMs())), nil
}

// QueuesMax bounds the queues one Queues call lists.
const QueuesMax = 10_000

// Queues lists the shard's queues in event order (at most QueuesMax).
func (s *Store) Queues() ([]*boxoffice.Queue, error) {
	var events []string
	err := s.scan([]byte{tagQueueList}, []byte{tagQueueList + 1}, func(k, _ []byte) (bool, error) {
		events = append(events, string(k[1:]))
		return len(events) < QueuesMax, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*boxoffice.Queue, 0, len(events))
	for _, ev := range events {
		q, err := s.Queue(ev)
		if err != nil {
			return nil, fmt.Errorf("queue %q listed: %w", ev, err)
		}
		out = append(out, q)
	}
	return out, nil
}

// QueueSteps is the leader's look-ahead: the commands due for the shard's
// queues at nowMs (the leader's clock, which the entry will carry). An
// OpenQueue is returned without its seed, for the leader to draw. A step
// is due only if it would change something, so that an idle queue adds
// nothing to the log.
func (s *Store) QueueSteps(nowMs int64) ([]Command, error) {
	qs, err := s.Queues()
	if err != nil {
		return nil, err
	}
	nowMs = max(nowMs, s.NowMs())
	var out []Command
	for _, qv := range qs {
		q, err := s.queueRec(qv.Event)
		if err != nil {
			return nil, err
		}
		if !q.opened {
			if nowMs >= q.cfg.OpensAtMs {
				out = append(out, &OpenQueue{Event: qv.Event})
			}
			continue
		}
		if q.joined == q.admitted {
			// Nobody waits: nothing to admit, and nobody to tell of a
			// sell-out. (The next join makes a step due again.)
			continue
		}
		l, err := s.Layout(qv.Event)
		if err != nil {
			return nil, err
		}
		var pl admission
		err = s.withDB(func(db *pebble.DB) error {
			pl, err = planAdmission(db, qv.Event, q, l, nowMs, boxoffice.AdmitPerStepMax)
			return err
		})
		if err != nil {
			return nil, err
		}
		if pl.admit > 0 || pl.soldOut != q.soldOut || len(pl.expired) > 0 {
			out = append(out, &AdvanceAdmission{Event: qv.Event, Max: boxoffice.AdmitPerStepMax})
		}
	}
	return out, nil
}

// withDB runs fn on the open Pebble store under the read lock.
func (s *Store) withDB(fn func(db *pebble.DB) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	return fn(s.db)
}
