package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the whole result, indented.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteSummary writes the one-screen summary of a run.
func WriteSummary(w io.Writer, res *Result) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("boxoffice bench: %s, %s seats, %d users, %d node(s), seed %d, event %s",
		res.Workload, thousands(int64(res.Seats)), res.Users, len(res.Targets), res.Seed, res.Event)
	p("  system          %s", systemName(res))
	for _, n := range res.Notes {
		p("  servers         %s", n)
	}
	switch res.Workload {
	case WorkloadBestAvailable:
		p("  holds           by category and quantity (best available; the server picks the seats)")
	case WorkloadMulti:
		p("  events          %d at once, users spread over them", len(res.Events))
	}
	p("  stopped         %s after %.2f s", res.StopReason, res.LoadS)
	if res.SoldOut {
		p("  sell-out        %.2f s", res.SellOutS)
	} else {
		p("  sell-out        NOT sold out (%s of %s seats)", thousands(res.Sold), thousands(int64(res.Seats)))
	}
	if res.HotSoldOut {
		p("  hot set         %s seats (first %.0f %% in layout order, %.0f %% of picks): sold out in %.2f s",
			thousands(int64(res.HotSeats)), 100*float64(res.HotSeats)/float64(res.Seats), 100*res.HotShare, res.HotSellOutS)
	} else {
		p("  hot set         %s seats: %s sold, not sold out", thousands(int64(res.HotSeats)), thousands(res.HotSold))
	}
	for _, e := range res.Events {
		state := "NOT sold out"
		if e.SoldOut {
			state = fmt.Sprintf("sold out in %.2f s", e.SellOutS)
		}
		check := "check OK"
		if !e.CheckOK {
			check = fmt.Sprintf("check FAILED (%d violations)", e.Violations)
		}
		p("    %-13s %s/%s seats sold, %s, %s", e.ID, thousands(e.Sold), thousands(int64(e.Seats)), state, check)
	}
	p("  sold            %s seats, %s seats/s", thousands(res.Sold), thousands(int64(res.SoldPerS)))
	p("  ok ops          %s/s  (holds %s, purchases %s, releases %s)", thousands(int64(res.OkOpsPerS)),
		thousands(res.HoldsOK), thousands(res.PurchasesOK), thousands(res.ReleasesOK))
	p("  attempts        %s/s  (holds %s, purchases %s, releases %s)", thousands(int64(res.AttemptsPerS)),
		thousands(res.HoldAttempts), thousands(res.PurchaseAttempts), thousands(res.ReleaseAttempts))
	p("  conflicts       %s = %.1f %% of hold attempts; %.2f retries per successful hold", thousands(res.Conflicts),
		100*res.ConflictRate, res.RetriesPerSuccess)
	if res.Errors == 0 {
		p("  errors          none")
	} else {
		var parts []string
		for _, c := range sortedCodes(res.ErrorsByCode) {
			parts = append(parts, fmt.Sprintf("%s %s", c, thousands(res.ErrorsByCode[c])))
		}
		p("  errors          %s: %s", thousands(res.Errors), strings.Join(parts, ", "))
	}
	p("  identities      %s buyers (≤ %d seats each)", thousands(res.Identities), res.MaxSeatsPerBuyer)
	p("  seat map        fetched %d times (%d failed), aiming at %.1f s old at most; at most %.2f s old when replaced",
		res.SeatMapFetches, res.SeatMapFailures, res.SeatMapMaxAgeS, res.SeatMapAgeMaxS)
	p("  latency (ms)    %9s %8s %8s %8s %8s %8s   (every call, conflicts included)", "count", "p50", "p90", "p99", "p99.9", "max")
	for _, name := range opNames {
		l := res.Latency[name]
		p("    %-13s %9s %8.2f %8.2f %8.2f %8.2f %8.2f", name, thousands(l.Count), l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs)
	}
	c := res.CPU
	if len(c.Servers) > 0 {
		var parts []string
		for _, s := range c.Servers {
			parts = append(parts, fmt.Sprintf("%s %.2f", s.Name, s.Cores))
		}
		p("  cpu             servers %.2f cores (%s), bench %.2f cores, machine %.0f %% busy of %d cores",
			c.ServerCores, strings.Join(parts, ", "), c.BenchCores, 100*c.MachineBusy, c.MachineCores)
	} else {
		p("  cpu             servers not measured (remote), bench %.2f cores, machine %.0f %% busy of %d cores",
			c.BenchCores, 100*c.MachineBusy, c.MachineCores)
	}
	switch {
	case !res.LeadersKnown:
		p("  leadership      not reported by %s", systemName(res))
	case len(res.LeaderChanges) == 0:
		p("  leadership      no shard changed leader during the load")
	default:
		p("  leadership      CHANGED during the load: %s", strings.Join(res.LeaderChanges, "; "))
	}
	p("  load average    %.2f %.2f %.2f at start, %.2f %.2f %.2f at end",
		res.LoadStart[0], res.LoadStart[1], res.LoadStart[2], res.LoadEnd[0], res.LoadEnd[1], res.LoadEnd[2])
	k := res.Check
	if k.OK {
		p("  invariant       OK: %s sold seats = %s seats of %s acknowledged orders (%s read back paid), %d held, %d free;",
			thousands(int64(k.SeatsSold)), thousands(int64(k.AckedSeats)), thousands(int64(k.AckedOrders)), thousands(int64(k.OrdersRead)), k.SeatsHeld, k.SeatsFree)
		p("                  no seat sold or held twice across %s holds (strong reads at index %d, %.1f s)",
			thousands(int64(k.HoldsChecked)), k.Index, k.ReadSeconds)
	} else {
		p("  invariant       *** FAILED: %d violation(s) ***", k.ViolationCount)
		for i, v := range k.Violations {
			if i == 10 {
				p("                  … %d more (see --json)", k.ViolationCount-10)
				break
			}
			p("                  %s", v)
		}
	}
	if !k.Conclusive {
		p("  unresolved      %d seat(s) could not be attributed (writes with unknown outcome: %d); first: %s",
			len(k.Unresolved), len(res.UnknownWrites), k.Unresolved[0])
	}
}

// systemName is the result's system; results written before systems were
// named are boxoffice's.
func systemName(res *Result) string {
	if res.System == "" {
		return SystemBoxoffice
	}
	return res.System
}
