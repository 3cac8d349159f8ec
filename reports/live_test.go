package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// gatedRun is a LiveRun whose Flush waits for gate and counts how many
// flushes overlap.
type gatedRun struct {
	*record.Writer
	gate          atomic.Pointer[chan struct{}] // nil: open
	in, max, done atomic.Int32
}

func (g *gatedRun) Flush() {
	n := g.in.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			break
		}
	}
	if gate := g.gate.Load(); gate != nil {
		<-*gate
	}
	g.Writer.Flush()
	g.in.Add(-1)
	g.done.Add(1)
}

// TestLiveHandler: the report over a run still being recorded, built
// afresh on each load, one build at a time.
func TestLiveHandler(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := record.Create(dir, record.Run{Kind: "proxy", Mode: "shadow", Providers: []record.Provider{
		{Name: "legacy", Role: record.RolePrimary}, {Name: "cand", Role: record.RoleCandidate}}}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tags := &vision.Tags{Categories: []vision.Scored{{Value: "accessories/watches", Confidence: 0.9}}}
	add := func(from, to int) {
		for i := from; i < to; i++ {
			at := time.Now()
			for _, o := range []record.Observation{
				{RequestID: fmt.Sprint(i, "-p"), PairID: fmt.Sprint(i), Time: at, Provider: "legacy", Role: record.RolePrimary, Status: 200, LatencyNS: 2e7, Tags: tags},
				{RequestID: fmt.Sprint(i, "-c"), PairID: fmt.Sprint(i), Time: at, Provider: "cand", Role: record.RoleCandidate, Status: 200, LatencyNS: 1e7, Tags: tags},
			} {
				w.Record(o)
			}
		}
	}
	run := &gatedRun{Writer: w}
	srv := httptest.NewServer(LiveHandler(run, Options{Config: testConfig(t)}))
	defer srv.Close()

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// 30 pairs, then 20 more: each load sees what was recorded by then.
	for _, span := range [][2]int{{0, 30}, {30, 50}} {
		add(span[0], span[1])
		n := span[1]
		resp, body := get("/report?format=json")
		var r Report
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("json: %v\n%.300s", err, body)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" ||
			resp.Header.Get("X-Cutover-Verdict") != r.Verdict || r.Verdict == "" {
			t.Errorf("headers %v, verdict %q", resp.Header, r.Verdict)
		}
		if r.Observations != int64(2*n) || r.Agreement[0].Pairs != n {
			t.Errorf("live report over %d pairs: %d observations, %d pairs", n, r.Observations, r.Agreement[0].Pairs)
		}
	}
	resp, body := get("/report")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<svg") ||
		resp.Header.Get("X-Cutover-Verdict") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("html: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := get("/report?format=pdf"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("format=pdf: %d, want 400", resp.StatusCode)
	}
	if resp, err := http.Post(srv.URL+"/report", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v, want 405", resp.StatusCode, err)
	}

	// Four loads at once while the first build is held: the others wait
	// for it instead of building alongside.
	gate := make(chan struct{})
	run.gate.Store(&gate)
	run.done.Store(0)
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := get("/report?format=json")
			codes[i] = resp.StatusCode
		}()
	}
	for run.in.Load() == 0 {
		time.Sleep(time.Millisecond) // until the first build holds the gate
	}
	for range 50 {
		if run.in.Load() > 1 {
			break
		}
		time.Sleep(time.Millisecond) // give the others time to pile in, if they can
	}
	close(gate)
	wg.Wait()
	if run.max.Load() != 1 || run.done.Load() != 4 || fmt.Sprint(codes) != "[200 200 200 200]" {
		t.Errorf("%d builds overlapped (want 1), %d done, codes %v", run.max.Load(), run.done.Load(), codes)
	}
}
