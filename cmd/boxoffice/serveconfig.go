package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"boxoffice"
	"boxoffice/raftnode"
)

// A node's configuration comes from, in this order of precedence: its
// command-line flags, the environment (BOXOFFICE_<FLAG>, e.g.
// BOXOFFICE_DATA_DIR for --data-dir), a file given with --config (YAML or
// JSON: the flags' names as keys), and the flags' defaults. Every problem is
// reported at once, before anything starts.

// configFileBytesMax bounds a config file.
const configFileBytesMax = 1 << 20

// envName is the environment variable of a flag.
func envName(flag string) string {
	return "BOXOFFICE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// resolveFlags sets every flag of fs that the command line left unset from
// the environment, else from the --config file, and lists every problem: an
// unreadable file, an unknown key, a value of the wrong type.
func resolveFlags(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	var errs []error
	fromEnv := func(name string) (string, bool) {
		if fs.Lookup(name).Changed {
			return "", false
		}
		return lookupEnv(envName(name))
	}
	if v, ok := fromEnv("config"); ok {
		if err := fs.Set("config", v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envName("config"), err))
		}
	}
	var file map[string]string
	if path := fs.Lookup("config").Value.String(); path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			if file == nil {
				return err // unreadable: nothing more to say
			}
			errs = append(errs, err)
		}
		for _, k := range slices.Sorted(mapKeys(file)) {
			if f := fs.Lookup(k); f == nil || k == "config" || k == "help" {
				errs = append(errs, fmt.Errorf("%s: unknown key %q (the keys are serve's flag names, e.g. data-dir)", path, k))
			}
		}
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a valid %s", envName(f.Name), v, f.Value.Type()))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("config key %s: %q is not a valid %s", f.Name, v, f.Value.Type()))
			}
		}
	})
	return errors.Join(errs...)
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// readConfigFile reads a flat map of flag names to single values, JSON if
// the name ends in .json, else YAML, and returns the values as a flag would
// take them on the command line.
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, configFileBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(b) > configFileBytesMax {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, configFileBytesMax)
	}
	raw := map[string]any{}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		err = dec.Decode(&raw)
	} else {
		err = yaml.Unmarshal(b, &raw)
	}
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	var errs []error
	for _, k := range slices.Sorted(mapKeys(raw)) {
		switch v := raw[k].(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case int:
			out[k] = strconv.Itoa(v)
		case uint64:
			out[k] = strconv.FormatUint(v, 10)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case json.Number:
			out[k] = v.String()
		case nil:
			errs = append(errs, fmt.Errorf("config file %s: key %s has no value", path, k))
		default:
			errs = append(errs, fmt.Errorf("config file %s: key %s must be a single value, not a %T", path, k, v))
		}
	}
	return out, errors.Join(errs...)
}

// validate lists every problem of a node's configuration at once.
func (f *serveFlags) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case f.id == "":
		add("--id is required (or BOXOFFICE_ID, or id in the config file)")
	case !boxoffice.ValidID(f.id):
		add("--id %q must match [A-Za-z0-9._-]{1,%d}", f.id, boxoffice.IDLenMax)
	}
	if f.dataDir == "" {
		add("--data-dir is required (or BOXOFFICE_DATA_DIR, or data-dir in the config file)")
	}
	if f.bootstrap && f.join != "" {
		add("--bootstrap and --join exclude each other")
	}
	if f.shards < 0 || f.shards > raftnode.ShardsMax {
		add("--shards %d out of range 1..%d", f.shards, raftnode.ShardsMax)
	}
	if len(f.authSecret) < 16 {
		add("--auth-secret (or BOXOFFICE_AUTH_SECRET) must be at least 16 bytes")
	}
	for _, a := range []struct{ name, addr string }{
		{"http-addr", f.httpAddr}, {"raft-addr", f.raftAddr}, {"http-advertise", f.httpAdvertise}, {"raft-advertise", f.raftAdvertise}, {"pprof-addr", f.pprofAddr},
	} {
		if a.addr == "" && (a.name == "http-addr" || a.name == "raft-addr") {
			add("--%s is required", a.name)
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); a.addr != "" && err != nil {
			add("--%s %q is not host:port", a.name, a.addr)
		}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(f.logLevel)); err != nil {
		add("--log-level must be debug, info, warn or error, not %q", f.logLevel)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		add("--log-format must be text or json, not %q", f.logFormat)
	}
	switch {
	case f.gateway == "sim":
		if err := f.sim.Validate(); err != nil {
			add("simulated gateway: %v", err)
		}
	case f.gateway == "stripe":
		if f.stripeKey == "" {
			add("--payment-gateway stripe needs --stripe-key (or BOXOFFICE_STRIPE_KEY)")
		}
	case strings.HasPrefix(f.gateway, "http://") || strings.HasPrefix(f.gateway, "https://"):
	default:
		add("--payment-gateway must be sim, stripe or http://host:port, not %q", f.gateway)
	}
	if f.snapshotInterval <= 0 {
		add("--snapshot-interval must be positive, not %v", f.snapshotInterval)
	}
	if f.snapshotThreshold < 1 {
		add("--snapshot-threshold must be positive")
	}
	if f.checkoutLease <= 0 {
		add("--checkout-lease must be positive, not %v", f.checkoutLease)
	}
	return errors.Join(errs...)
}
