package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"boxoffice"
	"boxoffice/client"
	"boxoffice/httpapi"
)

// demoBuyer is one of the demo's buyers and what it does: buy its seats, or
// only hold them (so that the seat map shows held seats too).
type demoBuyer struct {
	id    string
	seats []string
	buy   bool
}

// demoBuyers are the same on every run, so that a second run finds what
// the first did instead of buying again.
var demoBuyers = []demoBuyer{
	{"demo-buyer-1", []string{"F1-1-12", "F1-1-13"}, true},
	{"demo-buyer-2", []string{"F2-3-1", "F2-3-2", "F2-3-3", "F2-3-4"}, true},
	{"demo-buyer-3", []string{"L103-7-15"}, true},
	{"demo-buyer-4", []string{"U207-12-20", "U207-12-21", "U207-12-22"}, true},
	{"demo-buyer-5", []string{"F3-2-10", "F3-2-11"}, false},
	{"demo-buyer-6", []string{"L105-1-1", "L105-1-2", "L105-1-3"}, false},
}

// demoEvent is an arena: four floor blocks, eight lower-tier and twelve
// upper-tier sections, 12,800 seats.
func demoEvent(id string, now time.Time) *client.Event {
	ev := &client.Event{
		ID: id, Name: "Boxoffice Arena: The Demo Tour", Type: "concert", Location: "Berlin",
		StartsAt: now.Add(30 * 24 * time.Hour).UTC().Truncate(time.Hour),
		Categories: []client.Category{
			{ID: "floor", Name: "Floor", PriceCents: 12900},
			{ID: "lower", Name: "Lower tier", PriceCents: 8900},
			{ID: "upper", Name: "Upper tier", PriceCents: 4900},
		},
		Limits: client.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 600},
	}
	for i := 1; i <= 4; i++ {
		ev.Venue.Sections = append(ev.Venue.Sections, client.Section{ID: fmt.Sprintf("F%d", i), Category: "floor", Rows: 20, SeatsPerRow: 25})
	}
	for i := 101; i <= 108; i++ {
		ev.Venue.Sections = append(ev.Venue.Sections, client.Section{ID: fmt.Sprintf("L%d", i), Category: "lower", Rows: 15, SeatsPerRow: 30})
	}
	for i := 201; i <= 212; i++ {
		ev.Venue.Sections = append(ev.Venue.Sections, client.Section{ID: fmt.Sprintf("U%d", i), Category: "upper", Rows: 20, SeatsPerRow: 30})
	}
	return ev
}

// demoReport is what a demo run did.
type demoReport struct {
	Event   string   `json:"event"`
	Created bool     `json:"created"`
	Steps   []string `json:"steps"`
	Seats   struct {
		Capacity, Free, Held, Sold int
	} `json:"seats"`
}

func demoCmd() *cobra.Command {
	var r remote
	var event, secret, dataDir string
	c := &cobra.Command{
		Use:   "demo",
		Short: "Create a demo event in an arena, with a few holds and purchases (idempotent)",
		Long: `Create a demo event (an arena of 12,800 seats in floor, lower and upper tier
sections) on the cluster at --target, then have six demo buyers buy or hold
a few seats, so that the seat map, the event's counts and the cluster status
show something. Running it again finds the event and the orders of the
first run and adds nothing; holds whose time ran out are taken again.

It mints its tokens (an organiser's and the buyers') with the cluster's
auth secret: --auth-secret, BOXOFFICE_AUTH_SECRET, or the file auth-secret
in --data-dir, where 'boxoffice local' keeps it.`,
		Example: `  boxoffice demo                       # against the cluster 'boxoffice local' runs
  boxoffice demo --target http://10.0.0.5:8080 --auth-secret "$SECRET" --event arena-demo -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !boxoffice.ValidID(event) {
				return usageError{fmt.Errorf("--event %q must match [A-Za-z0-9._-]{1,%d}", event, boxoffice.IDLenMax)}
			}
			if secret == "" {
				b, err := os.ReadFile(filepath.Join(dataDir, "auth-secret"))
				if err != nil {
					return usageError{fmt.Errorf("no auth secret: give --auth-secret or BOXOFFICE_AUTH_SECRET (or run 'boxoffice local' first): %w", err)}
				}
				secret = strings.TrimSpace(string(b))
			}
			cl, err := r.client()
			if err != nil {
				return err
			}
			rep, err := runDemo(cmd.Context(), cl, []byte(secret), event)
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), rep, func(w io.Writer) {
				for _, s := range rep.Steps {
					fmt.Fprintln(w, s)
				}
				fmt.Fprintf(w, "%s: %d seats, %d free, %d held, %d sold\n", rep.Event, rep.Seats.Capacity, rep.Seats.Free, rep.Seats.Held, rep.Seats.Sold)
				fmt.Fprintf(w, "see it: boxoffice events show %s; boxoffice cluster status\n", rep.Event)
			})
		},
	}
	r.register(c)
	c.Flags().StringVar(&event, "event", "demo-tour", "the demo event's id")
	c.Flags().StringVar(&secret, "auth-secret", env("BOXOFFICE_AUTH_SECRET", ""), "the cluster's HS256 secret, to mint the demo's tokens")
	c.Flags().StringVar(&dataDir, "data-dir", "data", "where 'boxoffice local' keeps the auth secret, if none is given")
	return c
}

// runDemo creates the event unless it exists, and has each demo buyer buy
// or hold its seats unless it did already.
func runDemo(ctx context.Context, cl *client.Client, secret []byte, event string) (*demoReport, error) {
	rep := &demoReport{Event: event}
	token := func(sub string, role httpapi.Role) (*client.Client, error) {
		tok, err := httpapi.MintToken(secret, sub, role, time.Hour)
		if err != nil {
			return nil, usageError{err}
		}
		return cl.WithToken(tok), nil
	}
	org, err := token("demo-organiser", httpapi.RoleOrganiser)
	if err != nil {
		return nil, err
	}
	_, err = org.CreateEvent(ctx, demoEvent(event, time.Now()))
	switch {
	case err == nil:
		rep.Created = true
		rep.Steps = append(rep.Steps, "created event "+event)
	case hasCode(err, boxoffice.CodeEventExists):
		rep.Steps = append(rep.Steps, "event "+event+" exists")
	default:
		return nil, fmt.Errorf("create the demo event: %w", err)
	}
	for _, b := range demoBuyers {
		bc, err := token(b.id, httpapi.RoleBuyer)
		if err != nil {
			return nil, err
		}
		step, err := demoBuyerStep(ctx, bc, event, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.id, err)
		}
		rep.Steps = append(rep.Steps, step)
	}
	ev, err := cl.GetEvent(client.WithStrongRead(ctx), event)
	if err != nil {
		return nil, err
	}
	for _, a := range ev.Availability {
		rep.Seats.Capacity += a.Capacity
		rep.Seats.Free += a.Free
		rep.Seats.Held += a.Held
		rep.Seats.Sold += a.Sold
	}
	return rep, nil
}

// hasCode reports whether err is a client error with the code.
func hasCode(err error, code boxoffice.Code) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Code == code
}

// demoBuyerStep does one buyer's part, unless done: a paid order (or, for
// a holder, an active hold) of the event is left as it is.
func demoBuyerStep(ctx context.Context, bc *client.Client, event string, b demoBuyer) (string, error) {
	ctx = client.WithStrongRead(ctx)
	if b.buy {
		orders, err := bc.MyOrders(ctx)
		if err != nil {
			return "", err
		}
		for _, o := range orders {
			if o.Event == event && o.State == client.OrderPaid {
				return fmt.Sprintf("%s has order %s (%s)", b.id, o.ID, strings.Join(o.Seats, " ")), nil
			}
		}
	}
	holds, err := bc.MyHolds(ctx)
	if err != nil {
		return "", err
	}
	var h *client.Hold
	for i := range holds {
		if holds[i].Event == event && holds[i].State == client.HoldActive {
			h = &holds[i]
		}
	}
	if h == nil {
		h, err = bc.Hold(ctx, event, client.HoldRequest{Seats: b.seats})
		if hasCode(err, boxoffice.CodeSeatUnavailable) {
			return fmt.Sprintf("%s: seats %s are taken by someone else; skipped", b.id, strings.Join(b.seats, " ")), nil
		}
		if err != nil {
			return "", err
		}
	}
	if !b.buy {
		return fmt.Sprintf("%s holds %s until %s (hold %s)", b.id, strings.Join(h.Seats, " "), h.ExpiresAt.UTC().Format(time.TimeOnly), h.ID), nil
	}
	o, err := bc.Purchase(ctx, h.ID, "pm_card_visa")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s bought %s: order %s, %d.%02d", b.id, strings.Join(o.Seats, " "), o.ID, o.AmountCents/100, o.AmountCents%100), nil
}
