package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/holysheep"
	"github.com/cutover/cutover/vision/visiontest"
)

// constSource sends one image to one target every 1/rate seconds.
type constSource struct {
	rate float64
	n, i int
	img  vision.Image
}

func (s *constSource) Next() (Job, bool) {
	if s.n > 0 && s.i >= s.n {
		return Job{}, false
	}
	j := Job{Offset: time.Duration(float64(s.i) / s.rate * float64(time.Second)), Image: s.img, PairID: "p"}
	s.i++
	return j, true
}

// server answers the classify format after delay(n) for the n-th request.
func server(t *testing.T, delay func(n int64, now time.Time) time.Duration) *httptest.Server {
	codec := &holysheep.Codec{}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _, _ := vision.ReadBody(r, codec.MaxBodyBytes())
		req, err := codec.DecodeRequest(r, body)
		if err != nil {
			codec.WriteError(w, err)
			return
		}
		time.Sleep(delay(n.Add(1), time.Now()))
		codec.WriteResult(w, req, vision.Result{Categories: []vision.Label{{Name: "apparel", Confidence: 0.9}}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func target(url string) Target {
	return Target{Name: "t", Client: &vision.Client{Codec: holysheep.NewCodec(url, "", ""), HTTP: &http.Client{Transport: vision.DefaultTransport()}},
		Provider: &config.Provider{Format: config.FormatHolySheep}}
}

func taxonomy(t *testing.T) *vision.Taxonomy {
	tx, err := vision.LoadTaxonomy("../taxonomy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func within(t *testing.T, name string, got time.Duration, want time.Duration, tol float64) {
	t.Helper()
	if math.Abs(float64(got-want))/float64(want) > tol {
		t.Errorf("%s: got %v, want %v ±%.0f%%", name, got, want, tol*100)
	}
}

// TestKnownDistribution: against a server answering in 50 ms with exactly
// 1 % of requests at 500 ms, reported p50, p99 and p99.9 are within 2 % of
// the truth: 50, 50 and 500 ms (99 % of answers take 50 ms), as the server
// itself measured them (a sleep overshoots by up to a millisecond).
//
// With exactly 1 % slow, p99 is the slowest of the 990 fast answers: a
// single scheduling hiccup of a shared VM (a vCPU descheduled for 10 ms)
// moves it on either side of the wire. A bare net/http client and server
// on this 2-core VM see the same: 2,000 answers of a 50 ms sleep have a
// client-side maximum anywhere from 54 to 68 ms from one run to the next.
// So a 5 s measurement gets up to five attempts: a bias of the bench itself
// (time lost in its own scheduling, encoding or decoding) shows in every
// attempt and fails the test; a machine's one-off stall does not.
func TestKnownDistribution(t *testing.T) {
	if raceEnabled {
		t.Skip("timing assertion: the race detector slows code 5–20×; make test runs this test again without -race")
	}
	const attempts = 5
	var problems []string
	for i := 1; i <= attempts; i++ {
		problems = measureKnownDistribution(t)
		if len(problems) == 0 {
			return
		}
		for _, p := range problems {
			t.Logf("attempt %d/%d: %s", i, attempts, p)
		}
	}
	t.Errorf("all %d attempts outside the bounds; last: %v", attempts, problems)
}

// measureKnownDistribution runs one 5 s measurement and returns what is
// outside the bounds.
func measureKnownDistribution(t *testing.T) []string {
	truth := hdrhistogram.New(record.MinLatencyNS, record.MaxLatencyNS, record.SigFigs)
	var mu sync.Mutex
	srv := server(t, func(n int64, start time.Time) time.Duration {
		d := 50 * time.Millisecond
		if n%100 == 0 {
			d = 500 * time.Millisecond
		}
		time.Sleep(d)
		mu.Lock()
		truth.RecordValue(time.Since(start).Nanoseconds())
		mu.Unlock()
		return 0
	})
	defer srv.Close()
	src := &constSource{rate: 200, n: 1000, img: vision.NewImage(visiontest.PNG(4, 4, 1))}
	s, err := Run(context.Background(), src, Options{Targets: []Target{target(srv.URL)}, Rate: 200, Duration: time.Minute, Tax: taxonomy(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Providers[0].Corrected
	if h.TotalCount() != 1000 {
		t.Fatalf("%d measured", h.TotalCount())
	}
	// The bench measures at the client: on top of the server's own time it
	// sees the loopback exchange and the wake-up of its goroutines, about
	// 1 ms at the median and up to 3 ms at the tail on a shared 2-core VM.
	// That allowance is added to the 2 %.
	const loopback = 3 * time.Millisecond
	var problems []string
	for _, q := range []float64{50, 99, 99.9} {
		want := time.Duration(truth.ValueAtQuantile(q))
		got := time.Duration(h.ValueAtQuantile(q))
		if d := got - want; d < -time.Duration(0.02*float64(want)) || d > time.Duration(0.02*raceSlowdown*float64(want))+loopback*raceSlowdown {
			problems = append(problems, fmt.Sprintf("p%v: got %v, server-side truth %v (allowed: 2%% + %v loopback)", q, got, want, loopback))
		}
	}
	t.Logf("lag p99 %v; service p50 %v p99 %v", s.LagP99, time.Duration(s.Providers[0].Service.ValueAtQuantile(50)), time.Duration(s.Providers[0].Service.ValueAtQuantile(99)))
	// The server's own truth must be the distribution it was told to
	// serve; if even that is off, the machine was too busy to measure on.
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99.9, 500 * time.Millisecond}} {
		got := time.Duration(truth.ValueAtQuantile(c.q))
		if math.Abs(float64(got-c.want))/float64(c.want) > 0.02 {
			problems = append(problems, fmt.Sprintf("server p%v: %v, want %v ±2%%", c.q, got, c.want))
		}
	}
	return problems
}

// TestStallCorrected is the wrk2 demonstration: a server that stalls for
// 1 s every 10 s, driven with few connections. The corrected p99 (from
// intended send times) shows the stall; the uncorrected one (service time)
// does not, because requests that could not be sent during the stall were
// never timed as waiting.
func TestStallCorrected(t *testing.T) {
	if raceEnabled {
		t.Skip("timing assertion: the race detector slows code 5–20×; make test runs this test again without -race")
	}
	t0 := time.Now()
	srv := server(t, func(_ int64, now time.Time) time.Duration {
		if el := now.Sub(t0) % (10 * time.Second); el >= 9*time.Second {
			return 10*time.Second - el // held until the stall ends
		}
		return 5 * time.Millisecond
	})
	src := &constSource{rate: 100, img: vision.NewImage(visiontest.PNG(4, 4, 1))}
	s, err := Run(context.Background(), src, Options{Targets: []Target{target(srv.URL)}, Rate: 100, Duration: 20 * time.Second, MaxInFlight: 4, Tax: taxonomy(t)})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Providers[0]
	c99, s99 := time.Duration(p.Corrected.ValueAtQuantile(99)), time.Duration(p.Service.ValueAtQuantile(99))
	t.Logf("corrected p99 %v, service p99 %v, missed starts %d", c99, s99, s.MissedStarts)
	if c99 < 500*time.Millisecond {
		t.Errorf("corrected p99 %v does not show the 1 s stall", c99)
	}
	if s99 > 100*time.Millisecond {
		t.Errorf("uncorrected p99 %v shows the stall: the demonstration needs it hidden", s99)
	}
	if s.MissedStarts < 100 {
		t.Errorf("missed starts %d: the stalls must be counted", s.MissedStarts)
	}
}

// TestFixedRate: at 1,000 requests/s for 20 s the achieved count is within
// 1 % of the schedule and the sends keep to it.
func TestFixedRate(t *testing.T) {
	if raceEnabled {
		t.Skip("timing assertion: the race detector slows code 5–20×; make test runs this test again without -race")
	}
	srv := server(t, func(int64, time.Time) time.Duration { return time.Millisecond })
	src := &constSource{rate: 1000, img: vision.NewImage(visiontest.PNG(4, 4, 1))}
	d := 20 * time.Second
	s, err := Run(context.Background(), src, Options{Targets: []Target{target(srv.URL)}, Rate: 1000, Duration: d, Tax: taxonomy(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := 20000.0
	if math.Abs(float64(s.Sent)-want)/want > 0.01 {
		t.Errorf("sent %d, scheduled %v", s.Sent, want)
	}
	if rate := float64(s.Sent) / s.Elapsed.Seconds(); math.Abs(rate-1000)/1000 > 0.01*raceSlowdown {
		t.Errorf("achieved %.1f requests/s over %v, want 1000 ±1%%", rate, s.Elapsed)
	}
	t.Logf("sent %d in %v, lag p99 %v, max %v", s.Sent, s.Elapsed, s.LagP99, s.LagMax)
}

// TestInterruptKeepsRunDirectory: cancelling a run (Ctrl-C) leaves a valid
// run directory with everything measured so far.
func TestInterruptKeepsRunDirectory(t *testing.T) {
	srv := server(t, func(int64, time.Time) time.Duration { return 20 * time.Millisecond })
	dir := filepath.Join(t.TempDir(), "run")
	rec, err := record.Create(dir, record.Run{Kind: "bench", Mode: "open-loop"}, record.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	src := &constSource{rate: 100, img: vision.NewImage(visiontest.PNG(4, 4, 1))}
	s, err := Run(ctx, src, Options{Targets: []Target{target(srv.URL)}, Rate: 100, Duration: time.Minute, Tax: taxonomy(t), Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if !s.Interrupted {
		t.Error("not marked interrupted")
	}
	d, err := record.Open(dir)
	if err != nil || d.Run.Ended == nil {
		t.Fatalf("run.json: %+v %v", d, err)
	}
	n := 0
	if err := d.Observations(func(record.Observation) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if int64(n) != s.Sent || n < 30 {
		t.Errorf("recorded %d, sent %d", n, s.Sent)
	}
	hs, _ := d.Histograms()
	if hs["t"].TotalCount() != int64(n) || hs["t.service"].TotalCount() != int64(n) {
		t.Errorf("hlogs: %d corrected, %d service", hs["t"].TotalCount(), hs["t.service"].TotalCount())
	}
}
