package fsm

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hashicorp/raft calls FSM.Restore (FSM goroutine, on InstallSnapshot)
// while an earlier FSMSnapshot may still be being written out on its
// snapshot goroutine. Restore waits for that snapshot instead of closing
// Pebble under it (which failed the restore and left the store closed, and
// panicked the write-out); both finish, and the store works.
func TestRestoreWaitsForOpenSnapshots(t *testing.T) {
	src := newStore(t)
	applyOne(t, src, 1, 1000, &CreateEvent{Event: testEvent(t, "e1", "A:floor:1x3", "floor:5", 4, 60)})
	data, _ := snapshotBytes(t, src)

	dst := openStore(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { dst.Close() })
	applyOne(t, dst, 1, 1000, &CreateEvent{Event: testEvent(t, "e2", "A:floor:1x3", "floor:5", 4, 60)})
	sn, err := dst.Snapshot()
	require.NoError(t, err)

	restored := make(chan error, 1)
	go func() { restored <- dst.Restore(bytes.NewReader(data)) }()
	select {
	case err := <-restored:
		t.Fatalf("Restore returned (%v) while a snapshot was still open", err)
	case <-time.After(50 * time.Millisecond):
	}
	// The write-out finishes against the old store, then Restore proceeds.
	var buf bytes.Buffer
	_, err = sn.WriteTo(&buf)
	require.NoError(t, err)
	require.NoError(t, sn.Close())
	require.NoError(t, sn.Close(), "closing twice is harmless")
	require.NoError(t, <-restored)

	_, err = dst.Event("e1")
	require.NoError(t, err)
	applyOne(t, dst, 2, 2000, &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}})
	checkInvariants(t, dst)
}
