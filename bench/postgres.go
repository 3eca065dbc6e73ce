package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"boxoffice"
	"boxoffice/client"
)

// The PostgreSQL peer: the same on-sale against one PostgreSQL server, a
// row per seat, every write one transaction of conditional UPDATEs, one per
// seat, all or nothing:
//
//	UPDATE seats SET state='held', holder=$1, buyer=$2, hold_until=$3
//	 WHERE event=$4 AND seat=$5 AND (state='free' OR (state='held' AND hold_until < $now))
//
// A hold whose UPDATEs did not all change their row is rolled back: a
// conflict. A release or a purchase updates the rows still held by its hold
// (and a purchase inserts its order). Seats are updated in id order, so two
// holds never wait for each other's rows in opposite orders (deadlocks).
// Time is the bench's clock, as for etcd; ids come from the bench's keys,
// so a write sent again finds its own effects (see etcd.go).

// PostgresConfig configures the PostgreSQL server the bench starts.
type PostgresConfig struct {
	// BinDir holds initdb and postgres; empty: FindPostgres.
	BinDir string
	// PoolConns is the connection pool's size (the users share it).
	PoolConns int
	// StartTimeout bounds initdb and the start.
	StartTimeout time.Duration
	// Log receives a line per phase; nil: none.
	Log io.Writer
}

// DefaultPostgresConfig: a pool of 64 connections (a server process each;
// the users wait for one, as a web tier's pool would make them).
func DefaultPostgresConfig() PostgresConfig {
	return PostgresConfig{PoolConns: 64, StartTimeout: 60 * time.Second}
}

// Validate lists every problem of the config at once.
func (c PostgresConfig) Validate() error {
	var errs []error
	if c.PoolConns < 1 || c.PoolConns > 1000 {
		errs = append(errs, fmt.Errorf("postgres: PoolConns %d out of range 1..1000", c.PoolConns))
	}
	if c.StartTimeout < time.Second || c.StartTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("postgres: StartTimeout %v out of range [1s, 10m]", c.StartTimeout))
	}
	return errors.Join(errs...)
}

// FindPostgres finds the directory of initdb and postgres:
// $BOXOFFICE_PG_BIN, else the one on $PATH, else Debian's
// /usr/lib/postgresql/<newest>/bin (the package puts neither on $PATH).
func FindPostgres() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("BOXOFFICE_PG_BIN"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("BOXOFFICE_PG_BIN=%s has no initdb and postgres", d)
		}
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL not found (initdb, postgres): run `make postgres` (apt-get install postgresql) or set BOXOFFICE_PG_BIN")
}

// pgMajor reads 15 out of /usr/lib/postgresql/15/bin.
func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// PostgresServer is a PostgreSQL server the bench started: initdb in a
// temp dir, then postgres on a private loopback port.
type PostgresServer struct {
	dir     string
	version string
	addr    string
	proc    *procHandle
	pool    int
}

// pgUser is the database role the bench creates and uses.
const pgUser = "bench"

// StartPostgres runs initdb and starts the server with fsync and
// synchronous_commit on (the defaults, set explicitly), then creates the
// tables. PostgreSQL refuses to run as root: when the bench is root, both
// run as the "postgres" user (Debian's package creates it), which owns the
// temp dir.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*PostgresServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bin := cfg.BinDir
	if bin == "" {
		var err error
		if bin, err = FindPostgres(); err != nil {
			return nil, err
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := osuser.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL refuses to run as root, and there is no postgres user to run it as (install postgresql: make postgres): %w", err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("the postgres user's ids: %w", err)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("postgres --version: %w", err)
	}
	dir, err := os.MkdirTemp("", "boxoffice-bench-pg-")
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{dir: dir, version: strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "postgres (PostgreSQL) ")), pool: cfg.PoolConns}
	fail := func(err error) (*PostgresServer, error) {
		s.Stop(cfg.Log, true)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	logPath := filepath.Join(dir, "postgres.log")
	data := filepath.Join(dir, "data")
	logLine(cfg.Log, "starting PostgreSQL %s (fsync on, synchronous_commit on) in %s ...", s.version, dir)
	// --no-sync: initdb's own files are not fsynced (a bench's throwaway
	// cluster); the server itself runs with fsync on.
	initdb, err := startProc(filepath.Join(bin, "initdb"),
		[]string{"-D", data, "-U", pgUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"}, logPath, cred)
	if err != nil {
		return fail(err)
	}
	select {
	case <-initdb.done:
		if initdb.err != nil {
			return fail(fmt.Errorf("initdb: %w; see %s", initdb.err, logPath))
		}
	case <-sctx.Done():
		stopProcs([]*procHandle{initdb}, time.Second)
		return fail(fmt.Errorf("initdb did not finish within %v", cfg.StartTimeout))
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return fail(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	s.addr = addr
	s.proc, err = startProc(filepath.Join(bin, "postgres"), []string{
		"-D", data, "-p", port, "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
		"-c", "max_connections=" + strconv.Itoa(cfg.PoolConns+10),
	}, logPath, cred)
	if err != nil {
		return fail(err)
	}
	for {
		conn, err := pgx.Connect(sctx, s.connString())
		if err == nil {
			_, err = conn.Exec(sctx, pgSchema)
			conn.Close(context.WithoutCancel(sctx))
			if err != nil {
				return fail(fmt.Errorf("create the tables: %w", err))
			}
			return s, nil
		}
		if s.proc.exited() {
			return fail(fmt.Errorf("postgres exited at start: %v; see %s", s.proc.err, logPath))
		}
		select {
		case <-sctx.Done():
			return fail(fmt.Errorf("postgres did not accept a connection within %v: %w; see %s", cfg.StartTimeout, err, logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

const pgSchema = `
CREATE TABLE seats (
	event      text   NOT NULL,
	seat       text   NOT NULL,
	state      text   NOT NULL CHECK (state IN ('free', 'held', 'sold')),
	holder     text,            -- the hold that holds (or held) it
	buyer      text,
	hold_until bigint,          -- ms since the epoch; a hold past it is free
	order_id   text,            -- the order it is sold in
	PRIMARY KEY (event, seat)
);
CREATE TABLE orders (
	id     text   PRIMARY KEY,
	event  text   NOT NULL,
	hold   text   NOT NULL,
	buyer  text   NOT NULL,
	seats  text[] NOT NULL,
	state  text   NOT NULL
);
CREATE INDEX orders_event ON orders (event);
`

func (s *PostgresServer) connString() string {
	return "postgres://" + pgUser + "@" + s.addr + "/postgres?sslmode=disable&connect_timeout=5"
}

// Addr is the server's loopback address.
func (s *PostgresServer) Addr() string { return s.addr }

// PIDs is the postmaster; its CPU figure includes its backends'.
func (s *PostgresServer) PIDs() []int { return pidsOf([]*procHandle{s.proc}) }

// Note describes the server for the reports.
func (s *PostgresServer) Note() string {
	return fmt.Sprintf("PostgreSQL %s, one server on loopback, fsync on, synchronous_commit on, pool of %d connections, a transaction of conditional UPDATEs per write",
		s.version, s.pool)
}

// Stop stops the server (fast shutdown: SIGINT; SIGKILL after 20 s) and
// removes its dir unless keep.
func (s *PostgresServer) Stop(log io.Writer, keep bool) {
	if s.proc != nil {
		stopProcsWith([]*procHandle{s.proc}, syscall.SIGINT, 20*time.Second)
	}
	if keep {
		logLine(log, "PostgreSQL's data and log are in %s", s.dir)
		return
	}
	os.RemoveAll(s.dir)
}

// System opens the connection pool.
func (s *PostgresServer) System(ctx context.Context) (*PostgresSystem, error) {
	pc, err := pgxpool.ParseConfig(s.connString())
	if err != nil {
		return nil, err
	}
	pc.MaxConns = int32(s.pool)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	return &PostgresSystem{pool: pool, ttl: map[string]time.Duration{}}, nil
}

// PostgresSystem is the on-sale on PostgreSQL.
type PostgresSystem struct {
	pool   *pgxpool.Pool
	mu     sync.Mutex
	ttl    map[string]time.Duration // event → hold TTL
	charge *chargeSim
}

// SimulatePayment makes every purchase wait a simulated card charge first
// (log-normal, median and spread as boxoffice's simulated gateway), so that
// a purchase costs the same wait on every system; median 0: none.
func (s *PostgresSystem) SimulatePayment(median time.Duration, spread float64, seed uint64) {
	s.charge = newChargeSim(median, spread, seed)
}

var _ System = (*PostgresSystem)(nil)

func (s *PostgresSystem) Name() string { return SystemPostgres }

// Workloads: as etcd's.
func (s *PostgresSystem) Workloads() []string {
	return []string{WorkloadOnsale, WorkloadRush, WorkloadMulti}
}

func (s *PostgresSystem) Close() { s.pool.Close() }

// pgErr marks a PostgreSQL call's error: its outcome is unknown (the
// bench sends the write again).
func pgErr(err error) error {
	if err == nil {
		return nil
	}
	code := "postgres"
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code = "postgres_" + pe.Code
	}
	return &peerError{code: code, err: err}
}

// CreateEvent copies every seat of ev's layout in, free.
func (s *PostgresSystem) CreateEvent(ctx context.Context, ev *client.Event) error {
	layout := layoutOf(ev)
	s.mu.Lock()
	s.ttl[ev.ID] = time.Duration(ev.Limits.HoldTTLSeconds) * time.Second
	s.mu.Unlock()
	n := layout.Capacity()
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"seats"}, []string{"event", "seat", "state"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) { return []any{ev.ID, layout.ID(i), "free"}, nil }))
	if err != nil {
		return pgErr(err)
	}
	// Fresh statistics, so that the planner uses the primary key.
	_, err = s.pool.Exec(ctx, "ANALYZE seats")
	return pgErr(err)
}

// SeatMap reads the event's seats; a free map is filtered by the server.
// One server: every read is as fresh as a strong one.
func (s *PostgresSystem) SeatMap(ctx context.Context, event string, q client.SeatQuery) (client.SeatMap, error) {
	now := time.Now().UnixMilli()
	var rows pgx.Rows
	var err error
	if q.Status == client.SeatFree {
		rows, err = s.pool.Query(ctx, `SELECT seat, state, hold_until FROM seats
			WHERE event = $1 AND (state = 'free' OR (state = 'held' AND hold_until < $2))`, event, now)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT seat, state, hold_until FROM seats WHERE event = $1`, event)
	}
	if err != nil {
		return client.SeatMap{}, pgErr(err)
	}
	m := client.SeatMap{Event: event}
	var seat, state string
	var until *int64
	_, err = pgx.ForEachRow(rows, []any{&seat, &state, &until}, func() error {
		st := pgSeatState(state, until, now)
		if q.Status == "" || q.Status == st {
			m.Seats = append(m.Seats, client.Seat{ID: seat, State: st})
		}
		return nil
	})
	return m, pgErr(err)
}

// pgSeatState is a row's state at nowMs: an expired hold's seat is free.
func pgSeatState(state string, until *int64, nowMs int64) string {
	if state == "held" && until != nil && *until < nowMs {
		return client.SeatFree
	}
	return state
}

func (s *PostgresSystem) Sold(ctx context.Context, event string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM seats WHERE event = $1 AND state = 'sold'`, event).Scan(&n)
	return n, pgErr(err)
}

func (s *PostgresSystem) Buyer(_ int, subject string) (Buyer, error) {
	return &pgBuyer{s: s, subject: subject}, nil
}

func (s *PostgresSystem) holdTTL(event string) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl, ok := s.ttl[event]
	if !ok {
		return 0, boxoffice.Errorf(boxoffice.CodeEventNotFound, "event %s was not created by this bench", event)
	}
	return ttl, nil
}

// ReadState reads every seat and every order of the event in one
// repeatable-read transaction (one snapshot).
func (s *PostgresSystem) ReadState(ctx context.Context, event string, _ []OrderRecord) (*ServerState, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	now := time.Now().UnixMilli()
	st := &ServerState{Orders: map[string]*client.Order{}, OrderErrors: map[string]string{}, SeatOrders: map[string]string{}}
	rows, err := tx.Query(ctx, `SELECT seat, state, hold_until, order_id FROM seats WHERE event = $1`, event)
	if err != nil {
		return nil, fmt.Errorf("read the seats: %w", err)
	}
	var seat, state string
	var until *int64
	var order *string
	if _, err := pgx.ForEachRow(rows, []any{&seat, &state, &until, &order}, func() error {
		st.Seats = append(st.Seats, client.Seat{ID: seat, State: pgSeatState(state, until, now)})
		if state == "sold" && order != nil {
			st.SeatOrders[seat] = *order
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the seats: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT id, hold, buyer, seats, state FROM orders WHERE event = $1`, event)
	if err != nil {
		return nil, fmt.Errorf("read the orders: %w", err)
	}
	var o client.Order
	if _, err := pgx.ForEachRow(rows, []any{&o.ID, &o.Hold, &o.Buyer, &o.Seats, &o.State}, func() error {
		oo := o
		oo.Event = event
		st.Orders[oo.ID] = &oo
		st.AllOrders = append(st.AllOrders, &oo)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the orders: %w", err)
	}
	return st, nil
}

// pgBuyer is one buyer's writes.
type pgBuyer struct {
	s       *PostgresSystem
	subject string
	// lastHold is the key of the last hold sent: only a hold sent again
	// looks for its own effects after a conflict (a lookup every conflict
	// would cost PostgreSQL a query boxoffice does not pay).
	lastHold string
}

// updateAll runs one UPDATE per args in a transaction and commits it if
// every one changed exactly one row; else it rolls back and returns false.
// extra, if set, runs after them in the same batch and must change one row
// too.
func (b *pgBuyer) updateAll(ctx context.Context, query string, args [][]any, extra *pgx.QueuedQuery) (bool, error) {
	tx, err := b.s.pool.Begin(ctx)
	if err != nil {
		return false, pgErr(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	batch := &pgx.Batch{}
	for _, a := range args {
		batch.Queue(query, a...)
	}
	n := len(args)
	if extra != nil {
		batch.QueuedQueries = append(batch.QueuedQueries, extra)
		n++
	}
	br := tx.SendBatch(ctx, batch)
	all := true
	for i := 0; i < n; i++ {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return false, pgErr(err)
		}
		all = all && tag.RowsAffected() == 1
	}
	if err := br.Close(); err != nil {
		return false, pgErr(err)
	}
	if !all {
		return false, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return false, pgErr(err)
	}
	return true, nil
}

// Hold updates each seat that is free or held past now, in seat order.
func (b *pgBuyer) Hold(ctx context.Context, key, event string, req client.HoldRequest) (*client.Hold, error) {
	if len(req.Seats) == 0 || len(req.Seats) > PicksMaxMax {
		return nil, fmt.Errorf("postgres hold of %d seats: %w", len(req.Seats), errUnsupported)
	}
	ttl, err := b.s.holdTTL(event)
	if err != nil {
		return nil, err
	}
	if req.TTL > 0 {
		ttl = req.TTL
	}
	resend := b.lastHold == key
	b.lastHold = key
	now := time.Now().UnixMilli()
	exp := now + ttl.Milliseconds()
	seats := slices.Sorted(slices.Values(req.Seats))
	args := make([][]any, len(seats))
	for i, seat := range seats {
		args[i] = []any{key, b.subject, exp, event, seat, now}
	}
	ok, err := b.updateAll(ctx, `UPDATE seats SET state = 'held', holder = $1, buyer = $2, hold_until = $3, order_id = NULL
		WHERE event = $4 AND seat = $5 AND (state = 'free' OR (state = 'held' AND hold_until < $6))`, args, nil)
	if err != nil {
		return nil, err
	}
	h := &client.Hold{ID: key, Event: event, Buyer: b.subject, Seats: req.Seats, ExpiresAt: time.UnixMilli(exp), State: client.HoldActive}
	if ok {
		return h, nil
	}
	if resend {
		// Held already by this very hold (an earlier send of it)?
		var n int
		var until int64
		err := b.s.pool.QueryRow(ctx, `SELECT count(*), coalesce(min(hold_until), 0) FROM seats
			WHERE event = $1 AND seat = ANY($2) AND state = 'held' AND holder = $3`, event, seats, key).Scan(&n, &until)
		if err != nil {
			return nil, pgErr(err)
		}
		if n == len(seats) {
			h.ExpiresAt = time.UnixMilli(until)
			return h, nil
		}
	}
	return nil, boxoffice.Errorf(boxoffice.CodeSeatUnavailable, "a seat of %v is taken", req.Seats)
}

// Release frees the seats still held by h, all or nothing. As for etcd,
// seats no longer h's while h has not expired were freed by an earlier
// send of this release.
func (b *pgBuyer) Release(ctx context.Context, key string, h *client.Hold) error {
	if time.Now().After(h.ExpiresAt) {
		return boxoffice.Errorf(boxoffice.CodeHoldExpired, "hold %s expired at %s", h.ID, h.ExpiresAt.Format(time.RFC3339Nano))
	}
	seats := slices.Sorted(slices.Values(h.Seats))
	args := make([][]any, len(seats))
	for i, seat := range seats {
		args[i] = []any{h.Event, seat, h.ID}
	}
	ok, err := b.updateAll(ctx, `UPDATE seats SET state = 'free', holder = NULL, buyer = NULL, hold_until = NULL
		WHERE event = $1 AND seat = $2 AND state = 'held' AND holder = $3`, args, nil)
	if err != nil || ok {
		return err
	}
	var n int
	if err := b.s.pool.QueryRow(ctx, `SELECT count(*) FROM seats WHERE event = $1 AND seat = ANY($2) AND state = 'held' AND holder = $3`,
		h.Event, seats, h.ID).Scan(&n); err != nil {
		return pgErr(err)
	}
	if n > 0 {
		return boxoffice.Errorf(boxoffice.CodeHoldNotActive, "hold %s holds only some of its seats", h.ID)
	}
	return nil
}

// Purchase sells the seats still held by h (and not past its expiry) and
// inserts the order, all or nothing. An order already there is this
// purchase sent again: it is the answer.
func (b *pgBuyer) Purchase(ctx context.Context, key string, h *client.Hold, _ string) (*client.Order, error) {
	if err := b.s.charge.wait(ctx); err != nil {
		return nil, err
	}
	o := &client.Order{ID: "o-" + h.ID, Event: h.Event, Hold: h.ID, Buyer: h.Buyer, Seats: h.Seats, State: client.OrderPaid}
	now := time.Now().UnixMilli()
	if now <= h.ExpiresAt.UnixMilli() {
		seats := slices.Sorted(slices.Values(h.Seats))
		args := make([][]any, len(seats))
		for i, seat := range seats {
			args[i] = []any{o.ID, h.Event, seat, h.ID, now}
		}
		insert := &pgx.QueuedQuery{SQL: `INSERT INTO orders (id, event, hold, buyer, seats, state) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO NOTHING`, Arguments: []any{o.ID, o.Event, o.Hold, o.Buyer, o.Seats, o.State}}
		ok, err := b.updateAll(ctx, `UPDATE seats SET state = 'sold', order_id = $1
			WHERE event = $2 AND seat = $3 AND state = 'held' AND holder = $4 AND hold_until >= $5`, args, insert)
		if err != nil {
			return nil, err
		}
		if ok {
			return o, nil
		}
	}
	var got client.Order
	err := b.s.pool.QueryRow(ctx, `SELECT id, event, hold, buyer, seats, state FROM orders WHERE id = $1`, o.ID).
		Scan(&got.ID, &got.Event, &got.Hold, &got.Buyer, &got.Seats, &got.State)
	switch {
	case err == nil:
		return &got, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, pgErr(err)
	case time.Now().After(h.ExpiresAt):
		return nil, boxoffice.Errorf(boxoffice.CodeHoldExpired, "hold %s expired at %s", h.ID, h.ExpiresAt.Format(time.RFC3339Nano))
	}
	return nil, boxoffice.Errorf(boxoffice.CodeHoldNotActive, "hold %s no longer holds its seats", h.ID)
}
