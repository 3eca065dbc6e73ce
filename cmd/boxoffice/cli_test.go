package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// run executes the CLI in-process and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString("error: " + err.Error())
	}
	return out.String(), exitCodeOf(err)
}

// The operator's commands against a real 3-node cluster: status shows
// every shard's leader, an event imported from CSV is listed and shown,
// and errors end with the exit codes scripts test.
func TestCLIAgainstACluster(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	var targets []string
	for _, m := range c.Members {
		targets = append(targets, "http://"+m.HTTPAddr)
	}
	target := "--target=" + strings.Join(targets, ",")
	org := "--token=" + testcluster.Token("org1", httpapi.RoleOrganiser)

	out, code := run(t, "cluster", "status", target)
	require.Equal(t, exitOK, code, out)
	t.Logf("cluster status:\n%s", out)
	for _, m := range c.Members {
		assert.Contains(t, out, m.ID)
	}
	assert.Equal(t, 2, strings.Count(out, "L"+"\t")+strings.Count(out, " L "), "one leader per shard:\n%s", out)

	out, code = run(t, "cluster", "status", target, "-o", "json")
	require.Equal(t, exitOK, code, out)
	var st struct {
		Shards []struct{ Leader string } `json:"shards"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.Shards, 2)
	for _, s := range st.Shards {
		assert.NotEmpty(t, s.Leader)
	}

	dir := t.TempDir()
	csv := filepath.Join(dir, "arena.csv")
	require.NoError(t, os.WriteFile(csv, []byte("section,category,rows,seats_per_row,price_cents,category_name\nA,floor,4,5,12900,Floor\nB,upper,2,10,4900,Upper tier\nC,upper,1,3,4900,Upper tier\n"), 0o644))
	out, code = run(t, "events", "import", target, org, "--file", csv, "--id", "arena-1", "--name", "Arena", "--starts-at", "2026-06-12T20:00:00Z")
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "created arena-1: 43 seats in 3 sections")

	out, code = run(t, "events", "list", target)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "arena-1")
	assert.Contains(t, out, "2026-06-12 20:00")

	out, code = run(t, "events", "show", "arena-1", target)
	require.Equal(t, exitOK, code, out)
	t.Logf("events show:\n%s", out)
	assert.Contains(t, out, "floor")
	assert.Regexp(t, `upper\s+49\.00\s+23\s+23\s+0\s+0`, out)

	// Exit codes: exists, not found, usage, bad file, no node answers.
	out, code = run(t, "events", "import", target, org, "--file", csv, "--id", "arena-1", "--name", "Again")
	assert.Equal(t, exitConflict, code, out)
	out, code = run(t, "events", "show", "nope", target)
	assert.Equal(t, exitNotFound, code, out)
	out, code = run(t, "events", "show", target)
	assert.Equal(t, exitUsage, code, out)
	out, code = run(t, "events", "import", target, org, "--id", "x")
	assert.Equal(t, exitUsage, code, out)
	out, code = run(t, "cluster", "status", target, "-o", "yaml")
	assert.Equal(t, exitUsage, code, out)
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("section,category,rows,seats_per_row,price_cents\nA,floor,4,5,100\nB,floor,4,5,200\n"), 0o644))
	out, code = run(t, "events", "import", target, org, "--file", bad, "--id", "bad-1", "--name", "Bad")
	assert.Equal(t, exitError, code, out)
	assert.Contains(t, out, "line 3: category \"floor\" has another price")
	out, code = run(t, "events", "list", "--target=http://127.0.0.1:1")
	assert.Equal(t, exitUnavailable, code, out)
}

func TestParseLayoutCSVRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no header":        "",
		"wrong header":     "sec,category,rows,seats_per_row,price_cents\n",
		"negative rows":    "section,category,rows,seats_per_row,price_cents\nA,x,-1,5,100\n",
		"not a number":     "section,category,rows,seats_per_row,price_cents\nA,x,one,5,100\n",
		"short line":       "section,category,rows,seats_per_row,price_cents\nA,x,1\n",
		"other price":      "section,category,rows,seats_per_row,price_cents\nA,x,1,5,100\nB,x,1,5,101\n",
		"too many columns": "section,category,rows,seats_per_row,price_cents,category_name,extra\n",
	} {
		_, _, err := parseLayout("v.csv", []byte(in))
		assert.Error(t, err, name)
	}
	cats, v, err := parseLayout("v.csv", []byte("section,category,rows,seats_per_row,price_cents\nA,x,2,5,100\nB,x,1,5,100\n"))
	require.NoError(t, err)
	assert.Len(t, cats, 1)
	assert.Len(t, v.Sections, 2)
}

// An organiser grants access and reads the report through the CLI; the
// grantee reads the CSV; a revoked grantee is refused (forbidden).
func TestCLIAccessAndReport(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	target := "--target=http://" + c.Members[0].HTTPAddr + ",http://" + c.Members[1].HTTPAddr
	org := "--token=" + testcluster.Token("org1", httpapi.RoleOrganiser)
	acct := "--token=" + testcluster.Token("acct", httpapi.RoleBuyer)
	code, body := c.Do(c.Members[0], "POST", "/v1/events", testcluster.Token("org1", httpapi.RoleOrganiser), testcluster.Event("cli-rep", 1, 2, 3))
	require.Equal(t, 201, code, "%s", body)
	code, body = c.Do(c.Members[0], "POST", "/v1/events/cli-rep/holds", testcluster.Token("b1", httpapi.RoleBuyer), `{"seats":["A-1-1"]}`)
	require.Equal(t, 201, code, "%s", body)

	out, code := run(t, "events", "access", "grant", "cli-rep", "acct", "view", target, org)
	require.Equal(t, exitOK, code, out)
	out, code = run(t, "events", "access", "list", "cli-rep", target, org)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "org1")
	assert.Regexp(t, `acct\s+view`, out)

	out, code = run(t, "events", "report", "cli-rep", target, acct)
	require.Equal(t, exitOK, code, out)
	t.Logf("events report:\n%s", out)
	assert.Regexp(t, `section\s+A\s+std\s+6\s+5\s+1\s+0`, out)
	out, code = run(t, "events", "report", "cli-rep", "--csv", target, acct)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "section,A,std,6,5,1,0,0\n")
	out, code = run(t, "events", "report", "cli-rep", "-o", "json", target, org)
	require.Equal(t, exitOK, code, out)
	var rep struct{ Total struct{ Held int } }
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, 1, rep.Total.Held)

	out, code = run(t, "events", "access", "grant", "cli-rep", "acct", "owner", target, org)
	assert.NotEqual(t, exitOK, code, out)
	out, code = run(t, "events", "access", "revoke", "cli-rep", "acct", target, org)
	require.Equal(t, exitOK, code, out)
	out, code = run(t, "events", "report", "cli-rep", target, acct)
	assert.Equal(t, exitError, code, out)
	assert.Contains(t, out, "forbidden")
}
