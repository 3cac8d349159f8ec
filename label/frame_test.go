package label

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

func answer(top string, conf float64) fixtures.DesignAnswer {
	return fixtures.DesignAnswer{Provider: "x", Tags: &vision.Tags{Categories: []vision.Scored{{Value: top, Confidence: conf}}}}
}

// TestClassifyPartition: every combination lands in exactly one stratum,
// the one its definition names.
func TestClassifyPartition(t *testing.T) {
	failed := fixtures.DesignAnswer{Provider: "x", Code: "timeout"}
	empty := fixtures.DesignAnswer{Provider: "x", Tags: &vision.Tags{}}
	for _, tc := range []struct {
		name string
		a, b fixtures.DesignAnswer
		want string
	}{
		{"primary failed", failed, answer("a/b", 0.9), StratumFailed},
		{"candidate failed", answer("a/b", 0.9), failed, StratumFailed},
		{"both failed", failed, failed, StratumFailed},
		{"no category", empty, answer("a/b", 0.9), StratumFailed},
		{"no tags", fixtures.DesignAnswer{Provider: "x"}, answer("a/b", 0.9), StratumFailed},
		{"disagree", answer("a/b", 0.9), answer("a/c", 0.9), StratumDisagree},
		{"disagree at low confidence", answer("a/b", 0.1), answer("a/c", 0.2), StratumDisagree},
		{"agree, one low", answer("a/b", 0.9), answer("a/b", 0.74), StratumLow},
		{"agree at the threshold", answer("a/b", 0.75), answer("a/b", 0.75), StratumAgree},
		{"agree", answer("a/b", 0.99), answer("a/b", 0.8), StratumAgree},
	} {
		if got := Classify(tc.a, tc.b, 0.75); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	names := map[string]bool{}
	for _, s := range Strata {
		names[s.Name] = true
	}
	if len(names) != 4 || !names[StratumFailed] || !names[StratumDisagree] || !names[StratumLow] || !names[StratumAgree] {
		t.Errorf("Strata lists %v", names)
	}
}

func TestBuildFrame(t *testing.T) {
	_, fx := world(t)
	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 3, Repeats: 10, PrimaryOnly: 4})
	f, err := BuildFrame(context.Background(), []string{run}, 0.75)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.Units), len(fx.Items); got != want {
		t.Errorf("frame holds %d images, want %d distinct ones (10 were sent twice)", got, want)
	}
	if f.Runs[0].Pairs != len(fx.Items)+10 || f.Excluded.IncompletePairs != 4 {
		t.Errorf("pairs %d, incomplete %d; want %d and 4", f.Runs[0].Pairs, f.Excluded.IncompletePairs, len(fx.Items)+10)
	}
	if f.Providers[0].Name != "legacy" || f.Providers[1].Name != "holysheep" {
		t.Errorf("providers %+v", f.Providers)
	}
	// Each image's stratum and answers come from its first pair (the
	// earlier pair ids here), and strata follow Classify.
	d, _ := record.Open(run)
	firstPair := map[string]string{}
	d.Observations(func(o record.Observation) error {
		if _, ok := firstPair[o.ImageSHA256]; !ok && o.Role == record.RolePrimary {
			firstPair[o.ImageSHA256] = o.PairID
		}
		return nil
	})
	counts := map[string]int{}
	for _, u := range f.Units {
		counts[u.Stratum]++
		if u.PairID != firstPair[u.SHA256] {
			t.Errorf("%.8s: pair %s, want its first %s", u.SHA256, u.PairID, firstPair[u.SHA256])
		}
		if got := Classify(u.Answers[0], u.Answers[1], 0.75); got != u.Stratum {
			t.Errorf("%.8s: stratum %s, Classify says %s", u.SHA256, u.Stratum, got)
		}
		if _, ok := fx.BySHA(u.SHA256); !ok {
			t.Errorf("%.8s is not a fixture", u.SHA256)
		}
	}
	t.Logf("strata: %v", counts)
	if counts[StratumDisagree] == 0 || counts[StratumAgree] == 0 {
		t.Errorf("strata %v: the simulated profiles should give disagreements and agreements", counts)
	}
	// Deterministic.
	f2, err := BuildFrame(context.Background(), []string{run}, 0.75)
	if err != nil || !reflect.DeepEqual(f.Units, f2.Units) {
		t.Errorf("a second build differs (%v)", err)
	}
}

// TestBuildFrameBadInput: a run without stored images is refused naming
// the directory; missing and altered images are listed, not dropped
// silently; runs with other providers are refused.
func TestBuildFrameBadInput(t *testing.T) {
	dir := t.TempDir()
	noImages := makeRun(t, filepath.Join(dir, "no-images"), runOptions{Seed: 3, NoStore: true})
	_, err := BuildFrame(context.Background(), []string{noImages}, 0.75)
	var ni *NoImagesError
	if !errors.As(err, &ni) || ni.Dir != noImages || !strings.Contains(err.Error(), "record.store_images: true") || !strings.Contains(err.Error(), noImages) {
		t.Errorf("a run without images: got %v", err)
	}
	empty := filepath.Join(dir, "empty-images")
	makeRun(t, empty, runOptions{Seed: 3})
	os.RemoveAll(filepath.Join(empty, "images"))
	os.Mkdir(filepath.Join(empty, "images"), 0o755)
	if _, err := BuildFrame(context.Background(), []string{empty}, 0.75); !errors.As(err, &ni) || !strings.Contains(err.Error(), "holds no images") {
		t.Errorf("an empty images/: got %v", err)
	}

	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 3})
	d, _ := record.Open(run)
	imgs, _, err := d.StoredImages()
	if err != nil {
		t.Fatal(err)
	}
	var shas []string
	for sha := range imgs {
		shas = append(shas, sha)
	}
	os.Remove(filepath.Join(run, imgs[shas[0]]))
	os.WriteFile(filepath.Join(run, imgs[shas[1]]), []byte("not the image"), 0o644)
	f, err := BuildFrame(context.Background(), []string{run}, 0.75)
	if err != nil {
		t.Fatal(err)
	}
	if f.Excluded.MissingImages != 1 || f.Excluded.TamperedImages != 1 || len(f.Excluded.Images) != 2 {
		t.Fatalf("excluded %+v, want one missing and one altered, listed", f.Excluded)
	}
	reasons := map[string]string{}
	for _, im := range f.Excluded.Images {
		reasons[im.SHA256] = im.Reason
	}
	if !strings.HasPrefix(reasons[shas[0]], "missing") || !strings.HasPrefix(reasons[shas[1]], "altered") {
		t.Errorf("reasons %v", reasons)
	}
	if len(f.Units) != len(imgs)-2 {
		t.Errorf("frame %d, want %d", len(f.Units), len(imgs)-2)
	}

	// Another pair of providers in a second run.
	other := filepath.Join(dir, "other")
	makeRun(t, other, runOptions{Seed: 4})
	rewriteProvider(t, other, "legacy", "legacy-2")
	if _, err := BuildFrame(context.Background(), []string{run, other}, 0.75); err == nil || !strings.Contains(err.Error(), "legacy-2") {
		t.Errorf("mixed providers: got %v", err)
	}
	if _, err := BuildFrame(context.Background(), []string{filepath.Join(dir, "nope")}, 0.75); err == nil {
		t.Error("a missing run directory was accepted")
	}
}

// rewriteProvider renames a provider in a run's observation files.
func rewriteProvider(t *testing.T, run, from, to string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(run, "observations-*.jsonl"))
	for _, p := range m {
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.ReplaceAll(string(b), `"provider":"`+from+`"`, `"provider":"`+to+`"`)), 0o644)
	}
}

func TestDraw(t *testing.T) {
	run := makeRun(t, filepath.Join(t.TempDir(), "run"), runOptions{Seed: 3})
	f, err := BuildFrame(context.Background(), []string{run}, 0.75)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := Draw(f, SampleOptions{Budget: 24, MinPerStratum: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := Draw(f, SampleOptions{Budget: 24, MinPerStratum: 3, Seed: 1})
	d3, _ := Draw(f, SampleOptions{Budget: 24, MinPerStratum: 3, Seed: 2})
	if !reflect.DeepEqual(d1.Sample, d2.Sample) {
		t.Error("the same seed drew different samples")
	}
	if reflect.DeepEqual(d1.Sample, d3.Sample) {
		t.Error("another seed drew the same sample")
	}
	if len(d1.Sample) != 24 || d1.Population != len(f.Units) {
		t.Errorf("sample %d of %d", len(d1.Sample), d1.Population)
	}
	seen := map[string]bool{}
	perStratum := map[string]int{}
	for _, u := range d1.Sample {
		if seen[u.SHA256] {
			t.Errorf("%.8s drawn twice", u.SHA256)
		}
		seen[u.SHA256] = true
		perStratum[u.Stratum]++
	}
	pop := 0
	for _, s := range d1.Strata {
		pop += s.Population
		if perStratum[s.Name] != s.Sample {
			t.Errorf("stratum %s: %d drawn, design says %d", s.Name, perStratum[s.Name], s.Sample)
		}
		if s.Population > 0 && s.InclusionProbability != float64(s.Sample)/float64(s.Population) {
			t.Errorf("stratum %s: π %v, want %d/%d", s.Name, s.InclusionProbability, s.Sample, s.Population)
		}
		if s.Population > 0 && s.Sample < min(3, s.Population) {
			t.Errorf("stratum %s: %d drawn, under the floor", s.Name, s.Sample)
		}
	}
	if pop != d1.Population {
		t.Errorf("strata hold %d, population %d", pop, d1.Population)
	}
	if _, err := Draw(f, SampleOptions{Budget: 0, Seed: 1}); err == nil {
		t.Error("a zero budget was accepted")
	}
}

// TestShuffleUniform: each of 4 items lands in each position about a
// quarter of the time (a biased shuffle would bias inclusion
// probabilities).
func TestShuffleUniform(t *testing.T) {
	var count [4][4]int
	r := rng(9, "test")
	const n = 40000
	for range n {
		s := []int{0, 1, 2, 3}
		shuffle(r, s)
		for pos, v := range s {
			count[v][pos]++
		}
	}
	for v := range count {
		for pos, c := range count[v] {
			if c < n/4-600 || c > n/4+600 { // ±7 standard deviations
				t.Errorf("item %d at %d: %d times of %d", v, pos, c, n)
			}
		}
	}
}
