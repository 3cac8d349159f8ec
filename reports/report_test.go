package reports

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/jsonx"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestJudge(t *testing.T) {
	cfg := testConfig(t)
	for _, tc := range []struct {
		name   string
		errK   int
		n      int
		status string
	}{
		{"clearly under", 0, 2000, Pass}, // Wilson hi 0.19 % ≤ 0.5 %
		{"clearly over", 30, 1000, Fail}, // lo 2.1 % > 0.5 %
		{"straddles", 5, 1000, Inc},      // [0.21, 1.17] %
		{"too few", 0, 50, Inc},          // fewer than min_samples
	} {
		r := &Report{Candidate: "cand", Providers: []*ProviderReport{{Name: "cand", ErrorRate: compare.NewRate(tc.errK, tc.n)}}}
		g := config.Gates{MinSamples: 100, ErrorRate: cfg.Gates.ErrorRate}
		evaluate(r, g, cfg)
		if r.Gates[0].Status != tc.status {
			t.Errorf("%s: %d/%d → %s (%s), want %s", tc.name, tc.errK, tc.n, r.Gates[0].Status, r.Gates[0].Note, tc.status)
		}
	}
	r := &Report{Candidate: "cand", Providers: []*ProviderReport{{Name: "cand"}}}
	evaluate(r, config.Gates{}, cfg)
	if r.Verdict != Inconclusive {
		t.Errorf("no gates: verdict %s, want INCONCLUSIVE", r.Verdict)
	}
}

// TestTrafficAccuracyGate judges gates.traffic_accuracy_margin on the
// estimate from a labelled sample of the traffic: on the interval's lower
// bound, INCONCLUSIVE without a sample, with too few labels, or with a
// sample of another candidate.
func TestTrafficAccuracyGate(t *testing.T) {
	cfg := testConfig(t)
	margin := config.Rate(0.01)
	est := func(b string, v, lo, hi float64, labels int) *TrafficAccuracy {
		return &TrafficAccuracy{Labelled: labels, Difference: compare.TrafficDifference{A: "legacy", B: b, Estimate: compare.Estimate{Value: v, Lo: lo, Hi: hi}}}
	}
	for _, tc := range []struct {
		name    string
		traffic *TrafficAccuracy
		status  string
		note    string
	}{
		{"better", est("cand", 0.08, 0.02, 0.12, 300), Pass, ""},
		{"within the margin", est("cand", 0.01, -0.009, 0.03, 300), Pass, ""},
		{"worse", est("cand", -0.05, -0.08, -0.02, 300), Fail, ""},
		{"straddles", est("cand", 0.0, -0.03, 0.03, 300), Inc, "straddles"},
		{"too few labels", est("cand", 0.08, 0.02, 0.12, 60), Inc, "fewer than min_samples"},
		{"another candidate", est("other", 0.08, 0.02, 0.12, 300), Inc, "not the candidate cand"},
		{"no sample", nil, Inc, "cutover report --labels"},
	} {
		r := &Report{Candidate: "cand", Providers: []*ProviderReport{{Name: "cand"}}, TrafficAccuracy: tc.traffic}
		evaluate(r, config.Gates{MinSamples: 100, TrafficAccuracyMargin: &margin}, cfg)
		g := r.Gates[0]
		if g.Name != "traffic_accuracy_difference" || g.Status != tc.status || !strings.Contains(g.Note, tc.note) || g.Threshold != -0.01 {
			t.Errorf("%s: %+v, want %s (%q)", tc.name, g, tc.status, tc.note)
		}
		if tc.traffic != nil && tc.note == "" && (g.Lo != tc.traffic.Difference.Lo || g.N != tc.traffic.Labelled) {
			t.Errorf("%s: the gate judged %+v, not the estimate", tc.name, g)
		}
	}
}

// synthetic is a shadow run of n labelled images with known outcomes:
// legacy is right on images with i%10 < 8, the candidate on i%20 < 19 and
// fails (server_error) on i%100 == 0; latencies are 200+i%50 ms and
// 150+i%30 ms; one request every 10 s from 08:00 Singapore time.
type synthetic struct {
	n     int
	items []fixtures.Item
	cats  []string
}

func newSynthetic(n int) *synthetic {
	s := &synthetic{n: n, cats: []string{"apparel/topwear/tshirts", "apparel/topwear/shirts", "footwear/shoes/casual-shoes", "accessories/watches"}}
	groups := map[string]string{s.cats[0]: "fashion", s.cats[1]: "fashion", s.cats[2]: "footwear", s.cats[3]: "accessories"}
	colors := []string{"black", "white", "blue", "red"}
	for i := range n {
		c := s.cats[i%4]
		s.items = append(s.items, fixtures.Item{ID: fmt.Sprintf("fx-%04d", i), File: fmt.Sprintf("%d.jpg", i), SHA256: sha(i),
			Category: c, Group: groups[c], Attributes: map[vision.AttributeKind]string{"color": colors[i%4], "pattern": "solid"}})
	}
	return s
}

func sha(i int) string {
	h := sha256.Sum256([]byte(fmt.Sprint("image-", i)))
	return hex.EncodeToString(h[:])
}

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC) // 08:00 in Singapore

func (s *synthetic) wrong(c string) string {
	for i, x := range s.cats {
		if x == c {
			return s.cats[(i+1)%len(s.cats)]
		}
	}
	return ""
}

// write writes the run directory by hand, so every byte is known.
func (s *synthetic) write(t *testing.T, dir string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	end := t0.Add(time.Duration(s.n) * 10 * time.Second)
	run := record.Run{FormatVersion: 1, Tool: "cutover", Kind: "proxy", Mode: "shadow", ConfigDigest: "d1g3st",
		Started: t0, Ended: &end, Providers: []record.Provider{{Name: "legacy", Role: "primary", Format: "rekognition"},
			{Name: "cand", Role: "candidate", Format: "holysheep"}},
		Coverage: record.Coverage{Seen: int64(s.n + 10), Classify: int64(s.n), Mirrored: int64(s.n - 20), Skipped: map[string]int64{"not_classify": 10, "max_in_flight": 20}},
		Events:   []record.Event{{Time: t0.Add(time.Hour), Kind: "mirror_paused", Detail: "daily spend reached"}}}
	b, _ := json.MarshalIndent(run, "", "  ")
	os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644)
	var buf bytes.Buffer
	for i := range s.n {
		it := s.items[i]
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		legacyTop := it.Category
		if i%10 >= 8 {
			legacyTop = s.wrong(it.Category)
		}
		lc := "black"
		if i%3 == 0 {
			lc = "white"
		}
		lo := record.Observation{RequestID: fmt.Sprint("r", i, "-l"), PairID: fmt.Sprint("p", i), Time: at, Provider: "legacy", Role: "primary",
			Status: 200, LatencyNS: int64(200+i%50) * 1e6, ImageSHA256: it.SHA256, ImageSize: 1000, FixtureID: it.ID,
			Tags: &vision.Tags{Categories: []vision.Scored{{Value: legacyTop, Confidence: 0.5 + float64(i%50)/100}},
				Attributes: map[vision.AttributeKind][]vision.Scored{"color": {{Value: lc, Confidence: 0.9}}, "pattern": {{Value: "solid", Confidence: 0.9}}}}}
		co := record.Observation{RequestID: fmt.Sprint("r", i, "-c"), PairID: fmt.Sprint("p", i), Time: at, Provider: "cand", Role: "candidate",
			Status: 200, LatencyNS: int64(150+i%30) * 1e6, ImageSHA256: it.SHA256, ImageSize: 1000, FixtureID: it.ID, Cost: 0.0004, Currency: "USD"}
		if i%100 == 0 {
			co.Status, co.Code, co.Error, co.Cost, co.Currency = 500, "server_error", "simulated", 0, ""
		} else {
			top := it.Category
			if i%20 == 19 {
				top = s.wrong(it.Category)
			}
			co.Tags = &vision.Tags{Categories: []vision.Scored{{Value: top, Confidence: 0.6 + float64(i%40)/100}, {Value: s.wrong(top), Confidence: 0.1}},
				Attributes: map[vision.AttributeKind][]vision.Scored{"color": {{Value: it.Attributes["color"], Confidence: 0.8}}, "pattern": {{Value: "solid", Confidence: 0.8}}}}
		}
		for _, o := range []record.Observation{lo, co} {
			if i%7 == 3 && o.Role == "primary" {
				continue // written after the candidate below: pairs complete out of order
			}
			line, _ := jsonx.Marshal(o)
			buf.Write(append(line, '\n'))
		}
		if i%7 == 3 {
			line, _ := jsonx.Marshal(lo)
			buf.Write(append(line, '\n'))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "observations-20261120T00-0001.jsonl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	tax := filepath.Join(srcDir, "..", "taxonomy.yaml")
	y := fmt.Sprintf(`taxonomy: %s
providers:
  legacy: {format: rekognition, base_url: "http://127.0.0.1:1", pricing: {currency: USD, tiers: [{up_to: 1000000, per_1000: 1.00}, {per_1000: 0.80}]}}
  cand: {format: holysheep, base_url: "http://127.0.0.1:2", pricing: {currency: CNY, tiers: [{per_1000: 2.8}]}}
fx: {CNY: 0.14}
report: {time_zone: Asia/Singapore, daily_volume: 50000}
gates:
  min_samples: 100
  p99_latency: 400ms
  error_rate: 0.5%%
  misclassification: {fashion: 10%%}
  accuracy_margin: 1%%
  monthly_cost_usd: 1000
  mirrored_coverage: 90%%
`, tax)
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "config.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func buildSynthetic(t *testing.T, n int) (*Report, *synthetic) {
	t.Helper()
	s := newSynthetic(n)
	t.Chdir(t.TempDir())
	s.write(t, "run-shadow")
	d, err := record.Open("run-shadow")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	tx, err := vision.LoadTaxonomy(cfg.TaxonomyPath())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build([]*record.Dir{d}, Options{Config: cfg, Taxonomy: tx, Fixtures: fixtures.NewSet("fx", s.items), Now: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

// TestSynthetic checks every figure against counts worked out from the
// construction of the data.
func TestSynthetic(t *testing.T) {
	const n = 1000
	r, _ := buildSynthetic(t, n)
	if r.Baseline != "legacy" || r.Candidate != "cand" {
		t.Fatalf("baseline %q candidate %q", r.Baseline, r.Candidate)
	}
	legacy, cand := r.Provider("legacy"), r.Provider("cand")
	if legacy.Calls != n || cand.Calls != n || cand.OK != n-10 {
		t.Errorf("calls: legacy %d cand %d ok %d", legacy.Calls, cand.Calls, cand.OK)
	}
	if e := cand.ErrorRate; e.K != 10 || e.N != n {
		t.Errorf("candidate errors %d/%d, want 10/1000", e.K, e.N)
	}
	// Legacy: right when i%10 < 8 → 800 of 1000.
	if a := legacy.Accuracy.Top1; a.K != 800 || a.N != n {
		t.Errorf("legacy top-1 %d/%d, want 800/1000", a.K, a.N)
	}
	// Candidate: answered 990; wrong when i%20 == 19 (50 images, none of
	// them i%100 == 0) → 940 right of 990.
	if a := cand.Accuracy.Top1; a.K != 940 || a.N != 990 {
		t.Errorf("cand top-1 %d/%d, want 940/990", a.K, a.N)
	}
	// Paired over the 990 both answered: legacy right iff i%10<8,
	// candidate iff i%20 != 19. Only legacy right: i%10<8 && i%20==19:
	// never (19%10 = 9). Only candidate right: i%10 >= 8 && i%20 != 19,
	// minus the 10 errors (i%100 == 0 has i%10 = 0): i%10==8 (100) + i%10==9
	// with i%20==9 (50) = 150. Neither: i%20 == 19 → 50. Both: 990-200.
	var p *PairedAccuracy
	for i := range r.Paired {
		if r.Paired[i].B == "cand" {
			p = &r.Paired[i]
		}
	}
	if p == nil || p.N != 990 || p.OnlyA != 0 || p.OnlyB != 150 || p.Neither != 50 || p.Both != 790 {
		t.Fatalf("paired table %+v", p)
	}
	if math.Abs(p.Diff-150.0/990) > 1e-12 || p.DiffLo <= 0 || p.DiffHi >= 1 || p.McNemarP > 1e-40 {
		t.Errorf("paired diff %v [%v, %v] p %v", p.Diff, p.DiffLo, p.DiffHi, p.McNemarP)
	}
	// Agreement: same top category iff both right (a wrong answer is
	// always the next category, so both wrong agree too): 790 + 50.
	ag := r.Agreement[0]
	if ag.Pairs != 990 || ag.Top1.K != 840 {
		t.Errorf("agreement %d of %d pairs, want 840 of 990", ag.Top1.K, ag.Pairs)
	}
	// Colour: legacy says white when i%3 == 0, black otherwise; the
	// candidate says the label's colour (black, white, blue, red by i%4).
	// Black/white/blue/red are far apart (ΔE00 > 10), so agreement is
	// exact-name agreement.
	want := 0
	for i := range n {
		if i%100 == 0 {
			continue
		}
		lc := "black"
		if i%3 == 0 {
			lc = "white"
		}
		if lc == []string{"black", "white", "blue", "red"}[i%4] {
			want++
		}
	}
	for _, a := range ag.Attributes {
		if a.Kind == "color" && a.Rate.K != want {
			t.Errorf("colour agreement %d, want %d", a.Rate.K, want)
		}
		if a.Kind == "pattern" && a.Rate.K != 990 {
			t.Errorf("pattern agreement %d, want 990", a.Rate.K)
		}
	}
	// Latency: legacy 200–249 ms evenly, p99 ≈ 249 ms.
	if l := legacy.Latency; math.Abs(l.P50-224) > 1 || math.Abs(l.Max-249) > 0.5 || l.P99Lo > l.P99 || l.P99Hi < l.P99 {
		t.Errorf("legacy latency %+v", l)
	}
	// 1,000 requests 10 s apart from 08:00 SGT cover 08:00–10:46.
	if len(legacy.ByHour) != 3 || legacy.ByHour[0].Hour != 8 || legacy.ByHour[0].Count != 360 {
		t.Errorf("by hour: %+v", legacy.ByHour)
	}
	// Cost: legacy 1,500,000 calls a month = 1M × $1 + 0.5M × $0.80.
	if c := legacy.Cost; c == nil || math.Abs(c.MonthlyUSD-1400) > 1e-9 || c.Basis != "tiers" {
		t.Errorf("legacy cost %+v", c)
	}
	// Candidate ¥2.8 per 1,000 at 0.14 USD = $0.392 per 1,000 → $588.
	if c := cand.Cost; c == nil || math.Abs(c.MonthlyUSD-588) > 1e-9 || math.Abs(c.SpentUSD-990*0.0004) > 1e-9 {
		t.Errorf("cand cost %+v", c)
	}
	if r.Coverage == nil || r.Coverage.Rate.K != 980 || r.Coverage.Rate.N != 1000 {
		t.Errorf("coverage %+v", r.Coverage)
	}
	status := map[string]string{}
	for _, g := range r.Gates {
		status[g.Name] = g.Status
	}
	wantStatus := map[string]string{"p99_latency": Pass, "error_rate": Fail, "misclassification.fashion": Pass,
		"accuracy_difference": Pass, "monthly_cost": Pass, "mirrored_coverage": Pass}
	for k, v := range wantStatus {
		if status[k] != v {
			t.Errorf("gate %s: %s, want %s", k, status[k], v)
		}
	}
	if r.Verdict != NoGo || r.ExitCode() != 10 {
		t.Errorf("verdict %s exit %d, want NO-GO 10", r.Verdict, r.ExitCode())
	}
	if len(r.Timeline) != 1 || r.Timeline[0].Kind != "mirror_paused" {
		t.Errorf("timeline %+v", r.Timeline)
	}
}

func TestGolden(t *testing.T) {
	r, _ := buildSynthetic(t, 1000)
	wd, _ := os.Getwd()
	for _, f := range []struct {
		name   string
		render func(*bytes.Buffer, *Report) error
	}{
		{"report.txt", func(b *bytes.Buffer, r *Report) error { return Term(b, r) }},
		{"report.md", func(b *bytes.Buffer, r *Report) error { return Markdown(b, r) }},
		{"report.html", func(b *bytes.Buffer, r *Report) error { return HTML(b, r) }},
		{"report.json", func(b *bytes.Buffer, r *Report) error { return JSON(b, r) }},
	} {
		var b bytes.Buffer
		if err := f.render(&b, r); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join(srcDir, "testdata", f.name)
		if *update {
			os.WriteFile(golden, b.Bytes(), 0o644)
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./report -run TestGolden -update)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			out := filepath.Join(wd, f.name)
			os.WriteFile(out, b.Bytes(), 0o644)
			t.Errorf("%s differs from the golden file; got written to %s", f.name, out)
		}
	}
}

// srcDir is the package directory (tests chdir into temp directories).
var srcDir, _ = os.Getwd()

// TestMergeRuns records two runs with the real writer (hlog and
// observations) and checks the merged report adds them up, histograms
// losslessly.
func TestMergeRuns(t *testing.T) {
	dir := t.TempDir()
	var dirs []*record.Dir
	for k := range 2 {
		p := filepath.Join(dir, fmt.Sprint("run", k))
		w, err := record.Create(p, record.Run{Kind: "bench", Mode: "open-loop", Providers: []record.Provider{{Name: "a", Role: "bench"}, {Name: "b", Role: "bench"}}}, record.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 500 {
			for _, prov := range []string{"a", "b"} {
				w.Record(record.Observation{RequestID: fmt.Sprint(i, prov), PairID: fmt.Sprint(i), Time: t0.Add(time.Duration(i) * time.Second),
					Provider: prov, Role: "bench", Status: 200, LatencyNS: int64(k*1000+i+1) * 1e6, ImageSHA256: sha(i),
					Tags: &vision.Tags{Categories: []vision.Scored{{Value: "accessories/watches", Confidence: 0.9}}}})
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		d, err := record.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	r, err := Build(dirs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Provider("a")
	if a.Latency.Count != 1000 || a.Latency.Source != "hlog" || math.Abs(a.Latency.Max-1500) > 1 || math.Abs(a.Latency.P50-500) > 1 {
		t.Errorf("merged latency %+v", a.Latency)
	}
	// Pair ids repeat across runs but are per run: 1,000 pairs, not 500.
	if r.Agreement[0].Pairs != 1000 || r.Agreement[0].Top1.K != 1000 {
		t.Errorf("agreement %+v", r.Agreement[0])
	}
	if r.Verdict != Inconclusive || r.ExitCode() != 11 {
		t.Errorf("no config: %s, want INCONCLUSIVE", r.Verdict)
	}
	hg := filepath.Join(dir, "hgrm")
	files, err := r.WriteHGRM(hg)
	if err != nil || len(files) != 2 {
		t.Fatalf("hgrm: %v %v", files, err)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "Value\tPercentile\tTotalCount\t1/(1-Percentile)") || !strings.Contains(string(b), "#[Max") {
		t.Errorf("hgrm format:\n%.300s", b)
	}
}

// A torn last line (a live or crashed run) is skipped; a malformed line in
// the middle is an error naming the file and line.
func TestMalformedObservations(t *testing.T) {
	s := newSynthetic(20)
	dir := t.TempDir()
	s.write(t, dir)
	f := filepath.Join(dir, "observations-20261120T00-0001.jsonl")
	b, _ := os.ReadFile(f)
	os.WriteFile(f, append(b, []byte(`{"request_id":"torn`)...), 0o644)
	d, _ := record.Open(dir)
	if _, err := Build([]*record.Dir{d}, Options{}); err != nil {
		t.Errorf("torn last line: %v", err)
	}
	os.WriteFile(f, append([]byte("{not json}\n"), b...), 0o644)
	if _, err := Build([]*record.Dir{d}, Options{}); err == nil || !strings.Contains(err.Error(), ".jsonl:1") {
		t.Errorf("malformed line: %v, want an error naming the line", err)
	}
}

// TestRolloutChart: canary events in the runs draw the share over time,
// with the rollback marked.
func TestRolloutChart(t *testing.T) {
	r := &Report{Timeline: []TimelineEvent{
		{Time: t0, Kind: "canary_advance", Data: map[string]any{"from": 10.0, "percent": 50.0}},
		{Time: t0.Add(time.Minute), Kind: "canary_rollback", Data: map[string]any{"from": 50.0, "percent": 0.0}},
		{Time: t0.Add(2 * time.Minute), Kind: "shutdown"},
	}}
	svg := string(rolloutSVG(r))
	if !strings.Contains(svg, "Canary share over time") || !strings.Contains(svg, "rollback at 00:01:00") || !strings.Contains(svg, "<path d=\"M") {
		t.Errorf("rollout chart:\n%s", svg)
	}
	if rolloutSVG(&Report{}) != "" {
		t.Error("a chart without canary events")
	}
}
