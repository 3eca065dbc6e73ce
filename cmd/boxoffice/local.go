package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"boxoffice/httpapi"
	"boxoffice/payment"
)

type localFlags struct {
	nodes    int
	dataDir  string
	httpBase int
	raftBase int
	shards   int
	pprof    int
	demo     string
	seats    int
	sim      payment.SimConfig
}

func localCmd() *cobra.Command {
	var f localFlags
	c := &cobra.Command{
		Use:   "local",
		Short: "Run a local cluster of several nodes on 127.0.0.1 with a demo event (what `make run` does)",
		Long: `Starts --nodes processes of 'boxoffice serve' on 127.0.0.1, the first with
--bootstrap and the others with --join, waits until every shard has a leader,
creates the demo event if it does not exist, and prints where to look. Data
and logs stay under --data-dir, so running it again resumes the same cluster.
Ctrl-C stops every node cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLocal(cmd.Context(), f, cmd.OutOrStdout()) },
	}
	fl := c.Flags()
	fl.IntVar(&f.nodes, "nodes", 3, "number of nodes")
	fl.StringVar(&f.dataDir, "data-dir", "data", "directory for every node's data and logs")
	fl.IntVar(&f.httpBase, "http-port", 8081, "HTTP port of the first node; the others follow")
	fl.IntVar(&f.raftBase, "raft-port", 9081, "Raft port of the first node; the others follow")
	fl.IntVar(&f.shards, "shards", 4, "number of shards")
	fl.IntVar(&f.pprof, "pprof-port", 0, "serve each node's Go profiles (/debug/pprof/) from this port on; 0: off")
	fl.StringVar(&f.demo, "demo-event", "demo-arena", "id of the demo event ('' for none)")
	fl.IntVar(&f.seats, "demo-seats", 100_000, "seats of the demo event (a multiple of 5,000)")
	f.sim = payment.DefaultSimConfig()
	fl.DurationVar(&f.sim.LatencyMedian, "payment-latency", f.sim.LatencyMedian, "simulated gateway: median latency of a call")
	fl.Float64Var(&f.sim.DeclineRate, "payment-decline-rate", 0, "simulated gateway: share of charges declined")
	fl.Float64Var(&f.sim.TimeoutRate, "payment-timeout-rate", 0, "simulated gateway: share of charges made whose answer is lost")
	return c
}

// localSecret returns the cluster's auth secret, made once and kept in the
// data dir so that tokens printed by one run work in the next.
func localSecret(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "auth-secret")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw[:])
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

func runLocal(ctx context.Context, f localFlags, out io.Writer) error {
	if f.nodes < 1 || f.nodes > 9 {
		return errors.New("--nodes must be 1..9")
	}
	if f.seats < 5000 || f.seats%5000 != 0 || f.seats > 200_000 {
		return errors.New("--demo-seats must be a multiple of 5000 between 5000 and 200000")
	}
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return err
	}
	secret, err := localSecret(f.dataDir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// One simulated payment gateway for every node, as a real provider is:
	// a new leader's look-ups see the charges an old one made.
	sim, err := payment.NewSim(f.sim)
	if err != nil {
		return err
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gateway := "http://" + gln.Addr().String()
	gsrv := &http.Server{Handler: payment.SimServer(sim), ReadHeaderTimeout: 10 * time.Second}
	go gsrv.Serve(gln)
	defer gsrv.Close()
	httpAddr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", f.httpBase+i) }
	var procs []*exec.Cmd
	stopAll := func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				p.Process.Kill()
			}
		}
	}
	for i := 0; i < f.nodes; i++ {
		id := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(f.dataDir, id)
		args := []string{"serve", "--id", id, "--data-dir", dir,
			"--http-addr", httpAddr(i), "--raft-addr", fmt.Sprintf("127.0.0.1:%d", f.raftBase+i),
			"--shards", fmt.Sprint(f.shards), "--payment-gateway", gateway,
			// The web page's sign-in form: this cluster is a local demo.
			"--dev-sign-in"}
		if f.pprof != 0 {
			args = append(args, "--pprof-addr", fmt.Sprintf("127.0.0.1:%d", f.pprof+i))
		}
		switch {
		case i == 0:
			args = append(args, "--bootstrap")
		default:
			args = append(args, "--join", httpAddr(0))
		}
		logf, err := os.OpenFile(filepath.Join(f.dataDir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			stopAll()
			return err
		}
		p := exec.Command(self, args...)
		p.Env = append(os.Environ(), "BOXOFFICE_AUTH_SECRET="+secret)
		p.Stdout, p.Stderr = logf, logf
		// Own process group: the terminal's Ctrl-C reaches us, and we stop
		// the nodes in order.
		p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.Start(); err != nil {
			stopAll()
			return err
		}
		procs = append(procs, p)
		os.WriteFile(filepath.Join(f.dataDir, id+".pid"), []byte(fmt.Sprintln(p.Process.Pid)), 0o644)
	}
	defer stopAll()

	admin, _ := httpapi.MintToken([]byte(secret), "admin", httpapi.RoleAdmin, 30*24*time.Hour)
	buyer, _ := httpapi.MintToken([]byte(secret), "buyer1", httpapi.RoleBuyer, 30*24*time.Hour)
	fmt.Fprintf(out, "starting %d nodes (logs in %s/n*.log) ...\n", f.nodes, f.dataDir)
	cl, err := waitCluster(ctx, httpAddr(0), admin, f.nodes, f.shards)
	if err != nil {
		return err
	}
	if f.demo != "" {
		if err := ensureDemo(ctx, httpAddr(0), admin, f.demo, f.seats); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "simulated payment gateway, shared by the nodes: %s (median latency %v)\n", gateway, f.sim.LatencyMedian)
	printLocal(out, f, cl, admin, buyer, httpAddr)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping the nodes ...")
	return nil
}

type clusterView struct {
	Nodes []struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"httpAddr"`
		Voter    bool   `json:"voter"`
		Leads    []int  `json:"leads"`
	} `json:"nodes"`
	Shards []struct {
		ID     int      `json:"id"`
		Leader string   `json:"leader"`
		Voters []string `json:"voters"`
	} `json:"shards"`
}

// waitCluster polls until every shard has a leader and every node is a voter.
func waitCluster(ctx context.Context, addr, token string, nodes, shards int) (*clusterView, error) {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var cl clusterView
		code, err := call(ctx, "GET", addr, "/v1/cluster", token, nil, &cl)
		if err == nil && code == 200 && len(cl.Shards) == shards {
			ok := true
			for _, s := range cl.Shards {
				ok = ok && s.Leader != "" && len(s.Voters) == nodes
			}
			// And leaders spread (each node leads floor or ceil of S/N), so
			// that no shard is handed over right after we say "ready".
			least, most := shards, 0
			for _, n := range cl.Nodes {
				least, most = min(least, len(n.Leads)), max(most, len(n.Leads))
			}
			if ok && len(cl.Nodes) == nodes && most-least <= 1 {
				return &cl, nil
			}
			last = "waiting for every shard to have a leader, every node to join and leaders to spread"
		} else if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("cluster not ready after 60s (%s); see the node logs", last)
}

func ensureDemo(ctx context.Context, addr, token, id string, seats int) error {
	code, err := call(ctx, "GET", addr, "/v1/events/"+id, "", nil, nil)
	if err != nil {
		return err
	}
	if code == 200 {
		return nil
	}
	letters := "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	nsec := seats / 5000
	var sections []map[string]any
	for i := 0; i < nsec; i++ {
		cat := "upper"
		switch {
		case i < nsec/4:
			cat = "floor"
		case i < nsec*2/3:
			cat = "lower"
		}
		name := string(letters[i%26])
		if i >= 26 {
			name += fmt.Sprint(i / 26)
		}
		sections = append(sections, map[string]any{"id": name, "category": cat, "rows": 100, "seatsPerRow": 50})
	}
	ev := map[string]any{
		"id": id, "name": "Demo Arena: Opening Night", "type": "concert", "location": "Berlin",
		"startsAt": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"categories": []map[string]any{
			{"id": "floor", "name": "Floor", "priceCents": 12900},
			{"id": "lower", "name": "Lower tier", "priceCents": 8900},
			{"id": "upper", "name": "Upper tier", "priceCents": 4900},
		},
		"venue":  map[string]any{"sections": sections},
		"limits": map[string]any{"maxSeatsPerBuyer": 8, "holdTTLSeconds": 600},
	}
	var prob map[string]any
	code, err = call(ctx, "POST", addr, "/v1/events", token, ev, &prob)
	if err != nil {
		return err
	}
	if code != 201 && code != 409 {
		return fmt.Errorf("create demo event: %d %v", code, prob)
	}
	return nil
}

func call(ctx context.Context, method, addr, path, token string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, "http://"+addr+path, r)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
	}
	return resp.StatusCode, nil
}

func printLocal(out io.Writer, f localFlags, cl *clusterView, admin, buyer string, httpAddr func(int) string) {
	fmt.Fprintf(out, "\nboxoffice: a %d-node cluster is running (%d shards, data in %s/)\n\n", f.nodes, f.shards, f.dataDir)
	fmt.Fprintln(out, "  node  http                  leads shards")
	for _, n := range cl.Nodes {
		fmt.Fprintf(out, "  %-4s  http://%-15s  %v\n", n.ID, n.HTTPAddr, n.Leads)
	}
	fmt.Fprintln(out)
	for _, s := range cl.Shards {
		slices.Sort(s.Voters)
		fmt.Fprintf(out, "  shard %d: leader %s, voters %v\n", s.ID, s.Leader, s.Voters)
	}
	a := httpAddr(0)
	if f.demo == "" {
		fmt.Fprintf(out, "\nno demo event (--demo-event ''): create one with `boxoffice demo` or POST /v1/events.\n\n")
		fmt.Fprintf(out, "web page (sign in with any name, --dev-sign-in is on): http://%s/\n\n", a)
		fmt.Fprintf(out, "tokens (valid 30 days):\n  export ADMIN=%s\n  export BUYER=%s\n\n", admin, buyer)
		fmt.Fprintf(out, "try:\n  curl -s http://%s/v1/cluster | head -c 600; echo\n", a)
		fmt.Fprintln(out, "\nCtrl-C stops the cluster; `make run` again resumes it with its data.")
		return
	}
	fmt.Fprintf(out, "\ndemo event %q with %d seats.\n\n", f.demo, f.seats)
	fmt.Fprintf(out, "web page (live seat map; sign in with any name, --dev-sign-in is on): http://%s/#/event/%s\n\n", a, f.demo)
	fmt.Fprintf(out, "tokens (valid 30 days):\n  export ADMIN=%s\n  export BUYER=%s\n\n", admin, buyer)
	fmt.Fprintf(out, "try (any node answers; a follower forwards writes to the leader):\n")
	fmt.Fprintf(out, "  curl -s http://%s/v1/cluster | head -c 600; echo\n", a)
	fmt.Fprintf(out, "  curl -s http://%s/v1/events/%s | head -c 600; echo\n", httpAddr(f.nodes-1), f.demo)
	fmt.Fprintf(out, "  curl -s -X POST -H \"Authorization: Bearer $BUYER\" -d '{\"seats\":[\"A-1-1\",\"A-1-2\"]}' http://%s/v1/events/%s/holds; echo\n", httpAddr(f.nodes-1), f.demo)
	fmt.Fprintf(out, "  curl -s 'http://%s/v1/events/%s/seats?section=A&status=held'; echo\n", a, f.demo)
	fmt.Fprintln(out, "\nCtrl-C stops the cluster; `make run` again resumes it with its data.")
}
