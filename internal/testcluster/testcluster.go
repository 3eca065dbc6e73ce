// Package testcluster runs a cluster of real nodes inside one test process:
// each node is a raftnode.Node (hashicorp/raft over loopback TCP, raft-boltdb
// and Pebble in temp dirs, fsync on) behind an httpapi.Server on its own
// loopback port. Nodes join the way `boxoffice serve --join` does, through the
// HTTP API, and can be stopped and restarted from their data dirs.
package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/api"
	"boxoffice/httpapi"
	"boxoffice/internal/faultnet"
	"boxoffice/payment"
	"boxoffice/raftnode"
)

// Secret signs the tokens of test clusters.
var Secret = []byte("test-secret-0123456789abcdef")

// Options shape a cluster.
type Options struct {
	Nodes  int
	Shards int
	// Tune adjusts each node's raft config (timings, snapshot thresholds).
	Tune func(*raftnode.Config)
	// Gateway is the payment provider every node calls; a healthy
	// simulated one (payment.Sim, 1 ms) if nil.
	Gateway boxoffice.PaymentGateway
	// TunePayment adjusts each node's checkout saga config.
	TunePayment func(*payment.Config)
	// TuneHTTP adjusts each node's HTTP server config (its logger, say).
	TuneHTTP func(*httpapi.Config)
	// Faults puts a faultnet.Network between the members' Raft ports
	// (Cluster.Net), through which a test partitions the cluster, cuts
	// links one way or delays them. Client and forwarded HTTP traffic is
	// not affected.
	Faults bool
}

// Member is one node of the cluster and its HTTP front end.
type Member struct {
	ID       string
	DataDir  string
	HTTPAddr string
	RaftAddr string
	Node     *raftnode.Node
	Server   *httpapi.Server
	Checkout *payment.Checkout
	running  bool
	removed  bool
}

// IsRunning reports whether the member is started.
func (m *Member) IsRunning() bool { return m.running }

// IsRemoved reports whether the member was removed from the cluster.
func (m *Member) IsRemoved() bool { return m.removed }

// Cluster is a set of members started by Start.
type Cluster struct {
	t       testing.TB
	opts    Options
	Members []*Member
	dir     string
	net     *faultnet.Network
}

// Start starts opts.Nodes nodes: the first bootstraps, the others join
// through the first one's HTTP API. It returns once every shard has a leader
// and every node is a voter of every shard.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Shards == 0 {
		opts.Shards = 2
	}
	if opts.Gateway == nil {
		sim, err := payment.NewSim(payment.SimConfig{LatencyMedian: time.Millisecond, Seed: 1})
		require.NoError(t, err)
		opts.Gateway = sim
	}
	c := &Cluster{t: t, opts: opts, dir: t.TempDir()}
	if opts.Faults {
		c.net = faultnet.New()
	}
	for i := 0; i < opts.Nodes; i++ {
		c.add(i == 0)
	}
	c.WaitReady()
	t.Cleanup(c.StopAll)
	return c
}

// AddNode starts one more node and joins it to the cluster.
func (c *Cluster) AddNode() *Member {
	m := c.add(false)
	c.WaitReady()
	return m
}

func (c *Cluster) add(bootstrap bool) *Member {
	t := c.t
	id := fmt.Sprintf("n%d", len(c.Members)+1)
	m := &Member{ID: id, DataDir: filepath.Join(c.dir, id), RaftAddr: freeAddr(t), HTTPAddr: freeAddr(t)}
	if c.net != nil {
		c.net.Register(m.ID, m.RaftAddr)
	}
	members := c.Running()
	c.Members = append(c.Members, m)
	c.startMember(m, bootstrap)
	if !bootstrap {
		// Join through the running members in turn, as `serve --join`
		// would through whichever one answers.
		self := boxoffice.Node{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr}
		var err error
		try := 0
		require.Eventually(t, func() bool {
			via := members[try%len(members)]
			try++
			code, body := c.Do(via, "POST", "/v1/cluster/members", AdminToken(), self)
			if code != 200 {
				err = fmt.Errorf("join %s via %s: %d %s", id, via.ID, code, body)
			}
			return code == 200
		}, 30*time.Second, 50*time.Millisecond, "join %s: %v", id, err)
	}
	return m
}

// Remove takes a running member out of every shard, through the API of the
// other running members in turn, then stops it. A removed member cannot be
// restarted.
func (c *Cluster) Remove(m *Member) {
	c.t.Helper()
	require.True(c.t, m.running, "%s is not running", m.ID)
	var others []*Member
	for _, o := range c.Running() {
		if o != m {
			others = append(others, o)
		}
	}
	require.NotEmpty(c.t, others, "cannot remove the last member")
	var err error
	try := 0
	require.Eventually(c.t, func() bool {
		via := others[try%len(others)]
		try++
		code, body := c.Do(via, "DELETE", "/v1/cluster/members/"+m.ID, AdminToken(), nil)
		if code != 200 {
			err = fmt.Errorf("remove %s via %s: %d %s", m.ID, via.ID, code, body)
		}
		return code == 200
	}, 30*time.Second, 50*time.Millisecond, "remove %s: %v", m.ID, err)
	c.Stop(m)
	m.removed = true
	// Its data is of no further use; long fault runs add and remove many
	// members.
	require.NoError(c.t, os.RemoveAll(m.DataDir))
}

// Net is the fault-injecting network between the members (Options.Faults),
// or nil.
func (c *Cluster) Net() *faultnet.Network { return c.net }

// ShardOf is the shard an event lives in.
func (c *Cluster) ShardOf(event string) int { return raftnode.ShardOf(event, c.opts.Shards) }

// TransferLeadership asks, through a running member's API, that shard's
// leadership move to the member to ("" for any other voter).
func (c *Cluster) TransferLeadership(shard int, to string) (int, []byte) {
	running := c.Running()
	require.NotEmpty(c.t, running)
	return c.Do(running[0], "POST", "/v1/cluster/transfer-leadership", AdminToken(), map[string]any{"shard": shard, "to": to})
}

// freeAddr reserves a loopback port by listening and closing.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Config is the raft config of a member, with test timings.
func (c *Cluster) Config(m *Member, bootstrap bool) raftnode.Config {
	cfg := raftnode.DefaultConfig()
	cfg.ID = m.ID
	cfg.DataDir = m.DataDir
	cfg.RaftBind = m.RaftAddr
	cfg.HTTPAddr = m.HTTPAddr
	cfg.Shards = c.opts.Shards
	cfg.Bootstrap = bootstrap
	if c.net != nil {
		cfg.Dial = c.net.Dialer(m.ID)
	}
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	cfg.ElectionTimeout = 300 * time.Millisecond
	cfg.LeaderLeaseTimeout = 150 * time.Millisecond
	cfg.RebalanceInterval = 500 * time.Millisecond
	if c.opts.Tune != nil {
		c.opts.Tune(&cfg)
	}
	return cfg
}

func (c *Cluster) startMember(m *Member, bootstrap bool) {
	t := c.t
	var node *raftnode.Node
	metrics := httpapi.NewMetrics()
	// The raft port may still be in TIME_WAIT use right after a stop.
	require.Eventually(t, func() bool {
		var err error
		cfg := c.Config(m, bootstrap)
		cfg.Observer = metrics
		node, err = raftnode.New(cfg)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "start %s", m.ID)
	pcfg := payment.DefaultConfig()
	pcfg.Observe = metrics.PaymentOutcome
	if c.opts.TunePayment != nil {
		c.opts.TunePayment(&pcfg)
	}
	checkout, err := payment.New(node, c.opts.Gateway, pcfg)
	require.NoError(t, err)
	checkout.Start()
	hcfg := httpapi.DefaultConfig()
	hcfg.AuthSecret = Secret
	hcfg.OpenAPI = api.OpenAPI()
	hcfg.Checkout = checkout
	hcfg.Metrics = metrics
	if c.opts.TuneHTTP != nil {
		c.opts.TuneHTTP(&hcfg)
	}
	srv, err := httpapi.New(node, hcfg)
	require.NoError(t, err)
	var ln net.Listener
	require.Eventually(t, func() bool {
		ln, err = net.Listen("tcp", m.HTTPAddr)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "listen %s", m.HTTPAddr)
	go srv.Serve(ln)
	m.Node, m.Server, m.Checkout, m.running = node, srv, checkout, true
}

// Stop shuts a member down cleanly (HTTP, then raft and Pebble).
func (c *Cluster) Stop(m *Member) {
	if !m.running {
		return
	}
	m.running = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.Server.Shutdown(ctx)
	m.Checkout.Close()
	require.NoError(c.t, m.Node.Close())
}

// Crash stops a member the hard way round: its Raft groups and Pebble close
// first, under requests still in flight (their writes fail, as a killed
// process's would), then its HTTP server. Its data dir keeps what was
// committed, as after a crash.
func (c *Cluster) Crash(m *Member) {
	if !m.running {
		return
	}
	m.running = false
	m.Checkout.Close()
	require.NoError(c.t, m.Node.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.Server.Shutdown(ctx)
}

// Restart starts a stopped member again from its data dir.
func (c *Cluster) Restart(m *Member) {
	require.False(c.t, m.running, "%s is running", m.ID)
	require.False(c.t, m.removed, "%s was removed from the cluster", m.ID)
	c.startMember(m, false)
}

// StopAll stops every running member.
func (c *Cluster) StopAll() {
	for _, m := range c.Members {
		c.Stop(m)
	}
}

// Running lists the running members.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m.running {
			out = append(out, m)
		}
	}
	return out
}

// WaitReady waits until every running member sees a leader for every shard
// and every running member is a voter of every shard.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		for _, m := range c.Running() {
			if !m.Node.IsVoter() {
				return false
			}
			for s := 0; s < c.opts.Shards; s++ {
				if _, ok := m.Node.LeaderNode(s); !ok {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "cluster not ready")
}

// Leader returns the running member that leads shard.
func (c *Cluster) Leader(shard int) *Member {
	c.t.Helper()
	var leader *Member
	require.Eventually(c.t, func() bool {
		for _, m := range c.Running() {
			if m.Node.IsLeader(shard) {
				leader = m
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader for shard %d", shard)
	return leader
}

// Follower returns a running member that does not lead shard.
func (c *Cluster) Follower(shard int) *Member {
	c.t.Helper()
	l := c.Leader(shard)
	for _, m := range c.Running() {
		if m != l {
			return m
		}
	}
	c.t.Fatalf("no follower of shard %d", shard)
	return nil
}

// Token mints a token for tests.
func Token(subject string, role httpapi.Role) string {
	tok, err := httpapi.MintToken(Secret, subject, role, time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}

// AdminToken is a token of role admin.
func AdminToken() string { return Token("admin", httpapi.RoleAdmin) }

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// Do sends a request to a member and returns the status and body. body may
// be nil, a string or []byte (sent as is), or a value to encode as JSON.
func (c *Cluster) Do(m *Member, method, path, token string, body any) (int, []byte) {
	code, b, _ := DoHeader(m.HTTPAddr, method, path, token, body)
	return code, b
}

// DoHeader is Do with the answer's headers, against any address.
func DoHeader(addr, method, path, token string, body any) (int, []byte, http.Header) {
	return DoHeaderWith(addr, method, path, token, body, nil)
}

// DoHeaderWith is DoHeader with extra request headers.
func DoHeaderWith(addr, method, path, token string, body any, headers map[string]string) (int, []byte, http.Header) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			panic(err)
		}
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, r)
	if err != nil {
		panic(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error()), nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

// Event is a small event for tests: sections A..(n) of rows×perRow seats.
func Event(id string, sections, rows, perRow int) map[string]any {
	var secs []map[string]any
	for i := 0; i < sections; i++ {
		secs = append(secs, map[string]any{"id": string(rune('A' + i)), "category": "std", "rows": rows, "seatsPerRow": perRow})
	}
	return map[string]any{
		"id": id, "name": "Test " + id,
		"categories": []map[string]any{{"id": "std", "name": "Standard", "priceCents": 5000}},
		"venue":      map[string]any{"sections": secs},
		"limits":     map[string]any{"maxSeatsPerBuyer": 8, "holdTTLSeconds": 300},
	}
}
