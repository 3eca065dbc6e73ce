package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"boxoffice/client"
	"boxoffice/internal/history"
	"boxoffice/raftnode"
)

// The probe is an open-loop writer beside the bench, recorded for the
// linearizability check. The bench's users are a closed loop: a user whose
// request hangs on a paused or cut-off node sends nothing else until it
// returns, so during an outage the bench sends few requests (coordinated
// omission) and, when all its users hang at once, no write reaches the new
// leader to show that it took over. The probe starts a hold and its release
// at a fixed rate whatever is in flight, and readers read its seat map
// strongly through every node, on an event of its own in the shard under
// load (so it never touches the seats the bench checks). Its writes give an
// availability free of the closed loop's bias and acknowledge writes
// steadily for the failover measure, and every one of its operations goes
// into a history (internal/history) checked for linearizability at the end.
const (
	// ProbeInterval is the time between two probes (a hold, then its
	// release: two writes).
	ProbeInterval = 100 * time.Millisecond
	// probeReadInterval is the pause between two strong reads of one
	// reader (one reader per node).
	probeReadInterval = 500 * time.Millisecond
	// probeInflightMax bounds the probes in flight; a probe due while that
	// many hang is not sent, and counts as failed.
	probeInflightMax = 256
	// probeTimeout bounds one probe's two writes.
	probeTimeout = 30 * time.Second
	// The probe's event: probes cycle over its seats, and each releases
	// its hold at once. Its holds must not expire within a history (the
	// model does not know expiry): the longest TTL an event may have.
	probeRows, probeSeatsPerRow = 10, 50
	probeSeats                  = probeRows * probeSeatsPerRow
	probeHoldTTLSeconds         = 3600
	// probeKeyPrefix starts the Idempotency-Key of every write a
	// history.Client sends (TestProbeKeys pins it): the meter counts the
	// probe's writes apart by it.
	probeKeyPrefix = "hist-"
	// historyTimeout bounds the end of a round's history: resolving its
	// unknown writes, the final strong reads, and the search.
	historyTimeout = 3 * time.Minute
)

// probeEventID returns an event id of the probe, for round, that lives in
// shard (event ids hash to shards: try suffixes until one lands there).
func probeEventID(seed uint64, round, shard, shards int) string {
	for k := 0; ; k++ {
		id := fmt.Sprintf("chaos-%d-r%d-probe%d", seed, round, k)
		if raftnode.ShardOf(id, shards) == shard {
			return id
		}
	}
}

// probe runs probes against targets until stopped, recording them.
//
// Each probe and each read has a client of its own, which starts at the
// next node in turn, as a load balancer spreads requests: a client.Client
// sticks to the node that last answered, so clients shared by many calls
// drift together (a rolling restart moves every one of them to the node
// restarted first, the next one along), and one frozen node then holds
// every call at once; the probe must keep reaching the live nodes to see
// the new leader take over.
type probe struct {
	event   string
	targets []string
	admin   *client.Client
	adminTo string // the admin's token
	rec     *history.Recorder
	mint    func(subject, role string) (string, error)
	meter   *Meter
}

// newClient returns a client of the probe that starts at target i mod n and
// fails over to the others; close its idle connections when done.
func (p *probe) newClient(i int, token string) (*client.Client, error) {
	i %= len(p.targets)
	cc := client.DefaultConfig()
	cc.Nodes = append(append([]string(nil), p.targets[i:]...), p.targets[:i]...)
	cc.Token = token
	cc.IdleConnsPerNodeMax = 1
	return client.New(cc)
}

// newProbe creates the probe's event (as admin).
func newProbe(ctx context.Context, targets []string, admin string, event string, mint func(string, string) (string, error), meter *Meter) (*probe, error) {
	p := &probe{event: event, targets: targets, mint: mint, meter: meter, rec: history.NewRecorder(), adminTo: admin}
	var err error
	if p.admin, err = p.newClient(0, admin); err != nil {
		return nil, err
	}
	ev := &client.Event{
		ID: event, Name: "Chaos probe " + event, Type: "probe", Location: "Loopback",
		StartsAt:   time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second),
		Categories: []client.Category{{ID: "floor", Name: "Floor", PriceCents: 100}},
		Venue:      client.Venue{Sections: []client.Section{{ID: "P", Category: "floor", Rows: probeRows, SeatsPerRow: probeSeatsPerRow}}},
		Limits:     client.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: probeHoldTTLSeconds},
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.admin.CreateEvent(client.WithIdempotencyKey(cctx, "chaos-create-"+event), ev); err != nil {
		return nil, fmt.Errorf("create the probe's event %s: %w", event, err)
	}
	return p, nil
}

// run sends a probe every ProbeInterval, and reads through every node, until
// stop; then it waits for those in flight (each bounded by probeTimeout).
func (p *probe) run(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for i := range p.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.read(ctx, stop, i)
		}()
	}
	sem := make(chan struct{}, probeInflightMax)
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for k := 0; ; k++ {
		select {
		case <-stop:
			wg.Wait()
			return
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			p.meter.probeNotSent()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p.one(ctx, k)
		}()
	}
}

// one holds seat k of the probe's event for a buyer of its own and
// releases it: one sequential actor of the history. A hold whose outcome is
// unknown is left alone (the history's rule; Resolve learns it).
func (p *probe) one(ctx context.Context, k int) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	seat := k % probeSeats
	buyer := "chaos-probe-" + strconv.Itoa(seat)
	tok, err := p.mint(buyer, "buyer")
	if err != nil {
		return
	}
	api, err := p.newClient(k, tok)
	if err != nil {
		return
	}
	defer api.CloseIdleConnections()
	c := p.rec.NewClient(api, buyer)
	seatID := fmt.Sprintf("P-%d-%d", seat/probeSeatsPerRow+1, seat%probeSeatsPerRow+1)
	h := c.Hold(ctx, p.event, []string{seatID})
	if h.Outcome != history.OK {
		return
	}
	c.Release(ctx, p.event, h.Hold)
}

// read reads the probe's seat map strongly, starting at node i, one read at
// a time, until stop.
func (p *probe) read(ctx context.Context, stop <-chan struct{}, i int) {
	for {
		if api, err := p.newClient(i, p.adminTo); err == nil {
			rctx, cancel := context.WithTimeout(ctx, probeTimeout)
			p.rec.NewClient(api, fmt.Sprintf("chaos-reader-%d", i)).ReadSeats(rctx, p.event, "")
			cancel()
			api.CloseIdleConnections()
		}
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(probeReadInterval):
		}
	}
}

// check ends the probe's history once the faults are over: it resolves the
// writes of unknown outcome, reads the final state and checks the history
// (artifacts of a failed check go to dir/history-<event>, if dir is set).
func (p *probe) check(ctx context.Context, dir string) (history.Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	if left := p.rec.Resolve(ctx); left > 0 {
		return history.Verdict{}, fmt.Errorf("%s: %d write(s) of unknown outcome could not be resolved", p.event, left)
	}
	if _, err := p.rec.Collect(ctx, p.admin, p.event, probeSeats); err != nil {
		return history.Verdict{}, fmt.Errorf("%s: %w", p.event, err)
	}
	opts := history.Options{Timeout: time.Minute}
	if dir != "" {
		opts.Dir = filepath.Join(dir, "history-"+p.event)
	}
	return history.Check(p.rec.History(), opts)
}

func (p *probe) close() { p.admin.CloseIdleConnections() }
