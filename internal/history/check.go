package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"boxoffice/client"
)

// Options tune Check.
type Options struct {
	// Dir receives the artifacts of a failed check: history.json (the
	// history), verdict.txt and linearizability.html (porcupine's
	// visualisation). It is created only if the check fails; empty writes
	// nothing.
	Dir string
	// Timeout bounds the linearizability search; 0 means 2 minutes. A
	// search that times out is a failed check (nothing was proved).
	Timeout time.Duration
}

// Verdict is the judgement of a history.
type Verdict struct {
	// Linearizable is porcupine's answer: Ok, Illegal, or Unknown (the
	// search timed out).
	Linearizable porcupine.CheckResult
	// Violations lists every broken invariant and, if the history is not
	// linearizable, a line that says so.
	Violations []string
	// Ops is the number of operations; Unknown writes had no definite
	// outcome (reads without an answer are simply dropped), Resolved were
	// learnt by Resolve; Partitions is the number of independent seat
	// groups checked.
	Ops, Unknown, Resolved, Partitions int
	// Artifacts are the files written for a failed check.
	Artifacts []string
}

// OK reports whether the history passed every check.
func (v Verdict) OK() bool { return v.Linearizable == porcupine.Ok && len(v.Violations) == 0 }

// String summarises the verdict on one line (and lists the violations).
func (v Verdict) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "linearizable: %s; %d ops (%d unknown, %d resolved) in %d partitions; %d violations",
		v.Linearizable, v.Ops, v.Unknown, v.Resolved, v.Partitions, len(v.Violations))
	for _, s := range v.Violations {
		b.WriteString("\n  - " + s)
	}
	if len(v.Artifacts) > 0 {
		b.WriteString("\n  artifacts: " + strings.Join(v.Artifacts, ", "))
	}
	return b.String()
}

// Check judges a history: linearizability of seat ownership, then the
// invariants of its final state (if it has one). A failed check writes its
// artifacts to opts.Dir; the error is only about writing them.
func Check(h History, opts Options) (Verdict, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	v := Verdict{Ops: len(h.Ops)}
	for _, op := range h.Ops {
		if op.Outcome == Unknown && op.IsWrite() {
			v.Unknown++
		}
		if op.Kind == KindHoldArea && op.Outcome == Unknown {
			// Which places it took, if any, is unknown: the history cannot
			// be checked. Resolve learns it with the op's key.
			v.Violations = append(v.Violations, fmt.Sprintf("%s: an area hold of unknown outcome; resolve it before checking", op.String()))
		}
		if op.Resolved {
			v.Resolved++
		}
	}
	ops := Operations(h.Ops)
	model := Model()
	v.Partitions = len(model.Partition(ops))
	v.Linearizable = porcupine.CheckOperationsTimeout(model, ops, opts.Timeout)
	switch v.Linearizable {
	case porcupine.Illegal:
		v.Violations = append(v.Violations, "the history is not linearizable against the seat-ownership model (see linearizability.html)")
	case porcupine.Unknown:
		v.Violations = append(v.Violations, fmt.Sprintf("the linearizability search did not finish within %v", opts.Timeout))
	}
	if h.Final != nil {
		v.Violations = append(v.Violations, Invariants(h)...)
	}
	if v.OK() || opts.Dir == "" {
		return v, nil
	}
	err := writeArtifacts(opts, h, model, ops, &v)
	return v, err
}

func writeArtifacts(opts Options, h History, model porcupine.Model, ops []porcupine.Operation, v *Verdict) error {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	var errs []error
	write := func(name string, fill func(*os.File) error) {
		path := filepath.Join(opts.Dir, name)
		f, err := os.Create(path)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if err := fill(f); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", path, err))
		}
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
		v.Artifacts = append(v.Artifacts, path)
	}
	write("history.json", func(f *os.File) error {
		b, err := h.Marshal()
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return err
	})
	_, info := porcupine.CheckOperationsVerbose(model, ops, opts.Timeout)
	write("linearizability.html", func(f *os.File) error { return porcupine.Visualize(model, info, f) })
	write("verdict.txt", func(f *os.File) error {
		_, err := f.WriteString(v.String() + "\n")
		return err
	})
	return errors.Join(errs...)
}

// ArtifactDir is where a test's failed check should write: under
// $BOXOFFICE_ARTIFACTS if set, else under the system's temp dir (not the
// test's t.TempDir, which is deleted when the test ends), in a directory
// named after the test and name. The directory is not created here.
func ArtifactDir(testName, name string) string {
	safe := regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	leaf := safe.ReplaceAllString(testName, "_")
	if name != "" {
		leaf += "-" + safe.ReplaceAllString(name, "_")
	}
	if root := os.Getenv("BOXOFFICE_ARTIFACTS"); root != "" {
		return filepath.Join(root, leaf)
	}
	return filepath.Join(os.TempDir(), "boxoffice-artifacts", fmt.Sprintf("%s-%d", leaf, time.Now().UnixNano()))
}

// ownsSeats reports whether a hold in this state still owns its seats.
func ownsSeats(state string) bool {
	return state == client.HoldActive || state == client.HoldCheckingOut
}

// holdStory is what the acknowledged operations say became of a hold.
type holdStory struct {
	made    Op
	seats   []string // the seats it still has, while active
	state   string   // active, released or purchased
	order   string   // the order of an acknowledged purchase
	certain bool     // false once an operation on it had an unknown outcome
}

// stories follows every hold made with a definite (or resolved) answer
// through the later acknowledged operations on it, in call order.
func stories(ops []Op) map[string]*holdStory {
	out := make(map[string]*holdStory)
	byCall := slices.Clone(ops)
	sort.SliceStable(byCall, func(i, j int) bool { return byCall[i].Call < byCall[j].Call })
	for _, op := range byCall {
		if (op.Kind == KindHold || op.Kind == KindHoldArea) && op.Outcome == OK {
			out[op.Hold] = &holdStory{made: op, seats: op.HoldSeats, state: client.HoldActive, certain: true}
		}
	}
	for _, op := range byCall {
		s := out[op.Hold]
		if s == nil || !s.certain || (op.Kind != KindRelease && op.Kind != KindPurchase) {
			continue
		}
		switch {
		case op.Outcome == Unknown:
			s.certain = false
		case op.Outcome == Fail:
		case op.Kind == KindRelease:
			s.seats = op.HoldSeats
			if len(op.HoldSeats) == 0 {
				s.state = client.HoldReleased
			}
		case op.Kind == KindPurchase:
			s.state, s.order = client.HoldPurchased, op.Order
		}
	}
	return out
}

// Invariants checks the final state against itself and against what the
// history acknowledged:
//
//   - no double sale: no seat is in two paid orders or two holds that still
//     own their seats, and every seat of a paid order reads sold;
//   - no seat lost: every seat exists (Capacity), every sold seat is in a
//     paid order, every held seat in a hold that owns it (or in a hold
//     whose creation had an unknown outcome);
//   - every acknowledged write present: a hold made and not since released
//     or purchased (by acknowledged calls) is still active with its seats;
//     an acknowledged release freed its seats; an acknowledged purchase's
//     order is paid with the hold's seats, which read sold.
func Invariants(h History) []string {
	f := h.Final
	if f == nil {
		return []string{"no final state was collected"}
	}
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	if f.Capacity > 0 && len(f.Seats) != f.Capacity {
		add("the final seat map has %d seats, the event %d", len(f.Seats), f.Capacity)
	}
	for seat, st := range f.Seats {
		if st != client.SeatFree && st != client.SeatHeld && st != client.SeatSold {
			add("seat %s is in state %q", seat, st)
		}
	}

	// Paid orders: disjoint, and their seats sold.
	soldTo := make(map[string]string)
	for _, id := range sortedKeys(f.Orders) {
		o := f.Orders[id]
		if o.State != client.OrderPaid {
			continue
		}
		for _, seat := range o.Seats {
			if other, dup := soldTo[seat]; dup {
				add("double sale: seat %s is in paid orders %s and %s", seat, other, o.ID)
			}
			soldTo[seat] = o.ID
			if f.Seats[seat] != client.SeatSold {
				add("seat %s of paid order %s reads %q, not sold", seat, o.ID, f.Seats[seat])
			}
		}
	}
	// Holds that own their seats: disjoint, and their seats held.
	heldBy := make(map[string]string)
	for _, id := range sortedKeys(f.Holds) {
		hv := f.Holds[id]
		if !ownsSeats(hv.State) {
			continue
		}
		for _, seat := range hv.Seats {
			if other, dup := heldBy[seat]; dup {
				add("seat %s is held by holds %s and %s", seat, other, hv.ID)
			}
			heldBy[seat] = hv.ID
			if f.Seats[seat] != client.SeatHeld {
				add("seat %s of %s hold %s reads %q, not held", seat, hv.State, hv.ID, f.Seats[seat])
			}
		}
	}
	// Every taken seat is accounted for.
	ghosts := make(map[string]bool) // seats a hold of unknown id may hold
	for _, op := range h.Ops {
		if op.Kind == KindHold && op.Outcome == Unknown {
			for _, s := range op.Seats {
				ghosts[s] = true
			}
		}
	}
	for _, seat := range sortedKeys(f.Seats) {
		switch f.Seats[seat] {
		case client.SeatSold:
			if _, ok := soldTo[seat]; !ok {
				add("seat %s reads sold but is in no paid order of the history", seat)
			}
		case client.SeatHeld:
			if _, ok := heldBy[seat]; !ok && !ghosts[seat] {
				add("seat %s reads held but no hold of the history owns it", seat)
			}
		}
	}

	// What the history acknowledged is there.
	st := stories(h.Ops)
	for _, id := range sortedKeys(st) {
		s := st[id]
		if !s.certain {
			continue
		}
		hv, ok := f.Holds[id]
		if !ok {
			add("hold %s (%s) was acknowledged but the final reads did not find it", id, s.made.String())
			continue
		}
		switch s.state {
		case client.HoldActive:
			if !ownsSeats(hv.State) || !sameSet(hv.Seats, s.seats) {
				add("hold %s should be active with %v (acknowledged), final read: %s %v", id, s.seats, hv.State, hv.Seats)
			}
		case client.HoldReleased:
			if hv.State != client.HoldReleased {
				add("hold %s was released (acknowledged), final read: %s %v", id, hv.State, hv.Seats)
			}
		case client.HoldPurchased:
			if hv.State != client.HoldPurchased {
				add("hold %s was purchased (acknowledged), final read: %s", id, hv.State)
			}
		}
	}
	for _, op := range h.Ops {
		if op.Kind != KindPurchase || op.Outcome != OK {
			continue
		}
		o, ok := f.Orders[op.Order]
		switch {
		case !ok:
			add("order %s of acknowledged purchase %s was not found", op.Order, op.String())
		case o.State != client.OrderPaid || o.Hold != op.Hold || !sameSet(o.Seats, op.HoldSeats):
			add("order %s of acknowledged purchase of %s %v reads %s of %s %v", op.Order, op.Hold, op.HoldSeats, o.State, o.Hold, o.Seats)
		}
	}
	return bad
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
