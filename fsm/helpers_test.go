package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// Helpers shared by the tests of this package: opening stores, building
// events and entries, a readable dump of every key, and a full check of the
// store's cross-index invariants.

// openStore opens a store in dir (shard 0, default config).
func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	return openShard(t, dir, 0)
}

// openShard opens a store of the given shard in dir.
func openShard(t testing.TB, dir string, shard int) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.Shard = shard
	s, err := Open(cfg)
	require.NoError(t, err)
	return s
}

// newStore opens a store in a fresh temporary directory and closes it when
// the test ends.
func newStore(t testing.TB) *Store {
	t.Helper()
	s := openStore(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { s.Close() })
	return s
}

// newMemStore opens a store on an in-memory filesystem (shard 0, no block
// cache): it opens in about a millisecond, so fuzz targets open one per input.
func newMemStore(t testing.TB) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = "/db"
	cfg.FS = vfs.NewMem()
	cfg.MemTableBytes = 1 << 20
	cfg.CacheBytes = 0
	s, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// entryOf encodes commands as one log entry.
func entryOf(index uint64, nowMs int64, cmds ...Command) Entry {
	raw := make([][]byte, len(cmds))
	for i, c := range cmds {
		raw[i] = EncodeCommand(c)
	}
	return Entry{Index: index, Data: EncodeEntry(nowMs, raw)}
}

// applyOne applies one entry and returns its results; a halt fails the test.
func applyOne(t testing.TB, s *Store, index uint64, nowMs int64, cmds ...Command) []Result {
	t.Helper()
	rs, err := s.ApplyEntries([]Entry{entryOf(index, nowMs, cmds...)})
	require.NoError(t, err)
	require.Len(t, rs, 1)
	return rs[0]
}

// mustHash returns the store's hash.
func mustHash(t testing.TB, s *Store) [32]byte {
	t.Helper()
	h, err := s.Hash()
	require.NoError(t, err)
	return h
}

// stateHash digests every key except the applied-index record: two stores
// with the same stateHash hold the same seats, holds, orders and events.
func stateHash(t testing.TB, s *Store) string {
	t.Helper()
	var b strings.Builder
	err := s.scan(nil, nil, func(k, v []byte) (bool, error) {
		if string(k) != keyAppliedStr {
			fmt.Fprintf(&b, "%q=%q\n", k, v)
		}
		return true, nil
	})
	require.NoError(t, err)
	return b.String()
}

// stateHashWithout is stateHash over every table but the given ones.
func stateHashWithout(t testing.TB, s *Store, tags ...byte) string {
	t.Helper()
	var b strings.Builder
	err := s.scan(nil, nil, func(k, v []byte) (bool, error) {
		if string(k) != keyAppliedStr && !slices.Contains(tags, k[0]) {
			fmt.Fprintf(&b, "%q=%q\n", k, v)
		}
		return true, nil
	})
	require.NoError(t, err)
	return b.String()
}

// parseSections parses "A:floor:2x3,B:balcony:1x4".
func parseSections(spec string) ([]boxoffice.Section, error) {
	var out []boxoffice.Section
	for _, part := range splitList(spec) {
		f := strings.Split(part, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("section %q: want id:category:ROWSxSEATS", part)
		}
		rs, ss, ok := strings.Cut(f[2], "x")
		if !ok {
			return nil, fmt.Errorf("section %q: want ROWSxSEATS", part)
		}
		rows, err1 := strconv.Atoi(rs)
		seats, err2 := strconv.Atoi(ss)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("section %q: bad size", part)
		}
		out = append(out, boxoffice.Section{ID: f[0], Category: f[1], Rows: rows, SeatsPerRow: seats})
	}
	return out, nil
}

// parseCategories parses "floor:9900,balcony:4900".
func parseCategories(spec string) ([]boxoffice.Category, error) {
	var out []boxoffice.Category
	for _, part := range splitList(spec) {
		id, price, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("category %q: want id:price", part)
		}
		p, err := strconv.ParseInt(price, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("category %q: %w", part, err)
		}
		out = append(out, boxoffice.Category{ID: id, Name: strings.ToUpper(id[:min(1, len(id))]) + id[min(1, len(id)):], PriceCents: p})
	}
	return out, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// testEvent builds a valid event from the compact specs.
func testEvent(t testing.TB, id, sections, categories string, maxPerBuyer, ttlSeconds int) boxoffice.Event {
	t.Helper()
	secs, err := parseSections(sections)
	require.NoError(t, err)
	cats, err := parseCategories(categories)
	require.NoError(t, err)
	return boxoffice.Event{
		ID: id, Name: "Event " + id, Type: "concert", Location: "Berlin", Organiser: "org1",
		Categories: cats,
		Venue:      boxoffice.Venue{Sections: secs},
		Limits:     boxoffice.Limits{MaxSeatsPerBuyer: maxPerBuyer, HoldTTLSeconds: ttlSeconds},
	}
}

// ---- formatting ----

func fmtSections(ss []boxoffice.Section) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%s:%s:%dx%d", s.ID, s.Category, s.Rows, s.SeatsPerRow)
	}
	return strings.Join(parts, ",")
}

// parseAreas reads "PIT:ga:10,..." (id:category:capacity).
func parseAreas(spec string) ([]boxoffice.Area, error) {
	var out []boxoffice.Area
	for _, part := range splitList(spec) {
		f := strings.Split(part, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("area %q: want id:category:capacity", part)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("area %q: %w", part, err)
		}
		out = append(out, boxoffice.Area{ID: f[0], Category: f[1], Capacity: n})
	}
	return out, nil
}

func fmtAreas(as []boxoffice.Area) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%s:%s:%d", a.ID, a.Category, a.Capacity)
	}
	return strings.Join(parts, ",")
}

func fmtVenue(v *boxoffice.VenueChart) string {
	cats := make([]string, len(v.Categories))
	for i, c := range v.Categories {
		cats[i] = c.ID
	}
	return fmt.Sprintf("venue %s v%d owner=%s updated=%d sections=%s areas=%s categories=%s capacity=%d",
		v.ID, v.Version, v.Owner, v.UpdatedAtMs, fmtSections(v.Sections), fmtAreas(v.Areas), strings.Join(cats, ","), v.Layout().Capacity())
}

func fmtCategories(cs []boxoffice.Category) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s:%d", c.ID, c.PriceCents)
	}
	return strings.Join(parts, ",")
}

func fmtEvent(e *boxoffice.Event) string {
	s := fmt.Sprintf("event %s name=%q organiser=%s sections=%s categories=%s max-per-buyer=%d ttl=%d capacity=%d",
		e.ID, e.Name, e.Organiser, fmtSections(e.Venue.Sections), fmtCategories(e.Categories),
		e.Limits.MaxSeatsPerBuyer, e.Limits.HoldTTLSeconds, e.Venue.Capacity())
	if len(e.Venue.Areas) > 0 {
		s += " areas=" + fmtAreas(e.Venue.Areas)
	}
	if e.VenueID != "" {
		s += fmt.Sprintf(" venue=%s/v%d", e.VenueID, e.VenueVersion)
	}
	return s
}

func fmtHold(h *boxoffice.Hold) string {
	s := fmt.Sprintf("hold %s %s event=%s buyer=%s seats=%s created=%d expires=%d",
		h.ID, h.State, h.Event, h.Buyer, strings.Join(h.Seats, ","), h.CreatedAtMs, h.ExpiresAtMs)
	if h.Order != "" {
		s += " order=" + h.Order
	}
	return s
}

func fmtOrder(o *boxoffice.Order) string {
	return fmt.Sprintf("order %s %s event=%s hold=%s buyer=%s seats=%s amount=%d ref=%s created=%d",
		o.ID, o.State, o.Event, o.Hold, o.Buyer, strings.Join(o.Seats, ","), o.AmountCents, o.PaymentRef, o.CreatedAtMs)
}

// fmtResult renders one command's result on one or more lines.
func fmtResult(c Command, r Result) string {
	if r.Err != nil {
		return "error " + r.Err.Error()
	}
	var lines []string
	switch c.(type) {
	case *Expire:
		lines = append(lines, fmt.Sprintf("expired %d", r.Expired))
	case *PutNode, *RemoveNode:
		lines = append(lines, "ok")
	case *AdvanceAdmission:
		lines = append(lines, fmt.Sprintf("admitted %d", r.Admitted))
	}
	if r.Queue != nil {
		lines = append(lines, fmtQueue(r.Queue))
	}
	if r.Place != nil {
		lines = append(lines, fmtPlace(r.Place))
	}
	if r.Event != nil {
		lines = append(lines, fmtEvent(r.Event))
	}
	if r.Venue != nil {
		lines = append(lines, fmtVenue(r.Venue))
	}
	if r.Order != nil {
		lines = append(lines, fmtOrder(r.Order))
	}
	if r.Hold != nil {
		lines = append(lines, fmtHold(r.Hold))
	}
	if r.Grant != nil {
		lines = append(lines, fmt.Sprintf("grant user=%s level=%s", r.Grant.User, r.Grant.Level))
	}
	if len(lines) == 0 {
		lines = append(lines, "ok (empty result)")
	}
	if r.Replayed {
		lines = append(lines, "(replayed)")
	}
	return strings.Join(lines, "\n")
}

// fmtStoredResult renders the result an idempotency record keeps, on one
// line: its error, or its event, order and hold.
func fmtStoredResult(r Result) string {
	if r.Err != nil {
		return "error " + r.Err.Error()
	}
	var parts []string
	if r.Event != nil {
		parts = append(parts, "event "+r.Event.ID)
	}
	if r.Venue != nil {
		parts = append(parts, fmtVenue(r.Venue))
	}
	if r.Order != nil {
		parts = append(parts, fmtOrder(r.Order))
	}
	if r.Hold != nil {
		parts = append(parts, fmtHold(r.Hold))
	}
	if len(parts) == 0 {
		return "(empty result)"
	}
	return strings.Join(parts, " | ")
}

// dumpStore renders every key and value of the store, one per line, in key
// order, decoding each table.
func dumpStore(t testing.TB, s *Store) string {
	t.Helper()
	var lines []string
	err := s.scan(nil, nil, func(k, v []byte) (bool, error) {
		line, err := dumpKV(s, k, v)
		if err != nil {
			return false, fmt.Errorf("key %q: %w", k, err)
		}
		lines = append(lines, line)
		return true, nil
	})
	require.NoError(t, err)
	if len(lines) == 0 {
		return "(empty)"
	}
	return strings.Join(lines, "\n")
}

func dumpKV(s *Store, k, v []byte) (string, error) {
	parts := func() []string { return strings.Split(string(k[1:]), "\x00") }
	switch k[0] {
	case tagMeta:
		if string(k) != keyAppliedStr || len(v) != 16 {
			return "", fmt.Errorf("bad meta record")
		}
		return fmt.Sprintf("meta applied=%d now=%d", binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])), nil
	case tagEvent:
		e, err := decodeEventValue(v)
		if err != nil {
			return "", err
		}
		if e.ID != string(k[1:]) {
			return "", fmt.Errorf("event key names %q, value %q", k[1:], e.ID)
		}
		return fmtEvent(e), nil
	case tagSeat:
		if len(k) < 6 || k[len(k)-5] != 0 {
			return "", fmt.Errorf("bad seat key")
		}
		event, idx := string(k[1:len(k)-5]), seatIndexOf(k)
		l, err := s.Layout(event)
		if err != nil {
			return "", err
		}
		if idx >= l.Capacity() {
			return "", fmt.Errorf("seat index %d out of %d", idx, l.Capacity())
		}
		rec, err := decodeSeat(v)
		if err != nil {
			return "", err
		}
		out := fmt.Sprintf("seat %s/%s %s by %s", event, l.ID(idx), rec.state, rec.owner)
		if rec.state == boxoffice.SeatHeld {
			out += fmt.Sprintf(" until %d", rec.expiresAtMs)
		}
		return out, nil
	case tagHold:
		h, err := decodeHold(v)
		if err != nil {
			return "", err
		}
		return fmtHold(h), nil
	case tagOrder:
		o, err := decodeOrder(v)
		if err != nil {
			return "", err
		}
		return fmtOrder(o), nil
	case tagBuyer:
		rec, err := decodeBuyerRec(v)
		if err != nil {
			return "", err
		}
		p := parts()
		if len(p) != 2 {
			return "", fmt.Errorf("bad buyer key")
		}
		var hs []string
		for _, h := range rec.holds {
			hs = append(hs, fmt.Sprintf("%s expires=%d seats=%d", h.id, h.expiresAtMs, h.seats))
		}
		return fmt.Sprintf("buyer %s/%s sold=%d holds=[%s]", p[0], p[1], rec.sold, strings.Join(hs, "; ")), nil
	case tagExpiry:
		if len(k) < 10 || len(v) != 0 {
			return "", fmt.Errorf("bad expiry record")
		}
		return fmt.Sprintf("expiry %d %s", binary.BigEndian.Uint64(k[1:9]), k[9:]), nil
	case tagHoldsBy, tagOrdersBy:
		p := parts()
		if len(p) != 2 || len(v) != 0 {
			return "", fmt.Errorf("bad by-buyer record")
		}
		name := "holds-of"
		if k[0] == tagOrdersBy {
			name = "orders-of"
		}
		return fmt.Sprintf("%s %s %s", name, p[0], p[1]), nil
	case tagNode:
		n, err := decodeNode(v)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("node %s raft=%s http=%s", n.ID, n.RaftAddr, n.HTTPAddr), nil
	case tagVerify:
		r := reader{b: v}
		until := r.varint()
		if err := r.done("verify"); err != nil {
			return "", err
		}
		return fmt.Sprintf("watch-late-charge %s until=%d", k[1:], until), nil
	case tagCheckout, tagRefund:
		if len(v) != 0 {
			return "", fmt.Errorf("bad checkout/refund marker")
		}
		if k[0] == tagCheckout {
			return fmt.Sprintf("checkout-in-flight %s", k[1:]), nil
		}
		return fmt.Sprintf("refund-due %s", k[1:]), nil
	case tagIdem:
		subject, ikey, ok := strings.Cut(string(k[1:]), "\x00")
		if !ok {
			return "", fmt.Errorf("bad idempotency key")
		}
		rec, err := decodeIdem(v)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("idem %s/%q hash=%x.. created=%d → %s", subject, ikey, rec.hash[:min(4, len(rec.hash))], rec.createdAtMs, fmtStoredResult(rec.res)), nil
	case tagIdemAge:
		if len(k) < 10 || len(v) != 0 {
			return "", fmt.Errorf("bad idempotency age record")
		}
		subject, ikey, ok := strings.Cut(string(k[9:]), "\x00")
		if !ok {
			return "", fmt.Errorf("bad idempotency age key")
		}
		return fmt.Sprintf("idem-age %d %s/%q", binary.BigEndian.Uint64(k[1:9]), subject, ikey), nil
	case tagGrant:
		ps := parts()
		l, err := decodeGrant(v)
		if err != nil || len(ps) != 2 {
			return "", fmt.Errorf("bad grant record: %v", err)
		}
		return fmt.Sprintf("grant %s/%s %s", ps[0], ps[1], l), nil
	case tagReport:
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) < i+2 {
			return "", fmt.Errorf("bad report key")
		}
		event, rest := string(k[1:i]), k[i+2:]
		if k[i+1] == reportPrices {
			ps, err := decodePrices(v)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("prices %s/%s %v", event, rest, ps), nil
		}
		c, err := decodeCount(v)
		if err != nil {
			return "", err
		}
		switch k[i+1] {
		case reportSection:
			return fmt.Sprintf("count %s/%s held=%d sold=%d revenue=%d", event, rest, c.held, c.sold, c.revenueCents), nil
		case reportMinute:
			if len(rest) != 8 {
				return "", fmt.Errorf("bad minute key")
			}
			return fmt.Sprintf("sales %s minute=%d seats=%d revenue=%d", event, binary.BigEndian.Uint64(rest), c.sold, c.revenueCents), nil
		}
		return "", fmt.Errorf("bad report key kind %q", k[i+1])
	case tagVenue, tagVenueVersion:
		v, err := decodeVenueValue(v)
		if err != nil {
			return "", err
		}
		name := "venue"
		if k[0] == tagVenueVersion {
			name = "venue-version"
		}
		return name + " " + fmtVenue(v), nil
	case tagArea:
		rec, err := decodeAreaRec(v)
		if err != nil {
			return "", err
		}
		p := parts()
		return fmt.Sprintf("area %s/%s next=%d free=%d", p[0], p[1], rec.next, rec.free), nil
	case tagAreaFree:
		p := strings.Split(string(k[1:len(k)-4]), "\x00")
		if len(v) != 4 {
			return "", fmt.Errorf("bad free-list entry")
		}
		return fmt.Sprintf("area-free %s/%s #%d → place index %d", p[0], p[1], binary.BigEndian.Uint32(k[len(k)-4:]), binary.BigEndian.Uint32(v)), nil
	}
	if line, ok, err := dumpQueueKV(k, v); ok || err != nil {
		return line, err
	}
	return "", fmt.Errorf("unknown table %q", k[0])
}

// checkInvariants reads every record of the store and checks that the
// tables agree with one another: every taken seat belongs to exactly the
// hold or paid order that lists it, every active hold owns its seats or has
// expired, the buyer and expiry indexes list exactly the active holds, a
// paid order owns its seats (an exchange may have changed which) and a
// cancelled one owns none, the per-buyer sold counts are the sums of the
// buyers' paid orders, and every idempotency record has exactly one age
// entry with the same creation time, and every age entry a record.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	type seatKeyT struct {
		event string
		idx   int
	}
	seats := map[seatKeyT]seatRec{}
	holds := map[string]*boxoffice.Hold{}
	orders := map[string]*boxoffice.Order{}
	buyerHolds := map[string]buyerHold{}  // event/buyer/hold
	buyerSold := map[string]int{}         // event/buyer
	expiry := map[string]int64{}          // hold -> expiresAt
	holdsBy := map[string]bool{}          // buyer/hold
	ordersBy := map[string]bool{}         // buyer/order
	checkouts := map[string]bool{}        // order: checkout in flight
	refunds := map[string]bool{}          // order: refund due
	watched := map[string]bool{}          // order: failed, watched for a late charge
	idems := map[string]*idemRecord{}     // subject NUL key
	idemAges := map[string][]int64{}      // subject NUL key -> createdAtMs of its age entries
	counters := map[string]sectionCount{} // event/section -> report counter
	prices := map[string][]catPrice{}     // order -> its unit prices
	areas := map[string]areaRec{}         // event NUL area
	areaFree := map[string][]int{}        // event NUL area -> free list, in position order
	err := s.scan(nil, nil, func(k, v []byte) (bool, error) {
		var err error
		switch k[0] {
		case tagSeat:
			var rec seatRec
			if rec, err = decodeSeat(v); err == nil {
				seats[seatKeyT{string(k[1 : len(k)-5]), seatIndexOf(k)}] = rec
			}
		case tagHold:
			var h *boxoffice.Hold
			if h, err = decodeHold(v); err == nil {
				holds[h.ID] = h
			}
		case tagOrder:
			var o *boxoffice.Order
			if o, err = decodeOrder(v); err == nil {
				orders[o.ID] = o
			}
		case tagBuyer:
			var rec buyerRec
			if rec, err = decodeBuyerRec(v); err == nil {
				eb := strings.ReplaceAll(string(k[1:]), "\x00", "/")
				require.True(t, rec.sold > 0 || len(rec.holds) > 0, "empty buyer record %s", eb)
				require.True(t, slices.IsSortedFunc(rec.holds, func(a, b buyerHold) int { return strings.Compare(a.id, b.id) }), "buyer record %s out of order", eb)
				if rec.sold > 0 {
					buyerSold[eb] = rec.sold
				}
				for _, h := range rec.holds {
					buyerHolds[eb+"/"+h.id] = h
				}
			}
		case tagExpiry:
			expiry[string(k[9:])] = int64(binary.BigEndian.Uint64(k[1:9]))
		case tagHoldsBy:
			holdsBy[strings.ReplaceAll(string(k[1:]), "\x00", "/")] = true
		case tagOrdersBy:
			ordersBy[strings.ReplaceAll(string(k[1:]), "\x00", "/")] = true
		case tagCheckout:
			checkouts[string(k[1:])] = true
		case tagRefund:
			refunds[string(k[1:])] = true
		case tagVerify:
			watched[string(k[1:])] = true
		case tagIdem:
			var rec *idemRecord
			if rec, err = decodeIdem(v); err == nil {
				idems[string(k[1:])] = rec
			}
		case tagReport:
			i := bytes.IndexByte(k, 0)
			require.True(t, i > 0 && len(k) > i+1, "report key %q", k)
			switch k[i+1] {
			case reportSection:
				var c sectionCount
				if c, err = decodeCount(v); err == nil {
					counters[string(k[1:i])+"/"+string(k[i+2:])] = c
				}
			case reportPrices:
				var ps []catPrice
				if ps, err = decodePrices(v); err == nil {
					prices[string(k[i+2:])] = ps
				}
			}
		case tagArea:
			var rec areaRec
			if rec, err = decodeAreaRec(v); err == nil {
				areas[string(k[1:])] = rec
			}
		case tagAreaFree:
			if len(v) != 4 {
				return false, fmt.Errorf("bad free-list entry %q", k)
			}
			ak := string(k[1 : len(k)-5])
			require.Equal(t, len(areaFree[ak]), int(binary.BigEndian.Uint32(k[len(k)-4:])), "free list of %q has a hole", ak)
			areaFree[ak] = append(areaFree[ak], int(binary.BigEndian.Uint32(v)))
		case tagIdemAge:
			if len(k) < 10 || len(v) != 0 {
				return false, fmt.Errorf("bad idempotency age record %q", k)
			}
			ik := string(k[9:])
			idemAges[ik] = append(idemAges[ik], int64(binary.BigEndian.Uint64(k[1:9])))
		}
		return true, err
	})
	require.NoError(t, err)
	now := s.NowMs()
	checkQueueInvariants(t, s)

	// The report's counters count exactly the seat records of each section
	// (held ones whatever their expiry).
	scanned := map[string]sectionCount{}
	for sk, rec := range seats {
		l, err := s.Layout(sk.event)
		require.NoError(t, err)
		sec, _, _ := l.Section(sk.idx)
		c := scanned[sk.event+"/"+sec.ID]
		if rec.state == boxoffice.SeatSold {
			c.sold++
			i := slices.IndexFunc(prices[rec.owner], func(p catPrice) bool { return p.category == sec.Category })
			require.GreaterOrEqual(t, i, 0, "sold seat %s/%s: order %s has no price of %s", sk.event, l.ID(sk.idx), rec.owner, sec.Category)
			c.revenueCents += prices[rec.owner][i].priceCents
		} else {
			c.held++
		}
		scanned[sk.event+"/"+sec.ID] = c
	}
	for k, c := range counters {
		require.Equal(t, scanned[k], c, "report counter of %s against the seats", k)
	}
	for k, c := range scanned {
		require.Equal(t, c, counters[k], "seats of %s against the report counter", k)
	}

	layout := func(event string) *boxoffice.Layout {
		l, err := s.Layout(event)
		require.NoError(t, err, "event %q", event)
		return l
	}
	// Every seat record names an owner that lists the seat.
	for sk, rec := range seats {
		id := layout(sk.event).ID(sk.idx)
		switch rec.state {
		case boxoffice.SeatHeld:
			h := holds[rec.owner]
			require.NotNil(t, h, "seat %s/%s held by missing hold %s", sk.event, id, rec.owner)
			require.Equal(t, sk.event, h.Event)
			require.Contains(t, h.Seats, id, "seat %s/%s held by %s which does not list it", sk.event, id, h.ID)
			if h.State == boxoffice.HoldCheckingOut {
				// In checkout, the seats are taken until the lease ends.
				o := orders[h.Order]
				require.NotNil(t, o, "checking-out hold %s names missing order %s", h.ID, h.Order)
				require.Equal(t, max(h.ExpiresAtMs, o.LeaseUntilMs), rec.expiresAtMs, "seat %s/%s of checking-out hold %s", sk.event, id, h.ID)
				break
			}
			require.Equal(t, h.ExpiresAtMs, rec.expiresAtMs)
			if rec.takenAt(now) {
				require.Equal(t, boxoffice.HoldActive, h.State, "unexpired seat %s/%s held by %s hold", sk.event, id, h.State)
			}
		case boxoffice.SeatSold:
			o := orders[rec.owner]
			require.NotNil(t, o, "seat %s/%s sold by missing order %s", sk.event, id, rec.owner)
			require.Equal(t, sk.event, o.Event)
			require.Equal(t, boxoffice.OrderPaid, o.State, "seat %s/%s sold by %s order %s", sk.event, id, o.State, o.ID)
			require.Contains(t, o.Seats, id)
		default:
			t.Fatalf("seat %s/%s in state %v", sk.event, id, rec.state)
		}
	}
	// Every active, unexpired hold owns each of its seats; every hold is
	// indexed exactly while it is active.
	for _, h := range holds {
		require.NotEmpty(t, h.Seats, "hold %s", h.ID)
		bk := h.Event + "/" + h.Buyer + "/" + h.ID
		require.True(t, holdsBy[h.Buyer+"/"+h.ID], "hold %s not in holds-of", h.ID)
		if h.State == boxoffice.HoldCheckingOut {
			o := orders[h.Order]
			require.NotNil(t, o, "checking-out hold %s names missing order %s", h.ID, h.Order)
			require.Equal(t, boxoffice.OrderPending, o.State, "checking-out hold %s", h.ID)
			require.Equal(t, buyerHold{id: h.ID, expiresAtMs: max(h.ExpiresAtMs, o.LeaseUntilMs), seats: len(h.Seats)}, buyerHolds[bk], "buyer index of %s", h.ID)
			require.NotContains(t, expiry, h.ID, "checking-out hold %s in the expiry index", h.ID)
			continue
		}
		if h.State != boxoffice.HoldActive {
			require.NotContains(t, buyerHolds, bk, "ended hold %s still in buyer index", h.ID)
			require.NotContains(t, expiry, h.ID, "ended hold %s still in expiry index", h.ID)
			continue
		}
		require.Equal(t, buyerHold{id: h.ID, expiresAtMs: h.ExpiresAtMs, seats: len(h.Seats)}, buyerHolds[bk], "buyer index of %s", h.ID)
		require.Equal(t, h.ExpiresAtMs, expiry[h.ID], "expiry index of %s", h.ID)
		if h.ExpiresAtMs > now {
			l := layout(h.Event)
			for _, id := range h.Seats {
				idx, ok := l.Index(id)
				require.True(t, ok, "hold %s seat %s", h.ID, id)
				rec, ok := seats[seatKeyT{h.Event, idx}]
				require.True(t, ok && rec.state == boxoffice.SeatHeld && rec.owner == h.ID,
					"active hold %s does not own its seat %s: %+v", h.ID, id, rec)
			}
		}
	}
	for bk := range buyerHolds {
		p := strings.Split(bk, "/")
		require.Contains(t, holds, p[2], "buyer index names missing hold %s", p[2])
	}
	for id := range expiry {
		require.Contains(t, holds, id, "expiry index names missing hold %s", id)
	}
	// A paid order owns its seats until it is cancelled (an exchange swaps
	// some of them for as many others); a cancelled order owns none, which
	// the seat records checked above already show. Sold counts add up over
	// the paid orders.
	wantSold := map[string]int{}
	for _, o := range orders {
		require.True(t, ordersBy[o.Buyer+"/"+o.ID], "order %s not in orders-of", o.ID)
		h := holds[o.Hold]
		require.NotNil(t, h, "hold %s of order %s", o.Hold, o.ID)
		require.Equal(t, o.State == boxoffice.OrderPending, checkouts[o.ID], "order %s is %s: checkout index", o.ID, o.State)
		refundDue := o.PaymentRef != "" && (o.State == boxoffice.OrderCancelled || o.State == boxoffice.OrderFailed)
		require.Equal(t, refundDue, refunds[o.ID], "order %s is %s with charge %q: refund index", o.ID, o.State, o.PaymentRef)
		require.Len(t, o.Seats, len(slices.Compact(slices.Sorted(slices.Values(o.Seats)))), "order %s names a seat twice", o.ID)
		switch o.State {
		case boxoffice.OrderPending:
			require.Equal(t, boxoffice.HoldCheckingOut, h.State, "hold of pending order %s", o.ID)
			require.Equal(t, o.ID, h.Order)
			continue
		case boxoffice.OrderFailed:
			// Its hold is active again, ended, or bought since by a later
			// checkout: never in checkout or bought for this order.
			require.False(t, h.Order == o.ID && (h.State == boxoffice.HoldCheckingOut || h.State == boxoffice.HoldPurchased),
				"hold %s of failed order %s is %s for it", h.ID, o.ID, h.State)
			continue
		case boxoffice.OrderRefunded:
			require.NotEmpty(t, o.RefundRef, "refunded order %s", o.ID)
			continue
		}
		require.Equal(t, boxoffice.HoldPurchased, h.State, "hold of order %s", o.ID)
		require.Equal(t, o.ID, h.Order)
		require.Len(t, o.Seats, len(h.Seats), "order %s has as many seats as its hold", o.ID)
		switch o.State {
		case boxoffice.OrderPaid:
			l := layout(o.Event)
			for _, id := range o.Seats {
				idx, ok := l.Index(id)
				require.True(t, ok)
				rec := seats[seatKeyT{o.Event, idx}]
				require.True(t, rec.state == boxoffice.SeatSold && rec.owner == o.ID, "order %s does not own seat %s: %+v", o.ID, id, rec)
			}
			wantSold[o.Event+"/"+o.Buyer] += len(o.Seats)
		case boxoffice.OrderCancelled:
		default:
			t.Fatalf("order %s in state %v", o.ID, o.State)
		}
	}
	for id := range checkouts {
		require.Contains(t, orders, id, "checkout index names missing order %s", id)
	}
	for id := range refunds {
		require.Contains(t, orders, id, "refund index names missing order %s", id)
	}
	for id := range watched {
		o := orders[id]
		require.NotNil(t, o, "late-charge watch names missing order %s", id)
		require.True(t, o.State == boxoffice.OrderFailed && o.PaymentRef == "", "late-charge watch of %s order %s with charge %q", o.State, id, o.PaymentRef)
	}
	require.Equal(t, wantSold, buyerSold, "per-buyer sold counts")
	for k := range ordersBy {
		require.Contains(t, orders, strings.Split(k, "/")[1])
	}
	for k := range holdsBy {
		require.Contains(t, holds, strings.Split(k, "/")[1])
	}
	// A general-admission place is exactly one of: never handed out
	// (number above next), on its area's free list, or taken (a record).
	for ak, rec := range areas {
		event, area, _ := strings.Cut(ak, "\x00")
		first, capacity, ok := layout(event).AreaRange(area)
		require.True(t, ok, "allocator of unknown area %q", ak)
		require.True(t, rec.next >= 1 && rec.next <= capacity && rec.free <= rec.next, "allocator %q: %+v of %d", ak, rec, capacity)
		require.Len(t, areaFree[ak], rec.free, "free list of %q", ak)
		onList := map[int]bool{}
		for _, idx := range areaFree[ak] {
			require.False(t, onList[idx], "place %d twice on the free list of %q", idx, ak)
			onList[idx] = true
		}
		for idx := first; idx < first+capacity; idx++ {
			_, taken := seats[seatKeyT{event, idx}]
			handedOut := idx < first+rec.next
			require.True(t, !handedOut && !taken && !onList[idx] || handedOut && taken != onList[idx],
				"place %d of %q: handed out %v, taken %v, on the free list %v", idx, ak, handedOut, taken, onList[idx])
		}
	}
	for ak := range areaFree {
		require.Contains(t, areas, ak, "free list of %q without an allocator", ak)
	}
	// The idempotency table and its age index agree one to one.
	for ik, rec := range idems {
		subject, _, ok := strings.Cut(ik, "\x00")
		require.True(t, ok && boxoffice.ValidID(subject), "idempotency key %q", ik)
		require.Len(t, rec.hash, IdempotencyHashLen, "hash of idempotency record %q", ik)
		require.LessOrEqual(t, rec.createdAtMs, now, "idempotency record %q from the future", ik)
		require.Equal(t, []int64{rec.createdAtMs}, idemAges[ik], "age entries of idempotency record %q", ik)
	}
	for ik := range idemAges {
		require.Contains(t, idems, ik, "age entry names missing idempotency record %q", ik)
	}
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
