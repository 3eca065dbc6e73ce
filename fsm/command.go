package fsm

import (
	"crypto/sha256"
	"fmt"

	"boxoffice"
)

// Encoding of the replicated log.
//
// A Raft log entry carries a batch of commands that the leader coalesced:
//
//	entry   = entryVersion nowMs:uvarint count:uvarint { len:uvarint command }
//	command = commandVersion type:u8 fields...
//
// nowMs is the leader's clock when it built the entry; every command of the
// entry applies at now = max(previous now, nowMs). Decoding is strict: an
// unknown version or type, a truncated field or a trailing byte is an error.
const (
	entryVersion   uint8 = 1
	commandVersion uint8 = 1

	// EntryCommandsMax bounds the commands of one entry.
	EntryCommandsMax = 4096
	// CommandBytesMax bounds one encoded command of an entry. It must hold
	// the largest valid command: a CreateEvent with every limit of the
	// boxoffice package at its maximum takes about 140 KiB, more than the
	// 64 KiB one string may take.
	CommandBytesMax = 1 << 20
)

// Type is the type byte of a command.
type Type uint8

const (
	TypeCreateEvent Type = 1
	TypeUpdateEvent Type = 2
	TypeHold        Type = 3
	TypeRelease     Type = 4
	TypePurchase    Type = 5
	TypeExpire      Type = 6
	TypePutNode     Type = 7
	TypeRemoveNode  Type = 8
	TypeExtendHold  Type = 9
	TypeCancelOrder Type = 10
	TypeExchange    Type = 11
	TypeIdempotent  Type = 12
	TypeCheckout    Type = 13
	TypeComplete    Type = 14
	TypeFail        Type = 15
	TypeRefundDone  Type = 16
	TypeVerifyDone  Type = 17
	// 18..21 are another branch's.
	TypeSetGrant   Type = 22
	TypeAuthorized Type = 23

	// The waiting room (queue.go): 26..31.
	TypeProtectSale      Type = 26
	TypeJoinQueue        Type = 27
	TypeOpenQueue        Type = 28
	TypeAdvanceAdmission Type = 29
)

// Command is one state change. Each concrete type below is one command.
type Command interface {
	Type() Type
	encode(w *writer)
	decode(r *reader)
}

// CreateEvent creates an event with its venue; the seats exist from then on
// as free without being written one by one.
type CreateEvent struct{ Event boxoffice.Event }

// UpdateEvent replaces an event's descriptive fields, categories, limits and
// venue. A venue may change freely while no seat is taken; after that, only
// by appending sections, so that no held or sold seat changes its id.
//
// Base, if set, is the EventHash of the event the update was computed from
// (a partial update read it, changed some fields and sends the whole): the
// update is rejected with conflict if the event has changed since, so that
// concurrent partial updates never undo each other.
type UpdateEvent struct {
	Event boxoffice.Event
	Base  []byte
}

// EventHash identifies an event's content, for UpdateEvent.Base.
func EventHash(e *boxoffice.Event) []byte {
	sum := sha256.Sum256(encodeEventValue(e))
	return sum[:16]
}

// Hold takes all of Seats for Buyer, or none of them.
type Hold struct {
	Event      string
	Buyer      string
	Seats      []string
	TTLSeconds int // 0: the event's default
}

// Release frees all seats of a hold (Seats empty) or some of them. Buyer, if
// not empty, must own the hold.
type Release struct {
	Hold  string
	Buyer string
	Seats []string
}

// Purchase turns an active hold into a paid order.
type Purchase struct {
	Hold       string
	Buyer      string
	PaymentRef string
}

// Expire marks up to Max holds whose time has passed as expired and frees
// their seats. The leader proposes it periodically so indexes stay tidy;
// correctness never depends on it, because an expired hold's seats count as
// free to every command.
type Expire struct{ Max int }

// PutNode records a cluster member's addresses, so that every replica can
// route to every other.
type PutNode struct{ Node boxoffice.Node }

// RemoveNode forgets a member's addresses.
type RemoveNode struct{ ID string }

// ExtendHold moves an active hold's expiry to now + TTLSeconds (0: the
// event's hold TTL), never earlier than it was and never past
// HoldLifetimeFactor times the event's hold TTL after the hold's creation.
type ExtendHold struct {
	Hold       string
	Buyer      string
	TTLSeconds int
}

// CancelOrder cancels a paid order: its seats are free at once.
type CancelOrder struct {
	Order string
	Buyer string
}

// Exchange swaps seats of a paid order for free seats of the same
// categories, in one step: the seats in Take are sold to the order and those
// in Release freed, or nothing changes.
type Exchange struct {
	Order   string
	Buyer   string
	Release []string
	Take    []string
}

// CheckoutBegin starts the purchase of an active hold: it creates the order,
// pending, and moves the hold to checking-out. Its seats stay taken until
// the order is resolved or LeaseMs passes (the lease bounds how long a
// charge may be in flight; the leader resolves the checkout before then).
type CheckoutBegin struct {
	Hold          string
	Buyer         string
	PaymentMethod string
	LeaseMs       int64
}

// CheckoutComplete records a successful charge. If the order's hold still
// owns its seats, they are sold and the order is paid; if not (the lease
// passed and the seats went to others, or the checkout was failed), the
// order fails and a refund of the charge is recorded as due: a charge
// always ends as a sale or a refund.
type CheckoutComplete struct {
	Order     string
	ChargeRef string
}

// CheckoutFail records that nothing was charged: the order fails and its
// hold is active again (until its own expiry).
//
// VerifyMs > 0 says the failure rests on a look-up that found no charge,
// which a slow gateway might still make: the order is kept on a list the
// leader looks up again until VerifyMs has passed, so that a late charge is
// still refunded (CheckoutComplete of a failed order) rather than kept.
type CheckoutFail struct {
	Order    string
	Reason   string
	VerifyMs int64
}

// VerifyDone ends the watch for a late charge of a failed order.
type VerifyDone struct{ Order string }

// RefundDone records the refund of an order whose refund was due.
type RefundDone struct {
	Order     string
	RefundRef string
}

// Idempotent runs Command once per (Subject, Key). The first run's result is
// stored with a hash of the request; a later command with the same key and
// hash gets that result again without running, one with another hash is
// rejected with idempotency_key_reused. Records are forgotten after
// IdempotencyTTLMs of the state machine's clock.
type Idempotent struct {
	Subject string
	Key     string
	Hash    []byte
	Command Command
}

func (CreateEvent) Type() Type      { return TypeCreateEvent }
func (UpdateEvent) Type() Type      { return TypeUpdateEvent }
func (Hold) Type() Type             { return TypeHold }
func (Release) Type() Type          { return TypeRelease }
func (Purchase) Type() Type         { return TypePurchase }
func (Expire) Type() Type           { return TypeExpire }
func (PutNode) Type() Type          { return TypePutNode }
func (RemoveNode) Type() Type       { return TypeRemoveNode }
func (ExtendHold) Type() Type       { return TypeExtendHold }
func (CancelOrder) Type() Type      { return TypeCancelOrder }
func (Exchange) Type() Type         { return TypeExchange }
func (Idempotent) Type() Type       { return TypeIdempotent }
func (CheckoutBegin) Type() Type    { return TypeCheckout }
func (CheckoutComplete) Type() Type { return TypeComplete }
func (CheckoutFail) Type() Type     { return TypeFail }
func (RefundDone) Type() Type       { return TypeRefundDone }
func (VerifyDone) Type() Type       { return TypeVerifyDone }

func (c *CheckoutBegin) encode(w *writer) {
	w.str(c.Hold)
	w.str(c.Buyer)
	w.str(c.PaymentMethod)
	w.varint(c.LeaseMs)
}

func (c *CheckoutBegin) decode(r *reader) {
	c.Hold = r.str()
	c.Buyer = r.str()
	c.PaymentMethod = r.str()
	c.LeaseMs = r.varint()
}

func (c *CheckoutComplete) encode(w *writer) { w.str(c.Order); w.str(c.ChargeRef) }
func (c *CheckoutComplete) decode(r *reader) { c.Order = r.str(); c.ChargeRef = r.str() }
func (c *CheckoutFail) encode(w *writer)     { w.str(c.Order); w.str(c.Reason); w.varint(c.VerifyMs) }
func (c *CheckoutFail) decode(r *reader) {
	c.Order = r.str()
	c.Reason = r.str()
	c.VerifyMs = r.varint()
}
func (c *VerifyDone) encode(w *writer) { w.str(c.Order) }
func (c *VerifyDone) decode(r *reader) { c.Order = r.str() }
func (c *RefundDone) encode(w *writer) { w.str(c.Order); w.str(c.RefundRef) }
func (c *RefundDone) decode(r *reader) { c.Order = r.str(); c.RefundRef = r.str() }

func (c *CreateEvent) encode(w *writer) { encodeEvent(w, &c.Event) }
func (c *CreateEvent) decode(r *reader) { decodeEvent(r, &c.Event) }
func (c *UpdateEvent) encode(w *writer) {
	encodeEvent(w, &c.Event)
	w.bytes(c.Base)
}

func (c *UpdateEvent) decode(r *reader) {
	decodeEvent(r, &c.Event)
	if c.Base = r.bytes(); len(c.Base) == 0 {
		c.Base = nil
	}
}

func (c *Hold) encode(w *writer) {
	w.str(c.Event)
	w.str(c.Buyer)
	w.strs(c.Seats)
	w.int(c.TTLSeconds)
}

func (c *Hold) decode(r *reader) {
	c.Event = r.str()
	c.Buyer = r.str()
	c.Seats = r.strs()
	c.TTLSeconds = r.int()
}

func (c *Release) encode(w *writer) {
	w.str(c.Hold)
	w.str(c.Buyer)
	w.strs(c.Seats)
}

func (c *Release) decode(r *reader) {
	c.Hold = r.str()
	c.Buyer = r.str()
	c.Seats = r.strs()
}

func (c *Purchase) encode(w *writer) {
	w.str(c.Hold)
	w.str(c.Buyer)
	w.str(c.PaymentRef)
}

func (c *Purchase) decode(r *reader) {
	c.Hold = r.str()
	c.Buyer = r.str()
	c.PaymentRef = r.str()
}

func (c *Expire) encode(w *writer) { w.int(c.Max) }
func (c *Expire) decode(r *reader) { c.Max = r.int() }

func (c *PutNode) encode(w *writer) {
	w.str(c.Node.ID)
	w.str(c.Node.RaftAddr)
	w.str(c.Node.HTTPAddr)
}

func (c *PutNode) decode(r *reader) {
	c.Node.ID = r.str()
	c.Node.RaftAddr = r.str()
	c.Node.HTTPAddr = r.str()
}

func (c *RemoveNode) encode(w *writer) { w.str(c.ID) }
func (c *RemoveNode) decode(r *reader) { c.ID = r.str() }

func (c *ExtendHold) encode(w *writer) {
	w.str(c.Hold)
	w.str(c.Buyer)
	w.int(c.TTLSeconds)
}

func (c *ExtendHold) decode(r *reader) {
	c.Hold = r.str()
	c.Buyer = r.str()
	c.TTLSeconds = r.int()
}

func (c *CancelOrder) encode(w *writer) {
	w.str(c.Order)
	w.str(c.Buyer)
}

func (c *CancelOrder) decode(r *reader) {
	c.Order = r.str()
	c.Buyer = r.str()
}

func (c *Exchange) encode(w *writer) {
	w.str(c.Order)
	w.str(c.Buyer)
	w.strs(c.Release)
	w.strs(c.Take)
}

func (c *Exchange) decode(r *reader) {
	c.Order = r.str()
	c.Buyer = r.str()
	c.Release = r.strs()
	c.Take = r.strs()
}

// idempotentOK reports whether a command type may be wrapped in Idempotent:
// the writes a client makes, not the leader's housekeeping, and no nesting.
// Only commands whose result the idempotency record keeps (encodeIdem): a
// join is idempotent by itself, and its place would not be replayed.
func idempotentOK(t Type) bool {
	switch t {
	case TypeCreateEvent, TypeUpdateEvent, TypeHold, TypeRelease, TypePurchase,
		TypeExtendHold, TypeCancelOrder, TypeExchange, TypeCheckout, TypeAuthorized, TypeSetGrant, TypeHoldArea, TypePutVenue:
		return true
	}
	return false
}

func (c *Idempotent) encode(w *writer) {
	w.str(c.Subject)
	w.str(c.Key)
	w.bytes(c.Hash)
	w.bytes(EncodeCommand(c.Command))
}

func (c *Idempotent) decode(r *reader) {
	c.Subject = r.str()
	c.Key = r.str()
	c.Hash = r.bytes()
	inner := r.bytesMax(CommandBytesMax)
	if r.err != nil {
		return
	}
	cmd, err := DecodeCommand(inner)
	if err != nil || !idempotentOK(cmd.Type()) {
		r.fail()
		return
	}
	c.Command = cmd
}

// newCommand returns an empty command of type t, or nil for an unknown type.
func newCommand(t Type) Command {
	switch t {
	case TypeCreateEvent:
		return &CreateEvent{}
	case TypeUpdateEvent:
		return &UpdateEvent{}
	case TypeHold:
		return &Hold{}
	case TypeRelease:
		return &Release{}
	case TypePurchase:
		return &Purchase{}
	case TypeExpire:
		return &Expire{}
	case TypePutNode:
		return &PutNode{}
	case TypeRemoveNode:
		return &RemoveNode{}
	case TypeExtendHold:
		return &ExtendHold{}
	case TypeCancelOrder:
		return &CancelOrder{}
	case TypeExchange:
		return &Exchange{}
	case TypeIdempotent:
		return &Idempotent{}
	case TypeCheckout:
		return &CheckoutBegin{}
	case TypeComplete:
		return &CheckoutComplete{}
	case TypeFail:
		return &CheckoutFail{}
	case TypeRefundDone:
		return &RefundDone{}
	case TypeVerifyDone:
		return &VerifyDone{}
	case TypeSetGrant:
		return &SetGrant{}
	case TypeAuthorized:
		return &Authorized{}
	case TypeProtectSale:
		return &ProtectSale{}
	case TypeJoinQueue:
		return &JoinQueue{}
	case TypeOpenQueue:
		return &OpenQueue{}
	case TypeAdvanceAdmission:
		return &AdvanceAdmission{}
	case TypePutVenue:
		return &PutVenue{}
	case TypeHoldArea:
		return &HoldArea{}
	}
	return nil
}

// AppendCommand appends the encoding of c to dst.
func AppendCommand(dst []byte, c Command) []byte {
	w := writer{b: dst}
	w.u8(commandVersion)
	w.u8(uint8(c.Type()))
	c.encode(&w)
	return w.b
}

// EncodeCommand returns the encoding of c.
func EncodeCommand(c Command) []byte { return AppendCommand(nil, c) }

// DecodeCommand decodes one command. It rejects an unknown version or type
// and malformed or trailing bytes.
func DecodeCommand(b []byte) (Command, error) {
	r := reader{b: b}
	if v := r.u8(); r.err == nil && v != commandVersion {
		return nil, fmt.Errorf("decode command: unknown version %d", v)
	}
	t := Type(r.u8())
	if r.err != nil {
		return nil, fmt.Errorf("decode command: %w", r.err)
	}
	c := newCommand(t)
	if c == nil {
		return nil, fmt.Errorf("decode command: unknown type %d", t)
	}
	c.decode(&r)
	if err := r.done(fmt.Sprintf("command type %d", t)); err != nil {
		return nil, err
	}
	return c, nil
}

// EncodeEntry encodes already-encoded commands as one log entry stamped with
// the leader's clock.
func EncodeEntry(nowMs int64, cmds [][]byte) []byte {
	n := 16
	for _, c := range cmds {
		n += len(c) + 3
	}
	w := writer{b: make([]byte, 0, n)}
	w.u8(entryVersion)
	w.uvarint(uint64(nowMs))
	w.uvarint(uint64(len(cmds)))
	for _, c := range cmds {
		w.bytes(c)
	}
	return w.b
}

// DecodeEntry splits a log entry into its stamp and its encoded commands
// (which alias b).
func DecodeEntry(b []byte) (nowMs int64, cmds [][]byte, err error) {
	r := reader{b: b}
	if v := r.u8(); r.err == nil && v != entryVersion {
		return 0, nil, fmt.Errorf("decode entry: unknown version %d", v)
	}
	stamp := r.uvarint()
	if stamp > 1<<62 {
		r.fail()
	}
	n := r.count(EntryCommandsMax, 1)
	cmds = make([][]byte, n)
	for i := range cmds {
		cmds[i] = r.bytesMax(CommandBytesMax)
	}
	if err := r.done("entry"); err != nil {
		return 0, nil, err
	}
	return int64(stamp), cmds, nil
}

// encodeEvent writes an event value; decodeEvent reads it. The same encoding
// is used in commands and in the store.
func encodeEvent(w *writer, e *boxoffice.Event) {
	w.str(e.ID)
	w.str(e.Name)
	w.str(e.Type)
	w.str(e.Location)
	w.varint(e.StartsAtMs)
	w.str(e.Organiser)
	w.uvarint(uint64(len(e.Categories)))
	for _, c := range e.Categories {
		w.str(c.ID)
		w.str(c.Name)
		w.varint(c.PriceCents)
	}
	// An event with none of the later fields (areas, positions, a venue
	// id) is written exactly as before they existed; one with any of them
	// sets layoutExt in the section count and writes them after the
	// sections, so that entries and values written earlier read the same.
	ext := eventHasExt(e)
	n := uint64(len(e.Venue.Sections))
	if ext {
		n |= layoutExt
	}
	w.uvarint(n)
	for _, s := range e.Venue.Sections {
		w.str(s.ID)
		w.str(s.Category)
		w.int(s.Rows)
		w.int(s.SeatsPerRow)
	}
	if ext {
		for _, s := range e.Venue.Sections {
			encodePoint(w, s.Position)
			encodeSeatDetails(w, s)
		}
		encodeAreas(w, e.Venue.Areas)
		w.str(e.VenueID)
		w.int(e.VenueVersion)
	}
	w.int(e.Limits.MaxSeatsPerBuyer)
	w.int(e.Limits.HoldTTLSeconds)
}

func decodeEvent(r *reader, e *boxoffice.Event) {
	e.ID = r.str()
	e.Name = r.str()
	e.Type = r.str()
	e.Location = r.str()
	e.StartsAtMs = r.varint()
	e.Organiser = r.str()
	e.Categories = make([]boxoffice.Category, r.count(boxoffice.CategoriesMax, 3))
	for i := range e.Categories {
		c := &e.Categories[i]
		c.ID = r.str()
		c.Name = r.str()
		c.PriceCents = r.varint()
	}
	n := r.uvarint()
	ext := n&layoutExt != 0
	n &^= layoutExt
	if n > boxoffice.SectionsMax || n*4 > uint64(len(r.b)) {
		r.fail()
		n = 0
	}
	e.Venue.Sections = make([]boxoffice.Section, n)
	for i := range e.Venue.Sections {
		s := &e.Venue.Sections[i]
		s.ID = r.str()
		s.Category = r.str()
		s.Rows = r.int()
		s.SeatsPerRow = r.int()
	}
	if ext {
		for i := range e.Venue.Sections {
			e.Venue.Sections[i].Position = decodePoint(r)
			decodeSeatDetails(r, &e.Venue.Sections[i])
		}
		e.Venue.Areas = decodeAreas(r)
		e.VenueID = r.str()
		e.VenueVersion = r.int()
		if !eventHasExt(e) {
			r.fail() // one event, one encoding
		}
	}
	e.Limits.MaxSeatsPerBuyer = r.int()
	e.Limits.HoldTTLSeconds = r.int()
}

// layoutExt, set in an event's section count, says that the fields added
// with reusable venues follow the sections.
const layoutExt = 1 << 31

func eventHasExt(e *boxoffice.Event) bool {
	if len(e.Venue.Areas) > 0 || e.VenueID != "" || e.VenueVersion != 0 {
		return true
	}
	for _, s := range e.Venue.Sections {
		if s.Position != nil || len(s.RowSeats) > 0 || len(s.Gaps) > 0 || len(s.Flags) > 0 {
			return true
		}
	}
	return false
}

// encodeSeatDetails writes a section's row counts, gaps and flags; an
// absent list and an empty one are the same (nil when decoded).
func encodeSeatDetails(w *writer, s boxoffice.Section) {
	w.uvarint(uint64(len(s.RowSeats)))
	for _, n := range s.RowSeats {
		w.int(n)
	}
	w.strs(s.Gaps)
	w.uvarint(uint64(len(s.Flags)))
	for _, f := range s.Flags {
		w.str(f.Flag)
		w.strs(f.Seats)
	}
}

func decodeSeatDetails(r *reader, s *boxoffice.Section) {
	if n := r.count(boxoffice.RowsPerSectionMax, 1); n > 0 {
		s.RowSeats = make([]int, n)
		for i := range s.RowSeats {
			s.RowSeats[i] = r.int()
		}
	}
	if gaps := r.strs(); len(gaps) > 0 {
		s.Gaps = gaps
	}
	if n := r.count(boxoffice.FlagsPerSectionMax, 2); n > 0 {
		s.Flags = make([]boxoffice.SeatFlag, n)
		for i := range s.Flags {
			s.Flags[i].Flag = r.str()
			if seats := r.strs(); len(seats) > 0 {
				s.Flags[i].Seats = seats
			}
		}
	}
}

// encodePoint writes an optional position: a presence byte, then x and y.
func encodePoint(w *writer, p *boxoffice.Point) {
	if p == nil {
		w.u8(0)
		return
	}
	w.u8(1)
	w.int(p.X)
	w.int(p.Y)
}

func decodePoint(r *reader) *boxoffice.Point {
	switch r.u8() {
	case 0:
		return nil
	case 1:
		return &boxoffice.Point{X: r.int(), Y: r.int()}
	}
	r.fail()
	return nil
}

func encodeAreas(w *writer, areas []boxoffice.Area) {
	w.uvarint(uint64(len(areas)))
	for _, a := range areas {
		w.str(a.ID)
		w.str(a.Category)
		w.int(a.Capacity)
		encodePoint(w, a.Position)
	}
}

func decodeAreas(r *reader) []boxoffice.Area {
	n := r.count(boxoffice.AreasMax, 4)
	if n == 0 {
		return nil
	}
	areas := make([]boxoffice.Area, n)
	for i := range areas {
		a := &areas[i]
		a.ID = r.str()
		a.Category = r.str()
		a.Capacity = r.int()
		a.Position = decodePoint(r)
	}
	return areas
}

func encodeSections(w *writer, secs []boxoffice.Section) {
	w.uvarint(uint64(len(secs)))
	for _, s := range secs {
		w.str(s.ID)
		w.str(s.Category)
		w.int(s.Rows)
		w.int(s.SeatsPerRow)
		encodePoint(w, s.Position)
		encodeSeatDetails(w, s)
	}
}

func decodeSections(r *reader) []boxoffice.Section {
	n := r.count(boxoffice.SectionsMax, 5)
	if n == 0 {
		return nil
	}
	secs := make([]boxoffice.Section, n)
	for i := range secs {
		s := &secs[i]
		s.ID = r.str()
		s.Category = r.str()
		s.Rows = r.int()
		s.SeatsPerRow = r.int()
		s.Position = decodePoint(r)
		decodeSeatDetails(r, s)
	}
	return secs
}
