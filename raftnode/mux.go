package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// All shard groups of a node share one TCP port. A dialer writes a two-byte
// header naming the shard right after connecting; the mux reads it and hands
// the connection to that shard's Raft transport. Header value pingShard asks
// only for a one-byte answer, which tells a peer the node is alive.
// Header value indexShard is followed by two more bytes naming a shard; the
// answer is eight bytes, that shard's last log index on the node
// (math.MaxUint64 if the node has no such shard), which a leader checks
// before it hands the shard to the node.
const (
	pingShard     = 0xFFFF
	indexShard    = 0xFFFE
	headerTimeout = 5 * time.Second
	noIndex       = math.MaxUint64
)

// DialFunc opens a TCP connection to a node's Raft port.
type DialFunc func(address string, timeout time.Duration) (net.Conn, error)

// mux accepts connections on one listener and routes them by shard.
type mux struct {
	ln        net.Listener
	advertise advertAddr
	logger    *slog.Logger
	// dial opens this node's connections to its peers (net.DialTimeout if
	// nil; tests put a fault-injecting network here).
	dial DialFunc

	mu     sync.Mutex
	layers map[uint16]*streamLayer
	// lastIndex answers index queries (nil until the shards are open).
	lastIndex func(shard int) (uint64, bool)
	closed    bool
	wg        sync.WaitGroup
	// draining: the node is shutting down; pings answer pingDraining so
	// that no peer hands it a leadership it is about to drop.
	draining atomic.Bool
}

func newMux(ln net.Listener, advertise string, logger *slog.Logger, dial DialFunc) *mux {
	return &mux{ln: ln, advertise: advertAddr(advertise), logger: logger, dial: dial, layers: make(map[uint16]*streamLayer)}
}

// advertAddr is the address peers dial, which may differ from the listener's
// (a wildcard bind, a container's published address).
type advertAddr string

func (a advertAddr) Network() string { return "tcp" }
func (a advertAddr) String() string  { return string(a) }

// layer returns the stream layer of a shard, for its Raft transport. The
// first call registers it; later calls return the same layer, so that
// connections routed to it before its transport opened are not stranded.
func (m *mux) layer(shard int) *streamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.layers[uint16(shard)]; ok {
		return l
	}
	l := &streamLayer{
		shard:  uint16(shard),
		dial:   m.dial,
		addr:   m.advertise,
		accept: make(chan net.Conn, 16),
		closed: make(chan struct{}),
	}
	m.layers[uint16(shard)] = l
	return l
}

// replaceLayer gives a shard a new stream layer, for a new Raft transport
// after the old one closed its layer (a restart of the shard's Raft).
func (m *mux) replaceLayer(shard int) *streamLayer {
	m.mu.Lock()
	old := m.layers[uint16(shard)]
	delete(m.layers, uint16(shard))
	m.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return m.layer(shard)
}

func (m *mux) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			m.logger.Warn("raft mux accept", "err", err)
			time.Sleep(10 * time.Millisecond) // back off on accept errors such as EMFILE
			continue
		}
		// Add under the lock that close takes to set closed: an Add may
		// never race close's Wait (the race detector saw it).
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			conn.Close()
			return
		}
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

func (m *mux) route(conn net.Conn) {
	var hdr [2]byte
	conn.SetReadDeadline(time.Now().Add(headerTimeout))
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	shard := binary.BigEndian.Uint16(hdr[:])
	if shard == pingShard {
		answer := pingLive
		if m.draining.Load() {
			answer = pingDraining
		}
		conn.Write([]byte{answer})
		conn.Close()
		return
	}
	if shard == indexShard {
		m.answerIndex(conn)
		return
	}
	m.mu.Lock()
	l := m.layers[shard]
	m.mu.Unlock()
	if l == nil {
		m.logger.Warn("raft mux: connection for unknown shard", "shard", shard, "remote", conn.RemoteAddr())
		conn.Close()
		return
	}
	select {
	case l.accept <- conn:
		// If the layer closed meanwhile, its Close may have emptied the
		// queue before this connection arrived: empty it again.
		select {
		case <-l.closed:
			l.closeQueued()
		default:
		}
	case <-l.closed:
		conn.Close()
	}
}

// setLastIndex installs the function that answers index queries.
func (m *mux) setLastIndex(f func(shard int) (uint64, bool)) {
	m.mu.Lock()
	m.lastIndex = f
	m.mu.Unlock()
}

func (m *mux) answerIndex(conn net.Conn) {
	defer conn.Close()
	var b [8]byte
	conn.SetDeadline(time.Now().Add(headerTimeout))
	if _, err := io.ReadFull(conn, b[:2]); err != nil {
		return
	}
	shard := int(binary.BigEndian.Uint16(b[:2]))
	m.mu.Lock()
	f := m.lastIndex
	m.mu.Unlock()
	idx := uint64(noIndex)
	if f != nil {
		if i, ok := f(shard); ok {
			idx = i
		}
	}
	binary.BigEndian.PutUint64(b[:], idx)
	conn.Write(b[:])
}

func (m *mux) close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// dialShard connects to a node's raft port through dial (net.DialTimeout if
// nil) and names the shard.
func dialShard(dial DialFunc, address string, shard uint16, timeout time.Duration) (net.Conn, error) {
	if dial == nil {
		dial = dialTCP
	}
	conn, err := dial(address, timeout)
	if err != nil {
		return nil, err
	}
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], shard)
	conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(hdr[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write shard header: %w", err)
	}
	conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

func dialTCP(address string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", address, timeout)
}

// The answers to a ping.
const (
	pingLive     byte = 1
	pingDraining byte = 2
)

// ping reports whether the node at a raft address answers within timeout,
// and is not draining for a shutdown.
func ping(dial DialFunc, address string, timeout time.Duration) bool {
	conn, err := dialShard(dial, address, pingShard, timeout)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	_, err = io.ReadFull(conn, b[:])
	return err == nil && b[0] == pingLive
}

// peerLastIndex asks the node at a raft address for its last log index of
// shard; ok is false if it did not answer in time or has no such shard.
func peerLastIndex(dial DialFunc, address string, shard int, timeout time.Duration) (uint64, bool) {
	conn, err := dialShard(dial, address, indexShard, timeout)
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	var b [8]byte
	binary.BigEndian.PutUint16(b[:2], uint16(shard))
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(b[:2]); err != nil {
		return 0, false
	}
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return 0, false
	}
	idx := binary.BigEndian.Uint64(b[:])
	return idx, idx != noIndex
}

// streamLayer is one shard's view of the mux, a raft.StreamLayer.
type streamLayer struct {
	shard     uint16
	dial      DialFunc
	addr      net.Addr
	accept    chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *streamLayer) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	l.closeQueued()
	return nil
}

// closeQueued closes connections queued for a layer that will accept no
// more: left open, their peers would wait for their RPC's I/O timeout.
func (l *streamLayer) closeQueued() {
	for {
		select {
		case c := <-l.accept:
			c.Close()
		default:
			return
		}
	}
}

func (l *streamLayer) Addr() net.Addr { return l.addr }

func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialShard(l.dial, string(address), l.shard, timeout)
}
