// Command boxoffice is the one binary: a cluster node (serve), a local
// 3-node cluster for development (local), the operator's commands against
// any node's HTTP API (cluster, events, venues, audit, demo), the load harness
// (bench, chaos) and tools (token, payment-sim).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "boxoffice:", err)
		os.Exit(exitCodeOf(err))
	}
}

// newRoot builds the command tree.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "boxoffice",
		Short:         "A replicated seat-inventory store for ticket on-sales",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), tokenCmd(), localCmd(), paySimCmd())
	root.AddCommand(benchCmd(), chaosCmd())
	root.AddCommand(clusterCmd(), eventsCmd(), venuesCmd(), auditCmd(), demoCmd())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return root
}

// exitCodeOf is exitCode, counting cobra's own command-line errors (an
// unknown command, a missing required flag, a wrong number of arguments)
// as usage errors: cobra reports those as plain errors.
func exitCodeOf(err error) int {
	if err == nil {
		return exitOK
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "required flag", "accepts ", "unknown flag", "unknown shorthand flag", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	return exitCode(err)
}

// env returns the value of an environment variable or a default.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
