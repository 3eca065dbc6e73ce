// Package httpapi is the HTTP front end of a node (fasthttp): routes, JSON,
// auth, problem+json errors, and forwarding of writes to the shard leader.
//
// Any node answers any request. Reads are served from local state; a write
// is proposed by the shard's leader, so a follower forwards it (pooled
// connections, not a redirect) and relays the answer.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
	"boxoffice/raftnode"
)

// Node is what the HTTP layer needs of a cluster node. *raftnode.Node
// implements it.
type Node interface {
	ID() string
	Self() boxoffice.Node
	ShardCount() int
	ShardOfEvent(eventID string) int
	ShardOfID(id string) (int, bool)
	IsLeader(shard int) bool
	LeaderNode(shard int) (boxoffice.Node, bool)
	Propose(ctx context.Context, shard int, c fsm.Command) (fsm.Result, error)
	ReadBarrier(ctx context.Context, shard int) error
	CaughtUp(shard int) error
	Store(shard int) *fsm.Store
	AddMember(ctx context.Context, shard int, m boxoffice.Node) error
	RemoveMember(ctx context.Context, shard int, id string) error
	TransferLeadership(shard int, to string) error
	Members() ([]boxoffice.Node, error)
	Status() []raftnode.Status
}

var _ Node = (*raftnode.Node)(nil)

// Checkout is the payment saga, as the HTTP layer uses it.
type Checkout interface {
	Purchase(ctx context.Context, shard int, hold, buyer, paymentMethod string, wrap func(fsm.Command) fsm.Command) (fsm.Result, error)
	Refund(shard int, order string)
}

// Config configures the HTTP server.
type Config struct {
	// AuthSecret signs and verifies HS256 bearer tokens.
	AuthSecret []byte
	// BodyBytesMax bounds a request body.
	BodyBytesMax int
	// WriteTimeout bounds a write: the wait for a leader, the forward, the
	// proposal and its commit.
	WriteTimeout time.Duration
	// LeaderWait bounds the wait for a shard leader during an election
	// before answering 503 no_leader.
	LeaderWait time.Duration
	// ForwardConnsMax bounds pooled connections to each other node.
	ForwardConnsMax int
	// OpenAPI is the API description served at /v1/openapi.yaml.
	OpenAPI []byte
	// Checkout runs purchases and refunds (*payment.Checkout).
	Checkout Checkout
	Logger   *slog.Logger
	// Metrics, served at /metrics; the server makes its own if nil (then
	// without the Raft and payment measurements, which are wired where the
	// node and the saga are built).
	Metrics *Metrics
	// ChangeStreamsMax bounds the open change streams (the web page's live
	// seat maps) of this node; beyond it a new one is refused with 503.
	ChangeStreamsMax int
	// ChangeStreamMax ends a change stream after this long (EventSource
	// reconnects and resumes), so that none holds a connection forever.
	ChangeStreamMax time.Duration
	// ChangeHeartbeat is how often an idle change stream sends a comment.
	ChangeHeartbeat time.Duration
	// DevSignIn enables POST /dev/sign-in, which mints a token for anyone:
	// for a local demo of the web page only, never in production.
	DevSignIn bool
}

// DefaultConfig returns defaults for everything but AuthSecret.
func DefaultConfig() Config {
	return Config{
		BodyBytesMax:    1 << 20,
		WriteTimeout:    10 * time.Second,
		LeaderWait:      time.Second,
		ForwardConnsMax: 512,

		ChangeStreamsMax: 1000,
		ChangeStreamMax:  5 * time.Minute,
		ChangeHeartbeat:  15 * time.Second,
	}
}

// Validate lists every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.AuthSecret) < 16 {
		errs = append(errs, errors.New("httpapi: AuthSecret must be at least 16 bytes"))
	}
	if c.BodyBytesMax < 1<<10 || c.BodyBytesMax > 64<<20 {
		errs = append(errs, fmt.Errorf("httpapi: BodyBytesMax %d out of range 1KiB..64MiB", c.BodyBytesMax))
	}
	if c.WriteTimeout <= 0 || c.LeaderWait <= 0 || c.LeaderWait > c.WriteTimeout {
		errs = append(errs, errors.New("httpapi: WriteTimeout and LeaderWait must be positive, LeaderWait ≤ WriteTimeout"))
	}
	if c.ForwardConnsMax < 1 {
		errs = append(errs, errors.New("httpapi: ForwardConnsMax must be positive"))
	}
	if c.Checkout == nil {
		errs = append(errs, errors.New("httpapi: Checkout is required"))
	}
	if c.ChangeStreamsMax < 1 || c.ChangeStreamsMax > 100_000 {
		errs = append(errs, fmt.Errorf("httpapi: ChangeStreamsMax %d out of range 1..100000", c.ChangeStreamsMax))
	}
	if c.ChangeStreamMax < time.Second || c.ChangeStreamMax > time.Hour {
		errs = append(errs, fmt.Errorf("httpapi: ChangeStreamMax %s out of range 1s..1h", c.ChangeStreamMax))
	}
	if c.ChangeHeartbeat < 100*time.Millisecond || c.ChangeHeartbeat > c.ChangeStreamMax {
		errs = append(errs, fmt.Errorf("httpapi: ChangeHeartbeat %s out of range 100ms..ChangeStreamMax", c.ChangeHeartbeat))
	}
	return errors.Join(errs...)
}

// Server serves the API of one node.
type Server struct {
	node Node
	cfg  Config
	log  *slog.Logger
	fwd  *forwarder
	srv  *fasthttp.Server

	tokens  tokenCache
	signer  signer // admission passes and place tokens (pass.go)
	picks   inflightPicks
	reqSeq  atomic.Uint64
	metrics *Metrics
	scrape  fasthttp.RequestHandler

	assets   map[string]webAsset // the embedded web page
	streams  atomic.Int64        // open change streams
	closing  chan struct{}       // closed by Shutdown: change streams end
	shutOnce sync.Once
}

// New builds a server for node.
func New(node Node, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	s := &Server{node: node, cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, closing: make(chan struct{}), signer: newSigner(cfg.AuthSecret)}
	assets, err := loadWebAssets()
	if err != nil {
		return nil, fmt.Errorf("httpapi: web page: %w", err)
	}
	s.assets = assets
	if err := s.metrics.reg.Register(newNodeCollector(node)); err != nil {
		return nil, fmt.Errorf("httpapi: metrics: %w", err)
	}
	s.scrape = metricsHandler(s.metrics.reg)
	s.fwd = newForwarder(node.ID(), cfg.ForwardConnsMax, cfg.WriteTimeout)
	s.srv = &fasthttp.Server{
		Handler:                       s.Handle,
		Name:                          "boxoffice",
		Logger:                        fasthttpLogger{cfg.Logger},
		MaxRequestBodySize:            cfg.BodyBytesMax,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		IdleTimeout:                   2 * time.Minute,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         false,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				writeProblem(ctx, boxoffice.CodeBodyTooLarge, fmt.Sprintf("request body larger than %d bytes", cfg.BodyBytesMax))
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Nothing (or not all) of a request arrived in time, often on
				// a connection a client dialed and never used: 408 tells a
				// client to close it and retry, where a 400 would be an
				// error for a request it sends at that moment.
				ctx.SetConnectionClose()
				ctx.Error("request timeout", fasthttp.StatusRequestTimeout)
				return
			}
			writeProblem(ctx, boxoffice.CodeInvalidArgument, "malformed HTTP request")
		},
	}
	return s, nil
}

// Serve serves HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits for open requests; open
// change streams end at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { close(s.closing) })
	return s.srv.ShutdownWithContext(ctx)
}

// Handle routes one request.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	path := string(ctx.Path())
	method := string(ctx.Method())
	ctx.Response.Header.Set("X-Boxoffice-Node", s.node.ID())
	s.requestID(ctx)
	defer s.logRequest(ctx, method, path, start)
	switch {
	case path == "/healthz":
		s.healthz(ctx)
		s.stampIndex(ctx)
		return
	case path == "/readyz":
		s.readyz(ctx)
		s.stampIndex(ctx)
		return
	case path == "/metrics":
		s.scrape(ctx)
		s.stampIndex(ctx)
		return
	case path == "/" || strings.HasPrefix(path, "/ui/"):
		s.web(ctx, path)
		return
	case path == "/dev/sign-in":
		s.devSignIn(ctx)
		return
	case !strings.HasPrefix(path, "/v1/"):
		writeProblem(ctx, boxoffice.CodeNotFound, "no route "+path)
		return
	}
	parts := strings.Split(strings.TrimSuffix(path[len("/v1/"):], "/"), "/")
	route, ok := s.route(method, parts)
	if !ok {
		writeProblem(ctx, boxoffice.CodeNotFound, "no route "+method+" "+path)
		s.metrics.observe(ctx, "unmatched", start)
		return
	}
	route(ctx)
	// A forwarded answer arrives with the leader's headers: this node is
	// still the one that answered.
	ctx.Response.Header.Set("X-Boxoffice-Node", s.node.ID())
	s.metrics.observe(ctx, routeLabel(method, parts), start)
	s.stampIndex(ctx)
}

// stampIndex gives an answer that has no X-Boxoffice-Index yet (one about
// several shards, or none) the highest applied index of this node's shards.
func (s *Server) stampIndex(ctx *fasthttp.RequestCtx) {
	if len(ctx.Response.Header.Peek("X-Boxoffice-Index")) > 0 {
		return
	}
	var index uint64
	for i := 0; i < s.node.ShardCount(); i++ {
		index = max(index, s.node.Store(i).AppliedIndex())
	}
	ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(index, 10))
}

type handler func(ctx *fasthttp.RequestCtx)

// fasthttpLogger sends fasthttp's own messages (connection errors, bodies
// over the limit: already answered as problems) to the debug log.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) { f.l.Debug(fmt.Sprintf(format, args...)) }

// route picks the handler of a method and path (split after /v1/).
func (s *Server) route(method string, p []string) (handler, bool) {
	arg := func(i int) string { return p[i] }
	is := func(m string, n int, lits ...string) bool {
		if method != m || len(p) != n {
			return false
		}
		for i, l := range lits {
			if l != "*" && p[i] != l {
				return false
			}
		}
		return true
	}
	// The routes of an event's owner, grantees and admins: one table, which
	// the authorization test walks.
	if h, ok := s.organiserRoute(method, p); ok {
		return h, true
	}
	switch {
	case is("GET", 1, "events"):
		return s.listEvents, true
	case is("POST", 1, "events"):
		return s.createEvent, true
	case is("GET", 2, "events"):
		return func(c *fasthttp.RequestCtx) { s.getEvent(c, arg(1)) }, true
	case is("GET", 3, "events", "*", "seats"):
		return func(c *fasthttp.RequestCtx) { s.seats(c, arg(1)) }, true
	case is("GET", 3, "events", "*", "changes"):
		return func(c *fasthttp.RequestCtx) { s.changes(c, arg(1)) }, true
	case is("POST", 3, "events", "*", "holds"):
		return func(c *fasthttp.RequestCtx) { s.hold(c, arg(1)) }, true
	// The waiting room (queue.go); protecting it is an organiser route (access.go).
	case is("GET", 3, "events", "*", "queue"):
		return func(c *fasthttp.RequestCtx) { s.getQueue(c, arg(1)) }, true
	case is("POST", 3, "events", "*", "queue"):
		return func(c *fasthttp.RequestCtx) { s.joinQueue(c, arg(1)) }, true
	case is("GET", 4, "events", "*", "queue", "me"):
		return func(c *fasthttp.RequestCtx) { s.myPlace(c, arg(1)) }, true
	case is("GET", 4, "events", "*", "queue", "stream"):
		return func(c *fasthttp.RequestCtx) { s.queueStream(c, arg(1)) }, true
	case is("GET", 2, "holds"):
		return func(c *fasthttp.RequestCtx) { s.getHold(c, arg(1)) }, true
	case is("DELETE", 2, "holds"):
		return func(c *fasthttp.RequestCtx) { s.release(c, arg(1)) }, true
	case is("POST", 3, "holds", "*", "purchase"):
		return func(c *fasthttp.RequestCtx) { s.purchase(c, arg(1)) }, true
	case is("POST", 3, "holds", "*", "extend"):
		return func(c *fasthttp.RequestCtx) { s.extend(c, arg(1)) }, true
	case is("GET", 2, "orders"):
		return func(c *fasthttp.RequestCtx) { s.getOrder(c, arg(1)) }, true
	case is("POST", 3, "orders", "*", "exchange"):
		return func(c *fasthttp.RequestCtx) { s.exchange(c, arg(1)) }, true
	case is("GET", 2, "me", "holds"):
		return s.myHolds, true
	case is("GET", 2, "me", "orders"):
		return s.myOrders, true
	// Reusable venues (venues.go).
	case is("POST", 1, "venues"):
		return s.createVenue, true
	case is("GET", 1, "venues"):
		return s.listVenues, true
	case is("GET", 2, "venues"):
		return func(c *fasthttp.RequestCtx) { s.getVenue(c, arg(1)) }, true
	case is("PUT", 2, "venues"):
		return func(c *fasthttp.RequestCtx) { s.updateVenue(c, arg(1)) }, true
	case is("GET", 1, "openapi.yaml"):
		return s.openAPI, true
	case is("GET", 1, "cluster"):
		return s.clusterStatus, true
	case is("POST", 2, "cluster", "members"):
		return s.addMember, true
	case is("DELETE", 3, "cluster", "members"):
		return func(c *fasthttp.RequestCtx) { s.removeMember(c, arg(2)) }, true
	case is("POST", 2, "cluster", "transfer-leadership"):
		return s.transferLeadership, true
	}
	return nil, false
}

func (s *Server) openAPI(ctx *fasthttp.RequestCtx) {
	if len(s.cfg.OpenAPI) == 0 {
		writeProblem(ctx, boxoffice.CodeNotFound, "this server has no API description")
		return
	}
	ctx.Response.Header.SetContentType("application/yaml")
	ctx.SetBody(s.cfg.OpenAPI)
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, 200, map[string]string{"status": "ok", "node": s.node.ID()})
}

// readyz is 200 once every shard has a leader this node knows how to reach.
func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	for i := 0; i < s.node.ShardCount(); i++ {
		if _, ok := s.node.LeaderNode(i); !ok {
			writeProblem(ctx, boxoffice.CodeNoLeader, "shard "+strconv.Itoa(i)+" has no known leader")
			return
		}
	}
	writeJSON(ctx, 200, map[string]string{"status": "ready", "node": s.node.ID()})
}

// setIndex stamps the answer with the shard's applied index.
func (s *Server) setIndex(ctx *fasthttp.RequestCtx, shard int) {
	ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(s.node.Store(shard).AppliedIndex(), 10))
}

// Route hints on the answer to a write, for clients that send writes
// straight to the leader (the Go client does): the shard the write went to
// and the id of the node that led it. A forwarding node relays them as the
// leader set them; X-Boxoffice-Node is always the node that answered.
const (
	headerShard  = "X-Boxoffice-Shard"
	headerLeader = "X-Boxoffice-Leader"
)

func (s *Server) setRoute(ctx *fasthttp.RequestCtx, shard int) {
	ctx.Response.Header.Set(headerShard, strconv.Itoa(shard))
	ctx.Response.Header.Set(headerLeader, s.node.ID())
}

// write runs fn on the shard's leader: here if this node leads it, else by
// forwarding the request there. During an election it waits up to
// LeaderWait (1 s by default: a client is better off trying another node
// than waiting here longer) for a leader, then answers 503 no_leader.
func (s *Server) write(ctx *fasthttp.RequestCtx, shard int, fn func(context.Context) error) {
	ctx.SetUserValue(userValueShard, shard)
	deadline := time.Now().Add(s.cfg.LeaderWait)
	for {
		if s.node.IsLeader(shard) {
			// Handlers check a write against this node's state before
			// proposing: a leader new in its term must first have applied
			// what its predecessors committed.
			err := s.node.CaughtUp(shard)
			if err == nil {
				cctx, cancel := context.WithTimeout(boxoffice.WithRequestID(context.Background(), requestIDOf(ctx)), s.cfg.WriteTimeout)
				err = fn(cctx)
				cancel()
			}
			if err != nil && boxoffice.CodeOf(err) == boxoffice.CodeNotLeader && time.Now().Before(deadline) {
				// Lost leadership before proposing (nothing was appended),
				// or during a purchase that carries an Idempotency-Key
				// (the new leader replays its begin and finishes it): in
				// both cases trying again at the new leader is safe.
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if err != nil {
				writeError(ctx, err)
			}
			s.setRoute(ctx, shard)
			return
		}
		if forwarded(ctx) {
			// One hop only: the node that forwarded to us retries with
			// fresher knowledge of the leader.
			writeProblem(ctx, boxoffice.CodeNotLeader, fmt.Sprintf("node %s does not lead shard %d", s.node.ID(), shard))
			return
		}
		if leader, ok := s.node.LeaderNode(shard); ok && leader.ID != s.node.ID() {
			retry, err := s.fwd.forward(ctx, leader.HTTPAddr, func() bool {
				now, ok := s.node.LeaderNode(shard)
				return ok && now.ID != leader.ID
			})
			switch {
			case err == nil && !retry:
				s.metrics.forwards.WithLabelValues("relayed").Inc()
				return
			case err == nil && retry:
				s.metrics.forwards.WithLabelValues("not_leader").Inc()
			default:
				s.metrics.forwards.WithLabelValues("unreachable").Inc()
			}
			if err != nil {
				s.log.Debug("forward failed", "request_id", requestIDOf(ctx), "shard", shard, "leader", leader.ID, "err", err)
			}
		}
		if time.Now().After(deadline) {
			writeProblem(ctx, boxoffice.CodeNoLeader, fmt.Sprintf("shard %d has no reachable leader; retry", shard))
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

const (
	headerRequestID = "X-Request-Id"
	userValueErr    = "boxoffice.err"
	userValueShard  = "boxoffice.shard"
)

// requestIDOf is the id requestID gave the request.
func requestIDOf(ctx *fasthttp.RequestCtx) string {
	return string(ctx.Request.Header.Peek(headerRequestID))
}

// requestID gives the request an id: the client's X-Request-Id if it is a
// valid id, else a new one (this node's id and a counter). It is sent back,
// carried along when the request is forwarded, and in every log line about
// the request.
func (s *Server) requestID(ctx *fasthttp.RequestCtx) {
	id := ctx.Request.Header.Peek(headerRequestID)
	if len(id) == 0 || !boxoffice.ValidID(string(id)) {
		id = strconv.AppendUint(append([]byte(s.node.ID()), '-'), s.reqSeq.Add(1), 36)
		ctx.Request.Header.SetBytesV(headerRequestID, id)
	}
	ctx.Response.Header.SetBytesV(headerRequestID, id)
}

// logRequest logs a request that failed on the server's side (internal
// errors at error level, with their cause), and every request at debug
// level.
func (s *Server) logRequest(ctx *fasthttp.RequestCtx, method, path string, start time.Time) {
	status := ctx.Response.StatusCode()
	level := slog.LevelDebug
	if status == fasthttp.StatusInternalServerError {
		level = slog.LevelError
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", string(ctx.Request.Header.Peek(headerRequestID))),
		slog.String("method", method), slog.String("path", path), slog.Int("status", status),
		slog.Duration("took", time.Since(start)),
	}
	if shard, ok := ctx.UserValue(userValueShard).(int); ok {
		attrs = append(attrs, slog.Int("shard", shard))
	}
	if by := ctx.Request.Header.Peek(headerForwarded); len(by) > 0 {
		attrs = append(attrs, slog.String("forwarded_by", string(by)))
	}
	if err, ok := ctx.UserValue(userValueErr).(error); ok {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "request", attrs...)
}
