package chaos

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"boxoffice/client"
)

// Exchange is one HTTP request the load sent to a node, through that node's
// proxy, and its answer: what the suite measures availability and failover
// from.
type Exchange struct {
	// Target is the node whose proxy the request went through.
	Target string
	Method string
	// Path is the request URI (path and query).
	Path string
	// Key is the request's Idempotency-Key: one logical write, whatever
	// the client retried.
	Key        string
	Start, End time.Time
	// Status is the answer's status; 0 when no whole answer came (the node
	// could not be reached, or the connection broke).
	Status int
	// Node is, for a write, the leader that committed it: the answer's
	// X-Boxoffice-Leader (a follower relays its leader's); for others the
	// node that answered (X-Boxoffice-Node).
	Node string
	// Replayed is true for an answer replayed for its Idempotency-Key.
	Replayed bool
	Err      string
}

// Observer receives every exchange as it ends, from many goroutines.
type Observer interface {
	Observe(Exchange)
}

// Limits of the proxy.
const (
	// requestBodyMax bounds a request body (the server's own limit is 1 MiB).
	requestBodyMax = 1 << 20
)

// proxy is the suite's window on the load: a reverse proxy on the host in
// front of one node, which records every request and answer. It is as
// transparent as it can be to the client: when the node cannot be reached
// or the connection to it breaks, the proxy breaks the client's connection
// too (rather than answer 502), so that the client fails over exactly as it
// would against the node itself. Requests are not timed out here: the
// client's own timeout applies, as it would to a node that hangs (paused).
type proxy struct {
	node     string
	upstream atomic.Pointer[string] // host:port; "" while the node has none
	tr       *http.Transport
	obs      Observer
	srv      *http.Server
	ln       net.Listener
}

// newProxy listens on 127.0.0.1 (a free port) for node.
func newProxy(node string, obs Observer) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{
		node: node, obs: obs, ln: ln,
		tr: &http.Transport{
			Proxy: nil,
			// The client's own dial timeout: a node that does not answer a
			// dial fails the try as fast through the proxy as without it.
			DialContext:         (&net.Dialer{Timeout: client.DefaultConfig().DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 512,
			MaxIdleConns:        512,
			// Under the nodes' 30 s read timeout, as the client's.
			IdleConnTimeout:    20 * time.Second,
			DisableCompression: true,
			ForceAttemptHTTP2:  false,
		},
	}
	empty := ""
	p.upstream.Store(&empty)
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		// Longer than the client's 20 s idle timeout: the client, not the
		// proxy, closes idle connections.
		IdleTimeout: time.Minute,
		ErrorLog:    nil,
	}
	go p.srv.Serve(ln)
	return p, nil
}

// URL is the base URL the load uses for this node.
func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

// setUpstream points the proxy at the node's address ("" when it has none).
func (p *proxy) setUpstream(hostport string) {
	p.upstream.Store(&hostport)
	p.tr.CloseIdleConnections()
}

func (p *proxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	p.srv.Close()
	p.tr.CloseIdleConnections()
}

// hopHeaders are not relayed (RFC 9110, section 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := Exchange{
		Target: p.node, Method: r.Method, Path: r.URL.RequestURI(),
		Key: r.Header.Get("Idempotency-Key"), Start: time.Now(),
	}
	// Recorded whatever happens, an aborted exchange too (the abort is a
	// panic that net/http turns into a closed connection).
	defer func() {
		ex.End = time.Now()
		p.obs.Observe(ex)
	}()
	abort := func(err error) {
		ex.Status, ex.Err = 0, err.Error()
		panic(http.ErrAbortHandler)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, requestBodyMax+1))
	if err != nil {
		abort(err)
	}
	up := *p.upstream.Load()
	if up == "" {
		abort(errors.New("node not running"))
	}
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+up+ex.Path, rd)
	if err != nil {
		abort(err)
	}
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		abort(err)
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		abort(err)
	}
	ex.Status = resp.StatusCode
	ex.Node = resp.Header.Get("X-Boxoffice-Leader")
	if ex.Node == "" {
		ex.Node = resp.Header.Get("X-Boxoffice-Node")
	}
	ex.Replayed = strings.EqualFold(resp.Header.Get("Idempotent-Replayed"), "true")
}
