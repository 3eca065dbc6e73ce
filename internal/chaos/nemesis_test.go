package chaos

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/client"
)

// fakeRunner answers the docker CLI as a daemon with one container per
// service would, and records every command.
type fakeRunner struct {
	mu   sync.Mutex
	cmds []string
}

var _ Runner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(_ context.Context, _ []string, name string, args ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := name + " " + strings.Join(args, " ")
	f.cmds = append(f.cmds, cmd)
	switch {
	case name == "docker" && args[0] == "ps":
		for _, a := range args {
			if svc, ok := strings.CutPrefix(a, "label=com.docker.compose.service="); ok {
				return "ctr-" + svc + "\n", nil
			}
		}
	case name == "docker" && args[0] == "inspect" && strings.Contains(cmd, "IPAddress"):
		return "127.0.0.1\n", nil
	case name == "docker" && args[0] == "inspect":
		return "proj_front proj_raft\n", nil
	}
	return "", nil
}

// docker returns the docker commands run since the last call, without
// the look-ups (ps, inspect), which are an implementation detail.
func (f *fakeRunner) docker() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.cmds {
		if strings.HasPrefix(c, "docker ps") || strings.HasPrefix(c, "docker inspect") || strings.HasPrefix(c, "docker network ls") {
			continue
		}
		out = append(out, c)
	}
	f.cmds = nil
	return out
}

// fakeAPI answers /v1/cluster for every node (they all share 127.0.0.1 in
// the test) with a settled cluster of the given members: leaders spread,
// leader names the leader of shard 0.
type fakeAPI struct {
	mu      sync.Mutex
	members []string
	leader  string
	removed []string
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/cluster/members/") {
		id := strings.TrimPrefix(r.URL.Path, "/v1/cluster/members/")
		a.removed = append(a.removed, id)
		a.members = slices.DeleteFunc(a.members, func(m string) bool { return m == id })
		w.Write([]byte(`{"ok":true}`))
		return
	}
	var st client.ClusterStatus
	others := slices.DeleteFunc(slices.Clone(a.members), func(m string) bool { return m == a.leader })
	for i := 0; i < 4; i++ {
		l := a.leader
		if i > 0 && len(others) > 0 {
			l = others[(i-1)%len(others)]
		}
		st.Shards = append(st.Shards, client.ShardStatus{ID: i, Leader: l, Voters: a.members, Term: 2})
	}
	json.NewEncoder(w).Encode(st)
}

func newTestNemesis(t *testing.T, members []string, spare string) (*nemesis, *fakeRunner, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{members: slices.Clone(members), leader: members[0]}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	fr := &fakeRunner{}
	c := &cluster{docker: NewDocker(fr, "proj", []string{"docker-compose.yml"}, nil), shards: 4, port: port, http: srv.Client()}
	for _, id := range append(slices.Clone(members), spare) {
		if id == "" {
			continue
		}
		p, err := newProxy(id, NewMeter(4))
		require.NoError(t, err)
		t.Cleanup(p.close)
		c.nodes = append(c.nodes, &member{id: id, proxy: p, container: "ctr-" + id, ip: "127.0.0.1", running: true, joined: id != spare})
	}
	cfg := DefaultConfig()
	cfg.Spare = spare
	cfg.FaultHold = 10 * time.Millisecond
	cfg.SettleTimeout = 10 * time.Second
	n := &nemesis{c: c, cfg: &cfg, rng: rand.New(rand.NewPCG(1, 2)), shard: func() int { return 0 }, logf: t.Logf, turn: map[string]int{}}
	return n, fr, api
}

// TestScheduleCoversEveryKind: the first cycle runs every kind (membership
// twice: add, remove) with the long ones early; later cycles shuffle them.
func TestScheduleCoversEveryKind(t *testing.T) {
	cfg := DefaultConfig()
	n := &nemesis{cfg: &cfg, rng: rand.New(rand.NewPCG(7, 0))}
	var first []string
	for range firstCycle {
		first = append(first, n.next())
	}
	assert.Equal(t, firstCycle, first)
	for cycle := 0; cycle < 3; cycle++ {
		var got []string
		for range len(Kinds) + 1 {
			got = append(got, n.next())
		}
		want := append(slices.Clone(Kinds), KindMembership)
		slices.Sort(got)
		slices.Sort(want)
		assert.Equal(t, want, got, "cycle %d", cycle)
	}

	// Only the kinds asked for; no membership without a spare.
	cfg.Kinds = []string{KindPause, KindMembership}
	cfg.Spare = ""
	n = &nemesis{cfg: &cfg, rng: rand.New(rand.NewPCG(7, 0))}
	for range 5 {
		assert.Equal(t, KindPause, n.next())
	}
}

// TestKillLeader: the leader's container is killed, started again, its
// proxy pointed at it again, and the record says the leader was hit.
func TestKillLeader(t *testing.T) {
	n, fr, _ := newTestNemesis(t, []string{"n1", "n2", "n3"}, "")
	recs := n.inject(context.Background(), KindKill)
	require.Len(t, recs, 1)
	f := recs[0]
	assert.Empty(t, f.Err)
	assert.Equal(t, []string{"n1"}, f.Targets)
	assert.Equal(t, "n1", f.Leader)
	assert.True(t, f.LeaderHit)
	assert.False(t, f.Settled.IsZero())
	assert.Equal(t, []string{"docker kill -s KILL ctr-n1", "docker start ctr-n1"}, fr.docker())
	assert.Equal(t, "127.0.0.1:"+n.c.port, *n.c.node("n1").proxy.upstream.Load())

	// The next kill is of a follower.
	recs = n.inject(context.Background(), KindKill)
	assert.False(t, recs[0].LeaderHit)
	assert.NotEqual(t, "n1", recs[0].Targets[0])
}

// TestPartitions: the leader is cut off the raft network and put back under
// its alias; a minority of two of five moves to a network of its own.
func TestPartitions(t *testing.T) {
	n, fr, _ := newTestNemesis(t, []string{"n1", "n2", "n3"}, "")
	f := n.inject(context.Background(), KindPartitionLeader)[0]
	assert.Empty(t, f.Err)
	assert.True(t, f.LeaderHit)
	assert.Equal(t, []string{
		"docker network disconnect -f proj_raft ctr-n1",
		"docker network connect --alias raft-n1 proj_raft ctr-n1",
	}, fr.docker())

	n, fr, _ = newTestNemesis(t, []string{"n1", "n2", "n3", "n4", "n5"}, "")
	for i := 0; i < 20; i++ {
		f = n.inject(context.Background(), KindPartition)[0]
		require.Empty(t, f.Err)
		cmds := fr.docker()
		if len(f.Targets) == 2 {
			a, b := f.Targets[0], f.Targets[1]
			assert.Equal(t, []string{
				"docker network create --internal --label com.docker.compose.project=proj proj_side",
				"docker network disconnect -f proj_raft ctr-" + a,
				"docker network connect --alias raft-" + a + " proj_side ctr-" + a,
				"docker network disconnect -f proj_raft ctr-" + b,
				"docker network connect --alias raft-" + b + " proj_side ctr-" + b,
				"docker network disconnect -f proj_side ctr-" + a,
				"docker network connect --alias raft-" + a + " proj_raft ctr-" + a,
				"docker network disconnect -f proj_side ctr-" + b,
				"docker network connect --alias raft-" + b + " proj_raft ctr-" + b,
			}, cmds)
			return
		}
		require.Len(t, f.Targets, 1)
	}
	t.Fatal("no split of two in 20 draws")
}

// TestMembership: the spare is started (it joins by itself), then removed
// through the API, deleted with its volume and created again, empty.
func TestMembership(t *testing.T) {
	n, fr, api := newTestNemesis(t, []string{"n1", "n2", "n3"}, "spare")
	api.mu.Lock()
	api.members = append(api.members, "spare") // it joins once started
	api.mu.Unlock()
	f := n.inject(context.Background(), KindMembership)[0]
	assert.Empty(t, f.Err)
	assert.Equal(t, "add spare", f.Action)
	assert.Equal(t, []string{"docker start ctr-spare"}, fr.docker())
	assert.Equal(t, []string{"n1", "n2", "n3", "spare"}, n.c.joined())

	f = n.inject(context.Background(), KindMembership)[0]
	assert.Empty(t, f.Err)
	assert.Equal(t, "remove spare", f.Action)
	assert.Equal(t, []string{"spare"}, api.removed)
	require.NotNil(t, n.spareReady, "created again in the background")
	require.NoError(t, <-n.spareReady)
	n.spareReady = nil
	assert.Equal(t, []string{
		"docker rm -f -v ctr-spare",
		"docker volume rm -f proj_spare",
		"docker-compose -p proj -f docker-compose.yml up --no-start --no-deps spare",
	}, fr.docker())
	assert.Equal(t, []string{"n1", "n2", "n3"}, n.c.joined())
	assert.Equal(t, "", *n.c.node("spare").proxy.upstream.Load())

	// Added again: it waits for the new container, and starts it.
	api.mu.Lock()
	api.members = append(api.members, "spare")
	api.mu.Unlock()
	f = n.inject(context.Background(), KindMembership)[0]
	assert.Empty(t, f.Err)
	assert.Equal(t, "add spare", f.Action)
	assert.Equal(t, []string{"docker start ctr-spare"}, fr.docker())
}

// TestRollingRestart: every member is stopped cleanly and started in turn,
// the leader last.
func TestRollingRestart(t *testing.T) {
	n, fr, _ := newTestNemesis(t, []string{"n1", "n2", "n3"}, "")
	recs := n.inject(context.Background(), KindRollingRestart)
	require.Len(t, recs, 3)
	var order []string
	for _, f := range recs {
		assert.Empty(t, f.Err)
		order = append(order, f.Targets[0])
	}
	assert.Equal(t, []string{"n2", "n3", "n1"}, order)
	assert.Equal(t, []bool{false, false, true}, []bool{recs[0].LeaderHit, recs[1].LeaderHit, recs[2].LeaderHit})
	assert.Equal(t, []string{
		"docker stop -t 30 ctr-n2", "docker start ctr-n2",
		"docker stop -t 30 ctr-n3", "docker start ctr-n3",
		"docker stop -t 30 ctr-n1", "docker start ctr-n1",
	}, fr.docker())
}
