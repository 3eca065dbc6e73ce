package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"boxoffice/raftnode"
)

// headerProblem carries a problem's code beside its body, so that the node
// that relayed a forwarded answer counts it without parsing the body.
const headerProblem = "X-Boxoffice-Problem"

// activeHoldsCountMax bounds the count of active holds per shard that one
// scrape makes.
const activeHoldsCountMax = 1_000_000

// Metrics are one node's Prometheus metrics, in a registry of the node's
// own (several in-process nodes never share one). They implement
// raftnode.Observer, and PaymentOutcome is the payment saga's Observe.
//
// Requests are counted by the node a client called (a forwarded request
// again only as forwarded_in on the leader), so that summing over nodes
// counts each client request once; so are problems. Commit latency and
// batch sizes are measured by the leader that proposed, apply time by every
// replica.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	problems     *prometheus.CounterVec
	forwards     *prometheus.CounterVec
	forwardedIn  prometheus.Counter
	commit       prometheus.Histogram
	entryCmds    prometheus.Histogram
	apply        prometheus.Histogram
	applyEntries prometheus.Histogram
	expired      prometheus.Counter
	payments     *prometheus.CounterVec
	seatsSold    prometheus.Counter
	// passRejections counts holds of protected events refused for their
	// admission pass, by reason.
	passRejections *prometheus.CounterVec
}

// NewMetrics returns a registry with the Go runtime's and the process's
// collectors and boxoffice's own metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	latencyBuckets := []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "boxoffice_http_requests_total", Help: "Client requests answered, by route and HTTP status.",
	}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "boxoffice_http_request_seconds", Help: "Time to answer a client request, by route.", Buckets: latencyBuckets,
	}, []string{"route"})
	m.problems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "boxoffice_problems_total", Help: "Problem answers by code (seat_unavailable counts conflicts).",
	}, []string{"code"})
	m.forwards = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "boxoffice_forwards_total", Help: "Writes forwarded to a shard leader, by outcome (relayed; not_leader: tried again; unreachable).",
	}, []string{"outcome"})
	m.forwardedIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "boxoffice_forwarded_in_total", Help: "Writes another node forwarded to this one.",
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "boxoffice_raft_commit_seconds", Help: "Time from handing an entry to Raft to its commit and apply, on the proposing leader.", Buckets: latencyBuckets,
	})
	m.entryCmds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "boxoffice_raft_entry_commands", Help: "Commands batched into one log entry.", Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.apply = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "boxoffice_fsm_apply_seconds", Help: "Time to apply one batch of committed entries to the state machine.", Buckets: latencyBuckets,
	})
	m.applyEntries = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "boxoffice_fsm_apply_entries", Help: "Entries applied per batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 8),
	})
	m.expired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "boxoffice_holds_expired_total", Help: "Holds ended by expiry sweeps this node proposed.",
	})
	m.payments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "boxoffice_payment_outcomes_total", Help: "Checkout outcomes this node resolved: paid, declined, unknown, lease_ended, too_late, refunded.",
	}, []string{"outcome"})
	m.seatsSold = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "boxoffice_seats_sold_total", Help: "Seats sold by checkouts this node completed.",
	})
	m.passRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "boxoffice_queue_pass_rejections_total", Help: "Holds of protected on-sales refused for their admission pass, by reason (missing, forged, expired, other_event_or_buyer).",
	}, []string{"reason"})
	m.reg.MustRegister(m.passRejections)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.problems, m.forwards, m.forwardedIn,
		m.commit, m.entryCmds, m.apply, m.applyEntries, m.expired, m.payments, m.seatsSold,
	)
	return m
}

// Registry is the registry the node's metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// EntryCommitted implements raftnode.Observer.
func (m *Metrics) EntryCommitted(_, commands int, latency time.Duration) {
	m.commit.Observe(latency.Seconds())
	m.entryCmds.Observe(float64(commands))
}

// BatchApplied implements raftnode.Observer.
func (m *Metrics) BatchApplied(_, entries int, d time.Duration) {
	m.apply.Observe(d.Seconds())
	m.applyEntries.Observe(float64(entries))
}

// HoldsExpired implements raftnode.Observer.
func (m *Metrics) HoldsExpired(_, n int) { m.expired.Add(float64(n)) }

// PaymentOutcome counts a checkout outcome (payment.Config.Observe).
func (m *Metrics) PaymentOutcome(outcome string, seats int) {
	m.payments.WithLabelValues(outcome).Inc()
	if outcome == "paid" {
		m.seatsSold.Add(float64(seats))
	}
}

var _ raftnode.Observer = (*Metrics)(nil)

// observe counts one request that a client sent to this node.
func (m *Metrics) observe(ctx *fasthttp.RequestCtx, route string, start time.Time) {
	if forwarded(ctx) {
		m.forwardedIn.Inc()
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(ctx.Response.StatusCode())).Inc()
	m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	if code := ctx.Response.Header.Peek(headerProblem); len(code) > 0 {
		m.problems.WithLabelValues(string(code)).Inc()
	}
}

// nodeCollector reads the node's shards at scrape time: Raft state, term,
// indexes, and the active holds of each shard.
type nodeCollector struct {
	node                                       Node
	leader, term, applied, commit, activeHolds *prometheus.Desc
	// The waiting rooms of the shards this node leads (each queue once
	// over the cluster's nodes): places waiting, buyers admitted (a
	// counter: its rate is the admission rate), admitted not yet holding.
	queueWaiting, queueAdmitted, queueOutstanding *prometheus.Desc
}

func newNodeCollector(node Node) *nodeCollector {
	shard := []string{"shard"}
	return &nodeCollector{
		node:        node,
		leader:      prometheus.NewDesc("boxoffice_raft_leader", "1 if this node leads the shard.", shard, nil),
		term:        prometheus.NewDesc("boxoffice_raft_term", "The shard's Raft term as this node sees it.", shard, nil),
		applied:     prometheus.NewDesc("boxoffice_raft_applied_index", "The shard's applied index on this node.", shard, nil),
		commit:      prometheus.NewDesc("boxoffice_raft_commit_index", "The shard's commit index on this node.", shard, nil),
		activeHolds: prometheus.NewDesc("boxoffice_holds_active", "Holds not yet ended or expired, in this node's replica of the shard.", shard, nil),

		queueWaiting:     prometheus.NewDesc("boxoffice_queue_waiting", "Places not admitted yet in the event's queue (queue length), on the shard's leader.", []string{"event"}, nil),
		queueAdmitted:    prometheus.NewDesc("boxoffice_queue_admitted_total", "Buyers admitted from the event's queue; its rate is the admission rate.", []string{"event"}, nil),
		queueOutstanding: prometheus.NewDesc("boxoffice_queue_admitted_not_holding", "Admitted buyers whose pass is valid and who hold nothing yet.", []string{"event"}, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.leader
	ch <- c.term
	ch <- c.applied
	ch <- c.commit
	ch <- c.activeHolds
	ch <- c.queueWaiting
	ch <- c.queueAdmitted
	ch <- c.queueOutstanding
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.node.Status() {
		shard := strconv.Itoa(st.ID)
		leader := 0.0
		if st.State == "Leader" {
			leader = 1
		}
		ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, leader, shard)
		ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term), shard)
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(st.AppliedIndex), shard)
		ch <- prometheus.MustNewConstMetric(c.commit, prometheus.GaugeValue, float64(st.CommitIndex), shard)
		if n, err := c.node.Store(st.ID).ActiveHolds(activeHoldsCountMax); err == nil {
			ch <- prometheus.MustNewConstMetric(c.activeHolds, prometheus.GaugeValue, float64(n), shard)
		}
		if st.State != "Leader" {
			continue
		}
		if qs, err := c.node.Store(st.ID).Queues(); err == nil {
			for _, q := range qs {
				ch <- prometheus.MustNewConstMetric(c.queueWaiting, prometheus.GaugeValue, float64(q.Waiting()), q.Event)
				ch <- prometheus.MustNewConstMetric(c.queueAdmitted, prometheus.CounterValue, float64(q.Admitted), q.Event)
				ch <- prometheus.MustNewConstMetric(c.queueOutstanding, prometheus.GaugeValue, float64(q.Outstanding), q.Event)
			}
		}
	}
}

// metricsHandler serves the registry in Prometheus' text format.
func metricsHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// routeLabel names a matched route by its pattern (ids replaced), so that
// the label's values stay few.
func routeLabel(method string, p []string) string {
	out := method + " /v1"
	for i, part := range p {
		switch {
		case i == 1 && (p[0] == "events" || p[0] == "holds" || p[0] == "orders" || p[0] == "venues"):
			part = "{id}"
		case i == 2 && p[0] == "cluster" && p[1] == "members":
			part = "{id}"
		case i == 3 && p[0] == "events" && p[2] == "access":
			part = "{user}"
		}
		out += "/" + part
	}
	return out
}
