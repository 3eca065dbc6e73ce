package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"boxoffice"
	"boxoffice/fsm"
)

// The checkout saga. Every step is a log entry (fsm.CheckoutBegin,
// CheckoutComplete, CheckoutFail, RefundDone); the charge between them is
// made with the order id as the gateway's idempotency key, so that however
// often a step is retried — by the buyer, after a timeout, by a new leader —
// the buyer is charged at most once, and a charge always ends as a sale or a
// refund:
//
//	begin ──► charge(key = order id) ──► complete ──► paid
//	              │ declined                 └─ seats lost ──► refund due ──► refunded
//	              ├───────────────► fail ──► hold active again (402)
//	              └ unknown ──► look up (same key): charged → complete; not charged → charge again
//	                                                  with the same key while the lease allows, else fail
//
// A charge whose outcome stays unknown is never repeated with a new key:
// the checkout stays pending, its seats taken under the lease, and the
// recovery loop of the shard's leader resolves it.

// Node is what the saga needs of a cluster node; *raftnode.Node implements it.
type Node interface {
	ShardCount() int
	IsLeader(shard int) bool
	Propose(ctx context.Context, shard int, c fsm.Command) (fsm.Result, error)
	Store(shard int) *fsm.Store
}

// Config tunes the saga.
type Config struct {
	// Lease bounds how long a checkout keeps its seats while its charge is
	// in flight.
	Lease time.Duration
	// Margin absorbs clock differences between nodes: no charge is started
	// later than Margin before the lease ends (by this node's clock), and
	// recovery fails a checkout whose charge is not found only Margin after
	// the lease ended.
	Margin time.Duration
	// CallTimeout bounds one gateway call.
	CallTimeout time.Duration
	// LookupAttempts bounds look-ups after an unknown outcome, per drive.
	LookupAttempts int
	// RecoveryInterval is how often a leader resolves checkouts and refunds
	// in flight.
	RecoveryInterval time.Duration
	// RecoveryBatch bounds the checkouts and refunds resolved per round.
	RecoveryBatch int
	// VerifyWindow is how long a checkout that recovery failed (its charge
	// not found after the lease) is still looked up, in case a slow gateway
	// makes the charge late: such a charge is then refunded.
	VerifyWindow time.Duration
	Logger       *slog.Logger
	// StepHook, if set, is called after each step of a purchase on this
	// node ("begun", "charged", "completed") with the order id: tests stop
	// a leader at a chosen point of the saga with it.
	StepHook func(order, step string)
	// Observe, if set, is told each outcome this node resolves: "paid"
	// (with the seats sold), "declined", "unknown" (left to recovery),
	// "lease_ended" (failed: no charge before the lease ended),
	// "too_late" (charged after the seats were lost: refund due),
	// "refunded". It must not block.
	Observe func(outcome string, seats int)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Lease:            2 * time.Minute,
		Margin:           10 * time.Second,
		CallTimeout:      20 * time.Second,
		LookupAttempts:   3,
		RecoveryInterval: time.Second,
		RecoveryBatch:    256,
		VerifyWindow:     10 * time.Minute,
	}
}

// Validate lists every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Lease < 2*time.Second || c.Lease.Milliseconds() > boxoffice.CheckoutLeaseMaxMs {
		errs = append(errs, fmt.Errorf("payment: Lease %v out of range 2s..%dms", c.Lease, boxoffice.CheckoutLeaseMaxMs))
	}
	if c.Margin <= 0 || c.Margin*2 >= c.Lease {
		errs = append(errs, errors.New("payment: Margin must be positive and under half the Lease"))
	}
	if c.CallTimeout <= 0 || c.LookupAttempts < 1 || c.LookupAttempts > 100 {
		errs = append(errs, errors.New("payment: CallTimeout must be positive, LookupAttempts 1..100"))
	}
	if c.RecoveryInterval <= 0 || c.RecoveryBatch < 1 || c.RecoveryBatch > 10_000 {
		errs = append(errs, errors.New("payment: RecoveryInterval must be positive, RecoveryBatch 1..10000"))
	}
	if c.VerifyWindow <= 0 || c.VerifyWindow.Milliseconds() > fsm.VerifyMsMax {
		errs = append(errs, fmt.Errorf("payment: VerifyWindow must be in (0, %d ms]", fsm.VerifyMsMax))
	}
	return errors.Join(errs...)
}

// pendingPoll is how often a purchase whose checkout another leader is
// resolving looks at its order again.
const pendingPoll = 20 * time.Millisecond

// Checkout runs the saga on one node: purchases that reach it as the
// shard's leader, and the recovery of whatever is in flight.
type Checkout struct {
	node Node
	gw   boxoffice.PaymentGateway
	cfg  Config
	log  *slog.Logger

	mu      sync.Mutex
	driving map[string]chan struct{} // order (or "refund/"+order) → closed when done

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a saga runner; Start begins its recovery loop.
func New(node Node, gw boxoffice.PaymentGateway, cfg Config) (*Checkout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Checkout{node: node, gw: gw, cfg: cfg, log: cfg.Logger, driving: map[string]chan struct{}{}, stop: make(chan struct{})}, nil
}

// Start runs the recovery loop until Close.
func (c *Checkout) Start() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.cfg.RecoveryInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.Recover()
			}
		}
	}()
}

// Close stops the recovery loop and waits for it.
func (c *Checkout) Close() {
	close(c.stop)
	c.wg.Wait()
}

// Purchase checks out a hold on shard, which this node must lead: begin,
// charge, complete. wrap, if not nil, wraps the begin command (with the
// buyer's idempotency key), so that a retried purchase finds its first
// order. It returns the paid order, or: payment_declined (the hold is
// active again), payment_unknown (the outcome is being resolved: retry with
// the same key), hold_expired (the seats were lost and the charge refunded),
// or the begin's own rejection.
func (c *Checkout) Purchase(ctx context.Context, shard int, hold, buyer, paymentMethod string, wrap func(fsm.Command) fsm.Command) (fsm.Result, error) {
	var begin fsm.Command = &fsm.CheckoutBegin{Hold: hold, Buyer: buyer, PaymentMethod: paymentMethod, LeaseMs: c.cfg.Lease.Milliseconds()}
	if wrap != nil {
		begin = wrap(begin)
	}
	res, err := c.node.Propose(ctx, shard, begin)
	if err != nil {
		return res, err
	}
	if res.Err != nil {
		return res, res.Err
	}
	c.hook(res.Order.ID, "begun")
	o, err := c.node.Store(shard).Order(res.Order.ID)
	if err != nil {
		return res, err
	}
	if o.State == boxoffice.OrderPending {
		// The saga goes on if the buyer stops waiting (ctx ends): the
		// answer is then payment_unknown, and a retry with the same key
		// finds the outcome.
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Not the buyer's ctx, which ends with its wait: only its
			// values (the request id, for the log lines).
			c.drive(context.WithoutCancel(ctx), shard, o)
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
		if o, err = c.node.Store(shard).Order(o.ID); err != nil {
			return res, err
		}
		// Still pending because this node lost the lead mid-saga (a step
		// was refused). A purchase with an Idempotency-Key is handed on:
		// retried at the new leader under the same key, its begin replays
		// this order and the new leader drives it from where it stands
		// (the charge, made under the order's id, is found, not repeated),
		// at once rather than at its next recovery round.
		if o.State == boxoffice.OrderPending && !c.node.IsLeader(shard) && wrap != nil {
			res.Order = o
			return res, boxoffice.Errorf(boxoffice.CodeNotLeader, "this node lost the lead of shard %d during the checkout of order %s; the new leader finishes it under the same Idempotency-Key", shard, o.ID)
		}
		// Without a key, the next leader's recovery resolves the checkout,
		// and its steps reach this replica too, so wait for them while the
		// buyer waits. (Pending on a leader means the gateway has not
		// answered: that is payment_unknown, at once.)
		for o.State == boxoffice.OrderPending && !c.node.IsLeader(shard) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(pendingPoll):
			}
			if o, err = c.node.Store(shard).Order(o.ID); err != nil {
				return res, err
			}
		}
	}
	res.Order = o
	return res, outcomeErr(o)
}

// outcomeErr says what an order's state means to the buyer who paid.
func outcomeErr(o *boxoffice.Order) error {
	switch o.State {
	case boxoffice.OrderPaid:
		return nil
	case boxoffice.OrderPending:
		return boxoffice.Errorf(boxoffice.CodePaymentUnknown, "the payment of order %s is not confirmed yet; retry with the same Idempotency-Key", o.ID)
	case boxoffice.OrderFailed:
		if o.PaymentRef != "" {
			return boxoffice.Errorf(boxoffice.CodeHoldExpired, "order %s: the hold's seats were lost before the payment was confirmed; the charge is refunded", o.ID)
		}
		return boxoffice.Errorf(boxoffice.CodePaymentDeclined, "order %s: payment declined (%s); the hold is active again if it has not expired", o.ID, o.FailReason)
	}
	return boxoffice.Errorf(boxoffice.CodeOrderNotActive, "order %s is %s", o.ID, o.State)
}

// claim marks key as driven by this node; it returns false and a channel
// closed when the other driver is done if someone drives it already.
func (c *Checkout) claim(key string) (bool, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.driving[key]; ok {
		return false, ch
	}
	ch := make(chan struct{})
	c.driving[key] = ch
	return true, ch
}

func (c *Checkout) release(key string, ch chan struct{}) {
	c.mu.Lock()
	delete(c.driving, key)
	c.mu.Unlock()
	close(ch)
}

// drive takes a pending checkout as far as it can: charge, or look up an
// unknown outcome, then complete or fail. If another caller on this node is
// driving it, drive waits for that one (or ctx).
func (c *Checkout) drive(ctx context.Context, shard int, o *boxoffice.Order) {
	mine, done := c.claim(o.ID)
	if !mine {
		select {
		case <-done:
		case <-ctx.Done():
		}
		return
	}
	defer c.release(o.ID, done)

	leaseEnd := time.UnixMilli(o.LeaseUntilMs)
	charge := func() (boxoffice.Charge, error) {
		// Never start a charge the lease might not cover: a charge that
		// lands after recovery failed the checkout would be refunded, but
		// it is better never made.
		deadline := time.Now().Add(c.cfg.CallTimeout)
		if last := leaseEnd.Add(-c.cfg.Margin); last.Before(deadline) {
			deadline = last
		}
		if time.Until(deadline) <= 0 {
			return boxoffice.Charge{}, fmt.Errorf("%w: the lease is too close to its end to charge", boxoffice.ErrPaymentUnknown)
		}
		cctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		return c.gw.Charge(cctx, o.ID, o.AmountCents, o.PaymentMethod)
	}
	ch, err := charge()
	for attempt := 0; errors.Is(err, boxoffice.ErrPaymentUnknown) && attempt < c.cfg.LookupAttempts; attempt++ {
		if !c.node.IsLeader(shard) {
			return // the new leader's recovery takes over
		}
		lctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
		ch, err = c.gw.Lookup(lctx, o.ID)
		cancel()
		if errors.Is(err, boxoffice.ErrNotFound) {
			// Not charged: charge again, with the same key.
			ch, err = charge()
		}
	}
	c.hook(o.ID, "charged")
	switch {
	case err == nil:
		c.complete(shard, o, ch.Ref)
		c.hook(o.ID, "completed")
	case errors.Is(err, boxoffice.ErrPaymentDeclined):
		c.observe("declined", 0)
		c.fail(shard, o, "declined", 0)
	default:
		c.observe("unknown", 0)
		c.logger(ctx, shard).Warn("checkout: payment outcome unknown; recovery will resolve it", "order", o.ID, "err", err)
	}
}

// logger is the saga's logger for a checkout of shard, with the id of the
// request it serves, if ctx carries one (a purchase; not a recovery).
func (c *Checkout) logger(ctx context.Context, shard int) *slog.Logger {
	if id := boxoffice.RequestID(ctx); id != "" {
		return c.log.With("shard", shard, "request_id", id)
	}
	return c.log.With("shard", shard)
}

func (c *Checkout) observe(outcome string, seats int) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(outcome, seats)
	}
}

func (c *Checkout) hook(order, step string) {
	if c.cfg.StepHook != nil {
		c.cfg.StepHook(order, step)
	}
}

// step proposes one saga step with a bounded wait.
func (c *Checkout) step(shard int, cmd fsm.Command) (fsm.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	defer cancel()
	res, err := c.node.Propose(ctx, shard, cmd)
	if err == nil {
		err = res.Err
	}
	return res, err
}

func (c *Checkout) complete(shard int, o *boxoffice.Order, chargeRef string) {
	res, err := c.step(shard, &fsm.CheckoutComplete{Order: o.ID, ChargeRef: chargeRef})
	if err != nil {
		c.log.Warn("checkout: complete", "shard", shard, "order", o.ID, "err", err)
		return
	}
	switch res.Order.State {
	case boxoffice.OrderPaid:
		c.observe("paid", len(res.Order.Seats))
	case boxoffice.OrderFailed:
		c.observe("too_late", 0)
		c.refund(shard, res.Order)
	}
}

func (c *Checkout) fail(shard int, o *boxoffice.Order, reason string, verify time.Duration) {
	if _, err := c.step(shard, &fsm.CheckoutFail{Order: o.ID, Reason: reason, VerifyMs: verify.Milliseconds()}); err != nil {
		c.log.Warn("checkout: fail", "shard", shard, "order", o.ID, "err", err)
	}
}

// refund pays back an order whose refund is due, once: the refund's key is
// derived from the order.
func (c *Checkout) refund(shard int, o *boxoffice.Order) {
	key := "refund/" + o.ID
	mine, done := c.claim(key)
	if !mine {
		return
	}
	defer c.release(key, done)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	ref, err := c.gw.Refund(ctx, key, o.PaymentRef)
	cancel()
	if err != nil {
		c.log.Warn("refund: gateway", "shard", shard, "order", o.ID, "err", err)
		return
	}
	if _, err := c.step(shard, &fsm.RefundDone{Order: o.ID, RefundRef: ref}); err != nil {
		c.log.Warn("refund: record", "shard", shard, "order", o.ID, "err", err)
		return
	}
	c.observe("refunded", 0)
}

// Refund makes the refund of a cancelled order now, if it is due; the
// recovery loop makes it otherwise.
func (c *Checkout) Refund(shard int, order string) {
	o, err := c.node.Store(shard).Order(order)
	if err != nil || !c.node.IsLeader(shard) {
		return
	}
	if o.PaymentRef != "" && (o.State == boxoffice.OrderCancelled || o.State == boxoffice.OrderFailed) {
		c.refund(shard, o)
	}
}

// Recover resolves, on every shard this node leads, the checkouts and
// refunds in flight that nobody on this node is driving: a checkout whose
// charge the gateway knows is completed; one it does not know is charged
// again with the same key while its lease allows, or failed once the lease
// has ended (plus the margin); a refund due is made.
func (c *Checkout) Recover() {
	for shard := 0; shard < c.node.ShardCount(); shard++ {
		if !c.node.IsLeader(shard) {
			continue
		}
		st := c.node.Store(shard)
		pending, err := st.PendingCheckouts(c.cfg.RecoveryBatch)
		if err != nil {
			c.log.Warn("recover: list checkouts", "shard", shard, "err", err)
			continue
		}
		for _, o := range pending {
			c.recoverCheckout(shard, o)
		}
		refunds, err := st.PendingRefunds(c.cfg.RecoveryBatch)
		if err != nil {
			c.log.Warn("recover: list refunds", "shard", shard, "err", err)
			continue
		}
		for _, o := range refunds {
			c.refund(shard, o)
		}
		watched, err := st.PendingVerifications(c.cfg.RecoveryBatch)
		if err != nil {
			c.log.Warn("recover: list late-charge watches", "shard", shard, "err", err)
			continue
		}
		for _, w := range watched {
			c.verify(shard, w)
		}
	}
}

// verify looks up a failed checkout's charge once more: a charge made late
// is completed, which records it as due for refund; past the watch, the
// watch ends.
func (c *Checkout) verify(shard int, w fsm.Watched) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	ch, err := c.gw.Lookup(ctx, w.Order.ID)
	cancel()
	switch {
	case err == nil:
		c.log.Warn("checkout: a charge arrived after its checkout failed; refunding it", "order", w.Order.ID, "charge", ch.Ref)
		c.complete(shard, w.Order, ch.Ref)
	case errors.Is(err, boxoffice.ErrNotFound) && time.Now().UnixMilli() > w.UntilMs:
		if _, err := c.step(shard, &fsm.VerifyDone{Order: w.Order.ID}); err != nil {
			c.log.Warn("checkout: end late-charge watch", "order", w.Order.ID, "err", err)
		}
	}
}

func (c *Checkout) recoverCheckout(shard int, o *boxoffice.Order) {
	c.mu.Lock()
	_, busy := c.driving[o.ID]
	c.mu.Unlock()
	if busy {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	ch, err := c.gw.Lookup(ctx, o.ID)
	cancel()
	leaseEnd := time.UnixMilli(o.LeaseUntilMs)
	switch {
	case err == nil:
		mine, done := c.claim(o.ID)
		if mine {
			c.complete(shard, o, ch.Ref)
			c.release(o.ID, done)
		}
	case errors.Is(err, boxoffice.ErrNotFound) && time.Now().After(leaseEnd.Add(c.cfg.Margin)):
		mine, done := c.claim(o.ID)
		if mine {
			c.observe("lease_ended", 0)
			c.fail(shard, o, "not charged before the checkout's lease ended", c.cfg.VerifyWindow)
			c.release(o.ID, done)
		}
	case errors.Is(err, boxoffice.ErrNotFound):
		c.drive(context.Background(), shard, o)
	default:
		c.log.Debug("recover: look-up", "order", o.ID, "err", err) // next round
	}
}
