package boxoffice

import (
	"strconv"
	"strings"
)

// Layout numbers the seats of a venue 0..Capacity-1, section by section,
// row by row, so that a seat id and its index convert without a lookup.
// It is built once per event and read by many goroutines.
//
// General-admission areas are numbered after the seated sections, each as
// one more entry of Sections with one row of Capacity places (ids
// "GA-<area>-<n>"): a place is a seat to everything that counts, holds,
// sells or frees seats; only how a hold picks them differs.
//
// A section's seats are numbered as a rectangle of Rows × SeatsPerRow; the
// positions that its row counts or gaps leave out are holes: an index with
// no seat, which Index never returns and walks skip (Exists).
type Layout struct {
	Sections  []Section // the seated sections, then one per area
	offsets   []int     // offsets[i] is the index of the first seat of Sections[i]
	byID      map[string]int
	span      int    // indexes are 0..span-1
	seats     int    // span less the holes
	missing   []bool // missing[idx] marks a hole; nil when there is none
	flags     map[int][]string
	firstArea int // Sections[firstArea:] are the areas
}

// NewLayout builds the layout of a validated venue.
func NewLayout(v Venue) *Layout {
	n := len(v.Sections) + len(v.Areas)
	l := &Layout{Sections: make([]Section, 0, n), offsets: make([]int, n), byID: make(map[string]int, n), firstArea: len(v.Sections)}
	l.Sections = append(l.Sections, v.Sections...)
	for _, a := range v.Areas {
		l.Sections = append(l.Sections, Section{ID: a.ID, Category: a.Category, Rows: 1, SeatsPerRow: a.Capacity, Position: a.Position})
	}
	for i, s := range l.Sections {
		l.offsets[i] = l.span
		l.byID[s.ID] = i
		l.span += s.Rows * s.SeatsPerRow
	}
	l.seats = l.span
	for i, s := range v.Sections {
		if s.RowSeats == nil && s.Gaps == nil {
			continue
		}
		if l.missing == nil {
			l.missing = make([]bool, l.span)
		}
		mark := func(row, num int) {
			if idx := l.offsets[i] + (row-1)*s.SeatsPerRow + num - 1; !l.missing[idx] {
				l.missing[idx] = true
				l.seats--
			}
		}
		if len(s.RowSeats) == s.Rows {
			for r, n := range s.RowSeats {
				for num := n + 1; num <= s.SeatsPerRow; num++ {
					mark(r+1, num)
				}
			}
		}
		for _, g := range s.Gaps {
			if row, num, ok := ParseRowSeat(g); ok && row <= s.Rows && num <= s.SeatsPerRow {
				mark(row, num)
			}
		}
	}
	for i, s := range v.Sections {
		for _, f := range s.Flags {
			for _, seat := range f.Seats {
				if row, num, ok := ParseRowSeat(seat); ok && row <= s.Rows && num <= s.SeatsPerRow {
					if l.flags == nil {
						l.flags = make(map[int][]string)
					}
					idx := l.offsets[i] + (row-1)*s.SeatsPerRow + num - 1
					l.flags[idx] = append(l.flags[idx], f.Flag)
				}
			}
		}
	}
	return l
}

// Flags returns the flags of seat index idx (nil for none). The slice is
// shared: do not modify it.
func (l *Layout) Flags(idx int) []string { return l.flags[idx] }

// Exists reports whether index idx (in 0..Span-1) is a seat, not a hole.
func (l *Layout) Exists(idx int) bool { return l.missing == nil || !l.missing[idx] }

// Span is the end of the index range: every seat's index is below it.
func (l *Layout) Span() int { return l.span }

// SectionSeats is the number of seats (holes left out) of Sections[i].
func (l *Layout) SectionSeats(i int) int {
	if l.missing == nil {
		return l.Sections[i].Rows * l.Sections[i].SeatsPerRow
	}
	end := l.span
	if i+1 < len(l.offsets) {
		end = l.offsets[i+1]
	}
	n := 0
	for idx := l.offsets[i]; idx < end; idx++ {
		if !l.missing[idx] {
			n++
		}
	}
	return n
}

// IsArea reports whether Sections[i] is a general-admission area.
func (l *Layout) IsArea(i int) bool { return i >= l.firstArea }

// HasAreas reports whether the venue has general-admission areas.
func (l *Layout) HasAreas() bool { return l.firstArea < len(l.Sections) }

// AreaRange returns the first index and the capacity of an area.
func (l *Layout) AreaRange(area string) (first, n int, ok bool) {
	si, ok := l.byID[area]
	if !ok || !l.IsArea(si) {
		return 0, 0, false
	}
	return l.offsets[si], l.Sections[si].SeatsPerRow, true
}

// InArea reports whether seat index idx is a general-admission place.
func (l *Layout) InArea(idx int) bool {
	return l.HasAreas() && idx >= l.offsets[l.firstArea] && idx < l.span
}

// Capacity is the number of seats (holes left out).
func (l *Layout) Capacity() int { return l.seats }

// Index parses a seat id "<section>-<row>-<number>", or a place id
// "GA-<area>-<n>", into its index.
func (l *Layout) Index(id string) (int, bool) {
	if l.HasAreas() && strings.HasPrefix(id, GAPrefix+"-") {
		return l.placeIndex(id[len(GAPrefix)+1:])
	}
	j := strings.LastIndexByte(id, '-')
	if j <= 0 {
		return 0, false
	}
	i := strings.LastIndexByte(id[:j], '-')
	if i <= 0 {
		return 0, false
	}
	si, ok := l.byID[id[:i]]
	if !ok || l.IsArea(si) {
		return 0, false
	}
	row, err1 := strconv.Atoi(id[i+1 : j])
	num, err2 := strconv.Atoi(id[j+1:])
	s := l.Sections[si]
	if err1 != nil || err2 != nil || row < 1 || row > s.Rows || num < 1 || num > s.SeatsPerRow {
		return 0, false
	}
	// Reject non-canonical spellings ("A-01-1", "A-+1-1") so one seat has one id.
	if strconv.Itoa(row) != id[i+1:j] || strconv.Itoa(num) != id[j+1:] {
		return 0, false
	}
	idx := l.offsets[si] + (row-1)*s.SeatsPerRow + (num - 1)
	return idx, l.Exists(idx)
}

// placeIndex parses "<area>-<n>".
func (l *Layout) placeIndex(rest string) (int, bool) {
	j := strings.IndexByte(rest, '-')
	if j <= 0 {
		return 0, false
	}
	si, ok := l.byID[rest[:j]]
	if !ok || !l.IsArea(si) {
		return 0, false
	}
	n, err := strconv.Atoi(rest[j+1:])
	if err != nil || n < 1 || n > l.Sections[si].SeatsPerRow || strconv.Itoa(n) != rest[j+1:] {
		return 0, false
	}
	return l.offsets[si] + n - 1, true
}

// Section returns the section that holds seat index idx, and the seat's row
// and number in it.
func (l *Layout) Section(idx int) (s Section, row, num int) {
	// Binary search for the last offset <= idx.
	lo, hi := 0, len(l.offsets)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.offsets[mid] <= idx {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	s = l.Sections[lo]
	rel := idx - l.offsets[lo]
	return s, rel/s.SeatsPerRow + 1, rel%s.SeatsPerRow + 1
}

// ID is the seat id of index idx.
func (l *Layout) ID(idx int) string { return string(l.AppendID(nil, idx)) }

// AppendID appends the seat id of index idx to b: ID without a string per
// seat, for seat maps of 100,000 seats.
func (l *Layout) AppendID(b []byte, idx int) []byte {
	s, row, num := l.Section(idx)
	if l.InArea(idx) {
		b = append(b, GAPrefix+"-"...)
		b = append(b, s.ID...)
		b = append(b, '-')
		return strconv.AppendInt(b, int64(num), 10)
	}
	b = append(b, s.ID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(row), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, int64(num), 10)
}

// SectionRange returns the first index and the count of a section's seats.
func (l *Layout) SectionRange(section string) (first, n int, ok bool) {
	si, ok := l.byID[section]
	if !ok {
		return 0, 0, false
	}
	s := l.Sections[si]
	return l.offsets[si], s.Rows * s.SeatsPerRow, true
}
