package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"boxoffice/client"
)

// Report is the outcome of a run.
type Report struct {
	Config    ReportConfig `json:"config"`
	Started   time.Time    `json:"started"`
	LoadStart [3]float64   `json:"loadavgStart"`
	LoadEnd   [3]float64   `json:"loadavgEnd"`

	Faults []FaultRecord `json:"faults"`
	Rounds []Round       `json:"rounds"`

	Availability Availability `json:"availability"`
	// Failovers are the measured failover times of leader faults.
	FailoverP50S float64 `json:"failoverP50Seconds"`
	FailoverP99S float64 `json:"failoverP99Seconds"`
	FailoverMaxS float64 `json:"failoverMaxSeconds"`
	Failovers    int     `json:"failovers"`
	// LeaderFaults counts the faults that struck the leader under load.
	LeaderFaults int `json:"leaderFaults"`

	// DoubleSales and LostWrites add up the rounds' invariant checks;
	// Violations counts every violation they found (these two included).
	DoubleSales int `json:"doubleSales"`
	LostWrites  int `json:"lostWrites"`
	Violations  int `json:"violations"`
	// Sold and OrdersRead add up the rounds.
	Sold       int64 `json:"sold"`
	OrdersRead int   `json:"ordersRead"`

	Replicas        ReplicaCheck    `json:"replicas"`
	Linearizability Linearizability `json:"linearizability"`

	// Failures say why the run failed; empty when it passed.
	Failures []string `json:"failures"`
}

// ReportConfig is the part of the Config a report repeats.
type ReportConfig struct {
	Nodes           []string `json:"nodes"`
	Spare           string   `json:"spare"`
	DurationS       float64  `json:"durationSeconds"`
	Kinds           []string `json:"kinds"`
	FaultHoldS      float64  `json:"faultHoldSeconds"`
	Users           int      `json:"users"`
	Seats           int      `json:"seats"`
	Seed            uint64   `json:"seed"`
	MinAvailability float64  `json:"minAvailability"`
	MaxFailoverP99S float64  `json:"maxFailoverP99Seconds"`
}

func reportConfig(c Config) ReportConfig {
	return ReportConfig{Nodes: c.Nodes, Spare: c.Spare, DurationS: c.Duration.Seconds(), Kinds: c.Kinds,
		FaultHoldS: c.FaultHold.Seconds(), Users: c.Users, Seats: c.Seats, Seed: c.Seed,
		MinAvailability: c.MinAvailability, MaxFailoverP99S: c.MaxFailoverP99.Seconds()}
}

// finish computes the figures from the meter and the rounds, and decides.
func (r *Report) finish(m *Meter, cfg Config) {
	r.Availability = m.Availability()
	// Failover per leader fault, from the acks of its shard, up to the
	// next fault (or the end of the load).
	var ds []time.Duration
	end := time.Now()
	for i := range r.Faults {
		f := &r.Faults[i]
		if !f.LeaderHit {
			continue
		}
		r.LeaderFaults++
		until := end
		if i+1 < len(r.Faults) {
			until = r.Faults[i+1].Start
		}
		fo := Failover(m.Acks(f.Shard), f.Start, until)
		if !fo.OK {
			f.FailoverNote = fo.Note
			continue
		}
		if fo.Old != f.Leader {
			f.FailoverNote = fmt.Sprintf("the acks name %s the old leader, the members named %s", fo.Old, f.Leader)
		}
		f.FailoverS, f.NewLeader = fo.Time.Seconds(), fo.New
		f.OldLastAckS, f.NewFirstAckS = fo.OldLast.Sub(f.Start).Seconds(), fo.NewFirst.Sub(f.Start).Seconds()
		ds = append(ds, fo.Time)
	}
	r.Failovers = len(ds)
	r.FailoverP50S = Percentile(ds, 50).Seconds()
	r.FailoverP99S = Percentile(ds, 99).Seconds()
	r.FailoverMaxS = Percentile(ds, 100).Seconds()

	// Failed writes, by the fault whose time they began in.
	for _, t := range m.FailedStarts() {
		i := sort.Search(len(r.Faults), func(i int) bool { return r.Faults[i].Start.After(t) }) - 1
		if i >= 0 {
			r.Faults[i].FailedWrites++
		}
	}

	for _, rd := range r.Rounds {
		switch {
		case rd.Result == nil:
			if strings.Contains(rd.Err, "invariant check") {
				r.Failures = append(r.Failures, fmt.Sprintf("round %s: the invariant check could not be made: %s", rd.Event, rd.Err))
			}
			continue
		}
		k := rd.Result.Check
		r.DoubleSales += k.DoubleSales
		r.LostWrites += k.LostWrites
		r.Violations += k.ViolationCount
		r.Sold += rd.Result.Sold
		r.OrdersRead += k.OrdersRead
		if !k.OK {
			r.Failures = append(r.Failures, fmt.Sprintf("round %s: %d invariant violation(s), the first: %s", rd.Event, k.ViolationCount, first(k.Violations)))
		}
		if !k.Conclusive {
			r.Failures = append(r.Failures, fmt.Sprintf("round %s: the invariant check was not conclusive (%d writes of unknown outcome), the first: %s",
				rd.Event, len(rd.Result.UnknownWrites), first(k.Unresolved)))
		}
	}
	checked := 0
	for _, rd := range r.Rounds {
		if rd.Result != nil {
			checked++
		}
	}
	if checked == 0 {
		r.Failures = append(r.Failures, "no round of the on-sale completed: nothing was checked")
	}
	for _, f := range r.Faults {
		if f.Err != "" {
			r.Failures = append(r.Failures, fmt.Sprintf("fault %q: %s", f.Action, f.Err))
		}
	}
	if !r.Replicas.OK {
		r.Failures = append(r.Failures, "replicas: "+r.Replicas.Detail)
	}
	if !r.Linearizability.OK {
		r.Failures = append(r.Failures, "linearizability: "+strings.Join(r.Linearizability.Problems, "; "))
	}
	if r.Availability.Share < cfg.MinAvailability {
		r.Failures = append(r.Failures, fmt.Sprintf("availability %.3f%% is below the threshold %.3f%%", 100*r.Availability.Share, 100*cfg.MinAvailability))
	}
	if r.Availability.ProbeShare < cfg.MinAvailability {
		r.Failures = append(r.Failures, fmt.Sprintf("the probe's (open-loop) availability %.3f%% is below the threshold %.3f%%", 100*r.Availability.ProbeShare, 100*cfg.MinAvailability))
	}
	if cfg.MaxFailoverP99 > 0 && r.FailoverP99S > cfg.MaxFailoverP99.Seconds() {
		r.Failures = append(r.Failures, fmt.Sprintf("failover p99 %.2fs is above the threshold %.2fs", r.FailoverP99S, cfg.MaxFailoverP99.Seconds()))
	}
	if r.LeaderFaults > 0 && r.Failovers == 0 {
		r.Failures = append(r.Failures, "no failover could be measured")
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "(none kept)"
	}
	return s[0]
}

// Linearizability sums up the checks of the probe's histories (one per
// round), made with internal/history: porcupine against the seat-ownership
// model, then the invariants of the final state.
type Linearizability struct {
	OK        bool     `json:"ok"`
	Histories int      `json:"histories"`
	Ops       int      `json:"ops"`
	Unknown   int      `json:"unknown"`
	Resolved  int      `json:"resolved"`
	Problems  []string `json:"problems,omitempty"`
}

// ReplicaCheck says whether every member's own replica of each round's
// event shows the same seat map, once the load is over.
type ReplicaCheck struct {
	OK     bool   `json:"ok"`
	Events int    `json:"events"`
	Nodes  int    `json:"nodes"`
	Detail string `json:"detail"`
}

// replicaWait bounds the wait for every member to catch up.
const replicaWait = 60 * time.Second

// checkReplicas compares every member's own replica (a local read, not a
// strong one) of each round's event, after the load stopped: first it waits
// until every member has applied, on every shard, at least what the
// members had committed when the check began; then it reads each seat map.
// The maps need not be read at one index (leaders propose an expiry sweep
// every second), so they must agree except where a later read shows a
// hold expired since: held at the lower index, free at the higher. A sold
// seat never changes (the bench cancels nothing).
func checkReplicas(ctx context.Context, c *cluster, events []string) ReplicaCheck {
	members := c.joined()
	rc := ReplicaCheck{Events: len(events), Nodes: len(members)}
	target := map[int]uint64{}
	for _, id := range members {
		st, err := c.status(ctx, id)
		if err != nil {
			rc.Detail = err.Error()
			return rc
		}
		for _, s := range st.Shards {
			target[s.ID] = max(target[s.ID], s.CommitIndex)
		}
	}
	deadline := time.Now().Add(replicaWait)
	for {
		why := behind(ctx, c, members, target)
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			rc.Detail = "replicas did not catch up: " + why
			return rc
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, ev := range events {
		var first client.SeatMap
		for i, id := range members {
			m := c.node(id)
			c.mu.Lock()
			ip := m.ip
			c.mu.Unlock()
			var sm client.SeatMap
			if err := c.call(ctx, seatMapTimeout, http.MethodGet, ip, "/v1/events/"+ev+"/seats", &sm); err != nil {
				rc.Detail = fmt.Sprintf("%s: seat map of %s: %v", id, ev, err)
				return rc
			}
			if i == 0 {
				first = sm
				continue
			}
			if diff := diffSeats(first, sm); diff != "" {
				rc.Detail = fmt.Sprintf("%s: %s's replica (index %d) differs from %s's (index %d): %s", ev, id, sm.Index, members[0], first.Index, diff)
				return rc
			}
		}
	}
	rc.OK = true
	rc.Detail = fmt.Sprintf("%d event(s) identical on %d node(s)", len(events), len(members))
	return rc
}

// behind says which member has not applied target yet ("" when none).
func behind(ctx context.Context, c *cluster, members []string, target map[int]uint64) string {
	for _, id := range members {
		st, err := c.status(ctx, id)
		if err != nil {
			return err.Error()
		}
		for _, s := range st.Shards {
			if s.AppliedIndex < target[s.ID] {
				return fmt.Sprintf("%s applied shard %d to %d, not yet %d", id, s.ID, s.AppliedIndex, target[s.ID])
			}
		}
	}
	return ""
}

// diffSeats compares two reads of one event's seat map: the same seats in
// the same states, but for holds that expired between the earlier read and
// the later one.
func diffSeats(a, b client.SeatMap) string {
	if len(a.Seats) != len(b.Seats) {
		return fmt.Sprintf("%d seats against %d", len(a.Seats), len(b.Seats))
	}
	early, late := a, b
	if b.Index < a.Index {
		early, late = b, a
	}
	lateState := make(map[string]string, len(late.Seats))
	for _, s := range late.Seats {
		lateState[s.ID] = s.State
	}
	for _, s := range early.Seats {
		was, now := s.State, lateState[s.ID]
		if was == now || (was == client.SeatHeld && now == client.SeatFree && early.Index < late.Index) {
			continue
		}
		return fmt.Sprintf("seat %s is %s at index %d and %s at index %d", s.ID, was, early.Index, now, late.Index)
	}
	return ""
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// Print writes the figures for a terminal.
func (r *Report) Print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	kinds := map[string]int{}
	for _, f := range r.Faults {
		kinds[f.Kind]++
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(ks)
	a := r.Availability
	p("")
	p("chaos: %d nodes %v + spare %q, %s of load, %d users, seed %d", len(r.Config.Nodes), r.Config.Nodes, r.Config.Spare,
		time.Duration(r.Config.DurationS*float64(time.Second)), r.Config.Users, r.Config.Seed)
	p("  faults          %d: %s", len(r.Faults), strings.Join(ks, ", "))
	p("  availability    %.3f %% of %s writes answered within %v (%s late, %s never answered)",
		100*a.Share, thousands(a.Writes), AvailabilityBound, thousands(a.Late), thousands(a.Failed))
	p("                  open-loop probe: %.3f %% of %s; reads: %.2f %% of %s tries",
		100*a.ProbeShare, thousands(a.ProbeWrites), 100*ratio(a.ReadsOK, a.Reads), thousands(a.Reads))
	p("  failover        p50 %.2f s, p99 %.2f s, max %.2f s over %d of %d leader faults", r.FailoverP50S, r.FailoverP99S, r.FailoverMaxS, r.Failovers, r.LeaderFaults)
	p("  double sales    %d", r.DoubleSales)
	p("  lost writes     %d (acknowledged purchases missing from the end state)", r.LostWrites)
	p("  invariant       %d violation(s) in %d round(s); %s seats sold, %s acknowledged orders read back", r.Violations, len(r.Rounds), thousands(r.Sold), thousands(int64(r.OrdersRead)))
	p("  replicas        %s", okText(r.Replicas.OK, r.Replicas.Detail))
	l := r.Linearizability
	p("  linearizable    %s", okText(l.OK, fmt.Sprintf("%d probe histories, %s ops (%d of unknown outcome, %d resolved); %s",
		l.Histories, thousands(int64(l.Ops)), l.Unknown, l.Resolved, strings.Join(l.Problems, "; "))))
	p("  load average    %.2f %.2f %.2f at start, %.2f %.2f %.2f at end (a shared machine: figures are noisy)",
		r.LoadStart[0], r.LoadStart[1], r.LoadStart[2], r.LoadEnd[0], r.LoadEnd[1], r.LoadEnd[2])
	p("  fault log:")
	for _, f := range r.Faults {
		line := fmt.Sprintf("    %s  %-34s shard %d leader %-5s", f.Start.Format("15:04:05"), f.Action, f.Shard, f.Leader)
		if !f.Settled.IsZero() {
			line += fmt.Sprintf(" healed +%.1fs settled +%.1fs", f.Healed.Sub(f.Start).Seconds(), f.Settled.Sub(f.Start).Seconds())
		}
		switch {
		case f.NewLeader != "":
			line += fmt.Sprintf("  failover %.2fs (→ %s; acks %+.2fs, %+.2fs)", f.FailoverS, f.NewLeader, f.OldLastAckS, f.NewFirstAckS)
		case f.FailoverNote != "":
			line += "  failover not measured: " + f.FailoverNote
		}
		line += fmt.Sprintf("  failed writes %d", f.FailedWrites)
		if f.Err != "" {
			line += "  ERROR: " + f.Err
		}
		p("%s", line)
	}
	for _, rd := range r.Rounds {
		if rd.Result == nil {
			p("  round %s: %s", rd.Event, rd.Err)
			continue
		}
		res := rd.Result
		p("  round %s: shard %d, %.0fs, %s sold, %.0f ok ops/s, %s errors, check ok=%v conclusive=%v",
			rd.Event, rd.Shard, res.LoadS, thousands(res.Sold), res.OkOpsPerS, thousands(res.Errors), res.Check.OK, res.Check.Conclusive)
	}
	if len(r.Failures) == 0 {
		p("  verdict         PASS")
		return
	}
	p("  verdict         FAIL")
	for _, f := range r.Failures {
		p("    - %s", f)
	}
}

func okText(ok bool, detail string) string {
	if ok {
		return "OK: " + detail
	}
	return "FAILED: " + detail
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// thousands formats n with thin separators: 12,345.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
