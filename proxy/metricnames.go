package proxy

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricNames returns the name of every series the proxy's /metrics
// exposes, sorted: the cutover_* series (a histogram as its _bucket, _sum
// and _count series) and those of the Go runtime and process collectors.
// The names come from a registry made exactly as a running proxy's, so
// the Prometheus rules and the Grafana dashboard under deploy/ are checked
// against what a proxy really serves.
func MetricNames() []string {
	var out []string
	for _, f := range metricFamilies() {
		name := f.GetName()
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out = append(out, name+"_bucket", name+"_sum", name+"_count")
		case dto.MetricType_SUMMARY:
			out = append(out, name, name+"_sum", name+"_count")
		default:
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// metricFamilies gathers a fresh registry made as a proxy's, with one
// child of every labelled family, so that each family shows its type,
// help and label names even before any traffic.
func metricFamilies() []*dto.MetricFamily {
	zero := func() float64 { return 0 }
	m := newMetrics(gauges{canaryPercent: zero, canaryStep: zero, mirrorInFlight: zero, mirrorQueueBytes: zero,
		spendToday: zero, fleetDisconnected: zero, fleetLeaseHeld: zero})
	for _, v := range m.vecs() {
		// A vec's label count is not exported: try counts until one fits.
		for n := 0; n <= 16; n++ {
			lv := make([]string, n)
			for i := range lv {
				lv[i] = "x"
			}
			if _, err := v.GetMetricWithLabelValues(lv...); err == nil {
				break
			}
		}
	}
	fams, _ := m.reg.Gather() // a process collector that cannot read /proc leaves its series out
	return fams
}

// vecs are the metrics' labelled families.
func (m *metrics) vecs() []*prometheus.MetricVec {
	return []*prometheus.MetricVec{m.requests.MetricVec, m.latency.MetricVec, m.skipped.MetricVec, m.agreement.MetricVec,
		m.answered.MetricVec, m.fallbacks.MetricVec, m.upstreamFailures.MetricVec, m.authFailures.MetricVec, m.forwardRefused.MetricVec}
}
