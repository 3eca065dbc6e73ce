// Package client is the Go client of the boxoffice HTTP API (DESIGN.md, "The
// HTTP API"): typed calls, typed errors, failover across the nodes of a
// cluster, and retries that are safe for writes.
//
// # Failover
//
// Any node answers any request (a follower forwards writes to the leader), so
// a Client knows a list of nodes and sticks to the one that last answered.
// It moves to the next node when a node cannot be reached or answers 503
// (no_leader, not_leader_retry, unavailable) or 504 (timeout), and tries the
// call again, up to Config.MaxAttempts times in all. Between tries it waits
// an exponential backoff with jitter; once every node has been tried, at
// least as long as the Retry-After the node sent (capped by
// Config.RetryAfterMax). The first pass over the other nodes does not wait
// for a Retry-After (it speaks of the node that sent it), nor at all after a
// connection error, since another node is likely up.
// Every wait is bounded by the call's context: a retry that could only start
// after the context's deadline is not attempted.
//
// # Why retrying a write is safe
//
// A write whose answer was lost (a reset connection, a 504) may or may not
// have been applied. Every write (POST, PATCH, DELETE) therefore carries an
// Idempotency-Key: the caller's (WithIdempotencyKey) or a random one made
// once per call and sent unchanged with each of its tries. The server
// answers a key it has seen with the first answer, so a retried hold holds
// once and a retried purchase charges once. For the same reason net/http may
// itself replay such a request on a keep-alive connection that the server
// closed before reading it.
//
// A write that ends with its context's error, or with a retryable Error after
// the last try, may or may not have been applied. To learn which, call it
// again with the same key (WithIdempotencyKey): the answer is the first one.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"boxoffice"
)

// Limits on a Config.
const (
	NodesMax            = 64
	AttemptsMax         = 100
	TimeoutMax          = 10 * time.Minute
	BackoffMaxMax       = time.Minute
	RetryAfterMaxMax    = 10 * time.Minute
	ConnsPerNodeMaxMax  = 65536
	ResponseBytesMaxMin = 1 << 10
	ResponseBytesMaxMax = 1 << 30
)

// problemDetailBytesMax bounds how much of a non-problem answer body is kept
// in an Error's Detail.
const problemDetailBytesMax = 512

// Config configures a Client.
type Config struct {
	// Nodes are the base URLs of the cluster's nodes, "http://host:port"; a
	// bare "host:port" means http. Calls start at the first.
	Nodes []string
	// Token is the bearer token sent with every call (an HS256 JWT, see
	// `boxoffice token`); empty sends none. WithToken makes a Client with
	// another token sharing this one's connections.
	Token string
	// Timeout bounds one try of a call against one node: connecting,
	// sending, and reading the whole answer. It should exceed the server's
	// write timeout (10s by default), so that a slow write ends as the
	// server's 504 rather than as a cut connection.
	Timeout time.Duration
	// DialTimeout bounds opening a connection to a node that does not
	// answer. The default (500 ms) is a LAN's: a dial there takes well
	// under a millisecond, and one to a node cut off from the network
	// would otherwise spend most of a buyer's patience before the call
	// moves on. Raise it for a client across a WAN.
	DialTimeout time.Duration
	// WriteFailoverAfter is how long a write waits for a node's answer
	// (its headers) before it moves on to the next node, while the call
	// has nodes left to try; 0 (or at least Timeout) waits Timeout. A node that has not answered
	// a write in this time is frozen (paused, swapping) or cut off from
	// the client but still accepts connections, and a buyer is better
	// served by another node at once than by that one after Timeout. The
	// write's Idempotency-Key makes the second try safe even if the first
	// node applies it after all. Reads are not moved: a large seat map may
	// take long to build, and moving it would only double its cost.
	WriteFailoverAfter time.Duration
	// MaxAttempts bounds the tries of one call, the first included.
	MaxAttempts int
	// BackoffMin is the wait after the first failed try; each further
	// failure doubles it, up to BackoffMax. Waits are jittered to [d/2, d].
	BackoffMin time.Duration
	BackoffMax time.Duration
	// RetryAfterMax caps how long a Retry-After sent by a node may make the
	// client wait; 0 ignores Retry-After.
	RetryAfterMax time.Duration
	// ConnsPerNodeMax bounds the open connections to one node; calls beyond
	// it wait for a connection. IdleConnsPerNodeMax bounds those kept open
	// between calls (keep-alive).
	ConnsPerNodeMax     int
	IdleConnsPerNodeMax int
	// ResponseBytesMax bounds an answer body (a 200,000-seat map is ~12 MB).
	ResponseBytesMax int64
	// SpreadWrites sends writes and strong reads to the node the client
	// sticks to, like every other call, instead of straight to the leader
	// of their shard (route.go): the nodes forward them. For tests of
	// forwarding, and load that must reach every node.
	SpreadWrites bool
}

// DefaultConfig returns defaults for everything but Nodes and Token.
func DefaultConfig() Config {
	return Config{
		Timeout:             15 * time.Second,
		DialTimeout:         500 * time.Millisecond,
		WriteFailoverAfter:  time.Second,
		MaxAttempts:         8,
		BackoffMin:          25 * time.Millisecond,
		BackoffMax:          time.Second,
		RetryAfterMax:       2 * time.Second,
		ConnsPerNodeMax:     1024,
		IdleConnsPerNodeMax: 256,
		ResponseBytesMax:    64 << 20,
	}
}

// Validate lists every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("client: "+format, args...)) }
	if len(c.Nodes) == 0 || len(c.Nodes) > NodesMax {
		add("Nodes: 1..%d node URLs required, got %d", NodesMax, len(c.Nodes))
	}
	seen := make(map[string]bool, len(c.Nodes))
	for _, n := range c.Nodes {
		u, err := nodeURL(n)
		if err != nil {
			add("Nodes: %v", err)
			continue
		}
		if seen[u] {
			add("Nodes: %q appears twice", n)
		}
		seen[u] = true
	}
	if !validHeaderValue(c.Token) {
		add("Token must not contain control characters")
	}
	if c.Timeout <= 0 || c.Timeout > TimeoutMax {
		add("Timeout %v out of range (0, %v]", c.Timeout, TimeoutMax)
	}
	if c.DialTimeout <= 0 || c.DialTimeout > c.Timeout {
		add("DialTimeout %v out of range (0, Timeout]", c.DialTimeout)
	}
	if c.WriteFailoverAfter < 0 || c.WriteFailoverAfter > TimeoutMax {
		add("WriteFailoverAfter %v out of range [0, %v]", c.WriteFailoverAfter, TimeoutMax)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > AttemptsMax {
		add("MaxAttempts %d out of range 1..%d", c.MaxAttempts, AttemptsMax)
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin || c.BackoffMax > BackoffMaxMax {
		add("BackoffMin %v and BackoffMax %v: need 0 < BackoffMin ≤ BackoffMax ≤ %v", c.BackoffMin, c.BackoffMax, BackoffMaxMax)
	}
	if c.RetryAfterMax < 0 || c.RetryAfterMax > RetryAfterMaxMax {
		add("RetryAfterMax %v out of range [0, %v]", c.RetryAfterMax, RetryAfterMaxMax)
	}
	if c.ConnsPerNodeMax < 1 || c.ConnsPerNodeMax > ConnsPerNodeMaxMax {
		add("ConnsPerNodeMax %d out of range 1..%d", c.ConnsPerNodeMax, ConnsPerNodeMaxMax)
	}
	if c.IdleConnsPerNodeMax < 1 || c.IdleConnsPerNodeMax > c.ConnsPerNodeMax {
		add("IdleConnsPerNodeMax %d out of range 1..ConnsPerNodeMax", c.IdleConnsPerNodeMax)
	}
	if c.ResponseBytesMax < ResponseBytesMaxMin || c.ResponseBytesMax > ResponseBytesMaxMax {
		add("ResponseBytesMax %d out of range %d..%d", c.ResponseBytesMax, ResponseBytesMaxMin, ResponseBytesMaxMax)
	}
	return errors.Join(errs...)
}

// nodeURL normalizes a node's base URL: scheme http(s), a host, no path,
// query or fragment.
func nodeURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("node %q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("node %q must be a base URL http(s)://host:port", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Client calls the API of one cluster. It is safe for concurrent use.
type Client struct {
	cfg   Config
	nodes []string // normalized base URLs
	token string
	http  *http.Client
	sel   *selector
	route *router
	// sleep waits d or until ctx is done; tests replace it to observe the
	// waits without taking them.
	sleep func(ctx context.Context, d time.Duration) error
}

// New validates cfg and builds a Client with its own connection pool.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nodes := make([]string, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		nodes[i], _ = nodeURL(n) // checked by Validate
	}
	cfg.Nodes = nodes
	tr := &http.Transport{
		// Nodes are addressed directly: a proxy between a client and the
		// cluster would hide which node failed.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxConnsPerHost:     cfg.ConnsPerNodeMax,
		MaxIdleConnsPerHost: cfg.IdleConnsPerNodeMax,
		MaxIdleConns:        cfg.IdleConnsPerNodeMax * len(nodes),
		// Under the servers' 30 s read timeout: a connection dialed for a
		// request that another connection served sits idle, unused; the
		// client must close it before the server times it out and answers
		// it with an error nobody asked for.
		IdleConnTimeout: 20 * time.Second,
		// The nodes answer in HTTP/1.1 (fasthttp).
		ForceAttemptHTTP2:     false,
		ExpectContinueTimeout: 0,
	}
	c := &Client{
		cfg:   cfg,
		nodes: nodes,
		token: cfg.Token,
		http:  &http.Client{Transport: tr},
		sel:   &selector{},
		sleep: sleepCtx,
	}
	c.route = newRouter(c.discoverNodes)
	return c, nil
}

// discoverNodes asks each node whose id the client does not know yet for it
// (GET /healthz names the node), so that route hints can name it.
func (c *Client) discoverNodes() {
	for i, node := range c.nodes {
		if c.route.known(i) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DialTimeout)
		r := c.try(ctx, node, http.MethodGet, "/healthz", nil, "", nil, 0)
		cancel()
		c.route.learn(i, "/healthz", r.node, "", "")
	}
}

// WithToken returns a copy of c that sends tok, sharing c's connections and
// its choice of node. Making one per buyer is cheap.
func (c *Client) WithToken(tok string) *Client {
	cp := *c
	cp.token = tok
	return &cp
}

// Nodes returns the normalized base URLs of the nodes, in order.
func (c *Client) Nodes() []string { return append([]string(nil), c.nodes...) }

// CloseIdleConnections closes the kept-alive connections no call is using.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// selector is the node calls start at. It moves on only from the node that
// failed (compare-and-swap), so that concurrent calls seeing one node fail
// move past it once, not once each.
type selector struct{ cur atomic.Int64 }

func (s *selector) current(n int) int { return int(s.cur.Load() % int64(n)) }

// failed moves past node i and returns the node to try next.
func (s *selector) failed(i, n int) int {
	s.cur.CompareAndSwap(int64(i), int64((i+1)%n))
	return s.current(n)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type ctxKey int

const (
	keyIdempotency ctxKey = iota
	keyStrongRead
	keyAdmissionPass
)

// WithIdempotencyKey makes the write called with the returned context send
// key as its Idempotency-Key, instead of a random one. Use it to retry a
// write across process restarts or user clicks: the server answers a key it
// has seen with the first answer. One key is one logical write: the same key
// with another body is refused (422 idempotency_key_reused). An empty key
// means a random one.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyIdempotency, key)
}

// WithStrongRead makes the reads called with the returned context linearizable
// (?consistency=strong): the shard's leader confirms its leadership and
// answers once it has applied every write acknowledged before the read
// began. Without it a node answers from its own, possibly lagging, replica.
func WithStrongRead(ctx context.Context) context.Context {
	return context.WithValue(ctx, keyStrongRead, true)
}

func strongRead(ctx context.Context) bool {
	v, _ := ctx.Value(keyStrongRead).(bool)
	return v
}

// idempotencyKey is the caller's key or a new random one (26 base32
// characters, 130 bits).
func idempotencyKey(ctx context.Context) (string, error) {
	key, _ := ctx.Value(keyIdempotency).(string)
	if key == "" {
		return crand.Text(), nil
	}
	if !validKey(key) {
		return "", localError(boxoffice.CodeInvalidArgument,
			fmt.Sprintf("idempotency key must be 1..%d printable ASCII characters without spaces", boxoffice.IdempotencyKeyLenMax))
	}
	return key, nil
}

// validKey is the server's rule for an Idempotency-Key.
func validKey(k string) bool {
	if len(k) > boxoffice.IdempotencyKeyLenMax {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// do runs one call: it sends method path (with its query) and the JSON of in
// (nil: no body) to a node, tries other nodes on the failures failover is
// for, and decodes a 2xx answer into out (nil: ignore it). It returns the
// final status.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	if !validHeaderValue(c.token) {
		return 0, localError(boxoffice.CodeInvalidArgument, "the token contains control characters")
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = b
	}
	var key string
	if method != http.MethodGet {
		k, err := idempotencyKey(ctx)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", method, path, err)
		}
		key = k
	}
	n := len(c.nodes)
	i := c.sel.current(n)
	hinted := false
	if !c.cfg.SpreadWrites && (method != http.MethodGet || strongRead(ctx)) {
		if j, ok := c.route.start(path); ok && j < n {
			i, hinted = j, true
		}
	}
	for attempt := 1; ; attempt++ {
		var failover time.Duration
		if method != http.MethodGet && attempt < n {
			failover = c.cfg.WriteFailoverAfter
		}
		r := c.try(ctx, c.nodes[i], method, path, body, key, out, failover)
		c.route.learn(i, path, r.node, r.shard, r.leader)
		if r.err == nil {
			return r.status, nil
		}
		err := fmt.Errorf("%s %s at %s: %w", method, path, c.nodes[i], r.err)
		if !r.retry || ctx.Err() != nil {
			return r.status, err
		}
		if hinted {
			// The leader it named failed the call: forget the hint and
			// go on as without one.
			c.route.forget(path)
			hinted = false
		}
		i = c.sel.failed(i, n)
		if attempt >= c.cfg.MaxAttempts {
			return r.status, fmt.Errorf("%w (gave up after %d tries)", err, attempt)
		}
		// The first pass over the other nodes does not wait for a node's
		// Retry-After: that node speaks of itself (it knows no leader, or
		// lost its leadership), and another node likely knows the new
		// leader already; a write that waited a whole second there would
		// answer its buyer late for nothing. After a refused connection it
		// does not wait at all; after an answer, only the short backoff.
		var wait time.Duration
		switch {
		case attempt >= n:
			wait = c.backoff(attempt, r.retryAfter)
		case !r.connErr:
			wait = c.backoff(attempt, 0)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return r.status, fmt.Errorf("%w (not retried: the next try would start after the context's deadline)", err)
		}
		if wait > 0 {
			if serr := c.sleep(ctx, wait); serr != nil {
				return r.status, fmt.Errorf("%w (stopped waiting to retry: %w)", err, serr)
			}
		}
	}
}

// backoff is the wait after the attempt-th failed try: BackoffMin doubled
// per failure up to BackoffMax, jittered to [d/2, d] so that many clients
// failing together do not return together, and at least the node's
// Retry-After (capped).
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := c.cfg.BackoffMax
	if attempt-1 < 32 {
		if b := c.cfg.BackoffMin << (attempt - 1); b > 0 && b < d {
			d = b
		}
	}
	d = d/2 + rand.N(d/2+1)
	if ra := min(retryAfter, c.cfg.RetryAfterMax); ra > d {
		d = ra
	}
	return d
}

// result is the outcome of one try.
type result struct {
	status     int
	err        error
	retry      bool          // another try (at the next node) may succeed
	connErr    bool          // no answer came: connection or transport failure
	retryAfter time.Duration // the node's Retry-After, uncapped
	// Route hints of the answer (route.go).
	node, shard, leader string
}

// errNoAnswerYet ends a try that had no answer within its failover time.
var errNoAnswerYet = errors.New("no answer yet")

// try sends the call once to node. If failover > 0 and no answer has begun
// to arrive by then, the try ends as one that got no answer.
func (c *Client) try(ctx context.Context, node, method, path string, body []byte, key string, out any, failover time.Duration) result {
	tctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	actx, abandon := context.WithCancelCause(tctx)
	defer abandon(nil)
	var timer *time.Timer
	if failover > 0 {
		timer = time.AfterFunc(failover, func() { abandon(errNoAnswerYet) })
		defer timer.Stop()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, node+path, rd)
	if err != nil {
		return result{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "boxoffice-go-client")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if pass, _ := ctx.Value(keyAdmissionPass).(string); pass != "" && validHeaderValue(pass) {
		req.Header.Set("X-Admission-Pass", pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// No answer: refused, reset, or this try's timeout. The call's own
		// context being done is not retried (checked by the caller).
		if errors.Is(context.Cause(actx), errNoAnswerYet) {
			return result{err: fmt.Errorf("%w after %v: %w", errNoAnswerYet, failover, err), retry: true, connErr: true}
		}
		return result{err: err, retry: true, connErr: true}
	}
	if timer != nil {
		// The answer has begun: let it finish within Timeout. (Should the
		// timer have fired just now, reading the body fails and the call
		// moves on, as it would have a moment earlier.)
		timer.Stop()
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, node: resp.Header.Get(headerNode), shard: resp.Header.Get(headerShard), leader: resp.Header.Get(headerLeader)}
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.ResponseBytesMax+1))
	if err != nil {
		r.err, r.retry, r.connErr = fmt.Errorf("read answer: %w", err), true, true
		return r
	}
	if int64(len(b)) > c.cfg.ResponseBytesMax {
		r.err = fmt.Errorf("answer larger than ResponseBytesMax (%d bytes)", c.cfg.ResponseBytesMax)
		return r
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if raw, ok := out.(*rawBody); ok {
			*raw = b
			return r
		}
		if out != nil && resp.StatusCode != http.StatusNoContent {
			if err := json.Unmarshal(b, out); err != nil {
				r.err = fmt.Errorf("decode %d answer: %w", resp.StatusCode, err)
			}
		}
		return r
	}
	e := parseProblem(resp.StatusCode, resp.Header.Get("Content-Type"), b)
	r.err, r.retry = e, e.Retryable
	if e.Retryable {
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// parseRetryAfter reads a Retry-After of delay-seconds or an HTTP date; 0
// when absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(RetryAfterMaxMax/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), RetryAfterMaxMax)
	}
	return 0
}
