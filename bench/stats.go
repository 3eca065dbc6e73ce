package bench

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"boxoffice"
	"boxoffice/client"
)

// op is an operation whose latency is recorded.
type op int

const (
	opHold op = iota
	opPurchase
	opRelease
	opSeatMap
	opCount
)

var opNames = [opCount]string{"hold", "purchase", "release", "seatmap"}

// Latencies are recorded in microseconds from 1 µs to latencyMax, with 3
// significant digits (0.1 % resolution).
const (
	latencyMax     = int64(5 * time.Minute / time.Microsecond)
	latencyDigits  = 3
	errorCodesMax  = 64 // distinct error codes kept; the rest count as "other"
	codeTransport  = "transport"
	codeCanceled   = "canceled"
	codeOtherCodes = "other"
)

func newHist() *hdr.Histogram { return hdr.New(1, latencyMax, latencyDigits) }

// recorder collects the figures of a run from every user at once: counters
// are atomic, histograms are behind one mutex per operation (a lock costs
// far less than the HTTP call it measures), and errors are counted by code.
type recorder struct {
	mu       [opCount]sync.Mutex
	total    [opCount]*hdr.Histogram // the whole run
	interval [opCount]*hdr.Histogram // since the last per-second sample

	holdAttempts, holdsOK, conflicts          atomic.Int64
	purchaseAttempts, purchasesOK             atomic.Int64
	releaseAttempts, releasesOK               atomic.Int64
	errorsTotal, sold, hotSold, identities    atomic.Int64
	unknownWrites, resolvedWrites, buyerLimit atomic.Int64

	errMu    sync.Mutex
	errCodes map[string]int64
}

func newRecorder() *recorder {
	r := &recorder{errCodes: map[string]int64{}}
	for i := range r.total {
		r.total[i], r.interval[i] = newHist(), newHist()
	}
	return r
}

// observe records one call of o that took d. Every call is recorded,
// whatever its answer: a 409 and a 504 are latency a buyer waited too.
func (r *recorder) observe(o op, d time.Duration) {
	us := max(int64(d/time.Microsecond), 1)
	us = min(us, latencyMax)
	r.mu[o].Lock()
	_ = r.total[o].RecordValue(us)
	_ = r.interval[o].RecordValue(us)
	r.mu[o].Unlock()
}

// countError counts a failed call by its code.
func (r *recorder) countError(err error) {
	r.errorsTotal.Add(1)
	code := errorCode(err)
	r.errMu.Lock()
	if _, ok := r.errCodes[code]; !ok && len(r.errCodes) >= errorCodesMax {
		code = codeOtherCodes
	}
	r.errCodes[code]++
	r.errMu.Unlock()
}

// errorCode names an error for the errors-by-code table: the API's code, or
// transport / canceled when no answer came.
func errorCode(err error) string {
	var ce *client.Error
	var be *boxoffice.Error
	var pe *peerError
	switch {
	case errors.As(err, &ce):
		return string(ce.Code)
	case errors.As(err, &be):
		return string(be.Code)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return codeCanceled
	case errors.As(err, &pe):
		return pe.code
	}
	return codeTransport
}

// unknownOutcome reports whether a write that returned err may or may not
// have been applied: no answer, or an answer that says so (503, 504). A
// peer's refusal is a *boxoffice.Error: definite.
func unknownOutcome(err error) bool {
	if err == nil {
		return false
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Retryable
	}
	var be *boxoffice.Error
	return !errors.As(err, &be)
}

// isCode matches the API's errors (*client.Error) and the peers' (the
// root's *boxoffice.Error) by code.
func isCode(err error, code boxoffice.Code) bool {
	var be *boxoffice.Error
	return errors.As(err, &be) && be.Code == code
}

// takeInterval returns o's percentiles since the last call and starts a
// new interval.
func (r *recorder) takeInterval(o op, qs ...float64) []float64 {
	r.mu[o].Lock()
	defer r.mu[o].Unlock()
	out := make([]float64, len(qs))
	if r.interval[o].TotalCount() > 0 {
		for i, q := range qs {
			out[i] = usToMs(r.interval[o].ValueAtQuantile(q))
		}
	}
	r.interval[o].Reset()
	return out
}

func (r *recorder) errorsByCode() map[string]int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	out := make(map[string]int64, len(r.errCodes))
	for k, v := range r.errCodes {
		out[k] = v
	}
	return out
}

// Quantile is one point of a latency distribution.
type Quantile struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// Latency summarizes an HDR histogram of one operation, in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
	// Spectrum is the distribution at spectrumPercentiles, for plots.
	Spectrum []Quantile `json:"spectrum"`
}

var spectrumPercentiles = []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100}

func usToMs(us int64) float64 { return float64(us) / 1000 }

// summarize reads the percentiles of a histogram of microseconds.
func summarize(h *hdr.Histogram) Latency {
	l := Latency{Count: h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	l.MeanMs = h.Mean() / 1000
	l.P50Ms = usToMs(h.ValueAtQuantile(50))
	l.P90Ms = usToMs(h.ValueAtQuantile(90))
	l.P99Ms = usToMs(h.ValueAtQuantile(99))
	l.P999Ms = usToMs(h.ValueAtQuantile(99.9))
	l.MaxMs = usToMs(h.Max())
	for _, p := range spectrumPercentiles {
		v := h.ValueAtQuantile(p)
		if p == 100 {
			v = h.Max()
		}
		l.Spectrum = append(l.Spectrum, Quantile{Percentile: p, Ms: usToMs(v)})
	}
	return l
}

// latencies summarizes every operation's whole-run histogram.
func (r *recorder) latencies() map[string]Latency {
	out := make(map[string]Latency, opCount)
	for o := op(0); o < opCount; o++ {
		r.mu[o].Lock()
		out[opNames[o]] = summarize(r.total[o])
		r.mu[o].Unlock()
	}
	return out
}

// sortedCodes returns the codes of m, most frequent first.
func sortedCodes(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// attempt counts one call of a write.
func (r *recorder) attempt(o op) {
	switch o {
	case opHold:
		r.holdAttempts.Add(1)
	case opPurchase:
		r.purchaseAttempts.Add(1)
	case opRelease:
		r.releaseAttempts.Add(1)
	}
}

// okOps and attempts are the writes that succeeded and that were tried.
func (r *recorder) okOps() int64 {
	return r.holdsOK.Load() + r.purchasesOK.Load() + r.releasesOK.Load()
}

func (r *recorder) attempts() int64 {
	return r.holdAttempts.Load() + r.purchaseAttempts.Load() + r.releaseAttempts.Load()
}
