package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/label"
	"github.com/cutover/cutover/label/labeltest"
	"github.com/cutover/cutover/vision"
)

func TestLabelUsage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tax := "../../taxonomy.yaml"
	noImages := filepath.Join(dir, "no-images")
	tx, _ := vision.LoadTaxonomy(tax)
	fx, err := fixtures.Generate(filepath.Join(dir, "fx"), tx, fixtures.GenerateOptions{N: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	labeltest.MakeRun(t, noImages, tx, fx, labeltest.RunOptions{Seed: 1, NoStore: true})
	t.Setenv("CUTOVER_LABEL_TOKEN", "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"label", "run"}, exitUsage, "--out is required"},
		{[]string{"label", "--out", dir}, exitUsage, "at least one run directory"},
		{[]string{"label", "--out", dir, "--budget", "0", "run"}, exitUsage, "--budget"},
		{[]string{"label", "--out", dir, "--low-confidence", "2", "run"}, exitUsage, "--low-confidence"},
		{[]string{"label", "--listen", "0.0.0.0:8095", "--out", dir, "run"}, exitRuntime, "not a loopback address: refusing"},
		{[]string{"label", "--listen", ":8095", "--out", dir, "run"}, exitRuntime, "$CUTOVER_LABEL_TOKEN"},
		{[]string{"label", "--taxonomy", tax, "--out", filepath.Join(dir, "o"), noImages}, exitRuntime, noImages + ": no images/ folder; cutover label needs a proxy run recorded with record.store_images: true"},
		{[]string{"help", "label"}, exitOK, "RUN_DIR..."},
	} {
		code, out, errs := run(t, ctx, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errs)
		}
	}
}

// TestLabelCommand runs cutover label as a user does, answered by the
// demo's scripted labeller over the HTTP API; --exit-when-done ends it.
// A second start on the same --out resumes a finished sample and exits
// at once; the fixture set scores both providers.
func TestLabelCommand(t *testing.T) {
	dir := t.TempDir()
	tax := "../../taxonomy.yaml"
	tx, err := vision.LoadTaxonomy(tax)
	if err != nil {
		t.Fatal(err)
	}
	fx, err := fixtures.Generate(filepath.Join(dir, "fx"), tx, fixtures.GenerateOptions{N: 40, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	runDir := labeltest.MakeRun(t, filepath.Join(dir, "run"), tx, fx, labeltest.RunOptions{Seed: 4, Repeats: 5})
	out := filepath.Join(dir, "labels")
	addr := freePort(t)
	args := []string{"label", "--listen", addr, "--out", out, "--budget", "16", "--min-per-stratum", "3", "--taxonomy", tax, "--exit-when-done", runDir}
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		var o, e bytes.Buffer
		code := Run(ctx, args, &Env{Stdout: &o, Stderr: &e})
		done <- result{code, o.String(), e.String()}
	}()
	c := &label.Client{Base: "http://" + addr}
	for {
		if _, err := c.Progress(ctx); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("cutover label exited %d before serving:\n%s%s", r.code, r.out, r.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s, err := label.Bot(ctx, c, func(it label.Item) label.LabelRequest { return label.OracleAnswer(it, fx) }, 0)
	if err != nil || s.Labelled != 16 {
		t.Fatalf("bot: %+v %v", s, err)
	}
	r := <-done
	if r.code != exitOK {
		t.Fatalf("exit %d:\n%s%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"40 distinct images in the frame", "primary and candidate are legacy and holysheep", "inclusion probability", "disagree", "label: 16 labelled, 0 skipped, 0 to go of 16"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	set, err := fixtures.Load(out)
	if err != nil || len(set.Items) != 16 {
		t.Fatalf("fixture set: %v", err)
	}
	d, _ := fixtures.LoadDesign(out)
	est, err := d.Estimate(set, stats.Z95)
	if err != nil || est.A.Labels != 16 || est.A.Population != 40 {
		t.Errorf("estimate %+v %v", est, err)
	}
	checkReportLabels(t, out, runDir, est, filepath.Join(dir, "other"), tx, fx)
	code, o, e := run(t, context.Background(), args...)
	if code != exitOK || !strings.Contains(o, "resuming the sample") || !strings.Contains(o, "16 labelled, 0 skipped, 0 to go") {
		t.Errorf("resuming a finished sample: exit %d\n%s%s", code, o, e)
	}
	code, o, e = run(t, context.Background(), append([]string{"label", "--seed", "2"}, args[1:]...)...)
	if code != exitRuntime || !strings.Contains(e, "--seed 1") {
		t.Errorf("resuming with another seed: exit %d\n%s%s", code, o, e)
	}
}

// checkReportLabels runs cutover report --labels over the labelled sample
// in labels (drawn from runDir, whose estimate is want): the JSON carries
// the design's estimate, every text format shows it, a run the sample was
// not drawn from is noted, and a folder without a design is refused.
func checkReportLabels(t *testing.T, labels, runDir string, want stats.PairedEstimate, otherDir string, tx *vision.Taxonomy, fx *fixtures.Set) {
	t.Helper()
	ctx := context.Background()
	code, o, e := run(t, ctx, "report", "--format", "json", "--labels", labels, runDir)
	if code != 11 {
		t.Fatalf("report --labels: exit %d (want 11, no gates)\n%s", code, e)
	}
	var r struct {
		Traffic *compare.TrafficAccuracy `json:"traffic_accuracy"`
		Notes   []string                 `json:"notes"`
	}
	if err := json.Unmarshal([]byte(o), &r); err != nil || r.Traffic == nil {
		t.Fatalf("report JSON without traffic_accuracy: %v\n%s", err, o)
	}
	tr := r.Traffic
	if tr.Labelled != 16 || tr.Sampled != 16 || tr.Population != 40 || tr.Unit != "image" || tr.Counting != "first_pair" ||
		len(tr.Providers) != 2 || tr.Providers[0].Name != "legacy" || tr.Providers[1].Name != "holysheep" ||
		tr.Difference.A != "legacy" || tr.Difference.B != "holysheep" || len(tr.Runs) != 1 || !tr.Runs[0].InReport {
		t.Errorf("traffic_accuracy: %+v", tr)
	}
	for i, est := range []stats.Estimate{want.A, want.B} {
		if got := tr.Providers[i].Accuracy; got.Value != est.Value || got.Lo != est.Lo || got.Hi != est.Hi {
			t.Errorf("%s: got %+v, want the design's estimate %+v", tr.Providers[i].Name, got, est)
		}
	}
	if d := tr.Difference; d.Value != want.Diff.Value || d.Lo != want.Diff.Lo || d.Hi != want.Diff.Hi {
		t.Errorf("difference %+v, want %+v", d, want.Diff)
	}
	labelled := 0
	for _, s := range tr.Strata {
		labelled += s.Labelled
		if s.Both+s.OnlyA+s.OnlyB+s.Neither != s.Labelled {
			t.Errorf("stratum %+v: the table does not add up", s)
		}
	}
	if labelled != 16 {
		t.Errorf("strata hold %d labels, want 16", labelled)
	}
	for _, format := range []string{"term", "md", "html"} {
		code, o, e := run(t, ctx, "report", "--format", format, "--labels", labels, runDir)
		acc := fmt.Sprintf("%.1f %% [%.1f, %.1f]", 100*want.B.Value, 100*want.B.Lo, 100*want.B.Hi)
		if format == "term" && testing.Verbose() {
			t.Log(o)
		}
		if code != 11 || !strings.Contains(o, "ccuracy on the recorded traffic") || !strings.Contains(o, acc) || !strings.Contains(o, "holysheep − legacy") {
			t.Errorf("report --format %s: exit %d, lacks the traffic accuracy %s:\n%s%s", format, code, acc, o, e)
		}
	}
	// Another run: the estimate still describes the sampled run, and says so.
	other := labeltest.MakeRun(t, otherDir, tx, fx, labeltest.RunOptions{Seed: 9})
	code, o, e = run(t, ctx, "report", "--format", "term", "--labels", labels, other)
	if code != 11 || !strings.Contains(o, "which is not among this report's runs") {
		t.Errorf("report --labels over another run: exit %d\n%s%s", code, o, e)
	}
	code, _, e = run(t, ctx, "report", "--labels", filepath.Dir(otherDir), runDir)
	if code != exitUsage || !strings.Contains(e, "no design.json there") {
		t.Errorf("--labels without a design: exit %d, %s", code, e)
	}
}
