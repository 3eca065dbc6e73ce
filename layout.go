package boxoffice

import (
	"strconv"
	"strings"
)

// Layout numbers the seats of a venue 0..Capacity-1, section by section,
// row by row, so that a seat id and its index convert without a lookup.
// It is built once per event and read by many goroutines.
type Layout struct {
	Sections []Section
	offsets  []int // offsets[i] is the index of the first seat of Sections[i]
	byID     map[string]int
	capacity int
}

// NewLayout builds the layout of a validated venue.
func NewLayout(v Venue) *Layout {
	l := &Layout{Sections: v.Sections, offsets: make([]int, len(v.Sections)), byID: make(map[string]int, len(v.Sections))}
	for i, s := range v.Sections {
		l.offsets[i] = l.capacity
		l.byID[s.ID] = i
		l.capacity += s.Rows * s.SeatsPerRow
	}
	return l
}

// Capacity is the number of seats.
func (l *Layout) Capacity() int { return l.capacity }

// Index parses a seat id "<section>-<row>-<number>" into its index.
func (l *Layout) Index(id string) (int, bool) {
	j := strings.LastIndexByte(id, '-')
	if j <= 0 {
		return 0, false
	}
	i := strings.LastIndexByte(id[:j], '-')
	if i <= 0 {
		return 0, false
	}
	si, ok := l.byID[id[:i]]
	if !ok {
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
	return l.offsets[si] + (row-1)*s.SeatsPerRow + (num - 1), true
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
func (l *Layout) ID(idx int) string {
	s, row, num := l.Section(idx)
	return s.ID + "-" + strconv.Itoa(row) + "-" + strconv.Itoa(num)
}

// AppendID appends the seat id of index idx to b: ID without a string per
// seat, for seat maps of 100,000 seats.
func (l *Layout) AppendID(b []byte, idx int) []byte {
	s, row, num := l.Section(idx)
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
