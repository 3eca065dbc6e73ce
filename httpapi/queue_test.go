package httpapi_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
)

type queueBody struct {
	Opened             bool  `json:"opened"`
	Joined             int64 `json:"joined"`
	Admitted           int64 `json:"admitted"`
	Waiting            int64 `json:"waiting"`
	AdmittedNotHolding int64 `json:"admittedNotHolding"`
	SoldOut            bool  `json:"soldOut"`
}

type placeBody struct {
	Buyer      string `json:"buyer"`
	State      string `json:"state"`
	Position   *int64 `json:"position"`
	Early      bool   `json:"early"`
	PlaceToken string `json:"placeToken"`
	Pass       *struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expiresAt"`
	} `json:"pass"`
	Queue queueBody `json:"queue"`
}

// doRetry sends a request as a careful client does: a 503 (an election
// on a loaded machine: the outcome of a write is unknown) is sent again, a
// write with the same Idempotency-Key. Every request it sends is safe to
// repeat: reads, joins (the same buyer gets the same place), the PUT of a
// queue, and keyed writes.
func doRetry(m *testcluster.Member, method, path, token string, body any, headers map[string]string) (int, []byte) {
	h := map[string]string{"Idempotency-Key": fmt.Sprintf("t-%d", time.Now().UnixNano())}
	for k, v := range headers {
		h[k] = v
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, _ := testcluster.DoHeaderWith(m.HTTPAddr, method, path, token, body, h)
		if code != 503 || time.Now().After(deadline) {
			return code, out
		}
		time.Sleep(100 * time.Millisecond) // a client's backoff between retries of a 503
	}
}

func protect(t *testing.T, c *testcluster.Cluster, event string, opens time.Time, passTTL, pct int) {
	t.Helper()
	code, body := doRetry(c.Follower(c.ShardOf(event)), "PUT", "/v1/events/"+event+"/queue", organiser("org1"),
		map[string]any{"opensAt": opens.UTC().Format(time.RFC3339Nano), "passTTLSeconds": passTTL, "admitPercent": pct}, nil)
	require.Equal(t, 200, code, "%s", body)
}

func join(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, event, who string) placeBody {
	t.Helper()
	code, body := doRetry(m, "POST", "/v1/events/"+event+"/queue", buyer(who), nil, nil)
	require.Equal(t, 200, code, "%s", body)
	return decode[placeBody](t, body)
}

// place reads a buyer's place strongly (on the leader, after a barrier), so
// that successive reads see the admissions in log order.
func place(t *testing.T, c *testcluster.Cluster, event, who string) placeBody {
	t.Helper()
	code, body := doRetry(c.Running()[0], "GET", "/v1/events/"+event+"/queue/me?consistency=strong", buyer(who), nil, nil)
	require.Equal(t, 200, code, "%s", body)
	return decode[placeBody](t, body)
}

func holdWithPass(c *testcluster.Cluster, m *testcluster.Member, event, who, pass string, seats ...string) (int, []byte) {
	b, _ := json.Marshal(map[string]any{"seats": seats})
	return doRetry(m, "POST", "/v1/events/"+event+"/holds", buyer(who), b, map[string]string{"X-Admission-Pass": pass})
}

// Fairness through the cluster: those who joined before the opening are
// admitted first, in a shuffled order; later joiners in join order; every
// round admits exactly the buyers at the head of the queue (positions 1..n
// before it); a buyer joining twice keeps one place. Admission is paced by
// the two seats: each round admits two buyers, who hold a seat each (with
// their pass) and release it, and only then are two more admitted.
func TestQueueAdmitsInJoinOrder(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	ev := testcluster.Event("fair", 1, 1, 2)
	ev["limits"] = map[string]any{"maxSeatsPerBuyer": 1, "holdTTLSeconds": 600}
	createEvent(t, c, ev)
	protect(t, c, "fair", time.Now().Add(1500*time.Millisecond), 600, 100)

	var early, late []string
	for i := range 6 {
		who := fmt.Sprintf("early%d", i)
		p := join(t, c, c.Members[i%3], "fair", who)
		require.Nil(t, p.Position, "no position before the opening")
		require.True(t, p.Early)
		early = append(early, who)
	}
	require.Eventually(t, func() bool { return place(t, c, "fair", "early0").Queue.Opened }, 20*time.Second, 20*time.Millisecond)
	for i := range 6 {
		who := fmt.Sprintf("late%d", i)
		p := join(t, c, c.Members[i%3], "fair", who)
		require.False(t, p.Early)
		late = append(late, who)
	}
	// One place per buyer.
	again := join(t, c, c.Members[2], "fair", "late1")
	require.Equal(t, join(t, c, c.Members[0], "fair", "late1").PlaceToken, again.PlaceToken)
	require.Equal(t, int64(12), again.Queue.Joined)

	all := append(slices.Clone(early), late...)
	var order []string // buyers in the order they were admitted
	admitted := map[string]bool{}
	var head []string // the buyers at positions 1.. before the last release
	for round := 0; len(order) < len(all); round++ {
		require.Less(t, round, 20, "admission stalled after %v", order)
		// This round's admissions: two (as many seats as are free).
		want := min(2, len(all)-len(order))
		var now []string
		require.Eventually(t, func() bool {
			now = now[:0]
			for _, who := range all {
				if !admitted[who] && place(t, c, "fair", who).State == "admitted" {
					now = append(now, who)
				}
			}
			return len(now) == want
		}, 20*time.Second, 20*time.Millisecond, "round %d admits %d", round, want)
		if head != nil {
			require.ElementsMatch(t, head, now, "round %d admits the head of the queue", round)
			now = head // in queue order
		}
		// They hold both seats: nobody can be admitted now, and the
		// waiting buyers' positions stand still.
		var holds []string
		for i, who := range now {
			admitted[who] = true
			order = append(order, who)
			p := place(t, c, "fair", who)
			require.NotNil(t, p.Pass)
			code, body := holdWithPass(c, c.Members[i%3], "fair", who, p.Pass.Token, fmt.Sprintf("A-1-%d", i+1))
			require.Equal(t, 201, code, "%s holds with its pass: %s", who, body)
			var h struct{ ID string }
			require.NoError(t, json.Unmarshal(body, &h))
			holds = append(holds, h.ID)
		}
		pos := map[int64]string{}
		for _, who := range all {
			if p := place(t, c, "fair", who); p.State == "waiting" {
				require.NotNil(t, p.Position, "%s", who)
				require.NotContains(t, pos, *p.Position, "position %d twice", *p.Position)
				pos[*p.Position] = who
			}
		}
		require.Len(t, pos, len(all)-len(order), "everyone not admitted waits")
		head = nil
		for i := int64(1); i <= int64(len(pos)); i++ {
			require.Contains(t, pos, i, "positions are 1..%d", len(pos))
			if i <= 2 {
				head = append(head, pos[i])
			}
		}
		// They release: the seats are free, and the head goes in.
		for i, id := range holds {
			code, body := doRetry(c.Members[(i+1)%3], "DELETE", "/v1/holds/"+id, buyer(now[i]), nil, nil)
			require.Equal(t, 204, code, "%s", body)
		}
	}
	got := slices.Clone(order[:len(early)])
	require.ElementsMatch(t, early, got, "the early group is admitted first")
	require.Equal(t, late, order[len(early):], "later joiners are admitted in join order")
}

// The pass on the hold path: a hold of a protected event needs the
// buyer's own unexpired pass for that event; any node checks it. Expired,
// another buyer's or another event's pass is refused with
// admission_required, and the refusals are counted in the metrics.
func TestHoldNeedsAValidPass(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	for _, id := range []string{"passes", "other"} {
		createEvent(t, c, testcluster.Event(id, 1, 1, 10))
		protect(t, c, id, time.Now().Add(-time.Second), 2, 100)
	}
	join(t, c, c.Members[0], "passes", "u1")
	join(t, c, c.Members[1], "passes", "u2")
	join(t, c, c.Members[2], "other", "u1")
	var p1, other placeBody
	require.Eventually(t, func() bool {
		p1, other = place(t, c, "passes", "u1"), place(t, c, "other", "u1")
		return p1.State == "admitted" && other.State == "admitted"
	}, 20*time.Second, 20*time.Millisecond)
	m := c.Follower(c.ShardOf("passes"))

	code, body := holdWithPass(c, m, "passes", "u1", "", "A-1-1")
	require.Equal(t, 403, code, "%s", body)
	require.Contains(t, string(body), "admission_required")
	code, body = holdWithPass(c, m, "passes", "u2", p1.Pass.Token, "A-1-1")
	require.Equal(t, 403, code, "another buyer's pass: %s", body)
	code, body = holdWithPass(c, m, "passes", "u1", other.Pass.Token, "A-1-1")
	require.Equal(t, 403, code, "another event's pass: %s", body)
	code, body = holdWithPass(c, m, "passes", "u1", p1.Pass.Token+"x", "A-1-1")
	require.Equal(t, 403, code, "a changed pass: %s", body)
	code, body = holdWithPass(c, m, "passes", "u1", p1.Pass.Token, "A-1-1")
	require.Equal(t, 201, code, "%s", body)

	// After its expiry (2 s) the pass is refused, by the node and by the
	// state machine.
	exp, err := time.Parse(time.RFC3339Nano, other.Pass.ExpiresAt)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		code, body = holdWithPass(c, m, "other", "u1", other.Pass.Token, "A-1-2")
		return code == 403
	}, 10*time.Second, 50*time.Millisecond, "an expired pass is refused: %d %s", code, body)
	require.False(t, time.Now().Before(exp), "refused only once expired")
	require.Equal(t, "expired", place(t, c, "other", "u1").State)

	code, metrics := c.Do(m, "GET", "/metrics", "", nil)
	require.Equal(t, 200, code)
	for _, reason := range []string{"missing", "other_event_or_buyer", "forged", "expired"} {
		require.Contains(t, string(metrics), `boxoffice_queue_pass_rejections_total{reason="`+reason+`"}`)
	}
}

// Sell-out and resumption through the cluster: with every seat sold, the
// buyers still waiting read sold_out at once; a cancelled order frees its
// seats, and admission resumes.
func TestQueueStopsAtSellOutAndResumes(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	createEvent(t, c, testcluster.Event("sellout", 1, 1, 2))
	protect(t, c, "sellout", time.Now().Add(-time.Second), 600, 50)
	// Joined after the opening (not shuffled): admitted in join order.
	require.Eventually(t, func() bool {
		code, body := c.Do(c.Members[0], "GET", "/v1/events/sellout/queue?consistency=strong", "", nil)
		return code == 200 && decode[queueBody](t, body).Opened
	}, 20*time.Second, 20*time.Millisecond)
	for _, who := range []string{"a", "b", "c"} {
		join(t, c, c.Members[0], "sellout", who)
	}
	require.Eventually(t, func() bool { return place(t, c, "sellout", "a").State == "admitted" }, 20*time.Second, 20*time.Millisecond)
	// 50% of 2 free seats: one buyer at a time.
	require.Equal(t, "waiting", place(t, c, "sellout", "b").State)
	a := place(t, c, "sellout", "a")
	code, body := holdWithPass(c, c.Members[1], "sellout", "a", a.Pass.Token, "A-1-1", "A-1-2")
	require.Equal(t, 201, code, "%s", body)
	var h struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &h))
	code, body = doRetry(c.Members[2], "POST", "/v1/holds/"+h.ID+"/purchase", buyer("a"), map[string]any{"paymentMethod": "pm_card_visa"}, nil)
	require.Equal(t, 201, code, "%s", body)
	var o struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &o))

	require.Eventually(t, func() bool {
		return place(t, c, "sellout", "b").State == "sold_out" && place(t, c, "sellout", "c").State == "sold_out"
	}, 20*time.Second, 20*time.Millisecond, "everyone waiting is told of the sell-out")
	require.True(t, place(t, c, "sellout", "c").Queue.SoldOut)

	code, body = doRetry(c.Members[0], "POST", "/v1/orders/"+o.ID+"/cancel", buyer("a"), nil, nil)
	require.Equal(t, 200, code, "%s", body)
	require.Eventually(t, func() bool { return place(t, c, "sellout", "b").State == "admitted" }, 20*time.Second, 20*time.Millisecond,
		"admission resumes once seats are free again")
	require.Equal(t, "waiting", place(t, c, "sellout", "c").State)

	// The shard's leader exports the queue's length and admissions (the
	// leader may move meanwhile: one of the nodes does).
	require.Eventually(t, func() bool {
		for _, m := range c.Running() {
			_, metrics := c.Do(m, "GET", "/metrics", "", nil)
			s := string(metrics)
			if strings.Contains(s, `boxoffice_queue_waiting{event="sellout"} 1`) &&
				strings.Contains(s, `boxoffice_queue_admitted_total{event="sellout"} 2`) &&
				strings.Contains(s, `boxoffice_queue_admitted_not_holding{event="sellout"} 1`) {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the leader's metrics show the queue")
}

// A leader kill during admission: buyers join concurrently through every
// node (a join that got no answer is sent again, as a client would: it
// returns the same place), admitted buyers hold a seat with their pass and
// release it, and the shard's leader is crashed midway. Every buyer ends
// with one place and is admitted exactly once: the queue counts one place
// per buyer and as many admissions as buyers, and no buyer's admission
// (its pass's expiry, fixed when it was admitted) ever changes.
func TestQueueLeaderKillLosesNoPlace(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 1})
	ev := testcluster.Event("kill", 1, 1, 8)
	ev["limits"] = map[string]any{"maxSeatsPerBuyer": 1, "holdTTLSeconds": 600}
	createEvent1(t, c, ev)
	protect(t, c, "kill", time.Now().Add(-time.Second), 600, 100)

	const buyers = 40
	who := func(i int) string { return fmt.Sprintf("k%02d", i) }
	// retry sends a request until it gets an answer other than 503 or no
	// answer, through the running members in turn.
	retry := func(method, path, token string, body any, headers map[string]string) (int, []byte) {
		var code int
		var out []byte
		for attempt := 0; attempt < 200; attempt++ {
			run := c.Running()
			m := run[attempt%len(run)]
			code, out, _ = testcluster.DoHeaderWith(m.HTTPAddr, method, path, token, body, headers)
			if code != 0 && code != 503 && code != 504 {
				return code, out
			}
			time.Sleep(50 * time.Millisecond) // a client's backoff before the next node
		}
		return code, out
	}
	strongPlace := func(b string) placeBody {
		code, body := retry("GET", "/v1/events/kill/queue/me?consistency=strong", buyer(b), nil, nil)
		require.Equal(t, 200, code, "%s", body)
		return decode[placeBody](t, body)
	}
	joined := make(chan string, buyers)
	for i := range buyers {
		go func() {
			code, body := retry("POST", "/v1/events/kill/queue", buyer(who(i)), nil, nil)
			if code == 200 {
				joined <- who(i)
			} else {
				joined <- "failed: " + string(body)
			}
		}()
	}

	firstPass := map[string]string{} // buyer → pass expiry when first seen admitted
	done := map[string]bool{}
	killed := false
	deadline := time.Now().Add(90 * time.Second)
	acked := 0
	ackedSet := map[string]bool{} // joins acknowledged: only those have a place for sure
	for len(done) < buyers {
		require.True(t, time.Now().Before(deadline), "admitted %d of %d", len(done), buyers)
		for acked < buyers {
			select {
			case b := <-joined:
				require.NotContains(t, b, "failed", "a join is answered in the end")
				ackedSet[b] = true
				acked++
				continue
			default:
			}
			break
		}
		if !killed && len(done) >= buyers/4 {
			leader := c.Leader(0)
			t.Logf("crashing %s, the leader, after %d admissions", leader.ID, len(done))
			c.Crash(leader)
			killed = true
		}
		progress := false
		for i := range buyers {
			b := who(i)
			if done[b] || !ackedSet[b] {
				continue
			}
			p := strongPlace(b)
			if p.State != "admitted" {
				continue
			}
			require.NotNil(t, p.Pass)
			firstPass[b] = p.Pass.ExpiresAt
			code, body := retry("POST", "/v1/events/kill/holds", buyer(b), map[string]any{"category": "std", "quantity": 1},
				map[string]string{"X-Admission-Pass": p.Pass.Token, "Idempotency-Key": "hold-" + b})
			require.Equal(t, 201, code, "%s holds: %s", b, body)
			var h struct{ ID string }
			require.NoError(t, json.Unmarshal(body, &h))
			code, body = retry("DELETE", "/v1/holds/"+h.ID, buyer(b), nil, map[string]string{"Idempotency-Key": "release-" + b})
			require.Equal(t, 204, code, "%s", body)
			done[b] = true
			progress = true
		}
		if !progress {
			time.Sleep(50 * time.Millisecond) // nothing moved this pass: let the cluster elect and apply
		}
	}
	require.True(t, killed)
	require.Equal(t, buyers, acked)
	q := strongPlace(who(0)).Queue
	require.Equal(t, int64(buyers), q.Joined, "one place per buyer, none lost")
	require.Equal(t, int64(buyers), q.Admitted, "every buyer admitted once")
	for b, exp := range firstPass {
		p := strongPlace(b)
		require.Equal(t, "admitted", p.State, "%s", b)
		require.Equal(t, exp, p.Pass.ExpiresAt, "%s was admitted once", b)
	}
}

// createEvent1 creates an event on a one-shard cluster.
func createEvent1(t *testing.T, c *testcluster.Cluster, ev map[string]any) {
	t.Helper()
	code, body := c.Do(c.Follower(0), "POST", "/v1/events", organiser("org1"), ev)
	require.Equal(t, 201, code, "%s", body)
}
