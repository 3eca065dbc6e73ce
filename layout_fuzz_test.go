package boxoffice

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzEventValidate decodes any JSON into an Event and checks that Validate
// agrees with validEvent, a plain restatement of the rules, and rejects only
// with invalid_argument; an event it accepts gets a layout that keeps every
// promise of checkLayout.
func FuzzEventValidate(f *testing.F) {
	for _, s := range []string{
		`{"id":"e1","name":"E","categories":[{"id":"c","name":"C","priceCents":100}],"venue":{"sections":[{"id":"A","category":"c","rows":2,"seatsPerRow":3}]},"limits":{"maxSeatsPerBuyer":4,"holdTTLSeconds":60}}`,
		`{"id":"e.1_x-y","name":"Ünïcødé ✓","type":"concert","location":"Berlin","organiser":"o1","categories":[{"id":"c","priceCents":0},{"id":"d","priceCents":9223372036854775807}],"venue":{"sections":[{"id":"A.1","category":"c","rows":1000,"seatsPerRow":100},{"id":"_","category":"d","rows":1000,"seatsPerRow":100}]},"limits":{"maxSeatsPerBuyer":1000,"holdTTLSeconds":3600}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c","priceCents":1}],"venue":{"sections":[{"id":"A","category":"c","rows":1000,"seatsPerRow":201}]},"limits":{"maxSeatsPerBuyer":1,"holdTTLSeconds":1}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c","priceCents":-1},{"id":"c"}],"venue":{"sections":[{"id":"A-B","category":"x","rows":0,"seatsPerRow":1001}]},"limits":{}}`,
		`{"id":"","name":"","categories":[],"venue":{"sections":[]}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":-9223372036854775808,"seatsPerRow":-1}]},"limits":{"maxSeatsPerBuyer":1,"holdTTLSeconds":1}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":4294967296,"seatsPerRow":4294967296}]},"limits":{"maxSeatsPerBuyer":1,"holdTTLSeconds":1}}`,
		`null`, `[]`, `{"venue":null}`,
	} {
		f.Add([]byte(s), "A-1-1", uint32(0))
	}
	f.Add([]byte(`{"id":"e1","name":"E","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":3,"seatsPerRow":4},{"id":"B","category":"c","rows":2,"seatsPerRow":2}]},"limits":{"maxSeatsPerBuyer":1,"holdTTLSeconds":1}}`), "B-2-2", uint32(15))
	f.Fuzz(func(t *testing.T, data []byte, id string, k uint32) {
		var e Event
		if json.Unmarshal(data, &e) != nil {
			return
		}
		err := e.Validate()
		require.Equal(t, validEvent(&e), err == nil, "Validate: %v", err)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidArgument)
			require.Equal(t, CodeInvalidArgument, CodeOf(err))
			return
		}
		checkLayout(t, e.Venue, id, k)
	})
}

// FuzzLayout builds venues from bytes (five per section: an id from a list
// of odd but mostly valid ones, a category, rows and seats per row up to
// beyond the limits), checks Validate against validEvent, and checks
// checkLayout on every venue it accepts, with a fuzzed seat id and index.
func FuzzLayout(f *testing.F) {
	sec := func(id, cat byte, rows, seats uint16) []byte {
		b := []byte{id, cat, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(b[2:], rows-1)
		binary.BigEndian.PutUint16(b[4:], seats-1)
		return b
	}
	f.Add(sec(0, 0, 3, 4), "A-3-4", uint32(11))
	f.Add(append(sec(0, 0, 3, 4), sec(1, 1, 1, 7)...), "B.2-1-7", uint32(18))
	f.Add(append(sec(0, 0, 1000, 200), sec(2, 0, 1, 1)...), "_-1-1", uint32(200_000))
	f.Add(sec(3, 0, 1000, 1000), "A-1000-1000", uint32(0))
	f.Add(append(sec(4, 0, 2, 2), sec(4, 0, 2, 2)...), "9-1-1", uint32(3))
	f.Add(sec(5, 2, 1, 1), "A-B-1-1", uint32(1))
	f.Add(sec(8, 0, 1, 1), strings.Repeat("s", 64)+"-1-1", uint32(0))
	for _, id := range []string{"A-01-1", "A-+1-1", "A-1-1\x00", "A-9223372036854775808-1", "-1-1", "A--1-1", "A-1-", "A-1-1-1", "A-١-1"} {
		f.Add(sec(0, 0, 3, 4), id, uint32(7))
	}
	f.Fuzz(func(t *testing.T, spec []byte, id string, k uint32) {
		e := Event{ID: "e1", Name: "E",
			Categories: []Category{{ID: "c"}, {ID: "d"}},
			Limits:     Limits{MaxSeatsPerBuyer: 1, HoldTTLSeconds: 1}}
		for len(spec) >= 6 && len(e.Venue.Sections) <= 16 {
			e.Venue.Sections = append(e.Venue.Sections, Section{
				ID:          fuzzSectionIDs[int(spec[0])%len(fuzzSectionIDs)],
				Category:    []string{"c", "d", "x"}[int(spec[1])%3],
				Rows:        1 + int(binary.BigEndian.Uint16(spec[2:]))%1100,
				SeatsPerRow: 1 + int(binary.BigEndian.Uint16(spec[4:]))%1100,
			})
			spec = spec[6:]
		}
		err := e.Validate()
		require.Equal(t, validEvent(&e), err == nil, "Validate: %v", err)
		if err == nil {
			checkLayout(t, e.Venue, id, k)
		}
	})
}

var fuzzSectionIDs = []string{"A", "B.2", "_", "x.y_z", "9", "a", "Ü", "A-B", "", strings.Repeat("s", 64), strings.Repeat("s", 65), "A.", "AA"}

// validEvent restates Event.Validate's rules one by one, as the oracle of
// the fuzz targets.
func validEvent(e *Event) bool {
	idOK := func(s string, dash bool) bool {
		if len(s) < 1 || len(s) > 64 {
			return false
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || dash && r == '-') {
				return false
			}
		}
		return true
	}
	if !idOK(e.ID, true) || len(e.Name) < 1 || len(e.Name) > 200 || len(e.Type) > 200 || len(e.Location) > 200 || len(e.Organiser) > 64 {
		return false
	}
	if len(e.Categories) < 1 || len(e.Categories) > 32 {
		return false
	}
	cats := map[string]bool{}
	for _, c := range e.Categories {
		if !idOK(c.ID, true) || cats[c.ID] || len(c.Name) > 200 || c.PriceCents < 0 {
			return false
		}
		cats[c.ID] = true
	}
	if len(e.Venue.Sections) < 1 || len(e.Venue.Sections) > 1000 {
		return false
	}
	secs := map[string]bool{}
	seats := 0
	for _, s := range e.Venue.Sections {
		if !idOK(s.ID, false) || secs[s.ID] || !cats[s.Category] || s.Rows < 1 || s.Rows > 1000 || s.SeatsPerRow < 1 || s.SeatsPerRow > 1000 {
			return false
		}
		secs[s.ID] = true
		seats += s.Rows * s.SeatsPerRow
	}
	return seats <= 200_000 &&
		e.Limits.MaxSeatsPerBuyer >= 1 && e.Limits.MaxSeatsPerBuyer <= 1000 &&
		e.Limits.HoldTTLSeconds >= 1 && e.Limits.HoldTTLSeconds <= 3600
}

// checkLayout checks the layout of a valid venue: seats are numbered
// 0..Capacity-1 section by section, row by row; ID and Index convert both
// ways; Index accepts exactly the canonical ids of existing seats
// ("<section>-<row>-<number>", decimal without sign or leading zero); every
// section's range is where its seats are.
func checkLayout(t *testing.T, v Venue, id string, k uint32) {
	l := NewLayout(v)
	capacity := l.Capacity()
	require.Equal(t, v.Capacity(), capacity)
	require.Positive(t, capacity)
	first := 0
	for _, s := range v.Sections {
		f, n, ok := l.SectionRange(s.ID)
		require.True(t, ok, s.ID)
		require.Equal(t, first, f, s.ID)
		require.Equal(t, s.Rows*s.SeatsPerRow, n, s.ID)
		require.Equal(t, s.ID+"-1-1", l.ID(f))
		require.Equal(t, s.ID+"-"+strconv.Itoa(s.Rows)+"-"+strconv.Itoa(s.SeatsPerRow), l.ID(f+n-1))
		first += n
	}
	_, _, ok := l.SectionRange("no such section")
	require.False(t, ok)

	roundTrip := func(idx int) {
		sid := l.ID(idx)
		got, ok := l.Index(sid)
		require.True(t, ok, "ID(%d) = %q is not an id", idx, sid)
		require.Equal(t, idx, got, sid)
		s, row, num := l.Section(idx)
		require.Equal(t, s.ID+"-"+strconv.Itoa(row)+"-"+strconv.Itoa(num), sid)
		require.True(t, row >= 1 && row <= s.Rows && num >= 1 && num <= s.SeatsPerRow, sid)
	}
	if capacity <= 4096 {
		for i := 0; i < capacity; i++ {
			roundTrip(i)
		}
	} else {
		roundTrip(0)
		roundTrip(capacity - 1)
		roundTrip(int(k) % capacity)
	}

	idx, ok := l.Index(id)
	require.Equal(t, canonicalSeat(v, id), ok, "Index(%q)", id)
	if ok {
		require.True(t, idx >= 0 && idx < capacity, "Index(%q) = %d of %d", id, idx, capacity)
		require.Equal(t, id, l.ID(idx), "one seat, one id")
	}
}

// canonicalSeat reports whether id names a seat of v in canonical form.
func canonicalSeat(v Venue, id string) bool {
	parts := strings.Split(id, "-")
	if len(parts) != 3 {
		return false
	}
	number := func(s string, max int) bool {
		if s == "" || s[0] == '0' || len(s) > 4 {
			return false
		}
		n := 0
		for _, c := range []byte(s) {
			if c < '0' || c > '9' {
				return false
			}
			n = n*10 + int(c-'0')
		}
		return n <= max
	}
	for _, s := range v.Sections {
		if s.ID == parts[0] {
			return number(parts[1], s.Rows) && number(parts[2], s.SeatsPerRow)
		}
	}
	return false
}
