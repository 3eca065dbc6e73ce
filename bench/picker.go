package bench

import (
	"math/rand/v2"
	"sort"
)

// Picker chooses the seats a user tries to hold from a seat map's free
// seats. Seats are numbered 0..Seats-1 in layout order (section by section,
// row by row), which is also their order of quality: the hot set is the
// first Hot of them.
type Picker struct {
	Seats int
	// Hot is the size of the hot set, the seats [0, Hot).
	Hot int
	// HotShare is the probability that a pick is made in the hot set
	// (when it still has free seats on the map).
	HotShare float64
}

// pickScanMax bounds the seats a pick looks at after its first one: k
// wanted plus every seat the user may have excluded.
const pickScanMax = PicksMaxMax + excludedMax

// Pick appends to dst up to k distinct seats from free (free seat indices,
// ascending), skipping those skip reports, and returns it. It chooses the
// region (hot with probability HotShare, else the rest; the other one when
// the chosen region has no free seat), a free seat uniformly in it, then the
// free seats that follow it in layout order within the region, wrapping to
// the region's start: buyers take seats next to each other. Fewer than k
// come back when the region has fewer left; none when the map has none.
func (p Picker) Pick(rng *rand.Rand, free []int32, k int, skip func(int32) bool, dst []int32) []int32 {
	if k <= 0 || len(free) == 0 {
		return dst
	}
	// free[:split] are hot, free[split:] are not.
	split := sort.Search(len(free), func(i int) bool { return int(free[i]) >= p.Hot })
	lo, hi := 0, split
	if rng.Float64() >= p.HotShare {
		lo, hi = split, len(free)
	}
	if lo == hi { // the chosen region is sold out on this map: the other
		if lo == 0 {
			lo, hi = split, len(free)
		} else {
			lo, hi = 0, split
		}
	}
	n := hi - lo
	start := lo + rng.IntN(n)
	got := 0
	for step := 0; step < n && step < k+pickScanMax && got < k; step++ {
		i := lo + (start-lo+step)%n
		s := free[i]
		if skip != nil && skip(s) {
			continue
		}
		dst = append(dst, s)
		got++
	}
	return dst
}

// pickCount draws how many seats a user wants, uniformly in [lo, hi].
func pickCount(rng *rand.Rand, lo, hi int) int { return lo + rng.IntN(hi-lo+1) }
