package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/client"
)

// TestSummarize records 1..10,000 µs once each: every percentile is known
// exactly, and HDR's 3 significant digits keep it within 0.1 %.
func TestSummarize(t *testing.T) {
	h := newHist()
	for v := int64(1); v <= 10_000; v++ {
		require.NoError(t, h.RecordValue(v))
	}
	l := summarize(h)
	assert.Equal(t, int64(10_000), l.Count)
	within := func(want, got float64, what string) {
		assert.InEpsilon(t, want, got, 0.001, "%s: want %v ms, got %v ms", what, want, got)
	}
	within(5.0005, l.MeanMs, "mean")
	within(5.0, l.P50Ms, "p50")
	within(9.0, l.P90Ms, "p90")
	within(9.9, l.P99Ms, "p99")
	within(9.99, l.P999Ms, "p99.9")
	within(10.0, l.MaxMs, "max")
	require.Len(t, l.Spectrum, len(spectrumPercentiles))
	for i := 1; i < len(l.Spectrum); i++ {
		assert.LessOrEqual(t, l.Spectrum[i-1].Ms, l.Spectrum[i].Ms, "spectrum must not decrease")
	}
	assert.Equal(t, l.MaxMs, l.Spectrum[len(l.Spectrum)-1].Ms)

	assert.Equal(t, Latency{}, summarize(newHist()), "an empty histogram summarizes to zeros")
}

func TestRecorder(t *testing.T) {
	r := newRecorder()
	r.observe(opHold, 2*time.Millisecond)
	r.observe(opHold, 0)            // recorded as 1 µs
	r.observe(opHold, 24*time.Hour) // clamped to the histogram's range
	r.observe(opPurchase, time.Millisecond)
	q := r.takeInterval(opHold, 50, 100)
	assert.InEpsilon(t, 2.0, q[0], 0.001)
	assert.InEpsilon(t, float64(latencyMax)/1000, q[1], 0.001)
	assert.Equal(t, []float64{0}, r.takeInterval(opHold, 50), "an interval starts empty")
	lat := r.latencies()
	assert.Equal(t, int64(3), lat["hold"].Count, "the whole-run histogram keeps everything")
	assert.Equal(t, int64(1), lat["purchase"].Count)
	assert.Equal(t, int64(0), lat["release"].Count)

	r.countError(&client.Error{Status: 504, Code: boxoffice.CodeTimeout, Retryable: true})
	r.countError(&client.Error{Status: 504, Code: boxoffice.CodeTimeout, Retryable: true})
	r.countError(fmt.Errorf("POST /v1/holds: %w", errors.New("connection refused")))
	r.countError(context.DeadlineExceeded)
	assert.Equal(t, map[string]int64{"timeout": 2, codeTransport: 1, codeCanceled: 1}, r.errorsByCode())
	assert.Equal(t, int64(4), r.errorsTotal.Load())
	assert.Equal(t, []string{"timeout", codeCanceled, codeTransport}, sortedCodes(r.errorsByCode()))
}

func TestUnknownOutcome(t *testing.T) {
	assert.False(t, unknownOutcome(nil))
	assert.False(t, unknownOutcome(&client.Error{Status: 409, Code: boxoffice.CodeSeatUnavailable}))
	assert.True(t, unknownOutcome(&client.Error{Status: 503, Code: boxoffice.CodeUnavailable, Retryable: true}))
	assert.True(t, unknownOutcome(errors.New("connection reset")))
	assert.True(t, isCode(fmt.Errorf("wrapped: %w", &client.Error{Code: boxoffice.CodeBuyerLimit}), boxoffice.CodeBuyerLimit))
}

func TestParseProcStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks, 16 and 17
	// (cutime, cstime) 100 and 0; the command name holds a space and a
	// parenthesis.
	line := "4242 (box office) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 100 0 20 0 12 0 100 0 0"
	st, err := parseProcStat(line)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, st.cpu)
	assert.Equal(t, time.Second, st.children)
	assert.Equal(t, 1, st.ppid)
	_, err = parseProcStat("garbage")
	assert.Error(t, err)
}

// TestTreeCPU: a server's CPU is its own, its reaped children's and its
// live descendants', and nobody else's.
func TestTreeCPU(t *testing.T) {
	procs := map[int]procStat{
		1:  {ppid: 0, cpu: 100 * time.Second},
		10: {ppid: 1, cpu: time.Second, children: 2 * time.Second}, // the server
		11: {ppid: 10, cpu: 3 * time.Second},                       // a backend
		12: {ppid: 11, cpu: 4 * time.Second},                       // its child
		20: {ppid: 1, cpu: 50 * time.Second},                       // someone else
	}
	assert.Equal(t, 10*time.Second, treeCPU(procs, 10))
	assert.Equal(t, 7*time.Second, treeCPU(procs, 11))
	assert.Equal(t, time.Duration(-1), treeCPU(procs, 99))
	// The bench's own process tree is readable.
	self := treeCPU(readProcs(), os.Getpid())
	assert.GreaterOrEqual(t, self, time.Duration(0))
}

// TestEventFor: the layout holds exactly the seats asked for, in sections
// the server accepts, with categories that are all used.
func TestEventFor(t *testing.T) {
	for _, n := range []int{1, 49, 50, 2_000, 5_000, 12_345, 100_000, 200_000} {
		cfg := DefaultConfig()
		cfg.Seats = n
		ev := eventFor("e", cfg)
		total := 0
		used := map[string]bool{}
		for _, s := range ev.Venue.Sections {
			require.True(t, s.Rows >= 1 && s.Rows <= boxoffice.RowsPerSectionMax && s.SeatsPerRow >= 1 && s.SeatsPerRow <= boxoffice.SeatsPerRowMax, "%+v", s)
			total += s.Rows * s.SeatsPerRow
			used[s.Category] = true
		}
		assert.Equal(t, n, total, "seats of a %d-seat event", n)
		assert.Len(t, ev.Categories, len(used), "every category is used")
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.Validate()
	require.Error(t, err, "Targets and Mint are the caller's")
	assert.Contains(t, err.Error(), "Targets")
	assert.Contains(t, err.Error(), "Mint")
	cfg.Targets = []string{"http://127.0.0.1:1"}
	cfg.Mint = func(string, string) (string, error) { return "", nil }
	require.NoError(t, cfg.Validate())
	cfg.Workload, cfg.Seats, cfg.PicksMax = "stampede", 0, 9
	err = cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"Workload", "Seats", "PicksMax", "MaxSeatsPerBuyer"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestLeaderChanges(t *testing.T) {
	a := client.ClusterStatus{Shards: []client.ShardStatus{{ID: 0, Leader: "n1", Term: 2}, {ID: 1, Leader: "n2", Term: 2}}}
	b := client.ClusterStatus{Shards: []client.ShardStatus{{ID: 0, Leader: "n1", Term: 2}, {ID: 1, Leader: "n3", Term: 3}}}
	assert.Empty(t, leaderChanges(a, a))
	assert.Equal(t, []string{"shard 1: leader n2 → n3 (term 2 → 3)"}, leaderChanges(a, b))
}
