package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/raftnode"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// try is one exchange of a write with key, from ms to ms+took.
func try(key string, ms, took, status int, node string) Exchange {
	return Exchange{Method: "POST", Path: "/v1/events/ev1/holds", Key: key, Start: at(ms), End: at(ms + took), Status: status, Node: node}
}

// TestMeterAvailability: the tries of one key are one request, which
// succeeds when an answer that counts comes within 2 s of its first try.
func TestMeterAvailability(t *testing.T) {
	m := NewMeter(4)
	m.Observe(try("a", 0, 10, 201, "n1"))     // ok at once
	m.Observe(try("b", 0, 100, 0, ""))        // connection broke...
	m.Observe(try("b", 150, 100, 503, "n2"))  // ...no leader...
	m.Observe(try("b", 400, 100, 201, "n3"))  // ...answered at 0.5 s: ok
	m.Observe(try("c", 0, 1500, 504, "n1"))   // timed out...
	m.Observe(try("c", 1600, 900, 201, "n2")) // ...answered at 2.5 s: late
	m.Observe(try("d", 0, 50, 409, "n1"))     // seat taken: an answer
	m.Observe(try("e", 0, 3000, 0, ""))       // never answered
	m.Observe(try("f", 100, 2000, 201, "n1")) // exactly 2 s: ok
	m.Observe(try("g", 0, 2500, 408, "n1"))   // a request timeout is no answer
	m.Observe(Exchange{Method: "GET", Path: "/v1/events/ev1/seats", Start: at(0), End: at(30), Status: 200})
	m.Observe(Exchange{Method: "GET", Path: "/v1/events/ev1/seats", Start: at(0), End: at(30), Status: 0})

	a := m.Availability()
	assert.Equal(t, int64(5), a.Writes, "a, b, c, d, f ended; e and g are open")
	m.Finish()
	a = m.Availability()
	assert.Equal(t, int64(7), a.Writes)
	assert.Equal(t, int64(4), a.OK, "a, b, d, f")
	assert.Equal(t, int64(1), a.Late, "c")
	assert.Equal(t, int64(2), a.Failed, "e, g")
	assert.InDelta(t, 4.0/7, a.Share, 1e-9)
	assert.Equal(t, int64(2), a.Reads)
	assert.Equal(t, int64(1), a.ReadsOK)
	assert.Equal(t, int64(12), a.Tries)
	assert.Equal(t, int64(3), a.TriesLost, "b's first try, e, a read")
	assert.Equal(t, []time.Time{at(0), at(0), at(0)}, m.FailedStarts(), "c, e, g, by their first try")
}

// TestMeterProbe: the probe's writes are counted apart too, and a probe
// not sent is a failed write.
func TestMeterProbe(t *testing.T) {
	m := NewMeter(4)
	m.Observe(try(probeKeyPrefix+"1-0-h", 0, 10, 201, "n1"))
	m.Observe(try(probeKeyPrefix+"1-1-h", 0, 2500, 201, "n1"))
	m.Observe(try("bench-1", 0, 10, 201, "n1"))
	m.probeNotSent()
	m.Observe(try(probeKeyPrefix+"1-2-h", 0, 10, 0, ""))
	m.Finish()
	a := m.Availability()
	assert.Equal(t, int64(4), a.ProbeWrites)
	assert.Equal(t, int64(1), a.ProbeOK)
	assert.InDelta(t, 0.25, a.ProbeShare, 1e-9)
	assert.Equal(t, int64(5), a.Writes)
	assert.Equal(t, int64(2), a.OK)
}

// TestMeterAcks: 2xx writes are acks of the shard they went to, kept as
// runs of one leader; other answers are not acks.
func TestMeterAcks(t *testing.T) {
	m := NewMeter(4)
	ev := "ev1"
	shard := raftnode.ShardOf(ev, 4)
	hold := func(ms int, node string, status int) Exchange {
		return Exchange{Method: "POST", Path: "/v1/events/" + ev + "/holds", Key: "k" + node, Start: at(ms - 5), End: at(ms), Status: status, Node: node}
	}
	m.Observe(hold(10, "n1", 201))
	m.Observe(hold(20, "n1", 201))
	m.Observe(hold(30, "n2", 503)) // not an ack
	m.Observe(hold(40, "n2", 201))
	m.Observe(Exchange{Method: "DELETE", Path: "/v1/holds/h_" + itoa(shard) + ".7.0", Start: at(45), End: at(50), Status: 204, Node: "n2"})
	m.Observe(Exchange{Method: "POST", Path: "/v1/events", Start: at(55), End: at(60), Status: 201, Node: "n3"}) // no shard of the load
	assert.Equal(t, []AckRun{
		{Leader: "n1", First: at(10), Last: at(20), Count: 2},
		{Leader: "n2", First: at(40), Last: at(50), Count: 2},
	}, m.Acks(shard))
	l, when, ok := m.LastLeader(shard)
	require.True(t, ok)
	assert.Equal(t, "n2", l)
	assert.Equal(t, at(50), when)
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestShardOfWrite(t *testing.T) {
	s, ok := shardOfWrite("/v1/events/arena/holds", 4)
	assert.True(t, ok)
	assert.Equal(t, raftnode.ShardOf("arena", 4), s)
	for uri, want := range map[string]int{
		"/v1/holds/h_3.12.0/purchase": 3,
		"/v1/holds/h_0.1.2":           0,
		"/v1/holds/h_2.1.2?x=y":       2,
	} {
		s, ok := shardOfWrite(uri, 4)
		assert.True(t, ok, uri)
		assert.Equal(t, want, s, uri)
	}
	for _, uri := range []string{"/v1/events", "/v1/holds/h_9.1.2", "/v1/holds/x", "/v1/cluster/members", "/v1/holds/h_a.1"} {
		_, ok := shardOfWrite(uri, 4)
		assert.False(t, ok, uri)
	}
}
