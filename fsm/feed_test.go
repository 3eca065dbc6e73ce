package fsm

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
)

// changesOf flattens a feed read into "seat:state" per change, in order.
func changesOf(r FeedRead) []SeatChange {
	var out []SeatChange
	for _, b := range r.Batches {
		out = append(out, b.Changes...)
	}
	return out
}

func TestFeedReportsEverySeatWrite(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e1", "A:floor:2x3", "floor:100", 4, 60)
	other := testEvent(t, "e2", "A:floor:1x2", "floor:100", 4, 60)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev}, &CreateEvent{Event: other})
	start := s.Feed().Since(1, "e1", 100)
	require.False(t, start.Reset)
	require.Empty(t, start.Batches, "creating an event changes no seat")

	rs := applyOne(t, s, 2, 2000,
		&Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1", "A-2-3"}},
		&Hold{Event: "e2", Buyer: "u1", Seats: []string{"A-1-1"}})
	require.NoError(t, rs[0].Err)
	hold := rs[0].Hold

	select {
	case <-start.Wake:
	default:
		t.Fatal("a published batch must wake the readers waiting on the previous head")
	}

	r := s.Feed().Since(1, "e1", 100)
	require.False(t, r.Reset)
	require.Equal(t, uint64(2), r.Head)
	require.Len(t, r.Batches, 1)
	assert.Equal(t, uint64(2), r.Batches[0].Index)
	assert.Equal(t, int64(2000), r.Batches[0].NowMs)
	assert.Equal(t, []SeatChange{
		{Event: "e1", Seat: 0, State: boxoffice.SeatHeld, ExpiresAtMs: 62000},
		{Event: "e1", Seat: 5, State: boxoffice.SeatHeld, ExpiresAtMs: 62000},
	}, changesOf(r), "only e1's seats, with the hold's expiry")

	rs = applyOne(t, s, 3, 3000, &Purchase{Hold: hold.ID, Buyer: "u1", PaymentRef: "ch_1"})
	require.NoError(t, rs[0].Err)
	assert.Equal(t, []SeatChange{
		{Event: "e1", Seat: 0, State: boxoffice.SeatSold},
		{Event: "e1", Seat: 5, State: boxoffice.SeatSold},
	}, changesOf(s.Feed().Since(2, "e1", 100)))

	// The e2 hold expires by time: the feed hears of it when the sweep frees it.
	rs = applyOne(t, s, 4, 70_000, &Expire{Max: ExpireMax})
	require.Equal(t, 1, rs[0].Expired)
	assert.Equal(t, []SeatChange{{Event: "e2", Seat: 0, State: boxoffice.SeatFree}},
		changesOf(s.Feed().Since(3, "e2", 100)))
	assert.Empty(t, s.Feed().Since(3, "e1", 100).Batches)

	// A reader at the head waits; one past it, or before the store opened, reloads.
	assert.Empty(t, s.Feed().Since(4, "e1", 100).Batches)
	assert.False(t, s.Feed().Since(4, "e1", 100).Reset)
	assert.True(t, s.Feed().Since(5, "e1", 100).Reset)
	assert.False(t, s.Feed().Since(0, "e1", 100).Reset, "a store opened empty has every change")
}

func TestFeedLimitsReadsAndForgetsOldBatches(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e1", "A:floor:1x100", "floor:100", 100, 60)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev})
	for i := range 10 {
		rs := applyOne(t, s, uint64(2+i), 2000, &Hold{Event: "e1", Buyer: "u" + strconv.Itoa(i), Seats: []string{"A-1-" + strconv.Itoa(i+1)}})
		require.NoError(t, rs[0].Err)
	}
	r := s.Feed().Since(1, "e1", 3)
	require.Len(t, r.Batches, 3, "at most changesMax changes a read")
	assert.Equal(t, uint64(4), r.Head, "the reader continues after the last batch returned")
	r = s.Feed().Since(r.Head, "e1", 100)
	assert.Len(t, r.Batches, 7)
	assert.Equal(t, uint64(11), r.Head)

	// Fill the ring past its count: the oldest batches are forgotten, and a
	// reader from before them must reload.
	f := s.Feed()
	for i := range FeedBatchesMax + 1 {
		f.publish(uint64(100+i), 3000, []SeatChange{{Event: "e1", Seat: 1, State: boxoffice.SeatSold}})
	}
	assert.True(t, f.Since(11, "e1", 100).Reset)
	assert.True(t, f.Since(99, "e1", 100).Reset)
	r = f.Since(100, "e1", 10_000)
	require.False(t, r.Reset)
	assert.Len(t, r.Batches, FeedBatchesMax)
	r = f.Since(100+FeedBatchesMax-2, "e1", 10_000)
	require.Len(t, r.Batches, 2)
	assert.Equal(t, uint64(100+FeedBatchesMax-1), r.Batches[0].Index)

	// A batch larger than the whole ring forgets everything.
	huge := make([]SeatChange, FeedBytesMax/feedChangeBytes+1)
	for i := range huge {
		huge[i] = SeatChange{Event: "e1", Seat: int32(i % 100)}
	}
	head := f.Head()
	f.publish(head+1, 3000, huge)
	assert.True(t, f.Since(head, "e1", 100).Reset)
	assert.False(t, f.Since(head+1, "e1", 100).Reset)
}

func TestFeedResetsOnRestore(t *testing.T) {
	src := newMemStore(t)
	ev := testEvent(t, "e1", "A:floor:2x3", "floor:100", 4, 60)
	applyOne(t, src, 1, 1000, &CreateEvent{Event: ev})
	applyOne(t, src, 2, 2000, &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}})
	sn, err := src.Snapshot()
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = sn.WriteTo(&buf)
	require.NoError(t, err)
	require.NoError(t, sn.Close())

	dst := newStore(t)
	applyOne(t, dst, 1, 1000, &CreateEvent{Event: ev})
	r := dst.Feed().Since(1, "e1", 100)
	require.False(t, r.Reset)
	require.NoError(t, dst.Restore(bytes.NewReader(buf.Bytes())))
	select {
	case <-r.Wake:
	default:
		t.Fatal("a restore must wake the readers")
	}
	assert.True(t, dst.Feed().Since(1, "e1", 100).Reset, "a restore replaces the history a reader followed")
	assert.False(t, dst.Feed().Since(2, "e1", 100).Reset)
	assert.Equal(t, uint64(2), dst.Feed().Head())
}

// SweepDue tells the leader whether an Expire would change anything: it is
// due exactly when a hold's expiry has passed or an idempotency record has
// outlived its TTL, and not after the sweep that ends them.
func TestSweepDue(t *testing.T) {
	s := newMemStore(t)
	ev := testEvent(t, "e1", "A:floor:1x10", "floor:100", 10, 60)
	applyOne(t, s, 1, 1000, &CreateEvent{Event: ev})
	due := func(nowMs int64) bool {
		t.Helper()
		d, err := s.SweepDue(nowMs)
		require.NoError(t, err)
		return d
	}
	assert.False(t, due(1000), "nothing held")

	hash := bytes.Repeat([]byte{1}, IdempotencyHashLen)
	rs := applyOne(t, s, 2, 2000, &Idempotent{Subject: "u1", Key: "k1", Hash: hash,
		Command: &Hold{Event: "e1", Buyer: "u1", Seats: []string{"A-1-1"}}})
	require.NoError(t, rs[0].Err)
	assert.False(t, due(61_999), "the hold expires at 62,000")
	assert.True(t, due(62_000))

	rs = applyOne(t, s, 3, 62_000, &Expire{Max: ExpireMax})
	require.Equal(t, 1, rs[0].Expired)
	assert.False(t, due(62_000), "swept")

	ttlEnd := int64(2000 + boxoffice.IdempotencyTTLMs)
	assert.False(t, due(ttlEnd-1), "the key's record lives a TTL")
	assert.True(t, due(ttlEnd))
	applyOne(t, s, 4, ttlEnd, &Expire{Max: ExpireMax})
	assert.False(t, due(ttlEnd), "forgotten")
}
