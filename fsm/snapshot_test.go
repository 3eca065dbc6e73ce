package fsm

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// snapshotBytes streams a snapshot of s.
func snapshotBytes(t *testing.T, s *Store) ([]byte, uint64) {
	t.Helper()
	sn, err := s.Snapshot()
	require.NoError(t, err)
	defer sn.Close()
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf)
	require.NoError(t, err)
	require.Equal(t, int64(buf.Len()), n, "WriteTo counts what it wrote")
	return buf.Bytes(), sn.AppliedIndex()
}

// A snapshot restored into a store with other contents replaces them all:
// the same hash, applied index and clock, working queries, and the same
// future as the source when both apply the rest of the log.
func TestSnapshotRestore(t *testing.T) {
	log := randomLog(4, 400)
	src := newStore(t)
	applyLog(t, src, log[:250], 25)

	sn, err := src.Snapshot()
	require.NoError(t, err)
	wantHash, wantApplied, wantNow, wantDump := mustHash(t, src), src.AppliedIndex(), src.NowMs(), dumpStore(t, src)
	require.Equal(t, wantApplied, sn.AppliedIndex())

	// The snapshot is a point in time: entries applied after it are not in
	// the stream.
	applyLog(t, src, log[250:300], 50)
	require.NotEqual(t, wantHash, mustHash(t, src))
	var buf bytes.Buffer
	_, err = sn.WriteTo(&buf)
	require.NoError(t, err)
	require.NoError(t, sn.Close())

	// The target has a different history: other events (e1 with another
	// venue, in its event cache), holds, a higher applied index.
	dst := newStore(t)
	other := testEvent(t, "e1", "Z:floor:1x3", "floor:5", 1, 1)
	applyOne(t, dst, 1, 500, &CreateEvent{Event: other})
	applyOne(t, dst, 900, 99_000_000, &Hold{Event: "e1", Buyer: "x", Seats: []string{"Z-1-1"}})
	_, err = dst.Event("e1")
	require.NoError(t, err)

	require.NoError(t, dst.Restore(bytes.NewReader(buf.Bytes())))
	require.Equal(t, wantHash, mustHash(t, dst))
	require.Equal(t, wantApplied, dst.AppliedIndex())
	require.Equal(t, wantNow, dst.NowMs())
	require.Equal(t, wantDump, dumpStore(t, dst))
	checkInvariants(t, dst)

	// Queries answer from the restored state, not from the old cache.
	ev, err := dst.Event("e1")
	require.NoError(t, err)
	require.Equal(t, propEvents()[0].Venue, ev.Venue)
	seats, err := dst.Seats("e1", SeatFilter{})
	require.NoError(t, err)
	require.Len(t, seats, 30+8, "30 seats and 8 standing places")
	ids, err := dst.HoldsOf("u1")
	require.NoError(t, err)
	require.NotEmpty(t, ids)
	h, err := dst.Hold(ids[0])
	require.NoError(t, err)
	require.Equal(t, "u1", h.Buyer)
	_, err = dst.Hold("h_0.900.0")
	require.ErrorIs(t, err, boxoffice.ErrHoldNotFound, "the target's own hold is gone")

	// Both stores now apply the rest of the log alike: a second source
	// replays from the snapshot point.
	src2 := newStore(t)
	applyLog(t, src2, log, 400)
	applyLog(t, dst, log[250:], 30)
	require.Equal(t, mustHash(t, src2), mustHash(t, dst))
	require.NoDirExists(t, dst.cfg.Dir+".restore")
	require.NoDirExists(t, dst.cfg.Dir+".old")
}

// An empty store's snapshot restores to an empty store.
func TestSnapshotOfEmptyStore(t *testing.T) {
	src, dst := newStore(t), newStore(t)
	data, applied := snapshotBytes(t, src)
	require.Zero(t, applied)
	applyOne(t, dst, 5, 5000, &CreateEvent{Event: testEvent(t, "e1", "A:floor:1x1", "floor:1", 1, 1)})
	require.NoError(t, dst.Restore(bytes.NewReader(data)))
	require.Equal(t, mustHash(t, src), mustHash(t, dst))
	require.Zero(t, dst.AppliedIndex())
	require.Zero(t, dst.NowMs())
	_, err := dst.Event("e1")
	require.ErrorIs(t, err, boxoffice.ErrEventNotFound)
}

// A damaged stream (any byte flipped, cut short, or with a bad header)
// makes Restore fail and leaves the target as it was, still usable.
func TestRestoreRejectsDamagedStream(t *testing.T) {
	src := newStore(t)
	applyLog(t, src, randomLog(5, 120), 120)
	data, _ := snapshotBytes(t, src)
	require.Greater(t, len(data), 1000)

	dst := newStore(t)
	applyOne(t, dst, 1, 1000, &CreateEvent{Event: testEvent(t, "mine", "A:floor:1x3", "floor:1", 2, 60)})
	applyOne(t, dst, 2, 1000, &Hold{Event: "mine", Buyer: "u1", Seats: []string{"A-1-2"}})
	before := mustHash(t, dst)

	try := func(name string, stream []byte) {
		t.Helper()
		err := dst.Restore(bytes.NewReader(stream))
		require.Error(t, err, name)
		require.Equal(t, before, mustHash(t, dst), "%s: the failed restore changed the store", name)
		require.Equal(t, uint64(2), dst.AppliedIndex(), name)
		require.NoDirExists(t, dst.cfg.Dir+".restore", name)
	}
	// Every byte of the header and trailer, and a spread of bytes between.
	var positions []int
	for i := range len(data) {
		if i < 16 || i >= len(data)-16 || i%151 == 0 {
			positions = append(positions, i)
		}
	}
	for _, i := range positions {
		for _, mask := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= mask
			try("flip", bad)
		}
	}
	for _, n := range []int{0, 1, 6, 7, 8, len(data) / 2, len(data) - 5, len(data) - 4, len(data) - 1} {
		try("truncate", data[:n])
	}
	try("wrong magic", append([]byte("XXSNAP"), data[6:]...))
	try("unknown version", append(append([]byte("BXSNAP"), 2), data[7:]...))
	try("oversized key", append(bytes.Clone(data[:7]), 0xff, 0xff, 0x03))
	try("empty", nil)
	err := dst.Restore(io.MultiReader(bytes.NewReader(data[:100]), errReader{}))
	require.ErrorIs(t, err, errBoom)
	require.Equal(t, before, mustHash(t, dst))

	// The target still applies entries and still restores a good stream.
	rs := applyOne(t, dst, 3, 2000, &Hold{Event: "mine", Buyer: "u2", Seats: []string{"A-1-1"}})
	require.NoError(t, rs[0].Err)
	require.NoError(t, dst.Restore(bytes.NewReader(data)))
	require.Equal(t, mustHash(t, src), mustHash(t, dst))
}

var errBoom = os.ErrDeadlineExceeded

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

// Open finishes or undoes a Restore that a crash interrupted.
func TestRecoverSwap(t *testing.T) {
	// makeStore builds a closed store in dir from a log, and returns its
	// hash.
	makeStore := func(t *testing.T, dir string, seed uint64) [32]byte {
		s := openStore(t, dir)
		applyLog(t, s, randomLog(seed, 60), 60)
		h := mustHash(t, s)
		require.NoError(t, s.Close())
		return h
	}

	t.Run("crash while writing the restore", func(t *testing.T) {
		// dir and dir.restore both exist: the restore may be partial, and
		// the old store is intact. It is kept; the restore is dropped.
		dir := filepath.Join(t.TempDir(), "db")
		old := makeStore(t, dir, 1)
		makeStore(t, dir+".restore", 2)
		s := openStore(t, dir)
		defer s.Close()
		require.Equal(t, old, mustHash(t, s))
		require.NoDirExists(t, dir+".restore")
	})
	t.Run("crash while writing a restore that is empty so far", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		old := makeStore(t, dir, 1)
		require.NoError(t, os.MkdirAll(dir+".restore", 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir+".restore", "junk"), []byte("partial"), 0o644))
		s := openStore(t, dir)
		defer s.Close()
		require.Equal(t, old, mustHash(t, s))
		require.NoDirExists(t, dir+".restore")
	})
	t.Run("crash between the two renames", func(t *testing.T) {
		// dir was moved to dir.old, dir.restore (complete) not yet to dir:
		// the restore is finished and the old store dropped.
		dir := filepath.Join(t.TempDir(), "db")
		makeStore(t, dir+".old", 1)
		restored := makeStore(t, dir+".restore", 2)
		s := openStore(t, dir)
		defer s.Close()
		require.Equal(t, restored, mustHash(t, s))
		require.NoDirExists(t, dir+".restore")
		require.NoDirExists(t, dir+".old")
	})
	t.Run("crash before the old store was removed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		restored := makeStore(t, dir, 2)
		makeStore(t, dir+".old", 1)
		s := openStore(t, dir)
		defer s.Close()
		require.Equal(t, restored, mustHash(t, s))
		require.NoDirExists(t, dir+".old")
	})
	t.Run("restore after a leftover old store", func(t *testing.T) {
		// A later Restore must not trip over what a crash left.
		dir := filepath.Join(t.TempDir(), "db")
		makeStore(t, dir, 1)
		makeStore(t, dir+".old", 3)
		s := openStore(t, dir)
		defer s.Close()
		src := newStore(t)
		applyLog(t, src, randomLog(4, 30), 30)
		data, _ := snapshotBytes(t, src)
		require.NoError(t, s.Restore(bytes.NewReader(data)))
		require.Equal(t, mustHash(t, src), mustHash(t, s))
	})
	t.Run("fresh directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		s := openStore(t, dir)
		defer s.Close()
		require.Zero(t, s.AppliedIndex())
	})
}

// Config.Validate lists every problem at once; Open refuses a bad config.
func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{Dir: "x", MemTableBytes: DefaultConfig().MemTableBytes}.Validate())
	err := Config{Shard: -1, MemTableBytes: 1}.Validate()
	require.Error(t, err)
	for _, want := range []string{"Dir", "Shard", "MemTableBytes"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = Open(Config{Dir: t.TempDir(), Shard: 1 << 20, MemTableBytes: 16 << 20})
	require.Error(t, err)
}

// A store on an in-memory filesystem (Config.FS) snapshots and restores as
// one on disk does: Restore's directory swap goes through the same FS.
func TestSnapshotRestoreInMemory(t *testing.T) {
	log := randomLog(5, 120)
	src := newMemStore(t)
	applyLog(t, src, log, 20)
	b, applied := snapshotBytes(t, src)

	dst := newMemStore(t)
	applyOne(t, dst, 1, 500, &CreateEvent{Event: testEvent(t, "e9", "Z:floor:1x3", "floor:5", 1, 1)})
	require.NoError(t, dst.Restore(bytes.NewReader(b)))
	require.Equal(t, mustHash(t, src), mustHash(t, dst))
	require.Equal(t, applied, dst.AppliedIndex())
	require.Equal(t, dumpStore(t, src), dumpStore(t, dst))
	checkInvariants(t, dst)
	_, err := dst.Event("e9")
	require.ErrorIs(t, err, boxoffice.ErrEventNotFound, "the target's own event is gone")
}
