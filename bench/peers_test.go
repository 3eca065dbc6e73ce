package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needPeer fails the test in CI when a peer's server is missing (`make
// test` installs etcd and PostgreSQL first, so CI always has them), and
// skips it elsewhere, saying how to get it: `go test ./bench` on a machine
// that never ran make should not fail for want of a database.
func needPeer(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%v (make test installs it)", err)
	}
	t.Skipf("peer not installed: %v", err)
}

// peerRun is smallRun's rush against a peer: 2,000 seats, 32 users, a
// 60 s bound. It must sell out and pass the invariant check.
func peerRun(t *testing.T, sys System, targets []string, pids []int) *Result {
	t.Helper()
	cfg := DefaultConfig()
	cfg.System, cfg.Targets, cfg.ServerPIDs = sys, targets, pids
	cfg.Workload = WorkloadRush
	cfg.Seats, cfg.Users = 2_000, 32
	cfg.Duration = 3 * time.Minute // a bound; it sells out in seconds on a quiet machine
	cfg.SeatMapMaxAge = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	t.Logf("%s: %s after %.2f s: %d sold, %d holds, %d conflicts, errors %v, server CPU %.2f cores",
		sys.Name(), res.StopReason, res.LoadS, res.Sold, res.HoldsOK, res.Conflicts, res.ErrorsByCode, res.CPU.ServerCores)
	require.True(t, res.SoldOut, "not sold out: %s, %d sold", res.StopReason, res.Sold)
	require.True(t, res.Check.OK, "violations: %v", res.Check.Violations)
	assert.True(t, res.Check.Conclusive, "unresolved: %v", res.Check.Unresolved)
	assert.Equal(t, sys.Name(), res.System)
	assert.Equal(t, int64(2_000), res.Sold)
	assert.Equal(t, 2_000, res.Check.SeatsSold)
	assert.Equal(t, 2_000, res.Check.AckedSeats)
	assert.Equal(t, res.Check.AckedOrders, res.Check.OrdersRead)
	assert.Equal(t, res.HoldsOK, res.PurchasesOK+res.ReleasesOK, "every hold was bought or released")
	assert.Positive(t, res.Conflicts, "users competed for the hot seats")
	assert.Zero(t, res.Errors, "errors: %v", res.ErrorsByCode)
	assert.Positive(t, res.CPU.ServerS, "the servers' CPU is measured")

	var sum, js bytes.Buffer
	WriteSummary(&sum, res)
	assert.Contains(t, sum.String(), "system          "+sys.Name())
	assert.Contains(t, sum.String(), "invariant       OK")
	require.NoError(t, WriteJSON(&js, res))
	var back Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, sys.Name(), back.System)
	return res
}

// injectedDoubleSale re-reads the end state after inject sold the seat of
// an acknowledged order a second time, to the order "o-injected": the check
// must fail, naming the seat.
func injectedDoubleSale(t *testing.T, sys System, res *Result, inject func(ctx context.Context, event, seat string)) {
	t.Helper()
	require.NotEmpty(t, res.ledger.Orders)
	victim := res.ledger.Orders[0]
	seat := victim.Seats[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inject(ctx, res.Event, seat)
	st, err := sys.ReadState(ctx, res.Event, res.ledger.Orders)
	require.NoError(t, err)
	bad := Check(res.ledger, st, time.Second)
	require.False(t, bad.OK, "the double sale of %s went unnoticed", seat)
	assert.True(t, containsPrefix(bad.Violations, "seat "+seat+" is sold to order o-injected on the server, but was acknowledged as sold in order "+victim.ID), "%v", bad.Violations)
	assert.True(t, containsPrefix(bad.Violations, "seat "+seat+" is sold in two orders on the server"), "%v", bad.Violations)
}

// TestEtcdOnsaleSellsOutAndChecks: the rush against a 3-member etcd
// cluster (fsync on) sells out and passes the check; a double sale put into
// etcd's state afterwards is caught.
func TestEtcdOnsaleSellsOutAndChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd cluster")
	}
	_, err := FindEtcd()
	needPeer(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ec, err := StartEtcd(ctx, DefaultEtcdConfig())
	require.NoError(t, err)
	defer func() { ec.Stop(nil, t.Failed()) }()
	sys, err := ec.System()
	require.NoError(t, err)
	defer sys.Close()

	res := peerRun(t, sys, ec.Endpoints(), ec.PIDs())
	assert.True(t, res.LeadersKnown)

	injectedDoubleSale(t, sys, res, func(ctx context.Context, event, seat string) {
		body, err := json.Marshal(etcdOrder{ID: "o-injected", Event: event, Hold: "h-injected", Buyer: "mallory", Seats: []string{seat}, State: "paid"})
		require.NoError(t, err)
		_, err = sys.clients[0].Put(ctx, etcdOrderPrefix(event)+"o-injected", string(body))
		require.NoError(t, err)
		_, err = sys.clients[0].Put(ctx, etcdSeatPrefix(event)+seat, "S|o-injected")
		require.NoError(t, err)
	})
}

// TestPostgresOnsaleSellsOutAndChecks: the same against PostgreSQL.
func TestPostgresOnsaleSellsOutAndChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	_, err := FindPostgres()
	needPeer(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := DefaultPostgresConfig()
	cfg.PoolConns = 16
	pg, err := StartPostgres(ctx, cfg)
	require.NoError(t, err)
	defer func() { pg.Stop(nil, t.Failed()) }()
	sys, err := pg.System(ctx)
	require.NoError(t, err)
	defer sys.Close()

	res := peerRun(t, sys, []string{pg.Addr()}, pg.PIDs())
	assert.False(t, res.LeadersKnown)

	injectedDoubleSale(t, sys, res, func(ctx context.Context, event, seat string) {
		_, err := sys.pool.Exec(ctx, `INSERT INTO orders (id, event, hold, buyer, seats, state) VALUES ('o-injected', $1, 'h-injected', 'mallory', $2, 'paid')`,
			event, []string{seat})
		require.NoError(t, err)
		_, err = sys.pool.Exec(ctx, `UPDATE seats SET order_id = 'o-injected' WHERE event = $1 AND seat = $2`, event, seat)
		require.NoError(t, err)
	})
}
