package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"boxoffice/client"
)

// Ports inside the containers (the image's defaults) and networks of the
// compose file.
const (
	httpPort     = "8080"
	frontNet     = "front"
	raftNet      = "raft"
	sideNet      = "side" // made by the suite for the minority of a split
	spareProfile = "spare"
	// raftAliasPrefix names a node on the raft network (raft-n1): the
	// compose file gives these aliases, and a reconnect must give them
	// again.
	raftAliasPrefix = "raft-"
	// apiTimeout bounds one call of the suite to a node's API; seatMapTimeout
	// one read of a whole seat map (megabytes, on a busy machine).
	apiTimeout     = 3 * time.Second
	seatMapTimeout = 30 * time.Second
)

// member is one node the suite may run: a compose service whose name is
// the node id.
type member struct {
	id        string
	container string
	proxy     *proxy
	ip        string // on the front network; "" while not running
	running   bool
	paused    bool
	// joined: a voter of the cluster (or about to be, for a node that
	// starts with the cluster); the spare is not until added.
	joined bool
}

// cluster is the suite's view of the containers: which nodes run, where,
// and what their API says. The nemesis changes it; the load reads it.
type cluster struct {
	docker *Docker
	http   *http.Client
	admin  string // admin token
	shards int
	// port is the nodes' HTTP port (httpPort; tests use a fake API's).
	port string

	mu    sync.Mutex
	nodes []*member // in the compose file's order, spare last
}

func (c *cluster) node(id string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.nodes {
		if m.id == id {
			return m
		}
	}
	return nil
}

// joined returns the ids of the cluster's members, in order.
func (c *cluster) joined() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.nodes {
		if m.joined {
			out = append(out, m.id)
		}
	}
	return out
}

// targets returns the load's base URLs: the proxies of the members.
func (c *cluster) targets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.nodes {
		if m.joined {
			out = append(out, m.proxy.URL())
		}
	}
	return out
}

// refresh learns a node's container and address after it (re)started,
// and points its proxy there.
func (c *cluster) refresh(ctx context.Context, id string) error {
	m := c.node(id)
	ctr, err := c.docker.Container(ctx, id)
	if err != nil {
		return err
	}
	if ctr == "" {
		return fmt.Errorf("service %s has no container", id)
	}
	ip, err := c.docker.IP(ctx, ctr, frontNet)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.container, m.ip, m.running, m.paused = ctr, ip, true, false
	c.mu.Unlock()
	m.proxy.setUpstream(ip + ":" + c.port)
	return nil
}

// createSpare creates the spare's container, empty and stopped, on both
// networks. (docker-compose up --no-start attaches a container to its first
// network only, and the others when compose starts it; the suite starts it
// with docker start.)
func (c *cluster) createSpare(ctx context.Context, id string) error {
	ctr, err := c.docker.Create(ctx, id)
	if err != nil {
		return err
	}
	if ctr == "" {
		return fmt.Errorf("created %s, but it has no container", id)
	}
	nets, err := c.docker.Networks(ctx, ctr)
	if err != nil {
		return err
	}
	for _, n := range []string{frontNet, raftNet} {
		if slices.Contains(nets, n) {
			continue
		}
		alias := id
		if n == raftNet {
			alias = raftAliasPrefix + id
		}
		if err := c.docker.Connect(ctx, n, ctr, alias); err != nil {
			return err
		}
	}
	m := c.node(id)
	c.mu.Lock()
	m.container = ctr
	c.mu.Unlock()
	return nil
}

// down marks a node stopped: its proxy refuses the load's connections at
// once, as a host whose server process died answers a connect with a
// reset (see proxy).
func (c *cluster) down(id string) {
	m := c.node(id)
	c.mu.Lock()
	m.running = false
	c.mu.Unlock()
	m.proxy.setUpstream("")
}

// status asks one node for its view of the cluster.
func (c *cluster) status(ctx context.Context, id string) (client.ClusterStatus, error) {
	var out client.ClusterStatus
	m := c.node(id)
	c.mu.Lock()
	ip, running, paused := m.ip, m.running, m.paused
	c.mu.Unlock()
	if !running || paused || ip == "" {
		return out, fmt.Errorf("%s is not running", id)
	}
	err := c.call(ctx, apiTimeout, http.MethodGet, ip, "/v1/cluster", &out)
	return out, err
}

// call sends one request of the suite's own to a node (not through its
// proxy: the suite's calls are not the load's).
func (c *cluster) call(ctx context.Context, timeout time.Duration, method, ip, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+ip+":"+c.port+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s at %s: %s: %s", method, path, ip, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// leaderOf returns the leader of shard as the running members see it: the
// one named with the highest term.
func (c *cluster) leaderOf(ctx context.Context, shard int) (string, error) {
	var leader string
	var term uint64
	var errs []error
	for _, id := range c.joined() {
		st, err := c.status(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, s := range st.Shards {
			if s.ID == shard && s.Leader != "" && s.Term >= term {
				leader, term = s.Leader, s.Term
			}
		}
	}
	if leader == "" {
		return "", fmt.Errorf("no member names a leader of shard %d: %w", shard, errors.Join(errs...))
	}
	return leader, nil
}

// settledState says what keeps the cluster from being settled ("" when it
// is): every member runs and answers; each names the same leader, a
// member, for every shard; every shard's voters are exactly the members;
// and leaderships are spread (each member leads ⌊S/N⌋ or ⌈S/N⌉ shards), so
// that the next fault does not meet a leadership transfer under way.
func (c *cluster) settledState(ctx context.Context) string {
	members := c.joined()
	want := slices.Clone(members)
	sort.Strings(want)
	leaders := map[int]string{}
	for _, id := range members {
		st, err := c.status(ctx, id)
		if err != nil {
			return err.Error()
		}
		if len(st.Shards) != c.shards {
			return fmt.Sprintf("%s reports %d shards, not %d", id, len(st.Shards), c.shards)
		}
		for _, s := range st.Shards {
			if s.Leader == "" {
				return fmt.Sprintf("%s sees no leader of shard %d", id, s.ID)
			}
			if l, ok := leaders[s.ID]; ok && l != s.Leader {
				return fmt.Sprintf("members disagree on the leader of shard %d (%s, %s)", s.ID, l, s.Leader)
			}
			leaders[s.ID] = s.Leader
			voters := slices.Clone(s.Voters)
			sort.Strings(voters)
			if !slices.Equal(voters, want) {
				return fmt.Sprintf("%s: shard %d has voters %v, want %v", id, s.ID, voters, want)
			}
		}
	}
	leads := map[string]int{}
	for _, l := range leaders {
		if !slices.Contains(members, l) {
			return fmt.Sprintf("leader %s is not a member", l)
		}
		leads[l]++
	}
	least, most := c.shards, 0
	for _, id := range members {
		least, most = min(least, leads[id]), max(most, leads[id])
	}
	if most-least > 1 {
		return fmt.Sprintf("leaderships not spread yet: %v", leads)
	}
	return ""
}

// waitSettled polls settledState until it is settled or timeout passes.
func (c *cluster) waitSettled(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		why := c.settledState(ctx)
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled after %v: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
