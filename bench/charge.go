package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// chargeSim stands for the card charge a peer's application makes before
// it marks the seats sold, so that a purchase costs a peer's buyer the
// same wait as boxoffice's simulated gateway costs boxoffice's: a
// log-normal latency of the same median and spread as payment.Sim's. It
// only waits; it holds no lock of the store while it does.
type chargeSim struct {
	median time.Duration
	spread float64
	mu     sync.Mutex
	rng    *rand.Rand
}

func newChargeSim(median time.Duration, spread float64, seed uint64) *chargeSim {
	if median <= 0 {
		return nil
	}
	return &chargeSim{median: median, spread: spread, rng: rand.New(rand.NewPCG(seed, 0x70617921))}
}

// wait waits one charge's latency (none on a nil sim), or until ctx is done.
func (c *chargeSim) wait(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	d := time.Duration(float64(c.median) * math.Exp(c.rng.NormFloat64()*c.spread))
	c.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
