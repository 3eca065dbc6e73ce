package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseServe parses serve's command line and resolves it against env and
// the --config file, as serve does before it validates.
func parseServe(t *testing.T, env map[string]string, args ...string) (*serveFlags, func(string) bool, error) {
	t.Helper()
	f := new(serveFlags)
	c := newServeCmd(f)
	require.NoError(t, c.ParseFlags(args))
	err := resolveFlags(c.Flags(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return f, func(name string) bool { return c.Flags().Changed(name) }, err
}

func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// A flag wins over the environment, which wins over the file, which wins
// over the default; YAML and JSON files say the same.
func TestServeConfigPrecedence(t *testing.T) {
	files := map[string]string{
		"node.yaml": `
id: file-id
data-dir: /file/data
http-addr: 10.0.0.1:8080
log-level: debug
shards: 8
bootstrap: true
payment-latency: 20ms
payment-decline-rate: 0.25
`,
		"node.json": `{"id":"file-id","data-dir":"/file/data","http-addr":"10.0.0.1:8080","log-level":"debug",
 "shards":8,"bootstrap":true,"payment-latency":"20ms","payment-decline-rate":0.25}`,
	}
	for name, body := range files {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, name, body)
			env := map[string]string{"BOXOFFICE_HTTP_ADDR": "10.0.0.2:8080", "BOXOFFICE_LOG_LEVEL": "warn", "BOXOFFICE_AUTH_SECRET": "0123456789abcdef-env"}
			f, changed, err := parseServe(t, env, "--config", path, "--log-level", "error")
			require.NoError(t, err)
			assert.Equal(t, "error", f.logLevel, "flag over env over file")
			assert.Equal(t, "10.0.0.2:8080", f.httpAddr, "env over file")
			assert.Equal(t, "0123456789abcdef-env", f.authSecret, "env over default")
			assert.Equal(t, "file-id", f.id, "file over default")
			assert.Equal(t, "/file/data", f.dataDir)
			assert.Equal(t, 8, f.shards)
			assert.True(t, changed("shards"), "a shard count from the file counts as given")
			assert.True(t, f.bootstrap)
			assert.Equal(t, 20*time.Millisecond, f.sim.LatencyMedian)
			assert.Equal(t, 0.25, f.sim.DeclineRate)
			assert.Equal(t, "127.0.0.1:9080", f.raftAddr, "default where nothing else says")
			assert.False(t, changed("raft-addr"))
			require.NoError(t, f.validate())
		})
	}

	// The file itself may come from the environment.
	path := writeConfig(t, "n.yaml", "id: from-env-file\n")
	f, _, err := parseServe(t, map[string]string{"BOXOFFICE_CONFIG": path})
	require.NoError(t, err)
	assert.Equal(t, "from-env-file", f.id)
}

// Every problem is listed at once: unknown keys, values of the wrong type in
// the file and in the environment.
func TestServeConfigRejects(t *testing.T) {
	path := writeConfig(t, "bad.yaml", "data_dir: /x\nshards: many\nbootstrap: maybe\njoin: [a, b]\nid: n1\n")
	_, _, err := parseServe(t, map[string]string{"BOXOFFICE_PAYMENT_DECLINE_RATE": "often"}, "--config", path)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`unknown key "data_dir"`,
		"key join must be a single value",
		`config key shards: "many" is not a valid int`,
		`config key bootstrap: "maybe" is not a valid bool`,
		`BOXOFFICE_PAYMENT_DECLINE_RATE="often": not a valid float64`,
	} {
		assert.Contains(t, msg, want)
	}

	_, _, err = parseServe(t, nil, "--config", writeConfig(t, "x.json", `{"id": "n1",`))
	assert.ErrorContains(t, err, "x.json")
	_, _, err = parseServe(t, nil, "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "missing.yaml")

	// Values of the right type that make no sense together.
	f, _, err := parseServe(t, map[string]string{"BOXOFFICE_JOIN": "10.0.0.1:8080"},
		"--bootstrap", "--auth-secret", "short", "--log-format", "xml", "--payment-gateway", "stripe",
		"--http-addr", "nohost", "--payment-decline-rate", "2", "--shards", "5000")
	require.NoError(t, err)
	err = f.validate()
	require.Error(t, err)
	msg = err.Error()
	for _, want := range []string{
		"--id is required", "--data-dir is required", "--bootstrap and --join exclude each other",
		"--auth-secret", "--log-format must be text or json", "needs --stripe-key",
		`--http-addr "nohost" is not host:port`, "--shards 5000 out of range",
	} {
		assert.Contains(t, msg, want)
	}
	assert.Len(t, strings.Split(msg, "\n"), 8, msg)
}

// serve refuses a bad configuration before it opens anything, with exit
// code 2 and every problem.
func TestServeBadConfigExitsWithUsage(t *testing.T) {
	path := writeConfig(t, "node.yaml", "id: n1\nhttp-adress: 127.0.0.1:1\n")
	out, code := run(t, "serve", "--config", path, "--data-dir", t.TempDir())
	assert.Equal(t, exitUsage, code, out)
	assert.Contains(t, out, `unknown key "http-adress"`)
}
