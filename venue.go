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
	total := 0
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
		total += s.Rows * s.SeatsPerRow
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
