// Package fsm is the seat state machine: the commands of the replicated log,
// their deterministic application to a Pebble store, the key layout, the
// queries over local state, and snapshot and restore.
//
// The store is a pure function of the log. Nothing here reads a clock, draws
// a random number, iterates a map in an order that matters, or does I/O other
// than Pebble: time arrives stamped in each entry, and identifiers derive from
// the shard, the log index and the command's position in the entry.
package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"boxoffice"
)

// Config configures a Store.
type Config struct {
	// Dir is the Pebble directory. Restore swaps it with a sibling
	// directory, so its parent must be writable.
	Dir string
	// Shard is the id of the shard this store replicates; it is part of
	// every hold and order id, so that a node can route by id alone.
	Shard int
	// MemTableBytes is Pebble's memtable size.
	MemTableBytes uint64
	// CacheBytes is Pebble's block cache; 0 keeps Pebble's default (8 MiB).
	// Holds read seat records at random; a cache that fits an event's
	// taken seats keeps those reads off the disk.
	CacheBytes int64
	// FS is the filesystem of the store and of its restores; nil is the
	// operating system's. Tests and fuzz targets pass vfs.NewMem(), which
	// opens in about a millisecond where a directory on disk takes 30.
	FS vfs.FS
}

// DefaultConfig returns the defaults for everything but Dir and Shard.
func DefaultConfig() Config { return Config{MemTableBytes: 16 << 20, CacheBytes: 64 << 20} }

// Validate lists every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("fsm: Dir is required"))
	}
	if c.Shard < 0 || c.Shard > 1<<16 {
		errs = append(errs, fmt.Errorf("fsm: Shard %d out of range 0..65536", c.Shard))
	}
	if c.MemTableBytes < 1<<20 || c.MemTableBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("fsm: MemTableBytes %d out of range 1MiB..1GiB", c.MemTableBytes))
	}
	if c.CacheBytes != 0 && (c.CacheBytes < 1<<20 || c.CacheBytes > 64<<30) {
		errs = append(errs, fmt.Errorf("fsm: CacheBytes %d out of range 1MiB..64GiB (or 0)", c.CacheBytes))
	}
	return errors.Join(errs...)
}

// Store is one shard's state in Pebble. ApplyEntries and Restore are called
// from one goroutine (Raft's FSM goroutine); queries may run concurrently
// from any goroutine.
type Store struct {
	cfg Config

	// mu guards db against Restore swapping it under a query.
	mu sync.RWMutex
	db *pebble.DB

	applied atomic.Uint64 // highest log index whose effects are in db
	nowMs   atomic.Int64  // the state machine's clock: max of stamps seen

	events eventCache
	kv     kvCache // the applier's; see cache.go
	feed   *Feed   // seat changes of recent batches; see feed.go

	// snaps counts snapshots still open: Raft may be writing one out on its
	// snapshot goroutine while it asks the FSM goroutine to Restore another
	// (a follower receiving InstallSnapshot). Restore waits for them, since
	// Pebble cannot close under an open snapshot.
	snaps sync.WaitGroup
}

// Open opens (or creates) the store in cfg.Dir, finishing a restore that a
// crash interrupted.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if err := recoverSwap(cfg.FS, cfg.Dir); err != nil {
		return nil, err
	}
	db, err := openPebble(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, db: db}
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, err
	}
	s.feed = newFeed(s.applied.Load(), s.nowMs.Load())
	return s, nil
}

func openPebble(cfg Config) (*pebble.DB, error) {
	opts := &pebble.Options{
		MemTableSize:       cfg.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{},
		FS:                 cfg.FS,
	}
	// Bloom filters on every level: most point reads of a hold are for
	// seats that have no record (free seats), and a filter answers those
	// without reading a data block.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if cfg.CacheBytes > 0 {
		cache := pebble.NewCache(cfg.CacheBytes)
		defer cache.Unref() // Open takes its own reference
		opts.Cache = cache
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", cfg.Dir, err)
	}
	return db, nil
}

// quietLogger drops Pebble's informational chatter and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(f string, args ...any) { pebble.DefaultLogger.Errorf(f, args...) }
func (quietLogger) Fatalf(f string, args ...any) { pebble.DefaultLogger.Fatalf(f, args...) }

func (s *Store) loadMeta() error {
	v, closer, err := s.db.Get(keyApplied)
	if errors.Is(err, pebble.ErrNotFound) {
		s.applied.Store(0)
		s.nowMs.Store(0)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read applied index: %w", err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return fmt.Errorf("applied index value has %d bytes: %w", len(v), errMalformed)
	}
	s.applied.Store(binary.BigEndian.Uint64(v))
	s.nowMs.Store(int64(binary.BigEndian.Uint64(v[8:])))
	return nil
}

// Close closes Pebble. It does not sync: the Raft log is the source of truth.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// AppliedIndex is the highest log index whose effects are in the store.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// Feed is the shard's change feed: the seats each recent batch changed.
func (s *Store) Feed() *Feed { return s.feed }

// NowMs is the state machine's clock: the highest stamp it has applied.
func (s *Store) NowMs() int64 { return s.nowMs.Load() }

// Shard is the shard id this store replicates.
func (s *Store) Shard() int { return s.cfg.Shard }

// Sync makes every applied entry durable in Pebble. Raft calls it (through
// Snapshot) before it reports a snapshot taken, since on restart Raft
// replays only the entries after its newest snapshot.
func (s *Store) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync pebble: %w", err)
	}
	return nil
}

// Entry is one committed Raft log entry. Data is nil for entries that carry
// no commands (configuration changes, no-ops); they still advance the
// applied index.
type Entry struct {
	Index uint64
	Data  []byte
}

// Result is the outcome of one command. Err is a *boxoffice.Error when the
// command was rejected; a rejected command changed nothing.
type Result struct {
	Err     error
	Event   *boxoffice.Event
	Hold    *boxoffice.Hold
	Order   *boxoffice.Order
	Venue   *boxoffice.VenueChart
	Expired int
	Grant   *boxoffice.Grant
	// Queue, Place and Admitted are the waiting room's results.
	Queue    *boxoffice.Queue
	Place    *boxoffice.Place
	Admitted int
	// Replayed is set when an Idempotent command returned the stored
	// result of an earlier run instead of running.
	Replayed bool
}

// ApplyEntries applies committed entries in order and returns one result
// slice per entry (nil for an entry already applied or with no data). All
// effects and the new applied index go into ONE Pebble batch, so a restart
// neither skips nor re-applies an entry. An error means the log holds
// something this store cannot apply (an unknown version, a malformed
// entry, a failed write): the caller must halt rather than diverge.
func (s *Store) ApplyEntries(entries []Entry) ([][]Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, errClosed
	}
	a := applier{
		s:       s,
		b:       s.db.NewIndexedBatch(),
		nowMs:   s.nowMs.Load(),
		applied: s.applied.Load(),
		pending: make(map[string]cachedValue),
	}
	defer a.b.Close()
	results := make([][]Result, len(entries))
	for i, e := range entries {
		if e.Index <= a.applied {
			continue // already in Pebble: applied before a restart
		}
		a.applied = e.Index
		if e.Data == nil {
			continue
		}
		rs, err := a.applyEntry(e)
		if err != nil {
			return nil, fmt.Errorf("apply entry %d of shard %d: %w", e.Index, s.cfg.Shard, err)
		}
		results[i] = rs
	}
	if err := a.flushCounts(); err != nil {
		return nil, fmt.Errorf("report counters at index %d: %w", a.applied, err)
	}
	var meta [16]byte
	binary.BigEndian.PutUint64(meta[:], a.applied)
	binary.BigEndian.PutUint64(meta[8:], uint64(a.nowMs))
	if err := a.b.Set(keyApplied, meta[:], nil); err != nil {
		return nil, err
	}
	// No sync: the Raft log is fsynced and is the source of truth; Sync
	// runs before every snapshot.
	if err := a.b.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("commit batch at index %d: %w", a.applied, err)
	}
	s.applied.Store(a.applied)
	s.nowMs.Store(a.nowMs)
	s.events.commit(a.events)
	s.kv.commit(a.pending)
	// After the commit, so that a reader told of a change finds it in a
	// seat map it reloads.
	s.feed.publish(a.applied, a.nowMs, a.changes)
	return results, nil
}

// recoverSwap finishes or undoes a directory swap that Restore left when the
// process died: dir.restore is complete only once dir has been moved away.
func recoverSwap(fs vfs.FS, dir string) error {
	restoreDir, oldDir := dir+".restore", dir+".old"
	_, errDir := fs.Stat(dir)
	_, errRestore := fs.Stat(restoreDir)
	switch {
	case errDir == nil && errRestore == nil:
		// Crashed while writing the restore: the old store is intact.
		if err := fs.RemoveAll(restoreDir); err != nil {
			return err
		}
	case errors.Is(errDir, os.ErrNotExist) && errRestore == nil:
		// Crashed between the two renames: the restore is complete.
		if err := fs.Rename(restoreDir, dir); err != nil {
			return fmt.Errorf("finish restore: %w", err)
		}
	}
	return fs.RemoveAll(oldDir)
}

// Snapshot syncs Pebble and pins a consistent view of the store.
func (s *Store) Snapshot() (*Snapshot, error) {
	if err := s.Sync(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, errClosed
	}
	s.snaps.Add(1)
	return &Snapshot{snap: s.db.NewSnapshot(), applied: s.applied.Load(), done: s.snaps.Done}, nil
}

// Snapshot is a point-in-time view of a store that can be streamed.
type Snapshot struct {
	snap    *pebble.Snapshot
	applied uint64
	done    func()
	once    sync.Once
}

// AppliedIndex is the applied index the snapshot reflects.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// Close releases the snapshot.
func (sn *Snapshot) Close() error {
	var err error
	sn.once.Do(func() {
		err = sn.snap.Close()
		sn.done()
	})
	return err
}

// WriteTo streams the snapshot: a header, every key and value, and a
// trailer with a checksum.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	it, err := sn.snap.NewIter(nil)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	sw := newSnapWriter(w)
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return sw.n, err
		}
		if err := sw.record(it.Key(), v); err != nil {
			return sw.n, err
		}
	}
	if err := it.Error(); err != nil {
		return sw.n, err
	}
	return sw.n, sw.finish()
}

// Restore replaces the whole store with a stream written by
// Snapshot.WriteTo. It builds the new store in a sibling directory, syncs
// it, and swaps directories, so that a crash leaves either the old store or
// the new one, never a mix.
func (s *Store) Restore(r io.Reader) error {
	fs := s.cfg.FS
	restoreDir := s.cfg.Dir + ".restore"
	if err := fs.RemoveAll(restoreDir); err != nil {
		return err
	}
	tmpCfg := s.cfg
	tmpCfg.Dir = restoreDir
	db, err := openPebble(tmpCfg)
	if err != nil {
		return err
	}
	if err := readSnapshot(r, db); err != nil {
		db.Close()
		fs.RemoveAll(restoreDir)
		return fmt.Errorf("restore shard %d: %w", s.cfg.Shard, err)
	}
	if err := db.Close(); err != nil {
		return err
	}

	// Snapshots of the old store that Raft is still writing out must end
	// first. (They need nothing of the FSM goroutine we are on.)
	s.snaps.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.Close()
	s.db = nil
	if err != nil {
		return err
	}
	if err := fs.Rename(s.cfg.Dir, s.cfg.Dir+".old"); err != nil {
		return fmt.Errorf("restore: move old store: %w", err)
	}
	if err := fs.Rename(restoreDir, s.cfg.Dir); err != nil {
		return fmt.Errorf("restore: move new store: %w", err)
	}
	if err := syncDir(fs, fs.PathDir(s.cfg.Dir)); err != nil {
		return err
	}
	if err := fs.RemoveAll(s.cfg.Dir + ".old"); err != nil {
		return err
	}
	if s.db, err = openPebble(s.cfg); err != nil {
		return err
	}
	s.events.reset()
	s.kv.reset()
	if err := s.loadMeta(); err != nil {
		return err
	}
	s.feed.reset(s.applied.Load(), s.nowMs.Load())
	return nil
}

func syncDir(fs vfs.FS, dir string) error {
	f, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// eventCache keeps decoded events and their layouts, so that a hold does not
// decode its event each time. It is only a cache of what Pebble holds.
type eventCache struct {
	mu sync.RWMutex
	m  map[string]*eventInfo
}

type eventInfo struct {
	ev     *boxoffice.Event
	layout *boxoffice.Layout
}

func newEventInfo(ev *boxoffice.Event) *eventInfo {
	return &eventInfo{ev: ev, layout: boxoffice.NewLayout(ev.Venue)}
}

func (c *eventCache) get(id string) *eventInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[id]
}

func (c *eventCache) put(ei *eventInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*eventInfo)
	}
	c.m[ei.ev.ID] = ei
}

// commit installs the events a batch created or changed, once the batch is
// in Pebble. (Iteration order does not matter: each is one independent put.)
func (c *eventCache) commit(changed map[string]*eventInfo) {
	if len(changed) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*eventInfo)
	}
	for id, ei := range changed {
		c.m[id] = ei
	}
}

func (c *eventCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}
