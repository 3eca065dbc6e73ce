// Package faultnet is a switchboard between the nodes of an in-process test
// cluster: it drops or delays the traffic between chosen pairs of nodes, one
// way or both, and is switched at run time, so that a test can partition a
// cluster (a random split, the leader cut off from the majority) and heal it.
//
// It works on the dialing side only. Every connection between two nodes is
// dialed by one of them through Network.Dialer (raftnode.Config.Dial), which
// wraps it; the wrapper sees both directions of the connection (its writes
// go to the peer, its reads come from it), so wrapping the dialer's end is
// enough to cut either direction. Nothing is installed in production code:
// a node without a dialer set dials plainly.
//
// Semantics, per direction from→to:
//
//   - Dropped: bytes written from→to vanish (the write succeeds, as a send
//     into a black hole does). A connection that lost bytes stays lossy in
//     that direction until it is closed, since the stream is corrupt; Heal
//     closes every such connection, as TCP would reset it after its
//     retransmissions failed. A new connection from→to cannot be made while
//     the direction is dropped: the dial waits until the rules change or
//     its timeout ends (a SYN that gets no answer).
//   - Delayed: every write from→to (and every read of to's bytes on a
//     connection dialed by from) waits the delay first.
//
// Traffic that does not go through a Dialer (clients' HTTP, nodes' HTTP
// forwarding) is not affected.
package faultnet

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DelayMax bounds an injected delay: a fault, not a stall.
const DelayMax = 5 * time.Second

// Network is the switchboard. The zero value is not usable; call New.
type Network struct {
	mu      sync.Mutex
	nodes   map[string]string // address → node
	rules   map[link]rule
	conns   map[*conn]struct{}
	changed chan struct{} // closed (and replaced) whenever rules change
}

type link struct{ from, to string }

type rule struct {
	drop  bool
	delay time.Duration
}

// New returns a network with no faults.
func New() *Network {
	return &Network{
		nodes:   make(map[string]string),
		rules:   make(map[link]rule),
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
	}
}

// Register names the node listening at addr, so that connections dialed to
// addr are known to reach it. A node may have several addresses; registering
// an address again moves it to the new node.
func (n *Network) Register(node, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[addr] = node
}

// Nodes lists the registered nodes, sorted.
func (n *Network) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, node := range n.nodes {
		if !slices.Contains(out, node) {
			out = append(out, node)
		}
	}
	sort.Strings(out)
	return out
}

// Drop makes the traffic from→to vanish until Heal (or Restore).
func (n *Network) Drop(from, to string) {
	n.update(func() { n.setLocked(from, to, func(r *rule) { r.drop = true }) })
}

// DropBoth drops the traffic between a and b both ways.
func (n *Network) DropBoth(a, b string) {
	n.update(func() {
		n.setLocked(a, b, func(r *rule) { r.drop = true })
		n.setLocked(b, a, func(r *rule) { r.drop = true })
	})
}

// Delay makes every transfer from→to wait d first (0 removes the delay).
func (n *Network) Delay(from, to string, d time.Duration) {
	if d < 0 || d > DelayMax {
		panic(fmt.Sprintf("faultnet: delay %v out of range [0, %v]", d, DelayMax))
	}
	n.update(func() { n.setLocked(from, to, func(r *rule) { r.delay = d }) })
}

// Partition cuts the network into groups: traffic between nodes of
// different groups is dropped both ways, traffic within a group flows. A
// registered node in no group is cut off from every other node. It replaces
// the drops in force (delays stay).
func (n *Network) Partition(groups ...[]string) {
	group := make(map[string]int)
	for i, g := range groups {
		for _, node := range g {
			group[node] = i + 1
		}
	}
	nodes := n.Nodes()
	n.update(func() {
		for l := range n.rules {
			n.setLocked(l.from, l.to, func(r *rule) { r.drop = false })
		}
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && (group[a] == 0 || group[a] != group[b]) {
					n.setLocked(a, b, func(r *rule) { r.drop = true })
				}
			}
		}
	})
}

// Isolate cuts node off from every other registered node, both ways.
func (n *Network) Isolate(node string) {
	var rest []string
	for _, m := range n.Nodes() {
		if m != node {
			rest = append(rest, m)
		}
	}
	n.Partition([]string{node}, rest)
}

// Heal removes every fault and closes the connections that lost bytes, so
// that their ends reconnect rather than wait for their I/O timeouts.
func (n *Network) Heal() {
	var lossy []*conn
	n.update(func() {
		clear(n.rules)
		for c := range n.conns {
			if c.lostOut.Load() || c.lostIn.Load() {
				lossy = append(lossy, c)
			}
		}
	})
	for _, c := range lossy {
		c.Close()
	}
}

// Faulty reports whether any fault is in force.
func (n *Network) Faulty() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.rules) > 0
}

// String describes the faults in force, for logs: "n1→n2 drop, n3→n1 +50ms".
func (n *Network) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var parts []string
	for l, r := range n.rules {
		var what []string
		if r.drop {
			what = append(what, "drop")
		}
		if r.delay > 0 {
			what = append(what, "+"+r.delay.String())
		}
		parts = append(parts, fmt.Sprintf("%s→%s %s", l.from, l.to, strings.Join(what, " ")))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "healthy"
	}
	return strings.Join(parts, ", ")
}

func (n *Network) update(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fn()
	close(n.changed)
	n.changed = make(chan struct{})
}

func (n *Network) setLocked(from, to string, fn func(*rule)) {
	l := link{from, to}
	r := n.rules[l]
	fn(&r)
	if r == (rule{}) {
		delete(n.rules, l)
		return
	}
	n.rules[l] = r
}

// rule returns the rule of from→to and a channel closed at the next change.
func (n *Network) rule(from, to string) (rule, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rules[link{from, to}], n.changed
}

// Dialer returns the dial function of node: raftnode.Config.Dial.
func (n *Network) Dialer(node string) func(address string, timeout time.Duration) (net.Conn, error) {
	return func(address string, timeout time.Duration) (net.Conn, error) {
		return n.dial(node, address, timeout)
	}
}

func (n *Network) dial(from, address string, timeout time.Duration) (net.Conn, error) {
	n.mu.Lock()
	to, known := n.nodes[address]
	n.mu.Unlock()
	if !known {
		return net.DialTimeout("tcp", address, timeout)
	}
	deadline := time.Now().Add(timeout)
	for {
		r, changed := n.rule(from, to)
		if !r.drop {
			break
		}
		// The connection request gets no answer: wait for the rules to
		// change (a heal) or for the dial's timeout.
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errTimeout{from: from, to: to}}
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
	raw, err := net.DialTimeout("tcp", address, time.Until(deadline))
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: raw, nw: n, from: from, to: to}
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return c, nil
}

// errTimeout is a dial that timed out across a dropped link; it says so to
// net.Error callers.
type errTimeout struct{ from, to string }

func (e errTimeout) Error() string {
	return fmt.Sprintf("faultnet: %s→%s dropped: i/o timeout", e.from, e.to)
}
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

// conn is one connection dialed by from to to.
type conn struct {
	net.Conn
	nw       *Network
	from, to string
	// lostOut / lostIn: bytes of that direction were dropped; the stream
	// is corrupt from then on and stays lossy until closed.
	lostOut, lostIn atomic.Bool
	closed          atomic.Bool
	closeOnce       sync.Once
}

func (c *conn) Write(p []byte) (int, error) {
	r, _ := c.nw.rule(c.from, c.to)
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	if c.closed.Load() {
		// As a socket: a write after Close fails, dropped or not. (A
		// black hole that swallowed writes on a closed connection would
		// hide its closing from the writer, which TCP never does.)
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}
	}
	if r.drop || c.lostOut.Load() {
		c.lostOut.Store(true)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		k, err := c.Conn.Read(p)
		if k == 0 {
			return k, err
		}
		r, _ := c.nw.rule(c.to, c.from)
		if r.drop || c.lostIn.Load() {
			c.lostIn.Store(true)
			if err != nil {
				return 0, err
			}
			continue // never delivered: read on
		}
		if r.delay > 0 {
			time.Sleep(r.delay)
		}
		return k, err
	}
}

func (c *conn) Close() error {
	c.closed.Store(true)
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.nw.mu.Lock()
		delete(c.nw.conns, c)
		c.nw.mu.Unlock()
	})
	return err
}
