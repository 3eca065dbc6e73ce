package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"boxoffice/client"
)

// # The queue workload
//
// The waiting room of a protected on-sale (issue 9), measured through the
// Go client: the bench creates an event of QueueConfig.Seats seats,
// protects its on-sale with a queue that opens at once, then QueueConfig.Users
// callers join it as QueueConfig.Joins distinct buyers (one token each), as
// fast as the cluster answers; then the same callers look up the places of
// QueueConfig.Lookups random joined buyers (GET …/queue/me: local reads on
// whichever node the client picks). It reports joins/s and look-ups/s with
// their latencies, and checks that the queue counts exactly one place per
// acknowledged buyer (a strong read).

// WorkloadQueue is the waiting-room workload (RunQueue; not a Run workload).
const WorkloadQueue = "queue"

// Limits of a QueueConfig.
const (
	QueueJoinsMax   = 10_000_000
	QueueLookupsMax = 10_000_000
	// queueLookupBuyers bounds the distinct buyers the look-ups read (each
	// needs a token; the server caches verified tokens).
	queueLookupBuyers = 10_000
)

// QueueConfig configures RunQueue.
type QueueConfig struct {
	// Targets are the base URLs of the cluster's nodes.
	Targets []string
	// Token creates and protects the event (organiser or admin).
	Token string
	// Mint makes a token of a role for a subject.
	Mint func(subject, role string) (string, error)
	// Seats of the event.
	Seats int
	// Users is the number of concurrent callers.
	Users int
	// Joins is the number of distinct buyers who join.
	Joins int
	// Lookups is the number of position look-ups.
	Lookups int
	// Duration bounds each phase.
	Duration time.Duration
	// Seed of the look-ups' choice of buyers.
	Seed uint64
	// ServerPIDs are the server processes whose CPU to measure (none:
	// only the bench's own).
	ServerPIDs []int
	Log        io.Writer
}

// Validate lists every problem at once.
func (c QueueConfig) Validate() error {
	var errs []error
	if len(c.Targets) == 0 || c.Mint == nil {
		errs = append(errs, errors.New("bench: queue needs Targets and Mint"))
	}
	if c.Seats < 1 || c.Seats > SeatsMax {
		errs = append(errs, fmt.Errorf("bench: Seats %d out of range 1..%d", c.Seats, SeatsMax))
	}
	if c.Users < 1 || c.Users > UsersMax {
		errs = append(errs, fmt.Errorf("bench: Users %d out of range 1..%d", c.Users, UsersMax))
	}
	if c.Joins < 1 || c.Joins > QueueJoinsMax {
		errs = append(errs, fmt.Errorf("bench: Joins %d out of range 1..%d", c.Joins, QueueJoinsMax))
	}
	if c.Lookups < 0 || c.Lookups > QueueLookupsMax {
		errs = append(errs, fmt.Errorf("bench: Lookups %d out of range 0..%d", c.Lookups, QueueLookupsMax))
	}
	if c.Duration <= 0 || c.Duration > DurationMax {
		errs = append(errs, fmt.Errorf("bench: Duration %v out of range (0, %v]", c.Duration, DurationMax))
	}
	return errors.Join(errs...)
}

// QueueResult is what RunQueue measured.
type QueueResult struct {
	Event         string  `json:"event"`
	Users         int     `json:"users"`
	Joins         int64   `json:"joins"`
	JoinErrors    int64   `json:"joinErrors"`
	JoinSeconds   float64 `json:"joinSeconds"`
	JoinsPerSec   float64 `json:"joinsPerSecond"`
	JoinLatency   Latency `json:"joinLatency"`
	Lookups       int64   `json:"lookups"`
	LookupErrors  int64   `json:"lookupErrors"`
	LookupSeconds float64 `json:"lookupSeconds"`
	LookupsPerSec float64 `json:"lookupsPerSecond"`
	LookupLatency Latency `json:"lookupLatency"`
	QueueJoined   int64   `json:"queueJoined"`
	QueueAdmitted int64   `json:"queueAdmitted"`
	// CPU per operation, in microseconds: of the servers (all nodes) and
	// of the bench (the Go client, token minting), and the machine's busy
	// share during each phase (what other work left us shows in it).
	JoinServerCPUUs   float64    `json:"joinServerCpuUs"`
	JoinBenchCPUUs    float64    `json:"joinBenchCpuUs"`
	JoinMachineBusy   float64    `json:"joinMachineBusy"`
	LookupServerCPUUs float64    `json:"lookupServerCpuUs"`
	LookupBenchCPUUs  float64    `json:"lookupBenchCpuUs"`
	LookupMachineBusy float64    `json:"lookupMachineBusy"`
	LoadStart         [3]float64 `json:"loadavgStart"`
	LoadEnd           [3]float64 `json:"loadavgEnd"`
	CPUs              int        `json:"cpus"`
	// OK: the queue counts exactly the acknowledged joins.
	OK        bool   `json:"ok"`
	FirstErr  string `json:"firstError,omitempty"`
	StartedAt string `json:"startedAt"`
}

// RunQueue runs the queue workload.
func RunQueue(ctx context.Context, cfg QueueConfig) (*QueueResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	ccfg := client.DefaultConfig()
	ccfg.Nodes, ccfg.Token = cfg.Targets, cfg.Token
	ccfg.ConnsPerNodeMax, ccfg.IdleConnsPerNodeMax = cfg.Users, cfg.Users
	c, err := client.New(ccfg)
	if err != nil {
		return nil, err
	}
	defer c.CloseIdleConnections()

	res := &QueueResult{Users: cfg.Users, CPUs: numCPU(), StartedAt: time.Now().UTC().Format(time.RFC3339)}
	res.Event = fmt.Sprintf("queue-%d", time.Now().UnixNano()%1_000_000_000)
	ev := eventFor(res.Event, Config{Seats: cfg.Seats, MaxSeatsPerBuyer: 4, HoldTTL: 10 * time.Minute})
	if _, err := c.CreateEvent(ctx, ev); err != nil {
		return nil, fmt.Errorf("create the event: %w", err)
	}
	if _, err := c.ProtectSale(ctx, res.Event, client.QueueConfig{OpensAt: time.Now()}); err != nil {
		return nil, fmt.Errorf("protect the on-sale: %w", err)
	}
	// Joins after the opening have their position at once (no shuffle).
	for {
		q, err := c.GetQueue(client.WithStrongRead(ctx), res.Event)
		if err != nil {
			return nil, fmt.Errorf("read the queue: %w", err)
		}
		if q.Opened {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	subject := func(i int64) string { return fmt.Sprintf("q%08d", i) }

	res.LoadStart = loadAvg()
	logf("queue: %d joins by %d callers into %s (%d seats)", cfg.Joins, cfg.Users, res.Event, cfg.Seats)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	hists := make([]*hdr.Histogram, cfg.Users)
	// perOp measures a phase's CPU per successful operation.
	perOp := func(a, b cpuSample, ops int64) (server, self, busy float64) {
		if ops == 0 {
			return 0, 0, 0
		}
		var srv time.Duration
		for i := range a.servers {
			if a.servers[i] >= 0 && b.servers[i] >= 0 {
				srv += b.servers[i] - a.servers[i]
			}
		}
		server = float64(srv.Microseconds()) / float64(ops)
		self = float64((b.self - a.self).Microseconds()) / float64(ops)
		if b.total > a.total {
			busy = float64(b.busy-a.busy) / float64(b.total-a.total)
		}
		return server, self, busy
	}
	phase := func(total int64, fn func(i int64, r *rand.Rand) error) float64 {
		next.Store(0)
		errs.Store(0)
		pctx, cancel := context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
		var wg sync.WaitGroup
		start := time.Now()
		for u := range cfg.Users {
			hists[u] = newHist()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(cfg.Seed, uint64(u)))
				for pctx.Err() == nil {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					t0 := time.Now()
					if err := fn(i, r); err != nil {
						if pctx.Err() != nil {
							return
						}
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					hists[u].RecordValue(time.Since(t0).Microseconds())
				}
			}()
		}
		wg.Wait()
		return time.Since(start).Seconds()
	}
	merged := func() *hdr.Histogram {
		h := newHist()
		for _, x := range hists {
			h.Merge(x)
		}
		return h
	}

	cpu0 := sampleCPU(cfg.ServerPIDs)
	res.JoinSeconds = phase(int64(cfg.Joins), func(i int64, _ *rand.Rand) error {
		tok, err := cfg.Mint(subject(i), "buyer")
		if err != nil {
			return err
		}
		_, err = c.WithToken(tok).JoinQueue(ctx, res.Event)
		return err
	})
	cpu1 := sampleCPU(cfg.ServerPIDs)
	h := merged()
	res.Joins, res.JoinErrors = h.TotalCount(), errs.Load()
	res.JoinServerCPUUs, res.JoinBenchCPUUs, res.JoinMachineBusy = perOp(cpu0, cpu1, res.Joins)
	res.JoinLatency = summarize(h)
	res.JoinsPerSec = float64(res.Joins) / res.JoinSeconds
	logf("queue: %d joins in %.1f s (%.0f/s), %d errors", res.Joins, res.JoinSeconds, res.JoinsPerSec, res.JoinErrors)

	if cfg.Lookups > 0 {
		nb := min(int64(queueLookupBuyers), res.Joins)
		toks := make([]*client.Client, nb)
		for i := range toks {
			tok, err := cfg.Mint(subject(int64(i)), "buyer")
			if err != nil {
				return nil, err
			}
			toks[i] = c.WithToken(tok)
		}
		cpu0 = sampleCPU(cfg.ServerPIDs)
		res.LookupSeconds = phase(int64(cfg.Lookups), func(_ int64, r *rand.Rand) error {
			_, err := toks[r.Int64N(nb)].MyPlace(ctx, res.Event)
			return err
		})
		cpu1 = sampleCPU(cfg.ServerPIDs)
		h = merged()
		res.Lookups, res.LookupErrors = h.TotalCount(), errs.Load()
		res.LookupServerCPUUs, res.LookupBenchCPUUs, res.LookupMachineBusy = perOp(cpu0, cpu1, res.Lookups)
		res.LookupLatency = summarize(h)
		res.LookupsPerSec = float64(res.Lookups) / res.LookupSeconds
		logf("queue: %d look-ups in %.1f s (%.0f/s), %d errors", res.Lookups, res.LookupSeconds, res.LookupsPerSec, res.LookupErrors)
	}
	res.LoadEnd = loadAvg()

	q, err := c.GetQueue(client.WithStrongRead(ctx), res.Event)
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	res.QueueJoined, res.QueueAdmitted = q.Joined, q.Admitted
	// Every acknowledged join has its place; a join whose answer was lost
	// may have one too (then the queue counts more).
	res.OK = q.Joined >= res.Joins && q.Joined <= res.Joins+res.JoinErrors
	if s, ok := firstErr.Load().(string); ok {
		res.FirstErr = s
	}
	return res, nil
}

// WriteQueueSummary prints a QueueResult.
func WriteQueueSummary(w io.Writer, r *QueueResult) {
	fmt.Fprintf(w, "queue workload, event %s, %d callers, %d CPUs, load %.2f %.2f %.2f → %.2f %.2f %.2f\n",
		r.Event, r.Users, r.CPUs, r.LoadStart[0], r.LoadStart[1], r.LoadStart[2], r.LoadEnd[0], r.LoadEnd[1], r.LoadEnd[2])
	fmt.Fprintf(w, "  joins:    %d in %.1f s = %.0f/s, %d errors; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		r.Joins, r.JoinSeconds, r.JoinsPerSec, r.JoinErrors, r.JoinLatency.P50Ms, r.JoinLatency.P99Ms, r.JoinLatency.MaxMs)
	fmt.Fprintf(w, "  look-ups: %d in %.1f s = %.0f/s, %d errors; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		r.Lookups, r.LookupSeconds, r.LookupsPerSec, r.LookupErrors, r.LookupLatency.P50Ms, r.LookupLatency.P99Ms, r.LookupLatency.MaxMs)
	fmt.Fprintf(w, "  CPU per join: servers %.0f µs, bench %.0f µs (machine %.0f%% busy); per look-up: servers %.0f µs, bench %.0f µs (machine %.0f%% busy)\n",
		r.JoinServerCPUUs, r.JoinBenchCPUUs, 100*r.JoinMachineBusy, r.LookupServerCPUUs, r.LookupBenchCPUUs, 100*r.LookupMachineBusy)
	if c := r.JoinServerCPUUs + r.JoinBenchCPUUs; c > 0 && r.CPUs > 0 {
		fmt.Fprintf(w, "  at that CPU cost, %d cores to themselves would do about %.0f joins/s", r.CPUs, float64(r.CPUs)*1e6/c)
		if l := r.LookupServerCPUUs + r.LookupBenchCPUUs; l > 0 {
			fmt.Fprintf(w, " and %.0f look-ups/s", float64(r.CPUs)*1e6/l)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  queue: %d places, %d admitted; check: ok=%v\n", r.QueueJoined, r.QueueAdmitted, r.OK)
	if r.FirstErr != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstErr)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
