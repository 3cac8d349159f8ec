package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if e, err := d.Estimate(set, stats.Z95); err != nil || e.A.Labels != 16 || e.A.Population != 40 {
		t.Errorf("estimate %+v %v", e, err)
	}
	code, o, e := run(t, context.Background(), args...)
	if code != exitOK || !strings.Contains(o, "resuming the sample") || !strings.Contains(o, "16 labelled, 0 skipped, 0 to go") {
		t.Errorf("resuming a finished sample: exit %d\n%s%s", code, o, e)
	}
	code, o, e = run(t, context.Background(), append([]string{"label", "--seed", "2"}, args[1:]...)...)
	if code != exitRuntime || !strings.Contains(e, "--seed 1") {
		t.Errorf("resuming with another seed: exit %d\n%s%s", code, o, e)
	}
}
