package fsm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

func pickEvent() boxoffice.Event {
	return boxoffice.Event{
		ID: "p1", Name: "Pick", Organiser: "org1",
		Categories: []boxoffice.Category{{ID: "floor", Name: "Floor", PriceCents: 100}, {ID: "upper", Name: "Upper", PriceCents: 50}},
		Venue: boxoffice.Venue{Sections: []boxoffice.Section{
			{ID: "U", Category: "upper", Rows: 1, SeatsPerRow: 4},
			{ID: "A", Category: "floor", Rows: 2, SeatsPerRow: 6},
		}},
		Limits: boxoffice.Limits{MaxSeatsPerBuyer: 20, HoldTTLSeconds: 60},
	}
}

func TestPickBestAdjacentAvoidsStrandingASeat(t *testing.T) {
	s := newStore(t)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: pickEvent()})
	// Row 1 of A: seats 1 and 4 taken leave runs [2,3] and [5,6]; row 2 is empty.
	rs := applyOne(t, s, 2, 1000, &Hold{Event: "p1", Buyer: "x", Seats: []string{"A-1-1", "A-1-4"}})
	require.NoError(t, rs[0].Err)

	got, err := s.PickBest("p1", "floor", 2, true, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-2", "A-1-3"}, got, "an exact run is best")

	// Three seats: no run of row 1 fits; row 2 has six, leaving three.
	got, err = s.PickBest("p1", "floor", 3, true, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-2-1", "A-2-2", "A-2-3"}, got)

	// Five seats: row 2's run of six would strand one, and it is the only
	// run that fits, so it is taken anyway.
	got, err = s.PickBest("p1", "floor", 5, true, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-2-1", "A-2-2", "A-2-3", "A-2-4", "A-2-5"}, got)

	// Seven side by side do not exist.
	_, err = s.PickBest("p1", "floor", 7, true, nil)
	assert.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(err))
}

func TestPickBestPrefersARunThatStrandsNothing(t *testing.T) {
	s := newStore(t)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: pickEvent()})
	// Row 1: seat 4 taken → runs [1..3] (3 seats) and [5,6]. For 2 seats,
	// [1..3] would strand one; [5,6] is exact and comes later but wins.
	applyOne(t, s, 2, 1000, &Hold{Event: "p1", Buyer: "x", Seats: []string{"A-1-4"}})
	got, err := s.PickBest("p1", "floor", 2, true, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-5", "A-1-6"}, got)
}

func TestPickBestAnySeatsAndSkip(t *testing.T) {
	s := newStore(t)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: pickEvent()})
	applyOne(t, s, 2, 1000, &Hold{Event: "p1", Buyer: "x", Seats: []string{"U-1-2"}})
	got, err := s.PickBest("p1", "upper", 3, false, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"U-1-1", "U-1-3", "U-1-4"}, got)
	// Skipped seats (in flight) are not picked.
	got, err = s.PickBest("p1", "upper", 2, false, func(idx int) bool { return idx == 0 })
	require.NoError(t, err)
	assert.Equal(t, []string{"U-1-3", "U-1-4"}, got)
	_, err = s.PickBest("p1", "upper", 4, false, nil)
	assert.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(err))
	_, err = s.PickBest("p1", "nope", 1, false, nil)
	assert.Equal(t, boxoffice.CodeInvalidArgument, boxoffice.CodeOf(err))
	_, err = s.PickBest("p1", "upper", 0, false, nil)
	assert.Equal(t, boxoffice.CodeInvalidArgument, boxoffice.CodeOf(err))
	// An expired hold's seats are free to pick.
	applyOne(t, s, 3, 1000+61_000, &Expire{})
	got, err = s.PickBest("p1", "upper", 4, true, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"U-1-1", "U-1-2", "U-1-3", "U-1-4"}, got)
}

// A side-by-side pick never runs from the end of one row into the next.
func TestPickBestAdjacentStaysInARow(t *testing.T) {
	s := newStore(t)
	ev := pickEvent()
	ev.Venue.Sections[1] = boxoffice.Section{ID: "A", Category: "floor", Rows: 2, SeatsPerRow: 3}
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev})
	// Row 1: seat 1 taken (seats 2-3 free); row 2: seats 2-3 taken (seat 1 free).
	applyOne(t, s, 2, 1000, &Hold{Event: "p1", Buyer: "x", Seats: []string{"A-1-1", "A-2-2", "A-2-3"}})
	_, err := s.PickBest("p1", "floor", 3, true, nil)
	assert.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(err), "A-1-2, A-1-3 and A-2-1 are not side by side")
	got, err := s.PickBest("p1", "floor", 3, false, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-2", "A-1-3", "A-2-1"}, got)
	got, err = s.PickBest("p1", "floor", 2, true, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-2", "A-1-3"}, got)
}
