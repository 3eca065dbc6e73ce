package chaos

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder keeps every exchange.
type recorder struct {
	mu  sync.Mutex
	exs []Exchange
}

func (r *recorder) Observe(ex Exchange) {
	r.mu.Lock()
	r.exs = append(r.exs, ex)
	r.mu.Unlock()
}

func (r *recorder) all() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.exs...)
}

// TestProxyRelaysAndRecords: a request goes through unchanged (method,
// path, headers, body), the answer comes back unchanged, and the exchange
// is recorded with its key, status and the answering node.
func TestProxyRelaysAndRecords(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Boxoffice-Node", "n2")
		w.Header().Set("X-Boxoffice-Leader", "n3")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(b))
	}))
	defer node.Close()
	rec := &recorder{}
	p, err := newProxy("n1", rec)
	require.NoError(t, err)
	defer p.close()
	p.setUpstream(strings.TrimPrefix(node.URL, "http://"))

	req, _ := http.NewRequest("POST", p.URL()+"/v1/events/ev/holds?x=1", strings.NewReader(`{"seats":["A-1-1"]}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Idempotency-Key", "key-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "n2", resp.Header.Get("X-Boxoffice-Node"))
	assert.Equal(t, `POST /v1/events/ev/holds?x=1 Bearer tok {"seats":["A-1-1"]}`, string(body))

	exs := rec.all()
	require.Len(t, exs, 1)
	ex := exs[0]
	assert.Equal(t, "n1", ex.Target)
	assert.Equal(t, "POST", ex.Method)
	assert.Equal(t, "/v1/events/ev/holds?x=1", ex.Path)
	assert.Equal(t, "key-1", ex.Key)
	assert.Equal(t, 201, ex.Status)
	assert.Equal(t, "n3", ex.Node, "the leader that ran the write")
	assert.True(t, ex.Replayed)
	assert.Empty(t, ex.Err)
	assert.False(t, ex.End.Before(ex.Start))
}

// TestProxyBreaksTheConnection: with no node behind it, or a node that
// breaks the connection, the client sees a broken connection (as it would
// without the proxy), not an HTTP answer, and the exchange has status 0.
func TestProxyBreaksTheConnection(t *testing.T) {
	rec := &recorder{}
	p, err := newProxy("n1", rec)
	require.NoError(t, err)
	defer p.close()
	cl := &http.Client{Timeout: 5 * time.Second}

	_, err = cl.Get(p.URL() + "/v1/cluster") // no upstream: node not running
	require.Error(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0") // a node that hangs up
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p.setUpstream(ln.Addr().String())
	_, err = cl.Get(p.URL() + "/v1/cluster")
	require.Error(t, err)

	exs := rec.all()
	require.GreaterOrEqual(t, len(exs), 2)
	for _, ex := range exs {
		assert.Equal(t, 0, ex.Status)
		assert.NotEmpty(t, ex.Err)
	}
}
