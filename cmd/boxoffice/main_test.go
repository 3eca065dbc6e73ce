package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// The test binary doubles as the boxoffice binary: run with
// BOXOFFICE_TEST_AS_MAIN=1 it is main itself, so these tests start real node
// processes (and `local` re-executes it for each node) without a separate
// build step.
func TestMain(m *testing.M) {
	if os.Getenv("BOXOFFICE_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func mainCmd(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "BOXOFFICE_TEST_AS_MAIN=1")
	return c
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeBlock finds n consecutive free loopback ports, as local uses them.
func freeBlock(t *testing.T, n int) int {
	for try := 0; try < 100; try++ {
		base := freePort(t)
		var lns []net.Listener
		ok := true
		for i := 0; i < n && ok; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if ok = err == nil; ok {
				lns = append(lns, ln)
			}
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no block of free ports")
	return 0
}

// TestLocalClusterRunsAndResumes is `make run` as a new user meets it: the
// local cluster starts, prints tokens and a curl line that works, stops
// cleanly on Ctrl-C, and a second run resumes with the data of the first.
func TestLocalClusterRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	httpPort := freeBlock(t, 3)
	raftPort := freeBlock(t, 3)
	for httpPort+3 > raftPort && raftPort+3 > httpPort {
		raftPort = freeBlock(t, 3)
	}
	args := []string{"local", "--data-dir", dir, "--http-port", fmt.Sprint(httpPort), "--raft-port", fmt.Sprint(raftPort), "--demo-seats", "5000"}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", httpPort+i) }

	run := func() (*exec.Cmd, string) {
		cmd := mainCmd(args...)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		var printed strings.Builder
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
			io.Copy(io.Discard, out)
		}()
		deadline := time.After(90 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "local exited early:\n%s", printed.String())
				printed.WriteString(l + "\n")
				if strings.Contains(l, "Ctrl-C stops the cluster") {
					go func() {
						for range lines {
						}
					}()
					return cmd, printed.String()
				}
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("local did not get ready:\n%s", printed.String())
			}
		}
	}
	stop := func(cmd *exec.Cmd) {
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "local exits cleanly on Ctrl-C")
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("local did not stop within 60s of Ctrl-C")
		}
		// Every node process is gone.
		for i := 1; i <= 3; i++ {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("n%d.pid", i)))
			require.NoError(t, err)
			var pid int
			fmt.Sscan(string(b), &pid)
			assert.Error(t, syscall.Kill(pid, 0), "node n%d (pid %d) still runs", i, pid)
		}
	}

	cmd, printed := run()
	assert.Contains(t, printed, "shard 0: leader n")
	buyer := regexp.MustCompile(`export BUYER=(\S+)`).FindStringSubmatch(printed)
	require.NotNil(t, buyer, printed)
	// The printed curl line's request, through the last node.
	code, body, _ := testcluster.DoHeader(addr(2), "POST", "/v1/events/demo-arena/holds", buyer[1], `{"seats":["A-1-1","A-1-2"]}`)
	require.Equal(t, 201, code, "%s", body)
	var hold struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &hold))
	code, body, _ = testcluster.DoHeader(addr(0), "GET", "/v1/events/demo-arena", "", nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"capacity":5000`)
	stop(cmd)

	// Again: the same cluster, with the hold.
	cmd, _ = run()
	code, body, _ = testcluster.DoHeader(addr(1), "GET", "/v1/events/demo-arena/seats?status=held&consistency=strong", "", nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), `"A-1-1"`)
	assert.Contains(t, string(body), `"A-1-2"`)
	stop(cmd)
}

// proc is a `boxoffice serve` process.
type proc struct {
	id, dir, http, raft string
	cmd                 *exec.Cmd
}

func (p *proc) start(t *testing.T, extra ...string) {
	args := append([]string{"serve", "--id", p.id, "--data-dir", p.dir, "--http-addr", p.http, "--raft-addr", p.raft,
		"--shards", "2", "--snapshot-threshold", "32", "--snapshot-interval", "200ms", "--log-level", "warn"}, extra...)
	p.cmd = mainCmd(args...)
	p.cmd.Env = append(p.cmd.Env, "BOXOFFICE_AUTH_SECRET="+string(testcluster.Secret))
	logf, err := os.OpenFile(p.dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
}

func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// TestSIGKILLAfterSnapshotLosesNothing kills every node of a 3-node cluster
// with SIGKILL, right after its shards took snapshots, and checks that every
// acknowledged hold survives the restart: Pebble's applied index is never
// behind the newest Raft snapshot, so Raft's replay from the snapshot is
// complete.
func TestSIGKILLAfterSnapshotLosesNothing(t *testing.T) {
	dir := t.TempDir()
	var procs []*proc
	for i := 1; i <= 3; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i), dir: filepath.Join(dir, fmt.Sprintf("n%d", i)),
			http: fmt.Sprintf("127.0.0.1:%d", freePort(t)), raft: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		procs = append(procs, p)
		if i == 1 {
			p.start(t, "--bootstrap")
		} else {
			p.start(t, "--join", procs[0].http)
		}
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill9()
		}
	})
	admin := testcluster.AdminToken()
	waitReady := func() {
		require.Eventually(t, func() bool {
			for _, p := range procs {
				code, body, _ := testcluster.DoHeader(p.http, "GET", "/v1/cluster", admin, nil)
				var cl struct{ Shards []struct{ Voters []string } }
				if code != 200 || json.Unmarshal(body, &cl) != nil || len(cl.Shards) != 2 {
					return false
				}
				for _, s := range cl.Shards {
					if len(s.Voters) != 3 {
						return false
					}
				}
				if code, _, _ := testcluster.DoHeader(p.http, "GET", "/readyz", "", nil); code != 200 {
					return false
				}
			}
			return true
		}, 60*time.Second, 100*time.Millisecond, "cluster not ready")
	}
	waitReady()
	org := testcluster.Token("org", httpapi.RoleOrganiser)
	code, body, _ := testcluster.DoHeader(procs[1].http, "POST", "/v1/events", org, testcluster.Event("kill-9", 4, 10, 10))
	require.Equal(t, 201, code, "%s", body)

	// Sequential holds, so that each is its own log entry and the shard's
	// log passes the snapshot threshold several times.
	acked := map[string][]string{}
	for i := 0; i < 120; i++ {
		seat := fmt.Sprintf("%c-%d-%d", 'A'+i/100, i%100/10+1, i%10+1)
		tok := testcluster.Token(fmt.Sprintf("b%d", i), httpapi.RoleBuyer)
		code, body, _ := testcluster.DoHeader(procs[i%3].http, "POST", "/v1/events/kill-9/holds", tok, `{"seats":["`+seat+`"]}`)
		require.Equal(t, 201, code, "%s", body)
		var h struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &h))
		acked[h.ID] = []string{seat}
	}
	// Every node has snapshots of the event's shard.
	require.Eventually(t, func() bool {
		for _, p := range procs {
			snaps, _ := filepath.Glob(filepath.Join(p.dir, "shard-*", "snapshots", "*", "state.bin"))
			if len(snaps) == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "no snapshots were taken")

	for _, p := range procs {
		p.kill9()
	}
	for _, p := range procs {
		p.start(t)
	}
	waitReady()
	for _, p := range procs {
		code, body, _ := testcluster.DoHeader(p.http, "GET", "/v1/events/kill-9/seats?status=held", "", nil)
		require.Equal(t, 200, code, "%s", body)
		var seats struct {
			Seats []struct{ ID string }
		}
		require.NoError(t, json.Unmarshal(body, &seats))
		// A follower may still be replaying: wait for its count, then check.
		require.Eventually(t, func() bool {
			_, body, _ := testcluster.DoHeader(p.http, "GET", "/v1/events/kill-9/seats?status=held", "", nil)
			seats.Seats = nil
			json.Unmarshal(body, &seats)
			return len(seats.Seats) == len(acked)
		}, 30*time.Second, 50*time.Millisecond, "node %s has %d held seats, want %d", p.id, len(seats.Seats), len(acked))
		for id, want := range acked {
			code, body, _ := testcluster.DoHeader(p.http, "GET", "/v1/holds/"+id, admin, nil)
			require.Equal(t, 200, code, "node %s hold %s: %s", p.id, id, body)
			var h struct{ Seats []string }
			require.NoError(t, json.Unmarshal(body, &h))
			assert.Equal(t, want, h.Seats)
		}
	}
}
