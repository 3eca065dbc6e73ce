package boxoffice

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLayoutIndexAndIDRoundTrip(t *testing.T) {
	l := NewLayout(Venue{Sections: []Section{
		{ID: "A", Category: "c", Rows: 3, SeatsPerRow: 4},
		{ID: "B.2", Category: "c", Rows: 1, SeatsPerRow: 7},
		{ID: "C", Category: "c", Rows: 10, SeatsPerRow: 1},
	}})
	require.Equal(t, 12+7+10, l.Capacity())
	for i := 0; i < l.Capacity(); i++ {
		id := l.ID(i)
		got, ok := l.Index(id)
		require.True(t, ok, id)
		require.Equal(t, i, got, id)
		require.Equal(t, "x"+id, string(l.AppendID([]byte("x"), i)))
	}
	assert.Equal(t, "A-1-1", l.ID(0))
	assert.Equal(t, "A-3-4", l.ID(11))
	assert.Equal(t, "B.2-1-7", l.ID(18))
	assert.Equal(t, "C-10-1", l.ID(28))
	first, n, ok := l.SectionRange("B.2")
	assert.True(t, ok)
	assert.Equal(t, 12, first)
	assert.Equal(t, 7, n)
}

func TestLayoutRejectsBadSeatIDs(t *testing.T) {
	l := NewLayout(Venue{Sections: []Section{{ID: "A", Category: "c", Rows: 3, SeatsPerRow: 4}}})
	for _, id := range []string{"", "A", "A-1", "A-0-1", "A-1-0", "A-4-1", "A-1-5", "A-01-1", "A-1-01", "A-+1-1", "B-1-1", "-1-1", "A--1-1", "A-1-1-1", "A-x-1"} {
		_, ok := l.Index(id)
		assert.False(t, ok, "%q", id)
	}
}

func TestEventValidateListsEveryProblem(t *testing.T) {
	e := Event{ID: "bad id", Categories: []Category{{ID: "c", PriceCents: -1}, {ID: "c"}},
		Venue:  Venue{Sections: []Section{{ID: "A-B", Category: "x", Rows: 0, SeatsPerRow: 1}}},
		Limits: Limits{}}
	err := e.Validate()
	require.Error(t, err)
	assert.Equal(t, CodeInvalidArgument, CodeOf(err))
	for _, want := range []string{"id \"bad id\"", "name", "appears twice", "priceCents", "no '-'", "unknown category", "rows must be", "maxSeatsPerBuyer", "holdTTLSeconds"} {
		assert.True(t, strings.Contains(err.Error(), want), "missing %q in %v", want, err)
	}
	ok := Event{ID: "e1", Name: "E", Categories: []Category{{ID: "c", Name: "C", PriceCents: 100}},
		Venue:  Venue{Sections: []Section{{ID: "A", Category: "c", Rows: 2, SeatsPerRow: 2}}},
		Limits: Limits{MaxSeatsPerBuyer: 4, HoldTTLSeconds: 60}}
	assert.NoError(t, ok.Validate())
	ok.Venue.Sections[0].Rows = RowsPerSectionMax
	ok.Venue.Sections = append(ok.Venue.Sections, Section{ID: "B", Category: "c", Rows: RowsPerSectionMax, SeatsPerRow: SeatsPerRowMax})
	assert.ErrorContains(t, ok.Validate(), "more than")
}

func TestErrorsMatchByCode(t *testing.T) {
	err := Errorf(CodeSeatUnavailable, "seat %q is held", "A-1-1")
	assert.ErrorIs(t, err, ErrSeatUnavailable)
	assert.NotErrorIs(t, err, ErrHoldExpired)
	assert.Equal(t, CodeSeatUnavailable, CodeOf(err))
	assert.Equal(t, CodeInternal, CodeOf(assert.AnError))
}
