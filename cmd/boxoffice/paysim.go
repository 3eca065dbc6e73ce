package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"boxoffice/payment"
)

// paySimCmd serves one simulated payment gateway over HTTP for several
// nodes, the way a real provider is shared: `boxoffice local` runs one in
// its own process, and a container cluster runs this as a container of its
// own (docker-compose.yml, service gateway), which no fault touches.
func paySimCmd() *cobra.Command {
	var listen string
	sim := payment.DefaultSimConfig()
	c := &cobra.Command{
		Use:   "payment-sim",
		Short: "Serve a simulated payment gateway over HTTP, shared by the nodes (serve --payment-gateway http://HOST:PORT)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPaySim(cmd.Context(), listen, sim, cmd.OutOrStdout())
		},
	}
	fl := c.Flags()
	fl.StringVar(&listen, "listen", env("BOXOFFICE_PAYMENT_SIM_ADDR", "127.0.0.1:7070"), "HTTP listen address")
	fl.DurationVar(&sim.LatencyMedian, "payment-latency", sim.LatencyMedian, "median latency of a call")
	fl.Float64Var(&sim.LatencySpread, "payment-latency-spread", sim.LatencySpread, "sigma of the log-normal latency")
	fl.Float64Var(&sim.DeclineRate, "payment-decline-rate", 0, "share of charges declined")
	fl.Float64Var(&sim.TimeoutRate, "payment-timeout-rate", 0, "share of charges made whose answer is lost")
	fl.Float64Var(&sim.LostRate, "payment-lost-rate", 0, "share of requests lost before the charge")
	fl.Float64Var(&sim.DuplicateRate, "payment-duplicate-rate", 0, "share of requests processed twice")
	return c
}

func runPaySim(ctx context.Context, listen string, cfg payment.SimConfig, out io.Writer) error {
	sim, err := payment.NewSim(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: payment.SimServer(sim), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "simulated payment gateway on http://%s (median latency %v)\n", ln.Addr(), cfg.LatencyMedian)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
