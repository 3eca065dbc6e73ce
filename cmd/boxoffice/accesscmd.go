package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"boxoffice/client"
)

// eventsReportCmd is `boxoffice events report EVENT [--csv]`.
func eventsReportCmd(r *remote) *cobra.Command {
	var asCSV bool
	c := &cobra.Command{
		Use:   "report EVENT",
		Short: "Show an event's sales report: seats by state and revenue per category and section, sales per minute",
		Example: `  boxoffice events report arena-1
  boxoffice events report arena-1 --csv > arena-1.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			if asCSV {
				b, err := cl.ReportCSV(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			rep, err := cl.Report(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), rep, func(w io.Writer) {
				fmt.Fprintf(w, "%s at %s\n", rep.Event, rep.At)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  \tID\tCATEGORY\tCAPACITY\tFREE\tHELD\tSOLD\tREVENUE")
				line := func(kind string, l client.ReportLine) {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%d.%02d\n", kind, l.ID, orDash(l.Category), l.Capacity, l.Free, l.Held, l.Sold, l.RevenueCents/100, l.RevenueCents%100)
				}
				for _, l := range rep.Categories {
					line("category", l)
				}
				for _, l := range rep.Sections {
					line("section", l)
				}
				line("total", rep.Total)
				tw.Flush()
				var seats int
				for _, m := range rep.SalesPerMinute {
					seats += m.Seats
				}
				if n := len(rep.SalesPerMinute); n > 0 {
					fmt.Fprintf(w, "  %d seats sold in %d minutes since %s; last minute: %d\n", seats, n, rep.SalesPerMinute[0].Minute, rep.SalesPerMinute[n-1].Seats)
				}
			})
		},
	}
	c.Flags().BoolVar(&asCSV, "csv", false, "print the report as CSV, for accountants")
	return c
}

// eventsAccessCmd is `boxoffice events access list|grant|revoke`.
func eventsAccessCmd(r *remote) *cobra.Command {
	c := &cobra.Command{
		Use:   "access",
		Short: "List, grant and revoke users' access to one event (view or manage)",
	}
	c.AddCommand(&cobra.Command{
		Use:     "list EVENT",
		Short:   "List an event's owner and grants",
		Example: `  boxoffice events access list arena-1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			a, err := cl.Access(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), a, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER\tLEVEL")
				fmt.Fprintf(tw, "%s\towner\n", a.Owner)
				for _, g := range a.Grants {
					fmt.Fprintf(tw, "%s\t%s\n", g.User, g.Level)
				}
				tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:     "grant EVENT USER view|manage",
		Short:   "Give a user a level on an event",
		Example: `  boxoffice events access grant arena-1 door-staff view`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			if err := cl.Grant(cmd.Context(), args[0], args[1], args[2]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s may %s %s\n", args[1], args[2], args[0])
			return nil
		},
	}, &cobra.Command{
		Use:     "revoke EVENT USER",
		Short:   "Take a user's grant on an event away",
		Example: `  boxoffice events access revoke arena-1 door-staff`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			if err := cl.Revoke(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s has no access to %s\n", args[1], args[0])
			return nil
		},
	})
	return c
}
