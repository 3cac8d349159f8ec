package pipeline

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/holysheep"
)

func TestBackfillResumesAndSkips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := imageDir(t, 300)
	cfg := testConfig(t, provider(t, "", nil), "sqlite://"+filepath.Join(t.TempDir(), "p.db"), "")
	st, err := Open(ctx, cfg.Pipeline.Store.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tg := newTagger(t, cfg, st)
	src, _ := OpenSource(ctx, dir, S3Options{})
	s, err := Backfill(ctx, src, tg, 16, nil)
	if err != nil || s.Items != 300 || s.Tagged != 300 {
		t.Fatalf("first run: %+v %v", s, err)
	}
	s, err = Backfill(ctx, src, tg, 16, nil)
	if err != nil || s.Tagged != 0 || s.Skipped != 300 {
		t.Fatalf("rerun: %+v %v", s, err)
	}
	c, _ := st.Counts(ctx)
	if c.Versions != 300 || c.Products != 300 || c.Events != 300 {
		t.Errorf("counts %+v", c)
	}
	if v, err := st.Current(ctx, "p00042"); err != nil || v.Source != "hs" || len(v.Tags) == 0 {
		t.Errorf("p00042: %+v %v", v, err)
	}
}

// throttler answers 30 % of calls (every call whose sequence number is 3, 6
// or 9 mod 10) with the format's throttling error and Retry-After: 1,
// recording when each throttled item came back.
type throttler struct {
	next      http.Handler
	n         atomic.Int64
	mu        sync.Mutex
	throttled map[string]time.Time // image hash prefix → when throttled
	early     atomic.Int64         // retries sooner than Retry-After
	badImage  string               // a product file answered bad_image, always
}

func (th *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	codec := &holysheep.Codec{}
	body, _, _ := vision.ReadBody(r, codec.MaxBodyBytes())
	req, err := codec.DecodeRequest(r, body)
	if err != nil {
		codec.WriteError(w, err)
		return
	}
	key := req.Image.SHA256
	th.mu.Lock()
	if at, ok := th.throttled[key]; ok {
		if time.Since(at) < 990*time.Millisecond {
			th.early.Add(1)
		}
		delete(th.throttled, key)
	}
	th.mu.Unlock()
	if key == th.badImage {
		codec.WriteError(w, vision.Errorf(vision.CodeBadImage, "unsupported image"))
		return
	}
	if m := th.n.Add(1) % 10; m == 3 || m == 6 || m == 9 {
		th.mu.Lock()
		th.throttled[key] = time.Now()
		th.mu.Unlock()
		codec.WriteError(w, &vision.Error{Code: vision.CodeThrottled, Message: "slow down", RetryAfter: time.Second})
		return
	}
	r.Body = http.NoBody
	th.next.ServeHTTP(w, reRequest(r, body))
}

// TestRetryThrottling: a provider throttling 30 % of calls with
// Retry-After: 1 still gets every item tagged, no retry comes back before
// its Retry-After, and an image the provider rejects for good is
// dead-lettered with its last error after one attempt.
func TestRetryThrottling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := imageDir(t, 200)
	bad, _ := loadFile(filepath.Join(dir, "p00007.png"))
	th := &throttler{throttled: map[string]time.Time{}, badImage: bad.SHA256}
	url := provider(t, "", func(h http.Handler) http.Handler { th.next = h; return th })
	cfg := testConfig(t, url, "sqlite://"+filepath.Join(t.TempDir(), "p.db"), "")
	cfg.Pipeline.Retry.MaxAttempts = 8
	st, _ := Open(ctx, cfg.Pipeline.Store.URL, "")
	defer st.Close()
	tg := newTagger(t, cfg, st)
	src, _ := OpenSource(ctx, dir, S3Options{})
	start := time.Now()
	s, err := Backfill(ctx, src, tg, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Tagged != 199 || s.Dead != 1 {
		t.Fatalf("%+v: want 199 tagged and the bad image dead-lettered", s)
	}
	if th.early.Load() > 0 {
		t.Errorf("%d retries came back before Retry-After", th.early.Load())
	}
	if time.Since(start) < time.Second {
		t.Errorf("the run took %v: Retry-After (1 s) cannot have been honoured", time.Since(start))
	}
	dl, _ := st.DeadLetters(ctx)
	if len(dl) != 1 || dl[0]["product_id"] != "p00007" || dl[0]["attempts"] != 1 {
		t.Errorf("dead letters: %+v", dl)
	}
}

// TestBackoffFullJitter: waits are uniform in [0, min(max, base·2^(n−1))]
// and never shorter than a Retry-After.
func TestBackoffFullJitter(t *testing.T) {
	t.Parallel()
	tg := &Tagger{}
	tg.Retry.BaseDelay, tg.Retry.MaxDelay = 100*1e6, 1000*1e6
	for n := 1; n <= 8; n++ {
		ceil := min(time.Duration(100<<(n-1))*time.Millisecond, time.Second)
		var maxSeen time.Duration
		for range 2000 {
			d := tg.Backoff(n, vision.Errorf(vision.CodeServerError, "x"))
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: %v outside [0, %v]", n, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil*9/10 {
			t.Errorf("attempt %d: max %v of 2000 draws, want near %v (full jitter)", n, maxSeen, ceil)
		}
	}
	if d := tg.Backoff(1, &vision.Error{Code: vision.CodeThrottled, RetryAfter: 3 * time.Second}); d < 3*time.Second {
		t.Errorf("Retry-After 3s gave %v", d)
	}
}
