package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/record"
)

func TestSampleByImage(t *testing.T) {
	e := newEnv(t, envOpts{mirror: "sample_percent: 50\nsample_by: image"})
	imgs := e.images(t)
	for round := 0; round < 2; round++ {
		for i, b := range imgs {
			e.send(t, fmt.Sprintf("s%d-%d", round, i), b)
		}
	}
	obs := e.observations(t)
	mirroredBySHA := map[string]int{}
	seenSHA := map[string]bool{}
	for _, o := range obs {
		seenSHA[o.ImageSHA256] = true
		if o.Role == record.RoleCandidate {
			mirroredBySHA[o.ImageSHA256]++
		}
	}
	for sha, n := range mirroredBySHA {
		if n != 2 {
			t.Errorf("image %s… mirrored %d of 2 times: sampling by image must be all or nothing", sha[:8], n)
		}
	}
	if k := len(mirroredBySHA); k < len(seenSHA)/5 || k > len(seenSHA)*4/5 {
		t.Errorf("%d of %d images mirrored at 50%%", k, len(seenSHA))
	}
	d, _ := record.Open(e.dir)
	if d.Run.Coverage.Skipped[record.SkipSampledOut] == 0 {
		t.Errorf("sampled-out requests not counted: %+v", d.Run.Coverage)
	}
}

func TestDedupeWindow(t *testing.T) {
	e := newEnv(t, envOpts{mirror: "dedupe_window: 1m"})
	img := e.images(t)[0]
	for i := 0; i < 5; i++ {
		e.send(t, fmt.Sprint("d", i), img)
		time.Sleep(20 * time.Millisecond) // let each mirror decide before the next
	}
	e.stop(t)
	d, _ := record.Open(e.dir)
	if c := d.Run.Coverage; c.Mirrored != 1 || c.Skipped[record.SkipDuplicate] != 4 {
		t.Errorf("coverage %+v: want 1 mirrored, 4 duplicates", c)
	}
}

// TestDailySpendPausesMirroring: when the day's projected candidate spend
// reaches mirror.max_daily_spend, mirroring pauses and says so (log, event
// in run.json, /metrics), while clients are served as before.
func TestDailySpendPausesMirroring(t *testing.T) {
	e := newEnv(t, envOpts{mirror: "max_daily_spend: 0.003"}) // ≈ 6 calls at ≈ $0.0005
	imgs := e.images(t)
	for i := 0; i < 30; i++ {
		got := e.send(t, fmt.Sprint("b", i), imgs[i%len(imgs)])
		e.checkTransparent(t, fmt.Sprint("b", i), got)
		time.Sleep(5 * time.Millisecond)
	}
	resp, _ := http.Get(e.adminURL + "/metrics")
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "cutover_mirror_paused 1") {
		t.Error("/metrics does not show the pause")
	}
	e.stop(t)
	d, _ := record.Open(e.dir)
	c := d.Run.Coverage
	if c.Mirrored < 3 || c.Mirrored > 10 || c.Skipped[record.SkipDailySpend] == 0 || c.Mirrored+c.Skipped[record.SkipDailySpend] != 30 {
		t.Errorf("coverage %+v", c)
	}
	if len(d.Run.Events) == 0 || d.Run.Events[0].Kind != "mirror_paused" {
		t.Errorf("events %+v", d.Run.Events)
	}
	if !strings.Contains(e.logs.String(), "mirroring paused") {
		t.Error("the pause is not logged")
	}
	var spend float64
	d.Observations(func(o record.Observation) error {
		if o.Role == record.RoleCandidate {
			spend += o.Cost
		}
		return nil
	})
	if spend > 0.003 || spend == 0 {
		t.Errorf("candidate spend %.5f, limit 0.003", spend)
	}
}

// TestShutdownLosesNothing: on Stop, requests in flight are finished and
// recorded, mirrors drained, and every answered request is in the run
// directory.
func TestShutdownLosesNothing(t *testing.T) {
	e := newEnv(t, envOpts{legacyProfile: "{latency: {median: 150ms, p99: 300ms}}", scale: 1})
	imgs := e.images(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got := e.send(t, fmt.Sprint("x", i), imgs[i%len(imgs)])
			if got.err == nil && got.status == 200 {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}(i)
	}
	// Shut down once every request has reached the proxy and is in flight
	// at the 150 ms legacy (waiting on the proxy's own count, not a sleep:
	// on a slow host a fixed sleep can stop the proxy before any arrive).
	for deadline := time.Now().Add(10 * time.Second); counterValue(e.p.met.seen) < 40; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %v of 40 requests reached the proxy in 10 s", counterValue(e.p.met.seen))
		}
	}
	obs := e.observations(t) // stops the proxy and closes the recorder
	wg.Wait()
	prim := 0
	for _, o := range obs {
		if o.Role == record.RolePrimary && o.Status == 200 {
			prim++
		}
	}
	if answered == 0 || prim != answered {
		t.Errorf("%d requests answered, %d recorded", answered, prim)
	}
	d, _ := record.Open(e.dir)
	cand := 0
	for _, o := range obs {
		if o.Role == record.RoleCandidate {
			cand++
		}
	}
	if int64(cand) != d.Run.Coverage.Mirrored || d.Run.Ended == nil {
		t.Errorf("mirrored %d, candidate observations %d, ended %v", d.Run.Coverage.Mirrored, cand, d.Run.Ended)
	}
}
