package fsm

import (
	"bytes"
	"errors"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// The applier's value cache. A hold reads the records of its seats and of
// its buyer, a purchase its hold: point reads that, through Pebble, cost
// more than the rest of the command (memtable and sstable seeks). The cache
// keeps the committed value of such keys — or that they are absent — in
// memory. It is only a cache: it holds exactly what Pebble holds, and
// dropping it changes nothing but speed.
//
// Only the applier touches it, on Raft's FSM goroutine (Restore runs there
// too), so it needs no lock. Writes of a batch are kept in the applier's
// pending map and reach the cache only once the batch is committed.

// kvCacheMax bounds the cached keys of one store; when full, the cache is
// emptied and refills from Pebble.
const kvCacheMax = 512 << 10

type cachedValue struct {
	v  []byte
	ok bool // false: the key is absent
}

type kvCache struct {
	m map[string]cachedValue
	// complete holds the key prefixes (one event's seats, one event's
	// buyers) loaded whole: a key under such a prefix that is not in m is
	// absent, with no Pebble read. Most seats of an on-sale are free and
	// most buyers new, so without it most reads would miss.
	complete map[string]bool
	// tooBig holds prefixes found too big to load whole; their keys are
	// read one by one.
	tooBig map[string]bool
}

// completePrefix returns the prefix a cacheable key is loaded under, or ""
// for keys that are cached one by one.
func completePrefix(k []byte) []byte {
	switch k[0] {
	case tagSeat:
		return k[:len(k)-4] // 's' event 0, then the seat index
	case tagBuyer:
		if i := bytes.IndexByte(k, 0); i > 0 {
			return k[:i+1] // 'b' event 0
		}
	}
	return nil
}

// cacheableKey reports whether the applier caches a key: seats, buyers and
// holds, the reads of the hot path, and queues (every hold reads its
// event's, which most events do not have).
func cacheableKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	switch k[0] {
	case tagSeat, tagBuyer, tagHold, tagQueue:
		return true
	}
	return false
}

func (c *kvCache) get(k []byte) (cachedValue, bool) {
	if v, ok := c.m[string(k)]; ok {
		return v, ok
	}
	if p := completePrefix(k); p != nil && c.complete[string(p)] {
		return cachedValue{}, true
	}
	return cachedValue{}, false
}

func (c *kvCache) put(k []byte, v cachedValue) {
	if c.m == nil || len(c.m) >= kvCacheMax {
		c.reset()
		c.m = make(map[string]cachedValue, 1024)
	}
	c.m[string(k)] = v
}

// load caches every committed key under prefix p, reading Pebble once in
// order, unless that would pass the cache's bound.
func (c *kvCache) load(db *pebble.DB, p []byte) error {
	if c.complete[string(p)] || c.tooBig[string(p)] {
		return nil
	}
	if c.m == nil {
		c.m = make(map[string]cachedValue, 1024)
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	loaded := make(map[string]cachedValue)
	for it.First(); it.Valid(); it.Next() {
		if len(c.m)+len(loaded) >= kvCacheMax {
			if c.tooBig == nil {
				c.tooBig = make(map[string]bool)
			}
			c.tooBig[string(p)] = true
			return it.Close()
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		loaded[string(it.Key())] = cachedValue{v: slices.Clone(v), ok: true}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	for k, v := range loaded {
		c.m[k] = v
	}
	if c.complete == nil {
		c.complete = make(map[string]bool)
	}
	c.complete[string(p)] = true
	return nil
}

// commit installs a committed batch's writes. (Map order does not matter:
// each is an independent put.)
func (c *kvCache) commit(pending map[string]cachedValue) {
	if len(c.m)+len(pending) > kvCacheMax {
		c.reset()
	}
	if c.m == nil {
		c.m = make(map[string]cachedValue, 1024)
	}
	for k, v := range pending {
		c.m[k] = v
	}
}

func (c *kvCache) reset() { c.m, c.complete, c.tooBig = nil, nil, nil }
