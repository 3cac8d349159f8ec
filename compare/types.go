package compare

import (
	"fmt"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/compare/stats"
)

// The types below are the measured figures; reports embeds them in its
// JSON format under the same names, so their JSON tags are a public
// contract: fields are only ever added.

// Rate is a share k/n with its Wilson 95 % interval.
type Rate struct {
	K     int     `json:"k"`
	N     int     `json:"n"`
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// NewRate is k/n with its Wilson 95 % interval (value 0 and [0, 1] when n
// is 0).
func NewRate(k, n int) Rate {
	lo, hi := stats.Wilson(k, n, stats.Z95)
	v := 0.0
	if n > 0 {
		v = float64(k) / float64(n)
	}
	return Rate{K: k, N: n, Value: v, Lo: lo, Hi: hi}
}

// Mean is an average with its normal-approximation 95 % interval.
type Mean struct {
	N     int     `json:"n"`
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// RunInfo identifies one merged run directory.
type RunInfo struct {
	Path         string     `json:"path"`
	Kind         string     `json:"kind"`
	Mode         string     `json:"mode"`
	ConfigDigest string     `json:"config_digest"`
	Started      time.Time  `json:"started"`
	Ended        *time.Time `json:"ended,omitempty"`
	Dropped      int64      `json:"dropped_observations"`
}

// Coverage is what the proxies saw and mirrored.
type Coverage struct {
	Seen     int64            `json:"seen"`
	Classify int64            `json:"classify"`
	Mirrored int64            `json:"mirrored"`
	Rate     Rate             `json:"mirrored_share"`
	Skipped  map[string]int64 `json:"skipped"`
}

// ProviderStats is everything measured about one provider.
type ProviderStats struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Format string `json:"format,omitempty"`
	Model  string `json:"model,omitempty"`
	// Calls counts observations; OK those answered without an error.
	Calls int `json:"calls"`
	OK    int `json:"ok"`
	// Cancelled counts calls cutover itself cancelled (a hedge's loser):
	// not in Calls, not errors, latency unknown.
	Cancelled int         `json:"cancelled,omitempty"`
	ErrorRate Rate        `json:"error_rate"`
	Errors    []CodeCount `json:"errors"`
	Latency   Latency     `json:"latency"`
	ByHour    []HourStats `json:"latency_by_hour"`
	Accuracy  *Accuracy   `json:"accuracy,omitempty"`
	// SelfAgreement is the noise floor: how often repeats of the same
	// image get the same top category (bench runs with --repeat).
	SelfAgreement *Rate `json:"self_agreement,omitempty"`
	Cost          *Cost `json:"cost,omitempty"`

	hist *hdrhistogram.Histogram
}

// Histogram is the latency histogram the Latency figures come from (nil
// when none was measured).
func (p *ProviderStats) Histogram() *hdrhistogram.Histogram { return p.hist }

// CodeCount is one typed error code's share of calls.
type CodeCount struct {
	Code string `json:"code"`
	Rate Rate   `json:"rate"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	// P99Lo and P99Hi bound p99 (order-statistic 95 % interval). When
	// P99Bounded is false there are too few samples for an upper bound and
	// P99Hi is the maximum.
	P99Lo      float64 `json:"p99_lo_ms"`
	P99Hi      float64 `json:"p99_hi_ms"`
	P99Bounded bool    `json:"p99_bounded"`
	// Spectrum is the percentile spectrum (the HdrHistogram plot).
	Spectrum []SpectrumPoint `json:"spectrum,omitempty"`
	// Source is hlog (merged interval logs) or observations.
	Source string `json:"source"`
}

// SpectrumPoint is one point of a percentile spectrum.
type SpectrumPoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// HourStats is latency within one hour of the day.
type HourStats struct {
	Hour  int     `json:"hour"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

// CountFirstAnswer is the counting rule of accuracy and paired accuracy:
// each labelled image counts once per provider, by that provider's first
// answer to it (the earliest observation time; on a tie, the one read
// first). Repeats of an image, within a run or across merged runs, are
// not independent evidence of accuracy: they feed self-agreement.
const CountFirstAnswer = "first_answer"

// Accuracy is one provider scored against the fixture labels.
type Accuracy struct {
	// Counting is the counting rule: first_answer (CountFirstAnswer).
	Counting string `json:"counting"`
	// Images is the number of distinct labelled images the provider
	// answered; Calls the answered calls of labelled images, repeats
	// included. Every figure below counts images, not calls.
	Images int `json:"images"`
	Calls  int `json:"calls"`
	// Top1 is the share of answered, labelled images whose top category is
	// the label (errors are not answers: see error_rate), over the images
	// whose category the provider's format can express (Images less
	// NotExpressible.Images).
	Top1 Rate `json:"top1"`
	// Misclassification is 1 − top-1 accuracy per category group.
	Misclassification []GroupRate `json:"misclassification"`
	// Attributes is accuracy per attribute kind (colour within
	// report.color_delta_e CIEDE2000).
	Attributes  []KindRate     `json:"attributes"`
	PerCategory []ClassMetrics `json:"per_category"`
	// Micro, Macro and Weighted averages follow scikit-learn's
	// precision_recall_fscore_support (zero_division = 0, labels = every
	// label seen as truth or prediction).
	Micro    PRF `json:"micro"`
	Macro    PRF `json:"macro"`
	Weighted PRF `json:"weighted"`
	// Confusion counts truth → prediction ("(none)" when nothing was predicted).
	Confusion map[string]map[string]int `json:"confusion"`
	// NotExpressible lists the labels the provider's wire format cannot
	// name (nil when there are none): left out of every figure above and
	// counted here, because no provider speaking that format could answer
	// them right.
	NotExpressible *NotExpressible `json:"not_expressible,omitempty"`
}

// notExpressibleNote says, for a report's notes, what provider name's
// format could not express ("" when nothing; a nil Accuracy has nothing).
func (a *Accuracy) notExpressibleNote(name string) string {
	if a == nil || a.NotExpressible == nil {
		return ""
	}
	ne := a.NotExpressible
	var parts []string
	for i, c := range ne.Categories {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ne.Categories)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", c.Category, c.Images))
	}
	var attrs []string
	for i, c := range ne.Attributes {
		if i == 5 {
			attrs = append(attrs, fmt.Sprintf("and %d more", len(ne.Attributes)-5))
			break
		}
		attrs = append(attrs, fmt.Sprintf("%s %s (%d)", c.Kind, c.Value, c.Images))
	}
	var out []string
	if ne.Images > 0 {
		out = append(out, fmt.Sprintf("%d labelled images have a category not expressible by %s: %s; they are left out of %s's accuracy, not counted as its errors", ne.Images, ne.Format, strings.Join(parts, ", "), name))
	}
	if len(attrs) > 0 {
		out = append(out, fmt.Sprintf("attribute values not expressible by %s: %s; left out of %s's attribute accuracy", ne.Format, strings.Join(attrs, ", "), name))
	}
	return name + ": " + strings.Join(out, "; ")
}

// NotExpressible counts labelled images whose true category, or attribute
// value, a wire format cannot name (vision.Taxonomy.Expressible and
// AttributeExpressible): "not expressible by <format>", not the provider's
// error.
type NotExpressible struct {
	Format string `json:"format"`
	// Images counts the distinct images whose category is not expressible;
	// Categories breaks them down, most images first.
	Images     int             `json:"images"`
	Categories []CategoryCount `json:"categories"`
	// Attributes counts the images whose label has an attribute value the
	// format cannot say (left out of that kind's accuracy only).
	Attributes []AttributeCount `json:"attributes,omitempty"`
}

// CategoryCount is a number of distinct images of one category.
type CategoryCount struct {
	Category string `json:"category"`
	Images   int    `json:"images"`
}

// AttributeCount is a number of distinct images with one attribute value.
type AttributeCount struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	Images int    `json:"images"`
}

// Group returns the misclassification rate of group g (ok false when no
// labelled image of g was answered).
func (a *Accuracy) Group(g string) (Rate, bool) {
	for _, m := range a.Misclassification {
		if m.Group == g {
			return m.Rate, true
		}
	}
	return Rate{}, false
}

// Attribute returns the accuracy on attribute kind k (ok false when no
// labelled value of k was scored).
func (a *Accuracy) Attribute(k string) (Rate, bool) {
	for _, m := range a.Attributes {
		if m.Kind == k {
			return m.Rate, true
		}
	}
	return Rate{}, false
}

// GroupRate is a rate within a category group.
type GroupRate struct {
	Group string `json:"group"`
	Rate  Rate   `json:"rate"`
}

// KindRate is a rate for an attribute kind.
type KindRate struct {
	Kind string `json:"kind"`
	Rate Rate   `json:"rate"`
}

// ClassMetrics is one category's precision, recall and F1.
type ClassMetrics struct {
	Category  string  `json:"category"`
	Support   int     `json:"support"`
	Predicted int     `json:"predicted"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// PRF is an averaged precision, recall and F1.
type PRF struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// Cost is one provider's price and projection, in USD (fx from config).
type Cost struct {
	// Basis is tiers (per-call price from pricing.tiers) or tokens (the
	// mean observed token cost of a call).
	Basis    string `json:"basis"`
	Currency string `json:"currency"`
	// Per1000 is the price of 1,000 calls at the projected volume in the
	// provider's currency; Per1000USD the same in USD.
	Per1000    float64 `json:"per_1000"`
	Per1000USD float64 `json:"per_1000_usd"`
	Tiers      []Tier  `json:"tiers,omitempty"`
	// MonthlyVolume is the calls a month projected (report.daily_volume·30).
	MonthlyVolume int64 `json:"monthly_volume"`
	// MonthlyUSD is the projected monthly cost; Lo/Hi its 95 % interval
	// (equal to it for tiered prices, which are exact).
	MonthlyUSD   float64 `json:"monthly_usd"`
	MonthlyLoUSD float64 `json:"monthly_lo_usd"`
	MonthlyHiUSD float64 `json:"monthly_hi_usd"`
	// PerCorrectTagUSD is the price of one correctly tagged image: cost
	// per call divided by the share of calls answered with the right top
	// category (failed calls included in the denominator).
	PerCorrectTagUSD float64 `json:"per_correct_tag_usd,omitempty"`
	// SpentUSD is what the recorded calls cost (for a proxy's candidate:
	// the mirror's own spend).
	SpentUSD float64 `json:"spent_usd"`
}

// Tier is one pricing band.
type Tier struct {
	UpTo    int64   `json:"up_to,omitempty"`
	Per1000 float64 `json:"per_1000"`
}

// Agreement compares two providers on the same requests.
type Agreement struct {
	A     string `json:"a"`
	B     string `json:"b"`
	Pairs int    `json:"pairs"`
	// Top1 is the share of pairs (both answered) with the same top category.
	Top1 Rate `json:"top1"`
	// TopKJaccard is the mean Jaccard overlap of the top-k category sets.
	TopK        int  `json:"top_k"`
	TopKJaccard Mean `json:"topk_jaccard"`
	// Attributes is agreement per attribute kind, over pairs where both
	// gave one (colour within report.color_delta_e).
	Attributes []KindRate `json:"attributes"`
	// Matched is top-1 agreement when each provider keeps only its most
	// confident answers, at thresholds chosen so that each keeps the same
	// share (confidence scales differ between providers).
	Matched []MatchedAgreement `json:"matched_confidence"`
}

// MatchedAgreement is agreement at one matched confidence level.
type MatchedAgreement struct {
	// Keep is the share of each provider's answers above its threshold.
	Keep       float64 `json:"keep"`
	ThresholdA float64 `json:"threshold_a"`
	ThresholdB float64 `json:"threshold_b"`
	Top1       Rate    `json:"top1"`
}

// PairedAccuracy compares two providers' top-1 accuracy on the same images.
type PairedAccuracy struct {
	A string `json:"a"`
	B string `json:"b"`
	// N is the number of distinct labelled images both answered, each
	// judged by each provider's first answer (Counting: first_answer), less
	// those whose category either format cannot express (NotExpressible).
	N int `json:"n"`
	// Counting is the counting rule: first_answer (CountFirstAnswer).
	Counting string `json:"counting"`
	// Calls is the number of request pairs of labelled images both
	// answered, repeats included.
	Calls int `json:"calls"`
	// NotExpressible counts the images both answered that are left out
	// because one format cannot name their category.
	NotExpressible int `json:"not_expressible,omitempty"`
	// Both right, only A right (b), only B right (c), neither.
	Both    int     `json:"both_right"`
	OnlyA   int     `json:"only_a_right"`
	OnlyB   int     `json:"only_b_right"`
	Neither int     `json:"neither_right"`
	AccA    float64 `json:"accuracy_a"`
	AccB    float64 `json:"accuracy_b"`
	// Diff is accuracy B − A = (c − b)/n with Newcombe's 95 % interval.
	Diff   float64 `json:"diff"`
	DiffLo float64 `json:"diff_lo"`
	DiffHi float64 `json:"diff_hi"`
	// McNemar's exact p-value and mid-p for "same accuracy".
	McNemarP    float64 `json:"mcnemar_p"`
	McNemarMidP float64 `json:"mcnemar_mid_p"`
}

// TimelineEvent is one run event (mirror paused, rollback, shutdown …).
type TimelineEvent struct {
	Time   time.Time      `json:"time"`
	Run    string         `json:"run"`
	Kind   string         `json:"kind"`
	Detail string         `json:"detail"`
	Data   map[string]any `json:"data,omitempty"`
}
