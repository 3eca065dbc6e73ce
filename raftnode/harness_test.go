package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
)

// An in-process cluster harness: N nodes in one test process, each on its
// own loopback Raft port and temporary data dir, with fsync on (the
// default; never turned off here). A node can be stopped (Close) and
// restarted from its data dir on the same port, as a restarted process
// would be.
//
// Set RAFTNODE_TEST_LOG=1 to see hashicorp/raft's own log on stderr.

// Timings for tests: elections in well under a second, yet loose enough for
// the race detector on a loaded 2-core machine.
const (
	testHeartbeatTimeout   = 300 * time.Millisecond
	testElectionTimeout    = 300 * time.Millisecond
	testLeaderLeaseTimeout = 150 * time.Millisecond

	// waitTimeout bounds every wait of the harness: elections, joins,
	// convergence. Generous because -race on 2 cores is slow; a healthy
	// run takes a fraction of it.
	waitTimeout = 30 * time.Second
	// proposeTimeout bounds one proposal attempt.
	proposeTimeout = 5 * time.Second
	// pollInterval is how often waits look again.
	pollInterval = 10 * time.Millisecond
)

// testConfig is a node config with test timings and no rebalancing.
func testConfig(id, dir string, shards int) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.DataDir = dir
	cfg.RaftBind = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:1" // never dialled: no HTTP in these tests
	cfg.Shards = shards
	cfg.HeartbeatTimeout = testHeartbeatTimeout
	cfg.ElectionTimeout = testElectionTimeout
	cfg.LeaderLeaseTimeout = testLeaderLeaseTimeout
	cfg.RebalanceInterval = 0
	if os.Getenv("RAFTNODE_TEST_LOG") != "" {
		cfg.RaftLogOutput = prefixWriter{prefix: id + " ", w: os.Stderr}
		cfg.RaftLogLevel = "debug"
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// member is one node of a test cluster, running or stopped.
type member struct {
	id      string
	cfg     Config
	node    *Node // nil while stopped
	started bool  // once: its cleanup is registered
}

type cluster struct {
	tb     testing.TB
	shards int

	mu      sync.Mutex
	members []*member
}

// newCluster starts n nodes: n1 bootstraps, the others join every shard.
// mutate, if not nil, adjusts every node's config.
func newCluster(tb testing.TB, n, shards int, mutate func(*Config)) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, shards: shards}
	for i := 1; i <= n; i++ {
		m := c.addMember(fmt.Sprintf("n%d", i), mutate)
		if i == 1 {
			m.cfg.Bootstrap = true
			n := c.start(m.id)
			// The founder's addresses are replicated by its own leader
			// duties; the others' by AddMember. Wait for them, so every
			// replica can route to every member from the start.
			for s := 0; s < shards; s++ {
				c.leader(s)
				c.waitFor(fmt.Sprintf("%s's addresses in shard %d", m.id, s), func() error {
					if got, ok, err := n.Shard(s).Store().Node(m.id); err != nil || !ok || got != n.Self() {
						return fmt.Errorf("record %+v (ok %v, err %v)", got, ok, err)
					}
					return nil
				})
			}
			continue
		}
		c.join(m.id)
	}
	return c
}

// addMember creates a member's config and data dir without starting it.
func (c *cluster) addMember(id string, mutate func(*Config)) *member {
	cfg := testConfig(id, filepath.Join(c.tb.TempDir(), id), c.shards)
	if mutate != nil {
		mutate(&cfg)
	}
	m := &member{id: id, cfg: cfg}
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	return m
}

func (c *cluster) member(id string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.id == id {
			return m
		}
	}
	c.tb.Fatalf("no member %q", id)
	return nil
}

// node returns a running member's node.
func (c *cluster) node(id string) *Node {
	m := c.member(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotNil(c.tb, m.node, "node %s is stopped", id)
	return m.node
}

// live returns the running nodes in id order.
func (c *cluster) live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m.node)
		}
	}
	return out
}

// start starts (or restarts) a member from its data dir. After the first
// start the member keeps its Raft port, as a restarted process would.
func (c *cluster) start(id string) *Node {
	c.tb.Helper()
	m := c.member(id)
	c.mu.Lock()
	running := m.node != nil
	c.mu.Unlock()
	require.False(c.tb, running, "node %s is running", id)
	n, err := New(m.cfg)
	require.NoError(c.tb, err, "start node %s", id)
	c.mu.Lock()
	if m.cfg.RaftBind == "127.0.0.1:0" {
		m.cfg.RaftBind = n.Self().RaftAddr
	}
	if !m.started {
		m.started = true
		c.tb.Cleanup(func() { c.stopIfRunning(m) })
	}
	m.node = n
	c.mu.Unlock()
	require.Equal(c.tb, m.cfg.RaftBind, n.Self().RaftAddr, "node %s must keep its raft address", id)
	return n
}

// stop closes a member's node, as a clean shutdown would.
func (c *cluster) stop(id string) {
	c.tb.Helper()
	m := c.member(id)
	c.mu.Lock()
	n := m.node
	m.node = nil
	c.mu.Unlock()
	require.NotNil(c.tb, n, "node %s is not running", id)
	require.NoError(c.tb, n.Close(), "close node %s", id)
}

func (c *cluster) stopIfRunning(m *member) {
	c.mu.Lock()
	n := m.node
	m.node = nil
	c.mu.Unlock()
	if n != nil {
		if err := n.Close(); err != nil {
			c.tb.Errorf("close node %s: %v", m.id, err)
		}
	}
}

// join starts a member and adds it to every shard through the shard's
// leader, then waits until it has caught up with every shard.
func (c *cluster) join(id string) *Node {
	c.tb.Helper()
	n := c.start(id)
	for s := 0; s < c.shards; s++ {
		c.addToShard(s, n.Self())
	}
	for s := 0; s < c.shards; s++ {
		c.waitSame(s)
	}
	return n
}

// addToShard calls AddMember on the shard's leader, retrying while the
// leadership moves or the outcome is unknown (adding is idempotent).
func (c *cluster) addToShard(shard int, self boxoffice.Node) {
	c.tb.Helper()
	c.retryOnLeader(shard, fmt.Sprintf("add %s to shard %d", self.ID, shard), func(ctx context.Context, s *Shard) error {
		return s.AddMember(ctx, self)
	})
}

// removeFromShard calls RemoveMember on the shard's leader; a leader that
// is the node being removed first hands its leadership to another voter.
func (c *cluster) removeFromShard(shard int, id string) {
	c.tb.Helper()
	c.retryOnLeader(shard, fmt.Sprintf("remove %s from shard %d", id, shard), func(ctx context.Context, s *Shard) error {
		if s.node.ID() == id {
			if err := s.TransferLeadership(""); err != nil {
				return err
			}
			return boxoffice.Errorf(boxoffice.CodeNotLeader, "handed leadership away")
		}
		return s.RemoveMember(ctx, id)
	})
}

// retryOnLeader runs op on the shard's current leader until it succeeds,
// retrying errors that mean "try again" and failing on any other.
func (c *cluster) retryOnLeader(shard int, what string, op func(ctx context.Context, s *Shard) error) {
	c.tb.Helper()
	var last error
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		s := c.leader(shard).Shard(shard)
		ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
		last = op(ctx, s)
		cancel()
		if last == nil {
			return
		}
		if !retryable(last) {
			c.tb.Fatalf("%s: %v", what, last)
		}
		time.Sleep(pollInterval)
	}
	c.tb.Fatalf("%s: still failing after %v: %v", what, waitTimeout, last)
}

// retryable reports whether an error means the operation may be tried again
// on the (possibly new) leader.
func retryable(err error) bool {
	switch boxoffice.CodeOf(err) {
	case boxoffice.CodeNotLeader, boxoffice.CodeUnavailable, boxoffice.CodeTimeout:
		return true
	}
	return false
}

// leader waits until some running node leads the shard and returns it. If
// two nodes claim it (an old leader that has not noticed yet), the one with
// the higher term wins.
func (c *cluster) leader(shard int) *Node {
	c.tb.Helper()
	var leader *Node
	c.waitFor(fmt.Sprintf("a leader of shard %d", shard), func() error {
		leader = nil
		var term uint64
		for _, n := range c.live() {
			s := n.Shard(shard)
			if t := s.rf().CurrentTerm(); s.IsLeader() && t >= term {
				leader, term = n, t
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader among %v", nodeIDs(c.live()))
		}
		return nil
	})
	return leader
}

// propose proposes c on the shard's leader, retrying only while the
// proposal is refused with not_leader_retry (then it was never appended, so
// a retry cannot apply it twice). Any other error fails the test.
func (c *cluster) propose(shard int, cmd fsm.Command) fsm.Result {
	c.tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := c.leader(shard)
		ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
		res, err := n.Shard(shard).Propose(ctx, cmd)
		cancel()
		if err == nil {
			return res
		}
		if boxoffice.CodeOf(err) != boxoffice.CodeNotLeader || time.Now().After(deadline) {
			c.tb.Fatalf("propose %T to shard %d on %s: %v", cmd, shard, n.ID(), err)
		}
		time.Sleep(pollInterval)
	}
}

// proposeOK proposes and requires that the state machine accepted it.
func (c *cluster) proposeOK(shard int, cmd fsm.Command) fsm.Result {
	c.tb.Helper()
	res := c.propose(shard, cmd)
	require.NoError(c.tb, res.Err, "%T %+v rejected", cmd, cmd)
	return res
}

// proposeAll proposes cmds from `workers` goroutines and returns the results
// in the order of cmds.
func (c *cluster) proposeAll(shard int, cmds []fsm.Command, workers int) []fsm.Result {
	c.tb.Helper()
	results := make([]fsm.Result, len(cmds))
	errs := make(chan error, workers)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res, err := c.tryPropose(shard, cmds[i])
				if err != nil {
					errs <- err
					for range next { // drain, so the feeder does not block
					}
					return
				}
				results[i] = res
			}
		}()
	}
	for i := range cmds {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		c.tb.Fatalf("proposeAll: %v", err)
	}
	return results
}

// tryPropose is propose for goroutines other than the test's: it returns
// the error instead of failing the test.
func (c *cluster) tryPropose(shard int, cmd fsm.Command) (fsm.Result, error) {
	deadline := time.Now().Add(waitTimeout)
	for {
		var leader *Node
		for _, n := range c.live() {
			if n.Shard(shard).IsLeader() {
				leader = n
			}
		}
		if leader != nil {
			ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
			res, err := leader.Shard(shard).Propose(ctx, cmd)
			cancel()
			if err == nil {
				return res, nil
			}
			if boxoffice.CodeOf(err) != boxoffice.CodeNotLeader {
				return res, fmt.Errorf("propose %T to shard %d on %s: %w", cmd, shard, leader.ID(), err)
			}
		}
		if time.Now().After(deadline) {
			return fsm.Result{}, fmt.Errorf("propose %T to shard %d: no leader accepted it within %v", cmd, shard, waitTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// waitSame waits until every running replica of the shard has the same
// store hash. The hash covers the applied index (and the state machine's
// clock), so equal hashes mean the replicas applied the same log prefix and
// hold identical state. It returns the common hash.
func (c *cluster) waitSame(shard int) [32]byte {
	c.tb.Helper()
	var sum [32]byte
	c.waitFor(fmt.Sprintf("identical replicas of shard %d", shard), func() error {
		nodes := c.live()
		var desc []string
		same := true
		for i, n := range nodes {
			st := n.Shard(shard).Store()
			h, err := st.Hash()
			if err != nil {
				return fmt.Errorf("hash on %s: %w", n.ID(), err)
			}
			desc = append(desc, fmt.Sprintf("%s applied=%d hash=%x", n.ID(), st.AppliedIndex(), h[:6]))
			if i == 0 {
				sum = h
			} else if h != sum {
				same = false
			}
		}
		if !same {
			return fmt.Errorf("replicas differ: %s", strings.Join(desc, "; "))
		}
		return nil
	})
	return sum
}

// waitFor polls cond until it returns nil, failing the test with cond's last
// error after waitTimeout.
func (c *cluster) waitFor(what string, cond func() error) {
	c.tb.Helper()
	waitFor(c.tb, waitTimeout, what, cond)
}

func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(pollInterval)
	}
}

func nodeIDs(nodes []*Node) []string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID()
	}
	return ids
}

// raftStat reads one of hashicorp/raft's numeric stats of a shard.
func raftStat(tb testing.TB, s *Shard, key string) uint64 {
	tb.Helper()
	v, err := strconv.ParseUint(s.rf().Stats()[key], 10, 64)
	require.NoError(tb, err, "raft stat %q", key)
	return v
}

// eventOnShard returns an event id with the given prefix that ShardOf puts
// on the shard (the first of prefix-0, prefix-1, ... that does).
func eventOnShard(prefix string, shard, shards int) string {
	for i := 0; ; i++ {
		id := prefix + "-" + strconv.Itoa(i)
		if ShardOf(id, shards) == shard {
			return id
		}
	}
}

// testEvent is an event of two sections of rows×perRow seats each: A
// (category floor) and B (category balcony).
func testEvent(id string, rows, perRow int) boxoffice.Event {
	return boxoffice.Event{
		ID:       id,
		Name:     "Test event " + id,
		Type:     "concert",
		Location: "Berlin",
		Categories: []boxoffice.Category{
			{ID: "floor", Name: "Floor", PriceCents: 9900},
			{ID: "balcony", Name: "Balcony", PriceCents: 4900},
		},
		Venue: boxoffice.Venue{Sections: []boxoffice.Section{
			{ID: "A", Category: "floor", Rows: rows, SeatsPerRow: perRow},
			{ID: "B", Category: "balcony", Rows: rows, SeatsPerRow: perRow},
		}},
		Limits: boxoffice.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 600},
	}
}

// nthSeat is the id of seat n (from 0) of a testEvent(_, rows, perRow).
func nthSeat(n, rows, perRow int) string {
	section := "A"
	if n >= rows*perRow {
		section = "B"
		n -= rows * perRow
	}
	return fmt.Sprintf("%s-%d-%d", section, n/perRow+1, n%perRow+1)
}

// ackedHold is a hold whose proposal was acknowledged to its caller.
type ackedHold struct {
	id    string
	buyer string
	seats []string
	order string // the order it became, if it was purchased
}

// checkOwnership verifies, on one replica, that every acknowledged hold is
// present with its seats owned by it (or by its order), and that no seat is
// claimed by two holds: every seat that a hold owns in the seat map is a
// seat of that hold, and every seat of every owning hold points back to
// it, so the seat counts add up exactly.
func checkOwnership(tb testing.TB, n *Node, shard int, event string, acked []ackedHold) {
	tb.Helper()
	st := n.Shard(shard).Store()
	seats, err := st.Seats(event, fsm.SeatFilter{})
	require.NoError(tb, err, "seats of %s on %s", event, n.ID())
	owner := make(map[string]string, len(seats))
	for _, s := range seats {
		switch s.State {
		case boxoffice.SeatHeld:
			owner[s.ID] = s.Hold
		case boxoffice.SeatSold:
			owner[s.ID] = s.Order
		}
	}
	for _, a := range acked {
		h, err := st.Hold(a.id)
		require.NoError(tb, err, "acknowledged hold %s missing on %s", a.id, n.ID())
		require.Equal(tb, a.buyer, h.Buyer, "hold %s on %s", a.id, n.ID())
		require.Equal(tb, a.seats, h.Seats, "hold %s on %s", a.id, n.ID())
		want := a.id
		if a.order != "" {
			want = a.order
			o, err := st.Order(a.order)
			require.NoError(tb, err, "acknowledged order %s missing on %s", a.order, n.ID())
			require.Equal(tb, boxoffice.OrderPaid, o.State)
			require.Equal(tb, a.seats, o.Seats)
			require.Equal(tb, boxoffice.HoldPurchased, h.State)
		} else {
			require.Equal(tb, boxoffice.HoldActive, h.State, "hold %s on %s", a.id, n.ID())
		}
		for _, seat := range a.seats {
			require.Equal(tb, want, owner[seat], "owner of seat %s (acknowledged in %s) on %s", seat, a.id, n.ID())
		}
	}
	// Every owner's own record claims exactly the seats that point to it.
	claimed := make(map[string][]string)
	for seat, o := range owner {
		claimed[o] = append(claimed[o], seat)
	}
	total := 0
	for o, got := range claimed {
		var want []string
		if strings.HasPrefix(o, "h_") {
			h, err := st.Hold(o)
			require.NoError(tb, err, "seat owner %s on %s", o, n.ID())
			require.Equal(tb, boxoffice.HoldActive, h.State, "hold %s owns seats but is %s", o, h.State)
			want = h.Seats
		} else {
			ord, err := st.Order(o)
			require.NoError(tb, err, "seat owner %s on %s", o, n.ID())
			want = ord.Seats
		}
		require.ElementsMatch(tb, want, got, "seats owned by %s on %s", o, n.ID())
		total += len(want)
	}
	require.Equal(tb, len(owner), total, "taken seats on %s", n.ID())
}

// snapshotsOnDisk lists the snapshots a shard keeps in its data dir.
func snapshotsOnDisk(tb testing.TB, dataDir string, shard int) []*raft.SnapshotMeta {
	tb.Helper()
	store, err := raft.NewFileSnapshotStore(filepath.Join(dataDir, fmt.Sprintf("shard-%d", shard)), 1<<10, io.Discard)
	require.NoError(tb, err)
	metas, err := store.List()
	require.NoError(tb, err)
	return metas
}

// snapshotNow takes a snapshot of the shard on this node. Nothing new to
// snapshot is fine: a periodic snapshot already covers the latest entry.
func snapshotNow(tb testing.TB, s *Shard) {
	tb.Helper()
	if err := s.Snapshot(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		tb.Fatalf("snapshot shard %d on %s: %v", s.ID(), s.node.ID(), err)
	}
}

// logRecorder is a slog handler that keeps the messages it is given, so a
// test can tell which path a node took.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

// contains reports whether a message containing s was logged.
func (r *logRecorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.msgs, func(m string) bool { return strings.Contains(m, s) })
}

// restoreOnStartMsg is what a shard logs when Pebble is behind the newest
// Raft snapshot at start and the snapshot must be loaded again.
const restoreOnStartMsg = "pebble is behind the newest raft snapshot"
