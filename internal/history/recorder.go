package history

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"boxoffice"
	"boxoffice/client"
)

// Recorder collects the operations of a run. It is safe for concurrent use.
type Recorder struct {
	start time.Time
	nonce string

	mu      sync.Mutex
	ops     []Op
	resend  map[int]attempt // writes of unknown outcome: how to send them again
	clients int
	keys    int
	final   *Final
}

// attempt sends a write once more with its key and fills op's outcome and
// output.
type attempt func(ctx context.Context, op *Op)

// NewRecorder starts a recording; times are measured from now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), nonce: rand.Text()[:8], resend: make(map[int]attempt)}
}

// Now is the recorder's clock: nanoseconds since it started, monotonic.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records an operation made by other means (raw HTTP, another client);
// its Call and Return must come from Now. It returns the operation's id.
func (r *Recorder) Add(op Op) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.ID = len(r.ops)
	r.ops = append(r.ops, op)
	return op.ID
}

// History returns a copy of what was recorded so far, with the final state
// if Collect ran.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := make([]Op, len(r.ops))
	copy(ops, r.ops)
	return History{Ops: ops, Final: r.final}
}

// Unresolved counts the writes whose outcome is still unknown.
func (r *Recorder) Unresolved() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.resend)
}

// resendTimeout bounds one resend of a write by Resolve.
const resendTimeout = 10 * time.Second

// Resolve sends every write of unknown outcome again with its idempotency
// key, pass after pass (waiting between passes), until each has a definite
// answer or ctx ends; it returns how many are left unknown. Call it once
// the faults are healed and before Collect: a write resent now takes effect
// now if it never did before, and the final reads must come after it.
func (r *Recorder) Resolve(ctx context.Context) int {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		r.mu.Lock()
		var ids []int
		for id := range r.resend {
			ids = append(ids, id)
		}
		r.mu.Unlock()
		slices.Sort(ids)
		for _, id := range ids {
			if ctx.Err() != nil {
				break
			}
			r.mu.Lock()
			op, again := r.ops[id], r.resend[id]
			r.mu.Unlock()
			actx, cancel := context.WithTimeout(ctx, resendTimeout)
			again(actx, &op)
			cancel()
			if op.Outcome == Unknown {
				continue
			}
			op.Return = r.Now()
			op.Resolved = true
			r.mu.Lock()
			r.ops[id] = op
			delete(r.resend, id)
			r.mu.Unlock()
		}
		left := r.Unresolved()
		if left == 0 || ctx.Err() != nil {
			return left
		}
		select {
		case <-ctx.Done():
			return r.Unresolved()
		case <-time.After(wait):
		}
	}
}

// Client records the calls of one sequential actor (one buyer's session)
// made through the Go client.
type Client struct {
	r     *Recorder
	id    int
	api   *client.Client
	buyer string
}

// NewClient wraps api, whose token is buyer's, as client number n of the
// history (in order of creation, from 0).
func (r *Recorder) NewClient(api *client.Client, buyer string) *Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &Client{r: r, id: r.clients, api: api, buyer: buyer}
	r.clients++
	return c
}

// ID is the client's number in the history.
func (c *Client) ID() int { return c.id }

// Buyer is the buyer the client acts for.
func (c *Client) Buyer() string { return c.buyer }

// record runs one operation: it stamps the call, runs do, stamps the return
// and stores the operation; a write whose outcome is unknown is kept for
// Resolve.
func (c *Client) record(ctx context.Context, op Op, do attempt) Op {
	op.Client, op.Buyer = c.id, c.buyer
	if op.IsWrite() {
		c.r.mu.Lock()
		c.r.keys++
		op.Key = fmt.Sprintf("hist-%s-%d-%d", c.r.nonce, c.id, c.r.keys)
		c.r.mu.Unlock()
	}
	op.Call = c.r.Now()
	do(ctx, &op)
	op.Return = c.r.Now()
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	op.ID = len(c.r.ops)
	c.r.ops = append(c.r.ops, op)
	if op.IsWrite() && op.Outcome == Unknown {
		c.r.resend[op.ID] = do
	}
	return op
}

// Hold holds seats of event, all or nothing.
func (c *Client) Hold(ctx context.Context, event string, seats []string) Op {
	seats = slices.Clone(seats)
	return c.record(ctx, Op{Kind: KindHold, Event: event, Seats: seats}, func(ctx context.Context, op *Op) {
		h, err := c.api.Hold(client.WithIdempotencyKey(ctx, op.Key), event, client.HoldRequest{Seats: seats})
		if outcome(op, err) {
			op.Hold, op.HoldSeats = h.ID, h.Seats
		}
	})
}

// HoldArea holds quantity places of a general-admission area: the op's
// Seats are the places given, once it succeeded.
func (c *Client) HoldArea(ctx context.Context, event, area string, quantity int) Op {
	return c.record(ctx, Op{Kind: KindHoldArea, Event: event, Area: area, Quantity: quantity}, func(ctx context.Context, op *Op) {
		h, err := c.api.Hold(client.WithIdempotencyKey(ctx, op.Key), event, client.HoldRequest{Area: area, Quantity: quantity})
		if outcome(op, err) {
			op.Hold, op.HoldSeats, op.Seats = h.ID, h.Seats, slices.Clone(h.Seats)
		}
	})
}

// Release frees seats of a hold (all of them if none are given).
func (c *Client) Release(ctx context.Context, event, hold string, seats ...string) Op {
	seats = slices.Clone(seats)
	return c.record(ctx, Op{Kind: KindRelease, Event: event, Hold: hold, Seats: seats}, func(ctx context.Context, op *Op) {
		h, err := c.api.Release(client.WithIdempotencyKey(ctx, op.Key), hold, seats...)
		if outcome(op, err) {
			op.State, op.HoldSeats = client.HoldReleased, nil
			if h != nil {
				op.State, op.HoldSeats = h.State, h.Seats
			}
		}
	})
}

// Purchase checks out a hold, paying with paymentMethod.
func (c *Client) Purchase(ctx context.Context, event, hold, paymentMethod string) Op {
	return c.record(ctx, Op{Kind: KindPurchase, Event: event, Hold: hold, PaymentMethod: paymentMethod}, func(ctx context.Context, op *Op) {
		o, err := c.api.Purchase(client.WithIdempotencyKey(ctx, op.Key), hold, paymentMethod)
		if outcome(op, err) {
			op.Order, op.HoldSeats, op.State = o.ID, o.Seats, o.State
		}
	})
}

// ReadSeats reads the seats of one section of event (all sections if
// section is ""), strongly.
func (c *Client) ReadSeats(ctx context.Context, event, section string) Op {
	return c.record(ctx, Op{Kind: KindReadSeats, Event: event}, func(ctx context.Context, op *Op) {
		m, err := c.api.Seats(ctx, event, client.SeatQuery{Section: section, Strong: true})
		if outcome(op, err) {
			op.Observed = make(map[string]string, len(m.Seats))
			for _, s := range m.Seats {
				op.Observed[s.ID] = s.State
			}
		}
	})
}

// ReadHold reads a hold strongly.
func (c *Client) ReadHold(ctx context.Context, event, hold string) Op {
	return c.record(ctx, Op{Kind: KindReadHold, Event: event, Hold: hold}, func(ctx context.Context, op *Op) {
		h, err := c.api.GetHold(client.WithStrongRead(ctx), hold)
		if outcome(op, err) {
			op.State, op.HoldSeats, op.Order = h.State, h.Seats, h.Order
		}
	})
}

// outcome sets op's outcome from a call's error and reports success.
func outcome(op *Op, err error) bool {
	op.Outcome, op.Code, op.Detail = Classify(err)
	return op.Outcome == OK
}

// Classify says what an error of the Go client means for a write: OK (nil),
// Fail (a refusal: nothing was done) or Unknown, with the code and detail.
// A refusal is a 4xx other than 408 and 429, or a call the client refused to
// send; everything else — 5xx (including not_leader_retry, which the client
// already retried), timeouts, cut connections, a context that ended — may
// or may not have been applied.
func Classify(err error) (Outcome, string, string) {
	if err == nil {
		return OK, "", ""
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Status == 0:
			return Fail, string(ce.Code), ce.Detail // never sent
		case ce.Status >= 400 && ce.Status < 500 && ce.Status != http.StatusRequestTimeout && ce.Status != http.StatusTooManyRequests:
			return Fail, string(ce.Code), ce.Detail
		}
		return Unknown, string(ce.Code), ce.Detail
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Unknown, string(boxoffice.CodeTimeout), err.Error()
	}
	return Unknown, "transport", err.Error()
}
