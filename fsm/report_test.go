package fsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// scanReport computes what Report must say by reading every seat of the
// event, as a report without counters would. sold is the unit price of each
// category in each order, as the test saw the prices when it made the order.
func scanReport(t *testing.T, s *Store, event string, sold map[string]map[string]int64) (sections map[string]boxoffice.ReportLine, minutesSeats int, minutesCents int64, paidCents int64) {
	t.Helper()
	ev, err := s.Event(event)
	require.NoError(t, err)
	sections = map[string]boxoffice.ReportLine{}
	for _, sec := range ev.Venue.Sections {
		sections[sec.ID] = boxoffice.ReportLine{ID: sec.ID, Category: sec.Category, Capacity: sec.Rows * sec.SeatsPerRow}
	}
	seats, err := s.Seats(event, SeatFilter{})
	require.NoError(t, err)
	for _, seat := range seats {
		sec := seat.ID[:1]
		l := sections[sec]
		switch seat.State {
		case boxoffice.SeatFree:
			l.Free++
		case boxoffice.SeatHeld:
			l.Held++
		case boxoffice.SeatSold:
			l.Sold++
			price, ok := sold[seat.Order][seat.Category]
			require.True(t, ok, "seat %s sold by order %s of unknown prices", seat.ID, seat.Order)
			l.RevenueCents += price
		}
		sections[sec] = l
	}
	// Every order that was ever paid was a sale: paid, cancelled, or
	// refunded after a cancellation (not a failed checkout's refund).
	err = s.scan([]byte{tagOrder}, []byte{tagOrder + 1}, func(_, v []byte) (bool, error) {
		o, err := decodeOrder(v)
		if err != nil {
			return false, err
		}
		if o.Event == event && o.State == boxoffice.OrderPaid {
			paidCents += o.AmountCents
		}
		if o.Event == event && (o.State == boxoffice.OrderPaid || o.State == boxoffice.OrderCancelled ||
			(o.State == boxoffice.OrderRefunded && o.FailReason == "")) {
			minutesSeats += len(o.Seats)
			minutesCents += o.AmountCents
		}
		return true, nil
	})
	require.NoError(t, err)
	return sections, minutesSeats, minutesCents, paidCents
}

// The report's counters agree with a full scan of the seats after a random
// workload of holds, releases, extensions, purchases, checkouts (completed,
// failed, past their lease), cancellations, exchanges, price changes, sweeps
// and clock jumps past expiries, at every step: seats by state, revenue at
// the prices each order was sold at (their sum is what the paid orders
// charged), and the sales series adds up to the orders that were sold.
func TestReportCountersMatchScan(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 11))
			e := &checkoutEnv{t: t, s: newMemStore(t), now: 1_000}
			ev := testEvent(t, "r1", "A:floor:3x4,B:floor:2x3,C:tier:2x5", "floor:9900,tier:4900", 6, 30)
			require.NoError(t, e.one(&CreateEvent{Event: ev}).Err)
			l := boxoffice.NewLayout(ev.Venue)
			seat := func() string { return l.ID(r.IntN(l.Capacity())) }
			var holds, orders, pending []string
			prices := map[string]int64{"floor": 9900, "tier": 4900}
			sold := map[string]map[string]int64{} // order -> category -> unit price when it was made
			pick := func(ids []string) string {
				if len(ids) == 0 {
					return "none"
				}
				return ids[r.IntN(len(ids))]
			}
			for step := 0; step < 400; step++ {
				var c Command
				switch r.IntN(11) {
				case 0, 1, 2:
					n := 1 + r.IntN(3)
					seats := map[string]bool{}
					for len(seats) < n {
						seats[seat()] = true
					}
					var list []string
					for id := range seats {
						list = append(list, id)
					}
					slices.Sort(list) // map order: sorted, so that a seed replays
					c = &Hold{Event: "r1", Buyer: fmt.Sprintf("u%d", r.IntN(8)), Seats: list}
				case 3:
					c = &Release{Hold: pick(holds)}
				case 4:
					c = &Purchase{Hold: pick(holds), PaymentRef: "pay"}
				case 5:
					c = &CheckoutBegin{Hold: pick(holds), PaymentMethod: "pm", LeaseMs: 1000 + int64(r.IntN(20_000))}
				case 6:
					if r.IntN(2) == 0 {
						c = &CheckoutComplete{Order: pick(pending), ChargeRef: "ch"}
					} else {
						c = &CheckoutFail{Order: pick(pending), Reason: "declined"}
					}
				case 7:
					c = &CancelOrder{Order: pick(orders)}
				case 8:
					c = &Exchange{Order: pick(orders), Release: nil, Take: nil}
					if o, err := e.s.Order(pick(orders)); err == nil && len(o.Seats) > 0 {
						c = &Exchange{Order: o.ID, Release: o.Seats[:1], Take: []string{seat()}}
					}
				case 9:
					c = &Expire{Max: 1 + r.IntN(3)}
				case 10:
					if r.IntN(3) > 0 {
						c = &ExtendHold{Hold: pick(holds)}
						break
					}
					// A price change: sold seats keep what they were sold for.
					up := ev
					up.Categories = []boxoffice.Category{{ID: "floor", Name: "Floor", PriceCents: int64(100 * (50 + r.IntN(100)))}, {ID: "tier", Name: "Tier", PriceCents: int64(100 * (10 + r.IntN(50)))}}
					c = &UpdateEvent{Event: up}
				}
				res := e.one(c)
				if u, ok := c.(*UpdateEvent); ok && res.Err == nil {
					prices = map[string]int64{"floor": u.Event.Categories[0].PriceCents, "tier": u.Event.Categories[1].PriceCents}
				}
				if res.Err == nil && res.Order != nil && sold[res.Order.ID] == nil {
					sold[res.Order.ID] = map[string]int64{"floor": prices["floor"], "tier": prices["tier"]}
				}
				if res.Err == nil {
					if res.Hold != nil && res.Hold.State == boxoffice.HoldActive {
						holds = append(holds, res.Hold.ID)
					}
					if res.Order != nil {
						switch res.Order.State {
						case boxoffice.OrderPaid:
							orders = append(orders, res.Order.ID)
						case boxoffice.OrderPending:
							pending = append(pending, res.Order.ID)
						}
					}
				}
				if r.IntN(4) == 0 {
					e.now += int64(r.IntN(40_000)) // past some holds' expiry, into new minutes
				}
				rep, err := e.s.Report("r1")
				require.NoError(t, err)
				want, seats, cents, paid := scanReport(t, e.s, "r1", sold)
				total := boxoffice.ReportLine{ID: "total"}
				for _, got := range rep.Sections {
					require.Equal(t, want[got.ID], got, "step %d: section %s after %T", step, got.ID, c)
					total.Capacity += got.Capacity
					total.Free += got.Free
					total.Held += got.Held
					total.Sold += got.Sold
					total.RevenueCents += got.RevenueCents
				}
				require.Equal(t, total, rep.Total, "step %d", step)
				require.Equal(t, paid, rep.Total.RevenueCents, "step %d: revenue is what the paid orders charged", step)
				require.Len(t, rep.Categories, 2)
				require.Equal(t, want["A"].Sold+want["B"].Sold, rep.Categories[0].Sold)
				require.Equal(t, want["A"].Held+want["B"].Held, rep.Categories[0].Held)
				require.Equal(t, want["C"].Free, rep.Categories[1].Free)
				var mSeats int
				var mCents int64
				for _, m := range rep.Minutes {
					mSeats += m.Seats
					mCents += m.RevenueCents
				}
				require.Equal(t, seats, mSeats, "step %d: seats sold by the minute", step)
				require.Equal(t, cents, mCents, "step %d: amounts sold by the minute", step)
				if len(rep.Minutes) > 0 {
					require.Equal(t, e.s.NowMs()/60_000*60_000, rep.Minutes[len(rep.Minutes)-1].MinuteMs, "the series runs to now")
				}
			}
			// Counts (the seat scan the event page uses) agrees too.
			counts, err := e.s.Counts("r1")
			require.NoError(t, err)
			rep, err := e.s.Report("r1")
			require.NoError(t, err)
			for i, c := range counts {
				require.Equal(t, c.Category, rep.Categories[i].ID)
				require.Equal(t, []int{c.Capacity, c.Free, c.Held, c.Sold}, []int{rep.Categories[i].Capacity, rep.Categories[i].Free, rep.Categories[i].Held, rep.Categories[i].Sold})
			}
		})
	}
}

// Reports read while batches commit are each of one applied state: every
// line adds up, nothing is negative, and the sold count never goes back
// while seats are only bought.
func TestReportWhileApplying(t *testing.T) {
	e := &checkoutEnv{t: t, s: newMemStore(t), now: 1_000}
	ev := testEvent(t, "r2", "A:floor:10x10", "floor:100", 1000, 30)
	require.NoError(t, e.one(&CreateEvent{Event: ev}).Err)
	l := boxoffice.NewLayout(ev.Venue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			e.index++
			rs, err := e.s.ApplyEntries([]Entry{entryOf(e.index, e.now, &Hold{Event: "r2", Buyer: "u1", Seats: []string{l.ID(2 * i), l.ID(2*i + 1)}})})
			if err != nil || rs[0][0].Err != nil {
				t.Errorf("hold %d: %v %v", i, err, rs)
				return
			}
			e.index++
			if _, err := e.s.ApplyEntries([]Entry{entryOf(e.index, e.now, &Purchase{Hold: rs[0][0].Hold.ID, PaymentRef: "p"})}); err != nil {
				t.Errorf("purchase %d: %v", i, err)
				return
			}
		}
	}()
	lastSold := 0
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		rep, err := e.s.Report("r2")
		require.NoError(t, err)
		tot := rep.Total
		require.Equal(t, 100, tot.Capacity)
		require.Equal(t, tot.Capacity, tot.Free+tot.Held+tot.Sold, "%+v", tot)
		require.GreaterOrEqual(t, tot.Free, 0)
		require.Equal(t, int64(tot.Sold)*100, tot.RevenueCents, "%+v", tot)
		require.GreaterOrEqual(t, tot.Sold, lastSold)
		require.Equal(t, tot.Sold%2, 0, "a purchase sells both seats of its hold at once")
		lastSold = tot.Sold
	}
	rep, err := e.s.Report("r2")
	require.NoError(t, err)
	require.Equal(t, 100, rep.Total.Sold)
}
