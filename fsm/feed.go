package fsm

import (
	"sort"
	"sync"

	"boxoffice"
)

// The change feed: which seats of which event each applied batch changed,
// kept in a bounded in-memory ring so that a live seat map (the web page's
// Server-Sent Events) can follow a shard without re-reading 100,000 seats.
//
// The feed is an observer of the state machine, not part of it: it is filled
// after a batch is committed to Pebble, nothing in apply reads it, and it is
// lost on restart. A reader that asks for changes older than the ring holds
// (or older than this process's start, or a restored snapshot) is told to
// reset: reload the seat map, then follow from the index that map carries.

// Feed limits.
const (
	// FeedBatchesMax bounds the batches the ring keeps.
	FeedBatchesMax = 4096
	// FeedBytesMax bounds the ring's estimated memory.
	FeedBytesMax = 16 << 20
	// feedChangeBytes is the estimated size of one change, besides its
	// event id (which batches of one event share).
	feedChangeBytes = 24
)

// SeatChange is a seat's state as an applied batch left it. A seat of a hold
// that expired by time, and that no later command touched, is still "held"
// here until the leader's sweep frees it (a change of its own); ExpiresAtMs
// lets a reader count it free from then on, as the state machine does.
type SeatChange struct {
	Event       string
	Seat        int32 // index in the event's layout
	State       boxoffice.SeatState
	ExpiresAtMs int64 // for a held seat: its hold's expiry
}

// FeedBatch is the seat changes of the entries applied in one batch, in
// the order they were applied; Index is the applied index after it, NowMs
// the state machine's clock.
type FeedBatch struct {
	Index   uint64
	NowMs   int64
	Changes []SeatChange
}

// Feed is a shard's change feed. Its methods are safe for concurrent use.
type Feed struct {
	mu    sync.Mutex
	ring  [FeedBatchesMax]FeedBatch
	first int // position of the oldest batch in ring
	n     int // batches in ring
	bytes int
	// base: the ring holds every change after it. A reader that has seen
	// less than base has missed changes.
	base uint64
	head uint64 // the applied index last published
	now  int64
	wake chan struct{}
}

func newFeed(applied uint64, nowMs int64) *Feed {
	return &Feed{base: applied, head: applied, now: nowMs, wake: make(chan struct{})}
}

// publish appends a committed batch and wakes the readers. It costs the
// applier one lock and one channel per batch.
func (f *Feed) publish(index uint64, nowMs int64, changes []SeatChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index <= f.head {
		return
	}
	f.head, f.now = index, nowMs
	if len(changes) > 0 {
		size := feedBatchBytes(changes)
		for f.n > 0 && (f.n == FeedBatchesMax || f.bytes+size > FeedBytesMax) {
			f.evictOldest()
		}
		if size > FeedBytesMax {
			// Larger than the whole ring (a sweep of very many holds):
			// every reader must reload.
			f.base = index
		} else {
			f.ring[(f.first+f.n)%FeedBatchesMax] = FeedBatch{Index: index, NowMs: nowMs, Changes: changes}
			f.n++
			f.bytes += size
		}
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *Feed) evictOldest() {
	old := &f.ring[f.first]
	f.base = old.Index
	f.bytes -= feedBatchBytes(old.Changes)
	*old = FeedBatch{}
	f.first = (f.first + 1) % FeedBatchesMax
	f.n--
}

func feedBatchBytes(changes []SeatChange) int {
	size := 64 + len(changes)*feedChangeBytes
	last := ""
	for i := range changes {
		if changes[i].Event != last {
			last = changes[i].Event
			size += len(last)
		}
	}
	return size
}

// reset forgets every change: after a restore, what came before is
// another history.
func (f *Feed) reset(applied uint64, nowMs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n > 0 {
		f.evictOldest()
	}
	f.base, f.head, f.now = applied, applied, nowMs
	close(f.wake)
	f.wake = make(chan struct{})
}

// FeedRead is the answer to Feed.Since.
type FeedRead struct {
	// Batches holds, in order, the batches after the reader's index that
	// changed seats of its event, each with only that event's changes.
	Batches []FeedBatch
	// Head is the applied index the answer is complete up to: the reader
	// continues from it.
	Head  uint64
	NowMs int64
	// Reset: changes after the reader's index are no longer known; reload
	// the seat map and follow from its index.
	Reset bool
	// Wake is closed when a batch after Head is published.
	Wake <-chan struct{}
}

// Since returns the changes to event's seats after index from (the last
// index the reader has seen), at most changesMax of them (then Head is the
// last batch returned, and the reader asks again at once).
func (f *Feed) Since(from uint64, event string, changesMax int) FeedRead {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := FeedRead{Head: f.head, NowMs: f.now, Wake: f.wake}
	if from < f.base || from > f.head {
		// Too old, or from a future this replica has not reached (another
		// node's index, or a history before a restore): reload.
		r.Reset = true
		return r
	}
	// The ring is in index order: find the first batch after from.
	i := sort.Search(f.n, func(i int) bool { return f.ring[(f.first+i)%FeedBatchesMax].Index > from })
	count := 0
	for ; i < f.n; i++ {
		b := &f.ring[(f.first+i)%FeedBatchesMax]
		var mine []SeatChange
		for _, c := range b.Changes {
			if c.Event == event {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			continue
		}
		if count > 0 && count+len(mine) > changesMax {
			r.Head, r.NowMs = r.Batches[len(r.Batches)-1].Index, r.Batches[len(r.Batches)-1].NowMs
			return r
		}
		r.Batches = append(r.Batches, FeedBatch{Index: b.Index, NowMs: b.NowMs, Changes: mine})
		count += len(mine)
	}
	return r
}

// Head is the applied index last published.
func (f *Feed) Head() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}
