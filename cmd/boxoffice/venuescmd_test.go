package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/client"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// boxoffice venues create|update|list|show against a real cluster: a venue
// from CSV, a new version from JSON, the list and both versions shown, and
// an event made from version 1 that keeps it.
func TestVenuesCLI(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	target := "--target=http://" + c.Members[0].HTTPAddr + ",http://" + c.Members[2].HTTPAddr
	org := "--token=" + testcluster.Token("org1", httpapi.RoleOrganiser)
	dir := t.TempDir()
	csvFile := filepath.Join(dir, "arena.csv")
	require.NoError(t, os.WriteFile(csvFile, []byte("id,category,rows,seats_per_row,capacity,category_name\nA,floor,4,5,,Floor\nB,floor,2,5,,\nPIT,ga,,,100,Standing\n"), 0o600))

	out, code := run(t, "venues", "create", target, org, "--file", csvFile, "--id", "arena", "--name", "Arena", "--location", "Berlin")
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "arena version 1: 130 places in 2 sections and 1 general-admission area")

	v2 := client.VenueChart{ID: "arena", Name: "Arena (rebuilt)", Categories: []client.VenueCategory{{ID: "ga", Name: "Standing"}},
		Areas: []client.Area{{ID: "PIT", Category: "ga", Capacity: 500}}}
	b, err := json.Marshal(v2)
	require.NoError(t, err)
	jsonFile := filepath.Join(dir, "arena.json")
	require.NoError(t, os.WriteFile(jsonFile, b, 0o600))
	out, code = run(t, "venues", "update", target, org, "--file", jsonFile)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "arena version 2: 500 places")

	out, code = run(t, "venues", "list", target)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "arena")
	assert.Contains(t, out, "Arena (rebuilt)")

	out, code = run(t, "venues", "show", "arena", "--version", "1", target, "-o", "json")
	require.Equal(t, exitOK, code, out)
	var shown client.VenueChart
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	assert.Equal(t, 1, shown.Version)
	assert.Equal(t, 130, shown.Capacity)
	assert.Equal(t, "org1", shown.Owner)
	out, code = run(t, "venues", "show", "arena", target)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "version 2")
	assert.Contains(t, out, "area")

	// An event from version 1, through the events command's JSON.
	ev := filepath.Join(dir, "event.json")
	require.NoError(t, os.WriteFile(ev, []byte(`{"id":"arena-night","name":"Night","venueId":"arena","venueVersion":1,
		"categories":[{"id":"floor","priceCents":5000},{"id":"ga","priceCents":2000}]}`), 0o600))
	out, code = run(t, "events", "create", target, org, "--file", ev)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "created arena-night: 130 seats")

	// Rows of their own lengths, an aisle, accessible seats.
	rowsFile := filepath.Join(dir, "rows.csv")
	require.NoError(t, os.WriteFile(rowsFile, []byte("id,category,rows,seats_per_row,capacity,row_seats,gaps,accessible\nR,floor,3,6,,6 5 4,1-3 2-3,1-1 3-4\n"), 0o600))
	out, code = run(t, "venues", "create", rowsFile, target, org, "--id", "rows", "--name", "Rows") // the file as an argument
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "rows version 1: 13 places in 1 section and 0 general-admission areas") // 6+5+4 less two gaps
	out, code = run(t, "venues", "show", "rows", target, "-o", "json")
	require.Equal(t, exitOK, code, out)
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	assert.Equal(t, []int{6, 5, 4}, shown.Sections[0].RowSeats)
	assert.Equal(t, []string{"1-3", "2-3"}, shown.Sections[0].Gaps)
	assert.Equal(t, []client.SeatFlag{{Flag: "accessible", Seats: []string{"1-1", "3-4"}}}, shown.Sections[0].Flags)
	badRows := filepath.Join(dir, "badrows.csv")
	require.NoError(t, os.WriteFile(badRows, []byte("id,category,rows,seats_per_row,capacity,gaps\nR,floor,1,2,,1-3\n"), 0o600))
	out, code = run(t, "venues", "create", target, org, "--file", badRows, "--id", "badrows", "--name", "Bad")
	assert.NotEqual(t, exitOK, code, out)
	assert.Contains(t, out, "gap")

	// The file is named once, and must be named.
	out, code = run(t, "venues", "create", rowsFile, target, org, "--file", rowsFile, "--id", "twice", "--name", "Twice")
	assert.Equal(t, exitUsage, code, out)
	assert.Contains(t, out, "name the file once")
	out, code = run(t, "venues", "create", target, org, "--id", "none", "--name", "None")
	assert.Equal(t, exitUsage, code, out)
	assert.Contains(t, out, "name the venue's file")

	// Bad files and bad venues end with an error, and create nothing.
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("id,category,rows,seats_per_row,capacity\nA,floor,4,5,10\n"), 0o600))
	out, code = run(t, "venues", "create", target, org, "--file", bad, "--id", "bad", "--name", "Bad")
	assert.NotEqual(t, exitOK, code, out)
	assert.Contains(t, out, "not both")
	dup := filepath.Join(dir, "dup.csv")
	require.NoError(t, os.WriteFile(dup, []byte("id,category,rows,seats_per_row,capacity\nA,floor,4,5,\nA,floor,1,1,\n"), 0o600))
	out, code = run(t, "venues", "create", target, org, "--file", dup, "--id", "dup", "--name", "Dup")
	assert.NotEqual(t, exitOK, code, out)
	assert.Contains(t, out, "appears twice")
	out, code = run(t, "venues", "show", "dup", target)
	assert.NotEqual(t, exitOK, code, out)
	assert.True(t, strings.Contains(out, "venue_not_found") || strings.Contains(out, "not found"), out)
}
