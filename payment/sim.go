package payment

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"boxoffice"
)

// SimConfig shapes a simulated gateway: how long it takes to answer and how
// it fails. Rates are probabilities in [0, 1], drawn per call.
type SimConfig struct {
	// LatencyMedian and LatencySpread give a log-normal latency: the median,
	// and sigma of the underlying normal (0 = always the median).
	LatencyMedian time.Duration
	LatencySpread float64
	// DeclineRate: the payment method is refused; nothing is charged.
	DeclineRate float64
	// TimeoutRate: the charge happens but its answer is lost
	// (ErrPaymentUnknown); Lookup finds it.
	TimeoutRate float64
	// LostRate: the request is lost before the charge (ErrPaymentUnknown);
	// Lookup finds nothing.
	LostRate float64
	// DuplicateRate: the gateway processes the request twice (a retry of
	// its own); the idempotency key keeps it one charge.
	DuplicateRate float64
	// Outage: every call fails with ErrPaymentUnknown and changes nothing.
	Outage bool
	// Seed makes the draws reproducible.
	Seed uint64
}

// DefaultSimConfig is a healthy gateway answering in about 50 ms.
func DefaultSimConfig() SimConfig {
	return SimConfig{LatencyMedian: 50 * time.Millisecond, LatencySpread: 0.5, Seed: 1}
}

// Validate lists every problem at once.
func (c SimConfig) Validate() error {
	var errs []error
	for name, r := range map[string]float64{"DeclineRate": c.DeclineRate, "TimeoutRate": c.TimeoutRate, "LostRate": c.LostRate, "DuplicateRate": c.DuplicateRate} {
		if r < 0 || r > 1 || math.IsNaN(r) {
			errs = append(errs, fmt.Errorf("payment: %s %v out of range [0, 1]", name, r))
		}
	}
	if c.LatencyMedian < 0 || c.LatencyMedian > time.Minute || c.LatencySpread < 0 || c.LatencySpread > 3 {
		errs = append(errs, errors.New("payment: LatencyMedian must be 0..1m and LatencySpread 0..3"))
	}
	return errors.Join(errs...)
}

// Sim is a simulated payment gateway, in memory, with the failure modes of
// a real one. It keeps every charge and refund, so tests can audit them.
// One Sim stands for one payment provider: share it between the nodes of an
// in-process cluster.
type Sim struct {
	mu      sync.Mutex
	cfg     SimConfig
	rng     *rand.Rand
	charges map[string]*simCharge // by idempotency key
	refunds map[string]string     // refund key → charge ref
	next    int
}

type simCharge struct {
	charge   boxoffice.Charge
	declined bool
	calls    int
}

var _ boxoffice.PaymentGateway = (*Sim)(nil)

// NewSim returns a simulated gateway.
func NewSim(cfg SimConfig) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), charges: map[string]*simCharge{}, refunds: map[string]string{}}, nil
}

// SetConfig changes the simulated behaviour, for fault injection.
func (s *Sim) SetConfig(cfg SimConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	return nil
}

// latency draws a call's latency and the fault of the call.
func (s *Sim) draw() (time.Duration, SimConfig, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.cfg.LatencyMedian
	if s.cfg.LatencySpread > 0 {
		d = time.Duration(float64(d) * math.Exp(s.rng.NormFloat64()*s.cfg.LatencySpread))
	}
	return d, s.cfg, s.rng.Float64()
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", boxoffice.ErrPaymentUnknown, ctx.Err())
	}
}

// Charge charges once per key: a call with a key seen before answers as the
// first call did (the same charge, or the same decline).
func (s *Sim) Charge(ctx context.Context, key string, amountCents int64, paymentMethod string) (boxoffice.Charge, error) {
	d, cfg, p := s.draw()
	if cfg.Outage {
		wait(ctx, d)
		return boxoffice.Charge{}, fmt.Errorf("%w: gateway outage", boxoffice.ErrPaymentUnknown)
	}
	if err := wait(ctx, d/2); err != nil {
		return boxoffice.Charge{}, err
	}
	if p < cfg.LostRate {
		return boxoffice.Charge{}, fmt.Errorf("%w: request lost", boxoffice.ErrPaymentUnknown)
	}
	p -= cfg.LostRate
	s.mu.Lock()
	c, seen := s.charges[key]
	if !seen {
		s.next++
		c = &simCharge{charge: boxoffice.Charge{Ref: fmt.Sprintf("pi_sim_%d", s.next), IdempotencyKey: key, AmountCents: amountCents}}
		c.declined = p < cfg.DeclineRate || paymentMethod == "pm_card_chargeDeclined"
		s.charges[key] = c
	}
	c.calls++
	p -= cfg.DeclineRate
	if p >= 0 && p < cfg.DuplicateRate {
		c.calls++ // processed again under the same key: still one charge
	}
	p -= cfg.DuplicateRate
	charge, declined := c.charge, c.declined
	s.mu.Unlock()
	if err := wait(ctx, d-d/2); err != nil {
		return boxoffice.Charge{}, err // charged (or declined), answer lost
	}
	if declined {
		return boxoffice.Charge{}, fmt.Errorf("%w: card declined", boxoffice.ErrPaymentDeclined)
	}
	if p >= 0 && p < cfg.TimeoutRate {
		return boxoffice.Charge{}, fmt.Errorf("%w: timeout after the charge", boxoffice.ErrPaymentUnknown)
	}
	return charge, nil
}

// Refund refunds a charge once per key.
func (s *Sim) Refund(ctx context.Context, key, chargeRef string) (string, error) {
	d, cfg, p := s.draw()
	if cfg.Outage {
		wait(ctx, d)
		return "", fmt.Errorf("%w: gateway outage", boxoffice.ErrPaymentUnknown)
	}
	if err := wait(ctx, d); err != nil {
		return "", err
	}
	if p < cfg.LostRate {
		return "", fmt.Errorf("%w: request lost", boxoffice.ErrPaymentUnknown)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ref, ok := s.refunds[key]; ok {
		if ref != chargeRef {
			return "", fmt.Errorf("refund key %q was used for charge %s", key, ref)
		}
		return "re_" + key, nil
	}
	for _, c := range s.charges {
		if c.charge.Ref == chargeRef && !c.declined {
			if c.charge.Refunded {
				return "", fmt.Errorf("charge %s is already refunded under another key", chargeRef)
			}
			c.charge.Refunded = true
			s.refunds[key] = chargeRef
			return "re_" + key, nil
		}
	}
	return "", fmt.Errorf("%w: no charge %s", boxoffice.ErrNotFound, chargeRef)
}

// Lookup finds the charge made with a key.
func (s *Sim) Lookup(ctx context.Context, key string) (boxoffice.Charge, error) {
	d, cfg, _ := s.draw()
	if cfg.Outage {
		wait(ctx, d)
		return boxoffice.Charge{}, fmt.Errorf("%w: gateway outage", boxoffice.ErrPaymentUnknown)
	}
	if err := wait(ctx, d/4); err != nil {
		return boxoffice.Charge{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[key]
	if !ok || c.declined {
		return boxoffice.Charge{}, fmt.Errorf("%w: no charge with key %q", boxoffice.ErrNotFound, key)
	}
	return c.charge, nil
}

// Charges returns every successful charge, for audits.
func (s *Sim) Charges() []boxoffice.Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []boxoffice.Charge
	for _, c := range s.charges {
		if !c.declined {
			out = append(out, c.charge)
		}
	}
	return out
}
