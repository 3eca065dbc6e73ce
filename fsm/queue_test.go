package fsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// The early group's shuffle is a bijection of [0, n) for every seed, and
// unpermute is its inverse: no two early joiners share a rank, none is
// left without one.
func TestPermutationIsBijection(t *testing.T) {
	check := func(seed, n uint64) {
		seen := make([]bool, n)
		for x := range n {
			y := permute(seed, n, x)
			require.Less(t, y, n, "seed %d n %d x %d", seed, n, x)
			require.False(t, seen[y], "seed %d n %d: rank %d twice", seed, n, y)
			seen[y] = true
			require.Equal(t, x, unpermute(seed, n, y), "seed %d n %d", seed, n)
		}
	}
	for n := uint64(1); n <= 300; n++ {
		check(n*7919, n)
	}
	check(42, 100_000)
	check(0, 1<<16+3)
}

// The shuffle is a shuffle: with another seed, another order, and not the
// join order.
func TestPermutationShuffles(t *testing.T) {
	const n = 1000
	order := func(seed uint64) []uint64 {
		out := make([]uint64, n)
		for x := range uint64(n) {
			out[x] = permute(seed, n, x)
		}
		return out
	}
	a, b := order(1), order(2)
	require.NotEqual(t, a, b)
	fixed := 0
	for x, y := range a {
		if uint64(x) == y {
			fixed++
		}
	}
	require.Less(t, fixed, 20, "a shuffle leaves few joiners where they were")
}

// Fairness: buyers are admitted in join order, but for the early group,
// which is admitted first in the order of the seed, and whose members
// are exactly those who joined before the opening. Every buyer is
// admitted once. The same log gives the same store on another replica.
func TestQueueFairness(t *testing.T) {
	const early, late, seats = 40, 160, 60
	s, twin := newMemStore(t), newMemStore(t)
	var index uint64
	now := int64(1000)
	apply := func(cmds ...Command) []Result {
		index++
		rs := applyOne(t, s, index, now, cmds...)
		applyOne(t, twin, index, now, cmds...)
		return rs
	}
	ev := boxoffice.Event{ID: "e", Name: "E", Organiser: "org", Categories: []boxoffice.Category{{ID: "c", PriceCents: 1}},
		Venue:  boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "c", Rows: 1, SeatsPerRow: seats}}},
		Limits: boxoffice.Limits{MaxSeatsPerBuyer: 4, HoldTTLSeconds: 600}}
	require.NoError(t, apply(&CreateEvent{Event: ev})[0].Err)
	require.NoError(t, apply(&ProtectSale{Event: "e", Config: boxoffice.QueueConfig{OpensAtMs: 5000, PassTTLSeconds: 600, AdmitPercent: 100}})[0].Err)
	buyer := func(i int) string { return fmt.Sprintf("b%03d", i) }
	var joins []Command
	for i := range early {
		joins = append(joins, &JoinQueue{Event: "e", Buyer: buyer(i)})
	}
	for _, r := range apply(joins...) {
		require.NoError(t, r.Err)
	}
	now = 5000
	require.NoError(t, apply(&OpenQueue{Event: "e", Seed: 0xfeed})[0].Err)
	joins = joins[:0]
	for i := early; i < early+late; i++ {
		joins = append(joins, &JoinQueue{Event: "e", Buyer: buyer(i)})
	}
	// A buyer who joins twice keeps the first place.
	joins = append(joins, &JoinQueue{Event: "e", Buyer: buyer(3)}, &JoinQueue{Event: "e", Buyer: buyer(early + 5)})
	rs := apply(joins...)
	require.Equal(t, int64(3), rs[len(rs)-2].Place.Seq)
	require.Equal(t, int64(early+5), rs[len(rs)-1].Place.Seq)

	// Admit in steps; each admitted buyer holds one seat, and every fourth
	// one releases it again, so that admission goes on past the seat count.
	var admitted []string
	seatN := 0
	for step := 0; len(admitted) < early+late && step < 1000; step++ {
		now += 10
		rs := apply(&AdvanceAdmission{Event: "e", Max: 7})
		require.NoError(t, rs[0].Err)
		require.LessOrEqual(t, rs[0].Admitted, 7)
		q := rs[0].Queue
		for r := int64(len(admitted)); r < q.Admitted; r++ {
			var who string
			for i := range early + late {
				p, err := s.Place("e", buyer(i), 0)
				require.NoError(t, err)
				if p.Rank == r {
					require.Equal(t, boxoffice.PlaceAdmitted, p.State)
					require.Empty(t, who, "rank %d given twice", r)
					who = buyer(i)
				}
			}
			require.NotEmpty(t, who, "rank %d given to nobody", r)
			admitted = append(admitted, who)
			res := apply(&Hold{Event: "e", Buyer: who, Seats: []string{fmt.Sprintf("A-1-%d", seatN%seats+1)}})
			require.NoError(t, res[0].Err, "admitted %s holds", who)
			if len(admitted)%4 != 0 {
				seatN++
			} else {
				require.NoError(t, apply(&Release{Hold: res[0].Hold.ID})[0].Err)
			}
		}
		if seatN >= seats {
			break
		}
	}
	require.NotEmpty(t, admitted)
	// Nobody twice.
	sorted := slices.Clone(admitted)
	slices.Sort(sorted)
	require.Len(t, slices.Compact(sorted), len(admitted))
	// The early group first, all of it, in a shuffled order.
	var earlyGroup []string
	for i := range early {
		earlyGroup = append(earlyGroup, buyer(i))
	}
	got := slices.Clone(admitted[:early])
	require.NotEqual(t, earlyGroup, got, "the early group is shuffled")
	slices.Sort(got)
	require.Equal(t, earlyGroup, got, "the early group is admitted first")
	// Then join order.
	for i, b := range admitted[early:] {
		require.Equal(t, buyer(early+i), b, "admission %d after the early group", early+i)
	}
	// The admission stopped with the seats: nothing left free.
	q, err := s.Queue("e")
	require.NoError(t, err)
	require.Less(t, q.Admitted, int64(early+late), "admission stops when no seat is free")
	steps, err := s.QueueSteps(now)
	require.NoError(t, err)
	require.Empty(t, steps, "nothing is due with no seat free")
	require.Equal(t, mustHash(t, s), mustHash(t, twin))
	checkQueueInvariants(t, s)
}

// A join is one small command: a large entry of joins applies in one
// batch, each join gets its own place, and the buyers' places come back
// through the look-up index with no scan.
func TestJoinBatch(t *testing.T) {
	s := newMemStore(t)
	ev := boxoffice.Event{ID: "e", Name: "E", Organiser: "org", Categories: []boxoffice.Category{{ID: "c", PriceCents: 1}},
		Venue:  boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "c", Rows: 1, SeatsPerRow: 10}}},
		Limits: boxoffice.Limits{MaxSeatsPerBuyer: 4, HoldTTLSeconds: 600}}
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, &ProtectSale{Event: "e", Config: boxoffice.QueueConfig{PassTTLSeconds: 60, AdmitPercent: 100}})
	r := rand.New(rand.NewPCG(1, 2))
	var cmds []Command
	want := map[string]int64{}
	for i := range 2000 {
		b := fmt.Sprintf("u%d", r.IntN(1500))
		if _, ok := want[b]; !ok {
			want[b] = int64(len(want))
		}
		_ = i
		cmds = append(cmds, &JoinQueue{Event: "e", Buyer: b})
	}
	rs := applyOne(t, s, 2, 1000, cmds...)
	for i, res := range rs {
		b := cmds[i].(*JoinQueue).Buyer
		require.NoError(t, res.Err)
		require.Equal(t, want[b], res.Place.Seq, "buyer %s", b)
	}
	q, err := s.Queue("e")
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), q.Joined)
	for b, seq := range want {
		p, err := s.Place("e", b, 0)
		require.NoError(t, err)
		require.Equal(t, seq, p.Seq)
	}
	checkQueueInvariants(t, s)
}

// The waiting room is a pure function of the log: a random log of joins,
// openings, admission steps, holds (admitted or not), releases, purchases
// and sweeps gives the same store and the same answers whether it is
// applied an entry at a time or in large batches, and keeps the queue's
// invariants after every batch.
func TestQueueDeterminismAcrossBatching(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 77))
			ev := boxoffice.Event{ID: "e", Name: "E", Organiser: "org", Categories: []boxoffice.Category{{ID: "c", PriceCents: 1}},
				Venue:  boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "c", Rows: 2, SeatsPerRow: 10}}},
				Limits: boxoffice.Limits{MaxSeatsPerBuyer: 2, HoldTTLSeconds: 30}}
			var entries []Entry
			now := int64(1000)
			// gen applies the log as it is written, so that holds can be
			// made by buyers it admitted.
			gen := newMemStore(t)
			add := func(cmds ...Command) {
				entries = append(entries, entryOf(uint64(len(entries)+1), now, cmds...))
				_, err := gen.ApplyEntries(entries[len(entries)-1:])
				require.NoError(t, err)
			}
			admitted := func() string {
				for _, i := range r.Perm(60) {
					if p, err := gen.Place("e", fmt.Sprintf("u%d", i), 0); err == nil && p.State == boxoffice.PlaceAdmitted {
						return p.Buyer
					}
				}
				return "nobody"
			}
			add(&CreateEvent{Event: ev}, &ProtectSale{Event: "e", Config: boxoffice.QueueConfig{OpensAtMs: 3000, PassTTLSeconds: 20, AdmitPercent: 1 + r.IntN(200)}})
			// Holds name ids the log will give: h_<shard>.<index>.0.
			for len(entries) < 400 {
				now += int64(r.IntN(700))
				buyer := fmt.Sprintf("u%d", r.IntN(60))
				switch k := r.IntN(10); {
				case k < 4:
					var cmds []Command
					for range 1 + r.IntN(20) {
						cmds = append(cmds, &JoinQueue{Event: "e", Buyer: fmt.Sprintf("u%d", r.IntN(60))})
					}
					add(cmds...)
				case k == 4:
					add(&OpenQueue{Event: "e", Seed: r.Uint64()})
				case k == 5:
					add(&AdvanceAdmission{Event: "e", Max: r.IntN(8)})
				case k == 6:
					if r.IntN(3) > 0 {
						buyer = admitted()
					}
					add(&Hold{Event: "e", Buyer: buyer, Seats: []string{fmt.Sprintf("A-%d-%d", 1+r.IntN(2), 1+r.IntN(10))}})
				case k == 7:
					add(&Release{Hold: fmt.Sprintf("h_%d.%d.0", 0, 1+r.IntN(len(entries)))})
				case k == 8:
					add(&Purchase{Hold: fmt.Sprintf("h_%d.%d.0", 0, 1+r.IntN(len(entries))), PaymentRef: "p"})
				default:
					add(&Expire{})
				}
			}
			one, big := newMemStore(t), newMemStore(t)
			require.Equal(t, 0, one.Shard(), "hold ids above name shard 0")
			var resOne, resBig []string
			render := func(rs [][]Result, from int) []string {
				var out []string
				for i, entry := range rs {
					cmds, _ := decodeAll(t, entries[from+i])
					for j, res := range entry {
						out = append(out, fmtResult(cmds[j], res))
					}
				}
				return out
			}
			for i := range entries {
				rs, err := one.ApplyEntries(entries[i : i+1])
				require.NoError(t, err)
				resOne = append(resOne, render(rs, i)...)
			}
			for i := 0; i < len(entries); {
				n := min(1+r.IntN(60), len(entries)-i)
				rs, err := big.ApplyEntries(entries[i : i+n])
				require.NoError(t, err)
				resBig = append(resBig, render(rs, i)...)
				checkQueueInvariants(t, big)
				i += n
			}
			require.Equal(t, resOne, resBig)
			require.Equal(t, mustHash(t, one), mustHash(t, big))
			q, err := one.Queue("e")
			require.NoError(t, err)
			require.Positive(t, q.Joined)
			require.Positive(t, q.Admitted, "the log admits someone")
			held, refused := 0, 0
			for _, line := range resOne {
				switch {
				case strings.HasPrefix(line, "hold h_") && strings.Contains(line, " active "):
					held++
				case strings.HasPrefix(line, "error admission_required"):
					refused++
				}
			}
			require.Positive(t, held, "admitted buyers hold")
			require.Positive(t, refused, "others are refused")
			checkInvariants(t, one)
		})
	}
}

func decodeAll(t *testing.T, e Entry) ([]Command, int64) {
	t.Helper()
	now, raw, err := DecodeEntry(e.Data)
	require.NoError(t, err)
	cmds := make([]Command, len(raw))
	for i, b := range raw {
		cmds[i], err = DecodeCommand(b)
		require.NoError(t, err)
	}
	return cmds, now
}

// BenchmarkApplyJoinBatch256: one entry of 256 joins of new buyers per
// ApplyEntries call, as the leader coalesces concurrent joins. ns/join is
// per command.
func BenchmarkApplyJoinBatch256(b *testing.B) {
	const perEntry = 256
	s, index := benchStore(b, 1)
	applyOne(b, s, index+1, 1000, &ProtectSale{Event: "ev0", Config: boxoffice.QueueConfig{PassTTLSeconds: 600, AdmitPercent: 100}})
	index++
	entries := make([]Entry, b.N)
	for i := range entries {
		cmds := make([]Command, perEntry)
		for j := range cmds {
			cmds[j] = &JoinQueue{Event: "ev0", Buyer: fmt.Sprintf("buyer%09d", i*perEntry+j)}
		}
		entries[i] = entryOf(index+1+uint64(i), 2000+int64(i), cmds...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		mustApply(b, s, entries[i:i+1])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perEntry), "ns/join")
}

// BenchmarkPlace: a position look-up, two point reads and a permutation.
func BenchmarkPlace(b *testing.B) {
	s, index := benchStore(b, 1)
	applyOne(b, s, index+1, 1000, &ProtectSale{Event: "ev0", Config: boxoffice.QueueConfig{OpensAtMs: 5000, PassTTLSeconds: 600, AdmitPercent: 100}})
	const buyers = 20_000
	for i := range buyers / 256 {
		cmds := make([]Command, 256)
		for j := range cmds {
			cmds[j] = &JoinQueue{Event: "ev0", Buyer: fmt.Sprintf("buyer%09d", i*256+j)}
		}
		mustApply(b, s, []Entry{entryOf(index+2+uint64(i), 1000, cmds...)})
	}
	mustApply(b, s, []Entry{entryOf(index+2+buyers/256, 6000, &OpenQueue{Event: "ev0", Seed: 9})})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p, err := s.Place("ev0", fmt.Sprintf("buyer%09d", i%(buyers/256*256)), 0)
		if err != nil || p.Rank < 0 {
			b.Fatal(p, err)
		}
	}
}
