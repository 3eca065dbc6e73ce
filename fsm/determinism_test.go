package fsm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fmtResults renders the results of one ApplyEntries call, error details
// included, so that two stores' answers can be compared byte for byte.
func fmtResults(log []genEntry, first int, rs [][]Result) []string {
	var out []string
	for i, entry := range rs {
		for j, r := range entry {
			out = append(out, fmt.Sprintf("%d.%d %s", log[first+i].index, j, fmtResult(log[first+i].cmds[j], r)))
		}
		if entry == nil {
			out = append(out, fmt.Sprintf("%d (no results)", log[first+i].index))
		}
	}
	return out
}

// applyLog applies log to s in ApplyEntries calls of the given sizes
// (cycled), and returns every result rendered.
func applyLog(t *testing.T, s *Store, log []genEntry, sizes ...int) []string {
	t.Helper()
	var out []string
	for i, k := 0, 0; i < len(log); k++ {
		n := min(sizes[k%len(sizes)], len(log)-i)
		batch := make([]Entry, n)
		for j := range batch {
			batch[j] = log[i+j].entry()
		}
		rs, err := s.ApplyEntries(batch)
		require.NoError(t, err)
		out = append(out, fmtResults(log, i, rs)...)
		i += n
	}
	return out
}

// The same log gives the same store, and the same answers, whether it is
// applied one entry per call or in large calls.
func TestDeterminismAcrossBatching(t *testing.T) {
	for _, seed := range propSeeds()[:min(3, len(propSeeds()))] {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			log := randomLog(seed, 500)
			one, big, all := newStore(t), newStore(t), newStore(t)
			r := rand.New(rand.NewPCG(seed, 99))
			sizes := []int{1 + r.IntN(200), 1 + r.IntN(200), 1 + r.IntN(200)}

			resOne := applyLog(t, one, log, 1)
			resBig := applyLog(t, big, log, sizes...)
			resAll := applyLog(t, all, log, len(log))
			require.Equal(t, strings.Join(resOne, "\n"), strings.Join(resBig, "\n"), "seed %d, call sizes %v", seed, sizes)
			require.Equal(t, strings.Join(resOne, "\n"), strings.Join(resAll, "\n"), "seed %d", seed)

			h := mustHash(t, one)
			require.Equal(t, h, mustHash(t, big), "seed %d, call sizes %v", seed, sizes)
			require.Equal(t, h, mustHash(t, all), "seed %d", seed)
			for _, s := range []*Store{one, big, all} {
				require.Equal(t, log[len(log)-1].index, s.AppliedIndex())
				require.Equal(t, one.NowMs(), s.NowMs())
			}
			require.Equal(t, dumpStore(t, one), dumpStore(t, all))
		})
	}
}

// A store of another shard derives other ids, so its hash differs: the
// hash does cover what the log wrote.
func TestHashCoversState(t *testing.T) {
	log := randomLog(1, 50)
	a, b := newStore(t), openShard(t, filepath.Join(t.TempDir(), "db"), 1)
	defer b.Close()
	applyLog(t, a, log, 7)
	applyLog(t, b, log, 7)
	require.NotEqual(t, mustHash(t, a), mustHash(t, b))
}

// Entries at or below the applied index are skipped (a restart replays the
// Raft log from its last snapshot, which Pebble may be ahead of): no
// results, no change.
func TestReapplyIsNoop(t *testing.T) {
	log := randomLog(2, 300)
	s, ref := newStore(t), newStore(t)
	applyLog(t, s, log[:200], 13)
	applyLog(t, ref, log, 300)
	h := mustHash(t, s)
	now := s.NowMs()

	for _, from := range []int{0, 150, 199} {
		batch := make([]Entry, 0, 200-from)
		for _, e := range log[from:200] {
			batch = append(batch, e.entry())
		}
		rs, err := s.ApplyEntries(batch)
		require.NoError(t, err)
		for i, r := range rs {
			require.Nil(t, r, "entry %d was applied again", batch[i].Index)
		}
		require.Equal(t, h, mustHash(t, s), "re-applying entries %d.. changed the store", log[from].index)
		require.Equal(t, log[199].index, s.AppliedIndex())
		require.Equal(t, now, s.NowMs())
	}

	// A call that straddles the applied index applies only the new entries.
	var batch []Entry
	for _, e := range log[180:] {
		batch = append(batch, e.entry())
	}
	rs, err := s.ApplyEntries(batch)
	require.NoError(t, err)
	for i := range 20 {
		require.Nil(t, rs[i])
	}
	require.Equal(t, mustHash(t, ref), mustHash(t, s))
	require.Equal(t, ref.NowMs(), s.NowMs())
}

// Closing and reopening a store keeps its applied index, clock and
// contents; applying the rest of the log then ends where a store that was
// never closed ends.
func TestReopenKeepsState(t *testing.T) {
	log := randomLog(3, 300)
	dir := filepath.Join(t.TempDir(), "db")
	s := openStore(t, dir)
	ref := newStore(t)
	applyLog(t, ref, log, 300)

	applyLog(t, s, log[:150], 1, 10)
	h, applied, now := mustHash(t, s), s.AppliedIndex(), s.NowMs()
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "a second Close is harmless")

	s = openStore(t, dir)
	defer s.Close()
	require.Equal(t, applied, s.AppliedIndex())
	require.Equal(t, now, s.NowMs())
	require.Equal(t, h, mustHash(t, s))
	require.Equal(t, log[149].index, s.AppliedIndex())

	applyLog(t, s, log[150:], 3)
	require.Equal(t, mustHash(t, ref), mustHash(t, s))
	checkInvariants(t, s)
}

// An entry the store cannot decode halts ApplyEntries, and nothing of the
// call is applied, not even the entries before it.
func TestApplyEntriesAtomicOnHalt(t *testing.T) {
	s := newStore(t)
	ev := testEvent(t, "e1", "A:floor:2x3", "floor:100", 4, 60)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev})
	h := mustHash(t, s)

	good := entryOf(2, 2000, &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}})
	badCmd := EncodeEntry(2000, [][]byte{
		EncodeCommand(&Hold{Event: "e1", Buyer: "u2", Seats: []string{"A-1-2"}}),
		{commandVersion, 200},
	})
	for name, batch := range map[string][]Entry{
		"bad entry after a good one":         {good, {Index: 3, Data: []byte{9}}},
		"bad command after a good one":       {{Index: 2, Data: badCmd}},
		"good entries around a bad one":      {good, {Index: 3, Data: badCmd}, entryOf(4, 3000, &Expire{})},
		"a truncated entry":                  {{Index: 2, Data: good.Data[:len(good.Data)-1]}},
		"an entry with a stamp out of range": {{Index: 2, Data: append(binary.AppendUvarint([]byte{entryVersion}, 1<<62+1), 0)}},
	} {
		_, err := s.ApplyEntries(batch)
		require.Error(t, err, name)
		require.Equal(t, h, mustHash(t, s), name)
		require.Equal(t, uint64(1), s.AppliedIndex(), name)
		require.Equal(t, int64(1000), s.NowMs(), name)
	}
	// The store still works.
	rs, err := s.ApplyEntries([]Entry{good})
	require.NoError(t, err)
	require.NoError(t, rs[0][0].Err)
}
