package compare

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// pathsRun is a bench run of two providers over labelled images, drawn at
// random: right and wrong categories, near and far colours, errors,
// throttling, a hedge's cancellations, token costs, repeats.
type pathsRun struct {
	set  *fixtures.Set
	obs  []record.Observation // in file order
	both [][2]*vision.Tags    // pairs both answered: legacy, cand
	// top1 counts pairs with the same top category, worked out here.
	top1 int
}

func newPathsRun(seed uint64) *pathsRun {
	rng := rand.New(rand.NewPCG(seed, 7))
	cats := []string{"apparel/topwear/tshirts", "apparel/topwear/shirts", "footwear/shoes/casual-shoes", "accessories/watches", "apparel/bottomwear/jeans"}
	colours := []string{"black", "white", "bronze", "maroon", "tan"}
	near := map[string]string{"bronze": "copper", "maroon": "burgundy", "tan": "khaki", "black": "charcoal", "white": "off-white"}
	var items []fixtures.Item
	for i := range 80 {
		items = append(items, fixtures.Item{ID: fmt.Sprintf("fx-%03d", i), SHA256: fmt.Sprintf("%064x", i+1), Category: cats[i%len(cats)],
			Attributes: map[vision.AttributeKind]string{"color": colours[i%len(colours)], "pattern": "solid"}})
	}
	r := &pathsRun{set: fixtures.NewSet("fx", items)}
	t0 := time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC)
	answer := func(it fixtures.Item, pRight float64) *vision.Tags {
		top := it.Category
		if rng.Float64() >= pRight {
			top = cats[(rng.IntN(len(cats)-1)+1+indexOf(cats, it.Category))%len(cats)]
		}
		c := it.Attributes["color"]
		switch rng.IntN(3) {
		case 1:
			c = near[c]
		case 2:
			c = colours[rng.IntN(len(colours))]
		}
		pattern := "solid"
		if rng.IntN(5) == 0 {
			pattern = "striped"
		}
		return tags([]string{top, cats[rng.IntN(len(cats))], cats[rng.IntN(len(cats))]}, map[vision.AttributeKind]string{"color": c, "pattern": pattern})
	}
	k := 0
	for pass := range 2 {
		for _, it := range items {
			pair := fmt.Sprintf("%s-%d", it.ID, pass)
			var got [2]*vision.Tags
			for pi, prov := range []string{"legacy", "cand"} {
				k++
				o := record.Observation{RequestID: pair + "-" + prov, PairID: pair, Time: t0.Add(time.Duration(k) * 37 * time.Second), Provider: prov,
					Role: record.RoleBench, Status: 200, LatencyNS: int64(50+rng.IntN(450)) * 1e6, ImageSHA256: it.SHA256, FixtureID: it.ID, Repeat: pass}
				u := rng.Float64()
				switch {
				case prov == "legacy" && u < 0.05:
					o.Status, o.Code = 500, "server_error"
				case prov == "cand" && u < 0.03:
					o.Status, o.Code = 429, "throttled"
				case prov == "cand" && u < 0.05:
					o.Code, o.LatencyNS = record.CodeCancelled, 0
				default:
					pRight := 0.8
					if prov == "cand" {
						pRight = 0.9
					}
					o.Tags = answer(it, pRight)
					got[pi] = o.Tags
				}
				if prov == "cand" && o.Code != record.CodeCancelled {
					o.Usage = &vision.Usage{InputTokens: int64(500 + rng.IntN(500)), OutputTokens: int64(50 + rng.IntN(50))}
					o.Cost, o.Currency = float64(o.Usage.InputTokens)*2e-6+float64(o.Usage.OutputTokens)*8e-6, "CNY"
				}
				r.obs = append(r.obs, o)
			}
			if got[0] != nil && got[1] != nil {
				r.both = append(r.both, got)
				if got[0].Top() == got[1].Top() {
					r.top1++
				}
			}
		}
	}
	return r
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func pathsConfig(t *testing.T) *config.Config {
	t.Helper()
	y := `taxonomy: ` + filepath.Join("..", "taxonomy.yaml") + `
providers:
  legacy: {format: rekognition, base_url: "http://127.0.0.1:1", pricing: {tiers: [{up_to: 1000000, per_1000: 1.00}, {per_1000: 0.80}]}}
  cand: {format: openai, base_url: "http://127.0.0.1:2", model: m}
models:
  m: {currency: CNY, input_per_million: 2, output_per_million: 8}
fx: {CNY: 0.14}
report: {time_zone: Asia/Singapore, daily_volume: 40000, color_delta_e: 8}
`
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "config.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSameAnswersSameNumbers feeds one set of observations through each
// consumer: the report's path (written to a run directory with the real
// writer, read back by Measure), bench's and classify's path (a Tally per
// provider, fed concurrently) and the proxy's live agreement
// (LiveAgreement, fed from many goroutines). Every figure they share must
// be equal.
func TestSameAnswersSameNumbers(t *testing.T) {
	r := newPathsRun(1)
	cfg := pathsConfig(t)
	tx := taxonomy(t)

	dir := filepath.Join(t.TempDir(), "run")
	w, err := record.Create(dir, record.Run{Kind: "bench", Mode: "closed-loop",
		Providers: []record.Provider{{Name: "legacy", Role: record.RoleBench}, {Name: "cand", Role: record.RoleBench}}}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.obs {
		w.Record(o)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := record.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Measure([]*record.Dir{d}, Options{Config: cfg, Taxonomy: tx, Fixtures: r.set})
	if err != nil {
		t.Fatal(err)
	}

	// bench and classify: one Tally per provider, each fed in order by its
	// own goroutine (self-agreement depends on which answer came first),
	// all sharing one Scorer.
	scorer := NewScorer(tx, cfg.Report)
	tallies := map[string]*Tally{"legacy": NewTally("legacy", scorer, cfg), "cand": NewTally("cand", scorer, cfg)}
	var wg sync.WaitGroup
	for name, tl := range tallies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range r.obs {
				if o := &r.obs[i]; o.Provider == name {
					tl.Add(o, r.set.Ref(o.ImageSHA256))
				}
			}
		}()
	}
	// The proxy: pairs arrive from many goroutines.
	live := NewLiveAgreement(scorer, "legacy", "cand")
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(r.both); i += 4 {
				live.Add(r.both[i][0], r.both[i][1])
			}
			if _, counted := live.Add(nil, r.both[0][1]); counted { // a side without an answer: not a pair
				t.Error("a pair without A's answer was counted")
			}
		}()
	}
	wg.Wait()

	if len(m.Providers) != 2 {
		t.Fatalf("report: %d providers", len(m.Providers))
	}
	for _, rep := range m.Providers {
		got := tallies[rep.Name].Stats()
		if rep.Accuracy == nil || rep.Cost == nil || rep.SelfAgreement == nil || rep.Calls == 0 {
			t.Fatalf("%s: the report lacks figures to compare: %+v", rep.Name, rep)
		}
		// The report takes latency from the hlog, the tally from the
		// observations: the same values in the same histogram layout.
		want := *rep
		want.Latency.Source = got.Latency.Source
		want.Role = got.Role // the role comes from run.json
		if !reflect.DeepEqual(got.Latency, want.Latency) {
			t.Errorf("%s latency: tally %+v, report %+v", rep.Name, got.Latency, want.Latency)
		}
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"calls", got.Calls, want.Calls}, {"ok", got.OK, want.OK}, {"cancelled", got.Cancelled, want.Cancelled},
			{"error rate", got.ErrorRate, want.ErrorRate}, {"errors", got.Errors, want.Errors}, {"by hour", got.ByHour, want.ByHour},
			{"accuracy", *got.Accuracy, *want.Accuracy}, {"self-agreement", *got.SelfAgreement, *want.SelfAgreement}, {"cost", *got.Cost, *want.Cost},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				t.Errorf("%s %s: tally %+v, report %+v", rep.Name, f.name, f.got, f.want)
			}
		}
	}
	if len(m.Agreement) != 1 {
		t.Fatalf("report agreement: %+v", m.Agreement)
	}
	want := m.Agreement[0]
	want.Matched = []MatchedAgreement{}
	got := live.Snapshot()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("live agreement\n%+v\nreport\n%+v", got, want)
	}
	// And the figures are the ones the data was built with.
	if got.Pairs != len(r.both) || got.Top1.K != r.top1 || got.Pairs < 100 || got.Top1.K == got.Pairs {
		t.Errorf("agreement %d of %d pairs, want %d of %d", got.Top1.K, got.Pairs, r.top1, len(r.both))
	}
}
