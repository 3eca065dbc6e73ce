package fsm

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// TestDataDriven runs the scripts under testdata/: commands in, results and
// state dumps out. Regenerate with
//
//	go test ./fsm -run TestDataDriven -rewrite
//
// and read the diff before committing it.
//
// Write commands (each is one log entry, stamped with the current tick):
//
//	create-event id=e1 sections=A:floor:2x3,B:balcony:1x4 categories=floor:9900,balcony:4900 [areas=PIT:ga:10,..] [max-per-buyer=4] [ttl=60] [name=..]
//	update-event   (same arguments as create-event)
//	hold event=e1 buyer=u1 seats=A-1-1,A-1-2 [ttl=SECONDS]
//	hold-area event=e1 buyer=u1 area=PIT quantity=N [ttl=SECONDS]
//	put-venue id=v1 owner=o1 sections=.. [areas=..] categories=floor,ga [create=true] [admin=true]
//	release hold=ID [buyer=B] [seats=..]
//	purchase hold=ID [buyer=B] ref=pay1
//	extend hold=ID [buyer=B] [ttl=SECONDS]
//	cancel order=ID [buyer=B]
//	exchange order=ID [buyer=B] release=A-1-1,.. take=B-1-1,..
//	expire [max=N]
//	put-node id=n1 raft=.. http=..
//	grant event=e1 actor=org1 user=u2 level=view|manage|none [admin=true]
//	remove-node id=n1
//	noop                      an entry without data (it only advances the index)
//	batch                     the input lines, one command each, as ONE entry
//	raw hex=..                an entry with arbitrary bytes (must halt)
//
// A write command may take idem=KEY:LABEL, which wraps it in an Idempotent
// with Key KEY, Subject the command's buyer ("admin" when it has none) and
// Hash the first 16 bytes of sha256(LABEL): the same label stands for the
// same request. idem=K1:L1,K2:L2 nests the wrappers, outermost first (which
// the decoder must refuse). A replayed result is marked "(replayed)".
//
// update-event and cancel take as=ACTOR:NEED[:EVENT] (NEED view, manage or
// owner; EVENT defaults to the update's id), which wraps the command in an
// Authorized on behalf of ACTOR (as=admin:.. marks the actor an admin);
// the idem wrapper, if any, goes around that.
//
// Other commands:
//
//	tick now=MS               stamp of the following entries
//	seats event=e1 [section=A] [category=floor] [state=free|held|sold]
//	counts event=e1
//	grants event=e1   access event=e1 user=u2
//	report event=e1           the sales report: lines, then minutes with sales
//	hold-get id=..   order-get id=..   holds-of buyer=..   orders-of buyer=..
//	events [after=..] [limit=N]   nodes   meta   dump   reopen
//	venue id=v1 [version=N]   venues [after=..] [limit=N]
//	queue event=e1   place event=e1 buyers=u1,u2   queue-steps now=MS
//
// The waiting room's commands:
//
//	protect event=e1 [opens=MS] [pass-ttl=SECONDS] [admit-pct=N]
//	join event=e1 buyer=u1
//	open event=e1 seed=N
//	advance event=e1 [max=N]
//
// After every entry the driver checks the cross-index invariants of the
// whole store, and after an entry whose only command was rejected, or
// replayed, it checks that nothing but the applied index changed (but for
// the idempotency record a first, rejected run leaves). A halt must change
// nothing at all.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if strings.HasPrefix(filepath.Base(path), ".") || strings.HasSuffix(path, ".md") {
			t.Skip("not a script: dotfiles and notes in testdata are not run")
		}
		// Shard 3, so that the shard part of hold and order ids
		// ("h_<shard>.<index>.<position>") differs from the others.
		env := &ddEnv{t: t, dir: filepath.Join(t.TempDir(), "db"), nowMs: 1000}
		env.s = openShard(t, env.dir, ddShard)
		defer func() { env.s.Close() }()
		datadriven.RunTest(t, path, env.run)
	})
}

const ddShard = 3

type ddEnv struct {
	t     *testing.T
	dir   string
	s     *Store
	index uint64 // index of the last entry applied
	nowMs int64  // stamp of the next entry
}

func (e *ddEnv) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "tick":
		var now int64
		d.ScanArgs(t, "now", &now)
		e.nowMs = now
		return fmt.Sprintf("now=%d (store clock %d)", e.nowMs, e.s.NowMs())
	case "batch":
		var cmds []Command
		var lines []string
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			cmdName, args, err := datadriven.ParseLine(line)
			require.NoError(t, err)
			c, err := parseCommand(cmdName, args)
			if err != nil {
				d.Fatalf(t, "%s: %v", line, err)
			}
			cmds = append(cmds, c)
			lines = append(lines, strings.TrimSpace(line))
		}
		rs, err := e.apply(t, cmds)
		if err != nil {
			return "halt: " + err.Error()
		}
		var out []string
		for i, r := range rs {
			out = append(out, fmt.Sprintf("%d: %s", i, lines[i]))
			out = append(out, indent(fmtResult(cmds[i], r)))
		}
		return strings.Join(out, "\n")
	case "noop":
		e.index++
		rs, err := e.s.ApplyEntries([]Entry{{Index: e.index}})
		require.NoError(t, err)
		require.Nil(t, rs[0])
		return fmt.Sprintf("applied=%d", e.s.AppliedIndex())
	case "raw":
		var hexStr string
		d.ScanArgs(t, "hex", &hexStr)
		data, err := hex.DecodeString(hexStr)
		require.NoError(t, err)
		before, applied := stateHash(t, e.s), e.s.AppliedIndex()
		_, err = e.s.ApplyEntries([]Entry{{Index: e.index + 1, Data: data}})
		require.Error(t, err, "a malformed entry must halt the state machine")
		require.Equal(t, before, stateHash(t, e.s), "a halted entry changed the state")
		require.Equal(t, applied, e.s.AppliedIndex(), "a halted entry moved the applied index")
		return "halt: " + err.Error()
	case "seats":
		return e.seats(t, d)
	case "counts":
		var ev string
		d.ScanArgs(t, "event", &ev)
		counts, err := e.s.Counts(ev)
		if err != nil {
			return "error " + err.Error()
		}
		var out []string
		for _, c := range counts {
			out = append(out, fmt.Sprintf("%s capacity=%d free=%d held=%d sold=%d", c.Category, c.Capacity, c.Free, c.Held, c.Sold))
		}
		return strings.Join(out, "\n")
	case "grants":
		var ev string
		d.ScanArgs(t, "event", &ev)
		gs, err := e.s.Grants(ev)
		if err != nil {
			return "error " + err.Error()
		}
		if len(gs) == 0 {
			return "(none)"
		}
		var out []string
		for _, g := range gs {
			out = append(out, fmt.Sprintf("%s %s", g.User, g.Level))
		}
		return strings.Join(out, "\n")
	case "report":
		var ev string
		d.ScanArgs(t, "event", &ev)
		rep, err := e.s.Report(ev)
		if err != nil {
			return "error " + err.Error()
		}
		var out []string
		line := func(kind string, l boxoffice.ReportLine) {
			out = append(out, fmt.Sprintf("%s %s capacity=%d free=%d held=%d sold=%d revenue=%d", kind, l.ID, l.Capacity, l.Free, l.Held, l.Sold, l.RevenueCents))
		}
		for _, l := range rep.Categories {
			line("category", l)
		}
		for _, l := range rep.Sections {
			line("section", l)
		}
		line("total", rep.Total)
		for _, m := range rep.Minutes {
			if m.Seats > 0 {
				out = append(out, fmt.Sprintf("minute %d seats=%d revenue=%d", m.MinuteMs/60_000, m.Seats, m.RevenueCents))
			}
		}
		out = append(out, fmt.Sprintf("minutes=%d", len(rep.Minutes)))
		return strings.Join(out, "\n")
	case "access":
		var ev, user string
		d.ScanArgs(t, "event", &ev)
		d.ScanArgs(t, "user", &user)
		l, err := e.s.Access(ev, user, user == "admin")
		if err != nil {
			return "error " + err.Error()
		}
		return l.String()
	case "hold-get":
		var id string
		d.ScanArgs(t, "id", &id)
		h, err := e.s.Hold(id)
		if err != nil {
			return "error " + err.Error()
		}
		return fmtHold(h)
	case "order-get":
		var id string
		d.ScanArgs(t, "id", &id)
		o, err := e.s.Order(id)
		if err != nil {
			return "error " + err.Error()
		}
		return fmtOrder(o)
	case "holds-of", "orders-of":
		var buyer string
		d.ScanArgs(t, "buyer", &buyer)
		ids, err := e.s.HoldsOf(buyer)
		if d.Cmd == "orders-of" {
			ids, err = e.s.OrdersOf(buyer)
		}
		require.NoError(t, err)
		return "[" + strings.Join(ids, " ") + "]"
	case "events":
		after, limit := "", 100
		d.MaybeScanArgs(t, "after", &after)
		d.MaybeScanArgs(t, "limit", &limit)
		evs, err := e.s.Events(after, limit)
		require.NoError(t, err)
		var out []string
		for _, ev := range evs {
			out = append(out, fmtEvent(ev))
		}
		if len(out) == 0 {
			return "(none)"
		}
		return strings.Join(out, "\n")
	case "nodes":
		nodes, err := e.s.Nodes()
		require.NoError(t, err)
		var out []string
		for _, n := range nodes {
			out = append(out, fmt.Sprintf("node %s raft=%s http=%s", n.ID, n.RaftAddr, n.HTTPAddr))
		}
		if len(out) == 0 {
			return "(none)"
		}
		return strings.Join(out, "\n")
	case "venue":
		var id string
		version := 0
		d.ScanArgs(t, "id", &id)
		d.MaybeScanArgs(t, "version", &version)
		v, err := e.s.Venue(id, version)
		if err != nil {
			return "error " + err.Error()
		}
		return fmtVenue(v)
	case "venues":
		after, limit := "", 100
		d.MaybeScanArgs(t, "after", &after)
		d.MaybeScanArgs(t, "limit", &limit)
		vs, err := e.s.Venues(after, limit)
		require.NoError(t, err)
		var out []string
		for _, v := range vs {
			out = append(out, fmtVenue(v))
		}
		if len(out) == 0 {
			return "(none)"
		}
		return strings.Join(out, "\n")
	case "queue":
		var ev string
		d.ScanArgs(t, "event", &ev)
		q, err := e.s.Queue(ev)
		if err != nil {
			return "error " + err.Error()
		}
		return fmtQueue(q)
	case "place":
		var ev, buyers string
		d.ScanArgs(t, "event", &ev)
		d.ScanArgs(t, "buyers", &buyers)
		var out []string
		for _, b := range splitList(buyers) {
			p, err := e.s.Place(ev, b, 0)
			if err != nil {
				out = append(out, b+": error "+err.Error())
				continue
			}
			out = append(out, fmtPlace(p))
		}
		return strings.Join(out, "\n")
	case "queue-steps":
		var now int64
		d.ScanArgs(t, "now", &now)
		cmds, err := e.s.QueueSteps(now)
		require.NoError(t, err)
		var out []string
		for _, c := range cmds {
			switch c := c.(type) {
			case *OpenQueue:
				out = append(out, "open event="+c.Event)
			case *AdvanceAdmission:
				out = append(out, fmt.Sprintf("advance event=%s max=%d", c.Event, c.Max))
			}
		}
		if len(out) == 0 {
			return "(none due)"
		}
		return strings.Join(out, "\n")
	case "meta":
		return fmt.Sprintf("applied=%d now=%d", e.s.AppliedIndex(), e.s.NowMs())
	case "dump":
		return dumpStore(t, e.s)
	case "reopen":
		hash := mustHash(t, e.s)
		require.NoError(t, e.s.Close())
		e.s = openShard(t, e.dir, ddShard)
		require.Equal(t, hash, mustHash(t, e.s), "reopen changed the store")
		return fmt.Sprintf("reopened: applied=%d now=%d", e.s.AppliedIndex(), e.s.NowMs())
	}
	c, err := parseCommand(d.Cmd, d.CmdArgs)
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	before, beforeNoIdem, applied := stateHash(t, e.s), stateHashWithout(t, e.s, tagIdem, tagIdemAge), e.s.AppliedIndex()
	rs, err := e.apply(t, []Command{c})
	if err != nil {
		require.Equal(t, before, stateHash(t, e.s), "a halted entry changed the state")
		require.Equal(t, applied, e.s.AppliedIndex(), "a halted entry moved the applied index")
		return "halt: " + err.Error()
	}
	_, idem := c.(*Idempotent)
	switch r := rs[0]; {
	case r.Replayed || boxoffice.CodeOf(r.Err) == boxoffice.CodeIdempotencyReused:
		require.Equal(t, before, stateHash(t, e.s), "a replayed or refused idempotent command changed the state")
	case r.Err != nil && idem:
		require.Equal(t, beforeNoIdem, stateHashWithout(t, e.s, tagIdem, tagIdemAge), "a rejected idempotent command changed more than its record")
	case r.Err != nil:
		require.Equal(t, before, stateHash(t, e.s), "a rejected command changed the state")
	}
	return fmtResult(c, rs[0])
}

// apply applies the commands as the next entry, then checks the store's
// invariants. A halt (an ApplyEntries error) is returned, and the entry's
// index is not consumed.
func (e *ddEnv) apply(t *testing.T, cmds []Command) ([]Result, error) {
	ent := entryOf(e.index+1, e.nowMs, cmds...)
	rs, err := e.s.ApplyEntries([]Entry{ent})
	if err != nil {
		return nil, err
	}
	e.index++
	require.Equal(t, e.index, e.s.AppliedIndex())
	require.Len(t, rs[0], len(cmds))
	checkInvariants(t, e.s)
	return rs[0], nil
}

func (e *ddEnv) seats(t *testing.T, d *datadriven.TestData) string {
	var ev string
	var f SeatFilter
	d.ScanArgs(t, "event", &ev)
	d.MaybeScanArgs(t, "section", &f.Section)
	d.MaybeScanArgs(t, "category", &f.Category)
	var state string
	if d.MaybeScanArgs(t, "state", &state) {
		st, ok := boxoffice.ParseSeatState(state)
		require.True(t, ok, "state %q", state)
		f.State = &st
	}
	seats, err := e.s.Seats(ev, f)
	if err != nil {
		return "error " + err.Error()
	}
	if len(seats) == 0 {
		return "(none)"
	}
	var out []string
	for _, s := range seats {
		line := fmt.Sprintf("%s %s %s", s.ID, s.Category, s.State)
		switch {
		case s.Hold != "":
			line += " " + s.Hold
		case s.Order != "":
			line += " " + s.Order
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// parseCommand builds a command from a script line.
func parseCommand(name string, args []datadriven.CmdArg) (Command, error) {
	vals := map[string]string{}
	for _, a := range args {
		vals[a.Key] = strings.Join(a.Vals, ",")
	}
	known := map[string][]string{
		"create-event": {"id", "name", "sections", "areas", "categories", "max-per-buyer", "ttl", "organiser"},
		"update-event": {"id", "name", "sections", "areas", "categories", "max-per-buyer", "ttl", "organiser", "as"},
		"hold":         {"event", "buyer", "seats", "ttl"},
		"hold-area":    {"event", "buyer", "area", "quantity", "ttl"},
		"put-venue":    {"id", "owner", "sections", "areas", "categories", "create", "admin"},
		"release":      {"hold", "buyer", "seats"},
		"purchase":     {"hold", "buyer", "ref"},
		"extend":       {"hold", "buyer", "ttl"},
		"cancel":       {"order", "buyer", "as"},
		"grant":        {"event", "actor", "user", "level", "admin"},
		"exchange":     {"order", "buyer", "release", "take"},
		"expire":       {"max"},
		"put-node":     {"id", "raft", "http"},
		"remove-node":  {"id"},
		"protect":      {"event", "opens", "pass-ttl", "admit-pct"},
		"join":         {"event", "buyer"},
		"open":         {"event", "seed"},
		"advance":      {"event", "max"},
	}
	ks, ok := known[name]
	if !ok {
		return nil, fmt.Errorf("unknown command %q", name)
	}
	for k := range vals {
		// Every command takes idem=, even those Idempotent may not wrap, so
		// that a script can show the decoder refusing them.
		if !slices.Contains(ks, k) && k != "idem" {
			return nil, fmt.Errorf("%s: unknown argument %q", name, k)
		}
	}
	c, err := parseBareCommand(name, vals)
	if err == nil && vals["as"] != "" {
		c, err = wrapAuthorized(c, vals)
	}
	if err != nil || vals["idem"] == "" {
		return c, err
	}
	subject := cmp.Or(vals["buyer"], "admin")
	specs := splitList(vals["idem"])
	for i := len(specs) - 1; i >= 0; i-- {
		k, label, ok := strings.Cut(specs[i], ":")
		if !ok {
			return nil, fmt.Errorf("%s: idem=%q: want KEY:LABEL", name, specs[i])
		}
		c = &Idempotent{Subject: subject, Key: k, Hash: idemHash(label), Command: c}
	}
	return c, nil
}

// idemHash is the request hash a script's label stands for.
func idemHash(label string) []byte {
	sum := sha256.Sum256([]byte(label))
	return sum[:IdempotencyHashLen]
}

// parseBareCommand builds a command, without its Idempotent wrapper, from
// a script line's arguments.
func parseBareCommand(name string, vals map[string]string) (Command, error) {
	num := func(k string, def int) (int, error) {
		v, ok := vals[k]
		if !ok {
			return def, nil
		}
		return strconv.Atoi(v)
	}
	switch name {
	case "create-event", "update-event":
		secs, err := parseSections(vals["sections"])
		if err != nil {
			return nil, err
		}
		cats, err := parseCategories(vals["categories"])
		if err != nil {
			return nil, err
		}
		maxPer, err := num("max-per-buyer", 4)
		if err != nil {
			return nil, err
		}
		ttl, err := num("ttl", 60)
		if err != nil {
			return nil, err
		}
		areas, err := parseAreas(vals["areas"])
		if err != nil {
			return nil, err
		}
		ev := boxoffice.Event{
			ID: vals["id"], Name: "Event " + vals["id"], Organiser: "org1",
			Categories: cats, Venue: boxoffice.Venue{Sections: secs, Areas: areas},
			Limits: boxoffice.Limits{MaxSeatsPerBuyer: maxPer, HoldTTLSeconds: ttl},
		}
		if n, ok := vals["name"]; ok {
			ev.Name = n
		}
		if o, ok := vals["organiser"]; ok {
			ev.Organiser = o
		}
		if name == "create-event" {
			return &CreateEvent{Event: ev}, nil
		}
		return &UpdateEvent{Event: ev}, nil
	case "hold":
		ttl, err := num("ttl", 0)
		if err != nil {
			return nil, err
		}
		return &Hold{Event: vals["event"], Buyer: vals["buyer"], Seats: splitList(vals["seats"]), TTLSeconds: ttl}, nil
	case "hold-area":
		ttl, err := num("ttl", 0)
		if err != nil {
			return nil, err
		}
		q, err := num("quantity", 0)
		if err != nil {
			return nil, err
		}
		return &HoldArea{Event: vals["event"], Buyer: vals["buyer"], Area: vals["area"], Quantity: q, TTLSeconds: ttl}, nil
	case "put-venue":
		secs, err := parseSections(vals["sections"])
		if err != nil {
			return nil, err
		}
		areas, err := parseAreas(vals["areas"])
		if err != nil {
			return nil, err
		}
		var cats []boxoffice.VenueCategory
		for _, c := range splitList(vals["categories"]) {
			cats = append(cats, boxoffice.VenueCategory{ID: c, Name: strings.ToUpper(c)})
		}
		return &PutVenue{
			Venue:  boxoffice.VenueChart{ID: vals["id"], Name: "Venue " + vals["id"], Owner: vals["owner"], Categories: cats, Sections: secs, Areas: areas},
			Create: vals["create"] == "true", Admin: vals["admin"] == "true",
		}, nil
	case "release":
		return &Release{Hold: vals["hold"], Buyer: vals["buyer"], Seats: splitList(vals["seats"])}, nil
	case "purchase":
		return &Purchase{Hold: vals["hold"], Buyer: vals["buyer"], PaymentRef: vals["ref"]}, nil
	case "extend":
		ttl, err := num("ttl", 0)
		if err != nil {
			return nil, err
		}
		return &ExtendHold{Hold: vals["hold"], Buyer: vals["buyer"], TTLSeconds: ttl}, nil
	case "cancel":
		return &CancelOrder{Order: vals["order"], Buyer: vals["buyer"]}, nil
	case "exchange":
		return &Exchange{Order: vals["order"], Buyer: vals["buyer"], Release: splitList(vals["release"]), Take: splitList(vals["take"])}, nil
	case "expire":
		n, err := num("max", 0)
		if err != nil {
			return nil, err
		}
		return &Expire{Max: n}, nil
	case "put-node":
		return &PutNode{Node: boxoffice.Node{ID: vals["id"], RaftAddr: vals["raft"], HTTPAddr: vals["http"]}}, nil
	case "remove-node":
		return &RemoveNode{ID: vals["id"]}, nil
	case "grant":
		level, ok := boxoffice.ParseGrantLevel(vals["level"])
		if !ok && vals["level"] != "none" {
			level = boxoffice.AccessLevel(99) // the decoder refuses it: the entry halts
		}
		return &SetGrant{Event: vals["event"], Actor: vals["actor"], Admin: vals["admin"] == "true", User: vals["user"], Level: level}, nil
	case "protect":
		opens, err := num("opens", 0)
		if err != nil {
			return nil, err
		}
		ttl, err := num("pass-ttl", 60)
		if err != nil {
			return nil, err
		}
		pct, err := num("admit-pct", 100)
		if err != nil {
			return nil, err
		}
		return &ProtectSale{Event: vals["event"], Config: boxoffice.QueueConfig{OpensAtMs: int64(opens), PassTTLSeconds: ttl, AdmitPercent: pct}}, nil
	case "join":
		return &JoinQueue{Event: vals["event"], Buyer: vals["buyer"]}, nil
	case "open":
		seed, err := strconv.ParseUint(vals["seed"], 10, 64)
		if err != nil {
			return nil, err
		}
		return &OpenQueue{Event: vals["event"], Seed: seed}, nil
	case "advance":
		n, err := num("max", 0)
		if err != nil {
			return nil, err
		}
		return &AdvanceAdmission{Event: vals["event"], Max: n}, nil
	}
	panic("unreachable")
}

// wrapAuthorized wraps c as as=ACTOR:NEED[:EVENT] says.
func wrapAuthorized(c Command, vals map[string]string) (Command, error) {
	parts := strings.Split(vals["as"], ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("as=%q: want ACTOR:NEED[:EVENT]", vals["as"])
	}
	need := map[string]boxoffice.AccessLevel{"view": boxoffice.AccessView, "manage": boxoffice.AccessManage, "owner": boxoffice.AccessOwner}[parts[1]]
	if need == boxoffice.AccessNone {
		return nil, fmt.Errorf("as=%q: unknown level %q", vals["as"], parts[1])
	}
	ev := vals["id"]
	if len(parts) == 3 {
		ev = parts[2]
	}
	return &Authorized{Event: ev, Actor: parts[0], Admin: parts[0] == "admin", Need: need, Command: c}, nil
}

func indent(s string) string { return "   " + strings.ReplaceAll(s, "\n", "\n   ") }
