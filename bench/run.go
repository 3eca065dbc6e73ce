package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"boxoffice"
	"boxoffice/client"
)

// runner is one run's shared state.
type runner struct {
	cfg   Config
	runID string
	// events are the run's events: one, or Config.Events in multi.
	events []*eventRun
	// hot is the size of the hot sets of every event together.
	hot int
	rec *recorder
	sys System
	// eventsSoldOut counts the events sold out; the run is sold out when
	// every one is.
	eventsSoldOut atomic.Int64

	start    time.Time
	stop     chan struct{} // closed when the load ends
	stopOnce sync.Once
	stopAt   atomic.Int64 // ns since start
	reason   atomic.Pointer[string]

	soldOutAt, hotSoldOutAt atomic.Int64 // ns since start; 0: not yet
	errMu                   sync.Mutex
	err                     error // a user's fatal error
}

// eventRun is one event of a run and what the users need of it.
type eventRun struct {
	id     string
	seats  int
	layout *boxoffice.Layout
	picker Picker
	cache  *seatCache
	// cats are the event's categories, best first (best-available).
	cats []string
	sold atomic.Int64
	// soldOutAt is when the event sold out (ns since start; 0: not yet).
	soldOutAt atomic.Int64
}

func (r *runner) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// end stops the load once, saying why.
func (r *runner) end(reason string) {
	r.stopOnce.Do(func() {
		r.stopAt.Store(int64(time.Since(r.start)))
		r.reason.Store(&reason)
		close(r.stop)
	})
}

// fail ends the run on an error the bench cannot go on with.
func (r *runner) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.end("error: " + err.Error())
}

// sold counts n seats of ev sold, hot of them in its hot set.
func (r *runner) sold(ev *eventRun, n, hot int) {
	since := int64(time.Since(r.start))
	r.rec.sold.Add(int64(n))
	if ev.sold.Add(int64(n)) >= int64(ev.seats) {
		r.eventSoldOut(ev, since, "sold out")
	}
	if hot > 0 && r.rec.hotSold.Add(int64(hot)) >= int64(r.hot) {
		r.hotSoldOutAt.CompareAndSwap(0, since)
	}
}

// eventSoldOut marks ev sold out (once); when every event is, the run ends.
func (r *runner) eventSoldOut(ev *eventRun, since int64, reason string) {
	if ev.soldOutAt.CompareAndSwap(0, since) && r.eventsSoldOut.Add(1) >= int64(len(r.events)) && r.soldOutAt.CompareAndSwap(0, since) {
		r.end(reason)
	}
}

// checkSoldOut is called when a seat map shows no free seat: the event may
// be sold out through purchases whose answers the bench did not get, so ask
// the cluster (strong read) rather than wait for the time limit.
func (r *runner) checkSoldOut(ctx context.Context, e *eventRun) {
	sold, err := r.sys.Sold(ctx, e.id)
	if err != nil {
		return
	}
	if sold >= e.seats {
		r.eventSoldOut(e, int64(time.Since(r.start)), "sold out (seen on the seat map)")
	}
}

// Run creates the event, runs the workload, checks the end state and
// returns the figures. An error means the run could not be made (setup,
// a fatal user error); a failed invariant check is not an error: see
// Result.Check.OK.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	runID := strconv.FormatInt(time.Now().UnixMilli()%(36*36*36*36*36*36), 36)
	r := &runner{cfg: cfg, runID: "b" + runID, rec: newRecorder(), stop: make(chan struct{})}
	base := cfg.EventID
	if base == "" {
		base = "bench-" + runID
	}
	k := 1
	if cfg.Workload == WorkloadMulti {
		k = cfg.Events
	}
	for i := 0; i < k; i++ {
		ev := &eventRun{id: base, seats: cfg.Seats}
		if cfg.Workload == WorkloadMulti {
			// N/K seats each, the remainder to the first events.
			ev.id = base + "-" + strconv.Itoa(i)
			ev.seats = cfg.Seats / k
			if i < cfg.Seats%k {
				ev.seats++
			}
		}
		r.events = append(r.events, ev)
	}

	// Run closes the system it made; the caller closes one it passed.
	sys := cfg.System
	if sys == nil {
		bs, err := newBoxofficeSystem(cfg, r.runID)
		if err != nil {
			return nil, err
		}
		defer bs.Close()
		sys = bs
	}
	if !slices.Contains(sys.Workloads(), cfg.Workload) {
		return nil, fmt.Errorf("bench: %s cannot run the %s workload (only %s)", sys.Name(), cfg.Workload, strings.Join(sys.Workloads(), ", "))
	}
	r.sys = sys
	cr, _ := sys.(clusterReporter)
	n := len(cfg.Targets)

	// The events: each one's layout is the bench's seat numbering.
	for _, e := range r.events {
		if err := r.createEvent(ctx, e, logf); err != nil {
			return nil, err
		}
		r.hot += e.picker.Hot
	}

	// Users, with their first identity minted before the start.
	users := make([]*user, cfg.Users)
	for i := range users {
		u := &user{
			id: i, run: r, ev: r.events[i%len(r.events)],
			rng:      rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			excluded: map[int32]uint64{},
		}
		if err := u.newIdentity(); err != nil {
			return nil, fmt.Errorf("mint a buyer token: %w", err)
		}
		users[i] = u
	}

	// The load. hardCtx cuts calls that outlive the stop by more than Grace.
	loadCtx, cancelLoad := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLoad()
	if dl, ok := ctx.Deadline(); ok {
		loadCtx, cancelLoad = context.WithDeadline(loadCtx, dl)
		defer cancelLoad()
	}
	if n > 0 {
		logf("load: %s against %s, %d users over %d node(s), until sold out or %v", cfg.Workload, sys.Name(), cfg.Users, n, cfg.Duration)
	} else {
		logf("load: %s against %s, %d users, until sold out or %v", cfg.Workload, sys.Name(), cfg.Users, cfg.Duration)
	}
	res := &Result{System: sys.Name(), StartedAt: time.Now(), LoadStart: loadAvg()}
	var before client.ClusterStatus
	var beforeErr error
	if cr != nil {
		before, beforeErr = cr.Cluster(ctx)
	}
	cpu0 := sampleCPU(cfg.ServerPIDs)
	r.start = time.Now()
	samplerDone := make(chan []Second)
	go func() { samplerDone <- r.sample(cpu0) }()
	var cacheWG sync.WaitGroup
	for _, e := range r.events {
		cacheWG.Add(1)
		go func() { defer cacheWG.Done(); e.cache.run(loadCtx, r.stop) }()
	}
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Workload != WorkloadRush && cfg.Ramp > 0 {
				// Arrivals spread over the ramp: pacing, not synchronisation.
				t := time.NewTimer(time.Duration(int64(cfg.Ramp) * int64(i) / int64(cfg.Users)))
				select {
				case <-t.C:
				case <-r.stop:
					t.Stop()
					return
				}
			}
			u.loop(loadCtx)
		}()
	}
	limit := time.NewTimer(cfg.Duration)
	select {
	case <-r.stop:
	case <-limit.C:
		r.end("time limit")
	case <-ctx.Done():
		r.end("interrupted")
	}
	limit.Stop()
	// Users finish the iteration they are in; past Grace their calls are cut.
	grace := time.AfterFunc(cfg.Grace, cancelLoad)
	wg.Wait()
	cacheWG.Wait() // bounded: their fetches are cut with the users' calls
	grace.Stop()
	cpu1 := sampleCPU(cfg.ServerPIDs)
	res.LoadEnd = loadAvg()
	if cr != nil {
		res.LeadersKnown = true
		after, afterErr := cr.Cluster(context.WithoutCancel(ctx))
		if beforeErr == nil && afterErr == nil {
			res.LeaderChanges = leaderChanges(before, after)
		} else {
			res.LeaderChanges = []string{fmt.Sprintf("unknown: could not read the cluster: %v", errors.Join(beforeErr, afterErr))}
		}
	}
	res.Series = <-samplerDone
	r.errMu.Lock()
	err := r.err
	r.errMu.Unlock()
	if err != nil {
		return nil, err
	}

	// The ledger, and what is still unknown resolved once more.
	var led Ledger
	for _, u := range users {
		led.merge(&u.ledger)
	}
	// The check runs even after Ctrl-C (the load stopped, the state is
	// there to read), but within CheckTimeout and the caller's deadline.
	checkCtx, cancelCheck := context.WithTimeout(context.WithoutCancel(ctx), cfg.CheckTimeout)
	defer cancelCheck()
	if dl, ok := ctx.Deadline(); ok {
		checkCtx, cancelCheck = context.WithDeadline(checkCtx, dl)
		defer cancelCheck()
	}
	r.resolve(checkCtx, &led, users)

	logf("check: strong reads of the seat map and of %d acknowledged orders", len(led.Orders))
	readStart := time.Now()
	var checks []CheckResult
	for _, e := range r.events {
		el := &led
		if len(r.events) > 1 {
			el = led.only(e.id)
		}
		state, err := r.sys.ReadState(checkCtx, e.id, el.Orders)
		if err != nil {
			return nil, fmt.Errorf("invariant check of %s: %w", e.id, err)
		}
		checks = append(checks, Check(el, state, time.Second))
		if len(r.events) == 1 {
			res.ledger, res.state = el, state
		}
	}
	check := checks[0]
	if len(r.events) > 1 {
		check = mergeChecks(r.events, checks)
		res.Events = r.eventResults(checks)
	}
	check.ReadSeconds = time.Since(readStart).Seconds()

	r.fill(res, cpu0, cpu1, &led, check)
	return res, nil
}

// createEvent creates e, its layout, picker and seat map cache, and reads
// its first seat map (strong).
func (r *runner) createEvent(ctx context.Context, e *eventRun, logf func(string, ...any)) error {
	cfg := r.cfg
	ecfg := cfg
	ecfg.Seats = e.seats
	ev := eventFor(e.id, ecfg)
	logf("creating event %s: %d seats in %d sections, maxSeatsPerBuyer %d, hold TTL %v", e.id, e.seats, len(ev.Venue.Sections), cfg.MaxSeatsPerBuyer, cfg.HoldTTL)
	if err := r.sys.CreateEvent(ctx, ev); err != nil {
		return fmt.Errorf("create event %s: %w", e.id, err)
	}
	for _, c := range ev.Categories {
		e.cats = append(e.cats, c.ID)
	}
	e.layout = layoutOf(ev)
	hot := int(float64(e.seats)*cfg.HotFraction + 0.5)
	e.picker = Picker{Seats: e.seats, Hot: max(hot, 1), HotShare: cfg.HotShare}
	e.cache = newSeatCache(r.sys, e.id, e.layout, cfg.SeatMapMaxAge, r.rec)
	e.cache.onEmpty = func(ctx context.Context) { r.checkSoldOut(ctx, e) }
	if err := e.cache.fetch(ctx, true); err != nil {
		return fmt.Errorf("first seat map of %s: %w", e.id, err)
	}
	if got := len(e.cache.Current().Free); got != e.seats {
		return fmt.Errorf("the new event %s's seat map has %d free seats, not %d", e.id, got, e.seats)
	}
	return nil
}

// resolve sends every write whose outcome is still unknown again with its
// key (bounded by Grace); a 201 turns into an acknowledged hold or order.
func (r *runner) resolve(ctx context.Context, led *Ledger, users []*user) {
	if len(led.Unknown) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Grace)
	defer cancel()
	buyers := r.buyersOf(users)
	var still []UnknownWrite
	for _, w := range led.Unknown {
		if w.Op != "purchase" {
			// A replayed hold would hold anew if the first never applied,
			// and a release's seats are free or expire either way: only a
			// purchase decides whether seats are sold.
			still = append(still, w)
			continue
		}
		h := findHold(led, w.Hold)
		if h == nil || buyers[h.Buyer] == nil {
			// Every purchase is of a hold the bench was acknowledged, by
			// a buyer it minted: nothing to send it as otherwise.
			still = append(still, w)
			continue
		}
		hold := &client.Hold{ID: h.ID, Event: h.Event, Buyer: h.Buyer, Seats: h.Seats, ExpiresAt: h.ExpiresAt}
		var o *client.Order
		var err error
		for try := 0; try < resolveTries; try++ {
			o, err = buyers[h.Buyer].Purchase(ctx, w.Key, hold, r.cfg.PaymentMethod)
			if !unknownOutcome(err) || ctx.Err() != nil {
				break
			}
		}
		switch {
		case err == nil:
			r.rec.resolvedWrites.Add(1)
			led.Orders = append(led.Orders, OrderRecord{ID: o.ID, Event: w.Event, Hold: w.Hold, Buyer: o.Buyer, Seats: o.Seats, Resolved: true})
			h.Outcome, h.Order = HoldPurchased, o.ID
		case !unknownOutcome(err):
			// Definitely not bought (expired, not active): its seats are
			// free or held by this hold until it expires.
			r.rec.resolvedWrites.Add(1)
			h.Outcome = HoldOpen
		default:
			still = append(still, w)
		}
	}
	led.Unknown = still
}

func findHold(led *Ledger, id string) *HoldRecord {
	for i := range led.Holds {
		if led.Holds[i].ID == id {
			return &led.Holds[i]
		}
	}
	return nil
}

// buyersOf maps each user's identities' subjects to their Buyer; a user
// keeps only its current one, so the others are made again (for boxoffice,
// a token minted again: an HMAC).
func (r *runner) buyersOf(users []*user) map[string]Buyer {
	out := map[string]Buyer{}
	for _, u := range users {
		for k := 1; k <= u.identities; k++ {
			subject := u.subjectOf(k)
			b, err := r.sys.Buyer(u.id, subject)
			if err != nil {
				continue
			}
			out[subject] = b
		}
	}
	return out
}

// leaderChanges lists the shards whose leader or term changed between two
// readings of the cluster: an election or a transfer during the load.
func leaderChanges(a, b client.ClusterStatus) []string {
	was := map[int]client.ShardStatus{}
	for _, s := range a.Shards {
		was[s.ID] = s
	}
	var out []string
	for _, s := range b.Shards {
		w, ok := was[s.ID]
		if ok && (w.Leader != s.Leader || w.Term != s.Term) {
			out = append(out, fmt.Sprintf("shard %d: leader %s → %s (term %d → %d)", s.ID, w.Leader, s.Leader, w.Term, s.Term))
		}
	}
	return out
}

// eventFor lays out seats sections of 100 rows × 50 seats (a last, smaller
// section or two for the rest), priced by tier: the first fifth of the
// seats (the hot set's neighbourhood) dearest.
func eventFor(id string, cfg Config) *client.Event {
	const rows, perRow = 100, 50
	var secs []client.Section
	add := func(r, p int) {
		secs = append(secs, client.Section{ID: "S" + strconv.Itoa(len(secs)+1), Rows: r, SeatsPerRow: p})
	}
	for left := cfg.Seats; left > 0; {
		switch {
		case left >= rows*perRow:
			add(rows, perRow)
			left -= rows * perRow
		case left >= perRow:
			add(left/perRow, perRow)
			left %= perRow
		default:
			add(1, left)
			left = 0
		}
	}
	at := 0
	for i := range secs {
		switch f := float64(at) / float64(cfg.Seats); {
		case f < 0.2:
			secs[i].Category = "floor"
		case f < 0.6:
			secs[i].Category = "lower"
		default:
			secs[i].Category = "upper"
		}
		at += secs[i].Rows * secs[i].SeatsPerRow
	}
	var cats []client.Category
	for _, c := range []client.Category{
		{ID: "floor", Name: "Floor", PriceCents: 12900},
		{ID: "lower", Name: "Lower tier", PriceCents: 8900},
		{ID: "upper", Name: "Upper tier", PriceCents: 4900},
	} {
		if slices.ContainsFunc(secs, func(s client.Section) bool { return s.Category == c.ID }) {
			cats = append(cats, c)
		}
	}
	return &client.Event{
		ID: id, Name: "Bench on-sale " + id, Type: "concert", Location: "Loopback",
		StartsAt:   time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second),
		Categories: cats,
		Venue:      client.Venue{Sections: secs},
		Limits:     client.Limits{MaxSeatsPerBuyer: cfg.MaxSeatsPerBuyer, HoldTTLSeconds: int(cfg.HoldTTL / time.Second)},
	}
}

// numCPU is the machine's core count, for the reports.
func numCPU() int { return runtime.NumCPU() }
