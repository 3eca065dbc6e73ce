package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"boxoffice/httpapi"
	"boxoffice/internal/chaos"
)

func chaosCmd() *cobra.Command {
	cfg := chaos.DefaultConfig()
	var nodes int
	var files, kinds string
	var jsonPath string
	c := &cobra.Command{
		Use:   "chaos",
		Short: "Run the container chaos suite: a cluster in Docker, the on-sale, one fault at a time (make chaos, make soak)",
		Long: `Brings up a cluster with docker-compose (the image must exist: make image),
runs the bench's on-sale against every node through recording proxies, and
injects one fault at a time with the Docker CLI: SIGKILL and restart, pause,
the leader isolated from its peers, a random split, rolling restarts, and a
spare node added and removed. Each fault is healed and the cluster settles
before the next. It prints availability (writes answered within 2 s),
failover times, double sales, lost acknowledged writes and whether the
replicas agree, and exits non-zero on any violation or a figure past its
threshold. Containers, networks and volumes are removed at the end.`,
		Example: `  make chaos                      # the short round, part of make test
  make soak DURATION=10m          # the long one
  boxoffice chaos --image boxoffice:abc123 --duration 3m --seed 7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch nodes {
			case 3:
			case 5:
				cfg.Nodes = append(cfg.Nodes, "n4", "n5")
			default:
				return errors.New("--nodes must be 3 or 5")
			}
			cfg.ComposeFiles = splitList(files)
			if nodes == 5 && !cmd.Flags().Changed("compose-file") {
				cfg.ComposeFiles = append(cfg.ComposeFiles, "docker-compose.5.yml")
			}
			cfg.Kinds = splitList(kinds)
			if cfg.Project == "" {
				cfg.Project = fmt.Sprintf("bochaos%d", os.Getpid())
			}
			var raw [24]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return err
			}
			cfg.Secret = hex.EncodeToString(raw[:])
			cfg.Mint = func(subject, role string) (string, error) {
				return httpapi.MintToken([]byte(cfg.Secret), subject, httpapi.Role(role), 24*time.Hour)
			}
			cfg.Log = cmd.ErrOrStderr()
			rep, err := chaos.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rep.Print(cmd.OutOrStdout())
			if jsonPath != "" {
				f, err := os.Create(jsonPath)
				if err != nil {
					return err
				}
				werr := rep.WriteJSON(f)
				if err := errors.Join(werr, f.Close()); err != nil {
					return err
				}
			}
			if len(rep.Failures) > 0 {
				return fmt.Errorf("chaos: FAILED: %s", strings.Join(rep.Failures, "; "))
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&cfg.Image, "image", env("BOXOFFICE_IMAGE", ""), "the boxoffice image to run (make image prints its tag)")
	fl.IntVar(&nodes, "nodes", 3, "3, or 5 (adds docker-compose.5.yml)")
	fl.StringVar(&files, "compose-file", "docker-compose.yml", "comma-separated compose files")
	fl.StringVar(&cfg.Project, "project", "", "compose project name (default bochaos<pid>: unique per run)")
	fl.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the on-sale runs under faults")
	fl.StringVar(&kinds, "faults", strings.Join(cfg.Kinds, ","), "fault kinds, comma-separated: "+strings.Join(chaos.Kinds, ", "))
	fl.DurationVar(&cfg.FaultHold, "fault-hold", cfg.FaultHold, "how long a kill, pause or partition lasts")
	fl.DurationVar(&cfg.Quiet, "quiet", cfg.Quiet, "pause between a fault settling and the next")
	fl.DurationVar(&cfg.SettleTimeout, "settle-timeout", cfg.SettleTimeout, "how long the cluster may take to settle after a fault")
	fl.IntVar(&cfg.Users, "users", cfg.Users, "virtual users of the on-sale")
	fl.IntVar(&cfg.Seats, "seats", cfg.Seats, "seats of each round's event")
	fl.DurationVar(&cfg.Round, "round", cfg.Round, "longest round of the on-sale (each a new event, checked at its end)")
	fl.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the fault schedule and the bench")
	fl.Float64Var(&cfg.MinAvailability, "min-availability", cfg.MinAvailability, "fail below this share of writes answered within 2 s")
	fl.DurationVar(&cfg.MaxFailoverP99, "max-failover-p99", 0, "fail above this failover p99 (0: not checked)")
	fl.BoolVar(&cfg.Keep, "keep", false, "leave the containers up after a failed run")
	fl.StringVar(&jsonPath, "json", "", "write the report as JSON to this file")
	fl.StringVar(&cfg.LogDir, "logs", "", "save every node's whole log to this directory at the end")
	return c
}
