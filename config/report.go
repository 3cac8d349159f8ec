package config

import "math"

// DefaultMonthlyVolume is 50,000 images a day for 30 days: the volume the
// migration story is priced at (report.daily_volume's default × 30).
const DefaultMonthlyVolume = 50_000 * 30

// Report configures `cutover report` and the proxy's /report page.
type Report struct {
	// Baseline is the provider the others are compared with. Default: the
	// run's primary (proxy runs) or its first provider (bench runs).
	Baseline string `yaml:"baseline"`
	// Candidate is the provider the gates judge. Default: the run's
	// candidate (proxy runs) or its second provider (bench runs).
	Candidate string `yaml:"candidate"`
	// TimeZone is the IANA zone of the hour-of-day tables (peak hours).
	// Default UTC.
	TimeZone Zone `yaml:"time_zone"`
	// DailyVolume is the images a day the monthly cost is projected at
	// (30 days a month). Default 50,000.
	DailyVolume int64 `yaml:"daily_volume"`
	// ColorDeltaE is the CIEDE2000 distance under which two colours count
	// as the same, for agreement and for colour accuracy. Default 10.
	ColorDeltaE float64 `yaml:"color_delta_e"`
	// TopK is how many categories the top-k overlap (Jaccard) compares.
	// Default 3.
	TopK int `yaml:"top_k"`
}

// MonthlyVolume is DailyVolume over 30 days.
func (r Report) MonthlyVolume() int64 { return r.DailyVolume * 30 }

// Gates are the go/no-go criteria a report judges the candidate by. Every
// gate is optional; an unset gate is not evaluated. A gate passes only
// when its whole 95 % interval is on the right side of its threshold,
// fails when the whole interval is on the wrong side, and is
// inconclusive otherwise or with fewer than min_samples.
type Gates struct {
	// MinSamples is the fewest observations a gate is judged on. Default 100.
	MinSamples int `yaml:"min_samples"`
	// P99Latency is the candidate's highest acceptable p99 latency.
	P99Latency Duration `yaml:"p99_latency"`
	// ErrorRate is the candidate's highest acceptable share of failed
	// calls (any typed error code, throttling included), 0–1 or a percentage.
	ErrorRate *Rate `yaml:"error_rate"`
	// Misclassification maps a category group (fashion, …) to the
	// candidate's highest acceptable top-1 misclassification rate there.
	Misclassification map[string]Rate `yaml:"misclassification"`
	// AccuracyMargin is the non-inferiority margin: the lower bound of the
	// 95 % interval of (candidate − baseline) top-1 accuracy, paired on the
	// same images, must be ≥ −margin. 1% means "at most one point worse".
	AccuracyMargin *Rate `yaml:"accuracy_margin"`
	// TrafficAccuracyMargin is the same margin on the recorded traffic:
	// the lower bound of the 95 % interval of (candidate − primary) top-1
	// accuracy estimated from a labelled sample of the traffic (cutover
	// label; cutover report --labels) must be ≥ −margin. Without --labels
	// the gate is INCONCLUSIVE.
	TrafficAccuracyMargin *Rate `yaml:"traffic_accuracy_margin"`
	// MonthlyCostUSD is the candidate's highest acceptable projected
	// monthly cost in USD at report.daily_volume.
	MonthlyCostUSD *float64 `yaml:"monthly_cost_usd"`
	// MirroredCoverage is the lowest acceptable share of classification
	// calls the proxy mirrored to the candidate (proxy runs only).
	MirroredCoverage *Rate `yaml:"mirrored_coverage"`
}

// Any reports whether at least one gate is configured.
func (g Gates) Any() bool {
	return g.P99Latency > 0 || g.ErrorRate != nil || len(g.Misclassification) > 0 || g.AccuracyMargin != nil ||
		g.TrafficAccuracyMargin != nil || g.MonthlyCostUSD != nil || g.MirroredCoverage != nil
}

func (c *Config) setReportDefaults() {
	r := &c.Report
	if r.DailyVolume == 0 {
		r.DailyVolume = DefaultMonthlyVolume / 30
	}
	if r.ColorDeltaE == 0 {
		r.ColorDeltaE = 10
	}
	if r.TopK == 0 {
		r.TopK = 3
	}
	if c.Gates.MinSamples == 0 {
		c.Gates.MinSamples = 100
	}
}

func (v *validator) report() {
	r, g := &v.c.Report, &v.c.Gates
	for _, p := range []struct{ key, name string }{{"baseline", r.Baseline}, {"candidate", r.Candidate}} {
		if p.name != "" && v.c.Providers[p.name] == nil {
			v.errf("report."+p.key, "report.%s: no provider %q under providers:", p.key, p.name)
		}
	}
	if r.DailyVolume < 0 {
		v.errf("report.daily_volume", "daily_volume must be > 0 images a day")
	}
	if r.ColorDeltaE < 0 || r.ColorDeltaE > 100 || math.IsNaN(r.ColorDeltaE) {
		v.errf("report.color_delta_e", "color_delta_e %v: expected a CIEDE2000 distance 0–100 (2.3 is a just-noticeable difference)", r.ColorDeltaE)
	}
	if r.TopK < 0 || r.TopK > 20 {
		v.errf("report.top_k", "top_k %d: expected 1–20", r.TopK)
	}
	if g.MinSamples < 1 {
		v.errf("gates.min_samples", "min_samples %d: expected at least 1", g.MinSamples)
	}
	if g.P99Latency < 0 {
		v.errf("gates.p99_latency", "p99_latency must be positive")
	}
	for _, group := range sortedKeys(g.Misclassification) {
		if group == "" {
			v.errf("gates.misclassification", "misclassification: empty group name")
		}
	}
	if g.MonthlyCostUSD != nil && (*g.MonthlyCostUSD < 0 || math.IsNaN(*g.MonthlyCostUSD)) {
		v.errf("gates.monthly_cost_usd", "monthly_cost_usd must be ≥ 0 USD")
	}
}
