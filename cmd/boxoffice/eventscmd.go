package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"boxoffice"
	"boxoffice/client"
)

// venueFileBytesMax bounds a layout or event file.
const venueFileBytesMax = 8 << 20

func eventsCmd() *cobra.Command {
	var r remote
	c := &cobra.Command{
		Use:   "events",
		Short: "List, show, create and import events",
	}
	r.register(c)
	c.AddCommand(eventsListCmd(&r), eventsShowCmd(&r), eventsCreateCmd(&r), eventsImportCmd(&r), eventsReportCmd(&r), eventsAccessCmd(&r))
	return c
}

func eventsListCmd(r *remote) *cobra.Command {
	var q client.EventQuery
	var all bool
	c := &cobra.Command{
		Use:     "list",
		Short:   "List events (search by words of the name, type, location)",
		Example: `  boxoffice events list --query "summer tour" --type concert -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			var events []client.Event
			for {
				page, err := cl.ListEvents(cmd.Context(), q)
				if err != nil {
					return err
				}
				events = append(events, page.Events...)
				if !all || page.NextCursor == "" {
					break
				}
				q.Cursor = page.NextCursor
			}
			return r.print(cmd.OutOrStdout(), events, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSTARTS\tLOCATION\tCAPACITY")
				for _, e := range events {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", e.ID, e.Name, e.Type, when(e.StartsAt), e.Location, e.Capacity)
				}
				tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&q.Q, "query", "", "words of the name")
	c.Flags().StringVar(&q.Type, "type", "", "event type")
	c.Flags().StringVar(&q.Location, "location", "", "location")
	c.Flags().IntVar(&q.Limit, "limit", 0, "events per page (server default if 0)")
	c.Flags().BoolVar(&all, "all", false, "follow every page")
	return c
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func eventsShowCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use:     "show EVENT",
		Short:   "Show an event, its categories and how many seats are free, held and sold",
		Example: `  boxoffice events show demo`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			e, err := cl.GetEvent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), e, func(w io.Writer) {
				fmt.Fprintf(w, "%s  %s\n", e.ID, e.Name)
				fmt.Fprintf(w, "  type %s, starts %s, at %s, organiser %s, %d seats in %d sections\n",
					orDash(e.Type), when(e.StartsAt), orDash(e.Location), e.Organiser, e.Capacity, len(e.Venue.Sections))
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  CATEGORY\tPRICE\tCAPACITY\tFREE\tHELD\tSOLD")
				price := map[string]int64{}
				for _, c := range e.Categories {
					price[c.ID] = c.PriceCents
				}
				for _, a := range e.Availability {
					fmt.Fprintf(tw, "  %s\t%d.%02d\t%d\t%d\t%d\t%d\n", a.ID, price[a.ID]/100, price[a.ID]%100, a.Capacity, a.Free, a.Held, a.Sold)
				}
				tw.Flush()
			})
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func eventsCreateCmd(r *remote) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "create",
		Short: "Create an event from a JSON file (the body of POST /v1/events; - reads stdin)",
		Example: `  boxoffice events create --file event.json --token $ORGANISER
  # event.json: {"id":"tour-1","name":"Summer tour","categories":[{"id":"std","name":"Standard","priceCents":5000}],
  #              "venue":{"sections":[{"id":"A","category":"std","rows":20,"seatsPerRow":30}]}}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readFile(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			var ev client.Event
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return createEvent(cmd, r, &ev)
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the event's JSON")
	c.MarkFlagRequired("file")
	return c
}

func createEvent(cmd *cobra.Command, r *remote, ev *client.Event) error {
	cl, err := r.client()
	if err != nil {
		return err
	}
	out, err := cl.CreateEvent(cmd.Context(), ev)
	if err != nil {
		return err
	}
	return r.print(cmd.OutOrStdout(), out, func(w io.Writer) {
		fmt.Fprintf(w, "created %s: %d seats in %d sections\n", out.ID, out.Capacity, len(out.Venue.Sections))
	})
}

// readFile reads a bounded file, or stdin for "-".
func readFile(stdin io.Reader, name string) ([]byte, error) {
	var in io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	b, err := io.ReadAll(io.LimitReader(in, venueFileBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(b) > venueFileBytesMax {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, venueFileBytesMax)
	}
	return b, nil
}

func eventsImportCmd(r *remote) *cobra.Command {
	var file, startsAt string
	var ev client.Event
	c := &cobra.Command{
		Use:   "import",
		Short: "Create an event whose venue layout comes from a CSV or JSON file",
		Long: `Create an event whose venue layout comes from a file.

CSV (a header line, then one line per section):
  section,category,rows,seats_per_row,price_cents[,category_name]
  A,floor,40,50,12900,Floor
  B,upper,30,60,4900,Upper tier
A category's price (and name) must be the same on every line that names it.

JSON: {"sections":[{"id":"A","category":"floor","rows":40,"seatsPerRow":50}],
       "categories":[{"id":"floor","name":"Floor","priceCents":12900}]}`,
		Example: `  boxoffice events import --file arena.csv --id arena-0612 --name "Arena, 12 June" --starts-at 2026-06-12T20:00:00Z`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readFile(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			cats, venue, err := parseLayout(file, b)
			if err != nil {
				return err
			}
			ev.Categories, ev.Venue = cats, venue
			if startsAt != "" {
				t, err := time.Parse(time.RFC3339, startsAt)
				if err != nil {
					return usageError{fmt.Errorf("--starts-at %q is not an RFC 3339 time", startsAt)}
				}
				ev.StartsAt = t
			}
			return createEvent(cmd, r, &ev)
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the layout, .csv or .json (- reads JSON from stdin)")
	c.Flags().StringVar(&ev.ID, "id", "", "the event's id")
	c.Flags().StringVar(&ev.Name, "name", "", "the event's name")
	c.Flags().StringVar(&ev.Type, "type", "", "the event's type (concert, sport, …)")
	c.Flags().StringVar(&ev.Location, "location", "", "where it takes place")
	c.Flags().StringVar(&startsAt, "starts-at", "", "when it starts, RFC 3339")
	for _, f := range []string{"file", "id", "name"} {
		c.MarkFlagRequired(f)
	}
	return c
}

// parseLayout reads a venue layout from CSV (by extension) or JSON, and
// checks what can be checked without the server: the server validates it
// again, with the same limits.
func parseLayout(name string, b []byte) ([]client.Category, client.Venue, error) {
	var cats []client.Category
	var venue client.Venue
	if strings.HasSuffix(strings.ToLower(name), ".csv") {
		var err error
		if cats, venue, err = parseLayoutCSV(b); err != nil {
			return nil, venue, fmt.Errorf("%s: %w", name, err)
		}
	} else {
		var in struct {
			Sections   []client.Section  `json:"sections"`
			Categories []client.Category `json:"categories"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, venue, fmt.Errorf("%s: %w", name, err)
		}
		cats, venue.Sections = in.Categories, in.Sections
	}
	if len(venue.Sections) == 0 || len(venue.Sections) > boxoffice.SectionsMax {
		return nil, venue, fmt.Errorf("%s: a venue has 1..%d sections, not %d", name, boxoffice.SectionsMax, len(venue.Sections))
	}
	return cats, venue, nil
}

func parseLayoutCSV(b []byte) ([]client.Category, client.Venue, error) {
	var venue client.Venue
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	head, err := r.Read()
	if err != nil {
		return nil, venue, fmt.Errorf("no header line: %w", err)
	}
	want := []string{"section", "category", "rows", "seats_per_row", "price_cents"}
	if len(head) < len(want) || len(head) > len(want)+1 {
		return nil, venue, fmt.Errorf("header must be %s[,category_name]", strings.Join(want, ","))
	}
	for i, w := range want {
		if strings.ToLower(strings.TrimSpace(head[i])) != w {
			return nil, venue, fmt.Errorf("header column %d is %q, want %q", i+1, head[i], w)
		}
	}
	var cats []client.Category
	byID := map[string]int{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, venue, err
		}
		if len(rec) != len(head) {
			return nil, venue, fmt.Errorf("line %d: %d fields, want %d", line, len(rec), len(head))
		}
		num := func(col int, what string) (int64, error) {
			n, err := strconv.ParseInt(strings.TrimSpace(rec[col]), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("line %d: %s %q is not a non-negative integer", line, what, rec[col])
			}
			return n, nil
		}
		rows, err := num(2, "rows")
		if err != nil {
			return nil, venue, err
		}
		perRow, err := num(3, "seats_per_row")
		if err != nil {
			return nil, venue, err
		}
		price, err := num(4, "price_cents")
		if err != nil {
			return nil, venue, err
		}
		cat := client.Category{ID: strings.TrimSpace(rec[1]), PriceCents: price}
		cat.Name = cat.ID
		if len(rec) > 5 && strings.TrimSpace(rec[5]) != "" {
			cat.Name = strings.TrimSpace(rec[5])
		}
		if i, ok := byID[cat.ID]; ok {
			if cats[i] != cat {
				return nil, venue, fmt.Errorf("line %d: category %q has another price or name than on an earlier line", line, cat.ID)
			}
		} else {
			byID[cat.ID] = len(cats)
			cats = append(cats, cat)
		}
		if len(venue.Sections) >= boxoffice.SectionsMax {
			return nil, venue, fmt.Errorf("more than %d sections", boxoffice.SectionsMax)
		}
		venue.Sections = append(venue.Sections, client.Section{
			ID: strings.TrimSpace(rec[0]), Category: cat.ID, Rows: int(rows), SeatsPerRow: int(perRow),
		})
	}
	return cats, venue, nil
}
