package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"

	"boxoffice"
	"boxoffice/client"
)

// The etcd peer: the same on-sale against a 3-member etcd cluster, every
// seat a key and every write one transaction on the seat keys.
//
// A seat's value says its state, and is built so that one comparison per
// seat tells whether it may be held:
//
//	F                                   free
//	H<expiresAtMs, 16 digits>|<hold>|<buyer>   held until expiresAtMs
//	S|<order>                           sold
//
// "F" < "H…" < "S…", and two held values compare by their expiry, so
// "free, or held by a hold that expired before now" is exactly
// value < "H" + now (16 digits). A hold is one transaction: if every seat's
// value is below that, put the hold's value on each; else nothing. A release
// or a purchase compares each seat's value with the hold's own value (still
// ours) and puts "F" or "S|<order>" (and the order's key) on each. Time is
// the bench's clock, as the leader's clock is boxoffice's: every client of
// the on-sale runs in the bench's one process.
//
// Ids come from the bench's keys (a hold's id is its key, an order's is
// "o-" and its hold's), so a write sent again after a lost answer finds
// its own effects and answers as the first time did: that is the peers'
// idempotency, which boxoffice gets from its Idempotency-Key records.

// etcdTxnOpsMax is etcd's default --max-txn-ops: a hold's seats, and a
// purchase's seats and order, stay below it.
const etcdTxnOpsMax = 128

// EtcdConfig configures the etcd cluster the bench starts.
type EtcdConfig struct {
	// Binary is the etcd executable; empty: FindEtcd.
	Binary string
	// Members is the cluster's size.
	Members int
	// StartTimeout bounds the start (every member up, a leader elected).
	StartTimeout time.Duration
	// Log receives a line per phase; nil: none.
	Log io.Writer
}

// DefaultEtcdConfig is a 3-member cluster with etcd's own defaults (fsync
// on every commit, 100 ms heartbeat, 1 s election timeout).
func DefaultEtcdConfig() EtcdConfig {
	return EtcdConfig{Members: 3, StartTimeout: 60 * time.Second}
}

// Validate lists every problem of the config at once.
func (c EtcdConfig) Validate() error {
	var errs []error
	if c.Members < 1 || c.Members > 9 {
		errs = append(errs, fmt.Errorf("etcd: Members %d out of range 1..9", c.Members))
	}
	if c.StartTimeout < time.Second || c.StartTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("etcd: StartTimeout %v out of range [1s, 10m]", c.StartTimeout))
	}
	return errors.Join(errs...)
}

// FindEtcd finds the etcd binary: $BOXOFFICE_ETCD, else etcd in $GOBIN or
// $(go env GOPATH)/bin (where `make etcd` installs it), else on $PATH.
func FindEtcd() (string, error) {
	if p := os.Getenv("BOXOFFICE_ETCD"); p != "" {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, "etcd")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	return "", errors.New("etcd not found in $GOBIN, $(go env GOPATH)/bin or $PATH: run `make etcd` (or set BOXOFFICE_ETCD)")
}

// goBinDirs are where `go install` puts binaries: $GOBIN, else the first
// GOPATH entry's bin ($HOME/go/bin by default).
func goBinDirs() []string {
	var out []string
	if b := os.Getenv("GOBIN"); b != "" {
		out = append(out, b)
	}
	gp := os.Getenv("GOPATH")
	if gp == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gp = filepath.Join(home, "go")
		}
	}
	if gp != "" {
		out = append(out, filepath.Join(filepath.SplitList(gp)[0], "bin"))
	}
	return out
}

// EtcdCluster is etcd members the bench started on loopback ports, each in
// its own process and data dir under one temp dir.
type EtcdCluster struct {
	dir        string
	version    string
	names      []string
	clientURLs []string
	procs      []*procHandle
}

// StartEtcd starts cfg.Members etcd members and waits until they answer a
// linearizable read (a leader is elected).
func StartEtcd(ctx context.Context, cfg EtcdConfig) (*EtcdCluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = FindEtcd(); err != nil {
			return nil, err
		}
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("etcd --version (%s): %w", bin, err)
	}
	dir, err := os.MkdirTemp("", "boxoffice-bench-etcd-")
	if err != nil {
		return nil, err
	}
	c := &EtcdCluster{dir: dir, version: etcdVersion(string(out))}
	fail := func(err error) (*EtcdCluster, error) {
		c.Stop(cfg.Log, true)
		return nil, err
	}
	peerURLs := make([]string, cfg.Members)
	var initial []string
	for i := range peerURLs {
		ca, err1 := freeLoopbackAddr()
		pa, err2 := freeLoopbackAddr()
		if err := errors.Join(err1, err2); err != nil {
			return fail(err)
		}
		name := fmt.Sprintf("e%d", i+1)
		c.names = append(c.names, name)
		c.clientURLs = append(c.clientURLs, "http://"+ca)
		peerURLs[i] = "http://" + pa
		initial = append(initial, name+"="+peerURLs[i])
	}
	token := filepath.Base(dir)
	for i, name := range c.names {
		args := []string{
			"--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", c.clientURLs[i], "--advertise-client-urls", c.clientURLs[i],
			"--listen-peer-urls", peerURLs[i], "--initial-advertise-peer-urls", peerURLs[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token, "--log-level", "warn",
		}
		p, err := startProc(bin, args, filepath.Join(dir, name+".log"), nil)
		if err != nil {
			return fail(err)
		}
		c.procs = append(c.procs, p)
	}
	logLine(cfg.Log, "starting etcd %s, %d members (fsync on, etcd's defaults) in %s ...", c.version, cfg.Members, dir)
	wctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	cli, err := newEtcdClient(c.clientURLs)
	if err != nil {
		return fail(err)
	}
	defer cli.Close()
	for {
		rctx, rcancel := context.WithTimeout(wctx, 2*time.Second)
		_, err := cli.Get(rctx, "/bo/ready")
		rcancel()
		if err == nil {
			return c, nil
		}
		for i, p := range c.procs {
			if p.exited() {
				return fail(fmt.Errorf("etcd member %s exited at start; see %s", c.names[i], filepath.Join(dir, c.names[i]+".log")))
			}
		}
		select {
		case <-wctx.Done():
			return fail(fmt.Errorf("etcd did not answer a linearizable read within %v: %w; see the logs in %s", cfg.StartTimeout, err, dir))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// etcdVersion picks "3.7.3" out of `etcd --version`.
func etcdVersion(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "etcd Version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// Endpoints are the members' client URLs.
func (c *EtcdCluster) Endpoints() []string { return append([]string(nil), c.clientURLs...) }

// PIDs and Names are the members' processes, for the CPU figures.
func (c *EtcdCluster) PIDs() []int { return pidsOf(c.procs) }

// Names names the members, in PIDs' order.
func (c *EtcdCluster) Names() []string { return append([]string(nil), c.names...) }

// Note describes the cluster for the reports.
func (c *EtcdCluster) Note() string {
	return fmt.Sprintf("etcd %s, %d members on loopback, fsync on (etcd's defaults), one transaction per write", c.version, len(c.names))
}

// Stop stops the members one by one (SIGTERM, then SIGKILL after 20 s)
// and removes the data dir unless keep. One by one: a leader that stops
// hands its lead to a live member at once, while members stopped together
// took seconds each, handing it to members that were going away.
func (c *EtcdCluster) Stop(log io.Writer, keep bool) {
	for _, p := range c.procs {
		stopProcs([]*procHandle{p}, 20*time.Second)
	}
	if keep {
		logLine(log, "etcd's data and logs are in %s", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}

// System connects to the cluster: one client per member, user i's writes
// sent to member i mod n, as boxoffice's users are spread over its nodes.
func (c *EtcdCluster) System() (*EtcdSystem, error) {
	s := &EtcdSystem{members: c.names, ttl: map[string]time.Duration{}}
	for _, u := range c.clientURLs {
		cli, err := newEtcdClient([]string{u})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.clients = append(s.clients, cli)
	}
	return s, nil
}

func newEtcdClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// EtcdSystem is the on-sale on etcd.
type EtcdSystem struct {
	clients []*clientv3.Client
	members []string
	mu      sync.Mutex
	ttl     map[string]time.Duration // event → hold TTL
	charge  *chargeSim
}

// SimulatePayment makes every purchase wait a simulated card charge first
// (log-normal, median and spread as boxoffice's simulated gateway), so that
// a purchase costs the same wait on every system; median 0: none.
func (s *EtcdSystem) SimulatePayment(median time.Duration, spread float64, seed uint64) {
	s.charge = newChargeSim(median, spread, seed)
}

var (
	_ System          = (*EtcdSystem)(nil)
	_ clusterReporter = (*EtcdSystem)(nil)
)

func (s *EtcdSystem) Name() string { return SystemEtcd }

// Workloads: holds name their seats (best-available would need the store
// to pick seats, which the peers do not).
func (s *EtcdSystem) Workloads() []string {
	return []string{WorkloadOnsale, WorkloadRush, WorkloadMulti}
}

func (s *EtcdSystem) Close() {
	for _, c := range s.clients {
		c.Close()
	}
}

func etcdSeatPrefix(event string) string  { return "/bo/" + event + "/seat/" }
func etcdOrderPrefix(event string) string { return "/bo/" + event + "/order/" }

// etcdHeld is a held seat's value.
func etcdHeld(expiresAtMs int64, hold, buyer string) string {
	return etcdHeldBelow(expiresAtMs) + "|" + hold + "|" + buyer
}

// etcdHeldBelow is the bound below which a seat may be held at nowMs.
func etcdHeldBelow(nowMs int64) string { return fmt.Sprintf("H%016d", nowMs) }

// etcdSeat decodes a seat's value: its state at nowMs (an expired hold's
// seat is free), and its hold or order.
func etcdSeat(v string, nowMs int64) (state, hold string, expiresAtMs int64, order string) {
	switch {
	case v == "F":
		return client.SeatFree, "", 0, ""
	case strings.HasPrefix(v, "S|"):
		return client.SeatSold, "", 0, v[2:]
	case strings.HasPrefix(v, "H") && len(v) > 17:
		exp, err := strconv.ParseInt(v[1:17], 10, 64)
		rest := strings.SplitN(v[17:], "|", 3)
		if err != nil || len(rest) != 3 {
			return "corrupt", "", 0, ""
		}
		if exp < nowMs {
			return client.SeatFree, rest[1], exp, ""
		}
		return client.SeatHeld, rest[1], exp, ""
	}
	return "corrupt", "", 0, ""
}

// etcdOrder is an order as the etcd peer stores it.
type etcdOrder struct {
	ID    string   `json:"id"`
	Event string   `json:"event"`
	Hold  string   `json:"hold"`
	Buyer string   `json:"buyer"`
	Seats []string `json:"seats"`
	State string   `json:"state"`
}

func (o etcdOrder) order() *client.Order {
	return &client.Order{ID: o.ID, Event: o.Event, Hold: o.Hold, Buyer: o.Buyer, Seats: o.Seats, State: o.State}
}

// etcdErr marks an etcd call's error: its outcome is unknown.
func etcdErr(err error) error {
	if err == nil {
		return nil
	}
	code := "etcd"
	if st, ok := status.FromError(err); ok {
		code = "etcd_" + strings.ToLower(st.Code().String())
	}
	return &peerError{code: code, err: err}
}

// CreateEvent puts every seat of ev's layout, free, in transactions of
// etcdTxnOpsMax puts, 16 at once.
func (s *EtcdSystem) CreateEvent(ctx context.Context, ev *client.Event) error {
	layout := layoutOf(ev)
	s.mu.Lock()
	s.ttl[ev.ID] = time.Duration(ev.Limits.HoldTTLSeconds) * time.Second
	s.mu.Unlock()
	prefix := etcdSeatPrefix(ev.ID)
	n := layout.Capacity()
	var ops [][]clientv3.Op
	for lo := 0; lo < n; lo += etcdTxnOpsMax {
		var batch []clientv3.Op
		for i := lo; i < min(lo+etcdTxnOpsMax, n); i++ {
			batch = append(batch, clientv3.OpPut(prefix+layout.ID(i), "F"))
		}
		ops = append(ops, batch)
	}
	return parallel(ctx, len(ops), 16, func(ctx context.Context, i int) error {
		_, err := s.clients[i%len(s.clients)].Txn(ctx).Then(ops[i]...).Commit()
		return etcdErr(err)
	})
}

// SeatMap is a range read of the event's seats: serializable (the member's
// own state, which may lag its leader) unless q.Strong.
func (s *EtcdSystem) SeatMap(ctx context.Context, event string, q client.SeatQuery) (client.SeatMap, error) {
	var opts []clientv3.OpOption
	opts = append(opts, clientv3.WithPrefix())
	if !q.Strong {
		opts = append(opts, clientv3.WithSerializable())
	}
	prefix := etcdSeatPrefix(event)
	resp, err := s.clients[0].Get(ctx, prefix, opts...)
	if err != nil {
		return client.SeatMap{}, etcdErr(err)
	}
	now := time.Now().UnixMilli()
	m := client.SeatMap{Event: event, Index: uint64(resp.Header.Revision), Seats: make([]client.Seat, 0, len(resp.Kvs))}
	for _, kv := range resp.Kvs {
		st, _, _, _ := etcdSeat(string(kv.Value), now)
		if q.Status == "" || q.Status == st {
			m.Seats = append(m.Seats, client.Seat{ID: string(kv.Key[len(prefix):]), State: st})
		}
	}
	return m, nil
}

func (s *EtcdSystem) Sold(ctx context.Context, event string) (int, error) {
	m, err := s.SeatMap(ctx, event, client.SeatQuery{Status: client.SeatSold, Strong: true})
	return len(m.Seats), err
}

// Cluster reports etcd's one Raft group as shard 0: its leader and term.
func (s *EtcdSystem) Cluster(ctx context.Context) (client.ClusterStatus, error) {
	cli := s.clients[0]
	st, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		return client.ClusterStatus{}, err
	}
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return client.ClusterStatus{}, err
	}
	leader := strconv.FormatUint(st.Leader, 16)
	for _, m := range ml.Members {
		if m.ID == st.Leader {
			leader = m.Name
		}
	}
	return client.ClusterStatus{Shards: []client.ShardStatus{{ID: 0, Leader: leader, Term: st.RaftTerm}}}, nil
}

func (s *EtcdSystem) Buyer(user int, subject string) (Buyer, error) {
	return &etcdBuyer{s: s, cli: s.clients[user%len(s.clients)], subject: subject}, nil
}

func (s *EtcdSystem) holdTTL(event string) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl, ok := s.ttl[event]
	if !ok {
		return 0, boxoffice.Errorf(boxoffice.CodeEventNotFound, "event %s was not created by this bench", event)
	}
	return ttl, nil
}

// ReadState reads every seat and every order of the event (linearizable),
// in one revision.
func (s *EtcdSystem) ReadState(ctx context.Context, event string, _ []OrderRecord) (*ServerState, error) {
	cli := s.clients[0]
	seats, err := cli.Get(ctx, etcdSeatPrefix(event), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read the seats: %w", err)
	}
	rev := seats.Header.Revision
	orders, err := cli.Get(ctx, etcdOrderPrefix(event), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read the orders: %w", err)
	}
	now := time.Now().UnixMilli()
	st := &ServerState{Index: uint64(rev), Orders: map[string]*client.Order{}, OrderErrors: map[string]string{}, SeatOrders: map[string]string{}}
	prefix := etcdSeatPrefix(event)
	for _, kv := range seats.Kvs {
		id := string(kv.Key[len(prefix):])
		state, _, _, order := etcdSeat(string(kv.Value), now)
		st.Seats = append(st.Seats, client.Seat{ID: id, State: state})
		if order != "" {
			st.SeatOrders[id] = order
		}
	}
	for _, kv := range orders.Kvs {
		var o etcdOrder
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			return nil, fmt.Errorf("order %s: %w", kv.Key, err)
		}
		st.Orders[o.ID] = o.order()
		st.AllOrders = append(st.AllOrders, o.order())
	}
	return st, nil
}

// etcdBuyer is one buyer's writes, sent to one member.
type etcdBuyer struct {
	s       *EtcdSystem
	cli     *clientv3.Client
	subject string
}

// Hold is one transaction: every seat free or expired at now → each held
// by this hold. A hold whose answer was lost finds its seats held by itself
// when it is sent again (its id is its key), and answers as the first time.
func (b *etcdBuyer) Hold(ctx context.Context, key, event string, req client.HoldRequest) (*client.Hold, error) {
	if len(req.Seats) == 0 || len(req.Seats) > PicksMaxMax {
		return nil, fmt.Errorf("etcd hold of %d seats: %w", len(req.Seats), errUnsupported)
	}
	ttl, err := b.s.holdTTL(event)
	if err != nil {
		return nil, err
	}
	if req.TTL > 0 {
		ttl = req.TTL
	}
	now := time.Now().UnixMilli()
	exp := now + ttl.Milliseconds()
	prefix := etcdSeatPrefix(event)
	val, below := etcdHeld(exp, key, b.subject), etcdHeldBelow(now)
	cmps := make([]clientv3.Cmp, len(req.Seats))
	puts := make([]clientv3.Op, len(req.Seats))
	gets := make([]clientv3.Op, len(req.Seats))
	for i, seat := range req.Seats {
		k := prefix + seat
		cmps[i] = clientv3.Compare(clientv3.Value(k), "<", below)
		puts[i] = clientv3.OpPut(k, val)
		gets[i] = clientv3.OpGet(k)
	}
	resp, err := b.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
	if err != nil {
		return nil, etcdErr(err)
	}
	h := &client.Hold{ID: key, Event: event, Buyer: b.subject, Seats: req.Seats, ExpiresAt: time.UnixMilli(exp), State: client.HoldActive}
	if resp.Succeeded {
		return h, nil
	}
	// Held already by this very hold (an earlier send of it)?
	first := int64(-1)
	for _, r := range resp.Responses {
		kvs := r.GetResponseRange().Kvs
		if len(kvs) != 1 {
			return nil, boxoffice.Errorf(boxoffice.CodeSeatNotFound, "a seat of %v is not in event %s", req.Seats, event)
		}
		_, hold, e, _ := etcdSeat(string(kvs[0].Value), 0)
		if hold != key || (first >= 0 && e != first) {
			return nil, boxoffice.Errorf(boxoffice.CodeSeatUnavailable, "a seat of %v is taken", req.Seats)
		}
		first = e
	}
	h.ExpiresAt = time.UnixMilli(first)
	return h, nil
}

// holdCmps compares every seat of h with its held value: still this hold's.
func holdCmps(h *client.Hold) (prefix, val string, cmps []clientv3.Cmp) {
	prefix = etcdSeatPrefix(h.Event)
	val = etcdHeld(h.ExpiresAt.UnixMilli(), h.ID, h.Buyer)
	for _, seat := range h.Seats {
		cmps = append(cmps, clientv3.Compare(clientv3.Value(prefix+seat), "=", val))
	}
	return prefix, val, cmps
}

// Release puts "F" on every seat still held by h, all or nothing. Its
// seats no longer h's while h has not expired means an earlier send of
// this release freed them (only h's buyer ends h): done.
func (b *etcdBuyer) Release(ctx context.Context, key string, h *client.Hold) error {
	if time.Now().After(h.ExpiresAt) {
		return boxoffice.Errorf(boxoffice.CodeHoldExpired, "hold %s expired at %s", h.ID, h.ExpiresAt.Format(time.RFC3339Nano))
	}
	prefix, val, cmps := holdCmps(h)
	var puts, gets []clientv3.Op
	for _, seat := range h.Seats {
		puts = append(puts, clientv3.OpPut(prefix+seat, "F"))
		gets = append(gets, clientv3.OpGet(prefix+seat))
	}
	resp, err := b.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
	if err != nil {
		return etcdErr(err)
	}
	if resp.Succeeded {
		return nil
	}
	for _, r := range resp.Responses {
		if kvs := r.GetResponseRange().Kvs; len(kvs) == 1 && string(kvs[0].Value) == val {
			return boxoffice.Errorf(boxoffice.CodeHoldNotActive, "hold %s holds only some of its seats", h.ID)
		}
	}
	return nil
}

// Purchase puts "S|<order>" on every seat still held by h and the order,
// all or nothing; the order key must not exist yet. When it does, this is
// a purchase sent again: its order is the answer.
func (b *etcdBuyer) Purchase(ctx context.Context, key string, h *client.Hold, _ string) (*client.Order, error) {
	if err := b.s.charge.wait(ctx); err != nil {
		return nil, err
	}
	o := etcdOrder{ID: "o-" + h.ID, Event: h.Event, Hold: h.ID, Buyer: h.Buyer, Seats: h.Seats, State: client.OrderPaid}
	okey := etcdOrderPrefix(h.Event) + o.ID
	if time.Now().After(h.ExpiresAt) {
		return b.existingOrder(ctx, okey, h)
	}
	body, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	prefix, _, cmps := holdCmps(h)
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(okey), "=", 0))
	puts := []clientv3.Op{clientv3.OpPut(okey, string(body))}
	for _, seat := range h.Seats {
		puts = append(puts, clientv3.OpPut(prefix+seat, "S|"+o.ID))
	}
	resp, err := b.cli.Txn(ctx).If(cmps...).Then(puts...).Else(clientv3.OpGet(okey)).Commit()
	if err != nil {
		return nil, etcdErr(err)
	}
	if resp.Succeeded {
		return o.order(), nil
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		return decodeEtcdOrder(kvs[0].Value)
	}
	if time.Now().After(h.ExpiresAt) {
		return nil, boxoffice.Errorf(boxoffice.CodeHoldExpired, "hold %s expired", h.ID)
	}
	return nil, boxoffice.Errorf(boxoffice.CodeHoldNotActive, "hold %s no longer holds its seats", h.ID)
}

// existingOrder answers a purchase of an expired hold: its order if an
// earlier send of the purchase made one, else hold_expired.
func (b *etcdBuyer) existingOrder(ctx context.Context, okey string, h *client.Hold) (*client.Order, error) {
	resp, err := b.cli.Get(ctx, okey)
	if err != nil {
		return nil, etcdErr(err)
	}
	if len(resp.Kvs) == 1 {
		return decodeEtcdOrder(resp.Kvs[0].Value)
	}
	return nil, boxoffice.Errorf(boxoffice.CodeHoldExpired, "hold %s expired at %s", h.ID, h.ExpiresAt.Format(time.RFC3339Nano))
}

func decodeEtcdOrder(b []byte) (*client.Order, error) {
	var o etcdOrder
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("stored order: %w", err)
	}
	return o.order(), nil
}
