package bench

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allSeats(n int) []int32 {
	free := make([]int32, n)
	for i := range free {
		free[i] = int32(i)
	}
	return free
}

// TestPickerHotSpot checks the default hot spot on a fresh map: 80 % of the
// picked seats fall in the best 20 %, and within the hot set the picks are
// spread evenly (each tenth of it gets its tenth).
func TestPickerHotSpot(t *testing.T) {
	const seats, hot, picks = 10_000, 2_000, 20_000
	p := Picker{Seats: seats, Hot: hot, HotShare: 0.8}
	rng := rand.New(rand.NewPCG(1, 2))
	free := allSeats(seats)
	var inHot, total int
	var deciles [10]int
	var buf []int32
	for i := 0; i < picks; i++ {
		k := pickCount(rng, 1, 4)
		buf = p.Pick(rng, free, k, nil, buf[:0])
		require.Len(t, buf, k)
		for _, s := range buf {
			total++
			if int(s) < hot {
				inHot++
				deciles[int(s)*10/hot]++
			}
		}
	}
	share := float64(inHot) / float64(total)
	assert.InDelta(t, 0.8, share, 0.02, "share of picked seats in the hot set")
	for i, d := range deciles {
		assert.InDelta(t, 0.1, float64(d)/float64(inHot), 0.02, "tenth %d of the hot set", i)
	}
}

// TestPickerChoosesFreeDistinctSeats checks every pick on a half-sold map
// with exclusions: at most k seats, no duplicates, all free, none excluded,
// all in one region, and k of them whenever the region has k to give.
func TestPickerChoosesFreeDistinctSeats(t *testing.T) {
	const seats, hot = 2_000, 400
	p := Picker{Seats: seats, Hot: hot, HotShare: 0.8}
	rng := rand.New(rand.NewPCG(7, 7))
	var free []int32
	for i := 0; i < seats; i++ {
		if rng.IntN(2) == 0 {
			free = append(free, int32(i))
		}
	}
	excluded := map[int32]bool{}
	for len(excluded) < 100 {
		excluded[free[rng.IntN(len(free))]] = true
	}
	isFree := map[int32]bool{}
	for _, s := range free {
		isFree[s] = true
	}
	skip := func(s int32) bool { return excluded[s] }
	for i := 0; i < 5_000; i++ {
		k := pickCount(rng, 1, 4)
		got := p.Pick(rng, free, k, skip, nil)
		require.Len(t, got, k, "the regions have far more than k free seats")
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		require.Len(t, slices.Compact(sorted), k, "duplicate seat in %v", got)
		for _, s := range got {
			require.True(t, isFree[s], "seat %d is not free", s)
			require.False(t, excluded[s], "seat %d is excluded", s)
			require.Equal(t, got[0] < hot, s < hot, "pick %v spans both regions", got)
		}
	}
}

func TestPickerEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := Picker{Seats: 100, Hot: 20, HotShare: 1}
	// The hot set is sold out on the map: picks go to the rest.
	cold := []int32{50, 51, 52, 53}
	for i := 0; i < 50; i++ {
		for _, s := range p.Pick(rng, cold, 2, nil, nil) {
			assert.GreaterOrEqual(t, s, int32(20))
		}
	}
	// Only hot seats left and no pick wanted there: they still get picked.
	p.HotShare = 0
	for i := 0; i < 50; i++ {
		for _, s := range p.Pick(rng, []int32{3, 7}, 1, nil, nil) {
			assert.Less(t, s, int32(20))
		}
	}
	// Fewer free seats than wanted: those there are.
	assert.Equal(t, []int32{5}, p.Pick(rng, []int32{5}, 4, nil, nil))
	// Nothing free, or everything excluded: nothing.
	assert.Empty(t, p.Pick(rng, nil, 4, nil, nil))
	assert.Empty(t, p.Pick(rng, []int32{1, 2, 3}, 2, func(int32) bool { return true }, nil))
	// k = 0 picks nothing.
	assert.Empty(t, p.Pick(rng, []int32{1, 2, 3}, 0, nil, nil))
}

// TestPickerDeterministic: a seed replays the same picks.
func TestPickerDeterministic(t *testing.T) {
	p := Picker{Seats: 1000, Hot: 200, HotShare: 0.8}
	free := allSeats(1000)
	run := func() [][]int32 {
		rng := rand.New(rand.NewPCG(42, 0))
		var out [][]int32
		for i := 0; i < 100; i++ {
			out = append(out, p.Pick(rng, free, pickCount(rng, 1, 4), nil, nil))
		}
		return out
	}
	assert.Equal(t, run(), run())
}

func BenchmarkPick(b *testing.B) {
	p := Picker{Seats: 100_000, Hot: 20_000, HotShare: 0.8}
	free := allSeats(100_000)
	rng := rand.New(rand.NewPCG(1, 1))
	buf := make([]int32, 0, 4)
	for b.Loop() {
		buf = p.Pick(rng, free, 4, nil, buf[:0])
	}
}
