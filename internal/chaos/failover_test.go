package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func run(leader string, first, last int) AckRun {
	return AckRun{Leader: leader, First: at(first), Last: at(last), Count: 1}
}

func TestFailover(t *testing.T) {
	// n1 leads; the fault at 1000 ms; n1's answers in flight come until
	// 1100; n2 acknowledges from 2300: 1.2 s of failover.
	runs := []AckRun{run("n1", 0, 1100), run("n2", 2300, 5000)}
	fo := Failover(runs, at(1000), at(10_000))
	assert.True(t, fo.OK, fo.Note)
	assert.Equal(t, "n1", fo.Old)
	assert.Equal(t, "n2", fo.New)
	assert.Equal(t, 1200*time.Millisecond, fo.Time)
	assert.Equal(t, at(1100), fo.OldLast)
	assert.Equal(t, at(2300), fo.NewFirst)

	// The old leader's acks that straggle in after a run of its own count
	// too; a leader before it is not the old one.
	runs = []AckRun{run("n3", 0, 500), run("n1", 600, 900), run("n1", 1000, 1400), run("n2", 1900, 3000)}
	fo = Failover(runs, at(950), at(10_000))
	assert.True(t, fo.OK)
	assert.Equal(t, "n1", fo.Old)
	assert.Equal(t, 500*time.Millisecond, fo.Time)

	// No ack before the fault: nothing to measure from.
	fo = Failover([]AckRun{run("n2", 2000, 3000)}, at(1000), at(10_000))
	assert.False(t, fo.OK)
	assert.Contains(t, fo.Note, "before the fault")

	// The new leader's first ack after the next fault began: not this one's.
	fo = Failover([]AckRun{run("n1", 0, 900), run("n2", 6000, 7000)}, at(1000), at(5000))
	assert.False(t, fo.OK)
	assert.Contains(t, fo.Note, "no other leader")

	// The old leader kept the lead (the fault did not depose it).
	fo = Failover([]AckRun{run("n1", 0, 9000)}, at(1000), at(10_000))
	assert.False(t, fo.OK)
	assert.Contains(t, fo.Note, "kept acknowledging")
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	assert.Equal(t, time.Duration(0), Percentile(nil, 99))
	ds := ms(900, 100, 500, 300, 700)
	assert.Equal(t, 500*time.Millisecond, Percentile(ds, 50))
	assert.Equal(t, 900*time.Millisecond, Percentile(ds, 99), "few samples: the 99th is the largest")
	assert.Equal(t, 100*time.Millisecond, Percentile(ds, 1))
	assert.Equal(t, ms(900, 100, 500, 300, 700), ds, "the input is not reordered")
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	assert.Equal(t, 99*time.Millisecond, Percentile(hundred, 99))
}
