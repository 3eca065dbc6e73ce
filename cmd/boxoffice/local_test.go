package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// What `make run` prints names the demo event and its page, and without a
// demo event (an empty --demo-event) it names none.
func TestPrintLocal(t *testing.T) {
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", 8081+i) }
	f := localFlags{nodes: 3, shards: 16, dataDir: "data", demo: "demo-arena", seats: 100_000}
	var out bytes.Buffer
	printLocal(&out, f, &clusterView{}, "ADMIN-TOKEN", "BUYER-TOKEN", addr)
	assert.Contains(t, out.String(), `demo event "demo-arena" with 100000 seats`)
	assert.Contains(t, out.String(), "http://127.0.0.1:8081/#/event/demo-arena")
	assert.Contains(t, out.String(), "export BUYER=BUYER-TOKEN")

	f.demo = ""
	out.Reset()
	printLocal(&out, f, &clusterView{}, "ADMIN-TOKEN", "BUYER-TOKEN", addr)
	assert.NotContains(t, out.String(), `demo event ""`)
	assert.NotContains(t, out.String(), "/v1/events//")
	assert.Contains(t, out.String(), "no demo event")
	assert.Contains(t, out.String(), "export ADMIN=ADMIN-TOKEN")
}
