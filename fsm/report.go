package fsm

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"boxoffice"
)

// The sales report's counters, kept in the same batch as the seats they
// count, so that a report reads a few keys per section instead of every
// seat:
//
//	R <event> 0 's' <section>            → held, sold (seat records), revenueCents of the sold
//	R <event> 0 'm' <minute u64 BE>      → seats sold and the amount charged for them in that minute
//	R <event> 0 'p' <order>              → the unit price of each category of the order's seats
//
// Every seat write goes through applier.set or applier.del, which compare
// the seat's record before and after and add the difference to its
// section's counter; the applier writes the sums once per batch. Held counts
// seat records of holds, some of which may have expired without the sweep
// having reached them yet: the report subtracts those (bounded by the holds
// past their expiry in the expiry and checkout indexes).
//
// Revenue is what the seats were sold for, not their price now: an order's
// unit prices are recorded when its amount is computed (a purchase, a
// checkout's begin), one per category, since every seat of one category in
// one order costs the same and an exchange keeps categories. A seat brings
// its order's price of its category to its section's revenue when it is
// sold and takes it away when it is freed.

const (
	reportSection = 's'
	reportMinute  = 'm'
	reportPrices  = 'p'
	// reportExpiredScanMax bounds the expired, unswept holds a report
	// looks at; the sweep keeps them far fewer.
	reportExpiredScanMax = 10_000
)

// sectionCount is a section's counter, or a change to it.
type sectionCount struct {
	held, sold   int64
	revenueCents int64
}

func sectionCountKey(event, section string) []byte {
	return append(append(prefix(tagReport, event), reportSection), section...)
}

func minuteKey(event string, minute int64) []byte {
	return binary.BigEndian.AppendUint64(append(prefix(tagReport, event), reportMinute), uint64(minute))
}

func encodeCount(c sectionCount) []byte {
	w := writer{}
	w.u8(valueVersion)
	w.varint(c.held)
	w.varint(c.sold)
	w.varint(c.revenueCents)
	return w.b
}

func decodeCount(b []byte) (sectionCount, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return sectionCount{}, fmt.Errorf("counter value version %d: %w", v, errMalformed)
	}
	c := sectionCount{held: r.varint(), sold: r.varint(), revenueCents: r.varint()}
	return c, r.done("counter")
}

// countSeat adds a seat write to its section's counter change: prev is the
// seat's record before (nil: free), next after (nil: free).
func (a *applier) countSeat(k, prev, next []byte) error {
	ps, _, err := seatStateOf(prev)
	if err != nil {
		return err
	}
	ns, _, err := seatStateOf(next)
	if err != nil {
		return err
	}
	if ps == ns {
		return nil
	}
	ei, err := a.seatEvent(k[1 : len(k)-5])
	if err != nil {
		return err
	}
	sec, _, _ := ei.layout.Section(seatIndexOf(k))
	// Strings of the event's own, so that counting a seat allocates nothing
	// but the first change of a section in a batch.
	d := a.unitCount(ei.ev.ID, sec.ID)
	switch ps {
	case boxoffice.SeatHeld:
		d.held--
	case boxoffice.SeatSold:
		p, err := a.soldPrice(ei, prev, sec.Category)
		if err != nil {
			return err
		}
		d.sold--
		d.revenueCents -= p
	}
	switch ns {
	case boxoffice.SeatHeld:
		d.held++
	case boxoffice.SeatSold:
		p, err := a.soldPrice(ei, next, sec.Category)
		if err != nil {
			return err
		}
		d.sold++
		d.revenueCents += p
	}
	return nil
}

// unitCount is the batch's change to the counter of one unit of an event:
// a section (by its id), or whatever else holds seats of one category (a
// general-admission area, by its id, counted by quantity rather than seat
// records, adds its own changes here and its line in reportUnits).
func (a *applier) unitCount(event, unit string) *sectionCount {
	if a.counts == nil {
		a.counts = make(map[countKey]*sectionCount)
	}
	ck := countKey{event: event, id: unit}
	d := a.counts[ck]
	if d == nil {
		d = &sectionCount{}
		a.counts[ck] = d
	}
	return d
}

// countKey names a section's counter (id: the section) or a minute of
// sales (minute) of an event, in the applier's changes of one batch.
type countKey struct {
	event  string
	id     string
	minute int64
}

// seatEvent is the event of a seat key's event part, remembered from the
// last seat: a batch's seats are mostly of one event.
func (a *applier) seatEvent(event []byte) (*eventInfo, error) {
	if a.seatEI != nil && a.seatEI.ev.ID == string(event) {
		return a.seatEI, nil
	}
	ei, err := a.mustEvent(string(event), "a seat")
	if err != nil {
		return nil, err
	}
	a.seatEI = ei
	return ei, nil
}

// soldPrice is what the sold seat whose record is rec, of category, was
// sold for.
func (a *applier) soldPrice(ei *eventInfo, rec []byte, category string) (int64, error) {
	s, err := decodeSeat(rec)
	if err != nil {
		return 0, err
	}
	return a.orderPrice(ei, s.owner, category)
}

// catPrice is the unit price of one category's seats in one order.
type catPrice struct {
	category   string
	priceCents int64
}

func orderPricesKey(event, order string) []byte {
	return append(append(prefix(tagReport, event), reportPrices), order...)
}

func encodePrices(ps []catPrice) []byte {
	w := writer{}
	w.u8(valueVersion)
	w.uvarint(uint64(len(ps)))
	for _, p := range ps {
		w.str(p.category)
		w.varint(p.priceCents)
	}
	return w.b
}

func decodePrices(b []byte) ([]catPrice, error) {
	r := reader{b: b}
	if v := r.u8(); v != valueVersion {
		return nil, fmt.Errorf("order prices value version %d: %w", v, errMalformed)
	}
	ps := make([]catPrice, r.count(boxoffice.CategoriesMax, 2))
	for i := range ps {
		ps[i] = catPrice{category: r.str(), priceCents: r.varint()}
	}
	return ps, r.done("order prices")
}

// putOrderPrices records the current unit price of each category of an
// order's seats: what the order's amount is computed from.
func (a *applier) putOrderPrices(ei *eventInfo, o *boxoffice.Order) error {
	var ps []catPrice
	for _, id := range o.Seats {
		n, ok := ei.layout.Index(id)
		if !ok {
			return fmt.Errorf("seat %q of order %q is not in event %q", id, o.ID, o.Event)
		}
		sec, _, _ := ei.layout.Section(n)
		if slices.ContainsFunc(ps, func(p catPrice) bool { return p.category == sec.Category }) {
			continue
		}
		c, _ := ei.ev.Category(sec.Category)
		ps = append(ps, catPrice{category: sec.Category, priceCents: c.PriceCents})
	}
	slices.SortFunc(ps, func(x, y catPrice) int { return strings.Compare(x.category, y.category) })
	if a.prices == nil {
		a.prices = make(map[string][]catPrice)
	}
	a.prices[o.ID] = ps
	return a.set(orderPricesKey(o.Event, o.ID), encodePrices(ps))
}

// orderPrice is what a seat of category cost in order.
func (a *applier) orderPrice(ei *eventInfo, order, category string) (int64, error) {
	ps, ok := a.prices[order]
	if !ok {
		v, found, err := a.get(orderPricesKey(ei.ev.ID, order))
		if err != nil {
			return 0, err
		}
		if found {
			if ps, err = decodePrices(v); err != nil {
				return 0, err
			}
		}
		if a.prices == nil {
			a.prices = make(map[string][]catPrice)
		}
		a.prices[order] = ps
	}
	for _, p := range ps {
		if p.category == category {
			return p.priceCents, nil
		}
	}
	// An order sold before its prices were recorded (a store older than
	// the report): its category's price now, the best there is.
	c, _ := ei.ev.Category(category)
	return c.PriceCents, nil
}

func seatStateOf(v []byte) (boxoffice.SeatState, int64, error) {
	if v == nil {
		return boxoffice.SeatFree, 0, nil
	}
	return decodeSeatState(v)
}

// countSale adds an order paid now to its event's sales series.
func (a *applier) countSale(o *boxoffice.Order) {
	if a.minutes == nil {
		a.minutes = make(map[countKey]*sectionCount)
	}
	mk := countKey{event: o.Event, minute: a.nowMs / 60_000}
	d := a.minutes[mk]
	if d == nil {
		d = &sectionCount{}
		a.minutes[mk] = d
	}
	d.sold += int64(len(o.Seats))
	d.revenueCents += o.AmountCents
}

// flushCounts writes the batch's counter changes, in key order.
func (a *applier) flushCounts() error {
	for _, m := range []map[countKey]*sectionCount{a.counts, a.minutes} {
		keys := make([]countKey, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y countKey) int {
			return cmp.Or(strings.Compare(x.event, y.event), strings.Compare(x.id, y.id), cmp.Compare(x.minute, y.minute))
		})
		for _, ck := range keys {
			d := m[ck]
			var k []byte
			if ck.id != "" {
				k = sectionCountKey(ck.event, ck.id)
			} else {
				k = minuteKey(ck.event, ck.minute)
			}
			// Committed state: counters are written here only, once per
			// key and batch. (A read through the indexed batch would build
			// iterators over it.)
			cur := sectionCount{}
			v, closer, err := a.s.db.Get(k)
			switch {
			case errors.Is(err, pebble.ErrNotFound):
			case err != nil:
				return err
			default:
				cur, err = decodeCount(v)
				closer.Close()
				if err != nil {
					return err
				}
			}
			cur.held += d.held
			cur.sold += d.sold
			cur.revenueCents += d.revenueCents
			if cur.held < 0 || cur.sold < 0 {
				return fmt.Errorf("counter %q would be %+v", k, cur)
			}
			if cur == (sectionCount{}) {
				if err := a.b.Delete(k, nil); err != nil {
					return err
				}
				continue
			}
			if err := a.b.Set(k, encodeCount(cur), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Report builds an event's sales report from its counters. It reads one
// Pebble snapshot, so that counters, indexes and clock are of one applied
// index, whatever commits meanwhile.
func (s *Store) Report(event string) (*boxoffice.Report, error) {
	v, err := s.snapView()
	if err != nil {
		return nil, err
	}
	defer v.close()
	raw, ok, err := v.get(key(tagEvent, event))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeEventNotFound, "event %q", event)
	}
	ev, err := decodeEventValue(raw)
	if err != nil {
		return nil, err
	}
	ei := newEventInfo(ev)
	now, err := v.nowMs()
	if err != nil {
		return nil, err
	}
	rep := &boxoffice.Report{Event: event, AtMs: now, Total: boxoffice.ReportLine{ID: "total"}}
	rep.Sections = reportUnits(ei)
	bySection := make(map[string]int, len(rep.Sections))
	for i, l := range rep.Sections {
		bySection[l.ID] = i
	}
	p := append(prefix(tagReport, event), reportSection)
	err = v.scan(p, upperBound(p), func(k, val []byte) (bool, error) {
		c, err := decodeCount(val)
		if err != nil {
			return false, err
		}
		if i, ok := bySection[string(k[len(p):])]; ok {
			l := &rep.Sections[i]
			l.Held, l.Sold, l.RevenueCents = int(c.held), int(c.sold), c.revenueCents
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := v.uncountExpired(event, ei, now, func(section string) { rep.Sections[bySection[section]].Held-- }); err != nil {
		return nil, err
	}
	byCat := make(map[string]int, len(ei.ev.Categories))
	rep.Categories = make([]boxoffice.ReportLine, len(ei.ev.Categories))
	for i, c := range ei.ev.Categories {
		rep.Categories[i].ID = c.ID
		byCat[c.ID] = i
	}
	add := func(dst *boxoffice.ReportLine, l boxoffice.ReportLine) {
		dst.Capacity += l.Capacity
		dst.Held += l.Held
		dst.Sold += l.Sold
		dst.RevenueCents += l.RevenueCents
	}
	for i := range rep.Sections {
		l := &rep.Sections[i]
		l.Free = l.Capacity - l.Held - l.Sold
		add(&rep.Categories[byCat[l.Category]], *l)
		add(&rep.Total, *l)
	}
	for i := range rep.Categories {
		l := &rep.Categories[i]
		l.Free = l.Capacity - l.Held - l.Sold
	}
	rep.Total.Free = rep.Total.Capacity - rep.Total.Held - rep.Total.Sold
	rep.Minutes, err = v.salesMinutes(event, now)
	return rep, err
}

// snapshotView reads a Pebble snapshot of the store. It holds the store's
// read lock until closed, so that a Restore (which closes Pebble, and may
// not under an open snapshot) waits for it: a report takes milliseconds.
type snapshotView struct {
	s    *Store
	snap *pebble.Snapshot
}

func (s *Store) snapView() (snapshotView, error) {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return snapshotView{}, errClosed
	}
	return snapshotView{s: s, snap: s.db.NewSnapshot()}, nil
}

func (v snapshotView) close() {
	v.snap.Close()
	v.s.mu.RUnlock()
}

func (v snapshotView) get(k []byte) ([]byte, bool, error) {
	val, closer, err := v.snap.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %q: %w", k, err)
	}
	defer closer.Close()
	return slices.Clone(val), true, nil
}

// nowMs is the state machine's clock as of the snapshot.
func (v snapshotView) nowMs() (int64, error) {
	val, ok, err := v.get(keyApplied)
	if err != nil || !ok {
		return 0, err
	}
	if len(val) != 16 {
		return 0, fmt.Errorf("applied index value has %d bytes: %w", len(val), errMalformed)
	}
	return int64(binary.BigEndian.Uint64(val[8:])), nil
}

// scan calls fn for each key in [lower, upper) until fn returns false.
func (v snapshotView) scan(lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	return scanReader(v.snap, lower, upper, fn)
}

// reportUnits lists the lines of a report's sections, empty but for their
// capacity: one per unit with a counter (unitCount), in layout order.
func reportUnits(ei *eventInfo) []boxoffice.ReportLine {
	out := make([]boxoffice.ReportLine, len(ei.layout.Sections))
	for i, sec := range ei.layout.Sections {
		out[i] = boxoffice.ReportLine{ID: sec.ID, Category: sec.Category, Capacity: ei.layout.SectionSeats(i)} // holes left out; an area is a unit of its places
	}
	return out
}

// uncountExpired calls uncount with the section of every seat that a
// counter counts as held but whose hold has expired without the sweep
// having freed it: the seats of holds past their expiry in the expiry index
// and of checkouts past their lease.
func (s snapshotView) uncountExpired(event string, ei *eventInfo, now int64, uncount func(section string)) error {
	var holds []string
	lower, upper := []byte{tagExpiry}, expiryKey(now+1, "")
	err := s.scan(lower, upper, func(k, _ []byte) (bool, error) {
		holds = append(holds, string(k[9:]))
		return len(holds) < reportExpiredScanMax, nil
	})
	if err != nil {
		return err
	}
	var checkouts []string
	err = s.scan([]byte{tagCheckout}, []byte{tagCheckout + 1}, func(k, _ []byte) (bool, error) {
		checkouts = append(checkouts, string(k[1:]))
		return len(checkouts) < reportExpiredScanMax, nil
	})
	if err != nil {
		return err
	}
	for _, id := range checkouts {
		v, ok, err := s.get(key(tagOrder, id))
		if err != nil || !ok {
			return err
		}
		o, err := decodeOrder(v)
		if err != nil {
			return err
		}
		if o.Event == event && o.LeaseUntilMs <= now {
			holds = append(holds, o.Hold)
		}
	}
	for _, id := range holds {
		v, ok, err := s.get(key(tagHold, id))
		if err != nil || !ok {
			return err
		}
		h, err := decodeHold(v)
		if err != nil {
			return err
		}
		if h.Event != event {
			continue
		}
		for _, seat := range h.Seats {
			n, ok := ei.layout.Index(seat)
			if !ok {
				continue
			}
			v, ok, err := s.get(seatKey(event, n))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			rec, err := decodeSeat(v)
			if err != nil {
				return err
			}
			if rec.state == boxoffice.SeatHeld && rec.owner == h.ID && !rec.takenAt(now) {
				sec, _, _ := ei.layout.Section(n)
				uncount(sec.ID)
			}
		}
	}
	return nil
}

// salesMinutes reads the sales series, zeros filled in, up to now's minute.
func (s snapshotView) salesMinutes(event string, now int64) ([]boxoffice.MinuteSales, error) {
	p := append(prefix(tagReport, event), reportMinute)
	last := now / 60_000
	first := last - boxoffice.ReportMinutesMax + 1
	var got []boxoffice.MinuteSales
	err := s.scan(binary.BigEndian.AppendUint64(slices.Clone(p), uint64(max(first, 0))), upperBound(p), func(k, v []byte) (bool, error) {
		c, err := decodeCount(v)
		if err != nil {
			return false, err
		}
		m := int64(binary.BigEndian.Uint64(k[len(p):]))
		got = append(got, boxoffice.MinuteSales{MinuteMs: m * 60_000, Seats: int(c.sold), RevenueCents: c.revenueCents})
		return true, nil
	})
	if err != nil || len(got) == 0 {
		return nil, err
	}
	start := got[0].MinuteMs / 60_000
	end := max(last, got[len(got)-1].MinuteMs/60_000)
	out := make([]boxoffice.MinuteSales, 0, end-start+1)
	j := 0
	for m := start; m <= end && len(out) < boxoffice.ReportMinutesMax; m++ {
		ms := boxoffice.MinuteSales{MinuteMs: m * 60_000}
		if j < len(got) && got[j].MinuteMs == ms.MinuteMs {
			ms = got[j]
			j++
		}
		out = append(out, ms)
	}
	return out, nil
}
