package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// sampleCommands has one command of every type, with every field set.
func sampleCommands() []Command {
	ev := boxoffice.Event{
		ID: "e1", Name: "Night", Type: "concert", Location: "Berlin", StartsAtMs: -12345, Organiser: "org1",
		Categories: []boxoffice.Category{{ID: "floor", Name: "Floor", PriceCents: 9900}, {ID: "free", Name: "", PriceCents: 0}},
		Venue:      boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 1000, SeatsPerRow: 200}, {ID: "B", Category: "free", Rows: 1, SeatsPerRow: 1}}},
		Limits:     boxoffice.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 600},
	}
	gaEv := ev
	gaEv.Venue = boxoffice.Venue{
		Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 2, SeatsPerRow: 3, Position: &boxoffice.Point{X: 10, Y: 20}}, {ID: "B", Category: "free", Rows: 1, SeatsPerRow: 1}},
		Areas:    []boxoffice.Area{{ID: "PIT", Category: "free", Capacity: 40000}},
	}
	gaEv.VenueID, gaEv.VenueVersion = "arena", 2
	return []Command{
		&CreateEvent{Event: ev},
		&UpdateEvent{Event: ev},
		&Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1", "A-1-2"}, TTLSeconds: 30},
		&Hold{Event: "e1", Buyer: "u1", Seats: []string{"B-1-1"}, TTLSeconds: -1},
		&Release{Hold: "h_0.1.0", Buyer: "u1", Seats: []string{"A-1-2"}},
		&Release{Hold: "h_0.1.0", Buyer: "", Seats: []string{}},
		&Purchase{Hold: "h_0.1.0", Buyer: "u1", PaymentRef: "pi_123"},
		&Expire{Max: 100},
		&Expire{Max: 0},
		&PutNode{Node: boxoffice.Node{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080"}},
		&RemoveNode{ID: "n1"},
		&ExtendHold{Hold: "h_0.1.0", Buyer: "u1", TTLSeconds: 60},
		&CancelOrder{Order: "o_0.2.0", Buyer: "u1"},
		&Exchange{Order: "o_0.2.0", Buyer: "u1", Release: []string{"A-1-1"}, Take: []string{"A-2-1"}},
		&CheckoutBegin{Hold: "h_0.1.0", Buyer: "u1", PaymentMethod: "pm_card_visa", LeaseMs: 120_000},
		&CheckoutComplete{Order: "o_0.2.0", ChargeRef: "pi_1"},
		&CheckoutFail{Order: "o_0.2.0", Reason: "declined"},
		&CheckoutFail{Order: "o_0.2.0", Reason: "lease ended", VerifyMs: 600_000},
		&VerifyDone{Order: "o_0.2.0"},
		&RefundDone{Order: "o_0.2.0", RefundRef: "re_1"},
		&ProtectSale{Event: "e1", Config: boxoffice.QueueConfig{OpensAtMs: 1_780_000_000_000, PassTTLSeconds: 600, AdmitPercent: 100}},
		&JoinQueue{Event: "e1", Buyer: "u1"},
		&OpenQueue{Event: "e1", Seed: 1<<64 - 1},
		&AdvanceAdmission{Event: "e1", Max: 500},
		&Idempotent{Subject: "u1", Key: "k-1", Hash: bytes.Repeat([]byte{7}, IdempotencyHashLen),
			Command: &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}, TTLSeconds: 0}},
		&SetGrant{Event: "e1", Actor: "org1", User: "u2", Level: boxoffice.AccessView},
		&SetGrant{Event: "e1", Actor: "admin", Admin: true, User: "u2", Level: boxoffice.AccessNone},
		&Authorized{Event: "e1", Actor: "u2", Need: boxoffice.AccessManage, Command: &CancelOrder{Order: "o_0.2.0"}},
		&Idempotent{Subject: "u2", Key: "k-2", Hash: bytes.Repeat([]byte{8}, IdempotencyHashLen),
			Command: &Authorized{Event: "e1", Actor: "u2", Admin: true, Need: boxoffice.AccessOwner, Command: &UpdateEvent{Event: ev}}},
		&CreateEvent{Event: gaEv},
		&UpdateEvent{Event: gaEv, Base: []byte{1, 2}},
		&PutVenue{Venue: boxoffice.VenueChart{ID: "arena", Version: 0, Name: "Arena", Location: "Berlin", Owner: "org1",
			Categories: []boxoffice.VenueCategory{{ID: "floor", Name: "Floor"}, {ID: "ga", Name: "Standing"}},
			Sections:   []boxoffice.Section{{ID: "A", Category: "floor", Rows: 100, SeatsPerRow: 50, Position: &boxoffice.Point{X: -3, Y: 4}}},
			Areas:      []boxoffice.Area{{ID: "PIT", Category: "ga", Capacity: 40000}}}, Create: true},
		&PutVenue{Venue: boxoffice.VenueChart{ID: "arena", Name: "Arena", Owner: "admin1", Categories: []boxoffice.VenueCategory{{ID: "ga"}},
			Areas: []boxoffice.Area{{ID: "PIT", Category: "ga", Capacity: 1, Position: &boxoffice.Point{}}}}, Admin: true},
		&HoldArea{Event: "e1", Buyer: "u1", Area: "PIT", Quantity: 4, TTLSeconds: 30},
		&Idempotent{Subject: "u1", Key: "k-2", Hash: bytes.Repeat([]byte{8}, IdempotencyHashLen),
			Command: &HoldArea{Event: "e1", Buyer: "u1", Area: "PIT", Quantity: 2}},
	}
}

// Every command type survives Encode then Decode unchanged, and
// AppendCommand appends exactly what EncodeCommand returns.
func TestCommandRoundTrip(t *testing.T) {
	types := map[Type]bool{}
	for _, c := range sampleCommands() {
		b := EncodeCommand(c)
		require.Equal(t, commandVersion, b[0])
		require.Equal(t, byte(c.Type()), b[1])
		got, err := DecodeCommand(b)
		require.NoError(t, err, "%T", c)
		require.Equal(t, c, got)
		require.Equal(t, append([]byte("prefix"), b...), AppendCommand([]byte("prefix"), c))
		types[c.Type()] = true
	}
	for ty := TypeCreateEvent; ty <= TypeVerifyDone; ty++ {
		require.True(t, types[ty], "no sample of type %d", ty)
	}
	for _, ty := range []Type{TypeSetGrant, TypeAuthorized, TypeProtectSale, TypeJoinQueue, TypeOpenQueue, TypeAdvanceAdmission} {
		require.True(t, types[ty], "no sample of type %d", ty)
	}
}

// An entry carries its stamp and its commands in order; its commands alias
// the entry's bytes.
func TestEntryRoundTrip(t *testing.T) {
	var raw [][]byte
	for _, c := range sampleCommands() {
		raw = append(raw, EncodeCommand(c))
	}
	for _, tc := range []struct {
		nowMs int64
		cmds  [][]byte
	}{
		{0, nil},
		{1, raw[:1]},
		{1_780_000_000_000, raw},
		{1 << 62, raw[3:5]},
	} {
		data := EncodeEntry(tc.nowMs, tc.cmds)
		now, cmds, err := DecodeEntry(data)
		require.NoError(t, err)
		require.Equal(t, tc.nowMs, now)
		require.Len(t, cmds, len(tc.cmds))
		for i := range cmds {
			require.Equal(t, tc.cmds[i], cmds[i])
		}
	}
	// The largest entry allowed.
	many := make([][]byte, EntryCommandsMax)
	for i := range many {
		many[i] = raw[7]
	}
	_, cmds, err := DecodeEntry(EncodeEntry(5, many))
	require.NoError(t, err)
	require.Len(t, cmds, EntryCommandsMax)
}

// Decoding rejects, with an error and never a panic, an unknown version or
// type, input cut at any length, and trailing bytes.
func TestDecodeCommandRejects(t *testing.T) {
	for _, c := range sampleCommands() {
		b := EncodeCommand(c)
		name := fmt.Sprintf("%T", c)
		for n := range len(b) {
			_, err := DecodeCommand(b[:n])
			require.Error(t, err, "%s cut to %d of %d bytes", name, n, len(b))
		}
		for _, extra := range [][]byte{{0}, {1, 2, 3}} {
			_, err := DecodeCommand(append(bytes.Clone(b), extra...))
			require.ErrorIs(t, err, errMalformed, "%s with trailing bytes", name)
		}
		for _, v := range []byte{0, 2, 255} {
			bad := bytes.Clone(b)
			bad[0] = v
			_, err := DecodeCommand(bad)
			require.ErrorContains(t, err, "unknown version", "%s with version %d", name, v)
		}
	}
	for _, ty := range []byte{0, 200, 250, 255} {
		_, err := DecodeCommand([]byte{commandVersion, ty, 0, 0, 0})
		require.ErrorContains(t, err, "unknown type", "type %d", ty)
	}
	for name, b := range map[string][]byte{
		"string longer than the input":   {commandVersion, byte(TypeRemoveNode), 5, 'a'},
		"string over the limit":          binary.AppendUvarint([]byte{commandVersion, byte(TypeRemoveNode)}, stringLenMax+1),
		"varint overflow":                {commandVersion, byte(TypeExpire), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"int out of range":               binary.AppendVarint([]byte{commandVersion, byte(TypeExpire)}, 1<<41),
		"seat list longer than input":    {commandVersion, byte(TypeRelease), 0, 0, 100, 0},
		"too many categories":            append(eventPrefix(), byte(boxoffice.CategoriesMax+1)),
		"too many sections":              binary.AppendUvarint(append(eventPrefix(), 0), boxoffice.SectionsMax+1),
		"sections longer than the input": append(append(eventPrefix(), 0), 50, 1, 'A'),
	} {
		require.NotPanics(t, func() {
			_, err := DecodeCommand(b)
			require.Error(t, err, name)
		}, name)
	}
}

// Idempotent wraps one client write. The decoder refuses a wrapper around
// another wrapper or around the leader's housekeeping (Expire, PutNode,
// RemoveNode), since applying those once per key would let a client replay
// a sweep or a membership change; it accepts every client write.
func TestDecodeIdempotentRejectsWrongInner(t *testing.T) {
	hash := bytes.Repeat([]byte{7}, IdempotencyHashLen)
	wrap := func(c Command) *Idempotent { return &Idempotent{Subject: "u1", Key: "k", Hash: hash, Command: c} }
	hold := &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}}
	for name, c := range map[string]Command{
		"idempotent in idempotent":          wrap(wrap(hold)),
		"idempotent in idempotent (expire)": wrap(wrap(&Expire{Max: 1})),
		"expire":                            wrap(&Expire{Max: 1}),
		"put-node":                          wrap(&PutNode{Node: boxoffice.Node{ID: "n1", RaftAddr: "a", HTTPAddr: "b"}}),
		"remove-node":                       wrap(&RemoveNode{ID: "n1"}),
	} {
		b := EncodeCommand(c) // the encoder does not check; the decoder must
		got, err := DecodeCommand(b)
		require.ErrorIs(t, err, errMalformed, name)
		require.Nil(t, got, name)
		// Inside an entry, the entry decodes but applying it halts and
		// changes nothing.
		s := newStore(t)
		before := stateHash(t, s)
		_, err = s.ApplyEntries([]Entry{entryOf(1, 1000, c)})
		require.Error(t, err, name)
		require.Equal(t, before, stateHash(t, s), name)
		require.Zero(t, s.AppliedIndex(), name)
	}
	// An inner command that does not decode is refused too.
	inner := EncodeCommand(hold)
	w := writer{}
	w.u8(commandVersion)
	w.u8(uint8(TypeIdempotent))
	w.str("u1")
	w.str("k")
	w.bytes(hash)
	w.bytes(inner[:len(inner)-1])
	_, err := DecodeCommand(w.b)
	require.Error(t, err)

	for _, c := range sampleCommands() {
		if idempotentOK(c.Type()) {
			got, err := DecodeCommand(EncodeCommand(wrap(c)))
			require.NoError(t, err, "%T", c)
			require.Equal(t, wrap(c), got)
		}
	}
}

// eventPrefix is a CreateEvent encoding up to its category count.
func eventPrefix() []byte {
	w := writer{}
	w.u8(commandVersion)
	w.u8(uint8(TypeCreateEvent))
	for range 4 {
		w.str("x")
	}
	w.varint(0)
	w.str("o")
	return w.b
}

func TestDecodeEntryRejects(t *testing.T) {
	data := EncodeEntry(1000, [][]byte{EncodeCommand(&Expire{Max: 1}), EncodeCommand(&RemoveNode{ID: "n1"})})
	for n := range len(data) {
		_, _, err := DecodeEntry(data[:n])
		require.Error(t, err, "entry cut to %d of %d bytes", n, len(data))
	}
	_, _, err := DecodeEntry(append(bytes.Clone(data), 0))
	require.ErrorIs(t, err, errMalformed)
	for _, v := range []byte{0, 2, 255} {
		bad := bytes.Clone(data)
		bad[0] = v
		_, _, err := DecodeEntry(bad)
		require.ErrorContains(t, err, "unknown version")
	}
	for name, b := range map[string][]byte{
		"stamp out of range":     append(binary.AppendUvarint([]byte{entryVersion}, 1<<62+1), 0),
		"too many commands":      binary.AppendUvarint([]byte{entryVersion, 0}, EntryCommandsMax+1),
		"count over the input":   {entryVersion, 0, 3, 1, 0},
		"command over the max":   binary.AppendUvarint([]byte{entryVersion, 0, 1}, CommandBytesMax+1),
		"command over the input": {entryVersion, 0, 1, 9, 1, 2},
	} {
		require.NotPanics(t, func() {
			_, _, err := DecodeEntry(b)
			require.Error(t, err, name)
		}, name)
	}
}

// Stored values decode strictly too.
func TestDecodeValuesRejects(t *testing.T) {
	h := &boxoffice.Hold{ID: "h", Event: "e", Buyer: "b", Seats: []string{"A-1-1"}, CreatedAtMs: 1, ExpiresAtMs: 2, State: boxoffice.HoldActive}
	o := &boxoffice.Order{ID: "o", Event: "e", Hold: "h", Buyer: "b", Seats: []string{"A-1-1"}, AmountCents: 5, PaymentRef: "p", CreatedAtMs: 3, State: boxoffice.OrderPaid}
	ev := sampleCommands()[0].(*CreateEvent).Event
	values := map[string][]byte{
		"seat":  encodeSeat(seatRec{state: boxoffice.SeatHeld, owner: "h", expiresAtMs: 9}),
		"hold":  encodeHold(h),
		"order": encodeOrder(o),
		"event": encodeEventValue(&ev),
		"buyer": encodeBuyerRec(buyerRec{sold: 3, holds: []buyerHold{{id: "h", expiresAtMs: 9, seats: 2}}}),
		"node":  encodeNode(boxoffice.Node{ID: "n", RaftAddr: "r", HTTPAddr: "h"}),
		"idem ok": encodeIdem(&idemRecord{hash: bytes.Repeat([]byte{1}, IdempotencyHashLen), createdAtMs: 5,
			res: Result{Event: &ev, Hold: h, Order: o}}),
		"idem rejected": encodeIdem(&idemRecord{hash: bytes.Repeat([]byte{2}, IdempotencyHashLen), createdAtMs: 6,
			res: Result{Err: boxoffice.Errorf(boxoffice.CodeBuyerLimit, "too many")}}),
	}
	decode := map[string]func([]byte) error{
		"seat":          func(b []byte) error { _, err := decodeSeat(b); return err },
		"hold":          func(b []byte) error { _, err := decodeHold(b); return err },
		"order":         func(b []byte) error { _, err := decodeOrder(b); return err },
		"event":         func(b []byte) error { _, err := decodeEventValue(b); return err },
		"buyer":         func(b []byte) error { _, err := decodeBuyerRec(b); return err },
		"node":          func(b []byte) error { _, err := decodeNode(b); return err },
		"idem ok":       func(b []byte) error { _, err := decodeIdem(b); return err },
		"idem rejected": func(b []byte) error { _, err := decodeIdem(b); return err },
	}
	for name, b := range values {
		require.NoError(t, decode[name](b), name)
		for n := range len(b) {
			require.Error(t, decode[name](b[:n]), "%s cut to %d of %d", name, n, len(b))
		}
		require.Error(t, decode[name](append(bytes.Clone(b), 0)), "%s with a trailing byte", name)
	}
	got, err := decodeHold(values["hold"])
	require.NoError(t, err)
	require.Equal(t, h, got)
	gotO, err := decodeOrder(values["order"])
	require.NoError(t, err)
	require.Equal(t, o, gotO)
	// An idempotency record keeps the result whole, and a rejection's code
	// and detail.
	rec, err := decodeIdem(values["idem ok"])
	require.NoError(t, err)
	require.Equal(t, &idemRecord{hash: bytes.Repeat([]byte{1}, IdempotencyHashLen), createdAtMs: 5, res: Result{Event: &ev, Hold: h, Order: o}}, rec)
	rec, err = decodeIdem(values["idem rejected"])
	require.NoError(t, err)
	require.Equal(t, &boxoffice.Error{Code: boxoffice.CodeBuyerLimit, Detail: "too many"}, rec.res.Err)
	require.Nil(t, rec.res.Hold)
}

// fuzzSeeds are encodings the fuzz targets start from.
func fuzzSeeds() [][]byte {
	var out [][]byte
	var raw [][]byte
	for _, c := range sampleCommands() {
		b := EncodeCommand(c)
		out = append(out, b)
		raw = append(raw, b)
	}
	out = append(out, EncodeEntry(1000, raw), EncodeEntry(0, nil), nil, []byte{1}, []byte{1, 0xff})
	return out
}

// FuzzDecodeCommand: decoding any bytes returns an error or a command that
// encodes and decodes again to itself; it never panics.
func FuzzDecodeCommand(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			require.Nil(t, c)
			return
		}
		again, err := DecodeCommand(EncodeCommand(c))
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

// FuzzDecodeEntry: decoding any bytes returns an error or a stamp and
// commands that encode and decode again to themselves; it never panics.
func FuzzDecodeEntry(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		now, cmds, err := DecodeEntry(b)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, now, int64(0))
		now2, cmds2, err := DecodeEntry(EncodeEntry(now, cmds))
		require.NoError(t, err)
		require.Equal(t, now, now2)
		require.Equal(t, len(cmds), len(cmds2))
		for i := range cmds {
			require.True(t, bytes.Equal(cmds[i], cmds2[i]))
			// Every command of a well-formed entry decodes, or fails, alone.
			_, _ = DecodeCommand(cmds[i])
		}
	})
}

// A varint has one encoding: the shortest. Over-long forms (which
// binary.Uvarint accepts) are refused, so no command has two encodings.
func TestDecodeRefusesOverLongVarints(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want uint64
		ok   bool
	}{
		{[]byte{0x00}, 0, true},
		{[]byte{0x7f}, 127, true},
		{[]byte{0x80, 0x01}, 128, true},
		{[]byte{0x80, 0x00}, 0, false},
		{[]byte{0xff, 0x80, 0x00}, 0, false},
		{[]byte{0x81, 0x80, 0x80, 0x00}, 0, false},
	} {
		r := reader{b: tc.in}
		got := r.uvarint()
		if tc.ok {
			require.NoError(t, r.err, "% x", tc.in)
			require.Equal(t, tc.want, got)
		} else {
			require.ErrorIs(t, r.err, errMalformed, "% x", tc.in)
		}
		r = reader{b: tc.in}
		r.varint()
		require.Equal(t, tc.ok, r.err == nil, "varint % x", tc.in)
	}
}
