// Package reports turns what compare measured over run directories into
// the go/no-go report: the configured gates judged on the candidate, the
// verdict, and the renderers (terminal, Markdown, HTML with SVG charts,
// JSON, HdrHistogram percentile files), plus the live report page a proxy
// serves (LiveHandler).
//
// Build measures the runs with compare.Measure (observations streamed,
// any number of run directories merged, HDR histograms losslessly) and
// judges them. The Report it returns is the JSON format; Term, Markdown
// and HTML render it.
//
// Every rate carries its Wilson 95 % interval, the paired accuracy
// difference its Newcombe interval, p99 an order-statistic interval. A
// gate passes only when its whole interval is on the right side of the
// threshold. reports does not measure anything itself, fetch anything, or
// judge a run by anything but its recorded observations and the config.
package reports

import (
	"time"

	"github.com/cutover/cutover/compare"
)

// Verdicts, and the exit codes `cutover report` maps them to.
const (
	Go           = "GO"           // exit 0
	NoGo         = "NO-GO"        // exit 10
	Inconclusive = "INCONCLUSIVE" // exit 11
)

// Gate statuses.
const (
	Pass = "PASS"
	Fail = "FAIL"
	// Inc: too few samples, or an interval straddling the threshold.
	Inc = "INCONCLUSIVE"
)

// Report is every figure of a report; it is also the JSON format.
type Report struct {
	FormatVersion int       `json:"format_version"`
	Generated     time.Time `json:"generated"`
	Runs          []RunInfo `json:"runs"`
	// Baseline and Candidate name the compared providers.
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	// Verdict is GO only when every gate passes.
	Verdict       string       `json:"verdict"`
	VerdictReason string       `json:"verdict_reason"`
	Gates         []GateResult `json:"gates"`
	// Coverage sums the proxy runs' coverage (nil for bench-only reports).
	Coverage  *Coverage          `json:"coverage,omitempty"`
	Providers []*ProviderReport  `json:"providers"`
	Agreement []Agreement        `json:"agreement"`
	Paired    []PairedAccuracy   `json:"paired_accuracy"`
	Timeline  []TimelineEvent    `json:"timeline"`
	Settings  map[string]float64 `json:"settings"`
	// TimeZone is the zone of the hour-of-day tables.
	TimeZone string `json:"time_zone"`
	// Observations is how many observations were measured: every line
	// read, less repeats of a request_id and lines skipped as invalid.
	Observations int64    `json:"observations"`
	Notes        []string `json:"notes,omitempty"`
	// DuplicateObservations counts lines dropped because their request_id
	// was already read in the same run (a note says where).
	DuplicateObservations int64 `json:"duplicate_observations,omitempty"`
	// SkippedObservations counts observations without request_id,
	// provider or role that --lenient skipped (a note names them).
	SkippedObservations int64 `json:"skipped_observations,omitempty"`
	// MissingFiles lists files run.json names that were not there
	// (--lenient; a note says so).
	MissingFiles []string `json:"missing_files,omitempty"`
	// TrafficAccuracy is each provider's accuracy on the recorded traffic,
	// estimated from a labelled sample of it (cutover report --labels).
	TrafficAccuracy *TrafficAccuracy `json:"traffic_accuracy,omitempty"`
}

// The measured figures are compare's types; their names here are the
// JSON format's.
type (
	// RunInfo identifies one merged run directory.
	RunInfo = compare.RunInfo
	// Rate is a share k/n with its Wilson 95 % interval.
	Rate = compare.Rate
	// Mean is an average with its normal-approximation 95 % interval.
	Mean = compare.Mean
	// Coverage is what the proxies saw and mirrored.
	Coverage = compare.Coverage
	// ProviderReport is everything measured about one provider.
	ProviderReport = compare.ProviderStats
	// CodeCount is one typed error code's share of calls.
	CodeCount = compare.CodeCount
	// Latency is a latency distribution in milliseconds.
	Latency = compare.Latency
	// SpectrumPoint is one point of a percentile spectrum.
	SpectrumPoint = compare.SpectrumPoint
	// HourStats is latency within one hour of the day.
	HourStats = compare.HourStats
	// Accuracy is one provider scored against the fixture labels.
	Accuracy = compare.Accuracy
	// GroupRate is a rate within a category group.
	GroupRate = compare.GroupRate
	// KindRate is a rate for an attribute kind.
	KindRate = compare.KindRate
	// ClassMetrics is one category's precision, recall and F1.
	ClassMetrics = compare.ClassMetrics
	// PRF is an averaged precision, recall and F1.
	PRF = compare.PRF
	// Cost is one provider's price and projection.
	Cost = compare.Cost
	// Tier is one pricing band.
	Tier = compare.Tier
	// Agreement compares two providers on the same requests.
	Agreement = compare.Agreement
	// MatchedAgreement is agreement at one matched confidence level.
	MatchedAgreement = compare.MatchedAgreement
	// PairedAccuracy compares two providers' top-1 accuracy on the same images.
	PairedAccuracy = compare.PairedAccuracy
	// TrafficAccuracy is accuracy on the recorded traffic, estimated from
	// a labelled stratified sample.
	TrafficAccuracy = compare.TrafficAccuracy
	// TimelineEvent is one run event (mirror paused, rollback, shutdown …).
	TimelineEvent = compare.TimelineEvent
)

// GateResult is one gate's judgement.
type GateResult struct {
	Name string `json:"name"`
	// Description says what is compared in words, e.g. "candidate p99 ≤ 400 ms".
	Description string  `json:"description"`
	Value       float64 `json:"value"`
	Lo          float64 `json:"lo"`
	Hi          float64 `json:"hi"`
	Threshold   float64 `json:"threshold"`
	// Unit of Value, Lo, Hi and Threshold: ms, share, USD.
	Unit   string `json:"unit"`
	N      int    `json:"n"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Provider returns the named provider's report, or nil.
func (r *Report) Provider(name string) *ProviderReport {
	for _, p := range r.Providers {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ExitCode maps the verdict to `cutover report`'s exit code.
func (r *Report) ExitCode() int {
	switch r.Verdict {
	case Go:
		return 0
	case NoGo:
		return 10
	}
	return 11
}
