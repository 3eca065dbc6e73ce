package payment_test

// Tests of the Stripe adapter, in two kinds:
//
//   - against stripe-mock, Stripe's own mock of its API, started by the test
//     on a loopback port. stripe-mock checks every request against Stripe's
//     OpenAPI spec (parameter names, types, enums: a wrong one is a 400), so
//     these tests prove that the requests we build are ones Stripe accepts,
//     and that stripe-go decodes the answers into what we read. stripe-mock
//     is stateless and answers from fixtures: it keeps nothing we create,
//     never declines, never fails, and reflects only some request fields
//     into its answers. So Lookup against it cannot find an intent the test
//     created; it finds the fixture's intent, whose metadata carries the
//     fixture's key (see stripeMockFixtures).
//   - against httptest fakes answering Stripe-shaped JSON, for everything
//     stripe-mock cannot do: declines, idempotency conflicts, 5xx, hangs,
//     retries, search lag, refunds already made.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"boxoffice"
	"boxoffice/payment"
)

// stripeMockVersion is the version `make test` installs; keep it in step
// with STRIPE_MOCK_VERSION in the Makefile.
const stripeMockVersion = "v0.203.0"

// stripeMockFixtures replaces stripe-mock's bundled fixtures, whose
// payment_intent is in requires_payment_method (so every charge would look
// declined) and carries no metadata. Ours succeeded, carries the key
// "fixture-key", and its latest charge is refunded in full. stripe-mock
// needs a fixture only for the resources it answers with.
const stripeMockFixtures = `{
  "resources": {
    "payment_intent": {
      "id": "pi_fixture", "object": "payment_intent", "amount": 1099, "currency": "eur",
      "capture_method": "automatic", "status": "succeeded", "livemode": false,
      "created": 1234567890, "latest_charge": "ch_fixture",
      "metadata": {"boxoffice_key": "fixture-key"}
    },
    "charge": {
      "id": "ch_fixture", "object": "charge", "amount": 1099, "amount_refunded": 1099,
      "currency": "eur", "paid": true, "refunded": true, "status": "succeeded",
      "payment_intent": "pi_fixture", "metadata": {}, "livemode": false, "created": 1234567890
    },
    "refund": {
      "id": "re_fixture", "object": "refund", "amount": 1099, "currency": "eur",
      "charge": "ch_fixture", "payment_intent": "pi_fixture", "status": "succeeded",
      "metadata": {}, "created": 1234567890
    }
  }
}`

const stripeTestKey = "sk_test_boxoffice"

func TestStripeAgainstStripeMock(t *testing.T) {
	baseURL := startStripeMock(t)
	rec := &stripeRecorder{}
	cfg := payment.DefaultStripeConfig()
	cfg.APIKey = stripeTestKey
	cfg.BaseURL = baseURL
	cfg.HTTPClient = &http.Client{Transport: rec}
	cfg.Timeout = 10 * time.Second
	gw, err := payment.NewStripe(cfg)
	require.NoError(t, err)
	ctx := t.Context()

	var ref string
	t.Run("charge", func(t *testing.T) {
		rec.reset()
		c, err := gw.Charge(ctx, "o_charge-1", 2500, "pm_card_visa")
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(c.Ref, "pi_"), "ref %q", c.Ref)
		assert.Equal(t, "o_charge-1", c.IdempotencyKey)
		assert.Equal(t, int64(2500), c.AmountCents, "stripe-mock reflects the amount")
		assert.False(t, c.Refunded)
		ref = c.Ref

		reqs := rec.all()
		require.Len(t, reqs, 1)
		r := reqs[0]
		assert.Equal(t, "POST /v1/payment_intents", r.Method+" "+r.Path)
		assert.Equal(t, "o_charge-1", r.Header.Get("Idempotency-Key"), "Stripe's idempotency key is ours")
		assert.Equal(t, "Bearer "+stripeTestKey, r.Header.Get("Authorization"))
		for k, v := range map[string]string{
			"amount":                             "2500",
			"currency":                           "eur",
			"payment_method":                     "pm_card_visa",
			"confirm":                            "true",
			"capture_method":                     "automatic",
			"automatic_payment_methods[enabled]": "true",
			"automatic_payment_methods[allow_redirects]": "never",
			"error_on_requires_action":                   "true",
			"metadata[boxoffice_key]":                    "o_charge-1",
		} {
			assert.Equal(t, v, r.Form.Get(k), "form field %s", k)
		}
	})

	t.Run("refund", func(t *testing.T) {
		require.NotEmpty(t, ref, "needs the charge subtest")
		rec.reset()
		id, err := gw.Refund(ctx, "r_refund-1", ref)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(id, "re_"), "refund id %q", id)
		reqs := rec.all()
		require.Len(t, reqs, 1)
		r := reqs[0]
		assert.Equal(t, "POST /v1/refunds", r.Method+" "+r.Path)
		assert.Equal(t, "r_refund-1", r.Header.Get("Idempotency-Key"))
		assert.Equal(t, ref, r.Form.Get("payment_intent"))
		assert.Equal(t, "r_refund-1", r.Form.Get("metadata[boxoffice_key]"))
	})

	// The fixture's intent carries "fixture-key": Search finds it, expanded
	// with its (refunded) latest charge.
	t.Run("lookup finds the fixture intent", func(t *testing.T) {
		rec.reset()
		c, err := gw.Lookup(ctx, "fixture-key")
		require.NoError(t, err)
		assert.Equal(t, boxoffice.Charge{Ref: "pi_fixture", IdempotencyKey: "fixture-key", AmountCents: 1099, Refunded: true}, c)
		reqs := rec.all()
		require.Len(t, reqs, 1, "found by search, no scan")
		r := reqs[0]
		assert.Equal(t, "GET /v1/payment_intents/search", r.Method+" "+r.Path)
		assert.Equal(t, "metadata['boxoffice_key']:'fixture-key'", r.Form.Get("query"))
		assert.Equal(t, "data.latest_charge", r.Form.Get("expand[0]"))
	})

	// stripe-mock kept nothing of the charge above: Search and List answer
	// with the fixture's intent, whose key differs, so Lookup must say not
	// found — against the real Stripe this key would be found.
	t.Run("lookup of the created key is not found (stripe-mock is stateless)", func(t *testing.T) {
		rec.reset()
		_, err := gw.Lookup(ctx, "o_charge-1")
		require.ErrorIs(t, err, boxoffice.ErrNotFound)
		reqs := rec.all()
		require.Len(t, reqs, 2, "search, then one page of the scan")
		assert.Equal(t, "GET /v1/payment_intents/search", reqs[0].Method+" "+reqs[0].Path)
		assert.Equal(t, "GET /v1/payment_intents", reqs[1].Method+" "+reqs[1].Path)
		stripeAssertCreatedSince(t, reqs[1].Form, cfg.LookupScanWindow)
	})
}

func TestStripeChargeErrorMapping(t *testing.T) {
	piWith := func(status string) string {
		return fmt.Sprintf(`{"id":"pi_1","object":"payment_intent","amount":2500,"currency":"eur","status":%q,
			"last_payment_error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}`, status)
	}
	cases := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"card declined", 402, stripeErrorJSON("card_error", "card_declined", "insufficient_funds", "Your card has insufficient funds."), boxoffice.ErrPaymentDeclined},
		{"authentication required", 402, stripeErrorJSON("card_error", "authentication_required", "", "Your card requires authentication."), boxoffice.ErrPaymentDeclined},
		{"no such payment method", 400, stripeErrorJSON("invalid_request_error", "resource_missing", "", "No such PaymentMethod: 'pm_nope'"), boxoffice.ErrPaymentDeclined},
		{"bad api key", 401, stripeErrorJSON("invalid_request_error", "", "", "Invalid API Key provided"), boxoffice.ErrPaymentDeclined},
		{"200 requires_payment_method", 200, piWith("requires_payment_method"), boxoffice.ErrPaymentDeclined},
		{"200 canceled", 200, piWith("canceled"), boxoffice.ErrPaymentDeclined},
		{"key reused with other parameters", 400, stripeErrorJSON("idempotency_error", "", "", "Keys for idempotent requests can only be used with the same parameters"), boxoffice.ErrPaymentUnknown},
		{"concurrent request with the key", 409, stripeErrorJSON("idempotency_error", "", "", "There is currently another in-progress request using this Idempotent Key"), boxoffice.ErrPaymentUnknown},
		{"rate limited", 429, stripeErrorJSON("invalid_request_error", "rate_limit", "", "Too many requests"), boxoffice.ErrPaymentUnknown},
		{"500 api_error", 500, stripeErrorJSON("api_error", "", "", "Something went wrong on Stripe's end."), boxoffice.ErrPaymentUnknown},
		{"502 html", 502, "<html>bad gateway</html>", boxoffice.ErrPaymentUnknown},
		{"200 processing", 200, piWith("processing"), boxoffice.ErrPaymentUnknown},
		{"200 requires_capture", 200, piWith("requires_capture"), boxoffice.ErrPaymentUnknown},
		{"200 garbled", 200, `{"id":"pi_1","status":`, boxoffice.ErrPaymentUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
				writeStripe(w, tc.status, tc.body)
			}, nil)
			_, err := gw.Charge(t.Context(), "o_1", 2500, "pm_card_visa")
			require.ErrorIs(t, err, tc.want)
			other := boxoffice.ErrPaymentUnknown
			if tc.want == boxoffice.ErrPaymentUnknown {
				other = boxoffice.ErrPaymentDeclined
			}
			assert.NotErrorIs(t, err, other)
			assert.Equal(t, tc.want.(*boxoffice.Error).Code, boxoffice.CodeOf(err))
			assert.Contains(t, err.Error(), `stripe charge "o_1"`)
		})
	}

	t.Run("the stripe error stays reachable", func(t *testing.T) {
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeStripe(w, 402, stripeErrorJSON("card_error", "card_declined", "insufficient_funds", "Your card has insufficient funds."))
		}, nil)
		_, err := gw.Charge(t.Context(), "o_1", 2500, "pm_card_chargeDeclined")
		var se *stripe.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, stripe.DeclineCode("insufficient_funds"), se.DeclineCode)
		assert.Contains(t, err.Error(), "insufficient_funds")
	})
}

// stripe-go repeats a request whose answer was lost; the repeat must carry
// the same key, or it would be a second charge.
func TestStripeRetryKeepsTheKey(t *testing.T) {
	var calls atomic.Int32
	gw, rec := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// The request arrived; its answer is lost on the way back.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		writeStripe(w, 200, `{"id":"pi_9","object":"payment_intent","amount":2500,"currency":"eur","status":"succeeded"}`)
	}, func(c *payment.StripeConfig) { c.MaxNetworkRetries = 1 })
	c, err := gw.Charge(t.Context(), "o_retry", 2500, "pm_card_visa")
	require.NoError(t, err)
	assert.Equal(t, "pi_9", c.Ref)
	assert.Equal(t, int32(2), calls.Load())
	reqs := rec.all()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		assert.Equal(t, "o_retry", r.Header.Get("Idempotency-Key"))
	}
}

// stripe-go does not repeat a request Stripe answered with an error (but for
// a 429 lock_timeout): a 500 is the saga's to resolve.
func TestStripeNoRetryOfAnswered500(t *testing.T) {
	var calls atomic.Int32
	gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeStripe(w, 500, stripeErrorJSON("api_error", "", "", "boom"))
	}, func(c *payment.StripeConfig) { c.MaxNetworkRetries = 2 })
	_, err := gw.Charge(t.Context(), "o_1", 2500, "pm_card_visa")
	require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	assert.Equal(t, int32(1), calls.Load())
}

func TestStripeHangingServerIsUnknown(t *testing.T) {
	hanging := func(t *testing.T, mod func(*payment.StripeConfig)) *payment.Stripe {
		release := make(chan struct{})
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, mod)
		t.Cleanup(func() { close(release) }) // registered after the server's Close, so it runs first
		return gw
	}
	t.Run("ctx deadline", func(t *testing.T) {
		gw := hanging(t, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := gw.Charge(ctx, "o_1", 2500, "pm_card_visa")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("http timeout", func(t *testing.T) {
		gw := hanging(t, func(c *payment.StripeConfig) { c.Timeout = 200 * time.Millisecond })
		_, err := gw.Charge(t.Context(), "o_1", 2500, "pm_card_visa")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
		_, err = gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
		_, err = gw.Refund(t.Context(), "r_1", "pi_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	})
}

func TestStripeClosedPortIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cfg := payment.DefaultStripeConfig()
	cfg.APIKey = stripeTestKey
	cfg.BaseURL = "http://" + addr
	cfg.MaxNetworkRetries = 0
	gw, err := payment.NewStripe(cfg)
	require.NoError(t, err)
	ctx := t.Context()

	_, err = gw.Charge(ctx, "o_1", 2500, "pm_card_visa")
	require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	assert.NotErrorIs(t, err, boxoffice.ErrPaymentDeclined)
	_, err = gw.Refund(ctx, "r_1", "pi_1")
	require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	_, err = gw.Lookup(ctx, "o_1")
	require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	assert.NotErrorIs(t, err, boxoffice.ErrNotFound)
}

func TestStripeLookup(t *testing.T) {
	pi := func(id, key, status string, refunded bool) string {
		return fmt.Sprintf(`{"id":%q,"object":"payment_intent","amount":2500,"currency":"eur","status":%q,
			"metadata":{"boxoffice_key":%q},
			"latest_charge":{"id":"ch_%s","object":"charge","refunded":%t}}`, id, status, key, id, refunded)
	}
	search := func(items ...string) string {
		return `{"object":"search_result","url":"/v1/payment_intents/search","has_more":false,"data":[` + strings.Join(items, ",") + `]}`
	}
	list := func(hasMore bool, items ...string) string {
		return fmt.Sprintf(`{"object":"list","url":"/v1/payment_intents","has_more":%t,"data":[%s]}`, hasMore, strings.Join(items, ","))
	}
	// route answers search and list from the given bodies; list pages are
	// picked by starting_after.
	route := func(searchBody string, pages map[string]string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/v1/payment_intents/search":
				writeStripe(w, 200, searchBody)
			case "/v1/payment_intents":
				body, ok := pages[r.URL.Query().Get("starting_after")]
				if !ok {
					body = list(false)
				}
				writeStripe(w, 200, body)
			default:
				writeStripe(w, 404, stripeErrorJSON("invalid_request_error", "", "", "Unrecognized request URL"))
			}
		}
	}

	t.Run("found by search", func(t *testing.T) {
		gw, rec := stripeFake(t, route(search(pi("pi_1", "o_1", "succeeded", false)), nil), nil)
		c, err := gw.Lookup(t.Context(), "o_1")
		require.NoError(t, err)
		assert.Equal(t, boxoffice.Charge{Ref: "pi_1", IdempotencyKey: "o_1", AmountCents: 2500}, c)
		assert.Len(t, rec.all(), 1)
	})
	t.Run("refunded", func(t *testing.T) {
		gw, _ := stripeFake(t, route(search(pi("pi_1", "o_1", "succeeded", true)), nil), nil)
		c, err := gw.Lookup(t.Context(), "o_1")
		require.NoError(t, err)
		assert.True(t, c.Refunded)
	})
	t.Run("a succeeded intent wins over a declined one of the same key", func(t *testing.T) {
		gw, _ := stripeFake(t, route(search(pi("pi_old", "o_1", "requires_payment_method", false), pi("pi_new", "o_1", "succeeded", false)), nil), nil)
		c, err := gw.Lookup(t.Context(), "o_1")
		require.NoError(t, err)
		assert.Equal(t, "pi_new", c.Ref)
	})
	t.Run("search answers with another key only", func(t *testing.T) {
		gw, _ := stripeFake(t, route(search(pi("pi_2", "o_2", "succeeded", false)), nil), nil)
		_, err := gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrNotFound)
	})
	t.Run("not indexed yet: found by the scan on its second page", func(t *testing.T) {
		gw, rec := stripeFake(t, route(search(), map[string]string{
			"":     list(true, pi("pi_3", "o_3", "succeeded", false), pi("pi_2", "o_2", "succeeded", false)),
			"pi_2": list(false, pi("pi_1", "o_1", "succeeded", false)),
		}), nil)
		c, err := gw.Lookup(t.Context(), "o_1")
		require.NoError(t, err)
		assert.Equal(t, "pi_1", c.Ref)
		reqs := rec.all()
		require.Len(t, reqs, 3)
		stripeAssertCreatedSince(t, reqs[1].Form, payment.DefaultStripeConfig().LookupScanWindow)
		assert.Equal(t, "data.latest_charge", reqs[1].Form.Get("expand[0]"))
	})
	t.Run("neither search nor a complete scan: not found", func(t *testing.T) {
		gw, _ := stripeFake(t, route(search(), map[string]string{"": list(false, pi("pi_2", "o_2", "succeeded", false))}), nil)
		_, err := gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrNotFound)
		assert.NotErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	})
	t.Run("a scan cut short is inconclusive", func(t *testing.T) {
		var pages atomic.Int32
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/payment_intents/search" {
				writeStripe(w, 200, search())
				return
			}
			n := pages.Add(1)
			writeStripe(w, 200, list(true, pi(fmt.Sprintf("pi_%da", n), "other", "succeeded", false), pi(fmt.Sprintf("pi_%db", n), "other", "succeeded", false)))
		}, func(c *payment.StripeConfig) { c.LookupScanMax = 5 })
		_, err := gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
		assert.Equal(t, int32(3), pages.Load(), "5 intents are 3 pages of 2, and no more")
	})
	t.Run("declined intent: nothing charged", func(t *testing.T) {
		gw, _ := stripeFake(t, route(search(pi("pi_1", "o_1", "requires_payment_method", false)), nil), nil)
		_, err := gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrNotFound)
	})
	t.Run("processing intent: unknown", func(t *testing.T) {
		gw, _ := stripeFake(t, route(search(pi("pi_1", "o_1", "processing", false)), nil), nil)
		_, err := gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	})
	t.Run("search fails", func(t *testing.T) {
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeStripe(w, 500, stripeErrorJSON("api_error", "", "", "boom"))
		}, nil)
		_, err := gw.Lookup(t.Context(), "o_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	})
}

func TestStripeRefund(t *testing.T) {
	t.Run("already refunded: the existing refund answers", func(t *testing.T) {
		gw, rec := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				writeStripe(w, 400, stripeErrorJSON("invalid_request_error", "charge_already_refunded", "", "Charge ch_1 has already been refunded."))
				return
			}
			writeStripe(w, 200, `{"object":"list","url":"/v1/refunds","has_more":false,"data":[
				{"id":"re_failed","object":"refund","status":"failed","payment_intent":"pi_1"},
				{"id":"re_ok","object":"refund","status":"succeeded","payment_intent":"pi_1"}]}`)
		}, nil)
		id, err := gw.Refund(t.Context(), "r_1", "pi_1")
		require.NoError(t, err)
		assert.Equal(t, "re_ok", id)
		reqs := rec.all()
		require.Len(t, reqs, 2)
		assert.Equal(t, "GET /v1/refunds", reqs[1].Method+" "+reqs[1].Path)
		assert.Equal(t, "pi_1", reqs[1].Form.Get("payment_intent"))
	})
	t.Run("pending is under way", func(t *testing.T) {
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeStripe(w, 200, `{"id":"re_1","object":"refund","status":"pending"}`)
		}, nil)
		id, err := gw.Refund(t.Context(), "r_1", "pi_1")
		require.NoError(t, err)
		assert.Equal(t, "re_1", id)
	})
	t.Run("failed", func(t *testing.T) {
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeStripe(w, 200, `{"id":"re_1","object":"refund","status":"failed","failure_reason":"expired_or_canceled_card"}`)
		}, nil)
		_, err := gw.Refund(t.Context(), "r_1", "pi_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentDeclined)
	})
	t.Run("500", func(t *testing.T) {
		gw, _ := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeStripe(w, 500, stripeErrorJSON("api_error", "", "", "boom"))
		}, nil)
		_, err := gw.Refund(t.Context(), "r_1", "pi_1")
		require.ErrorIs(t, err, boxoffice.ErrPaymentUnknown)
	})
}

func TestStripeInvalidArguments(t *testing.T) {
	gw, rec := stripeFake(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request expected, got %s %s", r.Method, r.URL.Path)
	}, nil)
	ctx := t.Context()
	for name, err := range map[string]error{
		"empty key":           stripeErrOnly(gw.Charge(ctx, "", 2500, "pm_card_visa")),
		"long key":            stripeErrOnly(gw.Charge(ctx, strings.Repeat("k", 256), 2500, "pm_card_visa")),
		"quote in key":        stripeErrOnly(gw.Lookup(ctx, "o_1' OR status:'succeeded")),
		"space in key":        stripeErrOnly(gw.Refund(ctx, " r_1", "pi_1")),
		"zero amount":         stripeErrOnly(gw.Charge(ctx, "o_1", 0, "pm_card_visa")),
		"amount over limit":   stripeErrOnly(gw.Charge(ctx, "o_1", 100_000_000, "pm_card_visa")),
		"no payment method":   stripeErrOnly(gw.Charge(ctx, "o_1", 2500, "")),
		"no charge to refund": stripeErrOnly(gw.Refund(ctx, "r_1", "")),
	} {
		assert.ErrorIs(t, err, boxoffice.ErrInvalidArgument, name)
	}
	assert.Empty(t, rec.all())
}

func TestStripeConfig(t *testing.T) {
	ok := payment.DefaultStripeConfig()
	ok.APIKey = stripeTestKey
	require.NoError(t, ok.Validate())

	err := payment.StripeConfig{}.Validate()
	require.Error(t, err)
	for _, field := range []string{"APIKey", "Timeout", "Currency", "LookupScanWindow", "LookupScanMax"} {
		assert.Contains(t, err.Error(), field, "every problem is listed at once")
	}

	bad := ok
	bad.APIKey = "pk_test_123"
	bad.BaseURL = "localhost:12111"
	bad.Currency = "EUR"
	bad.MaxNetworkRetries = payment.StripeMaxNetworkRetriesMax + 1
	bad.Timeout = payment.StripeTimeoutMax + time.Second
	err = bad.Validate()
	require.Error(t, err)
	for _, field := range []string{"publishable", "BaseURL", "Currency", "MaxNetworkRetries", "Timeout"} {
		assert.Contains(t, err.Error(), field)
	}
	_, err = payment.NewStripe(bad)
	require.Error(t, err, "NewStripe validates")
}

// --- stripe-mock ---

// startStripeMock starts stripe-mock on a loopback port chosen by the
// kernel, with stripeMockFixtures, waits until it answers, and stops it when
// the test ends. It returns the base URL.
func startStripeMock(t *testing.T) string {
	t.Helper()
	bin := stripeMockBinary(t)
	fixtures := filepath.Join(t.TempDir(), "fixtures.json")
	require.NoError(t, os.WriteFile(fixtures, []byte(stripeMockFixtures), 0o644))

	// -https-addr too: stripe-mock (v0.203.0) also opens HTTPS on :12112,
	// every interface, unless told where; a fixed port would collide with
	// another test process.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0", "-fixtures", fixtures)
	out := &stripeMockOutput{addr: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start(), "start %s", bin)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stripe-mock output:\n%s", out.String())
		}
	})

	var addr string
	select {
	case addr = <-out.addr:
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("stripe-mock exited before listening (%v):\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("stripe-mock did not announce its HTTP address within 30s:\n%s", out.String())
	}
	baseURL := "http://" + addr

	// It listens before it announces; one answer (any status) proves it
	// serves. Bounded: a few tries within 10s.
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, baseURL+"/v1/refunds/re_probe", nil)
		require.NoError(t, err)
		req.SetBasicAuth(stripeTestKey, "")
		resp, err := probe.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return baseURL
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock at %s does not answer: %v\n%s", baseURL, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stripeMockBinary finds stripe-mock where `make test` installs it
// ($(go env GOPATH)/bin), in GOBIN, or on PATH. Missing, the test fails:
// the payment tests are part of `make test`, which installs it.
func stripeMockBinary(t *testing.T) string {
	t.Helper()
	var dirs []string
	if out, err := exec.Command("go", "env", "-json", "GOPATH", "GOBIN").Output(); err == nil {
		var env struct{ GOPATH, GOBIN string }
		if json.Unmarshal(out, &env) == nil {
			for _, p := range filepath.SplitList(env.GOPATH) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
			if env.GOBIN != "" {
				dirs = append(dirs, env.GOBIN)
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "stripe-mock")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	t.Fatalf("stripe-mock is not installed (looked in %s and PATH): `make test` installs it, "+
		"or run `go install github.com/stripe/stripe-mock@%s`", strings.Join(dirs, ", "), stripeMockVersion)
	return ""
}

// stripeMockOutput keeps stripe-mock's output (it logs every request) and
// passes on the address it announces.
type stripeMockOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

func (o *stripeMockOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if !o.sent {
		const prefix = "Listening for HTTP at address: "
		s := o.buf.String()
		if i := strings.Index(s, prefix); i >= 0 {
			rest := s[i+len(prefix):]
			if j := strings.IndexByte(rest, '\n'); j >= 0 {
				o.addr <- strings.TrimSpace(rest[:j])
				o.sent = true
			}
		}
	}
	return len(p), nil
}

func (o *stripeMockOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// --- fakes and recording ---

// stripeFake serves handler as the Stripe API and returns an adapter on it
// (no network retries unless mod sets them) with the recorder of its
// requests.
func stripeFake(t *testing.T, handler http.HandlerFunc, mod func(*payment.StripeConfig)) (*payment.Stripe, *stripeRecorder) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	rec := &stripeRecorder{}
	cfg := payment.DefaultStripeConfig()
	cfg.APIKey = stripeTestKey
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = &http.Client{Transport: rec}
	cfg.MaxNetworkRetries = 0
	cfg.Timeout = 10 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	gw, err := payment.NewStripe(cfg)
	require.NoError(t, err)
	return gw, rec
}

func writeStripe(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_test")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// stripeErrorJSON is an error body as Stripe sends it.
func stripeErrorJSON(typ, code, declineCode, msg string) string {
	e := map[string]string{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	if declineCode != "" {
		e["decline_code"] = declineCode
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return string(b)
}

// stripeRecorder is an http.RoundTripper that records each request (method,
// path, headers, form from the query or the body) and sends it on.
type stripeRecorder struct {
	mu   sync.Mutex
	reqs []stripeRequest
}

type stripeRequest struct {
	Method, Path string
	Header       http.Header
	Form         url.Values
}

func (r *stripeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	form := req.URL.Query()
	if req.GetBody != nil {
		// GetBody gives a fresh copy, so the request itself is not touched.
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(body)
		_ = body.Close()
		if err != nil {
			return nil, err
		}
		posted, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, err
		}
		for k, v := range posted {
			form[k] = append(form[k], v...)
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, stripeRequest{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Form: form})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *stripeRecorder) all() []stripeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stripeRequest(nil), r.reqs...)
}

func (r *stripeRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

// assertCreatedSince checks a scan's created[gte] against now − window.
func stripeAssertCreatedSince(t *testing.T, form url.Values, window time.Duration) {
	t.Helper()
	gte, err := strconv.ParseInt(form.Get("created[gte]"), 10, 64)
	require.NoError(t, err, "created[gte] in %v", form)
	want := time.Now().Add(-window).Unix()
	assert.InDelta(t, want, gte, 60, "created[gte] is now − LookupScanWindow")
}

func stripeErrOnly[T any](_ T, err error) error { return err }
