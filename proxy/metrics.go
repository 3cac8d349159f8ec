package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/reports"
)

type metrics struct {
	reg       *prometheus.Registry
	seen      prometheus.Counter
	mirrored  prometheus.Counter
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	skipped   *prometheus.CounterVec
	agreement *prometheus.CounterVec
	paused    prometheus.Gauge
	answered  *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	rollbacks prometheus.Counter
	breaker   prometheus.Gauge
}

func newMetrics(p *Proxy) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
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
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_canary_percent", Help: "Share of classification calls the candidate answers (canary), percent."},
		func() float64 {
			if p.ctl == nil {
				return 0
			}
			return p.ctl.Percent()
		}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_canary_step", Help: "Current rollout step, from 1 (0 without steps)."},
		func() float64 {
			if p.ctl == nil {
				return 0
			}
			p.ctl.mu.Lock()
			defer p.ctl.mu.Unlock()
			return float64(p.ctl.st.Step + 1)
		}))
	for _, c := range []prometheus.Collector{m.seen, m.mirrored, m.requests, m.latency, m.skipped, m.agreement, m.paused, m.answered, m.fallbacks, m.rollbacks, m.breaker} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_mirror_in_flight", Help: "Candidate calls in flight."},
		func() float64 { return float64(p.inFlight.Load()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_mirror_queue_bytes", Help: "Request bytes held by in-flight mirrors."},
		func() float64 { return float64(p.queueBytes.Load()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cutover_mirror_spend_today", Help: "Candidate spend settled today (UTC), in its pricing currency."},
		func() float64 { s, _ := p.budget.state(); return s }))
	f(prometheus.NewGoCollector())
	f(prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(o record.Observation) {
	m.requests.WithLabelValues(o.Provider, o.Role, itoa(o.Status), o.Code).Inc()
	m.latency.WithLabelValues(o.Provider, o.Role).Observe(float64(o.LatencyNS) / 1e9)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	b := [8]byte{}
	n := len(b)
	for i > 0 && n > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	c.Write(&d)
	return d.GetCounter().GetValue()
}

// Status is GET /admin/status.
type Status struct {
	Mode      string                    `json:"mode"`
	Started   time.Time                 `json:"started"`
	Primary   string                    `json:"primary"`
	Candidate string                    `json:"candidate"`
	Providers map[string]ProviderStatus `json:"providers"`
	Agreement Agreement                 `json:"agreement"`
	Coverage  record.Coverage           `json:"coverage"`
	Mirror    MirrorStatus              `json:"mirror"`
}

// ProviderStatus is live latency from the HDR histograms.
type ProviderStatus struct {
	Count int64   `json:"count"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// Agreement is live top-1 agreement over pairs where both answered.
type Agreement struct {
	Pairs int64    `json:"pairs"`
	Agree int64    `json:"agree"`
	Rate  *float64 `json:"rate"`
}

// MirrorStatus is the mirror's live state.
type MirrorStatus struct {
	InFlight   int64   `json:"in_flight"`
	QueueBytes int64   `json:"queue_bytes"`
	SpendToday float64 `json:"spend_today"`
	Paused     bool    `json:"paused"`
}

// Status reports the live figures.
func (p *Proxy) Status() Status {
	s := Status{Mode: p.cfg.Proxy.Mode, Started: p.started, Primary: p.primaryName, Candidate: p.candidateName,
		Providers: map[string]ProviderStatus{}, Coverage: p.rec.Coverage()}
	for name, h := range p.rec.Snapshot() {
		s.Providers[name] = ProviderStatus{Count: h.TotalCount(), P50MS: float64(h.ValueAtQuantile(50)) / 1e6,
			P99MS: float64(h.ValueAtQuantile(99)) / 1e6, MaxMS: float64(h.Max()) / 1e6}
	}
	agree := int64(counterValue(p.met.agreement.WithLabelValues("agree")))
	dis := int64(counterValue(p.met.agreement.WithLabelValues("disagree")))
	s.Agreement = Agreement{Pairs: agree + dis, Agree: agree}
	if agree+dis > 0 {
		r := float64(agree) / float64(agree+dis)
		s.Agreement.Rate = &r
	}
	spent, paused := p.budget.state()
	s.Mirror = MirrorStatus{InFlight: p.inFlight.Load(), QueueBytes: p.queueBytes.Load(), SpendToday: spent, Paused: paused}
	return s
}

// serveReport is GET /report: the go/no-go report over the live run,
// computed afresh on every load (the recorder is flushed first), as HTML
// or, with ?format=json, as JSON. One report is built at a time: reloads
// queue rather than pile up work on the machine that carries production
// traffic.
func (p *Proxy) serveReport(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "html" && format != "json" {
		http.Error(w, "format: expected html or json", http.StatusBadRequest)
		return
	}
	select {
	case p.reportSem <- struct{}{}:
		defer func() { <-p.reportSem }()
	case <-r.Context().Done():
		return
	}
	p.rec.Flush()
	d, err := record.Open(p.rec.Dir())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rep, err := reports.Build([]*record.Dir{d}, reports.Options{Config: p.cfg, Taxonomy: p.tx, Fixtures: p.fx})
	if err != nil {
		http.Error(w, "building the report: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
		err = reports.JSON(&buf, rep)
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err = reports.HTML(&buf, rep)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Cutover-Verdict", rep.Verdict)
	w.Write(buf.Bytes())
}

// AdminHandler serves /metrics, /healthz, /readyz, /report and /admin/status.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if p.shuttingDown.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace) // scheduling delays: go tool trace
	mux.HandleFunc("GET /report", p.serveReport)
	p.canaryAdmin(mux)
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(p.Status())
	})
	return mux
}
