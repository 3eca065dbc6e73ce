package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// Fault kinds. One fault at a time, each healed (and the cluster settled)
// before the next begins.
const (
	// KindKill: SIGKILL a node's container (docker kill -s KILL), leave it
	// down for FaultHold, start it again. Alternately the leader of the
	// shard under load and a follower.
	KindKill = "kill"
	// KindPause: freeze a node (docker pause) for FaultHold: its
	// connections stay open and nothing answers. Leader and follower in turn.
	KindPause = "pause"
	// KindPartitionLeader: cut the leader of the shard under load off its
	// peers (docker network disconnect from the raft network) for
	// FaultHold; clients still reach it.
	KindPartitionLeader = "partition-leader"
	// KindPartition: a random split: a random minority of the members is
	// cut off from the rest (onto a network of its own, where the minority
	// still talks among itself).
	KindPartition = "partition"
	// KindRollingRestart: stop (SIGTERM, clean shutdown) and start every
	// member in turn, followers first, waiting for the cluster to settle
	// after each.
	KindRollingRestart = "rolling-restart"
	// KindMembership: add the spare node (it joins through the API), or,
	// when it is a member, remove it (DELETE /v1/cluster/members) and
	// delete its container and volume.
	KindMembership = "membership"
)

// Kinds lists the fault kinds; a cycle of the schedule runs each once,
// membership twice (add, then remove).
var Kinds = []string{KindKill, KindPause, KindPartitionLeader, KindPartition, KindRollingRestart, KindMembership}

// FaultRecord is one fault as it happened.
type FaultRecord struct {
	Kind string `json:"kind"`
	// Action says what was done ("kill n2", "add spare").
	Action  string   `json:"action"`
	Targets []string `json:"targets"`
	// Shard is the shard under load when the fault began, Leader its
	// leader then (as the members said), and LeaderHit whether the fault
	// struck it: then a failover is expected and measured.
	Shard     int    `json:"shard"`
	Leader    string `json:"leader"`
	LeaderHit bool   `json:"leaderHit"`
	// Start: the fault began; Healed: it was undone; Settled: the cluster
	// was settled again (see cluster.settledState).
	Start   time.Time `json:"start"`
	Healed  time.Time `json:"healed"`
	Settled time.Time `json:"settled"`
	// Failover is measured from the acks (Failover); zero when not
	// measured, with FailoverNote saying why.
	FailoverS float64 `json:"failoverSeconds,omitempty"`
	NewLeader string  `json:"newLeader,omitempty"`
	// OldLastAckS and NewFirstAckS are the old leader's last ack and the
	// new one's first, in seconds after Start.
	OldLastAckS  float64 `json:"oldLastAckSeconds,omitempty"`
	NewFirstAckS float64 `json:"newFirstAckSeconds,omitempty"`
	FailoverNote string  `json:"failoverNote,omitempty"`
	// FailedWrites are the writes that failed (late or never answered)
	// whose first try began between this fault's start and the next's.
	FailedWrites int `json:"failedWrites"`
	// Err is set when a step failed (the cluster then may not have settled).
	Err string `json:"err,omitempty"`
}

// nemesis injects the faults, one at a time.
type nemesis struct {
	c   *cluster
	cfg *Config
	rng *rand.Rand
	// shard returns the shard the load is on now.
	shard func() int
	logf  func(format string, args ...any)
	// turn counts the faults of each kind, to alternate targets.
	turn map[string]int
	// spareReady, when set, yields the outcome of creating the spare
	// again after its removal.
	spareReady chan error
	// order is the rest of the current cycle of the schedule; cycles
	// counts the cycles begun.
	order  []string
	cycles int
}

// firstCycle is the order of the first cycle: every kind once, the long
// ones early, so that a short run meets each kind; later cycles are
// shuffled with the run's seed.
var firstCycle = []string{KindKill, KindRollingRestart, KindPause, KindMembership, KindPartitionLeader, KindPartition, KindMembership}

// next picks the next kind: the first cycle in firstCycle's order, then
// cycles of every kind (membership twice: add, remove), shuffled.
func (n *nemesis) next() string {
	if len(n.order) == 0 {
		var kinds []string
		cycle := firstCycle
		if n.cycles > 0 {
			cycle = append(slices.Clone(Kinds), KindMembership)
		}
		for _, k := range cycle {
			if slices.Contains(n.cfg.Kinds, k) && (k != KindMembership || n.cfg.Spare != "") {
				kinds = append(kinds, k)
			}
		}
		if n.cycles > 0 {
			n.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		}
		n.cycles++
		n.order = kinds
	}
	k := n.order[0]
	n.order = n.order[1:]
	return k
}

// inject runs one fault of kind to its heal and the cluster's settling,
// and returns what happened (a rolling restart is one record per node).
func (n *nemesis) inject(ctx context.Context, kind string) []FaultRecord {
	turn := n.turn[kind]
	n.turn[kind]++
	switch kind {
	case KindKill, KindPause:
		return []FaultRecord{n.single(ctx, kind, turn%2 == 0)}
	case KindPartitionLeader:
		return []FaultRecord{n.single(ctx, kind, true)}
	case KindPartition:
		return []FaultRecord{n.partition(ctx)}
	case KindRollingRestart:
		return n.rollingRestart(ctx)
	case KindMembership:
		return []FaultRecord{n.membership(ctx)}
	}
	return []FaultRecord{{Kind: kind, Err: "unknown fault kind"}}
}

// begin fills a record's shard and leader and picks a target: the leader,
// or a random other member.
func (n *nemesis) begin(ctx context.Context, kind string, leader bool) (FaultRecord, string) {
	f := FaultRecord{Kind: kind, Shard: n.shard()}
	l, err := n.c.leaderOf(ctx, f.Shard)
	if err != nil {
		f.Err = err.Error()
		return f, ""
	}
	f.Leader = l
	if leader {
		return f, l
	}
	others := slices.DeleteFunc(n.c.joined(), func(id string) bool { return id == l })
	if len(others) == 0 {
		return f, l
	}
	return f, others[n.rng.IntN(len(others))]
}

// single runs kill, pause or partition-leader on one node.
func (n *nemesis) single(ctx context.Context, kind string, atLeader bool) FaultRecord {
	f, target := n.begin(ctx, kind, atLeader)
	if target == "" {
		return f
	}
	f.Targets, f.LeaderHit = []string{target}, target == f.Leader
	m := n.c.node(target)
	d := n.c.docker
	var inject, heal func(context.Context) error
	switch kind {
	case KindKill:
		f.Action = "kill -s KILL " + target
		inject = func(ctx context.Context) error {
			err := d.Kill(ctx, m.container)
			n.c.down(target)
			return err
		}
		heal = func(ctx context.Context) error {
			if err := d.Start(ctx, m.container); err != nil {
				return err
			}
			return n.c.refresh(ctx, target)
		}
	case KindPause:
		f.Action = "pause " + target
		inject = func(ctx context.Context) error {
			n.c.mu.Lock()
			m.paused = true
			n.c.mu.Unlock()
			return d.Pause(ctx, m.container)
		}
		heal = func(ctx context.Context) error {
			err := d.Unpause(ctx, m.container)
			n.c.mu.Lock()
			m.paused = false
			n.c.mu.Unlock()
			return err
		}
	case KindPartitionLeader:
		f.Action = "isolate " + target + " from its peers"
		inject = func(ctx context.Context) error { return d.Disconnect(ctx, raftNet, m.container) }
		heal = func(ctx context.Context) error { return d.Connect(ctx, raftNet, m.container, raftAliasPrefix+target) }
	}
	n.run(ctx, &f, inject, heal)
	return f
}

// partition cuts a random minority off the rest.
func (n *nemesis) partition(ctx context.Context) FaultRecord {
	f, _ := n.begin(ctx, KindPartition, true)
	if f.Err != "" {
		return f
	}
	members := n.c.joined()
	k := 1 + n.rng.IntN((len(members)-1)/2) // 1 .. minority size
	perm := n.rng.Perm(len(members))
	for _, i := range perm[:k] {
		f.Targets = append(f.Targets, members[i])
	}
	slices.Sort(f.Targets)
	f.LeaderHit = slices.Contains(f.Targets, f.Leader)
	f.Action = fmt.Sprintf("split %v | rest", f.Targets)
	d := n.c.docker
	side := len(f.Targets) > 1 // a minority of one needs no network of its own
	inject := func(ctx context.Context) error {
		if side {
			if err := n.ensureSide(ctx); err != nil {
				return err
			}
		}
		for _, id := range f.Targets {
			m := n.c.node(id)
			if err := d.Disconnect(ctx, raftNet, m.container); err != nil {
				return err
			}
			if side {
				if err := d.Connect(ctx, sideNet, m.container, raftAliasPrefix+id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	heal := func(ctx context.Context) error {
		var errs []error
		for _, id := range f.Targets {
			m := n.c.node(id)
			if side {
				errs = append(errs, d.Disconnect(ctx, sideNet, m.container))
			}
			errs = append(errs, d.Connect(ctx, raftNet, m.container, raftAliasPrefix+id))
		}
		return errors.Join(errs...)
	}
	n.run(ctx, &f, inject, heal)
	return f
}

func (n *nemesis) ensureSide(ctx context.Context) error {
	if err := n.c.docker.RemoveNetwork(ctx, sideNet); err != nil {
		return err
	}
	return n.c.docker.CreateNetwork(ctx, sideNet)
}

// rollingRestart stops and starts every member in turn, the leader of the
// shard under load last (as an operator would: one leadership change).
func (n *nemesis) rollingRestart(ctx context.Context) []FaultRecord {
	first, _ := n.begin(ctx, KindRollingRestart, true)
	if first.Err != "" {
		return []FaultRecord{first}
	}
	order := slices.DeleteFunc(n.c.joined(), func(id string) bool { return id == first.Leader })
	order = append(order, first.Leader)
	var out []FaultRecord
	for i, id := range order {
		f := first
		if i > 0 {
			f, _ = n.begin(ctx, KindRollingRestart, true)
			if f.Err != "" {
				out = append(out, f)
				return out
			}
		}
		f.Targets, f.LeaderHit = []string{id}, id == f.Leader
		f.Action = fmt.Sprintf("restart %s (%d/%d)", id, i+1, len(order))
		m := n.c.node(id)
		d := n.c.docker
		inject := func(ctx context.Context) error {
			err := d.Stop(ctx, m.container, stopGrace)
			n.c.down(id)
			if err != nil {
				return err
			}
			if err := d.Start(ctx, m.container); err != nil {
				return err
			}
			return n.c.refresh(ctx, id)
		}
		n.runNoHold(ctx, &f, inject)
		out = append(out, f)
		if f.Err != "" {
			return out
		}
	}
	return out
}

// stopGrace is how long a clean stop may take before Docker kills: serve
// drains HTTP and hands off leaderships within ~15 s.
const stopGrace = 30 * time.Second

// membership adds the spare, or removes it when it is a member.
func (n *nemesis) membership(ctx context.Context) FaultRecord {
	spare := n.cfg.Spare
	f, _ := n.begin(ctx, KindMembership, true)
	if f.Err != "" {
		return f
	}
	f.Targets = []string{spare}
	d := n.c.docker
	if m := n.c.node(spare); !m.joined {
		f.Action = "add " + spare
		inject := func(ctx context.Context) error {
			// Its container was created empty beforehand (Run, and the
			// removal below): adding it is starting it. It joins by
			// itself (BOXOFFICE_JOIN).
			if n.spareReady != nil {
				err := <-n.spareReady
				n.spareReady = nil
				if err != nil {
					return fmt.Errorf("create %s again: %w", spare, err)
				}
			}
			n.c.mu.Lock()
			ctr := m.container
			n.c.mu.Unlock()
			if err := d.Start(ctx, ctr); err != nil {
				return err
			}
			if err := n.c.refresh(ctx, spare); err != nil {
				return err
			}
			// From now on the cluster is settled only once it votes
			// everywhere.
			n.c.mu.Lock()
			m.joined = true
			n.c.mu.Unlock()
			return nil
		}
		n.runNoHold(ctx, &f, inject)
		return f
	}
	f.Action = "remove " + spare
	f.LeaderHit = f.Leader == spare
	inject := func(ctx context.Context) error {
		if err := n.removeMember(ctx, spare); err != nil {
			return err
		}
		m := n.c.node(spare)
		n.c.mu.Lock()
		m.joined = false
		n.c.mu.Unlock()
		n.c.down(spare)
		// No longer a member: no clean stop is owed. Delete it with its
		// volume, and create it again, empty, for the next add; that takes
		// docker-compose seconds, so it runs while the cluster settles
		// and the next add waits for it.
		if err := d.Remove(ctx, spare); err != nil {
			return err
		}
		done := make(chan error, 1)
		n.spareReady = done
		go func() { done <- n.c.createSpare(context.WithoutCancel(ctx), spare) }()
		return nil
	}
	n.runNoHold(ctx, &f, inject)
	return f
}

// removeMember asks the members, in turn, to remove id from every shard,
// until one succeeds (an election may be under way) or removeTimeout.
func (n *nemesis) removeMember(ctx context.Context, id string) error {
	// One try removes the node from every shard in turn, each a
	// membership change through its leader.
	const removeTryTimeout = 20 * time.Second
	const removeTimeout = 60 * time.Second
	deadline := time.Now().Add(removeTimeout)
	var last error
	for try := 0; time.Now().Before(deadline); try++ {
		others := slices.DeleteFunc(n.c.joined(), func(m string) bool { return m == id })
		via := n.c.node(others[try%len(others)])
		n.c.mu.Lock()
		ip := via.ip
		n.c.mu.Unlock()
		if last = n.c.call(ctx, removeTryTimeout, http.MethodDelete, ip, "/v1/cluster/members/"+id, nil); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("remove %s: %w", id, last)
}

// run injects, holds the fault for FaultHold, heals and waits for the
// cluster to settle, filling f's times.
func (n *nemesis) run(ctx context.Context, f *FaultRecord, inject, heal func(context.Context) error) {
	n.logf("fault: %s (shard %d, leader %s)", f.Action, f.Shard, f.Leader)
	f.Start = time.Now()
	ierr := inject(ctx)
	if ierr == nil {
		select {
		case <-ctx.Done():
		case <-time.After(n.cfg.FaultHold):
		}
	}
	// Heal even after a failed or interrupted inject: half of it may
	// have happened. The heal gets its own context: an interrupted run
	// still leaves the cluster whole for the end-of-run checks.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	herr := heal(hctx)
	f.Healed = time.Now()
	if err := errors.Join(ierr, herr); err != nil {
		f.Err = err.Error()
	}
	n.settle(hctx, f)
}

// runNoHold is run for faults that are their own heal (a restart, a
// membership change).
func (n *nemesis) runNoHold(ctx context.Context, f *FaultRecord, do func(context.Context) error) {
	n.logf("fault: %s (shard %d, leader %s)", f.Action, f.Shard, f.Leader)
	f.Start = time.Now()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := do(hctx); err != nil {
		f.Err = err.Error()
	}
	f.Healed = time.Now()
	n.settle(hctx, f)
}

func (n *nemesis) settle(ctx context.Context, f *FaultRecord) {
	if err := n.c.waitSettled(ctx, n.cfg.SettleTimeout); err != nil {
		f.Err = errors.Join(errorOf(f.Err), err).Error()
		n.logf("fault: %s: %s", f.Action, f.Err)
		return
	}
	f.Settled = time.Now()
	n.logf("fault: %s healed after %.1fs, settled after %.1fs", f.Action, f.Healed.Sub(f.Start).Seconds(), f.Settled.Sub(f.Start).Seconds())
}

func errorOf(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}
