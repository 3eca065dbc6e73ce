package history_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice/client"
	"boxoffice/httpapi"
	"boxoffice/internal/history"
	"boxoffice/internal/testcluster"
)

// The recorder against a real three-node cluster, without faults: every
// kind of call is recorded with the shape the model expects, an unknown
// outcome is resolved with its key, the final reads are collected, and the
// whole history passes the check.
func TestRecorderAgainstACluster(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	var nodes []string
	for _, m := range c.Members {
		nodes = append(nodes, "http://"+m.HTTPAddr)
	}
	cfg := client.DefaultConfig()
	cfg.Nodes = nodes
	cfg.Token = testcluster.AdminToken()
	admin, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(admin.CloseIdleConnections)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const event = "rec-e"
	_, err = admin.CreateEvent(ctx, &client.Event{
		ID: event, Name: "Recorder", Categories: []client.Category{{ID: "std", Name: "Std", PriceCents: 100}},
		Venue: client.Venue{Sections: []client.Section{
			{ID: "A", Category: "std", Rows: 1, SeatsPerRow: 4},
			{ID: "B", Category: "std", Rows: 1, SeatsPerRow: 4},
		}},
		Limits: client.Limits{MaxSeatsPerBuyer: 100, HoldTTLSeconds: 3600},
	})
	require.NoError(t, err)

	rec := history.NewRecorder()
	b1 := rec.NewClient(admin.WithToken(testcluster.Token("b1", httpapi.RoleBuyer)), "b1")
	b2 := rec.NewClient(admin.WithToken(testcluster.Token("b2", httpapi.RoleBuyer)), "b2")

	h := b1.Hold(ctx, event, []string{"A-1-1", "A-1-2"})
	require.Equal(t, history.OK, h.Outcome, h.String())
	require.NotEmpty(t, h.Hold)
	require.ElementsMatch(t, h.Seats, h.HoldSeats)

	lost := b2.Hold(ctx, event, []string{"A-1-2", "A-1-3"})
	require.Equal(t, history.Fail, lost.Outcome, lost.String())
	require.Equal(t, "seat_unavailable", lost.Code)

	part := b1.Release(ctx, event, h.Hold, "A-1-1")
	require.Equal(t, history.OK, part.Outcome, part.String())
	require.Equal(t, client.HoldActive, part.State)
	require.Equal(t, []string{"A-1-2"}, part.HoldSeats)

	rh := b1.ReadHold(ctx, event, h.Hold)
	require.Equal(t, history.OK, rh.Outcome, rh.String())
	require.Equal(t, client.HoldActive, rh.State)

	p := b1.Purchase(ctx, event, h.Hold, "pm_card_visa")
	require.Equal(t, history.OK, p.Outcome, p.String())
	require.NotEmpty(t, p.Order)
	require.Equal(t, []string{"A-1-2"}, p.HoldSeats)

	h2 := b2.Hold(ctx, event, []string{"A-1-3"})
	require.Equal(t, history.OK, h2.Outcome, h2.String())
	declined := b2.Purchase(ctx, event, h2.Hold, "pm_card_chargeDeclined")
	require.Equal(t, history.Fail, declined.Outcome, declined.String())
	require.Equal(t, "payment_declined", declined.Code)
	all := b2.Release(ctx, event, h2.Hold)
	require.Equal(t, history.OK, all.Outcome, all.String())
	require.Equal(t, client.HoldReleased, all.State)
	again := b2.Release(ctx, event, h2.Hold)
	require.Equal(t, history.Fail, again.Outcome)
	require.Equal(t, "hold_not_active", again.Code)

	// A call whose context ends before any answer has an unknown outcome;
	// Resolve learns it by sending it again with its key.
	gone, stop := context.WithCancel(ctx)
	stop()
	unk := b2.Hold(gone, event, []string{"B-1-1"})
	require.Equal(t, history.Unknown, unk.Outcome, unk.String())
	require.Equal(t, 1, rec.Unresolved())
	require.Equal(t, 0, rec.Resolve(ctx))

	rs := b2.ReadSeats(ctx, event, "A")
	require.Equal(t, history.OK, rs.Outcome, rs.String())
	require.Equal(t, map[string]string{"A-1-1": "free", "A-1-2": "sold", "A-1-3": "free", "A-1-4": "free"}, rs.Observed)

	f, err := rec.Collect(ctx, admin, event, 8)
	require.NoError(t, err)
	require.Equal(t, "held", f.Seats["B-1-1"], "the resolved hold took effect")
	require.Equal(t, client.OrderPaid, f.Orders[p.Order].State)

	hist := rec.History()
	var resolved history.Op
	for _, op := range hist.Ops {
		if op.ID == unk.ID {
			resolved = op
		}
	}
	require.True(t, resolved.Resolved)
	require.Equal(t, history.OK, resolved.Outcome)
	require.NotEmpty(t, resolved.Hold)
	require.Contains(t, f.Holds, resolved.Hold)

	v, err := history.Check(hist, history.Options{Dir: history.ArtifactDir(t.Name(), "")})
	require.NoError(t, err)
	require.True(t, v.OK(), v.String())
	require.Zero(t, v.Unknown, "nothing is left unknown once resolved")
	require.Equal(t, 1, v.Resolved)
}

// Area holds through the recorder against a real cluster: concurrent
// buyers take a small standing area's places by quantity, release and buy
// some; one call of unknown outcome is resolved with its key; the history
// of who held which place passes the check.
func TestRecorderAreaHolds(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3})
	var nodes []string
	for _, m := range c.Members {
		nodes = append(nodes, "http://"+m.HTTPAddr)
	}
	cfg := client.DefaultConfig()
	cfg.Nodes = nodes
	cfg.Token = testcluster.AdminToken()
	admin, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(admin.CloseIdleConnections)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const event = "rec-ga"
	_, err = admin.CreateEvent(ctx, &client.Event{
		ID: event, Name: "Standing", Categories: []client.Category{{ID: "ga", Name: "Standing", PriceCents: 100}},
		Venue:  client.Venue{Sections: []client.Section{}, Areas: []client.Area{{ID: "PIT", Category: "ga", Capacity: 10}}},
		Limits: client.Limits{MaxSeatsPerBuyer: 100, HoldTTLSeconds: 3600},
	})
	require.NoError(t, err)

	rec := history.NewRecorder()
	var wg sync.WaitGroup
	for i := range 4 {
		b := rec.NewClient(admin.WithToken(testcluster.Token(fmt.Sprintf("g%d", i), httpapi.RoleBuyer)), fmt.Sprintf("g%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				h := b.HoldArea(ctx, event, "PIT", 1+(i+round)%3)
				if h.Outcome != history.OK {
					continue // the pit is full for now: nothing changed
				}
				switch round % 3 {
				case 0:
					b.Release(ctx, event, h.Hold)
				case 1:
					b.Purchase(ctx, event, h.Hold, "pm_card_visa")
				}
				b.ReadSeats(ctx, event, "PIT")
			}
		}()
	}
	wg.Wait()
	gone, stop := context.WithCancel(ctx)
	stop()
	unk := rec.NewClient(admin.WithToken(testcluster.Token("late", httpapi.RoleBuyer)), "late").HoldArea(gone, event, "PIT", 1)
	require.Equal(t, history.Unknown, unk.Outcome, unk.String())
	require.Equal(t, 0, rec.Resolve(ctx))

	_, err = rec.Collect(ctx, admin, event, 10)
	require.NoError(t, err)
	hist := rec.History()
	areaHolds := 0
	for _, op := range hist.Ops {
		if op.Kind == history.KindHoldArea && op.Outcome == history.OK {
			areaHolds++
			require.Len(t, op.Seats, op.Quantity, op.String())
		}
	}
	require.GreaterOrEqual(t, areaHolds, 5, "most area holds got places")
	v, err := history.Check(hist, history.Options{Dir: history.ArtifactDir(t.Name(), "")})
	require.NoError(t, err)
	require.True(t, v.OK(), v.String())
	require.Equal(t, 1, v.Resolved)
}
