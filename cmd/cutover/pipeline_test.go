package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/vision/visiontest"
)

// TestPipelineStatusShares: a backfill of labelled fixtures through the
// simulated classify API, then `pipeline status` prints the share of
// products queued and the share the provider got wrong, checked against
// the events file and the manifest.
func TestPipelineStatusShares(t *testing.T) {
	dir := t.TempDir()
	tax, _ := filepath.Abs("../../taxonomy.yaml")
	addr := freePort(t)
	cfg := fmt.Sprintf(`taxonomy: %s
fixtures: fx
providers:
  hs: {format: holysheep, base_url: "http://%s", credentials: {api_key: "${CUTOVER_TEST_SECRET}"}}
simulate:
  hs: {format: holysheep, listen: "%s", credentials: {api_key: "${CUTOVER_TEST_SECRET}"},
       profile: {latency: {median: 1ms, p99: 3ms}, accuracy: {misclassification: {default: 0.2}}}}
pipeline:
  provider: hs
  rules: {medium: 0.85, review_margin: 0.05}
  store: {url: "sqlite://p.db"}
  events: {sink: file, file: events.jsonl}
`, tax, addr, addr)
	t.Setenv("CUTOVER_TEST_SECRET", "s3cret-pipeline-value")
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, "fixtures", "gen", "--config", cfgPath, "--out", filepath.Join(dir, "fx"), "--n", "60", "--seed", "5"); code != 0 {
		t.Fatalf("gen: %d %s %s", code, out, errs)
	}
	simCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { run(t, simCtx, "simulate", "--config", cfgPath); close(done) }()
	defer func() { stop(); <-done }()
	waitListening(t, addr)
	// One connection: more would leave some unused, and the simulator's
	// shutdown waits 5 s for a connection that never sent a request.
	if code, out, errs := run(t, ctx, "pipeline", "run", "--config", cfgPath, "--source", filepath.Join(dir, "fx"), "--concurrency", "1", "--no-progress"); code != 0 {
		t.Fatalf("run: %d %s %s", code, out, errs)
	}
	code, out, errs := run(t, ctx, "pipeline", "status", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status: %d %s %s", code, out, errs)
	}
	// Independently: the first tag of each event against the manifest.
	labels := map[string]string{}
	for _, line := range readLines(t, filepath.Join(dir, "fx", "manifest.jsonl")) {
		var it struct{ ID, Category string }
		json.Unmarshal([]byte(line), &it)
		labels[it.ID] = it.Category
	}
	wrong := 0
	for _, line := range readLines(t, filepath.Join(dir, "events.jsonl")) {
		var ev pipeline.Event
		json.Unmarshal([]byte(line), &ev)
		if len(ev.Tags) == 0 || ev.Tags[0].Category != labels[ev.ProductID] {
			wrong++
		}
	}
	st, err := pipeline.Open(ctx, "sqlite://"+filepath.Join(dir, "p.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	items, _ := st.ListReview(ctx, 1000)
	st.Close()
	wantQueue := fmt.Sprintf("review queue: %d of 60 products queued (%.1f %%)", len(items), 100*float64(len(items))/60)
	wantWrong := fmt.Sprintf("provider wrong: %d of 60 labelled products (%.1f %%)", wrong, 100*float64(wrong)/60)
	if !strings.Contains(out, wantQueue) || !strings.Contains(out, wantWrong) {
		t.Errorf("status:\n%s\nwant lines starting %q and %q", out, wantQueue, wantWrong)
	}
	if wrong == 0 || len(items) == 0 {
		t.Errorf("%d wrong, %d queued: the profile should give some of each", wrong, len(items))
	}
}

// TestPipelineStatusScrubsSecrets: a GCV provider whose key comes back in
// its errors leaves it in no output of `pipeline run` or `pipeline status`,
// dead letters written without a scrubber included; status says why the
// wrong share is n/a for an unlabelled source.
func TestPipelineStatusScrubsSecrets(t *testing.T) {
	const key = "AIzaSy-CMD+secret/9876543210"
	gcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := r.URL.Query().Get("key")
		if h := r.Header.Get("x-goog-api-key"); h != "" {
			k = h
		}
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"error": {"code": 500, "message": "no backend for key %s", "status": "INTERNAL"}}`, k)
	}))
	defer gcv.Close()
	dir := t.TempDir()
	tax, _ := filepath.Abs("../../taxonomy.yaml")
	cfg := fmt.Sprintf(`taxonomy: %s
providers:
  g: {format: gcv, base_url: "%s", credentials: {api_key: "${CUTOVER_TEST_GCV_KEY}"}}
pipeline:
  provider: g
  store: {url: "sqlite://p.db"}
  events: {sink: file, file: events.jsonl}
  retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}
`, tax, gcv.URL)
	t.Setenv("CUTOVER_TEST_GCV_KEY", key)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	imgs := filepath.Join(dir, "imgs")
	os.MkdirAll(imgs, 0o755)
	for i := range 3 {
		os.WriteFile(filepath.Join(imgs, fmt.Sprintf("p%d.png", i)), visiontest.PNG(8, 8, uint64(i)+1), 0o644)
	}
	ctx := context.Background()
	code, runOut, runErr := run(t, ctx, "pipeline", "run", "--config", cfgPath, "--source", imgs, "--no-progress")
	if code != 0 || !strings.Contains(runErr, "3 dead-lettered") {
		t.Fatalf("run: %d %s %s", code, runOut, runErr)
	}
	// A row as a store without a scrubber wrote it.
	st, err := pipeline.Open(ctx, "sqlite://"+filepath.Join(dir, "p.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	st.DeadLetter(ctx, "old|x|r1", "old", "src", 1, "server_error: no backend for key "+key)
	st.Close()
	code, out, errs := run(t, ctx, "pipeline", "status", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status: %d %s %s", code, out, errs)
	}
	all := runOut + runErr + out + errs
	for _, form := range []string{key, url.QueryEscape(key), url.PathEscape(key), "9876543210"} {
		if strings.Contains(all, form) {
			t.Errorf("the key (%q) leaked:\n%s", form, all)
		}
	}
	if n := strings.Count(out, "dead letter "); n != 4 || strings.Count(out, "[redacted]") < 4 {
		t.Errorf("status: want 4 dead letters, each with the key [redacted]:\n%s", out)
	}
	if !strings.Contains(out, "review queue: 0 of 0 products queued (n/a)") || !strings.Contains(out, "provider wrong: n/a (no tagged product's source item carried a label") {
		t.Errorf("status without labels:\n%s", out)
	}
}

func TestPrintReviewStats(t *testing.T) {
	h, m, margin := 0.9, 0.89, 0.1
	r := config.Rules{High: &h, Medium: &m, ReviewMargin: &margin}
	var b strings.Builder
	printReviewStats(&b, pipeline.ReviewStats{Products: 2000, Queued: 140, ByReason: map[string]int64{pipeline.ReasonCategoryLow: 140, pipeline.ReasonMargin: 3},
		Labelled: 2000, Wrong: 130, WrongQueued: 21, LabelledQueued: 140}, r)
	want := "review queue: 140 of 2000 products queued (7.0 %): 140 best category LOW (< 0.89), 3 best two within 0.10\n" +
		"provider wrong: 130 of 2000 labelled products (6.5 %): best category differs from the source's label; 21 of the 130 wrong queued, 140 of 2000 labelled queued (7.0 %)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestPipelineServeOffLoopbackNeedsToken: the API refuses to listen off
// loopback without its token.
func TestPipelineServeOffLoopbackNeedsToken(t *testing.T) {
	dir := t.TempDir()
	tax, _ := filepath.Abs("../../taxonomy.yaml")
	cfg := fmt.Sprintf(`taxonomy: %s
providers:
  h: {format: holysheep, base_url: "http://127.0.0.1:1/v1", credentials: {api_key: k}}
pipeline:
  provider: h
  store: {url: "sqlite://p.db"}
  events: {sink: file, file: events.jsonl}
`, tax)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	t.Setenv("CUTOVER_PIPELINE_TOKEN", "")
	code, _, errs := run(t, context.Background(), "pipeline", "serve", "--config", cfgPath, "--listen", "0.0.0.0:0")
	if code != exitRuntime || !strings.Contains(errs, "not a loopback address") || !strings.Contains(errs, "CUTOVER_PIPELINE_TOKEN") {
		t.Errorf("serve off loopback without a token: %d %s", code, errs)
	}
}
