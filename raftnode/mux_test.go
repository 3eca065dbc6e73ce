package raftnode

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func newTestMux(t *testing.T) (*mux, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m := newMux(ln, ln.Addr().String(), slog.New(slog.DiscardHandler), nil)
	return m, ln.Addr().String()
}

// acceptWithin accepts one connection from a stream layer or fails.
func acceptWithin(t *testing.T, l *streamLayer, d time.Duration) net.Conn {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			got <- c
		}
	}()
	select {
	case c := <-got:
		return c
	case <-time.After(d):
		l.Close() // unblock the goroutine
		t.Fatalf("shard %d accepted no connection within %v", l.shard, d)
		return nil
	}
}

// New registers every shard's layer before the mux serves, then each shard
// asks for its layer when it opens its transport, which may be a while
// later (Pebble and the log are opened first). A peer that dials in between
// must be served by the transport, not left in a layer nobody reads: a
// stranded connection stalls the peer's RPCs to this node until the
// transport's 10s I/O timeout.
func TestMuxKeepsConnectionsThatArriveBeforeTheShardOpens(t *testing.T) {
	m, addr := newTestMux(t)
	registered := m.layer(1) // as New does, before serving
	go m.serve()
	defer m.close()

	conn, err := dialShard(nil, addr, 1, time.Second)
	require.NoError(t, err)
	defer conn.Close()
	waitFor(t, 5*time.Second, "the mux routes the connection", func() error {
		if len(registered.accept) == 0 {
			return io.ErrNoProgress
		}
		return nil
	})

	l := m.layer(1) // as the shard's transport does when it opens
	defer l.Close()
	in := acceptWithin(t, l, 2*time.Second)
	defer in.Close()

	// It is the peer's connection: bytes flow end to end.
	_, err = conn.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	in.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = io.ReadFull(in, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
}

// Connections are routed by the shard header; a ping is answered by the mux
// itself; a connection for a shard the node does not have is closed.
func TestMuxRoutesByShard(t *testing.T) {
	m, addr := newTestMux(t)
	l0, l1 := m.layer(0), m.layer(1)
	go m.serve()

	require.True(t, ping(nil, addr, time.Second), "a serving node answers pings")

	c1, err := dialShard(nil, addr, 1, time.Second)
	require.NoError(t, err)
	defer c1.Close()
	in := acceptWithin(t, l1, 2*time.Second)
	require.Equal(t, 0, len(l0.accept), "shard 1's connection went to shard 0")
	in.Close()

	stray, err := dialShard(nil, addr, 7, time.Second)
	require.NoError(t, err)
	stray.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = stray.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a connection for an unknown shard is closed")
	stray.Close()

	require.Equal(t, "tcp", l0.Addr().Network())
	require.Equal(t, addr, l0.Addr().String())

	l0.Close()
	l1.Close()
	_, err = l0.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, m.close())
	require.False(t, ping(nil, addr, 200*time.Millisecond), "a closed node does not answer pings")
}

// A connection that reaches a shard whose transport has closed, or that is
// still queued when it closes, must be closed, not left open in a queue
// nobody reads: its peer would wait for its RPC's I/O timeout (10s), and a
// leader's replication to a node that restarts meanwhile (or its own
// shutdown) would hang that long.
func TestMuxClosesConnectionsOfAClosedShard(t *testing.T) {
	m, addr := newTestMux(t)
	l := m.layer(0)
	go m.serve()
	defer m.close()

	expectClosed := func(c net.Conn, what string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "%s: the mux must close it", what)
		c.Close()
	}

	// Queued, never accepted, then the shard closes.
	queued, err := dialShard(nil, addr, 0, time.Second)
	require.NoError(t, err)
	waitFor(t, 5*time.Second, "the connection queued", func() error {
		if len(l.accept) == 0 {
			return io.ErrNoProgress
		}
		return nil
	})
	require.NoError(t, l.Close())
	expectClosed(queued, "a queued connection")

	// Arriving after the shard closed (many times: the mux must not leave
	// it to chance).
	for i := 0; i < 20; i++ {
		late, err := dialShard(nil, addr, 0, time.Second)
		require.NoError(t, err)
		expectClosed(late, fmt.Sprintf("connection %d after close", i))
	}
}

// Config.Dial, when set, opens every connection a node makes to a peer: the
// Raft transports' and the liveness pings'. Tests put a fault-injecting
// network there, so nothing may dial around it.
func TestMuxDialsThroughTheConfiguredDialer(t *testing.T) {
	var dialed []string
	refuse := false
	dial := func(address string, timeout time.Duration) (net.Conn, error) {
		dialed = append(dialed, address)
		if refuse {
			return nil, fmt.Errorf("refused by the test")
		}
		return net.DialTimeout("tcp", address, timeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	m := newMux(ln, addr, slog.New(slog.DiscardHandler), dial)
	l := m.layer(1)
	go m.serve()
	defer m.close()

	conn, err := l.Dial(raft.ServerAddress(addr), time.Second)
	require.NoError(t, err)
	in := acceptWithin(t, l, 2*time.Second)
	in.Close()
	conn.Close()
	require.True(t, ping(m.dial, addr, time.Second))
	require.Equal(t, []string{addr, addr}, dialed, "the transport and the ping both dial through the hook")

	refuse = true
	_, err = l.Dial(raft.ServerAddress(addr), time.Second)
	require.Error(t, err, "a refusing dialer cuts the transport off")
	require.False(t, ping(m.dial, addr, time.Second))
}
