package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"boxoffice"
	"boxoffice/client"
)

// procHandle is a server process the bench started (an etcd member, a
// PostgreSQL postmaster), in its own process group so that a Ctrl-C
// reaches the bench only, which stops its servers itself once it has read
// their end state.
type procHandle struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited
	err  error         // its exit, once done
}

// startProc starts bin with args, its output appended to logPath; cred,
// when set, runs it as another user (PostgreSQL refuses to run as root).
func startProc(bin string, args []string, logPath string, cred *syscall.Credential) (*procHandle, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	// Its working dir is its own temp dir: the bench's may not be readable
	// by the user it runs as.
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &procHandle{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *procHandle) pid() int { return p.cmd.Process.Pid }

func (p *procHandle) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopProcs sends SIGTERM to every process, and SIGKILL to those still
// running after grace; it returns when all have exited.
func stopProcs(procs []*procHandle, grace time.Duration) {
	stopProcsWith(procs, syscall.SIGTERM, grace)
}

func stopProcsWith(procs []*procHandle, sig syscall.Signal, grace time.Duration) {
	var wg sync.WaitGroup
	for _, p := range procs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.cmd.Process.Signal(sig)
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-p.done:
			case <-t.C:
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}()
	}
	wg.Wait()
}

func pidsOf(procs []*procHandle) []int {
	out := make([]int, len(procs))
	for i, p := range procs {
		out[i] = p.pid()
	}
	return out
}

// freeLoopbackAddr reserves a loopback port by listening and closing.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func logLine(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// layoutOf is the layout of ev's seats: the bench's seat numbering, and
// the peers' list of seats to create.
func layoutOf(ev *client.Event) *boxoffice.Layout {
	venue := boxoffice.Venue{}
	for _, s := range ev.Venue.Sections {
		venue.Sections = append(venue.Sections, boxoffice.Section{ID: s.ID, Category: s.Category, Rows: s.Rows, SeatsPerRow: s.SeatsPerRow})
	}
	return boxoffice.NewLayout(venue)
}

// parallel runs fn(ctx, i) for i in [0, n), k at a time, and returns the
// first error (the others are cut short by ctx).
func parallel(ctx context.Context, n, k int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(k, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}
