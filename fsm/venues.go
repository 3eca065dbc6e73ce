package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// Reusable venues and general-admission areas.
//
// A venue lives in the shard its id hashes to (as an event id would); every
// version is kept, and the newest is also kept under the venue's head key,
// so that reading "the venue" is one point read:
//
//	V <venue>                       → newest version
//	W <venue> 0 <version u32 BE>    → every version
//
// An event made from a venue gets a copy of the layout in its CreateEvent
// command, so its holds never read another shard, and editing the venue
// never changes it.
//
// A general-admission area's places are seats of the event's layout (see
// boxoffice.Layout), so that purchase, release, expiry, cancel, exchange
// and counts treat them as seats. Only a hold picks them differently: it
// asks for a quantity, and the state machine hands out places from a
// per-area allocator, without a scan:
//
//	g <event> 0 <area>                    → next (places 1..next were handed out once), free-list length
//	G <event> 0 <area> 0 <pos u32 BE>     → free list: a released place's index, a stack
//
// A place is in exactly one of: never handed out (number > next), on the
// free list, or taken (it has a seat record). freeSeats pushes a place the
// moment its record is deleted; a hold pops it. A place held by an expired
// hold returns to the pool when the sweep (or a release) deletes its
// record, not before: an area reads as full a little longer than it is.
const (
	tagVenue        = 'V'
	tagVenueVersion = 'W'
	tagArea         = 'g'
	tagAreaFree     = 'G'
)

// Types 18..21 are the venue work's.
const (
	TypePutVenue Type = 18
	TypeHoldArea Type = 19
)

// PutVenue creates a venue (Create) or adds a version of it. Owner is the
// caller; only the venue's owner or an admin may add a version.
type PutVenue struct {
	Venue  boxoffice.VenueChart
	Create bool
	Admin  bool
}

// HoldArea takes Quantity places of a general-admission area for Buyer, or
// none; the state machine picks them.
type HoldArea struct {
	Event      string
	Buyer      string
	Area       string
	Quantity   int
	TTLSeconds int // 0: the event's default
}

func (PutVenue) Type() Type { return TypePutVenue }
func (HoldArea) Type() Type { return TypeHoldArea }

func (c *PutVenue) encode(w *writer) {
	encodeVenueChart(w, &c.Venue)
	w.u8(boolByte(c.Create))
	w.u8(boolByte(c.Admin))
}

func (c *PutVenue) decode(r *reader) {
	decodeVenueChart(r, &c.Venue)
	c.Create = readBool(r)
	c.Admin = readBool(r)
}

func (c *HoldArea) encode(w *writer) {
	w.str(c.Event)
	w.str(c.Buyer)
	w.str(c.Area)
	w.int(c.Quantity)
	w.int(c.TTLSeconds)
}

func (c *HoldArea) decode(r *reader) {
	c.Event = r.str()
	c.Buyer = r.str()
	c.Area = r.str()
	c.Quantity = r.int()
	c.TTLSeconds = r.int()
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func readBool(r *reader) bool {
	switch r.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail()
	return false
}

func encodeVenueChart(w *writer, v *boxoffice.VenueChart) {
	w.str(v.ID)
	w.int(v.Version)
	w.str(v.Name)
	w.str(v.Location)
	w.str(v.Owner)
	w.varint(v.UpdatedAtMs)
	w.uvarint(uint64(len(v.Categories)))
	for _, c := range v.Categories {
		w.str(c.ID)
		w.str(c.Name)
	}
	encodeSections(w, v.Sections)
	encodeAreas(w, v.Areas)
}

func decodeVenueChart(r *reader, v *boxoffice.VenueChart) {
	v.ID = r.str()
	v.Version = r.int()
	v.Name = r.str()
	v.Location = r.str()
	v.Owner = r.str()
	v.UpdatedAtMs = r.varint()
	v.Categories = make([]boxoffice.VenueCategory, r.count(boxoffice.CategoriesMax, 2))
	for i := range v.Categories {
		v.Categories[i] = boxoffice.VenueCategory{ID: r.str(), Name: r.str()}
	}
	v.Sections = decodeSections(r)
	v.Areas = decodeAreas(r)
}

func encodeVenueValue(v *boxoffice.VenueChart) []byte {
	w := writer{b: make([]byte, 0, 128)}
	w.u8(valueVersion)
	encodeVenueChart(&w, v)
	return w.b
}

func decodeVenueValue(b []byte) (*boxoffice.VenueChart, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, fmt.Errorf("venue value version %d: %w", v, errMalformed)
	}
	v := &boxoffice.VenueChart{}
	decodeVenueChart(&r, v)
	return v, r.done("venue")
}

func venueVersionKey(id string, version int) []byte {
	return binary.BigEndian.AppendUint32(prefix(tagVenueVersion, id), uint32(version))
}

func (a *applier) putVenue(c *PutVenue) (Result, error) {
	v := c.Venue
	if !boxoffice.ValidID(v.Owner) {
		return reject(boxoffice.CodeInvalidArgument, "owner %q is not a valid id", v.Owner)
	}
	if err := v.Validate(); err != nil {
		return Result{Err: err}, nil
	}
	raw, ok, err := a.get(key(tagVenue, v.ID))
	if err != nil {
		return Result{}, err
	}
	version := 1
	switch {
	case c.Create && ok:
		return reject(boxoffice.CodeVenueExists, "venue %q exists", v.ID)
	case !c.Create && !ok:
		return reject(boxoffice.CodeVenueNotFound, "venue %q", v.ID)
	case !c.Create:
		head, err := decodeVenueValue(raw)
		if err != nil {
			return Result{}, err
		}
		if !c.Admin && head.Owner != v.Owner {
			return reject(boxoffice.CodeForbidden, "venue %q belongs to another organiser", v.ID)
		}
		if head.Version >= boxoffice.VenueVersionsMax {
			return reject(boxoffice.CodeInvalidArgument, "venue %q has %d versions, the most a venue may have", v.ID, head.Version)
		}
		version = head.Version + 1
		v.Owner = head.Owner
	}
	v.Version = version
	v.UpdatedAtMs = a.nowMs
	enc := encodeVenueValue(&v)
	if err := a.set(key(tagVenue, v.ID), enc); err != nil {
		return Result{}, err
	}
	if err := a.set(venueVersionKey(v.ID, version), enc); err != nil {
		return Result{}, err
	}
	return Result{Venue: &v}, nil
}

// Venue returns a venue's version (0: the newest), or venue_not_found.
func (s *Store) Venue(id string, version int) (*boxoffice.VenueChart, error) {
	k := key(tagVenue, id)
	if version != 0 {
		if version < 0 || version > boxoffice.VenueVersionsMax {
			return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "venue version must be 1..%d", boxoffice.VenueVersionsMax)
		}
		k = venueVersionKey(id, version)
	}
	v, ok, err := s.get(k)
	if err != nil {
		return nil, err
	}
	if !ok {
		if version != 0 {
			return nil, boxoffice.Errorf(boxoffice.CodeVenueNotFound, "venue %q version %d", id, version)
		}
		return nil, boxoffice.Errorf(boxoffice.CodeVenueNotFound, "venue %q", id)
	}
	return decodeVenueValue(v)
}

// Venues lists the newest version of venues in id order, after the id
// after, at most limit.
func (s *Store) Venues(after string, limit int) ([]*boxoffice.VenueChart, error) {
	var out []*boxoffice.VenueChart
	lower := []byte{tagVenue}
	if after != "" {
		lower = append(key(tagVenue, after), 0)
	}
	err := s.scan(lower, []byte{tagVenue + 1}, func(k, v []byte) (bool, error) {
		vc, err := decodeVenueValue(v)
		if err != nil {
			return false, err
		}
		out = append(out, vc)
		return len(out) < limit, nil
	})
	return out, err
}

// areaRec is an area's allocator: places 1..next have been handed out at
// least once; free of them are on the free list.
type areaRec struct {
	next int
	free int
}

func areaKey(event, area string) []byte { return key(tagArea, event, area) }

func areaFreeKey(event, area string, pos int) []byte {
	return binary.BigEndian.AppendUint32(prefix(tagAreaFree, event, area), uint32(pos))
}

func encodeAreaRec(r areaRec) []byte {
	w := writer{b: make([]byte, 0, 8)}
	w.u8(valueVersion)
	w.int(r.next)
	w.int(r.free)
	return w.b
}

func decodeAreaRec(b []byte) (areaRec, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return areaRec{}, fmt.Errorf("area value version %d: %w", v, errMalformed)
	}
	rec := areaRec{next: r.int(), free: r.int()}
	return rec, r.done("area")
}

func (a *applier) areaRec(event, area string) (areaRec, error) {
	v, ok, err := a.get(areaKey(event, area))
	if err != nil || !ok {
		return areaRec{}, err
	}
	return decodeAreaRec(v)
}

func (a *applier) putAreaRec(event, area string, rec areaRec) error {
	if rec.next == 0 && rec.free == 0 {
		return a.del(areaKey(event, area))
	}
	return a.set(areaKey(event, area), encodeAreaRec(rec))
}

// pushFreePlace puts a place whose seat record was just deleted back on its
// area's free list.
func (a *applier) pushFreePlace(ei *eventInfo, idx int) error {
	l := ei.layout
	sec, _, _ := l.Section(idx)
	rec, err := a.areaRec(ei.ev.ID, sec.ID)
	if err != nil {
		return err
	}
	if rec.free >= rec.next {
		return fmt.Errorf("area %q of event %q: a place freed with %d of %d on the free list", sec.ID, ei.ev.ID, rec.free, rec.next)
	}
	if err := a.set(areaFreeKey(ei.ev.ID, sec.ID, rec.free), binary.BigEndian.AppendUint32(nil, uint32(idx))); err != nil {
		return err
	}
	rec.free++
	return a.putAreaRec(ei.ev.ID, sec.ID, rec)
}

func (a *applier) holdArea(c *HoldArea) (Result, error) {
	if !boxoffice.ValidID(c.Buyer) {
		return reject(boxoffice.CodeInvalidArgument, "buyer %q is not a valid id", c.Buyer)
	}
	if c.Quantity < 1 || c.Quantity > boxoffice.SeatsPerHoldMax {
		return reject(boxoffice.CodeInvalidArgument, "quantity must be 1..%d", boxoffice.SeatsPerHoldMax)
	}
	ei, err := a.event(c.Event)
	if err != nil {
		return Result{}, err
	}
	if ei == nil {
		return reject(boxoffice.CodeEventNotFound, "event %q", c.Event)
	}
	first, capacity, ok := ei.layout.AreaRange(c.Area)
	if !ok {
		return reject(boxoffice.CodeInvalidArgument, "event %q has no general-admission area %q", c.Event, c.Area)
	}
	rec, err := a.areaRec(c.Event, c.Area)
	if err != nil {
		return Result{}, err
	}
	if avail := capacity - rec.next + rec.free; c.Quantity > avail {
		return reject(boxoffice.CodeSeatUnavailable, "area %q of event %q has %d free places, not %d", c.Area, c.Event, avail, c.Quantity)
	}
	limit := ei.ev.Limits.MaxSeatsPerBuyer
	have, err := a.buyerSeats(c.Event, c.Buyer)
	if err != nil {
		return Result{}, err
	}
	if have+c.Quantity > limit {
		return reject(boxoffice.CodeBuyerLimit, "buyer %q has %d seats of event %q; %d more would pass the limit of %d", c.Buyer, have, c.Event, c.Quantity, limit)
	}
	// A protected on-sale admits area holds as it admits any other: the
	// check takeSeats makes again, made here before any write.
	if _, _, rej, err := a.admissionCheck(c.Event, c.Buyer); err != nil || rej != nil {
		return Result{Err: rej}, err
	}
	// Every check is done: from here on, only writes. Take from the free
	// list first (newest first), then new numbers.
	idx := make([]int, 0, c.Quantity)
	for len(idx) < c.Quantity && rec.free > 0 {
		k := areaFreeKey(c.Event, c.Area, rec.free-1)
		v, ok, err := a.get(k)
		if err != nil {
			return Result{}, err
		}
		if !ok || len(v) != 4 {
			return Result{}, fmt.Errorf("area %q of event %q: free-list entry %d is missing", c.Area, c.Event, rec.free-1)
		}
		idx = append(idx, int(binary.BigEndian.Uint32(v)))
		if err := a.del(k); err != nil {
			return Result{}, err
		}
		rec.free--
	}
	for len(idx) < c.Quantity {
		idx = append(idx, first+rec.next)
		rec.next++
	}
	for _, n := range idx {
		// The allocator's invariant: a place it hands out has no record.
		if s, ok, err := a.seat(c.Event, n); err != nil {
			return Result{}, err
		} else if ok {
			panic(fmt.Sprintf("fsm: invariant broken: area %q of event %q handed out place %d, which is %+v", c.Area, c.Event, n, s))
		}
	}
	if err := a.putAreaRec(c.Event, c.Area, rec); err != nil {
		return Result{}, err
	}
	slices.Sort(idx)
	seats := make([]string, len(idx))
	for i, n := range idx {
		seats[i] = ei.layout.ID(n)
	}
	return a.takeSeats(ei, c.Buyer, seats, idx, c.TTLSeconds)
}

// resetAreas forgets the allocators of an event's areas: its layout is
// changing while none of its places is taken.
func (a *applier) resetAreas(event string) error {
	for _, tag := range []byte{tagArea, tagAreaFree} {
		p := prefix(tag, event)
		it, err := a.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
		if err != nil {
			return err
		}
		var keys [][]byte
		for it.First(); it.Valid(); it.Next() {
			keys = append(keys, slices.Clone(it.Key()))
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		for _, k := range keys {
			if err := a.del(k); err != nil {
				return err
			}
		}
	}
	return nil
}
