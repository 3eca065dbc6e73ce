package faultnet

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers every line with the same line and remembers what it
// received.
type echoServer struct {
	addr string
	mu   sync.Mutex
	got  []string
}

func newEcho(t *testing.T) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	e := &echoServer{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					e.mu.Lock()
					e.got = append(e.got, sc.Text())
					e.mu.Unlock()
					if _, err := c.Write([]byte(sc.Text() + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return e
}

func (e *echoServer) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

// roundTrip sends a line and reads the answer within d.
func roundTrip(c net.Conn, line string, d time.Duration) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, len(line)+1)
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return string(buf[:len(line)]), nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestHealthyNetworkPassesTraffic(t *testing.T) {
	e := newEcho(t)
	n := New()
	n.Register("b", e.addr)
	c, err := n.Dialer("a")(e.addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	got, err := roundTrip(c, "hello", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "hello", got)
	require.False(t, n.Faulty())
	require.Equal(t, "healthy", n.String())
}

// Both directions cut: an open connection's bytes vanish, a new dial gets
// no answer; Heal closes the corrupted connection and lets dials through.
func TestDropBothWaysThenHeal(t *testing.T) {
	e := newEcho(t)
	n := New()
	n.Register("b", e.addr)
	dial := n.Dialer("a")
	c, err := dial(e.addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = roundTrip(c, "before", 5*time.Second)
	require.NoError(t, err)

	n.DropBoth("a", "b")
	require.True(t, n.Faulty())
	_, err = roundTrip(c, "lost", 300*time.Millisecond)
	require.True(t, isTimeout(err), "no answer across a partition: %v", err)
	require.NotContains(t, e.received(), "lost")

	start := time.Now()
	_, err = dial(e.addr, 200*time.Millisecond)
	require.True(t, isTimeout(err), "a dial across a partition times out: %v", err)
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)

	// A dial under way when the partition heals goes through.
	dialed := make(chan error, 1)
	go func() {
		c2, err := dial(e.addr, 10*time.Second)
		if err == nil {
			_, err = roundTrip(c2, "after", 5*time.Second)
			c2.Close()
		}
		dialed <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it wait on the partition (the test holds either way)
	n.Heal()
	require.NoError(t, <-dialed)
	require.False(t, n.Faulty())

	// The connection that lost bytes is closed by the heal: reads and
	// writes fail, as on a reset socket.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, isTimeout(err), "Heal closes a lossy connection rather than leave it to time out: %v", err)
	_, err = c.Write([]byte("after\n"))
	require.ErrorIs(t, err, net.ErrClosed, "a write on a closed connection fails even though its bytes were being dropped")
}

// One way only: a→b vanishes while b→a flows, and the other way round.
func TestDropOneWay(t *testing.T) {
	e := newEcho(t)
	n := New()
	n.Register("b", e.addr)
	dial := n.Dialer("a")

	// b→a dropped: a's request arrives, b's answer does not.
	c, err := dial(e.addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	n.Drop("b", "a")
	_, err = roundTrip(c, "one-way", 300*time.Millisecond)
	require.True(t, isTimeout(err), "the answer must be lost: %v", err)
	waitUntil(t, "the request arrives", func() bool {
		for _, s := range e.received() {
			if s == "one-way" {
				return true
			}
		}
		return false
	})
	// and a new connection can be made, since its requests reach b.
	c2, err := dial(e.addr, time.Second)
	require.NoError(t, err)
	c2.Close()
	n.Heal()

	// a→b dropped: a's writes vanish and new dials wait.
	c3, err := dial(e.addr, time.Second)
	require.NoError(t, err)
	defer c3.Close()
	n.Drop("a", "b")
	_, err = roundTrip(c3, "vanishes", 300*time.Millisecond)
	require.True(t, isTimeout(err))
	require.NotContains(t, e.received(), "vanishes")
	_, err = dial(e.addr, 100*time.Millisecond)
	require.True(t, isTimeout(err))
	require.Equal(t, "a→b drop", n.String())
}

// Partition drops traffic between groups only; Isolate cuts one node off.
func TestPartitionAndIsolate(t *testing.T) {
	b, c := newEcho(t), newEcho(t)
	n := New()
	n.Register("a", "127.0.0.1:1") // never dialed
	n.Register("b", b.addr)
	n.Register("c", c.addr)
	require.Equal(t, []string{"a", "b", "c"}, n.Nodes())

	n.Partition([]string{"a", "b"}, []string{"c"})
	cb, err := n.Dialer("a")(b.addr, time.Second)
	require.NoError(t, err, "a and b are on the same side")
	_, err = roundTrip(cb, "same side", 5*time.Second)
	require.NoError(t, err)
	cb.Close()
	_, err = n.Dialer("a")(c.addr, 100*time.Millisecond)
	require.True(t, isTimeout(err), "c is on the other side")
	_, err = n.Dialer("b")(c.addr, 100*time.Millisecond)
	require.True(t, isTimeout(err), "c is on the other side")

	n.Isolate("b")
	_, err = n.Dialer("a")(b.addr, 100*time.Millisecond)
	require.True(t, isTimeout(err), "b is isolated")
	cc, err := n.Dialer("a")(c.addr, time.Second)
	require.NoError(t, err, "a and c are together once b alone is cut off")
	cc.Close()
	n.Heal()
	require.Equal(t, "healthy", n.String())
}

func TestDelay(t *testing.T) {
	e := newEcho(t)
	n := New()
	n.Register("b", e.addr)
	c, err := n.Dialer("a")(e.addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	n.Delay("a", "b", 100*time.Millisecond)
	n.Delay("b", "a", 100*time.Millisecond)
	start := time.Now()
	got, err := roundTrip(c, "slow", 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "slow", got)
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "both directions wait")
	require.Panics(t, func() { n.Delay("a", "b", time.Hour) })
	n.Delay("a", "b", 0)
	n.Delay("b", "a", 0)
	require.False(t, n.Faulty(), "a zero delay removes the rule")
}

// Addresses of no registered node are dialed plainly.
func TestUnknownAddressIsNotFiltered(t *testing.T) {
	e := newEcho(t)
	n := New()
	n.Register("b", "127.0.0.1:1")
	n.DropBoth("a", "b")
	c, err := n.Dialer("a")(e.addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = roundTrip(c, "plain", 5*time.Second)
	require.NoError(t, err)
}
