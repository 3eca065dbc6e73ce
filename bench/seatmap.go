package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"boxoffice"
	"boxoffice/client"
)

// Snapshot is one fetch of the event's free seats, shared by every user of
// the process. It is never modified once published.
type Snapshot struct {
	// Version counts the snapshots of this run, from 1.
	Version uint64
	// Index is the shard's applied index the map reflects.
	Index uint64
	// FetchedAt is when the fetch started: the map is at least this old.
	FetchedAt time.Time
	// Free holds the free seats' indices in layout order, ascending.
	Free []int32
}

// seatCache keeps the latest seat map. One goroutine (run) fetches it at
// most once per maxAge; users read it without locks and wait for a newer
// one when theirs is used up. 256 users each fetching a 100,000-seat map
// would measure the bench, not the on-sale.
type seatCache struct {
	sys    System
	event  string
	layout *boxoffice.Layout
	maxAge time.Duration
	rec    *recorder
	// onEmpty is called (from run) when a map has no free seat: it decides
	// whether the event is sold out.
	onEmpty func(ctx context.Context)

	cur     atomic.Pointer[Snapshot]
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every publish
	fetches atomic.Int64
	fails   atomic.Int64
	// ageMax is the oldest a map got before a newer one replaced it: from
	// the start of its fetch to the end of the next one (ns).
	ageMax atomic.Int64
}

func newSeatCache(sys System, event string, layout *boxoffice.Layout, maxAge time.Duration, rec *recorder) *seatCache {
	return &seatCache{sys: sys, event: event, layout: layout, maxAge: maxAge, rec: rec, changed: make(chan struct{})}
}

// fetch reads the free seats once and publishes them. strong asks for a
// linearizable read: the first map must show the event the bench just
// created, which a lagging follower may not have applied yet.
func (c *seatCache) fetch(ctx context.Context, strong bool) error {
	c.fetches.Add(1)
	start := time.Now()
	m, err := c.sys.SeatMap(ctx, c.event, client.SeatQuery{Status: client.SeatFree, Strong: strong})
	c.rec.observe(opSeatMap, time.Since(start))
	if err != nil {
		c.fails.Add(1)
		return err
	}
	free := make([]int32, 0, len(m.Seats))
	for _, s := range m.Seats {
		idx, ok := c.layout.Index(s.ID)
		if !ok {
			c.fails.Add(1)
			return fmt.Errorf("seat map of %s: seat %q is not in the event's layout", c.event, s.ID)
		}
		free = append(free, int32(idx))
	}
	// The server answers in layout order; the picker relies on it.
	if !slices.IsSorted(free) {
		slices.Sort(free)
	}
	prev := c.cur.Load()
	snap := &Snapshot{Index: m.Index, FetchedAt: start, Free: free, Version: 1}
	if prev != nil {
		snap.Version = prev.Version + 1
		if age := int64(time.Since(prev.FetchedAt)); age > c.ageMax.Load() {
			c.ageMax.Store(age) // one writer: run
		}
	}
	c.cur.Store(snap)
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// run refreshes the map until stop is closed or ctx is done, so that a
// map is replaced by the time it is maxAge old: a map is as old as the
// start of its fetch, and is replaced at the end of the next fetch, so the
// next fetch starts maxAge − 2 × (the last fetch's duration) after the last
// one ended (at once when fetches take over maxAge/2: then the maps get
// older than maxAge, and the report says by how much).
func (c *seatCache) run(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTimer(c.maxAge)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		start := time.Now()
		err := c.fetch(ctx, false)
		t.Reset(max(0, c.maxAge-2*time.Since(start)))
		if err == nil && c.onEmpty != nil {
			if s := c.cur.Load(); len(s.Free) == 0 {
				c.onEmpty(ctx)
			}
		}
	}
}

// Current returns the latest snapshot (nil before the first fetch).
func (c *seatCache) Current() *Snapshot { return c.cur.Load() }

// WaitNewer returns the first snapshot newer than version v, or nil when
// stop is closed or ctx is done first.
func (c *seatCache) WaitNewer(ctx context.Context, stop <-chan struct{}, v uint64) *Snapshot {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if s := c.cur.Load(); s != nil && s.Version > v {
			return s
		}
		select {
		case <-ch:
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
