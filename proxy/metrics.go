package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/cutover/cutover/record"
)

// metrics are the proxy's Prometheus series (docs/metrics.md lists them).
type metrics struct {
	reg              *prometheus.Registry
	seen             prometheus.Counter
	mirrored         prometheus.Counter
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	skipped          *prometheus.CounterVec
	agreement        *prometheus.CounterVec
	paused           prometheus.Gauge
	answered         *prometheus.CounterVec
	fallbacks        *prometheus.CounterVec
	rollbacks        prometheus.Counter
	breaker          prometheus.Gauge
	upstreamFailures *prometheus.CounterVec
	authFailures     *prometheus.CounterVec
	forwardRefused   *prometheus.CounterVec
}

// gauges are the live values the metrics read when scraped.
type gauges struct {
	canaryPercent, canaryStep, mirrorInFlight, mirrorQueueBytes, spendToday func() float64
	fleetDisconnected, fleetLeaseHeld                                       func() float64
}

func newMetrics(g gauges) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.seen = prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_proxy_requests_seen_total", Help: "Requests for the primary the proxy received."})
	m.mirrored = prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_mirror_sent_total", Help: "Classification calls sent to the candidate."})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_provider_requests_total",
		Help: "Classification calls by provider, role, HTTP status and typed error code (\"\" = success)."}, []string{"provider", "role", "status", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cutover_provider_latency_seconds",
		Help: "Latency of classification calls, send to last byte.", Buckets: prometheus.ExponentialBuckets(0.005, 1.6, 18)}, []string{"provider", "role"})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_mirror_skipped_total",
		Help: "Requests not mirrored, by reason."}, []string{"reason"})
	m.agreement = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_agreement_total",
		Help: "Pairs where both providers answered: top-1 category agreed or disagreed."}, []string{"result"})
	m.paused = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_mirror_paused", Help: "1 while mirroring is paused by mirror.max_daily_spend."})
	m.answered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_canary_answered_total",
		Help: "Classification calls answered on the canary path, by who answered the client (candidate or primary)."}, []string{"by"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_canary_fallbacks_total",
		Help: "Candidate failures sent to the primary instead, by typed error code."}, []string{"code"})
	m.rollbacks = prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_canary_rollbacks_total", Help: "Automatic and operator rollbacks."})
	m.breaker = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_breaker_state", Help: "Cutover mode's breaker on the candidate: 0 closed, 1 half-open, 2 open."})
	m.upstreamFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_upstream_failures_total",
		Help: "Calls to the primary that got no answer (any path), by typed code: timeout (504 to the client), invalid_response (headers over the limit, too many 1xx), network …"}, []string{"code"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_client_auth_failures_total",
		Help: "Client requests refused before reaching any provider, by reason."}, []string{"reason"})
	m.forwardRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_forward_refused_total",
		Help: "Forward-mode requests (CONNECT or absolute URL) refused, by reason."}, []string{"reason"})
	for _, c := range []prometheus.Collector{m.seen, m.mirrored, m.requests, m.latency, m.skipped, m.agreement, m.paused, m.answered,
		m.fallbacks, m.rollbacks, m.breaker, m.upstreamFailures, m.authFailures, m.forwardRefused} {
		m.reg.MustRegister(c)
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("cutover_canary_percent", "Share of classification calls the candidate answers (canary), percent.", g.canaryPercent)
	gauge("cutover_canary_step", "Current rollout step, from 1 (0 without steps).", g.canaryStep)
	gauge("cutover_mirror_in_flight", "Candidate calls in flight.", g.mirrorInFlight)
	gauge("cutover_mirror_queue_bytes", "Request bytes held by in-flight mirrors.", g.mirrorQueueBytes)
	gauge("cutover_mirror_spend_today", "Candidate spend today (UTC), in its pricing currency (with proxy.fleet: the fleet's, as last read).", g.spendToday)
	gauge("cutover_fleet_disconnected", "1 while this replica cannot reach the fleet's NATS (proxy.fleet): it keeps the last canary state and never raises the share.", g.fleetDisconnected)
	gauge("cutover_fleet_lease_held", "1 while this replica holds the fleet's lease and judges the canary gates.", g.fleetLeaseHeld)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(o record.Observation) {
	m.requests.WithLabelValues(o.Provider, o.Role, strconv.Itoa(o.Status), o.Code).Inc()
	if o.LatencyNS > 0 {
		m.latency.WithLabelValues(o.Provider, o.Role).Observe(float64(o.LatencyNS) / 1e9)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	c.Write(&d)
	return d.GetCounter().GetValue()
}
