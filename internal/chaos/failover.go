package chaos

import (
	"math"
	"slices"
	"time"
)

// FailoverResult is one leader fault's failover, as the acks show it.
type FailoverResult struct {
	// OK is false, with Note saying why, when it could not be measured.
	OK   bool
	Note string
	// Old and New are the leaders; OldLast is the last write the old one
	// acknowledged, NewFirst the first the new one did; Time is between.
	Old, New          string
	OldLast, NewFirst time.Time
	Time              time.Duration
}

// Failover measures one leader fault from the acknowledged writes of its
// shard (runs, in the order they were acknowledged): the time from the last
// write the old leader acknowledged to the first a new leader did.
//
// The old leader is the one that acknowledged the newest write at or before
// start (the acks, not the fault's idea of the leader, define it); the new
// one is the first other leader to acknowledge a write after start and
// before until (the next fault, or the end of the load). It is not measured
// when no write was acknowledged before the fault or no other leader
// acknowledged one in time.
func Failover(runs []AckRun, start, until time.Time) FailoverResult {
	i := -1 // the run holding the newest ack at or before start
	for j, r := range runs {
		if !r.First.After(start) {
			i = j
		}
	}
	if i < 0 {
		return FailoverResult{Note: "no write was acknowledged before the fault"}
	}
	res := FailoverResult{Old: runs[i].Leader, OldLast: runs[i].Last}
	for _, r := range runs[i+1:] {
		if r.Leader == res.Old {
			// The old leader still acknowledging (answers in flight
			// when the fault began, or it kept the lead).
			if r.First.Before(until) {
				res.OldLast = maxTime(res.OldLast, r.Last)
			}
			continue
		}
		if !r.First.Before(until) {
			break
		}
		res.OK, res.New, res.NewFirst = true, r.Leader, r.First
		res.Time = max(r.First.Sub(res.OldLast), 0)
		return res
	}
	if res.OldLast.After(start) {
		res.Note = "the old leader kept acknowledging writes; no other leader did before the next fault"
	} else {
		res.Note = "no other leader acknowledged a write before the next fault"
	}
	return res
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method: the smallest value with at least p % of the values at
// or below it. With few samples the 99th is the largest. 0 for none.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}
