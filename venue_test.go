package boxoffice

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A section with row counts and gaps: the positions they leave out are
// holes, which Index refuses and Capacity does not count; areas follow.
func TestLayoutRowSeatsGapsAndAreas(t *testing.T) {
	v := Venue{
		Sections: []Section{{ID: "A", Category: "c", Rows: 3, SeatsPerRow: 4, RowSeats: []int{2, 4, 3}, Gaps: []string{"2-2"}}},
		Areas:    []Area{{ID: "PIT", Category: "g", Capacity: 5}},
	}
	require.Equal(t, 2+3+3+5, v.Capacity())
	l := NewLayout(v)
	assert.Equal(t, 13, l.Capacity())
	assert.Equal(t, 12+5, l.Span())
	for _, id := range []string{"A-1-3", "A-1-4", "A-2-2", "A-3-4", "GA-PIT-0", "GA-PIT-6", "GA-PIT-01", "PIT-1-1", "GA-A-1"} {
		_, ok := l.Index(id)
		assert.False(t, ok, "%q is not a seat", id)
	}
	var ids []string
	for i := 0; i < l.Span(); i++ {
		if !l.Exists(i) {
			continue
		}
		id := l.ID(i)
		got, ok := l.Index(id)
		require.True(t, ok, id)
		require.Equal(t, i, got, id)
		ids = append(ids, id)
	}
	assert.Equal(t, []string{"A-1-1", "A-1-2", "A-2-1", "A-2-3", "A-2-4", "A-3-1", "A-3-2", "A-3-3",
		"GA-PIT-1", "GA-PIT-2", "GA-PIT-3", "GA-PIT-4", "GA-PIT-5"}, ids)
	assert.Equal(t, 8, l.SectionSeats(0))
	assert.Equal(t, 5, l.SectionSeats(1))
	first, n, ok := l.AreaRange("PIT")
	assert.True(t, ok && first == 12 && n == 5)
	assert.True(t, l.InArea(12) && !l.InArea(11))
}

func TestVenueChartValidate(t *testing.T) {
	base := func() VenueChart {
		return VenueChart{ID: "v", Name: "V", Categories: []VenueCategory{{ID: "c"}, {ID: "g"}},
			Sections: []Section{{ID: "A", Category: "c", Rows: 2, SeatsPerRow: 3}},
			Areas:    []Area{{ID: "PIT", Category: "g", Capacity: 10}}}
	}
	ok := base()
	ok.Sections[0].RowSeats = []int{3, 1}
	ok.Sections[0].Gaps = []string{"1-2"}
	ok.Sections[0].Flags = []SeatFlag{{Flag: "accessible", Seats: []string{"1-1", "2-1"}}}
	require.NoError(t, ok.Validate())
	for name, mutate := range map[string]func(v *VenueChart){
		"no seats":               func(v *VenueChart) { v.Sections, v.Areas = nil, nil },
		"duplicate section":      func(v *VenueChart) { v.Sections = append(v.Sections, v.Sections[0]) },
		"area named as section":  func(v *VenueChart) { v.Areas[0].ID = "A" },
		"section GA with areas":  func(v *VenueChart) { v.Sections[0].ID = "GA" },
		"area with a dash":       func(v *VenueChart) { v.Areas[0].ID = "P-1" },
		"empty area":             func(v *VenueChart) { v.Areas[0].Capacity = 0 },
		"unknown category":       func(v *VenueChart) { v.Areas[0].Category = "x" },
		"row counts too few":     func(v *VenueChart) { v.Sections[0].RowSeats = []int{3} },
		"row count too long":     func(v *VenueChart) { v.Sections[0].RowSeats = []int{3, 4} },
		"row count zero":         func(v *VenueChart) { v.Sections[0].RowSeats = []int{3, 0} },
		"gap outside":            func(v *VenueChart) { v.Sections[0].Gaps = []string{"3-1"} },
		"gap twice":              func(v *VenueChart) { v.Sections[0].Gaps = []string{"1-1", "1-1"} },
		"gap not canonical":      func(v *VenueChart) { v.Sections[0].Gaps = []string{"01-1"} },
		"gap beyond a row count": func(v *VenueChart) { v.Sections[0].RowSeats = []int{1, 3}; v.Sections[0].Gaps = []string{"1-2"} },
		"every seat a gap": func(v *VenueChart) {
			v.Sections[0].RowSeats = []int{1, 1}
			v.Sections[0].Gaps = []string{"1-1", "2-1"}
		},
		"flag on a gap": func(v *VenueChart) {
			v.Sections[0].Gaps = []string{"1-1"}
			v.Sections[0].Flags = []SeatFlag{{Flag: "accessible", Seats: []string{"1-1"}}}
		},
		"flag with no seats": func(v *VenueChart) { v.Sections[0].Flags = []SeatFlag{{Flag: "accessible"}} },
		"flag twice": func(v *VenueChart) {
			v.Sections[0].Flags = []SeatFlag{{Flag: "a", Seats: []string{"1-1"}}, {Flag: "a", Seats: []string{"1-2"}}}
		},
		"too many places": func(v *VenueChart) { v.Areas[0].Capacity = SeatsPerEventMax },
	} {
		v := base()
		mutate(&v)
		err := v.Validate()
		require.Error(t, err, name)
		assert.Equal(t, CodeInvalidArgument, CodeOf(err), name)
	}
}
