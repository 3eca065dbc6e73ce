package chaos

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"boxoffice/raftnode"
)

// AvailabilityBound is how soon a request must succeed to count as
// available (issue 7: "share of requests that succeed within 2 s").
const AvailabilityBound = 2 * time.Second

// failedStartsMax bounds the failed requests whose start times the meter
// keeps to attribute them to faults; the rest are counted only.
const failedStartsMax = 100_000

// Meter turns the exchanges of the load into the run's figures, as they
// come, keeping only what is still open:
//
//   - Availability counts logical writes: the exchanges that share an
//     Idempotency-Key are one request, however often the client retried it
//     or on whichever nodes. A request succeeds when it gets an answer that
//     is not a failure (any status below 500 but 408: a 409 seat_unavailable
//     is the system working) within AvailabilityBound of its first try.
//     Reads (seat maps) carry no key, so a read retried on another node
//     cannot be told from a new one: they are counted per try, apart.
//   - Failover needs, per shard, who acknowledged writes when: the 2xx
//     answers to writes, with the leader that committed them
//     (X-Boxoffice-Leader), kept as runs of consecutive acks by one leader.
type Meter struct {
	shards int

	mu       sync.Mutex
	pending  map[string]*pendingWrite
	writes   int64 // logical writes ended (answered or given up)
	writesOK int64 // answered, not a failure, within the bound
	lateOK   int64 // answered, not a failure, but after the bound
	failed   int64 // ended with a failure answer or none (finish)
	failedAt []time.Time
	// The probe's writes (probe.go), counted apart too: open-loop, so
	// free of the closed loop's bias.
	probeWrites, probeOK int64
	reads                int64
	readsOK              int64
	acks                 map[int][]AckRun
	tries                int64
	triesLost            int64 // tries with no answer (connection refused, broken)
}

type pendingWrite struct {
	first time.Time
	tries int
}

// AckRun is a stretch of acknowledged writes of one shard, all committed by
// one leader: the first and last ack time of the stretch.
type AckRun struct {
	Leader      string
	First, Last time.Time
	Count       int64
}

// NewMeter measures a cluster of shards shards.
func NewMeter(shards int) *Meter {
	return &Meter{shards: shards, pending: map[string]*pendingWrite{}, acks: map[int][]AckRun{}}
}

var _ Observer = (*Meter)(nil)

// answered reports whether status is an answer of a working system: success,
// or a refusal that is the answer (409 seat taken, 410 expired, 402
// declined). 5xx and 408 are failures; 0 is no answer.
func answered(status int) bool {
	return status > 0 && status < 500 && status != http.StatusRequestTimeout
}

// Observe takes one exchange.
func (m *Meter) Observe(ex Exchange) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries++
	if ex.Status == 0 {
		m.triesLost++
	}
	if ex.Method == http.MethodGet {
		m.reads++
		if answered(ex.Status) && ex.End.Sub(ex.Start) <= AvailabilityBound {
			m.readsOK++
		}
		return
	}
	if ex.Status >= 200 && ex.Status < 300 && ex.Node != "" {
		if shard, ok := shardOfWrite(ex.Path, m.shards); ok {
			m.ack(shard, ex.Node, ex.End)
		}
	}
	if ex.Key == "" {
		return // not the load's (every bench write has a key)
	}
	p := m.pending[ex.Key]
	if p == nil {
		p = &pendingWrite{first: ex.Start}
		m.pending[ex.Key] = p
	}
	p.tries++
	if ex.Start.Before(p.first) {
		p.first = ex.Start
	}
	if !answered(ex.Status) {
		return // the client tries again, or gives up: Finish counts it
	}
	delete(m.pending, ex.Key)
	m.writes++
	ok := ex.End.Sub(p.first) <= AvailabilityBound
	if strings.HasPrefix(ex.Key, probeKeyPrefix) {
		m.probeWrites++
		if ok {
			m.probeOK++
		}
	}
	if ok {
		m.writesOK++
		return
	}
	m.lateOK++
	m.fail(p.first)
}

// probeNotSent counts a probe that was due but not sent (too many in
// flight): a write that failed.
func (m *Meter) probeNotSent() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probeWrites++
	m.writes++
	m.failed++
	m.fail(time.Now())
}

func (m *Meter) fail(start time.Time) {
	if len(m.failedAt) < failedStartsMax {
		m.failedAt = append(m.failedAt, start)
	}
}

func (m *Meter) ack(shard int, leader string, at time.Time) {
	runs := m.acks[shard]
	if n := len(runs); n > 0 && runs[n-1].Leader == leader {
		r := &runs[n-1]
		r.Count++
		if at.After(r.Last) {
			r.Last = at
		}
		return
	}
	m.acks[shard] = append(runs, AckRun{Leader: leader, First: at, Last: at, Count: 1})
}

// Finish ends the writes still open: each failed (no answer that counts
// came). Call it once the load has stopped.
func (m *Meter) Finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, p := range m.pending {
		m.writes++
		m.failed++
		if strings.HasPrefix(k, probeKeyPrefix) {
			m.probeWrites++
		}
		m.fail(p.first)
		delete(m.pending, k)
	}
}

// Availability is the figures of the writes and reads measured so far.
type Availability struct {
	// Writes are the logical writes (holds, purchases, releases); OK those
	// answered within AvailabilityBound; Late those answered after it;
	// Failed those that never got an answer that counts.
	Writes, OK, Late, Failed int64
	// Share is OK / Writes (1 with no writes).
	Share float64
	// ProbeWrites are the probe's writes (among Writes), ProbeOK those
	// answered within the bound, ProbeShare their ratio: the open-loop
	// figure.
	ProbeWrites, ProbeOK int64
	ProbeShare           float64
	// Reads are read tries; ReadsOK those answered within the bound.
	Reads, ReadsOK int64
	// Tries are all HTTP tries; TriesLost those with no answer.
	Tries, TriesLost int64
}

// Availability returns the figures so far (call Finish first for the end).
func (m *Meter) Availability() Availability {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := Availability{Writes: m.writes, OK: m.writesOK, Late: m.lateOK, Failed: m.failed,
		Reads: m.reads, ReadsOK: m.readsOK, Tries: m.tries, TriesLost: m.triesLost, Share: 1,
		ProbeWrites: m.probeWrites, ProbeOK: m.probeOK, ProbeShare: 1}
	if a.Writes > 0 {
		a.Share = float64(a.OK) / float64(a.Writes)
	}
	if a.ProbeWrites > 0 {
		a.ProbeShare = float64(a.ProbeOK) / float64(a.ProbeWrites)
	}
	return a
}

// FailedStarts returns the start times of failed writes, in order.
func (m *Meter) FailedStarts() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.failedAt)
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// Acks returns the runs of acknowledged writes of shard.
func (m *Meter) Acks(shard int) []AckRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.acks[shard])
}

// LastLeader returns the leader that acknowledged the newest write of shard,
// and when.
func (m *Meter) LastLeader(shard int) (string, time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	runs := m.acks[shard]
	if len(runs) == 0 {
		return "", time.Time{}, false
	}
	r := runs[len(runs)-1]
	return r.Leader, r.Last, true
}

// shardOfWrite names the shard a write of the load went to, from its path:
// a hold names its event (/v1/events/{event}/holds), a release or purchase
// its hold, whose id starts with its shard (h_<shard>.<index>.<pos>).
func shardOfWrite(uri string, shards int) (int, bool) {
	path, _, _ := strings.Cut(uri, "?")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[0] == "v1" && parts[1] == "events" && parts[3] == "holds":
		return raftnode.ShardOf(parts[2], shards), true
	case len(parts) >= 3 && parts[0] == "v1" && parts[1] == "holds":
		_, rest, ok := strings.Cut(parts[2], "_")
		if !ok {
			return 0, false
		}
		num, _, ok := strings.Cut(rest, ".")
		if !ok {
			return 0, false
		}
		s, err := strconv.Atoi(num)
		if err != nil || s < 0 || s >= shards {
			return 0, false
		}
		return s, true
	}
	return 0, false
}
