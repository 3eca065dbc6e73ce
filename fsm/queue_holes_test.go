package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// Queue admission counts the taken seats over every seat index, which runs
// to the layout's span when rows have holes (aisles, short rows) and
// general-admission places come last: a sold-out event with aisles admits
// nobody more and says it is sold out (a review found the scan stopped at
// the capacity).
func TestQueueSoldOutWithAisles(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e", "A:floor:1x4", "floor:100", 8, 600)
	ev.Venue.Sections[0].Gaps = []string{"1-1", "1-2"}
	cfg := boxoffice.QueueConfig{OpensAtMs: 0, PassTTLSeconds: 600, AdmitPercent: 100}
	rs := applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, &ProtectSale{Event: "e", Config: cfg})
	require.NoError(t, rs[0].Err)
	require.NoError(t, rs[1].Err)
	applyOne(t, s, 2, 1000, &JoinQueue{Event: "e", Buyer: "b1"}, &JoinQueue{Event: "e", Buyer: "b2"}, &JoinQueue{Event: "e", Buyer: "b3"})
	rs = applyOne(t, s, 3, 1000, &OpenQueue{Event: "e", Seed: 1})
	require.NoError(t, rs[0].Err)
	rs = applyOne(t, s, 4, 1000, &AdvanceAdmission{Event: "e", Max: 1})
	require.NoError(t, rs[0].Err)
	require.Equal(t, 1, rs[0].Admitted)
	// Whoever was admitted holds and buys both seats.
	var buyer string
	for _, b := range []string{"b1", "b2", "b3"} {
		p, err := s.Place("e", b, 1000)
		require.NoError(t, err)
		if p.State == boxoffice.PlaceAdmitted {
			buyer = b
		}
	}
	rs = applyOne(t, s, 5, 1000, &Hold{Event: "e", Buyer: buyer, Seats: []string{"A-1-3", "A-1-4"}})
	require.NoError(t, rs[0].Err)
	rs = applyOne(t, s, 6, 1000, &Purchase{Hold: rs[0].Hold.ID, Buyer: buyer, PaymentRef: "x"})
	require.NoError(t, rs[0].Err)
	rs = applyOne(t, s, 7, 1000, &AdvanceAdmission{Event: "e"})
	require.NoError(t, rs[0].Err)
	require.Equal(t, 0, rs[0].Admitted, "every seat is sold: nobody may be admitted")
	require.True(t, rs[0].Queue.SoldOut, "every seat is sold")
}

// The same with a general-admission area: one aisle in a seated section
// hides the area's last place from the admission step.
func TestQueueSoldOutWithAislesAndAnArea(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e", "A:floor:1x3", "floor:100", 8, 600)
	ev.Venue.Sections[0].Gaps = []string{"1-2"}
	ev.Venue.Areas = []boxoffice.Area{{ID: "PIT", Category: "floor", Capacity: 2}}
	rs := applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, &ProtectSale{Event: "e", Config: boxoffice.QueueConfig{PassTTLSeconds: 600, AdmitPercent: 100}},
		&JoinQueue{Event: "e", Buyer: "b1"}, &JoinQueue{Event: "e", Buyer: "b2"})
	for _, r := range rs {
		require.NoError(t, r.Err)
	}
	rs = applyOne(t, s, 2, 1000, &OpenQueue{Event: "e", Seed: 3}, &AdvanceAdmission{Event: "e", Max: 1})
	require.Equal(t, 1, rs[1].Admitted)
	buyer := "b1"
	if p, _ := s.Place("e", "b2", 1000); p.State == boxoffice.PlaceAdmitted {
		buyer = "b2"
	}
	rs = applyOne(t, s, 3, 1000, &Hold{Event: "e", Buyer: buyer, Seats: []string{"A-1-1", "A-1-3"}}, &HoldArea{Event: "e", Buyer: buyer, Area: "PIT", Quantity: 2})
	require.NoError(t, rs[0].Err)
	require.NoError(t, rs[1].Err)
	applyOne(t, s, 4, 1000, &Purchase{Hold: rs[0].Hold.ID, PaymentRef: "x"}, &Purchase{Hold: rs[1].Hold.ID, PaymentRef: "x"})
	steps, err := s.QueueSteps(1000)
	require.NoError(t, err)
	rs = applyOne(t, s, 5, 1000, &AdvanceAdmission{Event: "e"})
	t.Logf("leader look-ahead: %d steps due; step admitted %d, soldOut %v", len(steps), rs[0].Admitted, rs[0].Queue.SoldOut)
	require.Equal(t, 0, rs[0].Admitted, "all 4 places are sold")
	require.True(t, rs[0].Queue.SoldOut)
}

// A keyed hold refused for want of admission is not remembered under its
// key: the same request succeeds once the buyer is admitted.
func TestAdmissionRefusalIsNotReplayed(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e", "A:floor:1x4", "floor:100", 8, 600)
	cfg := boxoffice.QueueConfig{OpensAtMs: 0, PassTTLSeconds: 600, AdmitPercent: 100}
	rs := applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, &ProtectSale{Event: "e", Config: cfg}, &JoinQueue{Event: "e", Buyer: "b1"})
	for _, r := range rs {
		require.NoError(t, r.Err)
	}
	hash := make([]byte, IdempotencyHashLen)
	hold := func(index uint64) Result {
		return applyOne(t, s, index, 1000, &Idempotent{Subject: "b1", Key: "k1", Hash: hash,
			Command: &Hold{Event: "e", Buyer: "b1", Seats: []string{"A-1-1"}}})[0]
	}
	r := hold(2)
	require.Equal(t, boxoffice.CodeAdmissionRequired, boxoffice.CodeOf(r.Err))
	applyOne(t, s, 3, 1000, &OpenQueue{Event: "e", Seed: 1})
	rs = applyOne(t, s, 4, 1000, &AdvanceAdmission{Event: "e", Max: 1})
	require.Equal(t, 1, rs[0].Admitted)
	r = hold(5)
	require.NoError(t, r.Err, "the same key, after admission")
	require.False(t, r.Replayed)
	require.NotNil(t, r.Hold)
}
