package fsm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// A venue with row counts, a gap (an aisle) and a general-admission area:
// the holes are no seats to holds, picks, seat maps and counts, and a
// side-by-side pick never spans the aisle. The layout survives the
// encoding of the log and of the store.
func TestRowSeatsGapsAndFlags(t *testing.T) {
	s := newStore(t)
	ev := boxoffice.Event{
		ID: "d1", Name: "Details", Organiser: "org1",
		Categories: []boxoffice.Category{{ID: "floor", Name: "Floor", PriceCents: 100}, {ID: "ga", Name: "Standing", PriceCents: 10}},
		Venue: boxoffice.Venue{
			Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 2, SeatsPerRow: 6,
				RowSeats: []int{4, 6}, Gaps: []string{"2-3"},
				Flags: []boxoffice.SeatFlag{{Flag: "accessible", Seats: []string{"1-1", "2-6"}}}}},
			Areas: []boxoffice.Area{{ID: "PIT", Category: "ga", Capacity: 3}},
		},
		Limits: boxoffice.Limits{MaxSeatsPerBuyer: 20, HoldTTLSeconds: 60},
	}
	rs := applyOne(t, s, 1, 1000, &CreateEvent{Event: ev})
	require.NoError(t, rs[0].Err)
	got, err := s.Event("d1")
	require.NoError(t, err)
	assert.Equal(t, ev, *got, "the layout read back is the one created")

	counts, err := s.Counts("d1")
	require.NoError(t, err)
	assert.Equal(t, 4+5, counts[0].Capacity)
	assert.Equal(t, 3, counts[1].Capacity)

	// A hole is no seat.
	for i, id := range []string{"A-1-5", "A-2-3"} {
		rs = applyOne(t, s, uint64(100+i), 1000, &Hold{Event: "d1", Buyer: "u1", Seats: []string{id}})
		assert.Equal(t, boxoffice.CodeSeatNotFound, boxoffice.CodeOf(rs[0].Err), id)
	}
	// Row 1 has four seats: five side by side only fit nowhere (row 2's
	// aisle splits it into 2 and 3).
	_, err = s.PickBest("d1", "floor", 5, true, nil)
	assert.Equal(t, boxoffice.CodeSeatUnavailable, boxoffice.CodeOf(err))
	pick, err := s.PickBest("d1", "floor", 3, true, func(idx int) bool { return idx < 6 }) // row 1 busy
	require.NoError(t, err)
	assert.Equal(t, []string{"A-2-4", "A-2-5", "A-2-6"}, pick)
	_, err = s.PickBest("d1", "ga", 1, false, nil)
	assert.Equal(t, boxoffice.CodeInvalidArgument, boxoffice.CodeOf(err), "a standing category is held by area")
	pick, err = s.PickBest("d1", "floor", 9, false, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-2-1", "A-2-2", "A-2-4", "A-2-5", "A-2-6"}, pick, "every seat, no hole, no place")

	seats, err := s.Seats("d1", SeatFilter{})
	require.NoError(t, err)
	var ids []string
	for _, st := range seats {
		ids = append(ids, st.ID)
	}
	assert.Equal(t, []string{"A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-2-1", "A-2-2", "A-2-4", "A-2-5", "A-2-6", "GA-PIT-1", "GA-PIT-2", "GA-PIT-3"}, ids)
	assert.Equal(t, []string{"accessible"}, seats[0].Flags, "A-1-1")
	assert.Nil(t, seats[1].Flags, "A-1-2")
	assert.Equal(t, []string{"accessible"}, seats[8].Flags, "A-2-6")

	// Sections may not change once seats are taken; with nothing taken
	// they may, and the areas' allocators start afresh.
	rs = applyOne(t, s, 103, 1000, &HoldArea{Event: "d1", Buyer: "u1", Area: "PIT", Quantity: 2})
	require.NoError(t, rs[0].Err)
	held := rs[0].Hold.ID
	changed := ev
	changed.Venue.Sections = []boxoffice.Section{ev.Venue.Sections[0]}
	changed.Venue.Sections[0].Gaps = nil
	rs = applyOne(t, s, 104, 1000, &UpdateEvent{Event: changed})
	assert.Equal(t, boxoffice.CodeLayoutShrink, boxoffice.CodeOf(rs[0].Err))
	rs = applyOne(t, s, 105, 1000, &Release{Hold: held})
	require.NoError(t, rs[0].Err)
	rs = applyOne(t, s, 106, 1000, &UpdateEvent{Event: changed})
	require.NoError(t, rs[0].Err)
	checkInvariants(t, s)
	rs = applyOne(t, s, 107, 1000, &HoldArea{Event: "d1", Buyer: "u1", Area: "PIT", Quantity: 3})
	require.NoError(t, rs[0].Err)
	assert.Equal(t, []string{"GA-PIT-1", "GA-PIT-2", "GA-PIT-3"}, rs[0].Hold.Seats)
	checkInvariants(t, s)
}
