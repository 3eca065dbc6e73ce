package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"boxoffice"
	"boxoffice/api"
	"boxoffice/httpapi"
	"boxoffice/payment"
	"boxoffice/raftnode"
)

type serveFlags struct {
	id, dataDir, httpAddr, raftAddr, raftAdvertise, httpAdvertise string
	bootstrap                                                     bool
	devSignIn                                                     bool
	join                                                          string
	shards                                                        int
	authSecret                                                    string
	logLevel, logFormat                                           string
	snapshotThreshold                                             uint64
	snapshotInterval                                              time.Duration
	sim                                                           payment.SimConfig
	checkoutLease                                                 time.Duration
	gateway, stripeKey, stripeURL                                 string
	pprofAddr                                                     string
	config                                                        string
}

func serveCmd() *cobra.Command { return newServeCmd(new(serveFlags)) }

// newServeCmd is serve, with its settings in f.
func newServeCmd(f *serveFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a node of a boxoffice cluster",
		Long: `Run a node. The first node of a new cluster starts with --bootstrap; every
other node starts with --join pointing at the HTTP address of any member.
A restarted node needs neither: it resumes from its data dir.

Every flag can also be set in the environment, as BOXOFFICE_<FLAG> (for
--data-dir, BOXOFFICE_DATA_DIR), or in a --config file, YAML or JSON, with
the flags' names as keys:

  id: n1
  data-dir: /var/lib/boxoffice
  http-addr: 0.0.0.0:8080
  raft-addr: 0.0.0.0:9080
  join: 10.0.0.1:8080,10.0.0.2:8080
  log-format: json
  payment-latency: 20ms

A flag on the command line wins over the environment, which wins over the
file, which wins over the default. Unknown keys and bad values are errors,
all listed at once.`,
		Example: `  boxoffice serve --id n1 --data-dir data/n1 --http-addr 127.0.0.1:8081 --raft-addr 127.0.0.1:9081 --bootstrap
  boxoffice serve --id n2 --data-dir data/n2 --http-addr 127.0.0.1:8082 --raft-addr 127.0.0.1:9082 --join 127.0.0.1:8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := resolveFlags(cmd.Flags(), os.LookupEnv); err != nil {
				return usageError{err}
			}
			if !cmd.Flags().Changed("shards") {
				f.shards = 0 // use the data dir's count, or the default
			}
			if err := f.validate(); err != nil {
				return usageError{err}
			}
			return runServe(cmd.Context(), *f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "", "a YAML or JSON (.json) file of settings, keyed by these flags' names; flags and the environment override it")
	fl.StringVar(&f.id, "id", "", "node id, unique in the cluster")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the node's Raft logs, snapshots and Pebble stores")
	fl.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address")
	fl.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:9080", "Raft listen address (one port for all shards)")
	fl.StringVar(&f.httpAdvertise, "http-advertise", "", "HTTP address other nodes use (default: --http-addr)")
	fl.StringVar(&f.raftAdvertise, "raft-advertise", "", "Raft address other nodes use (default: --raft-addr)")
	fl.BoolVar(&f.bootstrap, "bootstrap", false, "found a new cluster with this node as its first member")
	fl.StringVar(&f.join, "join", "", "HTTP address of any member of the cluster to join, or a comma-separated list tried in turn (host names are resolved at each try)")
	fl.IntVar(&f.shards, "shards", 4, "number of shards, fixed when the cluster is bootstrapped")
	fl.StringVar(&f.authSecret, "auth-secret", "", "HS256 secret for bearer tokens, the same on every node (≥ 16 bytes)")
	fl.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", raftnode.DefaultConfig().SnapshotThreshold, "log entries since the last snapshot that make a shard take a new one")
	fl.DurationVar(&f.snapshotInterval, "snapshot-interval", raftnode.DefaultConfig().SnapshotInterval, "how often a shard checks whether to snapshot")
	fl.StringVar(&f.gateway, "payment-gateway", "sim", "sim (simulated, in this process), stripe, or the http://host:port of a shared simulated gateway (as local runs)")
	fl.StringVar(&f.stripeKey, "stripe-key", "", "Stripe secret key, for --payment-gateway stripe")
	fl.StringVar(&f.stripeURL, "stripe-url", "", "Stripe API address (empty: Stripe's; or a stripe-mock)")
	f.sim = payment.DefaultSimConfig()
	fl.DurationVar(&f.sim.LatencyMedian, "payment-latency", f.sim.LatencyMedian, "simulated gateway: median latency of a call")
	fl.Float64Var(&f.sim.LatencySpread, "payment-latency-spread", f.sim.LatencySpread, "simulated gateway: sigma of the log-normal latency")
	fl.Float64Var(&f.sim.DeclineRate, "payment-decline-rate", 0, "simulated gateway: share of charges declined")
	fl.Float64Var(&f.sim.TimeoutRate, "payment-timeout-rate", 0, "simulated gateway: share of charges made whose answer is lost")
	fl.Float64Var(&f.sim.LostRate, "payment-lost-rate", 0, "simulated gateway: share of requests lost before the charge")
	fl.Float64Var(&f.sim.DuplicateRate, "payment-duplicate-rate", 0, "simulated gateway: share of requests it processes twice")
	fl.BoolVar(&f.sim.Outage, "payment-outage", false, "simulated gateway: fail every call")
	fl.DurationVar(&f.checkoutLease, "checkout-lease", payment.DefaultConfig().Lease, "how long a checkout keeps its seats while its charge is in flight")
	fl.StringVar(&f.pprofAddr, "pprof-addr", "", "serve Go profiles (/debug/pprof/) on this address, apart from the API; off if empty (keep it on loopback or an admin network)")
	fl.BoolVar(&f.devSignIn, "dev-sign-in", false, "serve POST /dev/sign-in, which gives ANYONE a token for any subject and role: for a local demo of the web page only")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return c
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// shardsOf returns the shard count recorded in a data dir, or 0.
func shardsOf(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "SHARDS"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func runServe(ctx context.Context, f serveFlags) error {
	logger, err := newLogger(f.logLevel, f.logFormat, os.Stderr)
	if err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	if f.shards == 0 {
		if f.shards = shardsOf(f.dataDir); f.shards == 0 {
			f.shards = raftnode.DefaultConfig().Shards
		}
	}
	if f.httpAdvertise == "" {
		f.httpAdvertise = f.httpAddr
	}
	hln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", f.httpAddr, err)
	}
	defer hln.Close()
	if f.pprofAddr != "" {
		stopPprof, err := startPprof(f.pprofAddr, logger)
		if err != nil {
			return fmt.Errorf("listen for profiles on %s: %w", f.pprofAddr, err)
		}
		defer stopPprof()
	}

	metrics := httpapi.NewMetrics()
	cfg := raftnode.DefaultConfig()
	cfg.ID = f.id
	cfg.DataDir = f.dataDir
	cfg.RaftBind = f.raftAddr
	cfg.RaftAddr = f.raftAdvertise
	cfg.HTTPAddr = f.httpAdvertise
	cfg.Shards = f.shards
	cfg.Bootstrap = f.bootstrap
	cfg.SnapshotThreshold = f.snapshotThreshold
	cfg.SnapshotInterval = f.snapshotInterval
	cfg.Logger = logger
	cfg.Observer = metrics
	cfg.RaftLogOutput = os.Stderr
	node, err := raftnode.New(cfg)
	if err != nil {
		return err
	}

	gw, err := newGateway(f, logger)
	if err != nil {
		node.Close()
		return err
	}
	pcfg := payment.DefaultConfig()
	pcfg.Lease = f.checkoutLease
	pcfg.Logger = logger
	pcfg.Observe = metrics.PaymentOutcome
	checkout, err := payment.New(node, gw, pcfg)
	if err != nil {
		node.Close()
		return err
	}
	checkout.Start()

	hcfg := httpapi.DefaultConfig()
	hcfg.AuthSecret = []byte(f.authSecret)
	hcfg.OpenAPI = api.OpenAPI()
	hcfg.Checkout = checkout
	hcfg.Logger = logger
	hcfg.Metrics = metrics
	hcfg.DevSignIn = f.devSignIn
	if f.devSignIn {
		logger.Warn("--dev-sign-in: POST /dev/sign-in gives anyone a token for any role; never use it in production")
	}
	srv, err := httpapi.New(node, hcfg)
	if err != nil {
		node.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(hln) }()
	logger.Info("serving", "id", f.id, "http", f.httpAddr, "page", "http://"+f.httpAddr+"/", "raft", node.Self().RaftAddr, "shards", f.shards, "data_dir", f.dataDir)

	if f.join != "" && !node.IsVoter() {
		if err := joinCluster(ctx, splitList(f.join), node.Self(), []byte(f.authSecret), logger); err != nil {
			logger.Error("join failed", "err", err)
		}
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		logger.Error("http server stopped", "err", err)
	}
	return shutdown(srv, checkout, node, logger)
}

// newGateway builds the payment gateway the flags name. The simulated one
// lives in this process: after a failover the new leader's look-ups do not
// see the old leader's charges. A real gateway (Stripe) is shared by every
// node.
func newGateway(f serveFlags, logger *slog.Logger) (boxoffice.PaymentGateway, error) {
	switch f.gateway {
	case "sim":
		return payment.NewSim(f.sim)
	case "stripe":
		cfg := payment.DefaultStripeConfig()
		cfg.APIKey = f.stripeKey
		cfg.BaseURL = f.stripeURL
		cfg.Logger = logger
		return payment.NewStripe(cfg)
	}
	if strings.HasPrefix(f.gateway, "http://") || strings.HasPrefix(f.gateway, "https://") {
		return payment.NewHTTPGateway(f.gateway, payment.DefaultConfig().CallTimeout)
	}
	return nil, fmt.Errorf("--payment-gateway must be sim, stripe or http://host:port, not %q", f.gateway)
}

// shutdown stops the node in order: hand off leaderships while the HTTP
// front end still serves (a follower now, it forwards writes to the new
// leaders, so no shard waits for this node's drain), then refuse new HTTP
// work and drain open requests, stop the checkout recovery, then close
// Raft and Pebble. (Checkouts in flight are resolved by the next leader.)
// A second signal exits at once.
func shutdown(srv *httpapi.Server, checkout *payment.Checkout, node *raftnode.Node, logger *slog.Logger) error {
	logger.Info("shutting down")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		logger.Warn("second signal: exiting now")
		os.Exit(1)
	}()
	node.Drain(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	checkout.Close()
	if err := node.Close(); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// joinCluster asks a member to add this node to every shard, retrying until
// it succeeds or ctx ends: the member may still be electing leaders, or (in
// containers) not be up yet or not yet resolvable by name. Each try goes to
// the next of members, so that one member down does not stop a join, and
// is bounded by joinTryTimeout, so that a paused or partitioned member does
// not hold it forever.
func joinCluster(ctx context.Context, members []string, self boxoffice.Node, secret []byte, logger *slog.Logger) error {
	if len(members) == 0 {
		return errors.New("join: no member address")
	}
	body, _ := json.Marshal(self)
	for attempt := 1; ; attempt++ {
		member := members[(attempt-1)%len(members)]
		// A token per try: a join may retry for longer than one lives.
		tok, err := httpapi.MintToken(secret, "node-join", httpapi.RoleAdmin, 10*time.Minute)
		if err != nil {
			return err
		}
		err = joinTry(ctx, member, tok, body)
		if err == nil {
			logger.Info("joined the cluster", "via", member)
			return nil
		}
		logger.Info("join: retrying", "via", member, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// joinTryTimeout bounds one join request: adding a voter to every shard
// takes one membership change per shard, each well under a second on a
// healthy cluster.
const joinTryTimeout = 30 * time.Second

func joinTry(ctx context.Context, member, tok string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, joinTryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+member+"/v1/cluster/members", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
