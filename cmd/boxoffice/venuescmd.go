package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"boxoffice"
	"boxoffice/client"
)

func venuesCmd() *cobra.Command {
	var r remote
	c := &cobra.Command{
		Use:   "venues",
		Short: "Create, list and show reusable venues (seated sections and general-admission areas)",
	}
	r.register(c)
	c.AddCommand(venuesCreateCmd(&r, false), venuesCreateCmd(&r, true), venuesListCmd(&r), venuesShowCmd(&r))
	return c
}

const venueFileHelp = `JSON: the body of POST /v1/venues:
  {"id":"arena","name":"Arena","location":"Berlin",
   "categories":[{"id":"floor","name":"Floor"},{"id":"ga","name":"Standing"}],
   "sections":[{"id":"A","category":"floor","rows":40,"seatsPerRow":50}],
   "areas":[{"id":"PIT","category":"ga","capacity":4000}]}

CSV (a header line, then one line per section or area; a section has rows
and seats per row, an area a capacity; id, name and location are flags):
  id,category,rows,seats_per_row,capacity[,category_name][,row_seats][,gaps][,accessible]
  A,floor,3,50,,Floor,50 48 46,1-25 2-25,1-1 1-2
  PIT,ga,,,4000,Standing
row_seats is each row's seat count, gaps the seats that do not exist (an
aisle), accessible the seats flagged accessible ("<row>-<number>", spaces
between).
Categories are named, not priced: each event made from the venue prices
them ("venueId" in boxoffice events create).`

func venuesCreateCmd(r *remote, update bool) *cobra.Command {
	var file string
	var flags client.VenueChart
	use, short := "create", "Create a venue (version 1) from a JSON or CSV file"
	if update {
		use, short = "update", "Replace a venue with a new version from a JSON or CSV file (events keep theirs)"
	}
	c := &cobra.Command{
		Use:   use + " [FILE]",
		Short: short,
		Long:  short + ".\n\n" + venueFileHelp,
		Example: `  boxoffice venues ` + use + ` arena.json --token $ORGANISER
  boxoffice venues ` + use + ` --file arena.csv --id arena --name Arena --location Berlin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The file is named as an argument or with --file, once.
			switch {
			case len(args) == 1 && file != "":
				return usageError{errors.New("name the file once: as an argument or with --file")}
			case len(args) == 1:
				file = args[0]
			case file == "":
				return usageError{errors.New("name the venue's file: boxoffice venues " + use + " FILE (or --file FILE)")}
			}
			b, err := readFile(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			v, err := parseVenue(file, b)
			if err != nil {
				return err
			}
			if flags.ID != "" {
				v.ID = flags.ID
			}
			if flags.Name != "" {
				v.Name = flags.Name
			}
			if flags.Location != "" {
				v.Location = flags.Location
			}
			if v.ID == "" || v.Name == "" {
				return usageError{errors.New("a venue needs an id and a name (in the file, or --id and --name)")}
			}
			cl, err := r.client()
			if err != nil {
				return err
			}
			var out *client.VenueChart
			if update {
				out, err = cl.UpdateVenue(cmd.Context(), &v)
			} else {
				out, err = cl.CreateVenue(cmd.Context(), &v)
			}
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), out, func(w io.Writer) {
				fmt.Fprintf(w, "%s version %d: %d places in %s and %s\n", out.ID, out.Version, out.Capacity,
					plural(len(out.Sections), "section"), plural(len(out.Areas), "general-admission area"))
			})
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the venue, .csv or .json (- reads JSON from stdin)")
	c.Flags().StringVar(&flags.ID, "id", "", "the venue's id (overrides the file's)")
	c.Flags().StringVar(&flags.Name, "name", "", "the venue's name (overrides the file's)")
	c.Flags().StringVar(&flags.Location, "location", "", "where it is (overrides the file's)")
	return c
}

// plural is "1 section", "2 sections".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// parseVenue reads a venue from CSV (by extension) or JSON, checking what
// can be checked without the server (which validates it again).
func parseVenue(name string, b []byte) (client.VenueChart, error) {
	var v client.VenueChart
	if strings.HasSuffix(strings.ToLower(name), ".csv") {
		var err error
		if v, err = parseVenueCSV(b); err != nil {
			return v, fmt.Errorf("%s: %w", name, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return v, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(v.Sections)+len(v.Areas) == 0 {
		return v, fmt.Errorf("%s: a venue has at least one section or area", name)
	}
	return v, nil
}

func parseVenueCSV(b []byte) (client.VenueChart, error) {
	var v client.VenueChart
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	head, err := r.Read()
	if err != nil {
		return v, fmt.Errorf("no header line: %w", err)
	}
	want := []string{"id", "category", "rows", "seats_per_row", "capacity"}
	optional := map[string]int{"category_name": -1, "row_seats": -1, "gaps": -1, "accessible": -1}
	if len(head) < len(want) || len(head) > len(want)+len(optional) {
		return v, fmt.Errorf("header must be %s[,category_name][,row_seats][,gaps][,accessible]", strings.Join(want, ","))
	}
	for i, w := range want {
		if strings.ToLower(strings.TrimSpace(head[i])) != w {
			return v, fmt.Errorf("header column %d is %q, want %q", i+1, head[i], w)
		}
	}
	for i := len(want); i < len(head); i++ {
		name := strings.ToLower(strings.TrimSpace(head[i]))
		if col, ok := optional[name]; !ok || col >= 0 {
			return v, fmt.Errorf("header column %d is %q: want one of category_name, row_seats, gaps, accessible, once each", i+1, head[i])
		}
		optional[name] = i
	}
	// opt reads an optional column: "" when the header has none.
	opt := func(rec []string, name string) string {
		if i := optional[name]; i >= 0 {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	byID := map[string]int{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v, err
		}
		if len(rec) != len(head) {
			return v, fmt.Errorf("line %d: %d fields, want %d", line, len(rec), len(head))
		}
		// num reads an optional count: 0 when empty.
		num := func(col int, what string) (int, error) {
			s := strings.TrimSpace(rec[col])
			if s == "" {
				return 0, nil
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("line %d: %s %q is not a positive integer", line, what, rec[col])
			}
			return n, nil
		}
		rows, err := num(2, "rows")
		if err != nil {
			return v, err
		}
		perRow, err := num(3, "seats_per_row")
		if err != nil {
			return v, err
		}
		capacity, err := num(4, "capacity")
		if err != nil {
			return v, err
		}
		cat := client.VenueCategory{ID: strings.TrimSpace(rec[1]), Name: opt(rec, "category_name")}
		if i, ok := byID[cat.ID]; ok {
			if cat.Name != "" && v.Categories[i].Name != cat.Name {
				return v, fmt.Errorf("line %d: category %q has another name than on an earlier line", line, cat.ID)
			}
		} else {
			if len(v.Categories) >= boxoffice.CategoriesMax {
				return v, fmt.Errorf("line %d: more than %d categories", line, boxoffice.CategoriesMax)
			}
			byID[cat.ID] = len(v.Categories)
			v.Categories = append(v.Categories, cat)
		}
		id := strings.TrimSpace(rec[0])
		switch {
		case rows > 0 && perRow > 0 && capacity == 0:
			if len(v.Sections) >= boxoffice.SectionsMax {
				return v, fmt.Errorf("line %d: more than %d sections", line, boxoffice.SectionsMax)
			}
			s := client.Section{ID: id, Category: cat.ID, Rows: rows, SeatsPerRow: perRow, Gaps: strings.Fields(opt(rec, "gaps"))}
			for _, f := range strings.Fields(opt(rec, "row_seats")) {
				n, err := strconv.Atoi(f)
				if err != nil || n < 1 || len(s.RowSeats) >= boxoffice.RowsPerSectionMax {
					return v, fmt.Errorf("line %d: row_seats %q is not a list of positive counts, one per row", line, opt(rec, "row_seats"))
				}
				s.RowSeats = append(s.RowSeats, n)
			}
			if acc := strings.Fields(opt(rec, "accessible")); len(acc) > 0 {
				s.Flags = []client.SeatFlag{{Flag: "accessible", Seats: acc}}
			}
			v.Sections = append(v.Sections, s)
		case rows == 0 && perRow == 0 && capacity > 0:
			if opt(rec, "row_seats")+opt(rec, "gaps")+opt(rec, "accessible") != "" {
				return v, fmt.Errorf("line %d: an area has no rows, gaps or seats to flag", line)
			}
			if len(v.Areas) >= boxoffice.AreasMax {
				return v, fmt.Errorf("line %d: more than %d areas", line, boxoffice.AreasMax)
			}
			v.Areas = append(v.Areas, client.Area{ID: id, Category: cat.ID, Capacity: capacity})
		default:
			return v, fmt.Errorf("line %d: give rows and seats_per_row (a section) or capacity (a general-admission area), not both", line)
		}
	}
	return v, nil
}

func venuesListCmd(r *remote) *cobra.Command {
	var all bool
	var limit int
	c := &cobra.Command{
		Use:     "list",
		Short:   "List venues (their newest versions)",
		Example: `  boxoffice venues list --all -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			var venues []client.VenueChart
			cursor := ""
			for {
				page, err := cl.ListVenues(cmd.Context(), cursor, limit)
				if err != nil {
					return err
				}
				venues = append(venues, page.Venues...)
				if !all || page.NextCursor == "" {
					break
				}
				cursor = page.NextCursor
			}
			return r.print(cmd.OutOrStdout(), venues, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tVERSION\tNAME\tLOCATION\tOWNER\tSECTIONS\tAREAS\tCAPACITY")
				for _, v := range venues {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\n", v.ID, v.Version, v.Name, orDash(v.Location), v.Owner, len(v.Sections), len(v.Areas), v.Capacity)
				}
				tw.Flush()
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 0, "venues per page (server default if 0)")
	c.Flags().BoolVar(&all, "all", false, "follow every page")
	return c
}

func venuesShowCmd(r *remote) *cobra.Command {
	var version int
	c := &cobra.Command{
		Use:     "show VENUE",
		Short:   "Show a venue: its categories, sections and general-admission areas",
		Example: `  boxoffice venues show arena --version 1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			v, err := cl.GetVenue(cmd.Context(), args[0], version)
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), v, func(w io.Writer) {
				fmt.Fprintf(w, "%s  %s  version %d\n", v.ID, v.Name, v.Version)
				fmt.Fprintf(w, "  at %s, owner %s, updated %s, %d places\n", orDash(v.Location), v.Owner, orDash(v.UpdatedAt), v.Capacity)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  KIND\tID\tCATEGORY\tROWS\tSEATS/ROW\tPLACES")
				for _, s := range v.Sections {
					fmt.Fprintf(tw, "  section\t%s\t%s\t%d\t%d\t%d\n", s.ID, s.Category, s.Rows, s.SeatsPerRow, s.Rows*s.SeatsPerRow)
				}
				for _, a := range v.Areas {
					fmt.Fprintf(tw, "  area\t%s\t%s\t-\t-\t%d\n", a.ID, a.Category, a.Capacity)
				}
				tw.Flush()
			})
		},
	}
	c.Flags().IntVar(&version, "version", 0, "the version to show (the newest if 0)")
	return c
}
