package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Comparison is the same workload run against several systems one after
// another: their results, and a table of the headline figures with the
// ratio of the first system (boxoffice) to each other one.
type Comparison struct {
	// Base is the system the ratios are of (base/peer).
	Base    string          `json:"base"`
	Systems []*Result       `json:"systems"`
	Table   []ComparisonRow `json:"table"`
}

// ComparisonRow is one figure of every system, in Systems' order, and
// Base's figure divided by each other system's (by name; absent when the
// division means nothing: a zero, or a figure missing).
type ComparisonRow struct {
	Metric string             `json:"metric"`
	Unit   string             `json:"unit"`
	Values []float64          `json:"values"`
	Ratios map[string]float64 `json:"ratios"`
	// Higher is true when a higher figure is better (throughput), false
	// when lower is (latency, time, CPU).
	Higher bool `json:"higherIsBetter"`
}

// Compare tabulates results; the first is the base of the ratios.
func Compare(results []*Result) *Comparison {
	c := &Comparison{Systems: results}
	if len(results) == 0 {
		return c
	}
	c.Base = systemName(results[0])
	row := func(metric, unit string, higher bool, f func(*Result) float64) {
		r := ComparisonRow{Metric: metric, Unit: unit, Higher: higher, Ratios: map[string]float64{}}
		for _, res := range results {
			r.Values = append(r.Values, f(res))
		}
		for i, res := range results[1:] {
			if base, v := r.Values[0], r.Values[i+1]; base > 0 && v > 0 {
				r.Ratios[systemName(res)] = base / v
			}
		}
		c.Table = append(c.Table, r)
	}
	// A run that did not sell out has no sell-out time: 0, no ratio.
	row("sold seats/s", "seats/s", true, func(r *Result) float64 { return r.SoldPerS })
	row("time to sell out", "s", false, func(r *Result) float64 { return r.SellOutS })
	row("ok ops/s", "ops/s", true, func(r *Result) float64 { return r.OkOpsPerS })
	row("hold p50", "ms", false, func(r *Result) float64 { return r.Latency[opNames[opHold]].P50Ms })
	row("hold p99", "ms", false, func(r *Result) float64 { return r.Latency[opNames[opHold]].P99Ms })
	row("purchase p50", "ms", false, func(r *Result) float64 { return r.Latency[opNames[opPurchase]].P50Ms })
	row("purchase p99", "ms", false, func(r *Result) float64 { return r.Latency[opNames[opPurchase]].P99Ms })
	row("server CPU", "cores", false, func(r *Result) float64 { return r.CPU.ServerCores })
	row("server CPU per sold seat", "ms", false, func(r *Result) float64 {
		if r.Sold == 0 {
			return 0
		}
		return 1000 * r.CPU.ServerS / float64(r.Sold)
	})
	row("bench CPU", "cores", false, func(r *Result) float64 { return r.CPU.BenchCores })
	return c
}

// WriteComparison writes the comparison table: a column per system, then
// a column per peer with base/peer. For throughput a ratio above 1 means
// the base is faster; for latency, time and CPU, below 1 does.
func WriteComparison(w io.Writer, c *Comparison) {
	if len(c.Systems) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	first := c.Systems[0]
	p("comparison: %s, %s seats, %d users, seed %d, the same workload against each system in turn",
		first.Workload, thousands(int64(first.Seats)), first.Users, first.Seed)
	var head strings.Builder
	fmt.Fprintf(&head, "  %-26s", "")
	for _, r := range c.Systems {
		fmt.Fprintf(&head, " %12s", systemName(r))
	}
	for _, r := range c.Systems[1:] {
		fmt.Fprintf(&head, " %16s", c.Base+"/"+systemName(r))
	}
	p("%s", head.String())
	for _, row := range c.Table {
		var b strings.Builder
		fmt.Fprintf(&b, "  %-26s", row.Metric+" ("+row.Unit+")")
		for i, v := range row.Values {
			switch {
			case row.Metric == "time to sell out" && !c.Systems[i].SoldOut:
				fmt.Fprintf(&b, " %12s", "not sold out")
			case v >= 1000:
				fmt.Fprintf(&b, " %12s", thousands(int64(v+0.5)))
			default:
				fmt.Fprintf(&b, " %12.2f", v)
			}
		}
		for _, r := range c.Systems[1:] {
			if x, ok := row.Ratios[systemName(r)]; ok {
				fmt.Fprintf(&b, " %15.2f×", x)
			} else {
				fmt.Fprintf(&b, " %16s", "–")
			}
		}
		p("%s", b.String())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %-26s", "invariant check")
	for _, r := range c.Systems {
		v := "OK"
		if !r.Check.OK {
			v = fmt.Sprintf("FAILED (%d)", r.Check.ViolationCount)
		}
		fmt.Fprintf(&b, " %12s", v)
	}
	p("%s", b.String())
	b.Reset()
	fmt.Fprintf(&b, "  %-26s", "load average (1 min)")
	for _, r := range c.Systems {
		fmt.Fprintf(&b, " %12s", fmt.Sprintf("%.1f→%.1f", r.LoadStart[0], r.LoadEnd[0]))
	}
	p("%s", b.String())
	for _, r := range c.Systems {
		for _, n := range r.Notes {
			p("  %-12s %s", systemName(r)+":", n)
		}
	}
	p("  ratios are %s/peer: above 1 is %s ahead in throughput rows, behind in latency, time and CPU rows.", c.Base, c.Base)
	p("  Figures from one shared machine: read them with the load average beside them.")
}

// WriteComparisonJSON writes the comparison, every system's whole result
// included.
func WriteComparisonJSON(w io.Writer, c *Comparison) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}
