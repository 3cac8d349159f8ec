package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// imagesRun records a run over items idx of set: legacy (rekognition)
// answers "Clothing" for apparel/dress, which its vocabulary lacks, and
// the label otherwise except on every fifth image; cand (holysheep)
// answers the label except on every seventh.
func imagesRun(t *testing.T, dir, kind string, start time.Time, set *fixtures.Set, idx []int) *record.Dir {
	t.Helper()
	roles := [2]string{record.RoleBench, record.RoleBench}
	mode := "closed-loop"
	if kind == "proxy" {
		roles, mode = [2]string{record.RolePrimary, record.RoleCandidate}, "shadow"
	}
	w, err := record.Create(dir, record.Run{Kind: kind, Mode: mode, Started: start,
		Providers: []record.Provider{{Name: "legacy", Role: roles[0], Format: "rekognition"}, {Name: "cand", Role: roles[1], Format: "holysheep"}}}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, i := range idx {
		it := set.Items[i]
		lt, ct := it.Category, it.Category
		switch {
		case it.Category == "apparel/dress":
			lt = "apparel"
		case i%5 == 0:
			lt = "apparel/topwear/shirts"
		}
		if i%7 == 0 {
			ct = "apparel/topwear/shirts"
		}
		for pi, top := range []string{lt, ct} {
			prov := []string{"legacy", "cand"}[pi]
			w.Record(record.Observation{RequestID: fmt.Sprint(k, prov), PairID: fmt.Sprint(k), Time: start.Add(time.Duration(k) * time.Second),
				Provider: prov, Role: roles[pi], Status: 200, LatencyNS: 100e6, ImageSHA256: it.SHA256, FixtureID: it.ID,
				Tags: &vision.Tags{Categories: []vision.Scored{{Value: top, Confidence: 0.9}}}})
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := record.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReportCountsImages: `cutover report` over a bench run of 400
// labelled images and a shadow run that sees 300 of them again judges the
// gates on 400 images, and lists the dresses Rekognition cannot name as
// not expressible by rekognition in every format instead of as the
// legacy's errors.
func TestReportCountsImages(t *testing.T) {
	var items []fixtures.Item
	for i := range 400 {
		c := "apparel/topwear/tshirts"
		if i%10 == 3 {
			c = "apparel/dress" // 40 images
		}
		items = append(items, fixtures.Item{ID: fmt.Sprint("fx-", i), SHA256: sha(i), Category: c, Group: "fashion"})
	}
	set := fixtures.NewSet("fx", items)
	cfg := testConfig(t)
	tx, err := vision.LoadTaxonomy(cfg.TaxonomyPath())
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var all, later []int
	for i := range 400 {
		all = append(all, i)
		if i >= 100 {
			later = append(later, i)
		}
	}
	bench := imagesRun(t, filepath.Join(tmp, "bench"), "bench", t0, set, all)
	shadow := imagesRun(t, filepath.Join(tmp, "shadow"), "proxy", t0.Add(24*time.Hour), set, later)
	r, err := Build([]*record.Dir{bench, shadow}, Options{Config: cfg, Taxonomy: tx, Fixtures: set, Baseline: "legacy", Candidate: "cand", Now: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	legacy, cand := r.Provider("legacy").Accuracy, r.Provider("cand").Accuracy
	// legacy: 360 images it can name, wrong on i%5 == 0 (80 of them: i%10
	// is 0 or 5, never 3); cand: 400 images, wrong on i%7 == 0 (58).
	if legacy.Images != 400 || legacy.Calls != 700 || legacy.Top1 != compare.NewRate(280, 360) {
		t.Errorf("legacy: %d images, %d calls, top-1 %+v; want 400, 700, 280/360", legacy.Images, legacy.Calls, legacy.Top1)
	}
	if cand.Images != 400 || cand.Top1 != compare.NewRate(342, 400) {
		t.Errorf("cand: %d images, top-1 %+v; want 400, 342/400", cand.Images, cand.Top1)
	}
	gates := map[string]GateResult{}
	for _, g := range r.Gates {
		gates[g.Name] = g
	}
	if g := gates["misclassification.fashion"]; g.N != 400 {
		t.Errorf("fashion misclassification gate on n = %d, want 400 images", g.N)
	}
	if g := gates["accuracy_difference"]; g.N != 360 {
		t.Errorf("accuracy difference gate on n = %d, want 360 images (400 less 40 not expressible)", g.N)
	}
	if p := r.Paired[0]; p.N != 360 || p.Calls != 700 || p.NotExpressible != 40 {
		t.Errorf("paired: n %d, calls %d, not expressible %d; want 360, 700, 40", p.N, p.Calls, p.NotExpressible)
	}

	var js bytes.Buffer
	if err := JSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Providers []struct {
			Name     string
			Accuracy struct {
				Counting       string
				Images, Calls  int
				NotExpressible *struct {
					Format     string
					Images     int
					Categories []struct {
						Category string
						Images   int
					}
				} `json:"not_expressible"`
			}
		}
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	ne := back.Providers[0].Accuracy.NotExpressible
	if back.Providers[0].Accuracy.Counting != "first_answer" || ne == nil || ne.Format != "rekognition" || ne.Images != 40 ||
		len(ne.Categories) != 1 || ne.Categories[0].Category != "apparel/dress" || ne.Categories[0].Images != 40 {
		t.Errorf("JSON accuracy of legacy: %+v", back.Providers[0].Accuracy)
	}
	for _, f := range []struct {
		name   string
		render func(*bytes.Buffer, *Report) error
	}{
		{"term", func(b *bytes.Buffer, r *Report) error { return Term(b, r) }},
		{"md", func(b *bytes.Buffer, r *Report) error { return Markdown(b, r) }},
		{"html", func(b *bytes.Buffer, r *Report) error { return HTML(b, r) }},
	} {
		var b bytes.Buffer
		if err := f.render(&b, r); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"category apparel/dress", "not expressible by rekognition", "by its first answer",
			"legacy answered 400 labelled images in 700 calls"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q", f.name, want)
			}
		}
	}
}
