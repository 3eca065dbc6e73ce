package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"boxoffice"
)

// A simulated gateway shared by processes: SimServer serves a Sim over HTTP,
// and HTTPGateway is a PaymentGateway that calls it. `boxoffice local` runs
// one SimServer for its nodes, so that, as with a real provider, a new
// leader's look-ups see the charges the old leader made.

type simChargeRequest struct {
	Key           string `json:"key"`
	AmountCents   int64  `json:"amountCents"`
	PaymentMethod string `json:"paymentMethod"`
}

type simChargeAnswer struct {
	Ref         string `json:"ref"`
	Key         string `json:"key"`
	AmountCents int64  `json:"amountCents"`
	Refunded    bool   `json:"refunded"`
}

type simRefundRequest struct {
	Key       string `json:"key"`
	ChargeRef string `json:"chargeRef"`
}

type simError struct {
	Error string `json:"error"`
}

// simBodyMax bounds a request or answer body of the simulated gateway.
const simBodyMax = 64 << 10

// SimServer serves a Sim: POST /charge, POST /refund, GET /lookup?key=.
// Declines answer 402, unknown outcomes 503, unknown charges 404.
func SimServer(sim *Sim) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		status := http.StatusOK
		switch {
		case err == nil:
		case errors.Is(err, boxoffice.ErrPaymentDeclined):
			status = http.StatusPaymentRequired
		case errors.Is(err, boxoffice.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, boxoffice.ErrPaymentUnknown):
			status = http.StatusServiceUnavailable
		default:
			status = http.StatusBadRequest
		}
		if err != nil {
			v = simError{Error: err.Error()}
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	chargeOut := func(c boxoffice.Charge) simChargeAnswer {
		return simChargeAnswer{Ref: c.Ref, Key: c.IdempotencyKey, AmountCents: c.AmountCents, Refunded: c.Refunded}
	}
	mux.HandleFunc("POST /charge", func(w http.ResponseWriter, r *http.Request) {
		var in simChargeRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, simBodyMax)).Decode(&in); err != nil || in.Key == "" {
			answer(w, nil, fmt.Errorf("bad charge request: %v", err))
			return
		}
		c, err := sim.Charge(r.Context(), in.Key, in.AmountCents, in.PaymentMethod)
		answer(w, chargeOut(c), err)
	})
	mux.HandleFunc("POST /refund", func(w http.ResponseWriter, r *http.Request) {
		var in simRefundRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, simBodyMax)).Decode(&in); err != nil || in.Key == "" {
			answer(w, nil, fmt.Errorf("bad refund request: %v", err))
			return
		}
		ref, err := sim.Refund(r.Context(), in.Key, in.ChargeRef)
		answer(w, map[string]string{"ref": ref}, err)
	})
	mux.HandleFunc("GET /lookup", func(w http.ResponseWriter, r *http.Request) {
		c, err := sim.Lookup(r.Context(), r.URL.Query().Get("key"))
		answer(w, chargeOut(c), err)
	})
	return mux
}

// HTTPGateway calls a SimServer.
type HTTPGateway struct {
	base   string
	client *http.Client
}

var _ boxoffice.PaymentGateway = (*HTTPGateway)(nil)

// NewHTTPGateway returns a gateway that calls the SimServer at base
// ("http://host:port"), each call bounded by timeout.
func NewHTTPGateway(base string, timeout time.Duration) (*HTTPGateway, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("payment gateway address %q must be http://host:port", base)
	}
	if timeout <= 0 {
		return nil, errors.New("payment: the gateway timeout must be positive")
	}
	// Keep a connection per concurrent call: with net/http's default of two
	// idle connections per host, a leader charging hundreds of purchases at
	// once dialed (and left in TIME_WAIT) a new connection for most of them,
	// a tenth of its CPU in the on-sale's profile.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = gatewayIdleConnsMax
	tr.MaxIdleConnsPerHost = gatewayIdleConnsMax
	return &HTTPGateway{base: u.String(), client: &http.Client{Timeout: timeout, Transport: tr}}, nil
}

// gatewayIdleConnsMax bounds the idle connections kept to the gateway.
const gatewayIdleConnsMax = 1024

// call sends a request and decodes a 200 answer into out. Transport errors
// and 5xx are unknown outcomes: the request may have been served.
func (g *HTTPGateway) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", boxoffice.ErrPaymentUnknown, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, simBodyMax))
	if err != nil {
		return fmt.Errorf("%w: reading the answer: %v", boxoffice.ErrPaymentUnknown, err)
	}
	var e simError
	json.Unmarshal(b, &e)
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: malformed answer: %v", boxoffice.ErrPaymentUnknown, err)
		}
		return nil
	case resp.StatusCode == http.StatusPaymentRequired:
		return fmt.Errorf("%w: %s", boxoffice.ErrPaymentDeclined, e.Error)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s", boxoffice.ErrNotFound, e.Error)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %s %s", boxoffice.ErrPaymentUnknown, resp.Status, e.Error)
	}
	return fmt.Errorf("payment gateway: %s %s", resp.Status, e.Error)
}

func (g *HTTPGateway) Charge(ctx context.Context, key string, amountCents int64, paymentMethod string) (boxoffice.Charge, error) {
	var a simChargeAnswer
	if err := g.call(ctx, "POST", "/charge", simChargeRequest{Key: key, AmountCents: amountCents, PaymentMethod: paymentMethod}, &a); err != nil {
		return boxoffice.Charge{}, err
	}
	return boxoffice.Charge{Ref: a.Ref, IdempotencyKey: a.Key, AmountCents: a.AmountCents, Refunded: a.Refunded}, nil
}

func (g *HTTPGateway) Refund(ctx context.Context, key, chargeRef string) (string, error) {
	var a struct{ Ref string }
	if err := g.call(ctx, "POST", "/refund", simRefundRequest{Key: key, ChargeRef: chargeRef}, &a); err != nil {
		return "", err
	}
	return a.Ref, nil
}

func (g *HTTPGateway) Lookup(ctx context.Context, key string) (boxoffice.Charge, error) {
	var a simChargeAnswer
	if err := g.call(ctx, "GET", "/lookup?key="+url.QueryEscape(key), nil, &a); err != nil {
		return boxoffice.Charge{}, err
	}
	return boxoffice.Charge{Ref: a.Ref, IdempotencyKey: a.Key, AmountCents: a.AmountCents, Refunded: a.Refunded}, nil
}
