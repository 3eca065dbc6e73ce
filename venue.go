package boxoffice

import (
	"fmt"
	"strings"
)

// Limits on reusable venues and general-admission areas.
const (
	AreasMax = 100
	// AreaCapacityMax bounds one general-admission area; the places of an
	// event (seats and areas together) stay within SeatsPerEventMax.
	AreaCapacityMax = SeatsPerEventMax
	// VenueVersionsMax bounds the versions of one venue.
	VenueVersionsMax = 10_000
	// PositionMax bounds a map coordinate.
	PositionMax = 1_000_000
	// LayoutDetailsMax bounds the row counts, gaps and flagged seats of a
	// venue, in all, so that a layout stays a small command.
	LayoutDetailsMax = 50_000
	// FlagsPerSectionMax bounds the flags of one section.
	FlagsPerSectionMax = 8
)

// GAPrefix starts the id of every general-admission place: "GA-<area>-<n>",
// n from 1. A seated section may not be called "GA" in a venue with areas,
// so that a seat id and a place id never read the same.
const GAPrefix = "GA"

// Area is a general-admission area: a capacity, no seats. A hold asks for a
// quantity of places and gets anonymous ones, "GA-<area>-<n>".
type Area struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Capacity int    `json:"capacity"`
	Position *Point `json:"position,omitempty"`
}

// Point is where a section or an area sits on the venue's map.
type Point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// VenueCategory is a category of a reusable venue: named, not priced (each
// event prices it).
type VenueCategory struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// VenueChart is a reusable, versioned venue: its categories, seated sections
// and general-admission areas. Every change is a new version; an event
// copies the version it was created from and keeps it.
type VenueChart struct {
	ID          string          `json:"id"`
	Version     int             `json:"version"`
	Name        string          `json:"name"`
	Location    string          `json:"location,omitempty"`
	Owner       string          `json:"owner,omitempty"`
	UpdatedAtMs int64           `json:"-"`
	Categories  []VenueCategory `json:"categories"`
	Sections    []Section       `json:"sections"`
	Areas       []Area          `json:"areas,omitempty"`
}

// Layout returns the chart's layout as an event copies it.
func (v *VenueChart) Layout() Venue {
	return Venue{Sections: v.Sections, Areas: v.Areas}
}

// Validate checks a chart's shape (not its version or owner, which the
// state machine sets). It lists every problem at once.
func (v *VenueChart) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if !ValidID(v.ID) {
		add("id %q must match [A-Za-z0-9._-]{1,%d}", v.ID, IDLenMax)
	}
	if v.Name == "" || len(v.Name) > NameLenMax {
		add("name must be 1..%d bytes", NameLenMax)
	}
	if len(v.Location) > NameLenMax || len(v.Owner) > IDLenMax {
		add("location must be at most %d bytes, owner at most %d", NameLenMax, IDLenMax)
	}
	if len(v.Categories) == 0 || len(v.Categories) > CategoriesMax {
		add("categories: 1..%d required", CategoriesMax)
	}
	cats := make(map[string]bool, len(v.Categories))
	for _, c := range v.Categories {
		switch {
		case !ValidID(c.ID):
			add("category id %q is not a valid id", c.ID)
		case cats[c.ID]:
			add("category %q appears twice", c.ID)
		}
		cats[c.ID] = true
		if len(c.Name) > NameLenMax {
			add("category %q: name longer than %d bytes", c.ID, NameLenMax)
		}
	}
	validateLayout(v.Layout(), cats, add)
	if len(probs) > 0 {
		return Errorf(CodeInvalidArgument, "invalid venue: %s", strings.Join(probs, "; "))
	}
	return nil
}

// validateLayout checks sections and areas against the known categories:
// ids unique across both (a duplicate would give two seats one id), sizes in
// range, at least one place, at most SeatsPerEventMax in all.
func validateLayout(v Venue, cats map[string]bool, add func(format string, args ...any)) {
	if len(v.Sections)+len(v.Areas) == 0 {
		add("venue: at least one section or area required (a venue with no seats)")
	}
	if len(v.Sections) > SectionsMax {
		add("venue: at most %d sections", SectionsMax)
	}
	if len(v.Areas) > AreasMax {
		add("venue: at most %d areas", AreasMax)
	}
	ids := make(map[string]bool, len(v.Sections)+len(v.Areas))
	total, details := 0, 0
	checkPos := func(what, id string, p *Point) {
		if p != nil && (p.X < -PositionMax || p.X > PositionMax || p.Y < -PositionMax || p.Y > PositionMax) {
			add("%s %q: position must be within ±%d", what, id, PositionMax)
		}
	}
	for _, s := range v.Sections {
		switch {
		case !ValidID(s.ID) || strings.Contains(s.ID, "-"):
			add("section id %q must match [A-Za-z0-9._]{1,%d} (no '-': it separates seat id parts)", s.ID, IDLenMax)
		case ids[s.ID]:
			add("section %q appears twice", s.ID)
		case s.ID == GAPrefix && len(v.Areas) > 0:
			add("section id %q is reserved for general-admission places in a venue with areas", s.ID)
		}
		ids[s.ID] = true
		if !cats[s.Category] {
			add("section %q: unknown category %q", s.ID, s.Category)
		}
		checkPos("section", s.ID, s.Position)
		if s.Rows < 1 || s.Rows > RowsPerSectionMax || s.SeatsPerRow < 1 || s.SeatsPerRow > SeatsPerRowMax {
			add("section %q: rows must be 1..%d and seatsPerRow 1..%d", s.ID, RowsPerSectionMax, SeatsPerRowMax)
			continue
		}
		details += len(s.RowSeats) + len(s.Gaps)
		for _, f := range s.Flags {
			details += len(f.Seats)
		}
		if details > LayoutDetailsMax {
			add("venue: more than %d row counts, gaps and flagged seats in all", LayoutDetailsMax)
			break
		}
		if !validateSeatDetails(s, add) {
			continue
		}
		total += s.Seats()
	}
	for _, a := range v.Areas {
		switch {
		case !ValidID(a.ID) || strings.Contains(a.ID, "-"):
			add("area id %q must match [A-Za-z0-9._]{1,%d} (no '-': it separates place id parts)", a.ID, IDLenMax)
		case ids[a.ID]:
			add("area %q: the id is taken by another section or area", a.ID)
		}
		ids[a.ID] = true
		if !cats[a.Category] {
			add("area %q: unknown category %q", a.ID, a.Category)
		}
		checkPos("area", a.ID, a.Position)
		if a.Capacity < 1 || a.Capacity > AreaCapacityMax {
			add("area %q: capacity must be 1..%d", a.ID, AreaCapacityMax)
			continue
		}
		total += a.Capacity
	}
	if total > SeatsPerEventMax {
		add("venue has %d places, more than %d", total, SeatsPerEventMax)
	}
}

// validateSeatDetails checks a section's row counts, gaps and flags: row
// counts one per row within seatsPerRow, gaps and flagged seats naming
// existing seats once each, at least one seat left.
func validateSeatDetails(s Section, add func(format string, args ...any)) bool {
	ok := true
	if s.RowSeats != nil {
		if len(s.RowSeats) != s.Rows {
			add("section %q: rowSeats has %d counts for %d rows", s.ID, len(s.RowSeats), s.Rows)
			return false
		}
		for i, n := range s.RowSeats {
			if n < 1 || n > s.SeatsPerRow {
				add("section %q: row %d has %d seats, not 1..%d (seatsPerRow)", s.ID, i+1, n, s.SeatsPerRow)
				ok = false
			}
		}
		if !ok {
			return false
		}
	}
	gaps := make(map[[2]int]bool, len(s.Gaps))
	for _, g := range s.Gaps {
		row, num, parsed := ParseRowSeat(g)
		switch {
		case !parsed || !s.exists(row, num, nil):
			add("section %q: gap %q is not a seat \"<row>-<number>\" of the section", s.ID, g)
			ok = false
		case gaps[[2]int{row, num}]:
			add("section %q: gap %q given twice", s.ID, g)
			ok = false
		}
		gaps[[2]int{row, num}] = true
	}
	if !ok {
		return false
	}
	if len(s.Flags) > FlagsPerSectionMax {
		add("section %q: at most %d flags", s.ID, FlagsPerSectionMax)
		return false
	}
	names := map[string]bool{}
	for _, f := range s.Flags {
		if !ValidID(f.Flag) || names[f.Flag] {
			add("section %q: flag %q is not a valid id, or given twice", s.ID, f.Flag)
			ok = false
		}
		names[f.Flag] = true
		if len(f.Seats) == 0 {
			add("section %q: flag %q names no seat", s.ID, f.Flag)
			ok = false
		}
		seen := map[string]bool{}
		for _, seat := range f.Seats {
			row, num, parsed := ParseRowSeat(seat)
			if !parsed || !s.exists(row, num, gaps) || seen[seat] {
				add("section %q: flag %q names %q, not a seat \"<row>-<number>\" of the section (or twice)", s.ID, f.Flag, seat)
				ok = false
				break
			}
			seen[seat] = true
		}
	}
	if ok && s.Seats() < 1 {
		add("section %q has no seats", s.ID)
		ok = false
	}
	return ok
}

// Normalize makes empty lists nil, so that a layout has one value whether a
// list was absent or empty (as the state machine stores it).
func (v *Venue) Normalize() {
	if len(v.Areas) == 0 {
		v.Areas = nil
	}
	for i := range v.Sections {
		s := &v.Sections[i]
		if len(s.RowSeats) == 0 {
			s.RowSeats = nil
		}
		if len(s.Gaps) == 0 {
			s.Gaps = nil
		}
		if len(s.Flags) == 0 {
			s.Flags = nil
		}
	}
}
