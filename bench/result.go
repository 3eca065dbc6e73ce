package bench

import (
	"fmt"
	"strings"
	"time"
)

// Result is everything a run measured; it is what --json writes.
type Result struct {
	// System is the store under test (one of Systems).
	System           string   `json:"system"`
	Workload         string   `json:"workload"`
	Event            string   `json:"event"`
	Targets          []string `json:"targets"`
	Seats            int      `json:"seats"`
	HotSeats         int      `json:"hotSeats"`
	Users            int      `json:"users"`
	DurationLimitS   float64  `json:"durationLimitSeconds"`
	RampS            float64  `json:"rampSeconds"`
	HotShare         float64  `json:"hotShare"`
	BuyProbability   float64  `json:"buyProbability"`
	MaxSeatsPerBuyer int      `json:"maxSeatsPerBuyer"`
	HoldTTLS         float64  `json:"holdTTLSeconds"`
	SeatMapMaxAgeS   float64  `json:"seatMapMaxAgeSeconds"`
	Seed             uint64   `json:"seed"`
	// Notes are facts about the servers the bench was told (flags it
	// passed to a local cluster), for the reports.
	Notes     []string  `json:"notes,omitempty"`
	StartedAt time.Time `json:"startedAt"`

	// StopReason is why the load ended: sold out, time limit, interrupted.
	StopReason string `json:"stopReason"`
	// LoadS is from the start of the load to its stop; the rates are over it.
	LoadS float64 `json:"loadSeconds"`
	// SellOutS is the time to sell every seat (0: not sold out); HotSellOutS
	// the time to sell every seat of the hot set.
	SoldOut     bool    `json:"soldOut"`
	SellOutS    float64 `json:"sellOutSeconds"`
	HotSoldOut  bool    `json:"hotSoldOut"`
	HotSellOutS float64 `json:"hotSellOutSeconds"`

	Sold              int64   `json:"sold"`
	HotSold           int64   `json:"hotSold"`
	SoldPerS          float64 `json:"soldPerSecond"`
	HoldAttempts      int64   `json:"holdAttempts"`
	HoldsOK           int64   `json:"holdsOk"`
	Conflicts         int64   `json:"conflicts"`
	PurchaseAttempts  int64   `json:"purchaseAttempts"`
	PurchasesOK       int64   `json:"purchasesOk"`
	ReleaseAttempts   int64   `json:"releaseAttempts"`
	ReleasesOK        int64   `json:"releasesOk"`
	OkOpsPerS         float64 `json:"okOpsPerSecond"`
	AttemptsPerS      float64 `json:"attemptsPerSecond"`
	ConflictRate      float64 `json:"conflictRate"`
	RetriesPerSuccess float64 `json:"retriesPerSuccess"`
	Identities        int64   `json:"identities"`
	SeatMapFetches    int64   `json:"seatMapFetches"`
	SeatMapFailures   int64   `json:"seatMapFailures"`
	// SeatMapAgeMaxS is the oldest a shared seat map got before a newer
	// one replaced it.
	SeatMapAgeMaxS float64 `json:"seatMapAgeMaxSeconds"`

	Errors         int64            `json:"errors"`
	ErrorsByCode   map[string]int64 `json:"errorsByCode"`
	ResolvedWrites int64            `json:"resolvedWrites"`
	UnknownWrites  []UnknownWrite   `json:"unknownWrites"`

	Latency map[string]Latency `json:"latency"`
	Series  []Second           `json:"series"`

	// LeaderChanges lists the shards whose leadership changed during the
	// load (an election or a transfer stalls that shard's writes).
	LeaderChanges []string `json:"leaderChanges"`
	// LeadersKnown is false when the system does not say who leads (a
	// single server).
	LeadersKnown bool `json:"leadersKnown"`

	CPU       CPUFigures `json:"cpu"`
	LoadStart [3]float64 `json:"loadavgStart"`
	LoadEnd   [3]float64 `json:"loadavgEnd"`

	Check CheckResult `json:"check"`
	// Events are the events of a multi run, one by one (empty otherwise:
	// Event is the run's one event).
	Events []EventResult `json:"events,omitempty"`

	// What the check compared, for tests.
	ledger *Ledger
	state  *ServerState
}

// EventResult is one event of a multi run.
type EventResult struct {
	ID       string  `json:"id"`
	Seats    int     `json:"seats"`
	Sold     int64   `json:"sold"`
	SoldOut  bool    `json:"soldOut"`
	SellOutS float64 `json:"sellOutSeconds"`
	// CheckOK and Violations are the event's own invariant check.
	CheckOK    bool `json:"checkOk"`
	Violations int  `json:"violations"`
}

// eventResults lists the events with their checks (same order).
func (r *runner) eventResults(checks []CheckResult) []EventResult {
	out := make([]EventResult, len(r.events))
	for i, e := range r.events {
		out[i] = EventResult{ID: e.id, Seats: e.seats, Sold: e.sold.Load(), CheckOK: checks[i].OK, Violations: checks[i].ViolationCount}
		if ns := e.soldOutAt.Load(); ns > 0 {
			out[i].SoldOut, out[i].SellOutS = true, time.Duration(ns).Seconds()
		}
	}
	return out
}

// CPUFigures is the CPU used during the load, in seconds and in cores
// (seconds per second of load).
type CPUFigures struct {
	MachineCores int         `json:"machineCores"`
	Servers      []ServerCPU `json:"servers"`
	ServerS      float64     `json:"serverSeconds"`
	ServerCores  float64     `json:"serverCores"`
	BenchS       float64     `json:"benchSeconds"`
	BenchCores   float64     `json:"benchCores"`
	// MachineBusy is the share of the machine's CPU time that was busy
	// (every process, not only the cluster and the bench).
	MachineBusy float64 `json:"machineBusy"`
	WindowS     float64 `json:"windowSeconds"`
}

// ServerCPU is one server process's CPU.
type ServerCPU struct {
	Name  string  `json:"name"`
	PID   int     `json:"pid"`
	S     float64 `json:"seconds"`
	Cores float64 `json:"cores"`
}

// Second is one second of the run.
type Second struct {
	// T is the end of the second, from the start of the load; IntervalS
	// its length (the last one, cut by the stop, is shorter).
	T         float64 `json:"t"`
	IntervalS float64 `json:"intervalSeconds"`
	Sold      int64   `json:"sold"`
	HotSold   int64   `json:"hotSold"`
	// Rates over this second.
	SoldPerS      float64 `json:"soldPerSecond"`
	OkOpsPerS     float64 `json:"okOpsPerSecond"`
	AttemptsPerS  float64 `json:"attemptsPerSecond"`
	ConflictsPerS float64 `json:"conflictsPerSecond"`
	ErrorsPerS    float64 `json:"errorsPerSecond"`
	HoldP50Ms     float64 `json:"holdP50Ms"`
	HoldP99Ms     float64 `json:"holdP99Ms"`
	FreeOnMap     int     `json:"freeOnMap"`
	ServerCores   float64 `json:"serverCores"`
	BenchCores    float64 `json:"benchCores"`
}

// sample records a Second every second until the load stops, and one for
// the last partial second, printing the progress line if asked to.
func (r *runner) sample(prev cpuSample) []Second {
	var out []Second
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last struct{ sold, ok, att, conf, errs int64 }
	take := func() {
		now := sampleCPU(r.cfg.ServerPIDs)
		dt := now.at.Sub(prev.at)
		if dt <= 0 {
			return
		}
		s := Second{T: time.Since(r.start).Seconds(), IntervalS: dt.Seconds(), Sold: r.rec.sold.Load(), HotSold: r.rec.hotSold.Load()}
		ok, att, conf, errs := r.rec.okOps(), r.rec.attempts(), r.rec.conflicts.Load(), r.rec.errorsTotal.Load()
		per := func(d int64) float64 { return float64(d) / dt.Seconds() }
		s.SoldPerS, s.OkOpsPerS, s.AttemptsPerS = per(s.Sold-last.sold), per(ok-last.ok), per(att-last.att)
		s.ConflictsPerS, s.ErrorsPerS = per(conf-last.conf), per(errs-last.errs)
		last.sold, last.ok, last.att, last.conf, last.errs = s.Sold, ok, att, conf, errs
		q := r.rec.takeInterval(opHold, 50, 99)
		s.HoldP50Ms, s.HoldP99Ms = q[0], q[1]
		for _, e := range r.events {
			if m := e.cache.Current(); m != nil {
				s.FreeOnMap += len(m.Free)
			}
		}
		s.ServerCores = cores(serverDelta(prev, now), dt)
		s.BenchCores = cores(now.self-prev.self, dt)
		prev = now
		out = append(out, s)
		if r.cfg.Progress != nil {
			r.progress(s)
		}
	}
	for {
		select {
		case <-t.C:
			take()
		case <-r.stop:
			take()
			if r.cfg.Progress != nil {
				fmt.Fprintln(r.cfg.Progress)
			}
			return out
		}
	}
}

// serverDelta is the server CPU between two samples, over the processes
// readable in both.
func serverDelta(a, b cpuSample) time.Duration {
	var d time.Duration
	for i := range a.servers {
		if i < len(b.servers) && a.servers[i] >= 0 && b.servers[i] >= a.servers[i] {
			d += b.servers[i] - a.servers[i]
		}
	}
	return d
}

// progress writes the one-line progress (for a terminal).
func (r *runner) progress(s Second) {
	pct := 100 * float64(s.Sold) / float64(r.cfg.Seats)
	line := fmt.Sprintf("%5.1fs  sold %s/%s (%.1f%%)  ok %s/s  attempts %s/s  conflicts %s/s  errors %s  hold p99 %.1fms",
		s.T, thousands(s.Sold), thousands(int64(r.cfg.Seats)), pct, thousands(int64(s.OkOpsPerS)),
		thousands(int64(s.AttemptsPerS)), thousands(int64(s.ConflictsPerS)), thousands(r.rec.errorsTotal.Load()), s.HoldP99Ms)
	fmt.Fprintf(r.cfg.Progress, "\r\x1b[K%s", line)
}

// fill computes the figures of a finished run.
func (r *runner) fill(res *Result, cpu0, cpu1 cpuSample, led *Ledger, check CheckResult) {
	cfg := r.cfg
	rec := r.rec
	ids := make([]string, len(r.events))
	for i, e := range r.events {
		ids[i] = e.id
	}
	res.Workload, res.Event, res.Targets = cfg.Workload, strings.Join(ids, ","), cfg.Targets
	res.Seats, res.HotSeats, res.Users = cfg.Seats, r.hot, cfg.Users
	res.DurationLimitS, res.RampS = cfg.Duration.Seconds(), cfg.Ramp.Seconds()
	if cfg.Workload == WorkloadRush {
		res.RampS = 0
	}
	res.HotShare, res.BuyProbability, res.MaxSeatsPerBuyer = cfg.HotShare, cfg.BuyProbability, cfg.MaxSeatsPerBuyer
	res.HoldTTLS, res.SeatMapMaxAgeS, res.Seed = cfg.HoldTTL.Seconds(), cfg.SeatMapMaxAge.Seconds(), cfg.Seed
	res.Notes = cfg.Notes
	if p := r.reason.Load(); p != nil {
		res.StopReason = *p
	}
	res.LoadS = time.Duration(r.stopAt.Load()).Seconds()
	if ns := r.soldOutAt.Load(); ns > 0 {
		res.SoldOut, res.SellOutS = true, time.Duration(ns).Seconds()
	}
	if ns := r.hotSoldOutAt.Load(); ns > 0 {
		res.HotSoldOut, res.HotSellOutS = true, time.Duration(ns).Seconds()
	}
	res.Sold, res.HotSold = rec.sold.Load(), rec.hotSold.Load()
	res.HoldAttempts, res.HoldsOK, res.Conflicts = rec.holdAttempts.Load(), rec.holdsOK.Load(), rec.conflicts.Load()
	res.PurchaseAttempts, res.PurchasesOK = rec.purchaseAttempts.Load(), rec.purchasesOK.Load()
	res.ReleaseAttempts, res.ReleasesOK = rec.releaseAttempts.Load(), rec.releasesOK.Load()
	if res.LoadS > 0 {
		res.SoldPerS = float64(res.Sold) / res.LoadS
		res.OkOpsPerS = float64(rec.okOps()) / res.LoadS
		res.AttemptsPerS = float64(rec.attempts()) / res.LoadS
	}
	if res.HoldAttempts > 0 {
		res.ConflictRate = float64(res.Conflicts) / float64(res.HoldAttempts)
	}
	if res.HoldsOK > 0 {
		res.RetriesPerSuccess = float64(res.Conflicts) / float64(res.HoldsOK)
	}
	res.Identities = rec.identities.Load()
	for _, e := range r.events {
		res.SeatMapFetches += e.cache.fetches.Load()
		res.SeatMapFailures += e.cache.fails.Load()
		res.SeatMapAgeMaxS = max(res.SeatMapAgeMaxS, time.Duration(e.cache.ageMax.Load()).Seconds())
	}
	res.Errors, res.ErrorsByCode = rec.errorsTotal.Load(), rec.errorsByCode()
	res.ResolvedWrites, res.UnknownWrites = rec.resolvedWrites.Load(), led.Unknown
	res.Latency = rec.latencies()

	window := cpu1.at.Sub(cpu0.at)
	c := CPUFigures{MachineCores: numCPU(), WindowS: window.Seconds()}
	for i, pid := range cfg.ServerPIDs {
		s := ServerCPU{PID: pid, Name: fmt.Sprintf("pid %d", pid)}
		if i < len(cfg.ServerNames) {
			s.Name = cfg.ServerNames[i]
		}
		if cpu0.servers[i] >= 0 && cpu1.servers[i] >= cpu0.servers[i] {
			d := cpu1.servers[i] - cpu0.servers[i]
			s.S, s.Cores = d.Seconds(), cores(d, window)
		}
		c.Servers = append(c.Servers, s)
	}
	sd := serverDelta(cpu0, cpu1)
	c.ServerS, c.ServerCores = sd.Seconds(), cores(sd, window)
	bd := cpu1.self - cpu0.self
	c.BenchS, c.BenchCores = bd.Seconds(), cores(bd, window)
	if cpu1.total > cpu0.total {
		c.MachineBusy = float64(cpu1.busy-cpu0.busy) / float64(cpu1.total-cpu0.total)
	}
	res.CPU = c
	res.Check = check
}

// thousands formats n with thin separators: 100,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
