package payment_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/payment"
)

// The simulated gateway over HTTP answers as the Sim does: one charge per
// key, declines, unknown outcomes, look-ups and refunds.
func TestSimOverHTTP(t *testing.T) {
	sim, err := payment.NewSim(payment.SimConfig{Seed: 1})
	require.NoError(t, err)
	srv := httptest.NewServer(payment.SimServer(sim))
	defer srv.Close()
	g, err := payment.NewHTTPGateway(srv.URL, 5*time.Second)
	require.NoError(t, err)
	ctx := context.Background()

	c, err := g.Charge(ctx, "o_1", 5000, "pm_card_visa")
	require.NoError(t, err)
	assert.Equal(t, int64(5000), c.AmountCents)
	again, err := g.Charge(ctx, "o_1", 5000, "pm_card_visa")
	require.NoError(t, err)
	assert.Equal(t, c, again, "one charge per key")
	found, err := g.Lookup(ctx, "o_1")
	require.NoError(t, err)
	assert.Equal(t, c.Ref, found.Ref)

	_, err = g.Charge(ctx, "o_2", 5000, "pm_card_chargeDeclined")
	assert.ErrorIs(t, err, boxoffice.ErrPaymentDeclined)
	_, err = g.Lookup(ctx, "o_2")
	assert.ErrorIs(t, err, boxoffice.ErrNotFound, "a declined charge is no charge")

	ref, err := g.Refund(ctx, "refund/o_1", c.Ref)
	require.NoError(t, err)
	assert.NotEmpty(t, ref)
	ref2, err := g.Refund(ctx, "refund/o_1", c.Ref)
	require.NoError(t, err)
	assert.Equal(t, ref, ref2, "one refund per key")
	require.Len(t, sim.Charges(), 1)
	assert.True(t, sim.Charges()[0].Refunded)

	require.NoError(t, sim.SetConfig(payment.SimConfig{Outage: true}))
	_, err = g.Charge(ctx, "o_3", 100, "pm_card_visa")
	assert.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	srv.Close()
	_, err = g.Lookup(ctx, "o_1")
	assert.ErrorIs(t, err, boxoffice.ErrPaymentUnknown, "an unreachable gateway is an unknown outcome")

	_, err = payment.NewHTTPGateway("ftp://x", time.Second)
	assert.Error(t, err)
}

// Concurrent calls reuse their connections: rounds of 64 charges at once
// open about 64 connections, not one per call.
func TestHTTPGatewayReusesConnections(t *testing.T) {
	sim, err := payment.NewSim(payment.SimConfig{Seed: 1, LatencyMedian: time.Millisecond})
	require.NoError(t, err)
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(payment.SimServer(sim))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	g, err := payment.NewHTTPGateway(srv.URL, 10*time.Second)
	require.NoError(t, err)
	const parallel, rounds = 64, 5
	for r := range rounds {
		var wg sync.WaitGroup
		for i := range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := g.Charge(context.Background(), fmt.Sprintf("o_%d_%d", r, i), 100, "pm_card_visa")
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	assert.LessOrEqual(t, conns.Load(), int64(2*parallel), "%d calls opened %d connections", parallel*rounds, conns.Load())
}
