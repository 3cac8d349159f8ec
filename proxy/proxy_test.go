package proxy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision/rekognition"
)

// sendMany sends n DetectLabels calls with conc in flight and checks every
// client answer against what the legacy sent.
func sendMany(t *testing.T, e *env, n, conc int) (ok int) {
	t.Helper()
	imgs := e.images(t)
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				seq := fmt.Sprint("r", i)
				got := e.send(t, seq, imgs[i%len(imgs)])
				if e.checkTransparent(t, seq, got) {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return ok
}

func TestShadowRecordsBothSides(t *testing.T) {
	e := newEnv(t, envOpts{})
	if ok := sendMany(t, e, 120, 8); ok != 120 {
		t.Fatalf("%d/120 transparent", ok)
	}
	obs := e.observations(t)
	byRole := map[string]int{}
	var offsets []time.Duration
	pairs := map[string]map[string]record.Observation{}
	for _, o := range obs {
		byRole[o.Role]++
		if pairs[o.PairID] == nil {
			pairs[o.PairID] = map[string]record.Observation{}
		}
		pairs[o.PairID][o.Role] = o
	}
	if byRole[record.RolePrimary] != 120 || byRole[record.RoleCandidate] != 120 {
		t.Fatalf("observations by role: %v", byRole)
	}
	for id, pr := range pairs {
		p, c := pr[record.RolePrimary], pr[record.RoleCandidate]
		if p.ImageSHA256 == "" || p.ImageSHA256 != c.ImageSHA256 || p.FixtureID == "" || p.FixtureID != c.FixtureID {
			t.Fatalf("pair %s: image/fixture not joined: %+v / %+v", id, p, c)
		}
		if p.Tags == nil || c.Tags == nil || p.LatencyNS <= 0 || c.LatencyNS <= 0 {
			t.Fatalf("pair %s: missing tags or latency", id)
		}
		if c.PromptVersion != "fashion-v1" || c.Usage == nil || c.Cost <= 0 || c.Currency != "USD" {
			t.Fatalf("candidate observation lacks prompt version/usage/cost: %+v", c)
		}
		dt := c.Time.Sub(p.Time)
		if dt < 0 {
			dt = -dt
		}
		offsets = append(offsets, dt)
	}
	// Both are sent at the same moment: the mirror starts as the primary is
	// forwarded (its decode runs meanwhile, off the request path).
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	if med := offsets[len(offsets)/2]; med > 10*time.Millisecond*raceSlowdown {
		t.Errorf("median send-time gap between primary and mirror %v, want ≤ 10ms", med)
	}
	d, _ := record.Open(e.dir)
	cov := d.Run.Coverage
	if cov.Seen != 120 || cov.Classify != 120 || cov.Mirrored != 120 {
		t.Errorf("coverage: %+v", cov)
	}
	hs, err := d.Histograms()
	if err != nil || hs["legacy"].TotalCount() != 120 || hs["holysheep"].TotalCount() != 120 {
		t.Errorf("hlogs: %v %v", hs, err)
	}
}

// candidateFaults are the candidate's failure modes of the fault matrix.
func candidateFaults() map[string]http.Handler {
	return map[string]http.Handler{
		"5s slow": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}),
		"500s": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			http.Error(w, `{"error":{"message":"boom","type":"server_error","code":null}}`, 500)
		}),
		"malformed JSON": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"choices":[{"message":{"content":"{\"categ`)
		}),
		"connection resets": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
		}),
		"50 MB response": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for i := 0; i < 50; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}),
	}
}

// TestFaultMatrix: whatever the candidate does, over 1,000 requests each the
// client receives byte-identical legacy answers, and the legacy's own errors
// (2 % server errors, 1 % throttling) pass through unchanged.
//
// Under -race each fault gets 300 requests; make test's second pass runs
// the test without the detector at 1,000.
func TestFaultMatrix(t *testing.T) {
	n := 1000
	if raceSlowdown > 1 {
		n = 300
	}
	if testing.Short() {
		n = 200
	}
	legacy := "{latency: {median: 1ms, p99: 3ms}, errors: {server_error: 0.02, throttled: 0.01}}"
	cases := candidateFaults()
	cases["down"] = nil
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			o := envOpts{legacyProfile: legacy, candidate: h, mirror: "timeout: 1s"}
			if name == "down" {
				o.candidateURL = "http://" + closedPort(t)
			}
			e := newEnv(t, o)
			if ok := sendMany(t, e, n, 16); ok != n {
				t.Fatalf("%d/%d client answers were byte-identical to the legacy's", ok, n)
			}
			legacyErrors := 0
			for i := 0; i < n; i++ {
				if ex := e.legacy.get(fmt.Sprint("r", i)); ex != nil && ex.status != 200 {
					legacyErrors++
				}
			}
			if legacyErrors == 0 {
				t.Errorf("the legacy's own errors never occurred: the pass-through is untested")
			}
			obs := e.observations(t)
			cand := 0
			for _, o := range obs {
				if o.Role == record.RoleCandidate {
					cand++
					if o.Code == "" {
						t.Fatalf("a failing candidate recorded a success: %+v", o)
					}
				}
			}
			d, _ := record.Open(e.dir)
			c := d.Run.Coverage
			var skipped int64
			for _, v := range c.Skipped {
				skipped += v
			}
			if c.Seen != int64(n) || c.Mirrored+skipped != int64(n) || int64(cand) != c.Mirrored {
				t.Errorf("coverage %+v, candidate observations %d", c, cand)
			}
		})
	}
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBadInputForwardedAsReceived: malformed requests go to the legacy byte
// for byte, are not mirrored, and are counted with a reason. (Without
// proxy.clients nothing is verified or re-signed: the legacy answers the
// unsigned requests itself; client_auth_test.go covers verified clients.)
func TestBadInputForwardedAsReceived(t *testing.T) {
	e := newEnv(t, envOpts{mirror: "max_body_bytes: 1MiB", noClients: true})
	post := func(seq, target string, body []byte) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, e.proxyURL+"/", bytes.NewReader(body))
		r.Header.Set("Content-Type", rekognition.ContentType)
		r.Header.Set("X-Amz-Target", target)
		r.Header.Set("X-Test-Seq", seq)
		return r
	}
	big := []byte(`{"Image":{"Bytes":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff, 0xd8, 0xff}, 600_000)) + `"}}`)
	cases := []struct {
		seq, target string
		body        []byte
		reason      string
	}{
		{"malformed", rekognition.Target, []byte(`{"Image":{"Bytes":`), record.SkipUndecodable},
		{"base64", rekognition.Target, []byte(`{"Image":{"Bytes":"@@@not base64@@@"}}`), record.SkipUndecodable},
		{"target", "RekognitionService.DetectFaces", []byte(`{"Image":{"Bytes":"AAAA"}}`), record.SkipNotClassify},
		{"too-large", rekognition.Target, big, record.SkipBodyTooLarge},
	}
	before := e.candidate.count()
	for _, c := range cases {
		got := do(post(c.seq, c.target, c.body))
		if !e.checkTransparent(t, c.seq, got) {
			continue
		}
		ex := e.legacy.get(c.seq)
		if !bytes.Equal(ex.reqBody, c.body) {
			t.Errorf("%s: the legacy received %d bytes, the client sent %d", c.seq, len(ex.reqBody), len(c.body))
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := e.candidate.count() - before; n != 0 {
		t.Errorf("bad input reached the candidate %d times", n)
	}
	e.stop(t)
	d, _ := record.Open(e.dir)
	for _, c := range cases {
		if d.Run.Coverage.Skipped[c.reason] == 0 {
			t.Errorf("%s: no skip counted for %s: %v", c.seq, c.reason, d.Run.Coverage.Skipped)
		}
	}
}

// TestCredentialsNeverCross: the candidate never receives the client's or
// the legacy's credentials, the legacy never the candidate's key, and no
// secret appears in logs, the run directory or /metrics.
func TestCredentialsNeverCross(t *testing.T) {
	e := newEnv(t, envOpts{})
	sendMany(t, e, 30, 4)
	resp, err := http.Get(e.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	st, _ := http.Get(e.adminURL + "/admin/status")
	status, _ := io.ReadAll(st.Body)
	st.Body.Close()
	time.Sleep(50 * time.Millisecond)
	for seq, ex := range e.candidate.ex {
		for k := range ex.reqHeader {
			if strings.HasPrefix(strings.ToLower(k), "x-amz") || k == "X-Test-Seq" {
				t.Errorf("candidate request %s carries the client's header %s", seq, k)
			}
		}
		if a := ex.reqHeader.Get("Authorization"); a != "Bearer "+candidateKey {
			t.Errorf("candidate got Authorization %q", a)
		}
	}
	for seq, ex := range e.legacy.ex {
		a := ex.reqHeader.Get("Authorization")
		if strings.Contains(a, candidateKey) || strings.Contains(a, clientAK) || !strings.Contains(a, "Credential="+legacyAK) {
			t.Errorf("legacy request %s: Authorization %q (want re-signed with the legacy's key)", seq, a)
		}
	}
	e.stop(t)
	var files bytes.Buffer
	filepath.Walk(e.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			files.Write(b)
		}
		return nil
	})
	for _, s := range append(secrets, legacyAK, clientAK) {
		for what, b := range map[string][]byte{"logs": e.logs.Bytes(), "run directory": files.Bytes(), "/metrics": metrics, "/admin/status": status} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%q appears in %s", s, what)
			}
		}
	}
	if !bytes.Contains(metrics, []byte("cutover_provider_requests_total")) || !bytes.Contains(status, []byte(`"agreement"`)) {
		t.Errorf("admin endpoints incomplete:\n%s", status)
	}
}

// TestAdminReportPage: the /report page is the handler the CLI hands in
// (the proxy itself knows nothing of reports).
func TestAdminReportPage(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the report page\n") })
	e := newEnv(t, envOpts{report: page})
	resp, err := http.Get(e.adminURL + "/report")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "the report page\n" {
		t.Errorf("GET /report: %d %q", resp.StatusCode, b)
	}
	e2 := newEnv(t, envOpts{})
	if resp, _ := http.Get(e2.adminURL + "/report"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /report without a page: %d, want 404", resp.StatusCode)
	}
}

// The admin listener serves Go's execution tracer: a trace taken while
// traffic flows is a real trace file (the format's header), not an error
// page.
func TestAdminExecutionTrace(t *testing.T) {
	e := newEnv(t, envOpts{})
	sent := make(chan int)
	go func() { sent <- sendMany(t, e, 20, 2) }()
	resp, err := http.Get(e.adminURL + "/debug/pprof/trace?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ok := <-sent; ok != 20 {
		t.Errorf("%d of 20 answers reached the client unchanged while tracing", ok)
	}
	head := b[:min(len(b), 16)]
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(head, []byte("go 1.")) || !bytes.Contains(head, []byte(" trace")) {
		t.Fatalf("GET /debug/pprof/trace: %d, %d bytes starting %q", resp.StatusCode, len(b), head)
	}
}
