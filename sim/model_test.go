package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func mustTaxonomy(tb testing.TB) *vision.Taxonomy {
	tb.Helper()
	tx, err := vision.LoadTaxonomy("../taxonomy.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return tx
}

func simConfig(tb testing.TB, format, profile string) *config.Simulator {
	tb.Helper()
	c, err := config.Parse("test.yaml", []byte(fmt.Sprintf("simulate:\n  s:\n    format: %s\n    listen: 127.0.0.1:0\n    profile:\n%s", format, indent(profile))))
	if err != nil {
		tb.Fatal(err)
	}
	return c.Simulate["s"]
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n      ") + "\n"
}

func quantile(ds []time.Duration, q float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[int(math.Ceil(q*float64(len(ds))))-1])
}

// TestLatencyDistribution: over 100,000 draws the median and p99 are within
// 3 % of the profile, off-peak (median/p99) and in the peak window (mean/p99).
func TestLatencyDistribution(t *testing.T) {
	tx := mustTaxonomy(t)
	s := simConfig(t, "rekognition", `latency: {median: 250ms, p99: 900ms}
peak: {zone: Asia/Singapore, start: "09:00", end: "11:00", latency: {mean: 420ms, p99: 2.3s}}`)
	m, err := NewModel("legacy", s, tx, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	sgt, _ := time.LoadLocation("Asia/Singapore")
	off := time.Date(2026, 11, 27, 14, 0, 0, 0, sgt)
	peak := time.Date(2026, 11, 27, 9, 30, 0, 0, sgt)
	if m.InPeak(off) || !m.InPeak(peak) || m.InPeak(time.Date(2026, 11, 27, 11, 0, 0, 0, sgt)) {
		t.Fatal("peak window wrong")
	}
	const n = 100000
	draw := func(at time.Time) []time.Duration {
		rng := rand.New(rand.NewPCG(7, 9))
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = m.Latency(at, rng)
		}
		return ds
	}
	within := func(name string, got, want float64) {
		if math.Abs(got-want)/want > 0.03 {
			t.Errorf("%s: got %.1fms, want %.1fms ±3%%", name, got/1e6, want/1e6)
		}
	}
	ds := draw(off)
	within("off-peak median", quantile(ds, 0.5), 250e6)
	within("off-peak p99", quantile(ds, 0.99), 900e6)
	ds = draw(peak)
	var sum float64
	for _, d := range ds {
		sum += float64(d)
	}
	within("peak mean", sum/n, 420e6)
	within("peak p99", quantile(ds, 0.99), 2300e6)
}

func syntheticSet(tx *vision.Taxonomy, group string, n int) *fixtures.Set {
	var leaves []string
	for _, l := range tx.Leaves() {
		if tx.Group(l) == group {
			leaves = append(leaves, l)
		}
	}
	items := make([]fixtures.Item, n)
	for i := range items {
		items[i] = fixtures.Item{ID: fmt.Sprint(i), SHA256: fmt.Sprintf("%064x", i+1), Category: leaves[i%len(leaves)], Group: group,
			Attributes: map[vision.AttributeKind]string{vision.KindColor: "navy-blue", vision.KindPattern: "striped"}}
	}
	return fixtures.NewSet("", items)
}

// TestMisclassificationRate: over 100,000 distinct fashion images the
// configured 23 % is inside the 99 % Wilson interval of the observed rate;
// confidences are calibrated; wrong answers are mostly siblings.
func TestMisclassificationRate(t *testing.T) {
	tx := mustTaxonomy(t)
	const n = 100000
	fx := syntheticSet(tx, "fashion", n)
	s := simConfig(t, "holysheep", `latency: {median: 100ms, p99: 200ms}
accuracy:
  misclassification: {fashion: 0.23, default: 0.1}
  attribute_errors: {color: 0.12}`)
	m, err := NewModel("legacy", s, tx, fx, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrong, sibling, colourWrong := 0, 0, 0
	var hiConf, hiRight int
	for _, it := range fx.Items {
		out := m.Decide(vision.Request{Image: vision.Image{SHA256: it.SHA256}, Attributes: []vision.AttributeKind{vision.KindColor}})
		tags := tx.Normalize("holysheep", out.Result)
		right := tags.Top() == it.Category
		if right != out.Correct {
			t.Fatalf("Correct flag disagrees with the answer")
		}
		if !right {
			wrong++
			if contains(tx.Siblings(it.Category), tags.Top()) {
				sibling++
			}
		}
		if tags.TopAttribute(vision.KindColor) != "navy-blue" {
			colourWrong++
		}
		if c := tags.Categories[0].Confidence; c >= 0.9 {
			hiConf++
			if right {
				hiRight++
			}
		}
	}
	lo, hi := stats.Wilson(wrong, n, stats.Z99)
	if 0.23 < lo || 0.23 > hi {
		t.Errorf("misclassification %d/%d = %.4f, 99%% CI [%.4f, %.4f] excludes 0.23", wrong, n, float64(wrong)/n, lo, hi)
	}
	lo, hi = stats.Wilson(colourWrong, n, stats.Z99)
	if 0.12 < lo || 0.12 > hi {
		t.Errorf("colour errors %.4f, 99%% CI [%.4f, %.4f] excludes 0.12", float64(colourWrong)/n, lo, hi)
	}
	if float64(sibling)/float64(wrong) < 0.75 {
		t.Errorf("sibling share of errors %.2f, want ≈ 0.8", float64(sibling)/float64(wrong))
	}
	if acc := float64(hiRight) / float64(hiConf); acc < 0.9 {
		t.Errorf("answers at confidence ≥ 0.9 are right %.3f of the time: not calibrated", acc)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestDeterministicAndUnknown(t *testing.T) {
	tx := mustTaxonomy(t)
	fx := syntheticSet(tx, "footwear", 50)
	s := simConfig(t, "rekognition", "latency: {median: 100ms, p99: 200ms}\naccuracy: {misclassification: {default: 0.5}}")
	a, _ := NewModel("x", s, tx, fx, 42)
	b, _ := NewModel("x", s, tx, fx, 42)
	c, _ := NewModel("x", s, tx, fx, 43)
	same, diff := 0, 0
	for _, it := range fx.Items {
		req := vision.Request{Image: vision.Image{SHA256: it.SHA256}}
		ta, tb, tc := tx.Normalize("rekognition", a.Decide(req).Result), tx.Normalize("rekognition", b.Decide(req).Result), tx.Normalize("rekognition", c.Decide(req).Result)
		if ta.Top() == tb.Top() {
			same++
		}
		if ta.Top() != tc.Top() {
			diff++
		}
		// A repeat of the same image gets the same answer.
		if again := tx.Normalize("rekognition", a.Decide(req).Result); again.Top() != ta.Top() {
			t.Fatalf("repeat differs")
		}
	}
	if same != 50 || diff == 0 {
		t.Errorf("same seed agreed on %d/50; another seed differed on %d", same, diff)
	}
	out := a.Decide(vision.Request{Image: vision.Image{SHA256: "feedface"}})
	tags := tx.Normalize("rekognition", out.Result)
	if out.Fixture != "" || len(tags.Categories) != 1 || tags.Categories[0].Confidence > 0.56 || len(tags.Unmapped) == 0 {
		t.Errorf("unknown image: %+v %+v", out, tags)
	}
}

func TestErrorRatesAndThrottle(t *testing.T) {
	tx := mustTaxonomy(t)
	s := simConfig(t, "gcv", "latency: {median: 100ms, p99: 200ms}\nerrors: {server_error: 0.05, throttled: 0.02}")
	m, _ := NewModel("x", s, tx, nil, 3)
	counts := map[vision.Code]int{}
	const n = 100000
	for i := 0; i < n; i++ {
		if out := m.Decide(vision.Request{Image: vision.Image{SHA256: "a"}}); out.Err != nil {
			counts[out.Err.Code]++
		}
	}
	for code, want := range map[vision.Code]float64{vision.CodeServerError: 0.05, vision.CodeThrottled: 0.02} {
		lo, hi := stats.Wilson(counts[code], n, stats.Z99)
		if want < lo || want > hi {
			t.Errorf("%s: %d/%d, 99%% CI [%.4f, %.4f] excludes %v", code, counts[code], n, lo, hi, want)
		}
	}
	s = simConfig(t, "gcv", "latency: {median: 100ms, p99: 200ms}\nthrottle_rps: 10")
	m, _ = NewModel("x", s, tx, nil, 3)
	ok := 0
	for i := 0; i < 100; i++ {
		if m.Decide(vision.Request{}).Err == nil {
			ok++
		}
	}
	if ok < 10 || ok > 12 {
		t.Errorf("token bucket of 10 let %d of 100 immediate calls through", ok)
	}
}

// TestCalibratedAboveFloor: with a request's minimum confidence (55 for
// Rekognition by default) the drawn confidences stay at or above it, keep
// their mean at 1 − miss and stay calibrated; without one the draw is the
// widest interval around 1 − miss.
func TestCalibratedAboveFloor(t *testing.T) {
	for _, tc := range []struct {
		miss, floor, lo, hi float64
	}{
		{0.30, 0.55, 0.55, 0.85},
		{0.23, 0.55, 0.55, 0.99},
		{0.05, 0.55, 0.90, 0.999},
		{0.30, 0, 0.40, 0.999},
		{0.60, 0.55, 0.01, 0.80}, // 1 − miss below the floor: cannot stay above it
	} {
		rng := rand.New(rand.NewPCG(3, 4))
		const n = 100000
		wrong, sum := 0, 0.0
		minC, maxC := 1.0, 0.0
		for range n {
			c, right := calibrated(rng, tc.miss, tc.floor)
			if !right {
				wrong++
			}
			sum += c
			minC, maxC = math.Min(minC, c), math.Max(maxC, c)
		}
		if minC < tc.lo-1e-9 || maxC > tc.hi+1e-9 {
			t.Errorf("miss %v floor %v: confidences in [%.3f, %.3f], want within [%v, %v]", tc.miss, tc.floor, minC, maxC, tc.lo, tc.hi)
		}
		if lo, hi := stats.Wilson(wrong, n, stats.Z99); tc.miss < lo || tc.miss > hi {
			t.Errorf("miss %v floor %v: %d/%d wrong, 99%% CI [%.4f, %.4f]", tc.miss, tc.floor, wrong, n, lo, hi)
		}
		if mean := sum / n; math.Abs(mean-(1-tc.miss)) > 0.005 {
			t.Errorf("miss %v floor %v: mean confidence %.4f, want %.4f", tc.miss, tc.floor, mean, 1-tc.miss)
		}
	}
}

// TestWrongColourIsWrong: a wrong colour is one a report counts wrong,
// farther than the report's color_delta_e from the label's colour, for
// every palette colour; a format that cannot say a colour never says it.
func TestWrongColourIsWrong(t *testing.T) {
	tx := mustTaxonomy(t)
	for _, tc := range []struct {
		format string
		tol    float64
	}{{"rekognition", 0}, {"azure", 0}, {"gcv", 20}} {
		m, err := NewModel("x", simConfig(t, tc.format, "latency: {median: 1ms, p99: 2ms}"), tx, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		m.ColorDeltaE = tc.tol
		want := tc.tol
		if want == 0 {
			want = 10
		}
		rng := rand.New(rand.NewPCG(5, 6))
		s := compareScorer(tx, want)
		for _, c := range tx.AttributeValues(vision.KindColor) {
			for range 20 {
				w := m.wrongAttribute(rng, vision.KindColor, c)
				if w == c || s.SameAttribute(vision.KindColor, c, w) {
					t.Errorf("%s: wrong colour for %s is %s, which a report with color_delta_e %v counts right", tc.format, c, w, want)
				}
				if !tx.AttributeExpressible(tc.format, vision.KindColor, w) {
					t.Errorf("%s: wrong colour %s cannot be said in the format", tc.format, w)
				}
			}
		}
	}
}

func compareScorer(tx *vision.Taxonomy, deltaE float64) *compare.Scorer {
	return compare.NewScorer(tx, config.Report{ColorDeltaE: deltaE})
}
