package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"boxoffice"
	"boxoffice/client"
)

// System names.
const (
	SystemBoxoffice = "boxoffice"
	SystemEtcd      = "etcd"
	SystemPostgres  = "postgres"
)

// Systems lists the systems the bench can run against, boxoffice first.
var Systems = []string{SystemBoxoffice, SystemEtcd, SystemPostgres}

// System is the store under test, as the users and the invariant check use
// it: boxoffice through its HTTP API (the Go client), or a peer (etcd,
// PostgreSQL) doing the same on-sale its own way, so that one workload,
// one seat picker and one check measure them all.
//
// Writes answer with the root package's errors for definite refusals
// (seat_unavailable, hold_expired, …: nothing was done) and with any other
// error when the outcome is unknown; the bench then sends the write again
// with the same key, and the system must answer it as it answered the
// first one (idempotency), which is how the bench learns every outcome.
type System interface {
	// Name is one of Systems.
	Name() string
	// Workloads lists the workloads the system can run.
	Workloads() []string
	// CreateEvent creates ev with every seat free.
	CreateEvent(ctx context.Context, ev *client.Event) error
	// SeatMap reads the event's seats in state q.Status (all when empty).
	// With q.Strong the read is linearizable; without, it may be stale
	// (by about a second at most).
	SeatMap(ctx context.Context, event string, q client.SeatQuery) (client.SeatMap, error)
	// Sold counts the event's sold seats with a linearizable read.
	Sold(ctx context.Context, event string) (int, error)
	// Buyer is the handle through which virtual user user acts as the buyer
	// subject.
	Buyer(user int, subject string) (Buyer, error)
	// ReadState reads the event's end state with linearizable reads: the
	// whole seat map (an expired hold's seats free) and at least the
	// acknowledged orders.
	ReadState(ctx context.Context, event string, orders []OrderRecord) (*ServerState, error)
	// Close releases the system's clients (not its servers).
	Close()
}

// Buyer is one buyer's writes. key identifies the write: the same key
// again must get the first answer again.
type Buyer interface {
	// Hold holds req's seats for the buyer, all or nothing: a conflict is
	// boxoffice.ErrSeatUnavailable.
	Hold(ctx context.Context, key, event string, req client.HoldRequest) (*client.Hold, error)
	// Release frees the seats of h (one of this buyer's holds).
	Release(ctx context.Context, key string, h *client.Hold) error
	// Purchase sells the seats of h to the buyer and returns the order.
	Purchase(ctx context.Context, key string, h *client.Hold, paymentMethod string) (*client.Order, error)
}

// clusterReporter is a System that can say which node leads each of its
// Raft groups, so that a run reports elections during the load.
type clusterReporter interface {
	Cluster(ctx context.Context) (client.ClusterStatus, error)
}

// peerError is a peer's error whose outcome is unknown (a timeout, a lost
// connection, a failed commit), with the code it is counted under.
type peerError struct {
	code string
	err  error
}

func (e *peerError) Error() string { return e.code + ": " + e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }

// boxofficeSystem is boxoffice through its HTTP API.
type boxofficeSystem struct {
	cfg Config
	// clients has one client per node, node i first in client i's list;
	// user i starts at node i mod n, as a load balancer would spread them.
	clients []*client.Client
	admin   *client.Client // the setup token
	maps    *client.Client // seat maps, spread over every node

	mu      sync.Mutex
	userOf  map[string]int // subject → the user that bought as it
	buyerOf map[string]*client.Client
}

var (
	_ System          = (*boxofficeSystem)(nil)
	_ clusterReporter = (*boxofficeSystem)(nil)
)

// newBoxofficeSystem builds the clients of a run against cfg.Targets.
func newBoxofficeSystem(cfg Config, runID string) (*boxofficeSystem, error) {
	s := &boxofficeSystem{cfg: cfg, userOf: map[string]int{}, buyerOf: map[string]*client.Client{}}
	n := len(cfg.Targets)
	for i := 0; i < n; i++ {
		cc := client.DefaultConfig()
		cc.Nodes = append(append([]string(nil), cfg.Targets[i:]...), cfg.Targets[:i]...)
		cc.Token = cfg.Token
		cc.SpreadWrites = cfg.SpreadWrites
		cc.ConnsPerNodeMax = max(cc.ConnsPerNodeMax, cfg.Users)
		cc.IdleConnsPerNodeMax = min(max(cc.IdleConnsPerNodeMax, cfg.Users), cc.ConnsPerNodeMax)
		cl, err := client.New(cc)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.clients = append(s.clients, cl)
	}
	s.admin = s.clients[0]
	if cfg.Token == "" {
		tok, err := cfg.Mint(runID+"-organiser", "organiser")
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("mint the organiser's token: %w", err)
		}
		s.admin = s.admin.WithToken(tok)
	}
	// The shared seat maps, from a client of their own.
	mapCfg := client.DefaultConfig()
	mapCfg.Nodes = cfg.Targets
	maps, err := client.New(mapCfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.maps = maps
	return s, nil
}

func (s *boxofficeSystem) Name() string { return SystemBoxoffice }

func (s *boxofficeSystem) Workloads() []string { return Workloads }

func (s *boxofficeSystem) Close() {
	for _, c := range s.clients {
		c.CloseIdleConnections()
	}
	if s.maps != nil {
		s.maps.CloseIdleConnections()
	}
}

func (s *boxofficeSystem) CreateEvent(ctx context.Context, ev *client.Event) error {
	_, err := s.admin.CreateEvent(ctx, ev)
	return err
}

func (s *boxofficeSystem) SeatMap(ctx context.Context, event string, q client.SeatQuery) (client.SeatMap, error) {
	return s.maps.Seats(ctx, event, q)
}

func (s *boxofficeSystem) Sold(ctx context.Context, event string) (int, error) {
	ev, err := s.admin.GetEvent(client.WithStrongRead(ctx), event)
	if err != nil {
		return 0, err
	}
	sold := 0
	for _, a := range ev.Availability {
		sold += a.Sold
	}
	return sold, nil
}

func (s *boxofficeSystem) Cluster(ctx context.Context) (client.ClusterStatus, error) {
	return s.admin.Cluster(ctx)
}

// Buyer mints subject's token; the buyer's calls start at node user mod n.
func (s *boxofficeSystem) Buyer(user int, subject string) (Buyer, error) {
	tok, err := s.cfg.Mint(subject, "buyer")
	if err != nil {
		return nil, err
	}
	cl := s.clients[user%len(s.clients)].WithToken(tok)
	s.mu.Lock()
	s.userOf[subject] = user
	s.buyerOf[subject] = cl
	s.mu.Unlock()
	return boxofficeBuyer{cl}, nil
}

// buyer returns subject's client (nil if no user bought as it).
func (s *boxofficeSystem) buyer(subject string) *client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buyerOf[subject]
}

// ReadState reads the whole seat map, then every acknowledged order as its
// buyer (a buyer reads only its own orders), VerifyParallel at a time.
func (s *boxofficeSystem) ReadState(ctx context.Context, event string, orders []OrderRecord) (*ServerState, error) {
	strong := client.WithStrongRead(ctx)
	m, err := s.admin.Seats(strong, event, client.SeatQuery{Strong: true})
	if err != nil {
		return nil, fmt.Errorf("strong seat map: %w", err)
	}
	st := &ServerState{Index: m.Index, Seats: m.Seats, Orders: make(map[string]*client.Order, len(orders)), OrderErrors: map[string]string{}}
	var mu sync.Mutex
	jobs := make(chan OrderRecord)
	var wg sync.WaitGroup
	for w := 0; w < s.cfg.VerifyParallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range jobs {
				cl := s.buyer(o.Buyer)
				if cl == nil {
					cl = s.admin
				}
				got, err := cl.GetOrder(strong, o.ID)
				mu.Lock()
				switch {
				case err == nil:
					st.Orders[o.ID] = got
				case isCode(err, boxoffice.CodeOrderNotFound):
				default:
					st.OrderErrors[o.ID] = err.Error()
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range orders {
		jobs <- o
	}
	close(jobs)
	wg.Wait()
	return st, nil
}

// boxofficeBuyer is a client with a buyer's token; the key goes in the
// Idempotency-Key header.
type boxofficeBuyer struct{ cl *client.Client }

func (b boxofficeBuyer) Hold(ctx context.Context, key, event string, req client.HoldRequest) (*client.Hold, error) {
	return b.cl.Hold(client.WithIdempotencyKey(ctx, key), event, req)
}

func (b boxofficeBuyer) Release(ctx context.Context, key string, h *client.Hold) error {
	_, err := b.cl.Release(client.WithIdempotencyKey(ctx, key), h.ID)
	return err
}

func (b boxofficeBuyer) Purchase(ctx context.Context, key string, h *client.Hold, paymentMethod string) (*client.Order, error) {
	return b.cl.Purchase(client.WithIdempotencyKey(ctx, key), h.ID, paymentMethod)
}

// errUnsupported is a request a peer does not implement.
var errUnsupported = errors.New("not supported by this system")
