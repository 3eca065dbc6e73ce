package history

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"boxoffice/client"
)

// collectRetry is the pause between tries of a final read.
const collectRetry = 100 * time.Millisecond

// Collect reads the final state of event with strong reads through admin (a
// client whose token may read every hold and order): the whole seat map,
// every hold the history names, and the orders of those holds. The seat
// map and hold reads are recorded too, so the linearizability check covers
// them. It reads until two seat maps taken around the hold and order reads
// agree (a checkout still in flight may finish meanwhile), and fails if ctx
// ends first. Call it after Resolve, once the cluster is healed.
func (r *Recorder) Collect(ctx context.Context, admin *client.Client, event string, capacity int) (*Final, error) {
	c := r.NewClient(admin, "admin")
	before, err := c.readAll(ctx, event)
	if err != nil {
		return nil, err
	}
	for {
		f := &Final{Event: event, Capacity: capacity, Seats: before, Holds: map[string]HoldView{}, Orders: map[string]OrderView{}}
		if err := c.readHolds(ctx, event, f); err != nil {
			return nil, err
		}
		after, err := c.readAll(ctx, event)
		if err != nil {
			return nil, err
		}
		if maps.Equal(before, after) {
			r.mu.Lock()
			r.final = f
			r.mu.Unlock()
			return f, nil
		}
		before = after
	}
}

// readAll reads the whole seat map strongly, retrying until it succeeds.
func (c *Client) readAll(ctx context.Context, event string) (map[string]string, error) {
	for {
		op := c.ReadSeats(ctx, event, "")
		if op.Outcome == OK {
			return op.Observed, nil
		}
		if err := pause(ctx, fmt.Sprintf("read the seat map of %s: %s %s", event, op.Code, op.Detail)); err != nil {
			return nil, err
		}
	}
}

// readHolds reads every hold the history names, then the order of each
// that has one, and the orders acknowledged purchases named.
func (c *Client) readHolds(ctx context.Context, event string, f *Final) error {
	holds := map[string]bool{}
	orders := map[string]bool{}
	for _, op := range c.r.History().Ops {
		if op.Hold != "" && op.Event == event {
			holds[op.Hold] = true
		}
		if op.Kind == KindPurchase && op.Order != "" && op.Event == event {
			orders[op.Order] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(holds)) {
		for {
			op := c.ReadHold(ctx, event, id)
			if op.Outcome == OK {
				f.Holds[id] = HoldView{ID: id, Seats: op.HoldSeats, State: op.State, Order: op.Order}
				if op.Order != "" {
					orders[op.Order] = true
				}
				break
			}
			if err := pause(ctx, fmt.Sprintf("read hold %s: %s %s", id, op.Code, op.Detail)); err != nil {
				return err
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(orders)) {
		for {
			o, err := c.api.GetOrder(client.WithStrongRead(ctx), id)
			if err == nil {
				f.Orders[id] = OrderView{ID: o.ID, Hold: o.Hold, Buyer: o.Buyer, Seats: o.Seats, State: o.State, PaymentRef: o.PaymentRef, AmountCents: o.AmountCents}
				break
			}
			if err := pause(ctx, fmt.Sprintf("read order %s: %v", id, err)); err != nil {
				return err
			}
		}
	}
	return nil
}

func pause(ctx context.Context, what string) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("final reads: %s: %w", what, ctx.Err())
	case <-time.After(collectRetry):
		return nil
	}
}
