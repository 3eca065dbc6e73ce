package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"boxoffice/bench"
	"boxoffice/httpapi"
)

// runQueueBench runs the waiting-room workload (bench --workload queue):
// joins and position look-ups through the Go client, against --target or a
// local cluster it starts.
func runQueueBench(ctx context.Context, f benchFlags, stdout, stderr io.Writer) (err error) {
	cfg := bench.QueueConfig{Seats: f.seats, Users: f.users, Joins: f.joins, Lookups: f.lookups,
		Duration: f.duration, Seed: f.seed, Log: stderr}
	probe := cfg
	probe.Targets, probe.Mint = []string{"http://127.0.0.1:1"}, func(string, string) (string, error) { return "", nil }
	if err := probe.Validate(); err != nil {
		return err
	}
	secret := f.authSecret
	if f.target != "" {
		for _, t := range strings.Split(f.target, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Targets = append(cfg.Targets, t)
			}
		}
		if secret == "" {
			return errors.New("--target needs the cluster's secret to mint buyer tokens: --auth-secret or BOXOFFICE_AUTH_SECRET")
		}
		cfg.ServerPIDs = f.serverPIDs
	} else {
		if f.nodes < 1 || f.nodes > 9 {
			return errors.New("--nodes must be 1..9")
		}
		lc, lerr := startBenchCluster(ctx, f.nodes, f.shards, nil, stderr)
		if lerr != nil {
			return lerr
		}
		defer func() { lc.stop(stderr, f.keepData || err != nil) }()
		secret = lc.secret
		cfg.Targets, cfg.ServerPIDs = lc.urls(), lc.pids()
	}
	cfg.Mint = func(subject, role string) (string, error) {
		return httpapi.MintToken([]byte(secret), subject, httpapi.Role(role), 24*time.Hour)
	}
	cfg.Token = f.token
	if cfg.Token == "" {
		if cfg.Token, err = cfg.Mint("bench-organiser", string(httpapi.RoleOrganiser)); err != nil {
			return err
		}
	}
	res, err := bench.RunQueue(ctx, cfg)
	if err != nil {
		return err
	}
	bench.WriteQueueSummary(stdout, res)
	if f.jsonPath != "" {
		if err := writeFile(f.jsonPath, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}); err != nil {
			return err
		}
	}
	if !res.OK {
		return fmt.Errorf("queue check failed: the queue counts %d places for %d acknowledged joins (%d errors)", res.QueueJoined, res.Joins, res.JoinErrors)
	}
	return nil
}
