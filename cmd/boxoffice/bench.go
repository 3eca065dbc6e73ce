package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"boxoffice/bench"
	"boxoffice/httpapi"
	"boxoffice/payment"
)

type benchFlags struct {
	system     string
	compare    bool
	pgPool     int
	target     string
	workload   string
	events     int
	seats      int
	users      int
	duration   time.Duration
	ramp       time.Duration
	jsonPath   string
	htmlPath   string
	token      string
	authSecret string
	seed       uint64
	hotFrac    float64
	hotShare   float64
	buyProb    float64
	maxPerBuy  int
	holdTTL    time.Duration
	mapMaxAge  time.Duration
	retries    int
	nodes      int
	shards     int
	serverPIDs []int
	keepData   bool
	spread     bool
	noProgress bool
	payLatency time.Duration
	// payLatencySet: --payment-latency was given (else serve's default).
	payLatencySet bool
	// The queue workload (benchqueue.go).
	joins, lookups int
}

func benchCmd() *cobra.Command {
	var f benchFlags
	d := bench.DefaultConfig()
	c := &cobra.Command{
		Use:   "bench",
		Short: "Run an on-sale against a cluster (or a local one it starts, or a peer) and check nothing was sold twice",
		Long: `Creates an event of --seats seats and lets --users virtual users buy it out:
each takes a seat map at most --seatmap-max-age old, picks 1–4 seats with a hot
spot, holds them, then buys (--buy-probability) or releases them; conflicts are
retried with another pick. The run ends when every seat is sold or after
--duration. Then it reads the end state back with strong reads and checks that
every sold seat belongs to exactly one acknowledged purchase; the exit status
is non-zero if not.

Without --target it starts its own cluster of --nodes 'boxoffice serve'
processes (fsync on) in a temp dir, and stops it at the end. With --target,
buyers are minted with the cluster's secret (--auth-secret or
BOXOFFICE_AUTH_SECRET), and the event is created with --token (organiser or
admin; BOXOFFICE_TOKEN) or a token minted with the secret.

--system etcd or postgres runs the same on-sale against a peer the bench
starts on loopback in a temp dir and stops at the end: a 3-member etcd
cluster (the etcd binary that 'make etcd' installs in $(go env GOPATH)/bin;
one transaction per write on the seat keys) or a PostgreSQL server (initdb
and postgres of the postgresql package; a transaction of conditional
UPDATEs per write), both with fsync on. Their purchases wait a simulated
card charge of the same distribution as boxoffice's simulated gateway
(--payment-latency; 0 for none). --compare runs boxoffice, etcd and
postgres one after another on the same workload and prints one table with
the ratios; --json then holds every system's result.`,
		Example: `  boxoffice bench --seats 100000 --users 256 --json bench.json --html bench.html
  boxoffice bench --system etcd --seats 20000
  boxoffice bench --compare --json compare.json
  boxoffice bench --workload rush --seats 20000 --duration 30s
  boxoffice bench --workload best-available --seats 20000 --users 128
  boxoffice bench --workload multi --events 4 --seats 20000
  boxoffice bench --workload queue --joins 1000000 --lookups 200000 --users 256 --duration 2m
  BOXOFFICE_AUTH_SECRET=... boxoffice bench --target http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.payLatencySet = cmd.Flags().Changed("payment-latency")
			return runBench(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.system, "system", bench.SystemBoxoffice, "the system under test: "+strings.Join(bench.Systems, ", "))
	fl.BoolVar(&f.compare, "compare", false, "run every system ("+strings.Join(bench.Systems, ", ")+") on the same workload, one after another, and print a table with the ratios")
	fl.IntVar(&f.pgPool, "pg-pool", bench.DefaultPostgresConfig().PoolConns, "postgres: connections in the pool the users share")
	fl.StringVar(&f.target, "target", "", "comma-separated base URLs of the cluster's nodes (default: start a local cluster)")
	fl.StringVar(&f.workload, "workload", d.Workload, "onsale (users arrive over --ramp), rush (all start at once), best-available (holds by category and quantity), multi (--events events at once) or queue (--joins buyers join a protected on-sale's waiting room, then --lookups position look-ups)")
	fl.IntVar(&f.events, "events", d.Events, "multi: number of events, each of --seats/--events seats")
	fl.IntVar(&f.seats, "seats", d.Seats, "seats of the event")
	fl.IntVar(&f.users, "users", d.Users, "virtual users")
	fl.DurationVar(&f.duration, "duration", d.Duration, "time limit; the run ends earlier when sold out")
	fl.DurationVar(&f.ramp, "ramp", d.Ramp, "onsale: how long users take to arrive")
	fl.StringVar(&f.jsonPath, "json", "", "write the full result as JSON to this file")
	fl.StringVar(&f.htmlPath, "html", "", "write a self-contained HTML report to this file")
	fl.StringVar(&f.token, "token", env("BOXOFFICE_TOKEN", ""), "organiser or admin token that creates the event")
	fl.StringVar(&f.authSecret, "auth-secret", env("BOXOFFICE_AUTH_SECRET", ""), "the cluster's HS256 secret, to mint buyer tokens (with --target)")
	fl.Uint64Var(&f.seed, "seed", d.Seed, "seed of the users' random choices")
	fl.Float64Var(&f.hotFrac, "hot-fraction", d.HotFraction, "share of the seats (best first, in layout order) that form the hot set")
	fl.Float64Var(&f.hotShare, "hot-share", d.HotShare, "share of picks that go to the hot set")
	fl.Float64Var(&f.buyProb, "buy-probability", d.BuyProbability, "chance a hold is bought rather than released")
	fl.IntVar(&f.maxPerBuy, "max-seats-per-buyer", d.MaxSeatsPerBuyer, "the event's maxSeatsPerBuyer")
	fl.DurationVar(&f.holdTTL, "hold-ttl", d.HoldTTL, "the event's hold TTL")
	fl.DurationVar(&f.mapMaxAge, "seatmap-max-age", d.SeatMapMaxAge, "how often the shared seat map is refreshed")
	fl.IntVar(&f.retries, "retries-per-map", d.RetriesPerMap, "conflicts a user retries before waiting for a newer seat map")
	fl.IntVar(&f.nodes, "nodes", 3, "local cluster: number of nodes")
	fl.IntVar(&f.shards, "shards", 4, "local cluster: number of shards")
	fl.IntSliceVar(&f.serverPIDs, "server-pids", nil, "with --target: pids of server processes on this machine whose CPU to measure")
	fl.BoolVar(&f.keepData, "keep-data", false, "local cluster: keep its data dir and logs")
	fl.BoolVar(&f.spread, "spread-writes", false, "boxoffice: users send writes to the node they start at, which forwards them, instead of straight to the shard's leader")
	fl.DurationVar(&f.payLatency, "payment-latency", payment.DefaultSimConfig().LatencyMedian, "local cluster: the simulated gateway's median latency (serve --payment-latency); peers: their simulated charge's")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no live progress line on stderr")
	fl.IntVar(&f.joins, "joins", 1_000_000, "queue: distinct buyers who join the event's queue")
	fl.IntVar(&f.lookups, "lookups", 200_000, "queue: position look-ups after the joins")
	return c
}

func runBench(ctx context.Context, f benchFlags, stdout, stderr io.Writer) error {
	if f.workload == bench.WorkloadQueue {
		return runQueueBench(ctx, f, stdout, stderr)
	}
	cfg := bench.DefaultConfig()
	cfg.Workload, cfg.Seats, cfg.Users, cfg.Duration, cfg.Ramp = f.workload, f.seats, f.users, f.duration, f.ramp
	cfg.Events = f.events
	cfg.Seed, cfg.HotFraction, cfg.HotShare, cfg.BuyProbability = f.seed, f.hotFrac, f.hotShare, f.buyProb
	cfg.MaxSeatsPerBuyer, cfg.HoldTTL, cfg.SeatMapMaxAge, cfg.RetriesPerMap = f.maxPerBuy, f.holdTTL, f.mapMaxAge, f.retries
	cfg.Token = f.token
	cfg.Log = stderr
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && !f.noProgress {
		cfg.Progress = stderr
	}
	// Refuse bad flags before starting a cluster.
	probe := cfg
	probe.Targets, probe.Mint = []string{"http://127.0.0.1:1"}, func(string, string) (string, error) { return "", nil }
	if err := probe.Validate(); err != nil {
		return err
	}
	systems := []string{f.system}
	switch {
	case !slices.Contains(bench.Systems, f.system):
		return fmt.Errorf("--system must be one of %s, not %q", strings.Join(bench.Systems, ", "), f.system)
	case f.compare && f.target != "":
		return errors.New("--compare starts every system itself: no --target")
	case f.system != bench.SystemBoxoffice && f.target != "":
		return fmt.Errorf("--system %s starts its own servers: no --target", f.system)
	case f.payLatency < 0:
		return errors.New("--payment-latency must not be negative")
	case f.compare:
		systems = bench.Systems
	}

	var results []*bench.Result
	var failed []string
	for _, name := range systems {
		res, err := benchSystem(ctx, f, name, cfg, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		bench.WriteSummary(stdout, res)
		fmt.Fprintln(stdout)
		results = append(results, res)
		if !res.Check.OK {
			failed = append(failed, fmt.Sprintf("%s: %d violation(s); the first: %s", name, res.Check.ViolationCount, res.Check.Violations[0]))
		}
		if ctx.Err() != nil {
			break
		}
	}
	cmp := bench.Compare(results)
	if f.compare {
		bench.WriteComparison(stdout, cmp)
	}
	if f.jsonPath != "" {
		err := writeFile(f.jsonPath, func(w io.Writer) error {
			if f.compare {
				return bench.WriteComparisonJSON(w, cmp)
			}
			return bench.WriteJSON(w, results[0])
		})
		if err != nil {
			return err
		}
	}
	if f.htmlPath != "" {
		for _, res := range results {
			path := f.htmlPath
			if f.compare {
				// One report per system: bench.html → bench-etcd.html.
				ext := filepath.Ext(path)
				path = strings.TrimSuffix(path, ext) + "-" + res.System + ext
			}
			if err := writeFile(path, func(w io.Writer) error { return bench.WriteHTML(w, res) }); err != nil {
				return err
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("INVARIANT CHECK FAILED: %s", strings.Join(failed, "; "))
	}
	return nil
}

// benchSystem runs cfg against the system name: boxoffice at --target or a
// local cluster it starts, or a peer it starts; it stops what it started
// (keeping its data after a failure or with --keep-data).
func benchSystem(ctx context.Context, f benchFlags, name string, cfg bench.Config, stderr io.Writer) (res *bench.Result, err error) {
	keep := func() bool { return f.keepData || err != nil || (res != nil && !res.Check.OK) }
	spread := payment.DefaultSimConfig().LatencySpread
	payNote := fmt.Sprintf("purchases wait a simulated card charge (log-normal, median %v, spread %.1f) before their transaction", f.payLatency, spread)
	if f.payLatency == 0 {
		payNote = "no simulated card charge"
	}
	switch name {
	case bench.SystemEtcd:
		ec, err := bench.StartEtcd(ctx, bench.EtcdConfig{Members: 3, StartTimeout: time.Minute, Log: stderr})
		if err != nil {
			return nil, err
		}
		defer func() { ec.Stop(stderr, keep()) }()
		sys, err := ec.System()
		if err != nil {
			return nil, err
		}
		defer sys.Close()
		sys.SimulatePayment(f.payLatency, spread, f.seed)
		cfg.System, cfg.Targets, cfg.ServerPIDs, cfg.ServerNames = sys, ec.Endpoints(), ec.PIDs(), ec.Names()
		cfg.Notes = []string{ec.Note(), payNote}
		return bench.Run(ctx, cfg)
	case bench.SystemPostgres:
		pc := bench.DefaultPostgresConfig()
		pc.PoolConns, pc.Log = f.pgPool, stderr
		pg, err := bench.StartPostgres(ctx, pc)
		if err != nil {
			return nil, err
		}
		defer func() { pg.Stop(stderr, keep()) }()
		sys, err := pg.System(ctx)
		if err != nil {
			return nil, err
		}
		defer sys.Close()
		sys.SimulatePayment(f.payLatency, spread, f.seed)
		cfg.System, cfg.Targets, cfg.ServerPIDs, cfg.ServerNames = sys, []string{"postgres://" + pg.Addr()}, pg.PIDs(), []string{"postgres"}
		cfg.Notes = []string{pg.Note(), payNote}
		return bench.Run(ctx, cfg)
	}

	secret := f.authSecret
	if f.target != "" {
		for _, t := range strings.Split(f.target, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Targets = append(cfg.Targets, t)
			}
		}
		if secret == "" {
			return nil, errors.New("--target needs the cluster's secret to mint buyer tokens: --auth-secret or BOXOFFICE_AUTH_SECRET")
		}
		cfg.ServerPIDs = f.serverPIDs
		cfg.Notes = append(cfg.Notes, "a cluster the bench did not start (--target)")
	} else {
		if f.nodes < 1 || f.nodes > 9 {
			return nil, errors.New("--nodes must be 1..9")
		}
		extra := []string{"--payment-latency", f.payLatency.String()}
		note := fmt.Sprintf("local %d-node cluster, %d shards, fsync on, payment latency %v", f.nodes, f.shards, f.payLatency)
		if !f.payLatencySet {
			extra, note = nil, fmt.Sprintf("local %d-node cluster, %d shards, fsync on, payment latency: serve's default (%v)", f.nodes, f.shards, f.payLatency)
		}
		cfg.Notes = append(cfg.Notes, note)
		lc, lerr := startBenchCluster(ctx, f.nodes, f.shards, extra, stderr)
		if lerr != nil {
			return nil, lerr
		}
		// A failed run keeps the nodes' data and logs to look at.
		defer func() { lc.stop(stderr, keep()) }()
		secret = lc.secret
		cfg.Targets, cfg.ServerPIDs, cfg.ServerNames = lc.urls(), lc.pids(), lc.names
	}
	cfg.SpreadWrites = f.spread
	if f.spread {
		cfg.Notes = append(cfg.Notes, "writes spread over the nodes (followers forward them)")
	} else {
		cfg.Notes = append(cfg.Notes, "writes straight to the shard's leader (the client's route hints)")
	}
	cfg.Mint = func(subject, role string) (string, error) {
		return httpapi.MintToken([]byte(secret), subject, httpapi.Role(role), 24*time.Hour)
	}
	return bench.Run(ctx, cfg)
}

func writeFile(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// benchCluster is a local cluster of `boxoffice serve` processes the bench
// starts in a temp dir, the way `boxoffice local` does: the same binary
// re-executed, each node in its own process group.
type benchCluster struct {
	dir       string
	secret    string
	names     []string
	httpAddrs []string
	procs     []*exec.Cmd
}

func (c *benchCluster) urls() []string {
	out := make([]string, len(c.httpAddrs))
	for i, a := range c.httpAddrs {
		out[i] = "http://" + a
	}
	return out
}

func (c *benchCluster) pids() []int {
	out := make([]int, len(c.procs))
	for i, p := range c.procs {
		out[i] = p.Process.Pid
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

func startBenchCluster(ctx context.Context, nodes, shards int, extra []string, log io.Writer) (*benchCluster, error) {
	dir, err := os.MkdirTemp("", "boxoffice-bench-")
	if err != nil {
		return nil, err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	c := &benchCluster{dir: dir, secret: hex.EncodeToString(raw[:])}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*benchCluster, error) {
		c.stop(log, true)
		return nil, err
	}
	for i := 0; i < nodes; i++ {
		httpAddr, err1 := freeLoopbackAddr()
		raftAddr, err2 := freeLoopbackAddr()
		if err := errors.Join(err1, err2); err != nil {
			return fail(err)
		}
		id := fmt.Sprintf("n%d", i+1)
		args := []string{"serve", "--id", id, "--data-dir", filepath.Join(dir, id),
			"--http-addr", httpAddr, "--raft-addr", raftAddr, "--shards", fmt.Sprint(shards)}
		args = append(args, extra...)
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", c.httpAddrs[0])
		}
		logf, err := os.Create(filepath.Join(dir, id+".log"))
		if err != nil {
			return fail(err)
		}
		p := exec.Command(self, args...)
		p.Env = append(os.Environ(), "BOXOFFICE_AUTH_SECRET="+c.secret)
		p.Stdout, p.Stderr = logf, logf
		// Own process group: Ctrl-C reaches the bench, which stops the
		// nodes itself once it has read the end state.
		p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.Start(); err != nil {
			logf.Close()
			return fail(err)
		}
		logf.Close() // the child has its own descriptor
		c.procs = append(c.procs, p)
		c.names = append(c.names, id)
		c.httpAddrs = append(c.httpAddrs, httpAddr)
	}
	admin, err := httpapi.MintToken([]byte(c.secret), "bench-admin", httpapi.RoleAdmin, time.Hour)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(log, "starting a local %d-node cluster (%d shards, fsync on) in %s ...\n", nodes, shards, dir)
	if _, err := waitCluster(ctx, c.httpAddrs[0], admin, nodes, shards); err != nil {
		return fail(err)
	}
	if err := waitBalanced(ctx, c.httpAddrs[0], admin); err != nil {
		return fail(err)
	}
	return c, nil
}

// waitBalanced polls until the shards' leaders are spread over the nodes
// (each leads within one of the others), which is where the nodes'
// rebalancing stops moving them: a leadership transfer in the middle of the
// on-sale would show in its figures as a stall of the shard's writes.
func waitBalanced(ctx context.Context, addr, token string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var cl clusterView
		if code, err := call(ctx, "GET", addr, "/v1/cluster", token, nil, &cl); err == nil && code == 200 && len(cl.Nodes) > 0 {
			leads := map[string]int{}
			for _, n := range cl.Nodes {
				leads[n.ID] = 0
			}
			ok := true
			for _, s := range cl.Shards {
				ok = ok && s.Leader != ""
				leads[s.Leader]++
			}
			lo, hi := len(cl.Shards), 0
			for _, n := range leads {
				lo, hi = min(lo, n), max(hi, n)
			}
			if ok && hi-lo <= 1 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the shards' leaders were not spread over the nodes after 60s; see the node logs")
}

// stop stops every node (SIGTERM, then SIGKILL after 20 s) and removes the
// data dir unless keep.
func (c *benchCluster) stop(log io.Writer, keep bool) {
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				p.Process.Kill()
				<-done
			}
		}()
	}
	wg.Wait()
	if keep {
		fmt.Fprintf(log, "the local cluster's data and logs are in %s\n", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}
