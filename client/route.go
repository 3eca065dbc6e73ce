package client

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"boxoffice"
)

// Routing writes to the leader.
//
// Any node takes any write, but a follower forwards it to the shard's
// leader: one more HTTP round trip on two nodes, which under an on-sale
// costs more CPU than the write itself. The nodes therefore say, on the
// answer to every write, which shard it went to (X-Boxoffice-Shard) and
// which node led that shard (X-Boxoffice-Leader, a node id), and every
// answer says which node gave it (X-Boxoffice-Node). A client learns from
// them, and sends its next write to that shard straight to the node that
// led it, if it is one of Config.Nodes. Ids name nodes, not addresses, so
// the hint holds however the client reaches the nodes (NAT, containers).
//
// A node's id is learnt from its own answers; a hint naming a node the
// client has not heard from yet starts one background look-up of the ids of
// the nodes it does not know (GET /healthz, which names the node), at most
// once per discoverEvery.
//
// The hint only picks the node a call starts at; everything else is as
// before: a node that fails or answers 503 is left for the next one, and the
// hint that sent the call there is forgotten. A stale hint costs one forward.

// routesMax bounds the events whose shard a client remembers; past it the
// table starts again (a miss costs one forward, not a failure).
const routesMax = 4096

// discoverEvery spaces the look-ups of node ids.
const discoverEvery = 10 * time.Second

type router struct {
	mu      sync.RWMutex
	nodeIdx map[string]int // node id → index in Client.nodes
	leader  map[int]string // shard → node id of its leader
	shardOf map[string]int // event id → shard

	// discover looks up the ids of the nodes the client has not heard
	// from; discovering guards that one runs at a time, and lastDiscover
	// (unix nanoseconds) spaces them.
	discover     func()
	discovering  atomic.Bool
	lastDiscover atomic.Int64
}

func newRouter(discover func()) *router {
	return &router{nodeIdx: map[string]int{}, leader: map[int]string{}, shardOf: map[string]int{}, discover: discover}
}

// Route hint headers (the server's names).
const (
	headerNode   = "X-Boxoffice-Node"
	headerShard  = "X-Boxoffice-Shard"
	headerLeader = "X-Boxoffice-Leader"
)

// target returns the shard a call addresses, when its path names it: an
// event's sub-resources name the event (its shard learnt from an earlier
// answer), holds and orders carry their shard in their id ("h_<shard>.…").
func (r *router) target(path string) (int, bool) {
	p, _, _ := strings.Cut(path, "?")
	parts := strings.Split(strings.TrimPrefix(p, "/v1/"), "/")
	if len(parts) < 2 {
		return 0, false
	}
	switch parts[0] {
	case "events":
		r.mu.RLock()
		shard, ok := r.shardOf[parts[1]]
		r.mu.RUnlock()
		return shard, ok
	case "holds", "orders":
		return boxoffice.ShardOfID(parts[1])
	}
	return 0, false
}

// start returns the index of the node a call to path should start at, if a
// hint names one.
func (r *router) start(path string) (int, bool) {
	shard, ok := r.target(path)
	if !ok {
		return 0, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.leader[shard]
	if !ok {
		return 0, false
	}
	i, ok := r.nodeIdx[id]
	if !ok {
		r.startDiscovery()
	}
	return i, ok
}

// startDiscovery runs r.discover in the background unless one runs or ran
// less than discoverEvery ago.
func (r *router) startDiscovery() {
	if r.discover == nil || time.Now().UnixNano()-r.lastDiscover.Load() < int64(discoverEvery) || !r.discovering.CompareAndSwap(false, true) {
		return
	}
	r.lastDiscover.Store(time.Now().UnixNano())
	go func() {
		defer r.discovering.Store(false)
		r.discover()
	}()
}

// known reports whether node i's id is known.
func (r *router) known(i int) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, j := range r.nodeIdx {
		if j == i {
			return true
		}
	}
	return false
}

// learn takes the hints of an answer from node i to a call to path.
func (r *router) learn(i int, path string, node, shard, leader string) {
	if node == "" && shard == "" {
		return
	}
	s, err := strconv.Atoi(shard)
	hasShard := err == nil && s >= 0 && leader != ""
	var event string
	if hasShard {
		if p, _, _ := strings.Cut(path, "?"); strings.HasPrefix(p, "/v1/events/") {
			event, _, _ = strings.Cut(p[len("/v1/events/"):], "/")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if node != "" && len(r.nodeIdx) < NodesMax {
		r.nodeIdx[node] = i
	}
	if !hasShard {
		return
	}
	if _, ok := r.nodeIdx[leader]; !ok {
		r.startDiscovery()
	}
	if len(r.leader) >= routesMax {
		clear(r.leader)
	}
	r.leader[s] = leader
	if event != "" {
		if len(r.shardOf) >= routesMax {
			clear(r.shardOf)
		}
		r.shardOf[event] = s
	}
}

// forget drops the leader hint that sent a call to path to a node that
// failed it.
func (r *router) forget(path string) {
	shard, ok := r.target(path)
	if !ok {
		return
	}
	r.mu.Lock()
	delete(r.leader, shard)
	r.mu.Unlock()
}
