package raftnode

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
)

// The SIGKILL tests run a node in a child process (this test binary again,
// told so by childDirEnv) so that it can be killed without any shutdown: no
// Close, no Pebble flush, no deferred anything.
//
// The child prints one line per event on stdout:
//
//	ADDR <raft addr>
//	ACK <hold id> <buyer> <seat>     after a hold was acknowledged to its caller
//	ERR ...                          after a hold failed
//	SNAPPED <index>                  right after a snapshot was taken
//
// and keeps writing holds until it is killed.
const (
	childDirEnv   = "RAFTNODE_CHILD_DIR"
	childAddrEnv  = "RAFTNODE_CHILD_ADDR"
	childRoundEnv = "RAFTNODE_CHILD_ROUND"
	childPeersEnv = "RAFTNODE_CHILD_PEERS" // id=raftaddr,... to add as voters

	crashEvent      = "crash-arena"
	crashRows       = 100
	crashPerRow     = 100
	crashSeatsRound = 5000 // seats each child may use, so children never collide
	crashWorkers    = 16
	crashAcksBefore = 300 // acknowledged holds before the kill
)

// child is a node running in a child process.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	sc     *bufio.Scanner
	stderr strings.Builder
	addr   string
	acked  []ackedHold
	failed []string
	other  []string
	killed bool
}

func startChild(t *testing.T, test string, env ...string) *child {
	t.Helper()
	c := &child{t: t, cmd: exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")}
	c.cmd.Env = append(os.Environ(), env...)
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	c.cmd.Stderr = &c.stderr
	c.sc = bufio.NewScanner(stdout)
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() {
		if !c.killed {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

// readUntil reads the child's lines until stop returns true for one; it
// fails the test if the child's output ends first.
func (c *child) readUntil(what string, stop func(fields []string) bool) {
	c.t.Helper()
	for c.sc.Scan() {
		f := strings.Fields(c.sc.Text())
		switch {
		case len(f) == 2 && f[0] == "ADDR":
			c.addr = f[1]
		case len(f) == 4 && f[0] == "ACK":
			c.acked = append(c.acked, ackedHold{id: f[1], buyer: f[2], seats: []string{f[3]}})
		case len(f) > 0 && f[0] == "ERR":
			c.failed = append(c.failed, c.sc.Text())
		default:
			c.other = append(c.other, c.sc.Text())
		}
		if stop(f) {
			return
		}
	}
	err := c.cmd.Wait()
	c.killed = true
	c.t.Fatalf("the child ended before %s: %v\nstdout:\n%s\nstderr:\n%s", what, err, strings.Join(c.other, "\n"), c.stderr.String())
}

// drain reads what a killed child wrote before it died.
func (c *child) drain() {
	c.t.Helper()
	for c.sc.Scan() {
		f := strings.Fields(c.sc.Text())
		switch {
		case len(f) == 4 && f[0] == "ACK":
			c.acked = append(c.acked, ackedHold{id: f[1], buyer: f[2], seats: []string{f[3]}})
		case len(f) > 0 && f[0] == "ERR":
			c.failed = append(c.failed, c.sc.Text())
		}
	}
	err := c.cmd.Wait()
	require.Error(c.t, err, "the child must have died of SIGKILL")
}

// TestSIGKILLAfterSnapshot: a single-node cluster in a child process writes
// holds, takes a snapshot, and is killed with SIGKILL right after it, while
// writes are still streaming in; a second child resumes from that data dir
// and is killed the same way. Raft replays only the log after its newest
// snapshot, so this checks that Pebble held (durably) everything up to
// that snapshot: every acknowledged hold must be there on restart.
func TestSIGKILLAfterSnapshot(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		snapshotChild(t, dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "n1")
	addr := "127.0.0.1:0"
	var acked []ackedHold
	for round := 0; round < 2; round++ {
		c := startChild(t, "TestSIGKILLAfterSnapshot", childDirEnv+"="+dir, childAddrEnv+"="+addr, childRoundEnv+"="+strconv.Itoa(round))
		c.readUntil("its snapshot", func(f []string) bool { return len(f) == 2 && f[0] == "SNAPPED" })
		require.NoError(t, c.cmd.Process.Kill()) // now: writes are still streaming in
		c.killed = true
		c.drain()
		require.GreaterOrEqual(t, len(c.acked), crashAcksBefore)
		require.Empty(t, c.failed, "a single healthy node refused holds")
		t.Logf("round %d: child killed after %d acknowledged holds", round, len(c.acked))
		addr = c.addr
		acked = append(acked, c.acked...)
	}

	cfg := testConfig("n1", dir, 1)
	cfg.RaftBind = addr
	rec := &logRecorder{}
	cfg.Logger = slog.New(rec)
	n, err := New(cfg)
	require.NoError(t, err)
	defer n.Close()
	s := n.Shard(0)
	waitFor(t, waitTimeout, "the restarted node leads its shard", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("state %s", s.rf().State())
		}
		return nil
	})
	// The barrier makes the node apply everything committed before the
	// kill, replaying the log after its newest snapshot.
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	require.NoError(t, s.ReadBarrier(ctx))
	checkOwnership(t, n, 0, crashEvent, acked)
	// Pebble was synced before each snapshot was reported taken, so it
	// covered the newest snapshot and the start did not need to load it.
	require.False(t, rec.contains(restoreOnStartMsg), "Pebble was behind the newest snapshot after SIGKILL")

	// And the node takes writes again.
	res, err := s.Propose(ctx, &fsm.Hold{Event: crashEvent, Buyer: "after", Seats: []string{nthSeat(2*crashSeatsRound, crashRows, crashPerRow)}})
	require.NoError(t, err)
	require.NoError(t, res.Err)
}

// snapshotChild is the child's side of TestSIGKILLAfterSnapshot.
func snapshotChild(t *testing.T, dir string) {
	round, err := strconv.Atoi(os.Getenv(childRoundEnv))
	require.NoError(t, err)
	n, say := startChildNode(t, dir, os.Getenv(childAddrEnv))
	s := n.Shard(0)
	createCrashEvent(t, s, round == 0)
	acks := writeHolds(s, round, say)
	waitFor(t, waitTimeout, "holds before the snapshot", func() error {
		if a := acks.Load(); a < crashAcksBefore {
			return fmt.Errorf("%d acknowledged", a)
		}
		return nil
	})
	require.NoError(t, s.Snapshot())
	say("SNAPPED %s", s.rf().Stats()["last_snapshot_index"])
	select {} // write on until killed
}

// TestSIGKILLLeader kills the leader of a 3-node cluster with SIGKILL in the
// middle of a stream of holds. The leader runs in a child process, its two
// followers in this one. Every hold the dead leader acknowledged is on the
// survivors, which elect a leader and take writes again within 3s; the
// killed node, restarted from its data dir on the same port, converges.
func TestSIGKILLLeader(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		leaderChild(t, dir)
		return
	}
	c := &cluster{tb: t, shards: 1}
	var peers []string
	for _, id := range []string{"n2", "n3"} {
		c.addMember(id, nil)
		n := c.start(id)
		peers = append(peers, id+"="+n.Self().RaftAddr)
	}
	n1 := c.addMember("n1", nil)
	ch := startChild(t, "TestSIGKILLLeader", childDirEnv+"="+n1.cfg.DataDir, childAddrEnv+"=127.0.0.1:0",
		childRoundEnv+"=0", childPeersEnv+"="+strings.Join(peers, ","))
	ch.readUntil("enough holds", func([]string) bool { return len(ch.acked) >= crashAcksBefore })
	require.NoError(t, ch.cmd.Process.Kill())
	killedAt := time.Now()
	ch.killed = true
	ch.drain()
	require.Empty(t, ch.failed, "a healthy cluster refused holds")
	t.Logf("leader killed after %d acknowledged holds", len(ch.acked))

	// The survivors take writes again. Each attempt takes a fresh seat: an
	// attempt whose outcome is unknown may still commit.
	var acked []ackedHold
	var recovered time.Duration
	for seat := 2 * crashSeatsRound; recovered == 0; seat++ {
		require.Less(t, time.Since(killedAt), waitTimeout, "no write succeeded after the leader's death")
		var leader *Node
		for _, n := range c.live() {
			if n.Shard(0).IsLeader() {
				leader = n
			}
		}
		if leader == nil {
			time.Sleep(pollInterval)
			continue
		}
		h := &fsm.Hold{Event: crashEvent, Buyer: fmt.Sprintf("after-%d", seat), Seats: []string{nthSeat(seat, crashRows, crashPerRow)}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := leader.Shard(0).Propose(ctx, h)
		cancel()
		if err != nil {
			require.True(t, retryable(err), "%v", err)
			continue
		}
		require.NoError(t, res.Err)
		recovered = time.Since(killedAt)
		acked = append(acked, ackedHold{id: res.Hold.ID, buyer: h.Buyer, seats: h.Seats})
	}
	t.Logf("first write on the new leader %v after SIGKILL", recovered)
	require.Less(t, recovered, 3*time.Second, "writes must succeed again within 3s of the leader's death")

	acked = append(acked, ch.acked...)
	c.waitSame(0)
	for _, n := range c.live() {
		checkOwnership(t, n, 0, crashEvent, acked)
	}

	// The killed node comes back on its port from its data dir.
	n1.cfg.RaftBind = ch.addr
	c.start("n1")
	c.waitSame(0)
	checkOwnership(t, c.node("n1"), 0, crashEvent, acked)
}

// leaderChild is the child's side of TestSIGKILLLeader: it founds the
// cluster, adds the parent's nodes as voters, and writes.
func leaderChild(t *testing.T, dir string) {
	n, say := startChildNode(t, dir, os.Getenv(childAddrEnv))
	s := n.Shard(0)
	for _, p := range strings.Split(os.Getenv(childPeersEnv), ",") {
		id, addr, ok := strings.Cut(p, "=")
		require.True(t, ok, "peer %q", p)
		waitFor(t, waitTimeout, "adding "+id, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
			defer cancel()
			return s.AddMember(ctx, boxoffice.Node{ID: id, RaftAddr: addr, HTTPAddr: "127.0.0.1:1"})
		})
	}
	createCrashEvent(t, s, true)
	writeHolds(s, 0, say)
	select {} // write on until killed
}

// startChildNode starts the child's node, founding a single-node cluster
// on an empty data dir, and waits until it leads.
func startChildNode(t *testing.T, dir, addr string) (*Node, func(string, ...any)) {
	// Never outlive a parent that failed to kill us.
	time.AfterFunc(2*time.Minute, func() { os.Exit(3) })
	cfg := testConfig("n1", dir, 1)
	cfg.Bootstrap = true // ignored once the data dir has state
	cfg.RaftBind = addr
	cfg.TrailingLogs = 16
	n, err := New(cfg)
	require.NoError(t, err)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("ADDR %s", n.Self().RaftAddr)
	waitFor(t, waitTimeout, "leadership", func() error {
		if !n.Shard(0).IsLeader() {
			return fmt.Errorf("state %s", n.Shard(0).rf().State())
		}
		return nil
	})
	return n, say
}

func createCrashEvent(t *testing.T, s *Shard, fresh bool) {
	ev := testEvent(crashEvent, crashRows, crashPerRow)
	ev.Limits.HoldTTLSeconds = boxoffice.HoldTTLMax
	res, err := s.Propose(context.Background(), &fsm.CreateEvent{Event: ev})
	require.NoError(t, err)
	if fresh {
		require.NoError(t, res.Err)
	} else {
		require.Equal(t, boxoffice.CodeEventExists, boxoffice.CodeOf(res.Err))
	}
}

// writeHolds starts crashWorkers goroutines that hold one fresh seat after
// another (from the round's range) for a fresh buyer and report each
// outcome; it returns the count of acknowledged holds.
func writeHolds(s *Shard, round int, say func(string, ...any)) *atomic.Int64 {
	var acks atomic.Int64
	for w := 0; w < crashWorkers; w++ {
		go func() {
			for k := 0; ; k++ {
				seat := w + k*crashWorkers
				if seat >= crashSeatsRound {
					return
				}
				seatID := nthSeat(round*crashSeatsRound+seat, crashRows, crashPerRow)
				buyer := fmt.Sprintf("r%d-w%d-%d", round, w, k)
				res, err := s.Propose(context.Background(), &fsm.Hold{Event: crashEvent, Buyer: buyer, Seats: []string{seatID}})
				if err != nil || res.Err != nil {
					say("ERR %v %v", err, res.Err)
					continue
				}
				say("ACK %s %s %s", res.Hold.ID, buyer, seatID)
				acks.Add(1)
			}
		}()
	}
	return &acks
}
