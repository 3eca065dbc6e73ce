package httpapi

import (
	"bytes"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// The sales report: per category and per section, seats by state and
// revenue, and sales per minute since the first sale, from the state
// machine's counters (a few keys per section, never a scan of the seats).

type minuteJSON struct {
	Minute       string `json:"minute"`
	Seats        int    `json:"seats"`
	RevenueCents int64  `json:"revenueCents"`
}

type reportJSON struct {
	Event          string                 `json:"event"`
	Index          uint64                 `json:"index"`
	At             string                 `json:"at"`
	Categories     []boxoffice.ReportLine `json:"categories"`
	Sections       []boxoffice.ReportLine `json:"sections"`
	Total          boxoffice.ReportLine   `json:"total"`
	SalesPerMinute []minuteJSON           `json:"salesPerMinute"`
}

func rfc3339Ms(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// report serves GET /v1/events/{event}/report[?format=json|csv].
func (s *Server) report(ctx *fasthttp.RequestCtx, event string) {
	format := string(ctx.QueryArgs().Peek("format"))
	if format != "" && format != "json" && format != "csv" {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "format must be json or csv, not "+strconv.Quote(format))
		return
	}
	s.eventRead(ctx, event, boxoffice.AccessView, func(st *fsm.Store) error {
		index := st.AppliedIndex()
		rep, err := st.Report(event)
		if err != nil {
			return err
		}
		s.setIndex(ctx, s.node.ShardOfEvent(event))
		if format == "csv" {
			ctx.Response.Header.SetContentType("text/csv; charset=utf-8")
			ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+event+`-report.csv"`)
			ctx.SetStatusCode(200)
			ctx.SetBody(reportCSV(rep))
			return nil
		}
		out := reportJSON{Event: event, Index: index, At: rfc3339Ms(rep.AtMs), Categories: rep.Categories,
			Sections: rep.Sections, Total: rep.Total, SalesPerMinute: make([]minuteJSON, len(rep.Minutes))}
		for i, m := range rep.Minutes {
			out.SalesPerMinute[i] = minuteJSON{Minute: rfc3339Ms(m.MinuteMs), Seats: m.Seats, RevenueCents: m.RevenueCents}
		}
		writeJSON(ctx, 200, out)
		return nil
	})
}

// reportCSV renders a report as one CSV table: a row per category, per
// section and the total, then a row per minute of sales (its time in id,
// its seats in sold). Ids are [A-Za-z0-9._-], so no field needs quoting.
func reportCSV(rep *boxoffice.Report) []byte {
	var b bytes.Buffer
	b.WriteString("kind,id,category,capacity,free,held,sold,revenueCents\n")
	line := func(kind string, l boxoffice.ReportLine) {
		b.WriteString(kind + "," + l.ID + "," + l.Category + "," + strconv.Itoa(l.Capacity) + "," + strconv.Itoa(l.Free) + "," +
			strconv.Itoa(l.Held) + "," + strconv.Itoa(l.Sold) + "," + strconv.FormatInt(l.RevenueCents, 10) + "\n")
	}
	for _, l := range rep.Categories {
		line("category", l)
	}
	for _, l := range rep.Sections {
		line("section", l)
	}
	line("total", rep.Total)
	for _, m := range rep.Minutes {
		b.WriteString("minute," + rfc3339Ms(m.MinuteMs) + ",,,,," + strconv.Itoa(m.Seats) + "," + strconv.FormatInt(m.RevenueCents, 10) + "\n")
	}
	return b.Bytes()
}
