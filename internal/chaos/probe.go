package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"boxoffice/client"
	"boxoffice/raftnode"
)

// The probe is an open-loop writer beside the bench. The bench's users are
// a closed loop: a user whose request hangs on a paused or cut-off node
// sends nothing else until it returns, so during an outage the bench sends
// few requests (coordinated omission) and, when all its users hang at
// once, no write reaches the new leader to show that it took over. The
// probe starts a hold and its release at a fixed rate whatever is in
// flight, on an event of its own in the shard under load (so it never
// touches the seats the bench checks): its writes give an availability
// free of that bias and acknowledge writes steadily for the failover
// measure.
const (
	// ProbeInterval is the time between two probes (a hold, then its
	// release: two writes).
	ProbeInterval = 100 * time.Millisecond
	// probeInflightMax bounds the probes in flight; a probe due while that
	// many hang is not sent, and counts as failed.
	probeInflightMax = 256
	// probeTimeout bounds one probe's two writes.
	probeTimeout = 30 * time.Second
	// probeSeats is the size of the probe's event: probes cycle over its
	// seats, and each releases its hold at once.
	probeRows, probeSeatsPerRow = 10, 50
	probeSeats                  = probeRows * probeSeatsPerRow
	// probeKeyPrefix starts the Idempotency-Key of every probe write; the
	// meter counts them apart.
	probeKeyPrefix = "chaos-probe-"
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

// probe runs probes against targets until stop is closed.
type probe struct {
	event   string
	round   int
	clients []*client.Client // one per target, each starting there
	mint    func(subject, role string) (string, error)
	meter   *Meter
}

// newProbe creates the probe's event (as admin) and its clients.
func newProbe(ctx context.Context, targets []string, admin string, event string, round int, mint func(string, string) (string, error), meter *Meter) (*probe, error) {
	p := &probe{event: event, round: round, mint: mint, meter: meter}
	for i := range targets {
		cc := client.DefaultConfig()
		cc.Nodes = append(append([]string(nil), targets[i:]...), targets[:i]...)
		cl, err := client.New(cc)
		if err != nil {
			return nil, err
		}
		p.clients = append(p.clients, cl)
	}
	ev := &client.Event{
		ID: event, Name: "Chaos probe " + event, Type: "probe", Location: "Loopback",
		StartsAt:   time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second),
		Categories: []client.Category{{ID: "floor", Name: "Floor", PriceCents: 100}},
		Venue:      client.Venue{Sections: []client.Section{{ID: "P", Category: "floor", Rows: probeRows, SeatsPerRow: probeSeatsPerRow}}},
		Limits:     client.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 60},
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := p.clients[0].WithToken(admin).CreateEvent(client.WithIdempotencyKey(cctx, probeKeyPrefix+"create-"+event), ev); err != nil {
		return nil, fmt.Errorf("create the probe's event %s: %w", event, err)
	}
	return p, nil
}

// run sends a probe every ProbeInterval until stop, then waits for those in
// flight (each bounded by probeTimeout).
func (p *probe) run(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
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

// one holds seat k of the probe's event for buyer k and releases it.
func (p *probe) one(ctx context.Context, k int) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	seat := k % probeSeats
	tok, err := p.mint(probeKeyPrefix+strconv.Itoa(seat), "buyer")
	if err != nil {
		return
	}
	cl := p.clients[k%len(p.clients)].WithToken(tok)
	seatID := fmt.Sprintf("P-%d-%d", seat/probeSeatsPerRow+1, seat%probeSeatsPerRow+1)
	key := fmt.Sprintf("%s%d-%d", probeKeyPrefix, p.round, k)
	h, err := cl.Hold(client.WithIdempotencyKey(ctx, key+"-h"), p.event, client.HoldRequest{Seats: []string{seatID}})
	if err != nil {
		return // a conflict (the seat's last hold not released yet), or a failure the meter saw
	}
	cl.Release(client.WithIdempotencyKey(ctx, key+"-r"), h.ID)
}

func (p *probe) close() {
	for _, cl := range p.clients {
		cl.CloseIdleConnections()
	}
}
