package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"boxoffice"
	"boxoffice/client"
	"boxoffice/payment"
)

// The audit reads an event's whole state from the cluster (its seat map with
// the owner of every taken seat, every order and every hold) with strong
// reads, and checks what DESIGN.md promises: no seat sold twice, every sold
// seat in exactly one paid order and every paid order's seats sold to it,
// every paid order charged (and, when the gateway can be asked, the charge
// there with the order's amount), and counts that add up.
//
// The state is read in several requests (pages), each a linearizable read of
// its own. To check one state and not a mix of several, the seat map is read
// before and after the orders and holds: if the two are equal, no seat
// changed hands in between, and the orders and holds read are those of the
// seats. If they differ the event is live, and the audit reads it again, at
// most --attempts times.

// Bounds of an audit.
const (
	auditPageSize    = 1000
	auditPagesMax    = 1000 // of orders, and of holds: a million each
	auditAttemptsMax = 20
)

// ledger is an event's state as the audit reads it.
type ledger struct {
	Event  client.Event
	Seats  []client.Seat
	Orders []client.Order
	Holds  []client.Hold
}

// auditReport is what an audit found. Violations break a guarantee; notes
// are worth a look but break none (a checkout in flight, a price changed
// after a sale).
type auditReport struct {
	Event    string `json:"event"`
	Attempts int    `json:"attempts"`
	// IndexFirst and IndexLast are the shard's applied index at the first
	// and at the last read.
	IndexFirst uint64 `json:"indexFirst"`
	IndexLast  uint64 `json:"indexLast"`

	Capacity int `json:"capacity"`
	Free     int `json:"free"`
	Held     int `json:"held"`
	Sold     int `json:"sold"`

	Orders       map[string]int `json:"orders"` // by state
	PaidSeats    int            `json:"paidSeats"`
	RevenueCents int64          `json:"revenueCents"`
	Holds        map[string]int `json:"holds"` // by state

	// ChargesChecked counts the orders looked up at the payment gateway;
	// -1 when no gateway was given.
	ChargesChecked int `json:"chargesChecked"`

	Violations []auditFinding `json:"violations"`
	Notes      []auditFinding `json:"notes"`
}

// auditFinding is one violation or note: a stable kind, and what was seen.
type auditFinding struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (r *auditReport) violation(kind, format string, args ...any) {
	r.Violations = append(r.Violations, auditFinding{kind, fmt.Sprintf(format, args...)})
}

func (r *auditReport) note(kind, format string, args ...any) {
	r.Notes = append(r.Notes, auditFinding{kind, fmt.Sprintf(format, args...)})
}

// checkLedger checks one state of an event. It is a pure function of l, so
// that a hand-made inconsistent ledger shows that each check can fail.
func checkLedger(l ledger) *auditReport {
	r := &auditReport{Event: l.Event.ID, Orders: map[string]int{}, Holds: map[string]int{}, ChargesChecked: -1}
	r.Capacity = l.Event.Capacity
	price := map[string]int64{}
	for _, c := range l.Event.Categories {
		price[c.ID] = c.PriceCents
	}

	// The seat map: one entry per seat of the venue.
	seats := make(map[string]client.Seat, len(l.Seats))
	for _, s := range l.Seats {
		if _, dup := seats[s.ID]; dup {
			r.violation("seat_listed_twice", "seat %s is twice in the seat map", s.ID)
		}
		seats[s.ID] = s
		switch s.State {
		case client.SeatFree:
			r.Free++
		case client.SeatHeld:
			r.Held++
		case client.SeatSold:
			r.Sold++
		default:
			r.violation("seat_state", "seat %s is in state %q", s.ID, s.State)
		}
	}
	if len(l.Seats) != l.Event.Capacity {
		r.violation("seat_count", "the seat map has %d seats, the venue %d", len(l.Seats), l.Event.Capacity)
	}

	// Orders: no seat in two paid orders; every paid order charged and its
	// seats sold to it.
	orders := make(map[string]client.Order, len(l.Orders))
	paidBy := map[string]string{} // seat → the paid order that has it
	for _, o := range l.Orders {
		orders[o.ID] = o
		r.Orders[o.State]++
		if o.Event != l.Event.ID {
			r.violation("order_event", "order %s is of event %q", o.ID, o.Event)
		}
		switch o.State {
		case client.OrderPaid:
		case client.OrderPending:
			r.note("checkout_in_flight", "order %s is pending: its charge is in flight", o.ID)
			continue
		default:
			continue
		}
		r.PaidSeats += len(o.Seats)
		r.RevenueCents += o.AmountCents
		if o.PaymentRef == "" {
			r.violation("paid_without_charge", "paid order %s has no payment reference", o.ID)
		}
		var want int64
		for _, id := range o.Seats {
			if other, ok := paidBy[id]; ok {
				r.violation("double_sale", "seat %s is in paid orders %s and %s", id, other, o.ID)
			}
			paidBy[id] = o.ID
			s, ok := seats[id]
			switch {
			case !ok:
				r.violation("order_seat_unknown", "paid order %s has seat %s, which the venue has not", o.ID, id)
				continue
			case s.State != client.SeatSold:
				r.violation("paid_seat_not_sold", "seat %s of paid order %s is %s", id, o.ID, s.State)
			case s.Order != o.ID:
				r.violation("paid_seat_sold_to_other", "seat %s of paid order %s is sold to %q", id, o.ID, s.Order)
			}
			want += price[s.Category]
		}
		if want != o.AmountCents {
			r.note("amount_differs", "paid order %s is %d cents, its seats cost %d at today's prices", o.ID, o.AmountCents, want)
		}
	}
	for _, s := range l.Seats {
		if s.State != client.SeatSold {
			continue
		}
		o, ok := orders[s.Order]
		switch {
		case !ok:
			r.violation("sold_without_order", "seat %s is sold to %q, which is not an order of the event", s.ID, s.Order)
		case o.State != client.OrderPaid:
			r.violation("sold_to_unpaid_order", "seat %s is sold to order %s, which is %s", s.ID, o.ID, o.State)
		case !slices.Contains(o.Seats, s.ID):
			r.violation("sold_seat_not_in_order", "seat %s is sold to order %s, which does not list it", s.ID, o.ID)
		}
	}
	if r.Sold != r.PaidSeats {
		r.violation("sold_count", "%d seats are sold, the paid orders have %d", r.Sold, r.PaidSeats)
	}

	// Holds: no seat in two live holds; every held seat in its live hold.
	holds := make(map[string]client.Hold, len(l.Holds))
	heldBy := map[string]string{} // seat → the live hold that has it
	for _, h := range l.Holds {
		holds[h.ID] = h
		r.Holds[h.State]++
		if h.State != client.HoldActive && h.State != client.HoldCheckingOut {
			continue
		}
		for _, id := range h.Seats {
			if other, ok := heldBy[id]; ok {
				r.violation("double_hold", "seat %s is in live holds %s and %s", id, other, h.ID)
			}
			heldBy[id] = h.ID
			s := seats[id]
			if s.State == client.SeatHeld && s.Hold == h.ID {
				continue
			}
			if h.State == client.HoldCheckingOut {
				// Its checkout's lease may have ended, the saga not yet
				// failed it: the seat reads free until then.
				r.note("checkout_seat_free", "seat %s of hold %s (checking out) is %s", id, h.ID, s.State)
				continue
			}
			r.violation("held_seat_not_held", "seat %s of active hold %s is %s (hold %q, order %q)", id, h.ID, s.State, s.Hold, s.Order)
		}
	}
	for _, s := range l.Seats {
		if s.State != client.SeatHeld {
			continue
		}
		h, ok := holds[s.Hold]
		switch {
		case !ok:
			r.violation("held_without_hold", "seat %s is held by %q, which is not a hold of the event", s.ID, s.Hold)
		case h.State != client.HoldActive && h.State != client.HoldCheckingOut:
			r.violation("held_by_dead_hold", "seat %s is held by hold %s, which is %s", s.ID, h.ID, h.State)
		case !slices.Contains(h.Seats, s.ID):
			r.violation("held_seat_not_in_hold", "seat %s is held by hold %s, which does not list it", s.ID, h.ID)
		}
	}
	for _, o := range l.Orders {
		if o.State != client.OrderPaid {
			continue
		}
		if h, ok := holds[o.Hold]; !ok || h.State != client.HoldPurchased || h.Order != o.ID {
			r.violation("paid_order_hold", "paid order %s comes from hold %q, which is not purchased into it", o.ID, o.Hold)
		}
	}

	// The event's own counts against the seat map.
	var avail client.Availability
	for _, a := range l.Event.Availability {
		avail.Capacity += a.Capacity
		avail.Free += a.Free
		avail.Held += a.Held
		avail.Sold += a.Sold
	}
	if len(l.Event.Availability) > 0 && (avail.Capacity != r.Capacity || avail.Free != r.Free || avail.Held != r.Held || avail.Sold != r.Sold) {
		r.violation("counts", "the event counts %d seats: %d free, %d held, %d sold; the seat map %d: %d, %d, %d",
			avail.Capacity, avail.Free, avail.Held, avail.Sold, r.Capacity, r.Free, r.Held, r.Sold)
	}
	return r
}

// checkCharges looks up every paid and refunded order at the gateway: a
// paid order's charge exists there, with its reference and amount, not
// refunded; a refunded order's charge is refunded.
func checkCharges(ctx context.Context, gw boxoffice.PaymentGateway, orders []client.Order, r *auditReport) error {
	r.ChargesChecked = 0
	for _, o := range orders {
		if o.State != client.OrderPaid && o.State != client.OrderRefunded {
			continue
		}
		if o.State == client.OrderRefunded && o.PaymentRef == "" {
			continue // refunded before it was charged: nothing to look up
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ch, err := gw.Lookup(cctx, o.ID)
		cancel()
		r.ChargesChecked++
		switch {
		case boxoffice.CodeOf(err) == boxoffice.CodeNotFound:
			r.violation("charge_missing", "%s order %s: the gateway has no charge for it", o.State, o.ID)
			continue
		case err != nil:
			return fmt.Errorf("look up the charge of order %s: %w", o.ID, err)
		}
		if ch.Ref != o.PaymentRef {
			r.violation("charge_ref", "order %s has payment reference %q, the gateway's charge is %q", o.ID, o.PaymentRef, ch.Ref)
		}
		if ch.AmountCents != o.AmountCents {
			r.violation("charge_amount", "order %s is %d cents, its charge %d", o.ID, o.AmountCents, ch.AmountCents)
		}
		if o.State == client.OrderPaid && ch.Refunded {
			r.violation("paid_but_refunded", "paid order %s: its charge %s was refunded", o.ID, ch.Ref)
		}
		if o.State == client.OrderRefunded && !ch.Refunded {
			r.violation("refund_missing", "refunded order %s: its charge %s is not refunded", o.ID, ch.Ref)
		}
	}
	return nil
}

// readLedger reads an event's state with strong reads: the event and its
// seat map, every order, every hold, then the seat map and the event again.
// settled says whether the two seat maps, and the event's two counts, are
// equal: whether one state was read.
func readLedger(ctx context.Context, cl *client.Client) func(event string) (l ledger, first, last uint64, settled bool, err error) {
	ctx = client.WithStrongRead(ctx)
	return func(event string) (l ledger, first, last uint64, settled bool, err error) {
		ev, err := cl.GetEvent(ctx, event)
		if err != nil {
			return l, 0, 0, false, err
		}
		l.Event = *ev
		before, err := cl.Seats(ctx, event, client.SeatQuery{Owners: true, Strong: true})
		if err != nil {
			return l, 0, 0, false, err
		}
		first = before.Index
		cursor := ""
		for page := 0; ; page++ {
			if page == auditPagesMax {
				return l, 0, 0, false, fmt.Errorf("event %s has more than %d orders", event, auditPagesMax*auditPageSize)
			}
			p, err := cl.EventOrders(ctx, event, cursor, auditPageSize)
			if err != nil {
				return l, 0, 0, false, err
			}
			l.Orders = append(l.Orders, p.Orders...)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		cursor = ""
		for page := 0; ; page++ {
			if page == auditPagesMax {
				return l, 0, 0, false, fmt.Errorf("event %s has more than %d holds", event, auditPagesMax*auditPageSize)
			}
			p, err := cl.EventHolds(ctx, event, cursor, auditPageSize)
			if err != nil {
				return l, 0, 0, false, err
			}
			l.Holds = append(l.Holds, p.Holds...)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		after, err := cl.Seats(ctx, event, client.SeatQuery{Owners: true, Strong: true})
		if err != nil {
			return l, 0, 0, false, err
		}
		l.Seats = after.Seats
		// The event's counts are read before and after too: a hold that
		// expired between the first count and the first seat map would
		// otherwise look like counts that do not add up.
		ev2, err := cl.GetEvent(ctx, event)
		if err != nil {
			return l, 0, 0, false, err
		}
		settled = reflect.DeepEqual(before.Seats, after.Seats) && reflect.DeepEqual(ev.Availability, ev2.Availability)
		return l, first, after.Index, settled, nil
	}
}

type auditFlags struct {
	attempts             int
	gateway              string
	stripeKey, stripeURL string
	showNotes            bool
}

func auditCmd() *cobra.Command {
	var r remote
	var f auditFlags
	c := &cobra.Command{
		Use:   "audit EVENT",
		Short: "Check that no seat of an event was sold twice and every paid order was charged",
		Long: `Read an event's whole state from the cluster with strong reads (the seat map
with the owner of every taken seat, every order, every hold) and check:

  - no seat is in two paid orders, nor in two live holds;
  - every sold seat belongs to exactly one paid order, and every seat of a
    paid order is sold to it; every held seat to one live hold, and back;
  - every paid order has a payment reference, and, with --payment-gateway,
    the gateway has the charge, with the order's amount, not refunded (and
    every refunded order's charge is refunded);
  - the event's counts (free, held, sold) agree with its seat map.

The token must be the event's organiser's or an admin's. The state is read in
pages; if seats change hands meanwhile (a live on-sale) the event is read
again, up to --attempts times, and the audit ends with exit code 5 if it never
holds still. Exit code 6 means a violation was found.`,
		Example: `  boxoffice audit arena-1 --token $ADMIN
  boxoffice audit arena-1 --token $ORGANISER --payment-gateway http://127.0.0.1:7070 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.attempts < 1 || f.attempts > auditAttemptsMax {
				return usageError{fmt.Errorf("--attempts must be 1..%d", auditAttemptsMax)}
			}
			gw, err := auditGateway(f)
			if err != nil {
				return usageError{err}
			}
			cl, err := r.client()
			if err != nil {
				return err
			}
			rep, err := runAudit(cmd.Context(), cl, gw, args[0], f.attempts)
			if err != nil {
				return err
			}
			if err := r.print(cmd.OutOrStdout(), rep, func(w io.Writer) { writeAuditReport(w, rep, f.showNotes) }); err != nil {
				return err
			}
			if n := len(rep.Violations); n > 0 {
				return violationError{fmt.Errorf("audit of %s: %d violations", rep.Event, n)}
			}
			return nil
		},
	}
	r.register(c)
	c.Flags().IntVar(&f.attempts, "attempts", 5, "reads of the whole event before giving up on one that keeps changing")
	c.Flags().StringVar(&f.gateway, "payment-gateway", "", "also look every charge up: stripe, or the http://host:port of a simulated gateway (empty: do not)")
	c.Flags().StringVar(&f.stripeKey, "stripe-key", env("BOXOFFICE_STRIPE_KEY", ""), "Stripe secret key, for --payment-gateway stripe")
	c.Flags().StringVar(&f.stripeURL, "stripe-url", env("BOXOFFICE_STRIPE_URL", ""), "Stripe API address (empty: Stripe's; or a stripe-mock)")
	c.Flags().BoolVar(&f.showNotes, "notes", false, "list every note (checkouts in flight, prices changed after a sale), not only their count")
	return c
}

// auditGateway builds the gateway the audit asks about charges, or nil.
func auditGateway(f auditFlags) (boxoffice.PaymentGateway, error) {
	switch {
	case f.gateway == "":
		return nil, nil
	case f.gateway == "stripe":
		cfg := payment.DefaultStripeConfig()
		cfg.APIKey = f.stripeKey
		cfg.BaseURL = f.stripeURL
		return payment.NewStripe(cfg)
	case strings.HasPrefix(f.gateway, "http://") || strings.HasPrefix(f.gateway, "https://"):
		return payment.NewHTTPGateway(f.gateway, payment.DefaultConfig().CallTimeout)
	}
	return nil, fmt.Errorf("--payment-gateway must be stripe or http://host:port, not %q", f.gateway)
}

// errEventLive is an audit that never read the same seats twice in a row.
var errEventLive = errors.New("the event's seats kept changing hands while it was read; audit it when the on-sale is quieter")

// runAudit reads the event until two seat maps around the orders and holds
// agree, then checks it (and the charges, with a gateway).
func runAudit(ctx context.Context, cl *client.Client, gw boxoffice.PaymentGateway, event string, attempts int) (*auditReport, error) {
	read := readLedger(ctx, cl)
	for attempt := 1; attempt <= attempts; attempt++ {
		l, first, last, settled, err := read(event)
		if err != nil {
			return nil, err
		}
		if !settled {
			continue
		}
		rep := checkLedger(l)
		rep.Attempts, rep.IndexFirst, rep.IndexLast = attempt, first, last
		if gw != nil {
			if err := checkCharges(ctx, gw, l.Orders, rep); err != nil {
				return nil, err
			}
		}
		return rep, nil
	}
	return nil, fmt.Errorf("audit of %s after %d reads: %w", event, attempts, errEventLive)
}

func writeAuditReport(w io.Writer, r *auditReport, showNotes bool) {
	fmt.Fprintf(w, "audit of %s (shard applied index %d..%d, read %d time(s))\n", r.Event, r.IndexFirst, r.IndexLast, r.Attempts)
	fmt.Fprintf(w, "  seats    %d: %d free, %d held, %d sold\n", r.Capacity, r.Free, r.Held, r.Sold)
	fmt.Fprintf(w, "  orders   %s; paid: %d seats, %d.%02d\n", byState(r.Orders), r.PaidSeats, r.RevenueCents/100, r.RevenueCents%100)
	fmt.Fprintf(w, "  holds    %s\n", byState(r.Holds))
	if r.ChargesChecked < 0 {
		fmt.Fprintln(w, "  charges  not looked up (no --payment-gateway)")
	} else {
		fmt.Fprintf(w, "  charges  %d looked up at the gateway\n", r.ChargesChecked)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "  notes    %d\n", len(r.Notes))
		if showNotes {
			for _, n := range r.Notes {
				fmt.Fprintf(w, "    %s: %s\n", n.Kind, n.Detail)
			}
		}
	}
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "OK: no seat sold twice; every sold seat in exactly one paid order and back; every paid order charged; counts add up")
		return
	}
	fmt.Fprintf(w, "VIOLATIONS: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s: %s\n", v.Kind, v.Detail)
	}
}

// byState writes counts by state, in a stable order.
func byState(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var keys []string
	total := 0
	for k, n := range m {
		keys = append(keys, k)
		total += n
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
