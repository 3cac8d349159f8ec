package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
	"github.com/cutover/cutover/vision/visiontest"
)

// fidelitySet is a generated 2,000-fixture set, made once per test binary
// (rendering it takes a few seconds) in a folder TestMain removes.
var fidelitySet struct {
	once sync.Once
	dir  string
	set  *fixtures.Set
	err  error
}

const fidelityN = 2000

func TestMain(m *testing.M) {
	code := m.Run()
	if fidelitySet.dir != "" {
		os.RemoveAll(fidelitySet.dir)
	}
	os.Exit(code)
}

func fidelityFixtures(t *testing.T, tx *vision.Taxonomy) *fixtures.Set {
	t.Helper()
	fidelitySet.once.Do(func() {
		fidelitySet.dir, fidelitySet.err = os.MkdirTemp("", "cutover-sim-fidelity-")
		if fidelitySet.err == nil {
			fidelitySet.set, fidelitySet.err = fixtures.Generate(fidelitySet.dir, tx, fixtures.GenerateOptions{N: fidelityN, Seed: 1})
		}
	})
	if fidelitySet.err != nil {
		t.Fatal(fidelitySet.err)
	}
	return fidelitySet.set
}

// TestProfileReproduced: each of the five formats' simulators, as the
// repository's config.yaml profiles them, is measured the way a user
// measures it (`cutover classify` over 2,000 generated fixtures, seed 1):
// the simulator's HTTP server, the format's real client codec, the
// taxonomy's normalisation and compare's scorer. Injected failures and
// throttling are switched off (they are not answers and only shrink n).
//
// Two checks. Exactly, image by image: the path adds and removes no error.
// Every image's measured judgement (top category, each attribute kind)
// equals the judgement the simulator meant, read from an identical model
// given the request as the format's server decodes it. Labels the format
// cannot express are left out of both, as reports leave them out.
//
// Statistically: the configured fashion misclassification, the
// misclassification over all groups (the fixture-weighted configured
// rate; the pooled Wilson interval is conservative for unequal rates) and
// every configured attribute error lie inside the measured 95 % Wilson
// interval. Each group's own rate is logged with its interval, not
// asserted: with ~30 figures at 95 % a faithful simulator puts about one
// and a half of them outside by chance; the exact check above is what
// rules out a systematic error.
func TestProfileReproduced(t *testing.T) {
	if raceEnabled {
		t.Skip("2,000 images through five simulators take over a minute under -race; run without -race (make test's non-race line)")
	}
	cfg := exampleConfig(t)
	tx := mustTaxonomy(t)
	fx := fidelityFixtures(t, tx)
	scorer := compare.NewScorer(tx, cfg.Report)
	for _, name := range []string{"legacy", "holysheep", "holysheep-classify", "gcv", "azure", "legacy-cn", "baidu"} {
		t.Run(name, func(t *testing.T) {
			s := cfg.Simulate[name]
			s.Profile.Errors, s.Profile.ThrottleRPS, s.Profile.LLM = nil, 0, config.LLMProfile{}
			cfg.Providers[name].MaxRPS = 0
			startOne(t, cfg, name, tx, fx, 0)
			twin, err := NewModel(name, s, tx, fx, 1)
			if err != nil {
				t.Fatal(err)
			}
			twin.ColorDeltaE = cfg.Report.ColorDeltaE
			c, err := formats.NewClient(cfg, tx, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			server, err := formats.ServerCodec(s.Format)
			if err != nil {
				t.Fatal(err)
			}
			tally := compare.NewTally(name, scorer, cfg)
			mismatches := classifyFixtures(t, c, server, twin, scorer, fx, tally)
			if len(mismatches) > 0 {
				t.Errorf("%d judgements differ from what the simulator meant, e.g. %q", len(mismatches), mismatches[:min(len(mismatches), 5)])
			}
			st := tally.Stats()
			if st.OK != fidelityN || st.Accuracy == nil {
				t.Fatalf("%d of %d answered (%+v)", st.OK, fidelityN, st.Errors)
			}
			acc := s.Profile.Accuracy
			rate := func(g string) float64 {
				if r, ok := acc.Misclassification[g]; ok {
					return r.F()
				}
				return acc.Misclassification["default"].F()
			}
			var k, n int
			var want float64
			for _, g := range st.Accuracy.Misclassification {
				k, n, want = k+g.Rate.K, n+g.Rate.N, want+float64(g.Rate.N)*rate(g.Group)
				if g.Group == "fashion" {
					check(t, true, "fashion misclassification", g.Rate, rate(g.Group))
				} else {
					check(t, false, g.Group+" misclassification", g.Rate, rate(g.Group))
				}
			}
			check(t, true, "misclassification, all groups", compare.NewRate(k, n), want/float64(n))
			for kind, want := range acc.AttributeErrors {
				r, ok := st.Accuracy.Attribute(kind)
				if !ok {
					t.Errorf("no %s measured", kind)
					continue
				}
				check(t, true, kind+" error", compare.NewRate(r.N-r.K, r.N), want.F())
			}
		})
	}
}

// check logs r against the configured rate want, and fails when assert is
// set and want lies outside r's 95 % interval.
func check(t *testing.T, assert bool, what string, r compare.Rate, want float64) {
	t.Helper()
	msg := fmt.Sprintf("%s: measured %.1f %% [%.1f–%.1f] (%d/%d), configured %.1f %%", what, 100*r.Value, 100*r.Lo, 100*r.Hi, r.K, r.N, 100*want)
	switch inside := r.Lo <= want && want <= r.Hi; {
	case !inside && assert:
		t.Error(msg)
	case !inside:
		t.Log(msg + " (outside its 95 % interval; logged, not asserted)")
	default:
		t.Log(msg)
	}
}

// classifyFixtures sends every fixture through c, 16 at a time, as
// `cutover classify` does, and tallies the normalised answers. It also
// decodes each request as the simulator's server does and asks twin, a
// model identical to the server's, what it meant to answer; it returns
// every judgement the scorer made differently.
func classifyFixtures(t *testing.T, c *vision.Client, server vision.ServerCodec, twin *Model, scorer *compare.Scorer, fx *fixtures.Set, tally *compare.Tally) []string {
	t.Helper()
	format := c.Codec.Format()
	tx := twin.Tax
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var mismatches []string
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				it := &fx.Items[i]
				b, err := fx.ReadImage(*it)
				if err != nil {
					t.Error(err)
					continue
				}
				req := vision.Request{Image: vision.NewImage(b), MaxLabels: 10, Attributes: vision.AttributeKinds}
				res, err := c.Do(context.Background(), req)
				o := record.Observation{RequestID: it.ID, Provider: "p", Role: record.RoleBench, Status: 200, LatencyNS: 1e6, ImageSHA256: req.Image.SHA256}
				if err != nil {
					t.Errorf("%s: %v", it.ID, err)
					continue
				}
				tags := tx.Normalize(format, res)
				o.Tags = &tags
				tally.Add(&o, it)

				meant, err := meant(c, server, twin, req)
				if err != nil {
					t.Error(err)
					continue
				}
				a := scorer.Answer(&tags)
				sc := scorer.Score(&a, it)
				var diff []string
				if tx.Expressible(format, it.Category) && sc.Correct != meant.Correct {
					diff = append(diff, fmt.Sprintf("top %s meant right=%v, got %s", it.Category, meant.Correct, sc.Predicted))
				}
				for j, k := range compare.Kinds() {
					if v := it.Attributes[k]; sc.Labelled[j] && tx.AttributeExpressible(format, k, v) && sc.Right[j] != meant.AttributesRight[k] {
						diff = append(diff, fmt.Sprintf("%s %s meant right=%v, got %q", k, v, meant.AttributesRight[k], a.Attributes[j]))
					}
				}
				if len(diff) > 0 {
					mu.Lock()
					mismatches = append(mismatches, it.ID+": "+strings.Join(diff, "; "))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range fx.Items {
		next <- i
	}
	close(next)
	wg.Wait()
	return mismatches
}

// meant is what twin answers to req as the format's server decodes it
// (with the format's defaults, such as Rekognition's MinConfidence 55).
func meant(c *vision.Client, server vision.ServerCodec, twin *Model, req vision.Request) (Outcome, error) {
	hr, err := c.Codec.NewRequest(context.Background(), req)
	if err != nil {
		return Outcome{}, err
	}
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		return Outcome{}, err
	}
	sreq, err := server.DecodeRequest(hr, body)
	if err != nil {
		return Outcome{}, err
	}
	defer sreq.Image.Lease.Release()
	return twin.Decide(sreq), nil
}

// TestNotExpressibleAccountedFor: a third of the labelled images are
// dresses labelled apparel/dress, a category Rekognition's vocabulary has
// no name for (its answer says "Clothing"), and a fifth are multi-coloured,
// a colour it cannot measure. Through the real path, the tally lists them
// as not expressible by rekognition and leaves them out; the configured
// 20 % misclassification and 10 % colour error are then reproduced on the
// rest, instead of the ≈ 47 % a vocabulary gap would add; and no wrong
// answer is a category Rekognition cannot name.
func TestNotExpressibleAccountedFor(t *testing.T) {
	tx := mustTaxonomy(t)
	dir := t.TempDir()
	os.MkdirAll(dir+"/images", 0o755)
	cats := []string{"apparel/dress", "apparel/topwear/tshirts", "footwear/shoes/casual-shoes"}
	var items []fixtures.Item
	const n = 450
	for i := range n {
		b := visiontest.PNG(8, 8, uint64(i))
		sum := sha256.Sum256(b)
		col := "navy-blue"
		if i%5 == 0 {
			col = "multi"
		}
		it := fixtures.Item{ID: fmt.Sprint("ne-", i), File: fmt.Sprintf("images/%d.png", i), SHA256: hex.EncodeToString(sum[:]),
			Category: cats[i%3], Group: tx.Group(cats[i%3]), Attributes: map[vision.AttributeKind]string{vision.KindColor: col}}
		if err := os.WriteFile(dir+"/"+it.File, b, 0o644); err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	if err := fixtures.WriteManifest(dir, items); err != nil {
		t.Fatal(err)
	}
	fx, err := fixtures.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", []byte(`
providers:
  legacy: {format: rekognition, base_url: "http://127.0.0.1:1"}
simulate:
  legacy:
    format: rekognition
    listen: 127.0.0.1:0
    profile:
      latency: {median: 1ms, p99: 2ms}
      accuracy: {misclassification: {default: 0.2}, attribute_errors: {color: 0.1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	startOne(t, cfg, "legacy", tx, fx, 0)
	c, err := formats.NewClient(cfg, tx, "legacy", nil)
	if err != nil {
		t.Fatal(err)
	}
	server, _ := formats.ServerCodec(config.FormatRekognition)
	twin, _ := NewModel("legacy", cfg.Simulate["legacy"], tx, fx, 1)
	scorer := compare.NewScorer(tx, cfg.Report)
	tally := compare.NewTally("legacy", scorer, cfg)
	if mm := classifyFixtures(t, c, server, twin, scorer, fx, tally); len(mm) > 0 {
		t.Errorf("%d judgements differ from what the simulator meant, e.g. %q", len(mm), mm[:min(len(mm), 5)])
	}
	a := tally.Stats().Accuracy
	ne := a.NotExpressible
	if ne == nil || ne.Format != "rekognition" || ne.Images != n/3 || len(ne.Categories) != 1 || ne.Categories[0] != (compare.CategoryCount{Category: "apparel/dress", Images: n / 3}) ||
		len(ne.Attributes) != 1 || ne.Attributes[0] != (compare.AttributeCount{Kind: "color", Value: "multi", Images: n / 5}) {
		t.Fatalf("not expressible: %+v, want %d images of apparel/dress and %d multi-coloured", ne, n/3, n/5)
	}
	if a.Images != n || a.Top1.N != n-n/3 {
		t.Errorf("top-1 over %d of %d images, want %d", a.Top1.N, a.Images, n-n/3)
	}
	check(t, true, "misclassification", compare.NewRate(a.Top1.N-a.Top1.K, a.Top1.N), 0.2)
	col, _ := a.Attribute("color")
	if col.N != n-n/5 {
		t.Errorf("colour judged on %d images, want %d", col.N, n-n/5)
	}
	check(t, true, "colour error", compare.NewRate(col.N-col.K, col.N), 0.1)
	for truth, row := range a.Confusion {
		for pred := range row {
			if pred != "(none)" && !tx.Expressible("rekognition", pred) {
				t.Errorf("%s answered as %s, a category Rekognition cannot name", truth, pred)
			}
		}
	}
}
