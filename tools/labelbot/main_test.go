package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/label"
	"github.com/cutover/cutover/label/labeltest"
	"github.com/cutover/cutover/vision"
)

// TestLabelbotAnswersEverything runs the bot against a real label server
// over a simulated shadow run of fixture images: every sampled image is
// labelled with its fixture's truth, the set passes fixtures check, and
// the weighted estimate can be computed from it.
func TestLabelbotAnswersEverything(t *testing.T) {
	tx, err := vision.LoadTaxonomy("../../taxonomy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fx, err := fixtures.Generate(filepath.Join(dir, "fixtures"), tx, fixtures.GenerateOptions{N: 30, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	runDir := labeltest.MakeRun(t, filepath.Join(dir, "run"), tx, fx, labeltest.RunOptions{Seed: 2})
	out := filepath.Join(dir, "labels")
	sess, err := label.Prepare(context.Background(), label.Options{Out: out, Runs: []string{runDir}, Low: 0.75, Taxonomy: tx,
		Sample: label.SampleOptions{Budget: 12, MinPerStratum: 2, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Store.Close()
	ts := httptest.NewUnstartedServer(nil)
	t.Setenv("LABELBOT_TEST_TOKEN", "t0ken")
	ts.Config.Handler = label.NewServer(sess.Store, tx, label.ServerOptions{Token: "t0ken"}).Handler()
	ts.Start()
	defer ts.Close()

	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--url", ts.URL, "--fixtures", fx.Dir, "--token-env", "LABELBOT_TEST_TOKEN"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "12 labelled") {
		t.Errorf("output %q, want 12 labelled", stdout.String())
	}
	set, err := fixtures.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if probs := fixtures.Check(set, tx); len(probs) > 0 {
		t.Errorf("fixtures check: %v", probs)
	}
	for _, it := range set.Items {
		truth, _ := fx.BySHA(it.SHA256)
		if it.Category != truth.Category || it.Attributes["color"] != truth.Attributes["color"] {
			t.Errorf("%s labelled %s/%s, truth %s/%s", it.ID, it.Category, it.Attributes["color"], truth.Category, truth.Attributes["color"])
		}
	}
	if e, err := sess.Store.Design().Estimate(set, stats.Z95); err != nil || e.A.Labels != 12 || e.A.Lo > e.A.Value || e.A.Value > e.A.Hi {
		t.Errorf("estimate %+v %v", e, err)
	}
	// Without the token the server refuses it.
	t.Setenv("LABELBOT_TEST_TOKEN", "")
	if err := run(context.Background(), []string{"--url", ts.URL, "--fixtures", fx.Dir, "--token-env", "LABELBOT_TEST_TOKEN", "--wait", "0s"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("no token: got %v", err)
	}
	if err := run(context.Background(), []string{"--fixtures", filepath.Join(dir, "nope")}, &stdout, &stderr); err == nil {
		t.Error("a missing fixture set was accepted")
	}
}
