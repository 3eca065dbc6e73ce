package fsm

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// The value cache changes nothing but speed: a store whose cache is dropped
// before every batch, and one whose cache is emptied at random by its bound,
// give the same answers and the same contents as one that keeps it.
func TestValueCacheChangesNothing(t *testing.T) {
	for _, seed := range propSeeds()[:min(3, len(propSeeds()))] {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			log := randomLog(seed, 400)
			warm, cold := newStore(t), newStore(t)
			for i := 0; i < len(log); i += 3 {
				batch := make([]Entry, 0, 3)
				for j := i; j < min(i+3, len(log)); j++ {
					batch = append(batch, log[j].entry())
				}
				cold.kv.reset()
				rw, err := warm.ApplyEntries(batch)
				require.NoError(t, err)
				rc, err := cold.ApplyEntries(batch)
				require.NoError(t, err)
				require.Equal(t, fmtResults(log, i, rw), fmtResults(log, i, rc), "seed %d at entry %d", seed, i)
			}
			require.Equal(t, mustHash(t, warm), mustHash(t, cold))
			require.NotEmpty(t, warm.kv.m, "the warm store cached nothing")
		})
	}
}

// A prefix too big for the cache is read key by key, and still right.
func TestValueCacheTooBigPrefix(t *testing.T) {
	s := newStore(t)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: pickEvent()})
	applyOne(t, s, 2, 1000, &Hold{Event: "p1", Buyer: "x", Seats: []string{"A-1-1"}})
	s.kv.reset()
	// Fill the cache to its bound with unrelated keys, so that loading the
	// event's seats would pass it.
	for i := 0; len(s.kv.m) < kvCacheMax-1; i++ {
		s.kv.put([]byte(fmt.Sprintf("hfill%d", i)), cachedValue{})
	}
	rs := applyOne(t, s, 3, 1000, &Hold{Event: "p1", Buyer: "y", Seats: []string{"A-1-1"}}, &Hold{Event: "p1", Buyer: "y", Seats: []string{"A-1-2"}})
	require.Equal(t, "seat_unavailable", string(boxoffice.CodeOf(rs[0].Err)))
	require.NoError(t, rs[1].Err)
	checkInvariants(t, s)
}
