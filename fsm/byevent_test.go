package fsm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// EventHolds and EventOrders page through one event's records among another
// event's in the same shard: every page bounded by limit and scanMax, the
// cursor continuing where the last page stopped, each record once.
func TestEventHoldsAndOrdersPage(t *testing.T) {
	s := newStore(t)
	a, b := pickEvent(), pickEvent()
	b.ID = "p2"
	applyOne(t, s, 1, 1000, &CreateEvent{Event: a}, &CreateEvent{Event: b})
	var cmds []Command
	for _, seat := range []string{"A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5"} {
		cmds = append(cmds, &Hold{Event: "p1", Buyer: "u1", Seats: []string{seat}}, &Hold{Event: "p2", Buyer: "u2", Seats: []string{seat}})
	}
	res := applyOne(t, s, 2, 2000, cmds...)
	var p1Holds []string
	for i, r := range res {
		require.NoError(t, r.Err)
		if i%2 == 0 {
			p1Holds = append(p1Holds, r.Hold.ID)
		}
	}
	buy := applyOne(t, s, 3, 3000, &Purchase{Hold: p1Holds[0], Buyer: "u1", PaymentRef: "pi_1"}, &Purchase{Hold: p1Holds[3], Buyer: "u1", PaymentRef: "pi_2"})
	for _, r := range buy {
		require.NoError(t, r.Err)
	}

	for _, scanMax := range []int{1, 2, 3, 100} {
		var got []string
		after := ""
		for page := 0; page < 100; page++ {
			hs, next, err := s.EventHolds("p1", after, 2, scanMax)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(hs), 2)
			for _, h := range hs {
				assert.Equal(t, "p1", h.Event)
				got = append(got, h.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		assert.ElementsMatch(t, p1Holds, got, "scanMax %d", scanMax)
	}
	os, next, err := s.EventOrders("p1", "", 10, 100)
	require.NoError(t, err)
	assert.Empty(t, next)
	require.Len(t, os, 2)
	for _, o := range os {
		assert.Equal(t, boxoffice.OrderPaid, o.State)
	}
	os, _, err = s.EventOrders("p2", "", 10, 100)
	require.NoError(t, err)
	assert.Empty(t, os)
	_, _, err = s.EventOrders("p1", "", 0, 100)
	assert.Error(t, err)
}
