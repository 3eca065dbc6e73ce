package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"boxoffice"
	"boxoffice/client"
)

// Exit codes that scripts can test.
const (
	exitOK          = 0
	exitError       = 1 // anything else: a bad file, a refused request
	exitUsage       = 2 // a bad command line
	exitNotFound    = 3 // the event, hold, order or member does not exist
	exitConflict    = 4 // it exists already, or the state forbids it now
	exitUnavailable = 5 // the cluster did not answer (no leader, timeout): try again
	exitViolation   = 6 // a check found a broken guarantee (audit, bench)
)

// usageError marks an error in the command line itself.
type usageError struct{ error }

// exitCode maps an error to the process's exit code.
func exitCode(err error) int {
	var ue usageError
	var ce *client.Error
	var ve violationError
	var ne net.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errEventLive):
		return exitUnavailable // no node answered
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ve):
		return exitViolation
	case errors.As(err, &ce):
		switch ce.Code {
		case boxoffice.CodeEventNotFound, boxoffice.CodeHoldNotFound, boxoffice.CodeOrderNotFound,
			boxoffice.CodeSeatNotFound, boxoffice.CodeMemberNotFound, boxoffice.CodeNotFound:
			return exitNotFound
		case boxoffice.CodeEventExists, boxoffice.CodeConflict, boxoffice.CodeSeatUnavailable,
			boxoffice.CodeHoldNotActive, boxoffice.CodeOrderNotActive, boxoffice.CodeLayoutShrink:
			return exitConflict
		}
		if ce.Retryable || ce.Status == 0 && ce.Code == boxoffice.CodeUnavailable {
			return exitUnavailable
		}
	}
	return exitError
}

// violationError is a check that failed: the guarantee, not the tool.
type violationError struct{ error }

// remote holds the flags of the commands that talk to a cluster.
type remote struct {
	targets string
	token   string
	output  string
}

func (r *remote) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&r.targets, "target", env("BOXOFFICE_TARGET", "http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083"),
		"comma-separated node URLs (any node answers; others are tried on failure)")
	c.PersistentFlags().StringVar(&r.token, "token", env("BOXOFFICE_TOKEN", ""), "bearer token, as boxoffice token mints it")
	c.PersistentFlags().StringVarP(&r.output, "output", "o", "text", "text or json")
}

// client builds a Go client for the targets.
func (r *remote) client() (*client.Client, error) {
	if r.output != "text" && r.output != "json" {
		return nil, usageError{fmt.Errorf("--output must be text or json, not %q", r.output)}
	}
	cfg := client.DefaultConfig()
	for _, t := range strings.Split(r.targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Nodes = append(cfg.Nodes, t)
		}
	}
	cfg.Token = r.token
	c, err := client.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// print writes v as indented JSON with --output json, else calls text.
func (r *remote) print(w io.Writer, v any, text func(io.Writer)) error {
	if r.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
