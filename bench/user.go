package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"boxoffice"
	"boxoffice/client"
)

// user is one virtual user: a buyer's browser going through the on-sale,
// under a series of buyer identities. Only its own goroutine touches it.
type user struct {
	id  int
	run *runner
	rng *rand.Rand
	ev  *eventRun // the event it buys in

	// The current identity: its handle (for boxoffice, a client with its
	// token, starting at node id mod n) and how many seats it owns (held
	// or bought), as the server counts them for the event's
	// maxSeatsPerBuyer.
	subject    string
	buyer      Buyer
	owned      int
	identities int
	seq        int

	// excluded are seats this user saw taken (a conflict) or took itself,
	// with the map version they were noted at: the shared map may show
	// them free until a map fetched after that.
	excluded map[int32]uint64
	picks    []int32
	ledger   Ledger
}

// outcome of a hold attempt.
type holdOutcome int

const (
	holdGranted holdOutcome = iota
	holdConflict
	holdFailed
)

// loop runs the user until the run stops or its iteration bound is reached.
func (u *user) loop(ctx context.Context) {
	if u.run.cfg.Workload == WorkloadBestAvailable {
		u.loopBest(ctx)
		return
	}
	r, ev := u.run, u.ev
	snap := ev.cache.Current()
	retries := 0
	iterationsMax := iterationsPerSeatMax * ev.seats
	for it := 0; it < iterationsMax && !r.stopped(); it++ {
		if cur := ev.cache.Current(); cur.Version > snap.Version {
			snap, retries = cur, 0
		}
		u.prune(snap.Version)
		if u.buyer == nil || u.owned >= r.cfg.MaxSeatsPerBuyer {
			if err := u.newIdentity(); err != nil {
				r.fail(fmt.Errorf("user %d: mint a buyer token: %w", u.id, err))
				return
			}
		}
		k := min(pickCount(u.rng, r.cfg.PicksMin, r.cfg.PicksMax), r.cfg.MaxSeatsPerBuyer-u.owned)
		u.picks = ev.picker.Pick(u.rng, snap.Free, k, u.skip, u.picks[:0])
		if len(u.picks) == 0 || len(u.excluded) > excludedMax {
			// Nothing left for this user on this map: wait for a newer one.
			clear(u.excluded)
			if snap = ev.cache.WaitNewer(ctx, r.stop, snap.Version); snap == nil {
				return
			}
			retries = 0
			continue
		}
		idx := append([]int32(nil), u.picks...)
		h, out := u.hold(ctx, holdAsk{idx: idx, v: snap.Version})
		switch out {
		case holdConflict:
			retries++
			if retries < r.cfg.RetriesPerMap {
				continue
			}
			fallthrough
		case holdFailed:
			// A buyer who keeps missing, or sees an error, reloads the map.
			if snap = ev.cache.WaitNewer(ctx, r.stop, snap.Version); snap == nil {
				return
			}
			retries = 0
		case holdGranted:
			u.finish(ctx, h)
		}
	}
}

// loopBest is loop for best-available: holds by category and quantity.
// cats[0] is the best category; a category that refused one seat is left
// alone until the next seat map.
func (u *user) loopBest(ctx context.Context) {
	r, ev := u.run, u.ev
	missed := make([]bool, len(ev.cats)) // refused a single seat
	single := make([]bool, len(ev.cats)) // refused a larger or adjacent ask
	iterationsMax := iterationsPerSeatMax * ev.seats
	for it := 0; it < iterationsMax && !r.stopped(); it++ {
		if u.buyer == nil || u.owned >= r.cfg.MaxSeatsPerBuyer {
			if err := u.newIdentity(); err != nil {
				r.fail(fmt.Errorf("user %d: mint a buyer token: %w", u.id, err))
				return
			}
		}
		c := u.pickCategory(missed)
		if c < 0 {
			// Every category missed: wait for a newer seat map (seats
			// released or expired come back; a sold-out shows on it).
			clear(missed)
			clear(single)
			if ev.cache.WaitNewer(ctx, r.stop, ev.cache.Current().Version) == nil {
				return
			}
			continue
		}
		q := min(pickCount(u.rng, r.cfg.PicksMin, r.cfg.PicksMax), r.cfg.MaxSeatsPerBuyer-u.owned)
		adjacent := u.rng.IntN(2) == 0
		if single[c] {
			q, adjacent = 1, false
		}
		h, out := u.hold(ctx, holdAsk{category: ev.cats[c], quantity: q, adjacent: adjacent})
		switch out {
		case holdConflict:
			if q == 1 {
				missed[c] = true
			} else {
				single[c] = true
			}
		case holdFailed:
			if ev.cache.WaitNewer(ctx, r.stop, ev.cache.Current().Version) == nil {
				return
			}
		case holdGranted:
			u.finish(ctx, h)
		}
	}
}

// pickCategory chooses the category of a best-available hold among those
// not missed: the best one with probability HotShare, else any other one
// uniformly (the best one when no other is left); -1 when all missed.
func (u *user) pickCategory(missed []bool) int {
	hot := u.rng.Float64() < u.run.cfg.HotShare
	if hot && !missed[0] {
		return 0
	}
	var left []int
	for i := 1; i < len(missed); i++ {
		if !missed[i] {
			left = append(left, i)
		}
	}
	switch {
	case len(left) > 0:
		return left[u.rng.IntN(len(left))]
	case !missed[0]:
		return 0
	}
	return -1
}

func (u *user) skip(s int32) bool {
	_, ok := u.excluded[s]
	return ok
}

// prune forgets the exclusions that a map of version v reflects: those
// noted before the previous map was fetched.
func (u *user) prune(v uint64) {
	for s, at := range u.excluded {
		if at+1 < v {
			delete(u.excluded, s)
		}
	}
}

func (u *user) exclude(idx []int32, v uint64) {
	for _, s := range idx {
		u.excluded[s] = v
	}
}

// subjectOf names this user's k-th identity.
func (u *user) subjectOf(k int) string { return fmt.Sprintf("%s-u%d-%d", u.run.runID, u.id, k) }

// newIdentity mints the next buyer identity of this user.
func (u *user) newIdentity() error {
	u.identities++
	u.subject = u.subjectOf(u.identities)
	b, err := u.run.sys.Buyer(u.id, u.subject)
	if err != nil {
		return err
	}
	u.buyer = b
	u.owned = 0
	u.run.rec.identities.Add(1)
	return nil
}

func (u *user) key(kind, id string) string {
	if id == "" {
		u.seq++
		id = fmt.Sprintf("u%d-%d", u.id, u.seq)
	}
	return u.run.runID + "-" + kind + "-" + id
}

// write calls fn (one write, sent with key) and records it; when its outcome is unknown (no answer, 503, 504) it sends
// it again with the same key, which returns the first answer if there was
// one, up to resolveTries times. It returns whether the last answer came
// from such a replay, and the last error.
func (u *user) write(ctx context.Context, o op, key string, fn func(ctx context.Context) error) (replayed bool, err error) {
	r := u.run
	for try := 0; ; try++ {
		start := time.Now()
		err = fn(ctx)
		r.rec.observe(o, time.Since(start))
		r.rec.attempt(o)
		if !unknownOutcome(err) || try >= resolveTries || ctx.Err() != nil {
			if try > 0 && !unknownOutcome(err) {
				r.rec.resolvedWrites.Add(1)
			}
			return try > 0, err
		}
		r.rec.countError(err) // the lost answer, as the user saw it
	}
}

// holdAsk is what a hold asks for: the seats idx (noted at map version v),
// or quantity seats of category (best-available).
type holdAsk struct {
	idx      []int32
	v        uint64
	category string
	quantity int
	adjacent bool
}

// hold asks for a hold.
func (u *user) hold(ctx context.Context, ask holdAsk) (*client.Hold, holdOutcome) {
	r, ev := u.run, u.ev
	idx, v := ask.idx, ask.v
	req := client.HoldRequest{Category: ask.category, Quantity: ask.quantity, Adjacent: ask.adjacent}
	count := ask.quantity
	var seats []string
	if ask.category == "" {
		seats = make([]string, len(idx))
		for i, s := range idx {
			seats[i] = ev.layout.ID(int(s))
		}
		req, count = client.HoldRequest{Seats: seats}, len(seats)
	}
	key := u.key("h", "")
	start := time.Now()
	var h *client.Hold
	_, err := u.write(ctx, opHold, key, func(ctx context.Context) error {
		var err error
		h, err = u.buyer.Hold(ctx, key, ev.id, req)
		return err
	})
	end := time.Now()
	switch {
	case err == nil:
		r.rec.holdsOK.Add(1)
		u.owned += len(h.Seats)
		u.exclude(idx, v)
		u.ledger.Holds = append(u.ledger.Holds, HoldRecord{
			ID: h.ID, Event: ev.id, Buyer: u.subject, Seats: h.Seats, Start: start, End: end, ExpiresAt: h.ExpiresAt, Outcome: HoldOpen,
		})
		return h, holdGranted
	case isCode(err, boxoffice.CodeSeatUnavailable):
		r.rec.conflicts.Add(1)
		u.exclude(idx, v)
		return nil, holdConflict
	case isCode(err, boxoffice.CodeBuyerLimit):
		// The bench lost count of this identity's seats: start another.
		r.rec.countError(err)
		r.rec.buyerLimit.Add(1)
		u.owned = r.cfg.MaxSeatsPerBuyer
	case unknownOutcome(err):
		r.rec.countError(err)
		r.rec.unknownWrites.Add(1)
		u.owned += count // it may hold them
		u.ledger.Unknown = append(u.ledger.Unknown, UnknownWrite{Op: "hold", Event: ev.id, Key: key, Seats: seats, Err: err.Error()})
	default:
		r.rec.countError(err)
	}
	return nil, holdFailed
}

// finish buys the hold with probability BuyProbability, else releases it;
// a declined or failed purchase releases it too.
func (u *user) finish(ctx context.Context, h *client.Hold) {
	r, ev := u.run, u.ev
	rec := &u.ledger.Holds[len(u.ledger.Holds)-1]
	if u.rng.Float64() < r.cfg.BuyProbability {
		key := u.key("p", h.ID)
		start := time.Now()
		var o *client.Order
		replayed, err := u.write(ctx, opPurchase, key, func(ctx context.Context) error {
			var err error
			o, err = u.buyer.Purchase(ctx, key, h, r.cfg.PaymentMethod)
			return err
		})
		rec.EndStart, rec.EndEnd = start, time.Now()
		switch {
		case err == nil:
			r.rec.purchasesOK.Add(1)
			rec.Outcome, rec.Order = HoldPurchased, o.ID
			u.ledger.Orders = append(u.ledger.Orders, OrderRecord{ID: o.ID, Event: ev.id, Hold: h.ID, Buyer: u.subject, Seats: o.Seats, Resolved: replayed})
			hot := 0
			for _, s := range h.Seats {
				if i, ok := ev.layout.Index(s); ok && i < ev.picker.Hot {
					hot++
				}
			}
			r.sold(ev, len(o.Seats), hot)
			return
		case isCode(err, boxoffice.CodeHoldExpired):
			r.rec.countError(err)
			rec.Outcome = HoldExpired
			u.owned -= len(h.Seats)
			return
		case unknownOutcome(err):
			r.rec.countError(err)
			r.rec.unknownWrites.Add(1)
			rec.Outcome = HoldUnknown
			u.ledger.Unknown = append(u.ledger.Unknown, UnknownWrite{Op: "purchase", Event: ev.id, Key: key, Hold: h.ID, Seats: h.Seats, Err: err.Error()})
			return
		default:
			// Declined, or refused: the hold should still be ours; give
			// it back rather than leave it to expire.
			r.rec.countError(err)
		}
	}
	key := u.key("r", h.ID)
	start := time.Now()
	_, err := u.write(ctx, opRelease, key, func(ctx context.Context) error {
		return u.buyer.Release(ctx, key, h)
	})
	rec.EndStart, rec.EndEnd = start, time.Now()
	switch {
	case err == nil:
		r.rec.releasesOK.Add(1)
		rec.Outcome = HoldReleased
		u.owned -= len(h.Seats)
	case isCode(err, boxoffice.CodeHoldExpired):
		r.rec.countError(err)
		rec.Outcome = HoldExpired
		u.owned -= len(h.Seats)
	case unknownOutcome(err):
		r.rec.countError(err)
		r.rec.unknownWrites.Add(1)
		rec.Outcome = HoldUnknown
		u.ledger.Unknown = append(u.ledger.Unknown, UnknownWrite{Op: "release", Event: ev.id, Key: key, Hold: h.ID, Seats: h.Seats, Err: err.Error()})
	default:
		r.rec.countError(err)
		rec.Outcome = HoldOpen
	}
}
