package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsrek "github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/jonboulle/clockwork"

	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// canaryYAML is the proxy section for a canary test.
func canaryYAML(mode, canary string) string {
	return fmt.Sprintf("mode: %s\ncanary: {%s}", mode, canary)
}

// sendAll sends n calls with conc in flight and returns every client result.
func sendAll(t *testing.T, e *env, n, conc int) []result {
	t.Helper()
	imgs := e.images(t)
	out := make([]result, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = e.send(t, fmt.Sprint("r", i), imgs[i%len(imgs)])
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// clientOK: a 200 that the Rekognition codec decodes into labels.
func clientOK(r result) error {
	if r.err != nil {
		return r.err
	}
	if r.status != 200 {
		return fmt.Errorf("status %d: %.200s", r.status, r.body)
	}
	var out struct {
		Labels []struct {
			Name       string
			Confidence float64
		}
		LabelModelVersion string
	}
	if err := json.Unmarshal(r.body, &out); err != nil || len(out.Labels) == 0 {
		return fmt.Errorf("undecodable answer: %.200s", r.body)
	}
	return nil
}

// TestCanaryCandidateFaults: with half the traffic on the candidate,
// whatever the candidate does (down, slow, 500s, malformed bodies,
// connection resets, huge answers), over 2,000 requests each the client
// error rate is the legacy's own: zero with a healthy legacy. Rollback is
// disabled (error_rate 100 %) so that every request keeps exercising the
// fallback.
//
// Under -race (make test's first pass) each fault gets 400 requests: the
// detector is after data races there; make test's second pass runs this
// test without it, at 2,000.
func TestCanaryCandidateFaults(t *testing.T) {
	n := 2000
	if testing.Short() || raceSlowdown > 1 {
		n = 400
	}
	faults := candidateFaults()
	faults["down"] = nil
	for name, h := range faults {
		n := n
		if name == "50 MB response" {
			n = 300 // not one of the four faults; 4 MiB read per call
		}
		t.Run(name, func(t *testing.T) {
			o := envOpts{candidate: h, proxyExtra: canaryYAML("canary", "percent: 50, sticky_by: request, candidate_timeout: 150ms, rollback: {error_rate: 100%}, compare_with_legacy: false")}
			if h == nil {
				o.candidateURL = "http://127.0.0.1:1"
			}
			e := newEnv(t, o)
			bad := 0
			for i, r := range sendAll(t, e, n, 32) {
				if err := clientOK(r); err != nil {
					if bad++; bad <= 3 {
						t.Errorf("request %d: %v", i, err)
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d client requests failed; the legacy is healthy, so the client error rate must be 0", bad, n)
			}
			obs := e.observations(t)
			var cand, served, fallback int
			for _, o := range obs {
				if o.Role == record.RoleCandidate && o.Route == "canary" {
					cand++
					if o.Served {
						served++
					}
				}
				if o.Route == "fallback" && o.Served {
					fallback++
				}
			}
			// About half went to the candidate; every one failed and fell back.
			if cand < n/3 || cand > 2*n/3 || served != 0 || fallback != cand {
				t.Errorf("candidate asked %d, served %d, fallbacks %d (of %d)", cand, served, fallback, n)
			}
		})
	}
}

// TestCanaryHealthy: a healthy candidate answers its share in the legacy's
// wire format, and compare_with_legacy keeps a legacy answer for each.
func TestCanaryHealthy(t *testing.T) {
	e := newEnv(t, envOpts{proxyExtra: canaryYAML("canary", "percent: 50")})
	n := 200
	for i, r := range sendAll(t, e, n, 8) {
		if err := clientOK(r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	e.p.life.mirrors.Wait()
	obs := e.observations(t)
	byImage := map[string]map[string]bool{} // sticky by image: one route per image
	var served, compared int
	for _, o := range obs {
		if o.Role == record.RoleCandidate && o.Route == "canary" && o.Served {
			served++
		}
		if o.Route == "compare" && o.Code == "" {
			compared++
		}
		if o.Served {
			if byImage[o.ImageSHA256] == nil {
				byImage[o.ImageSHA256] = map[string]bool{}
			}
			byImage[o.ImageSHA256][o.Role] = true
		}
	}
	if served < n/4 || served > 3*n/4 || compared != served {
		t.Errorf("candidate served %d of %d, compared with legacy %d", served, n, compared)
	}
	for sha, roles := range byImage {
		if len(roles) != 1 {
			t.Errorf("image %.12s was answered by %v: canary.sticky_by image must keep an image on one side", sha, roles)
		}
	}
}

// TestCanaryRecordsImageHash: with canary.sticky_by request the image is
// hashed off the request path, after the answer; every observation, the
// candidate's served, fallen back or compared, still carries the image's
// SHA-256 and fixture id, joined with the legacy's.
func TestCanaryRecordsImageHash(t *testing.T) {
	for _, tc := range []struct {
		name      string
		candidate http.Handler
	}{
		{"healthy", nil},
		{"500s (fallback)", candidateFaults()["500s"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{candidate: tc.candidate,
				proxyExtra: canaryYAML("canary", "percent: 50, sticky_by: request, rollback: {error_rate: 100%}, compare_with_legacy: true")})
			n := 200
			for i, r := range sendAll(t, e, n, 8) {
				if err := clientOK(r); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			e.p.life.mirrors.Wait()
			fx := fixtureSet(t)
			pairs := map[string][]record.Observation{}
			for _, o := range e.observations(t) {
				it, ok := fx.BySHA(o.ImageSHA256)
				if !ok || it.ID != o.FixtureID {
					t.Fatalf("%s observation %s (route %s): image %q, fixture %q: not the image sent", o.Role, o.RequestID, o.Route, o.ImageSHA256, o.FixtureID)
				}
				pairs[o.PairID] = append(pairs[o.PairID], o)
			}
			var cand int
			for id, os := range pairs {
				for _, o := range os[1:] {
					if o.ImageSHA256 != os[0].ImageSHA256 {
						t.Fatalf("pair %s: images %s and %s", id, os[0].ImageSHA256, o.ImageSHA256)
					}
				}
				for _, o := range os {
					if o.Role == record.RoleCandidate && o.Route == "canary" {
						cand++
					}
				}
			}
			if len(pairs) != n || cand < n/4 || cand > 3*n/4 {
				t.Errorf("%d pairs for %d requests, the candidate asked on the request path for %d", len(pairs), n, cand)
			}
		})
	}
}

// TestCanaryTranslationSDK: answers translated from the candidate reach a
// real aws-sdk-go-v2 Rekognition client with every field it reads present
// and typed: labels with names, confidences (percent), parents and
// categories, the model version, dominant colours when asked.
func TestCanaryTranslationSDK(t *testing.T) {
	e := newEnv(t, envOpts{proxyExtra: canaryYAML("canary", "percent: 100, compare_with_legacy: false")})
	client := awsrek.New(awsrek.Options{Region: "ap-southeast-1", BaseEndpoint: aws.String(e.proxyURL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK}, nil
		})})
	fx := fixtureSet(t)
	right := 0
	for _, it := range fx.Items[:30] {
		b, _ := fx.ReadImage(it)
		out, err := client.DetectLabels(context.Background(), &awsrek.DetectLabelsInput{Image: &types.Image{Bytes: b}, MaxLabels: aws.Int32(20),
			Features: []types.DetectLabelsFeatureName{types.DetectLabelsFeatureNameGeneralLabels, types.DetectLabelsFeatureNameImageProperties}})
		if err != nil {
			t.Fatalf("DetectLabels answered by the candidate: %v", err)
		}
		if len(out.Labels) == 0 || aws.ToString(out.LabelModelVersion) == "" {
			t.Fatalf("no labels or model version: %+v", out)
		}
		var labels []vision.Label
		for _, l := range out.Labels {
			c := aws.ToFloat32(l.Confidence)
			if aws.ToString(l.Name) == "" || c <= 0 || c > 100 {
				t.Fatalf("label %+v: name and a confidence in percent are required", l)
			}
			for _, p := range l.Parents {
				if aws.ToString(p.Name) == "" {
					t.Fatalf("a parent without a name: %+v", l)
				}
			}
			labels = append(labels, vision.Label{Name: aws.ToString(l.Name), Confidence: float64(c) / 100})
		}
		if out.ImageProperties == nil || len(out.ImageProperties.DominantColors) == 0 {
			if it.Attributes["color"] != "" && it.Attributes["color"] != "multi" {
				t.Errorf("%s: no dominant colours for a %s item", it.ID, it.Attributes["color"])
			}
		} else if dc := out.ImageProperties.DominantColors[0]; aws.ToString(dc.HexCode) == "" || aws.ToFloat32(dc.PixelPercent) <= 0 {
			t.Errorf("dominant colour without hex or pixel percent: %+v", dc)
		}
		if taxonomy(t).Normalize("rekognition", vision.Result{Labels: labels}).Top() == it.Category {
			right++
		}
	}
	// The simulated candidate is 95 % right: its answers survive the
	// round trip through the legacy's vocabulary.
	if right < 24 {
		t.Errorf("%d/30 right after translation", right)
	}
	if e.legacy.count() != 0 {
		t.Errorf("the legacy saw %d requests at 100 %% without compare", e.legacy.count())
	}
}

// switchable answers like h until failing is set, then with 500s.
type switchable struct {
	h       http.Handler
	failing atomic.Bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.failing.Load() {
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":{"message":"boom","type":"server_error","code":null}}`, 500)
		return
	}
	s.h.ServeHTTP(w, r)
}

// TestRollback: the window's error rate crossing rollback.error_rate drops
// the share to 0 % within one evaluation; the rollback is logged, in the
// run directory's events, on /metrics; a restart stays rolled back.
func TestRollback(t *testing.T) {
	sw := &switchable{}
	clock := clockwork.NewFakeClock()
	o := envOpts{clock: clock, proxyExtra: canaryYAML("canary", "percent: 50, sticky_by: request, evaluate_every: 200ms, window: 2s, rollback: {error_rate: 20%, min_requests: 10}, compare_with_legacy: false")}
	e := newEnv(t, o)
	// The default candidate is the simulated one: wrap it.
	sw.h = e.candidate.h
	e.candidate.h = sw
	sendAll(t, e, 40, 4)
	evaluate(t, e, 200*time.Millisecond)
	if e.p.ctl.Percent() != 50 {
		t.Fatalf("healthy: percent %v", e.p.ctl.Percent())
	}
	sw.failing.Store(true)
	// Failing requests until the window crosses 20 % (its 95 % lower
	// bound) with ≥ 10 requests.
	crossed := false
	for i := 0; i < 400 && !crossed; i++ {
		sendAll(t, e, 4, 4)
		_, _, crossed = e.p.ctl.crossed(clock.Now())
	}
	if !crossed {
		t.Fatal("the window never crossed the gate")
	}
	if p := e.p.ctl.Percent(); p != 50 {
		t.Fatalf("percent %v before any evaluation, want 50", p)
	}
	evaluate(t, e, 200*time.Millisecond) // one evaluation
	if p := e.p.ctl.Percent(); p != 0 {
		t.Fatalf("percent %v one evaluation after the crossing, want 0", p)
	}
	mresp, _ := http.Get(e.adminURL + "/metrics")
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(mb), "cutover_canary_rollbacks_total 1") || !strings.Contains(string(mb), "cutover_canary_percent 0") {
		t.Errorf("metrics lack the rollback:\n%s", grepLines(string(mb), "cutover_canary"))
	}
	// After the rollback every client is answered by the legacy.
	for i, r := range sendAll(t, e, 50, 4) {
		if err := clientOK(r); err != nil {
			t.Fatalf("after rollback, request %d: %v", i, err)
		}
	}
	stateFile := e.p.ctl.store.(fileStore).path
	e.stop(t)
	d, _ := record.Open(e.dir)
	var ev *record.Event
	for i := range d.Run.Events {
		if d.Run.Events[i].Kind == "canary_rollback" {
			ev = &d.Run.Events[i]
		}
	}
	if ev == nil || !strings.Contains(ev.Detail, "window error rate") || ev.Data["requests"] == nil {
		t.Fatalf("run.json events: %+v", d.Run.Events)
	}
	if !strings.Contains(e.logs.String(), "canary rollback") {
		t.Error("the rollback was not logged")
	}
	// A restart with the same state file stays rolled back.
	e2 := newEnv(t, envOpts{proxyExtra: canaryYAML("canary", fmt.Sprintf("percent: 50, state_file: %q", stateFile))})
	if p := e2.p.ctl.Percent(); p != 0 || !canaryState(e2).RolledBack {
		t.Errorf("after a restart: percent %v rolled back %v, want 0 and true", p, canaryState(e2).RolledBack)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSteps: the controller advances through the steps while their gates
// pass, and a restart resumes at the step it was on, never higher.
func TestSteps(t *testing.T) {
	steps := "steps: [{percent: 10, min_duration: 1ms, min_requests: 20, gates: {error_rate: 50%}}, {percent: 50, min_duration: 1ms, min_requests: 20, gates: {error_rate: 50%}}, {percent: 100, min_duration: 1ms, min_requests: 20}]"
	e := newEnv(t, envOpts{clock: clockwork.NewFakeClock(), proxyExtra: canaryYAML("canary", "sticky_by: request, evaluate_every: 50ms, compare_with_legacy: false, "+steps)})
	if p := e.p.ctl.Percent(); p != 10 {
		t.Fatalf("start at %v, want the first step's 10", p)
	}
	for i := 0; i < 100 && !canaryState(e).Complete; i++ {
		sendAll(t, e, 40, 8)
		evaluate(t, e, 50*time.Millisecond)
	}
	st := canaryState(e)
	if !st.Complete || st.Percent != 100 || st.Step != 2 {
		t.Fatalf("state after traffic: %+v", st)
	}
	var kinds []string
	for _, h := range st.History {
		kinds = append(kinds, fmt.Sprintf("%s→%g", h.Kind, h.To))
	}
	if got := strings.Join(kinds, " "); got != "start→10 advance→50 advance→100 complete→100" {
		t.Errorf("history %s", got)
	}
	// A state file saying step 2 (50 %): a restart resumes there, not at
	// the configured start and not higher.
	f := filepath.Join(t.TempDir(), "state.json")
	b, _ := json.Marshal(CanaryState{Primary: "legacy", Candidate: "holysheep", Step: 1, Percent: 50})
	os.WriteFile(f, b, 0o644)
	e2 := newEnv(t, envOpts{proxyExtra: canaryYAML("canary", fmt.Sprintf("state_file: %q, %s", f, steps))})
	if p, s := e2.p.ctl.Percent(), canaryState(e2).Step; p != 50 || s != 1 {
		t.Errorf("resumed at step %d, %v %%; want step 1, 50 %%", s, p)
	}
	// A failing step rolls back.
	e3 := newEnv(t, envOpts{clock: clockwork.NewFakeClock(), candidateURL: "http://127.0.0.1:1", proxyExtra: canaryYAML("canary",
		"sticky_by: request, evaluate_every: 50ms, rollback: {error_rate: 100%}, "+steps)})
	for i := 0; i < 50 && e3.p.ctl.Percent() != 0; i++ {
		sendAll(t, e3, 40, 8)
		evaluate(t, e3, 50*time.Millisecond)
	}
	if st := canaryState(e3); st.Percent != 0 || !strings.Contains(st.History[len(st.History)-1].Reason, "gates failed") {
		t.Errorf("failing step: %+v", st)
	}
}

// canaryState reads the controller's state under its lock (its
// evaluation loop writes it concurrently).
func canaryState(e *env) CanaryState { return e.p.ctl.state() }

// evaluate advances the env's fake clock by d (one evaluate_every) and
// waits until the controller's loop has judged the gates at that tick.
func evaluate(t *testing.T, e *env, d time.Duration) {
	t.Helper()
	fc := e.clock.(*clockwork.FakeClock)
	before := e.p.ctl.evaluations.Load()
	fc.Advance(d)
	deadline := time.Now().Add(10 * time.Second)
	for e.p.ctl.evaluations.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the controller never evaluated the tick")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAdminAPI: mutations need the bearer token; concurrent admin calls and
// traffic are race-free; the admin listener will not start on a
// non-loopback address without a token.
func TestAdminAPI(t *testing.T) {
	t.Setenv("CUTOVER_ADMIN_TOKEN", "tok-Qm83")
	e := newEnv(t, envOpts{proxyExtra: canaryYAML("canary", "percent: 10")})
	post := func(path, token, body string) int {
		req, _ := http.NewRequest("POST", e.adminURL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/admin/canary", "/admin/pause", "/admin/resume", "/admin/rollback", "/admin/promote"} {
		if c := post(path, "", `{"percent": 90}`); c != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", path, c)
		}
		if c := post(path, "wrong", `{"percent": 90}`); c != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", path, c)
		}
	}
	if e.p.ctl.Percent() != 10 {
		t.Fatalf("an unauthenticated call changed the share: %v", e.p.ctl.Percent())
	}
	if c := post("/admin/canary", "tok-Qm83", `{"percent": 101}`); c != http.StatusBadRequest {
		t.Errorf("percent 101: %d", c)
	}
	if c := post("/admin/canary", "tok-Qm83", `{"percent": 30}`); c != 200 || e.p.ctl.Percent() != 30 {
		t.Errorf("set 30: %d, percent %v", c, e.p.ctl.Percent())
	}
	// Concurrent admin calls and traffic.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 5 {
			case 0:
				post("/admin/canary", "tok-Qm83", fmt.Sprintf(`{"percent": %d}`, i%100))
			case 1:
				post("/admin/pause", "tok-Qm83", "")
			case 2:
				post("/admin/resume", "tok-Qm83", "")
			case 3:
				post("/admin/promote", "tok-Qm83", "")
			case 4:
				resp, err := http.Get(e.adminURL + "/admin/canary")
				if err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	for i, r := range sendAll(t, e, 200, 8) {
		if err := clientOK(r); err != nil {
			t.Errorf("request %d during admin calls: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if c := post("/admin/rollback", "tok-Qm83", ""); c != 200 || e.p.ctl.Percent() != 0 {
		t.Errorf("rollback: %d, percent %v", c, e.p.ctl.Percent())
	}
	resp, _ := http.Get(e.adminURL + "/admin/canary")
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st["state"].(map[string]any)["rolled_back"] != true {
		t.Errorf("GET /admin/canary: %v", st["state"])
	}
	// Without the token in the environment, mutations are disabled …
	t.Setenv("CUTOVER_ADMIN_TOKEN", "")
	e2 := newEnv(t, envOpts{proxyExtra: canaryYAML("canary", "percent: 10")})
	req, _ := http.NewRequest("POST", e2.adminURL+"/admin/rollback", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("no token configured: %v %v", resp.StatusCode, err)
	}
	// … and a non-loopback admin address is refused.
	if _, _, err := e2.p.Listen("127.0.0.1:0", "0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("non-loopback admin without a token: %v", err)
	}
}

// TestHedge: a slow candidate with hedge_after: the legacy is asked after
// 40 ms and its answer wins; the candidate call is cancelled and recorded
// as such (not as an error).
func TestHedge(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	e := newEnv(t, envOpts{candidate: slow, proxyExtra: canaryYAML("canary", "percent: 100, candidate_timeout: 2s, hedge_after: 40ms, compare_with_legacy: false")})
	start := time.Now()
	for i, r := range sendAll(t, e, 40, 8) {
		if err := clientOK(r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("40 hedged requests took %v: the hedge did not answer early", el)
	}
	time.Sleep(100 * time.Millisecond)
	obs := e.observations(t)
	cancelled, served := 0, 0
	for _, o := range obs {
		if o.Role == record.RoleCandidate && o.Code == record.CodeCancelled && o.Route == "hedge" {
			cancelled++
		}
		if o.Role == record.RolePrimary && o.Served && o.Route == "hedge" {
			served++
		}
	}
	if cancelled != 40 || served != 40 {
		t.Errorf("cancelled candidate calls %d, legacy answers served %d; want 40 and 40", cancelled, served)
	}
}

// TestCutoverBreaker: in cutover mode the candidate answers everything;
// when it fails the breaker opens (state on /metrics), the legacy answers
// without the candidate being asked, and after the cooldown probes close
// it again once the candidate recovers.
func TestCutoverBreaker(t *testing.T) {
	sw := &switchable{}
	clock := clockwork.NewFakeClock()
	e := newEnv(t, envOpts{clock: clock, proxyExtra: "mode: cutover\ncanary: {candidate_timeout: 1s, compare_with_legacy: false}\nbreaker: {failure_rate: 50%, min_requests: 10, window: 5s, cooldown: 3s, half_open_probes: 3}"})
	sw.h = e.candidate.h
	e.candidate.h = sw
	for i, r := range sendAll(t, e, 30, 4) {
		if err := clientOK(r); err != nil {
			t.Fatalf("healthy cutover, request %d: %v", i, err)
		}
	}
	if e.legacy.count() != 0 {
		t.Errorf("healthy cutover: the legacy saw %d requests", e.legacy.count())
	}
	sw.failing.Store(true)
	for i, r := range sendAll(t, e, 60, 1) {
		if err := clientOK(r); err != nil {
			t.Fatalf("failing candidate, request %d: %v (the legacy must answer)", i, err)
		}
	}
	if st := e.p.brk.status()["state"]; st != "open" {
		t.Fatalf("breaker %v after 60 failures", st)
	}
	asked := e.candidate.count()
	sendAll(t, e, 20, 1)
	if e.candidate.count() != asked {
		t.Errorf("an open breaker still sent %d requests to the candidate", e.candidate.count()-asked)
	}
	mresp, _ := http.Get(e.adminURL + "/metrics")
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !bytes.Contains(mb, []byte("cutover_breaker_state 2")) {
		t.Errorf("metrics: %s", grepLines(string(mb), "breaker"))
	}
	sw.failing.Store(false)
	sendAll(t, e, 5, 1)
	if e.candidate.count() != asked {
		t.Errorf("an open breaker let %d requests through before its cooldown", e.candidate.count()-asked)
	}
	clock.Advance(3100 * time.Millisecond) // the cooldown, on simulated time
	sendAll(t, e, 10, 1)
	if st := e.p.brk.status()["state"]; st != "closed" {
		t.Errorf("breaker %v after the candidate recovered and the cooldown passed", st)
	}
}
