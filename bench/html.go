package bench

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Colours of the report's lines (colour-blind-safe Okabe–Ito palette).
const (
	colBlue   = "#0072B2"
	colOrange = "#E69F00"
	colGreen  = "#009E73"
	colRed    = "#D55E00"
	colPurple = "#CC79A7"
	colGrey   = "#777777"
)

var opColours = map[string]string{"hold": colBlue, "purchase": colGreen, "release": colOrange, "seatmap": colPurple}

// WriteHTML writes a self-contained report: figures, plots as inline SVG,
// tables. It needs nothing but a browser.
func WriteHTML(w io.Writer, res *Result) error {
	return reportTmpl.Execute(w, reportData(res))
}

type card struct {
	Label, Value, Note string
	Bad                bool
}

type row []string

type reportView struct {
	Title      string
	Subtitle   string
	OK         bool
	Conclusive bool
	Verdict    string
	Violations []string
	Unresolved []string
	Cards      []card
	Charts     []template.HTML
	Latency    []row
	Errors     []row
	CPU        []row
	Config     []row
	Check      []row
}

func reportData(res *Result) reportView {
	v := reportView{
		Title: fmt.Sprintf("boxoffice bench — %s: %s, %s seats, %d users", systemName(res), res.Workload, thousands(int64(res.Seats)), res.Users),
		Subtitle: fmt.Sprintf("event %s on %s · started %s · stopped: %s after %.2f s",
			res.Event, strings.Join(res.Targets, ", "), res.StartedAt.Format("2006-01-02 15:04:05 MST"), res.StopReason, res.LoadS),
		OK: res.Check.OK, Conclusive: res.Check.Conclusive,
		Violations: res.Check.Violations, Unresolved: res.Check.Unresolved,
	}
	k := res.Check
	if k.OK {
		v.Verdict = fmt.Sprintf("Invariant check passed: %s sold seats = %s seats of %s acknowledged orders (%s read back paid); no seat sold or held twice across %s holds (strong reads at index %d).",
			thousands(int64(k.SeatsSold)), thousands(int64(k.AckedSeats)), thousands(int64(k.AckedOrders)), thousands(int64(k.OrdersRead)), thousands(int64(k.HoldsChecked)), k.Index)
	} else {
		v.Verdict = fmt.Sprintf("INVARIANT CHECK FAILED: %d violation(s).", k.ViolationCount)
	}

	sellOut := "not sold out"
	if res.SoldOut {
		sellOut = fmt.Sprintf("%.2f s", res.SellOutS)
	}
	hot := "not sold out"
	if res.HotSoldOut {
		hot = fmt.Sprintf("%.2f s", res.HotSellOutS)
	}
	hold := res.Latency["hold"]
	v.Cards = []card{
		{Label: "time to sell out", Value: sellOut, Note: fmt.Sprintf("%s of %s seats sold", thousands(res.Sold), thousands(int64(res.Seats))), Bad: !res.SoldOut},
		{Label: "hot set sold out", Value: hot, Note: fmt.Sprintf("best %s seats, %.0f %% of picks", thousands(int64(res.HotSeats)), 100*res.HotShare)},
		{Label: "sold seats / s", Value: thousands(int64(res.SoldPerS))},
		{Label: "ok ops / s", Value: thousands(int64(res.OkOpsPerS)), Note: fmt.Sprintf("%s attempts/s", thousands(int64(res.AttemptsPerS)))},
		{Label: "conflict rate", Value: fmt.Sprintf("%.1f %%", 100*res.ConflictRate), Note: fmt.Sprintf("%.2f retries per successful hold", res.RetriesPerSuccess)},
		{Label: "hold p99", Value: fmt.Sprintf("%.1f ms", hold.P99Ms), Note: fmt.Sprintf("p50 %.1f ms · max %.0f ms", hold.P50Ms, hold.MaxMs)},
		{Label: "errors", Value: thousands(res.Errors), Bad: res.Errors > 0},
		{Label: "CPU", Value: fmt.Sprintf("%.2f + %.2f cores", res.CPU.ServerCores, res.CPU.BenchCores),
			Note: fmt.Sprintf("servers + bench; machine %.0f %% busy of %d", 100*res.CPU.MachineBusy, res.CPU.MachineCores)},
	}

	// Series.
	n := len(res.Series)
	ts := make([]float64, n)
	pick := func(f func(Second) float64) []float64 {
		out := make([]float64, n)
		for i, s := range res.Series {
			out[i] = f(s)
		}
		return out
	}
	for i, s := range res.Series {
		ts[i] = s.T
	}
	// Rates over a short last interval (the stop cut it) are noise: the
	// rate plots leave it out; the cumulative ones keep it.
	rn := n
	if n > 1 && res.Series[n-1].IntervalS < 0.5 {
		rn = n - 1
	}
	rts := ts[:rn]
	rate := func(f func(Second) float64) []float64 { return pick(f)[:rn] }
	// The curves start at 0 at t = 0.
	zero := func(xs []float64) []float64 { return append([]float64{0}, xs...) }
	t0 := zero(ts)
	hotSeats := float64(max(res.HotSeats, 1))
	v.Charts = append(v.Charts,
		template.HTML(chart{
			title: "Sell-out curve", xLabel: "seconds since the start", yLabel: "% of seats sold",
			lines: []line{
				{name: "all seats", color: colBlue, xs: t0, ys: zero(pick(func(s Second) float64 { return 100 * float64(s.Sold) / float64(res.Seats) }))},
				{name: "hot set", color: colRed, xs: t0, ys: zero(pick(func(s Second) float64 { return 100 * float64(s.HotSold) / hotSeats }))},
			},
			yMaxAtLeast: 100,
		}.svg()),
		template.HTML(chart{
			title: "Throughput", xLabel: "seconds since the start", yLabel: "per second",
			lines: []line{
				{name: "attempts/s", color: colGrey, xs: rts, ys: rate(func(s Second) float64 { return s.AttemptsPerS }), dash: true},
				{name: "ok ops/s", color: colBlue, xs: rts, ys: rate(func(s Second) float64 { return s.OkOpsPerS })},
				{name: "sold seats/s", color: colGreen, xs: rts, ys: rate(func(s Second) float64 { return s.SoldPerS })},
				{name: "conflicts/s", color: colRed, xs: rts, ys: rate(func(s Second) float64 { return s.ConflictsPerS })},
			},
		}.svg()),
		template.HTML(chart{
			title: "Hold latency over time", xLabel: "seconds since the start", yLabel: "ms (log)", logY: true,
			lines: []line{
				{name: "p50", color: colBlue, xs: rts, ys: rate(func(s Second) float64 { return s.HoldP50Ms })},
				{name: "p99", color: colRed, xs: rts, ys: rate(func(s Second) float64 { return s.HoldP99Ms })},
			},
		}.svg()),
		template.HTML(latencyChart(res)),
		template.HTML(chart{
			title: "CPU", xLabel: "seconds since the start", yLabel: "cores",
			lines: []line{
				{name: "servers", color: colBlue, xs: rts, ys: rate(func(s Second) float64 { return s.ServerCores })},
				{name: "bench", color: colOrange, xs: rts, ys: rate(func(s Second) float64 { return s.BenchCores })},
				{name: "machine cores", color: colGrey, dash: true, xs: []float64{0, maxOf(ts)},
					ys: []float64{float64(res.CPU.MachineCores), float64(res.CPU.MachineCores)}},
			},
			yMaxAtLeast: float64(res.CPU.MachineCores),
		}.svg()),
		template.HTML(chart{
			title: "Free seats on the shared seat map", xLabel: "seconds since the start", yLabel: "free seats",
			lines: []line{{name: "free on the latest map", color: colGreen, xs: ts, ys: pick(func(s Second) float64 { return float64(s.FreeOnMap) })}},
		}.svg()),
	)

	for _, name := range opNames {
		l := res.Latency[name]
		v.Latency = append(v.Latency, row{name, thousands(l.Count), ms(l.MeanMs), ms(l.P50Ms), ms(l.P90Ms), ms(l.P99Ms), ms(l.P999Ms), ms(l.MaxMs)})
	}
	for _, c := range sortedCodes(res.ErrorsByCode) {
		v.Errors = append(v.Errors, row{c, thousands(res.ErrorsByCode[c])})
	}
	for _, s := range res.CPU.Servers {
		v.CPU = append(v.CPU, row{s.Name, fmt.Sprint(s.PID), fmt.Sprintf("%.1f", s.S), fmt.Sprintf("%.2f", s.Cores)})
	}
	v.CPU = append(v.CPU,
		row{"all servers", "", fmt.Sprintf("%.1f", res.CPU.ServerS), fmt.Sprintf("%.2f", res.CPU.ServerCores)},
		row{"bench (load generator)", "", fmt.Sprintf("%.1f", res.CPU.BenchS), fmt.Sprintf("%.2f", res.CPU.BenchCores)},
		row{"machine busy", "", "", fmt.Sprintf("%.0f %% of %d cores", 100*res.CPU.MachineBusy, res.CPU.MachineCores)},
		row{"load average", "", "", fmt.Sprintf("%.2f %.2f %.2f → %.2f %.2f %.2f", res.LoadStart[0], res.LoadStart[1], res.LoadStart[2], res.LoadEnd[0], res.LoadEnd[1], res.LoadEnd[2])},
	)
	leaders := "no shard changed leader during the load"
	switch {
	case !res.LeadersKnown:
		leaders = "not reported by " + systemName(res)
	case len(res.LeaderChanges) > 0:
		leaders = "CHANGED: " + strings.Join(res.LeaderChanges, "; ")
	}
	v.Check = []row{
		{"seat map (strong)", fmt.Sprintf("%s sold · %s held · %s free, at index %d", thousands(int64(k.SeatsSold)), thousands(int64(k.SeatsHeld)), thousands(int64(k.SeatsFree)), k.Index)},
		{"acknowledged orders", fmt.Sprintf("%s orders, %s seats; %s read back (strong)", thousands(int64(k.AckedOrders)), thousands(int64(k.AckedSeats)), thousands(int64(k.OrdersRead)))},
		{"holds in the history check", thousands(int64(k.HoldsChecked))},
		{"writes resolved by replay / unknown", fmt.Sprintf("%d / %d", res.ResolvedWrites, len(res.UnknownWrites))},
		{"strong reads took", fmt.Sprintf("%.1f s", k.ReadSeconds)},
	}
	v.Config = []row{
		{"workload", res.Workload},
		{"seats / hot set", fmt.Sprintf("%s / %s (%.0f %% of picks)", thousands(int64(res.Seats)), thousands(int64(res.HotSeats)), 100*res.HotShare)},
		{"users / ramp", fmt.Sprintf("%d / %.1f s", res.Users, res.RampS)},
		{"buy probability", fmt.Sprintf("%.2f", res.BuyProbability)},
		{"maxSeatsPerBuyer / hold TTL", fmt.Sprintf("%d / %.0f s (%s buyer identities used)", res.MaxSeatsPerBuyer, res.HoldTTLS, thousands(res.Identities))},
		{"seat map refresh", fmt.Sprintf("aiming at %.1f s old at most (%d fetches, %d failed; at most %.2f s old when replaced)", res.SeatMapMaxAgeS, res.SeatMapFetches, res.SeatMapFailures, res.SeatMapAgeMaxS)},
		{"time limit / seed", fmt.Sprintf("%.0f s / %d", res.DurationLimitS, res.Seed)},
		{"targets", strings.Join(res.Targets, ", ")},
	}
	switch res.Workload {
	case WorkloadBestAvailable:
		v.Config = append(v.Config, row{"holds", "by category and quantity (1–4, adjacent for half): the server picks the seats"})
	case WorkloadMulti:
		v.Config = append(v.Config, row{"events", fmt.Sprintf("%d at once, users spread over them", len(res.Events))})
	}
	for _, e := range res.Events {
		state := "not sold out"
		if e.SoldOut {
			state = fmt.Sprintf("sold out in %.2f s", e.SellOutS)
		}
		check := "check OK"
		if !e.CheckOK {
			check = fmt.Sprintf("check FAILED (%d violations)", e.Violations)
		}
		v.Config = append(v.Config, row{e.ID, fmt.Sprintf("%s / %s seats sold, %s, %s", thousands(e.Sold), thousands(int64(e.Seats)), state, check)})
	}
	for _, n := range res.Notes {
		v.Config = append(v.Config, row{"servers", n})
	}
	v.Config = append(v.Config, row{"leadership", leaders})
	return v
}

func ms(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func maxOf(xs []float64) float64 {
	m := 1.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// latencyChart plots each operation's latency at the spectrum's
// percentiles, on a categorical x axis.
func latencyChart(res *Result) string {
	c := chart{title: "Latency by percentile", xLabel: "percentile", yLabel: "ms (log)", logY: true}
	for i, p := range spectrumPercentiles {
		label := "p" + trimZeros(fmt.Sprintf("%g", p))
		if p == 100 {
			label = "max"
		}
		if p == 0 {
			label = "min"
		}
		c.xTicks = append(c.xTicks, tick{float64(i), label})
	}
	for _, name := range opNames {
		l := res.Latency[name]
		if l.Count == 0 {
			continue
		}
		ln := line{name: name, color: opColours[name]}
		for i, q := range l.Spectrum {
			ln.xs = append(ln.xs, float64(i))
			ln.ys = append(ln.ys, q.Ms)
		}
		c.lines = append(c.lines, ln)
	}
	return c.svg()
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:24px auto;max-width:1160px;padding:0 16px;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:28px 0 8px}
.sub{color:#666;margin-bottom:16px}
.verdict{padding:12px 16px;border-radius:6px;font-weight:600;margin:12px 0 18px}
.ok{background:#e5f5ec;border:1px solid #7cc39a;color:#14532d}
.bad{background:#fde8e8;border:2px solid #d55e00;color:#7f1d1d;font-size:18px}
.warn{background:#fff7e0;border:1px solid #e6b800;color:#614700;padding:8px 12px;border-radius:6px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.card .l{color:#666;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:650;margin-top:2px}
.card .n{color:#777;font-size:12px}
.card.b .v{color:#c2410c}
.charts{display:grid;grid-template-columns:repeat(2,1fr);gap:10px}
.charts svg{width:100%;height:auto;border:1px solid #ddd;border-radius:6px;background:#fff}
table{border-collapse:collapse;background:#fff;border:1px solid #ddd}
td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}
th{background:#f3f3f3;font-weight:600}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
ul{margin:6px 0}
code{font-size:12px}
</style></head><body>
<h1>{{.Title}}</h1>
<div class="sub">{{.Subtitle}}</div>
<div class="verdict {{if .OK}}ok{{else}}bad{{end}}">{{.Verdict}}</div>
{{if .Violations}}<ul>{{range .Violations}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{if not .Conclusive}}<div class="warn">Some seats could not be attributed (writes with an unknown outcome):<ul>{{range .Unresolved}}<li><code>{{.}}</code></li>{{end}}</ul></div>{{end}}
<div class="cards">{{range .Cards}}<div class="card{{if .Bad}} b{{end}}"><div class="l">{{.Label}}</div><div class="v">{{.Value}}</div><div class="n">{{.Note}}</div></div>{{end}}</div>
<h2>Plots</h2>
<div class="charts">{{range .Charts}}{{.}}{{end}}</div>
<div class="two">
<div>
<h2>Latency per operation (ms, HDR histograms, every call)</h2>
<table><tr><th>op</th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{range .Latency}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>
<h2>Errors by code</h2>
{{if .Errors}}<table><tr><th>code</th><th>count</th></tr>{{range .Errors}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>{{else}}<p>none</p>{{end}}
<h2>Invariant check</h2>
<table>{{range .Check}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>
</div>
<div>
<h2>CPU during the load</h2>
<table><tr><th>process</th><th>pid</th><th>CPU s</th><th>cores</th></tr>
{{range .CPU}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>
<h2>Run</h2>
<table>{{range .Config}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>
</div>
</div>
<p class="sub">Users are closed-loop: each sends its next request when the previous one answered, so latencies are those of a saturated cluster. Conflicts (409 seat_unavailable) are retried with another pick and are not errors. Generated by <code>boxoffice bench</code>.</p>
</body></html>
`))
