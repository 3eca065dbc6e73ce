package payment

// The Stripe adapter: boxoffice.PaymentGateway over Stripe's PaymentIntents.
//
// Exactly-once rests on Stripe's idempotency keys. Every write (create a
// PaymentIntent, create a Refund) carries the caller's key as Stripe's
// Idempotency-Key, so a call repeated after a lost answer — by stripe-go's own
// network retries or by the saga — is answered by Stripe with the first
// call's result instead of a second charge. Stripe keeps keys for at least 24
// hours; the saga resolves a checkout long before that.
//
// A charge is created and confirmed in one request (confirm=true) with
// automatic capture, so "succeeded" means the money is taken. Checkout is
// server-side: nobody could complete a 3-D Secure challenge or a redirect, so
// redirect-based methods are excluded and error_on_requires_action turns a
// challenge into a decline rather than an intent left waiting.
//
// Lookup finds the intent by the key, which is also written into the
// intent's metadata (Stripe cannot look intents up by idempotency key). It
// asks Stripe's Search API first; Search is eventually consistent (usually
// under a minute, up to an hour in an outage), so when Search finds nothing
// Lookup also lists the intents created in the last LookupScanWindow, which
// the List API returns consistently. Only a scan that covered the whole
// window proves that nothing was charged; a scan cut short by LookupScanMax
// answers ErrPaymentUnknown. Whatever Lookup says, charging again with the
// same key is always safe within Stripe's 24 hours: Stripe replays the
// first answer (a decline, a success, even a 500) instead of charging again.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"

	"boxoffice"
)

var _ boxoffice.PaymentGateway = (*Stripe)(nil)

const (
	// stripeMetadataKey names the metadata entry that carries the
	// boxoffice idempotency key on every intent and refund we create.
	stripeMetadataKey = "boxoffice_key"
	// stripeKeyBytesMax is Stripe's limit on an Idempotency-Key.
	stripeKeyBytesMax = 255
	// stripeAmountCentsMax is Stripe's limit on an amount: eight digits.
	stripeAmountCentsMax = 99_999_999
	// stripeSearchLimit bounds the intents one Search answer may hold. One
	// key names one intent while Stripe remembers the key; more than one
	// appears only if a key was reused after Stripe forgot it.
	stripeSearchLimit = 10
	// stripeListPageSize is the page size of the Lookup scan (Stripe's max).
	stripeListPageSize = 100
	// stripeRefundListLimit bounds the refunds read for one intent.
	stripeRefundListLimit = 10
)

// Bounds of StripeConfig, enforced by Validate. The scan window stays
// within the 24 hours for which Stripe remembers an idempotency key, so a
// key names at most one intent inside it.
const (
	StripeMaxNetworkRetriesMax = 5
	StripeTimeoutMax           = 2 * time.Minute
	StripeLookupScanWindowMax  = 24 * time.Hour
	StripeLookupScanMaxMax     = 10_000
)

// StripeConfig configures the Stripe adapter.
type StripeConfig struct {
	// APIKey is a secret (sk_…) or restricted (rk_…) key.
	APIKey string
	// BaseURL is the API's address: empty for Stripe's own
	// (https://api.stripe.com), or a stripe-mock for tests.
	BaseURL string
	// HTTPClient carries the requests; nil for a plain one. A copy is used,
	// with Timeout as its timeout.
	HTTPClient *http.Client
	// Timeout bounds one HTTP attempt. With MaxNetworkRetries, one call
	// waits at most (1+MaxNetworkRetries)×Timeout plus stripe-go's backoff
	// (0.5s to 5s between attempts), unless its ctx ends first: keep that
	// well inside the saga's payment lease.
	Timeout time.Duration
	// Currency is the ISO 4217 code, lower case, of every charge ("eur").
	Currency string
	// MaxNetworkRetries is how often stripe-go repeats a request whose
	// answer did not arrive or could not be read (network errors, timeouts
	// of one attempt, non-JSON 5xx); an error Stripe answered is not
	// repeated, but for a 429 lock_timeout. It repeats it with the same
	// idempotency key, so a retry is never a second charge.
	MaxNetworkRetries int
	// LookupScanWindow is how far back Lookup lists intents when Search has
	// not found the key: it should cover Search's indexing delay.
	LookupScanWindow time.Duration
	// LookupScanMax bounds the intents one Lookup lists; a scan that stops
	// there is inconclusive (ErrPaymentUnknown).
	LookupScanMax int
	// Logger receives stripe-go's log (discarded if nil).
	Logger *slog.Logger
}

// DefaultStripeConfig returns defaults for everything but the API key.
func DefaultStripeConfig() StripeConfig {
	return StripeConfig{
		Timeout:           20 * time.Second,
		Currency:          "eur",
		MaxNetworkRetries: 2,
		LookupScanWindow:  time.Hour,
		LookupScanMax:     500,
	}
}

// Validate lists every problem of the config at once.
func (c StripeConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("payment: stripe: "+format, args...)) }
	switch {
	case c.APIKey == "":
		add("APIKey is required")
	case strings.HasPrefix(c.APIKey, "pk_"):
		add("APIKey is a publishable key; charges need a secret (sk_) or restricted (rk_) key")
	case strings.TrimSpace(c.APIKey) != c.APIKey:
		add("APIKey has surrounding white space")
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("BaseURL %q must be an http(s) URL with a host", c.BaseURL)
		}
	}
	if c.Timeout <= 0 || c.Timeout > StripeTimeoutMax {
		add("Timeout %v out of range (0, %v]", c.Timeout, StripeTimeoutMax)
	}
	if !stripeValidCurrency(c.Currency) {
		add("Currency %q must be a lower-case ISO 4217 code such as \"eur\"", c.Currency)
	}
	if c.MaxNetworkRetries < 0 || c.MaxNetworkRetries > StripeMaxNetworkRetriesMax {
		add("MaxNetworkRetries %d out of range 0..%d", c.MaxNetworkRetries, StripeMaxNetworkRetriesMax)
	}
	if c.LookupScanWindow <= 0 || c.LookupScanWindow > StripeLookupScanWindowMax {
		add("LookupScanWindow %v out of range (0, %v]", c.LookupScanWindow, StripeLookupScanWindowMax)
	}
	if c.LookupScanMax < 1 || c.LookupScanMax > StripeLookupScanMaxMax {
		add("LookupScanMax %d out of range 1..%d", c.LookupScanMax, StripeLookupScanMaxMax)
	}
	return errors.Join(errs...)
}

func stripeValidCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// Stripe is a boxoffice.PaymentGateway on Stripe's PaymentIntents. It is safe
// for concurrent use.
type Stripe struct {
	cfg    StripeConfig
	client *stripe.Client
}

// NewStripe builds the adapter. It holds its own stripe-go backend (URL, HTTP
// client, retries, logger), so several adapters can live in one process; it
// never touches stripe-go's package-level key or backends.
func NewStripe(cfg StripeConfig) (*Stripe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	hc.Timeout = cfg.Timeout
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        hc,
		LeveledLogger:     stripeLogger{logger},
		MaxNetworkRetries: stripe.Int64(int64(cfg.MaxNetworkRetries)),
		// Explicit, so that stripe-go's package-level default is not read.
		EnableTelemetry: stripe.Bool(false),
	}
	if cfg.BaseURL != "" {
		bc.URL = stripe.String(cfg.BaseURL)
	}
	client := stripe.NewClient(cfg.APIKey, stripe.WithBackends(stripe.NewBackendsWithConfig(bc)))
	return &Stripe{cfg: cfg, client: client}, nil
}

// Charge creates and confirms a PaymentIntent for amountCents with the
// payment method, under the idempotency key.
func (s *Stripe) Charge(ctx context.Context, key string, amountCents int64, paymentMethod string) (boxoffice.Charge, error) {
	const op = "charge"
	if err := stripeValidKey(key); err != nil {
		return boxoffice.Charge{}, stripeInvalid(op, key, "%v", err)
	}
	if amountCents < 1 || amountCents > stripeAmountCentsMax {
		return boxoffice.Charge{}, stripeInvalid(op, key, "amount %d cents out of range 1..%d", amountCents, stripeAmountCentsMax)
	}
	if paymentMethod == "" {
		return boxoffice.Charge{}, stripeInvalid(op, key, "payment method is required")
	}
	params := &stripe.PaymentIntentCreateParams{
		Amount:        stripe.Int64(amountCents),
		Currency:      stripe.String(s.cfg.Currency),
		PaymentMethod: stripe.String(paymentMethod),
		Confirm:       stripe.Bool(true),
		CaptureMethod: stripe.String(string(stripe.PaymentIntentCaptureMethodAutomatic)),
		AutomaticPaymentMethods: &stripe.PaymentIntentCreateAutomaticPaymentMethodsParams{
			Enabled:        stripe.Bool(true),
			AllowRedirects: stripe.String("never"),
		},
		ErrorOnRequiresAction: stripe.Bool(true),
	}
	params.SetIdempotencyKey(key)
	params.AddMetadata(stripeMetadataKey, key)
	pi, err := s.client.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		return boxoffice.Charge{}, stripeFromError(op, key, err)
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return boxoffice.Charge{Ref: pi.ID, IdempotencyKey: key, AmountCents: pi.Amount}, nil
	case stripe.PaymentIntentStatusRequiresPaymentMethod, stripe.PaymentIntentStatusCanceled,
		stripe.PaymentIntentStatusRequiresAction, stripe.PaymentIntentStatusRequiresConfirmation:
		// Confirmed but not paid: the method was refused (a decline usually
		// comes as a card_error instead; this is the same outcome in a 200).
		return boxoffice.Charge{}, stripeErr(op, key, boxoffice.CodePaymentDeclined, nil,
			"payment intent %s is %s%s", pi.ID, pi.Status, stripeLastPaymentError(pi))
	default:
		// processing: the outcome comes later; requires_capture cannot
		// happen with automatic capture, but if it does the money is only
		// authorised. Either way the saga must look it up.
		return boxoffice.Charge{}, stripeErr(op, key, boxoffice.CodePaymentUnknown, nil,
			"payment intent %s is %s", pi.ID, pi.Status)
	}
}

// Refund refunds the PaymentIntent chargeRef in full, under the idempotency
// key, and returns the refund's id.
func (s *Stripe) Refund(ctx context.Context, key string, chargeRef string) (string, error) {
	const op = "refund"
	if err := stripeValidKey(key); err != nil {
		return "", stripeInvalid(op, key, "%v", err)
	}
	if chargeRef == "" {
		return "", stripeInvalid(op, key, "charge reference is required")
	}
	params := &stripe.RefundCreateParams{PaymentIntent: stripe.String(chargeRef)}
	params.SetIdempotencyKey(key)
	params.AddMetadata(stripeMetadataKey, key)
	r, err := s.client.V1Refunds.Create(ctx, params)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.Code == stripe.ErrorCodeChargeAlreadyRefunded {
			// Refunded before, under another key or under this one after
			// Stripe forgot it: the refund we want exists, so answer with it.
			return s.existingRefund(ctx, op, key, chargeRef, err)
		}
		return "", stripeFromError(op, key, err)
	}
	return stripeRefundRef(op, key, r)
}

// existingRefund returns the live refund of a fully refunded intent.
func (s *Stripe) existingRefund(ctx context.Context, op, key, chargeRef string, cause error) (string, error) {
	params := &stripe.RefundListParams{PaymentIntent: stripe.String(chargeRef)}
	params.Limit = stripe.Int64(stripeRefundListLimit)
	params.Single = true
	for r, err := range s.client.V1Refunds.List(ctx, params) {
		if err != nil {
			return "", stripeFromError(op, key, err)
		}
		if r.Status == stripe.RefundStatusSucceeded || r.Status == stripe.RefundStatusPending {
			return r.ID, nil
		}
	}
	return "", stripeErr(op, key, boxoffice.CodePaymentUnknown, cause,
		"%s is refunded, but none of its refunds is pending or succeeded", chargeRef)
}

func stripeRefundRef(op, key string, r *stripe.Refund) (string, error) {
	switch r.Status {
	case stripe.RefundStatusSucceeded, stripe.RefundStatusPending, stripe.RefundStatusRequiresAction:
		// Pending and requires_action are refunds under way: Stripe
		// finishes them without us, so the reference is the answer.
		return r.ID, nil
	case stripe.RefundStatusFailed, stripe.RefundStatusCanceled:
		return "", stripeErr(op, key, boxoffice.CodePaymentDeclined, nil,
			"refund %s is %s (%s)", r.ID, r.Status, r.FailureReason)
	default:
		return "", stripeErr(op, key, boxoffice.CodePaymentUnknown, nil, "refund %s is %q", r.ID, r.Status)
	}
}

// Lookup finds the PaymentIntent created with the key: by Search, then by a
// bounded scan of recent intents (see the note at the top of this file).
func (s *Stripe) Lookup(ctx context.Context, key string) (boxoffice.Charge, error) {
	const op = "lookup"
	if err := stripeValidKey(key); err != nil {
		return boxoffice.Charge{}, stripeInvalid(op, key, "%v", err)
	}
	pi, err := s.search(ctx, key)
	if err != nil {
		return boxoffice.Charge{}, stripeFromError(op, key, err)
	}
	if pi == nil {
		var complete bool
		pi, complete, err = s.scan(ctx, key)
		if err != nil {
			return boxoffice.Charge{}, stripeFromError(op, key, err)
		}
		if pi == nil && !complete {
			return boxoffice.Charge{}, stripeErr(op, key, boxoffice.CodePaymentUnknown, nil,
				"not indexed by search, and not among the newest %d intents of the last %v",
				s.cfg.LookupScanMax, s.cfg.LookupScanWindow)
		}
	}
	if pi == nil {
		return boxoffice.Charge{}, stripeErr(op, key, boxoffice.CodeNotFound, nil,
			"no payment intent carries the key")
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		c := boxoffice.Charge{Ref: pi.ID, IdempotencyKey: key, AmountCents: pi.Amount}
		// latest_charge is expanded by search and scan; a charge refunded in
		// full has refunded=true (a partial refund leaves it false).
		c.Refunded = pi.LatestCharge != nil && pi.LatestCharge.Refunded
		return c, nil
	case stripe.PaymentIntentStatusRequiresPaymentMethod, stripe.PaymentIntentStatusCanceled,
		stripe.PaymentIntentStatusRequiresAction, stripe.PaymentIntentStatusRequiresConfirmation:
		return boxoffice.Charge{}, stripeErr(op, key, boxoffice.CodeNotFound, nil,
			"payment intent %s is %s: nothing was charged", pi.ID, pi.Status)
	default:
		return boxoffice.Charge{}, stripeErr(op, key, boxoffice.CodePaymentUnknown, nil,
			"payment intent %s is %s", pi.ID, pi.Status)
	}
}

// search asks Stripe's Search API for the intents whose metadata carries the
// key, and returns the one that decides the outcome, or nil.
func (s *Stripe) search(ctx context.Context, key string) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentSearchParams{}
	// stripeValidKey keeps quotes and backslashes out of keys, so the key
	// needs no escaping inside the quoted value.
	params.Query = fmt.Sprintf("metadata['%s']:'%s'", stripeMetadataKey, key)
	params.Limit = stripe.Int64(stripeSearchLimit)
	params.Single = true
	params.AddExpand("data.latest_charge")
	var best *stripe.PaymentIntent
	for pi, err := range s.client.V1PaymentIntents.Search(ctx, params) {
		if err != nil {
			return nil, err
		}
		// Search matches metadata exactly, but the answer is checked anyway:
		// a wrong match would complete a checkout with someone else's charge.
		if pi.Metadata[stripeMetadataKey] == key && stripeRank(pi) > stripeRank(best) {
			best = pi
		}
	}
	return best, nil
}

// stripeRank orders intents of one key: a succeeded one decides the outcome, one
// still processing leaves it open, any other was not charged.
func stripeRank(pi *stripe.PaymentIntent) int {
	switch {
	case pi == nil:
		return 0
	case pi.Status == stripe.PaymentIntentStatusSucceeded:
		return 3
	case pi.Status == stripe.PaymentIntentStatusProcessing || pi.Status == stripe.PaymentIntentStatusRequiresCapture:
		return 2
	default:
		return 1
	}
}

// scan lists the intents created in the last LookupScanWindow, newest first,
// for one whose metadata carries the key. complete reports that the whole
// window was read. Within the window a key names at most one intent, because
// Stripe remembers idempotency keys for longer than the window.
func (s *Stripe) scan(ctx context.Context, key string) (pi *stripe.PaymentIntent, complete bool, err error) {
	params := &stripe.PaymentIntentListParams{
		CreatedRange: &stripe.RangeQueryParams{
			GreaterThanOrEqual: time.Now().Add(-s.cfg.LookupScanWindow).Unix(),
		},
	}
	params.Limit = stripe.Int64(stripeListPageSize)
	params.AddExpand("data.latest_charge")
	scanned := 0
	for pi, err := range s.client.V1PaymentIntents.List(ctx, params) {
		if err != nil {
			return nil, false, err
		}
		if pi.Metadata[stripeMetadataKey] == key {
			return pi, true, nil
		}
		scanned++
		if scanned >= s.cfg.LookupScanMax {
			return nil, false, nil
		}
	}
	return nil, true, nil
}

// stripeValidKey checks an idempotency key: Stripe takes at most 255 bytes
// and trims white space; quotes and backslashes would need escaping in a
// search query, and control characters have no place in a header.
func stripeValidKey(key string) error {
	if key == "" || len(key) > stripeKeyBytesMax {
		return fmt.Errorf("idempotency key must be 1..%d bytes", stripeKeyBytesMax)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f || c == '\'' || c == '"' || c == '\\' {
			return fmt.Errorf("idempotency key %q must be printable ASCII without spaces, quotes or backslashes", key)
		}
	}
	return nil
}

// stripeFromError maps a failed Stripe call to the gateway's errors. The rule:
// ErrPaymentDeclined only when Stripe answered and refused the request as a
// whole — nothing was charged, and the same request would be refused again;
// ErrPaymentUnknown whenever a charge may exist or may yet be made.
func stripeFromError(op, key string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		// No answer from Stripe, or one we could not read: a network error,
		// a timeout, ctx's deadline, a 200 with a garbled body. The request
		// may have been carried out.
		return stripeErr(op, key, boxoffice.CodePaymentUnknown, err, "%v", err)
	}
	detail := stripeDescribe(se)
	switch {
	case se.Type == stripe.ErrorTypeCard:
		return stripeErr(op, key, boxoffice.CodePaymentDeclined, err, "%s", detail)
	case se.Type == stripe.ErrorTypeIdempotency:
		// The key was used before with other parameters (or is in use right
		// now): a charge with this key may well exist.
		return stripeErr(op, key, boxoffice.CodePaymentUnknown, err, "%s", detail)
	case se.HTTPStatusCode == http.StatusConflict, se.HTTPStatusCode == http.StatusTooManyRequests,
		se.HTTPStatusCode >= 500:
		// Busy, rate limited or broken: the outcome is for a later Lookup.
		// Stripe saves a 500 under the key and replays it to a repeat with
		// the key, so charging again does not settle it; Lookup does.
		return stripeErr(op, key, boxoffice.CodePaymentUnknown, err, "%s", detail)
	case se.HTTPStatusCode >= 400:
		// 400 invalid request, 401/403 key or permission, 402, 404: refused
		// before anything was charged. A misconfigured key shows up here as
		// declined payments, with Stripe's message in the detail.
		return stripeErr(op, key, boxoffice.CodePaymentDeclined, err, "%s", detail)
	default:
		return stripeErr(op, key, boxoffice.CodePaymentUnknown, err, "%s", detail)
	}
}

func stripeDescribe(se *stripe.Error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stripe %d %s", se.HTTPStatusCode, se.Type)
	if se.Code != "" {
		fmt.Fprintf(&b, " %s", se.Code)
	}
	if se.DeclineCode != "" {
		fmt.Fprintf(&b, " (%s)", se.DeclineCode)
	}
	if se.Msg != "" {
		fmt.Fprintf(&b, ": %s", se.Msg)
	}
	if se.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", se.RequestID)
	}
	return b.String()
}

func stripeLastPaymentError(pi *stripe.PaymentIntent) string {
	if e := pi.LastPaymentError; e != nil && (e.Code != "" || e.Msg != "") {
		return fmt.Sprintf(": %s %s", e.Code, e.Msg)
	}
	return ""
}

func stripeInvalid(op, key, format string, args ...any) error {
	return stripeErr(op, key, boxoffice.CodeInvalidArgument, nil, format, args...)
}

func stripeErr(op, key string, code boxoffice.Code, cause error, format string, args ...any) error {
	return &stripeError{
		op:    op,
		key:   key,
		err:   &boxoffice.Error{Code: code, Detail: fmt.Sprintf(format, args...)},
		cause: cause,
	}
}

// stripeError is every error the adapter returns: the *boxoffice.Error the
// saga and httpapi match with errors.Is (ErrPaymentDeclined,
// ErrPaymentUnknown, ErrNotFound), over the cause (a *stripe.Error, a
// network error, ctx's error) for errors.As and logs.
type stripeError struct {
	op, key string
	err     *boxoffice.Error
	cause   error
}

func (e *stripeError) Error() string {
	return fmt.Sprintf("stripe %s %q: %v", e.op, e.key, e.err)
}

func (e *stripeError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.err, e.cause}
}

// stripeLogger hands stripe-go's log to slog.
type stripeLogger struct{ l *slog.Logger }

func (s stripeLogger) Debugf(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s stripeLogger) Infof(format string, v ...any)  { s.log(slog.LevelInfo, format, v) }
func (s stripeLogger) Warnf(format string, v ...any)  { s.log(slog.LevelWarn, format, v) }
func (s stripeLogger) Errorf(format string, v ...any) { s.log(slog.LevelError, format, v) }

func (s stripeLogger) log(level slog.Level, format string, v []any) {
	if s.l.Enabled(context.Background(), level) {
		s.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "stripe")
	}
}
