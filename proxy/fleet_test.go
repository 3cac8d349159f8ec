package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/sim"
)

// natsServer is a private nats-server with JetStream that a test can stop
// and start again on the same port and storage.
type natsServer struct {
	t    *testing.T
	bin  string
	port string
	dir  string
	cmd  *exec.Cmd
}

// startNATS starts a private nats-server, or skips the test with the
// reason when it cannot: these tests stop and restart NATS, so they do
// not use the shared server CUTOVER_TEST_NATS names.
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	if os.Getenv("CUTOVER_TEST_NATS") == "" {
		t.Skip("skipping: CUTOVER_TEST_NATS is unset (these tests start their own nats-server, which the machine has when it runs NATS)")
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/nats-server"); e == nil {
			bin = "/usr/sbin/nats-server"
		} else {
			t.Skip("skipping: no nats-server binary on PATH or in /usr/sbin (Debian package nats-server)")
		}
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n := &natsServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) url() string { return "nats://127.0.0.1:" + n.port }

func (n *natsServer) start() {
	n.cmd = exec.Command(n.bin, "-a", "127.0.0.1", "-p", n.port, "-js", "-sd", n.dir)
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+n.port); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.t.Fatal("nats-server did not start")
}

func (n *natsServer) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		n.cmd = nil
	}
}

// fleetOf starts replicas A, B and C in front of one legacy and one
// candidate, sharing a bucket on n.
func fleetOf(t *testing.T, n *natsServer, canary string, cand http.Handler) ([]*env, *switchable) {
	t.Helper()
	bucket := fmt.Sprintf("cutover-test-%d", rand.Uint32())
	sw := &switchable{h: cand}
	cs := httptest.NewServer(sw)
	t.Cleanup(cs.Close)
	var out []*env
	var legacy string
	for i, name := range []string{"A", "B", "C"} {
		o := envOpts{candidateURL: cs.URL, primaryURL: legacy,
			proxyExtra: fmt.Sprintf("mode: canary\ncanary: {%s, state_file: %s}\nfleet: {nats_url: %q, bucket: %s, name: %s}",
				canary, filepath.Join(t.TempDir(), "state.json"), n.url(), bucket, name)}
		e := newEnv(t, o)
		if i == 0 {
			legacy = e.legacyURL
		}
		out = append(out, e)
	}
	return out, sw
}

// holysheepSim is a simulated OpenAI-compatible candidate.
func holysheepSim(t *testing.T) http.Handler {
	sc, _ := config.Parse("s.yaml", []byte(fmt.Sprintf(`simulate:
  hs: {format: openai, listen: "127.0.0.1:0", credentials: {api_key: %s}, profile: {latency: {median: 2ms, p99: 5ms}, accuracy: {misclassification: {default: 0.05}}}}`, candidateKey)))
	m, err := sim.NewModel("hs", sc.Simulate["hs"], taxonomy(t), fixtureSet(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sim.NewServer(m, sc.Simulate["hs"], 1)
	return s
}

func within(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func percents(es []*env) []float64 {
	var out []float64
	for _, e := range es {
		if !e.stopped {
			out = append(out, e.p.ctl.Percent())
		}
	}
	return out
}

func allAt(es []*env, pct float64) bool {
	for _, p := range percents(es) {
		if p != pct {
			return false
		}
	}
	return true
}

func postAdmin(t *testing.T, e *env, path, body string) int {
	r, _ := http.NewRequest(http.MethodPost, e.adminURL+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer tok-Flt7")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFleetSharesTheShare: a share set on one replica is applied by all
// three within a second; `cutover canary status`'s source lists them.
func TestFleetSharesTheShare(t *testing.T) {
	t.Setenv("CUTOVER_ADMIN_TOKEN", "tok-Flt7")
	n := startNATS(t)
	es, _ := fleetOf(t, n, "percent: 10, sticky_by: request, evaluate_every: 200ms, compare_with_legacy: false", holysheepSim(t))
	if !allAt(es, 10) {
		t.Fatalf("start: %v, want 10 everywhere", percents(es))
	}
	set := time.Now()
	if c := postAdmin(t, es[0], "/admin/canary", `{"percent": 50}`); c != 200 {
		t.Fatalf("POST /admin/canary on A: %d", c)
	}
	within(t, time.Second, "50 % on all three", func() bool { return allAt(es, 50) })
	t.Logf("applied by all three in %v", time.Since(set))
	within(t, 3*time.Second, "three replicas published", func() bool { return len(es[1].p.member.replicas()) == 3 })
	resp, err := http.Get(es[2].adminURL + "/admin/canary")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Fleet struct {
			Replicas []ReplicaStatus `json:"replicas"`
		} `json:"fleet"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if len(st.Fleet.Replicas) != 3 || st.Fleet.Replicas[0].Name != "A" {
		t.Errorf("GET /admin/canary replicas: %+v", st.Fleet.Replicas)
	}
}

// TestFleetRollsBackOnce: with the candidate dead, the lease holder judges
// the fleet's pooled window: exactly one rollback, all three at 0 %
// within one evaluation, one canary_rollback event in each replica's run.
func TestFleetRollsBackOnce(t *testing.T) {
	n := startNATS(t)
	es, sw := fleetOf(t, n, "percent: 50, sticky_by: request, evaluate_every: 200ms, window: 10s, rollback: {error_rate: 20%, min_requests: 30}, compare_with_legacy: false", holysheepSim(t))
	for _, e := range es {
		sendAll(t, e, 12, 4)
	}
	sw.failing.Store(true)
	// Each replica alone stays under min_requests (10 failures each): only
	// the pooled window (30) can cross.
	for _, e := range es {
		sendAll(t, e, 20, 4)
	}
	within(t, 2*time.Second, "all three at 0 %", func() bool { return allAt(es, 0) })
	st := es[0].p.ctl.state()
	rollbacks := 0
	for _, h := range st.History {
		if h.Kind == "rollback" {
			rollbacks++
			if !strings.Contains(h.Reason, "window error rate") {
				t.Errorf("rollback reason %q", h.Reason)
			}
		}
	}
	if rollbacks != 1 {
		t.Errorf("%d rollbacks in the shared history, want 1", rollbacks)
	}
	for _, e := range es {
		e.stop(t)
		d, _ := record.Open(e.dir)
		k := 0
		for _, ev := range d.Run.Events {
			if ev.Kind == "canary_rollback" {
				k++
			}
		}
		if k != 1 {
			t.Errorf("%s: %d canary_rollback events in run.json, want 1", e.p.member.name, k)
		}
	}
}

// TestFleetLeaseMoves: killing the replica that holds the lease hands the
// judging to another within the lease's TTL.
func TestFleetLeaseMoves(t *testing.T) {
	n := startNATS(t)
	es, _ := fleetOf(t, n, "percent: 10, sticky_by: request, evaluate_every: 200ms, compare_with_legacy: false", holysheepSim(t))
	holder := func() *env {
		for _, e := range es {
			if !e.stopped && e.p.member.holder.Load() {
				return e
			}
		}
		return nil
	}
	within(t, 3*time.Second, "a lease holder", func() bool { return holder() != nil })
	h := holder()
	// Kill it: its lease is left to expire (no orderly release).
	h.p.member.holder.Store(false)
	h.p.member.store.Close()
	h.stop(t)
	within(t, 3*time.Second, "another lease holder", func() bool { e := holder(); return e != nil && e != h })
	next := holder()
	before := next.p.ctl.evaluations.Load()
	within(t, time.Second, "the new holder judging", func() bool { return next.p.ctl.evaluations.Load() > before })
}

// TestFleetWithoutNATS: with NATS down clients are unaffected, no share
// rises (a change is refused), the replicas say fleet_disconnected on
// /metrics and /readyz; a replica that judged a rollback alone writes it
// when NATS returns, and every replica adopts it.
func TestFleetWithoutNATS(t *testing.T) {
	t.Setenv("CUTOVER_ADMIN_TOKEN", "tok-Flt7")
	n := startNATS(t)
	es, sw := fleetOf(t, n, "percent: 50, sticky_by: request, evaluate_every: 200ms, window: 10s, rollback: {error_rate: 20%, min_requests: 10}, compare_with_legacy: false", holysheepSim(t))
	n.stop()
	within(t, 3*time.Second, "disconnected", func() bool { return !es[0].p.member.connected() })
	for i, r := range sendAll(t, es[1], 20, 4) {
		if err := clientOK(r); err != nil {
			t.Fatalf("request %d with NATS down: %v", i, err)
		}
	}
	if c := postAdmin(t, es[0], "/admin/canary", `{"percent": 80}`); c != http.StatusServiceUnavailable {
		t.Errorf("raising the share with NATS down: %d, want 503", c)
	}
	if m := scrape(t, es[0], "cutover_fleet_disconnected"); !strings.Contains(m, "cutover_fleet_disconnected 1") {
		t.Errorf("metrics: %s", m)
	}
	resp, _ := http.Get(es[0].adminURL + "/readyz")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "fleet_disconnected") {
		t.Errorf("/readyz: %d %q", resp.StatusCode, b)
	}
	// The candidate dies; replica C, alone, sees its own window cross.
	sw.failing.Store(true)
	for i := 0; i < 20 && es[2].p.ctl.Percent() != 0; i++ {
		sendAll(t, es[2], 10, 4)
		time.Sleep(250 * time.Millisecond)
	}
	if p := es[2].p.ctl.Percent(); p != 0 {
		t.Fatalf("C did not roll back alone: %v", p)
	}
	if a, b := es[0].p.ctl.Percent(), es[1].p.ctl.Percent(); a != 50 || b != 50 {
		t.Errorf("A and B at %v and %v with NATS down, want 50 (kept, never raised)", a, b)
	}
	n.start()
	deadline := time.Now().Add(10 * time.Second)
	for !allAt(es, 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !allAt(es, 0) {
		t.Logf("C log:\n%s", grepLines(es[2].logs.String(), "fleet"))
		t.Logf("A log:\n%s", grepLines(es[0].logs.String(), "fleet"))
		t.Fatalf("percents %v once NATS is back, want 0 everywhere", percents(es))
	}
	if st := es[0].p.ctl.state(); !st.RolledBack {
		t.Errorf("the fleet's state after NATS returned: %+v", st)
	}
	within(t, 5*time.Second, "connected again", func() bool {
		return strings.Contains(scrape(t, es[1], "cutover_fleet_disconnected"), "\ncutover_fleet_disconnected 0")
	})
}

// TestFleetSpendCap: three replicas mirroring at 200 requests/s spend at
// most the fleet's daily cap plus the calls in flight.
func TestFleetSpendCap(t *testing.T) {
	n := startNATS(t)
	bucket := fmt.Sprintf("cutover-spend-%d", rand.Uint32())
	cs := httptest.NewServer(holysheepSim(t))
	defer cs.Close()
	var es []*env
	var legacy string
	for i, name := range []string{"A", "B", "C"} {
		e := newEnv(t, envOpts{candidateURL: cs.URL, primaryURL: legacy, mirror: "max_daily_spend: 0.002",
			proxyExtra: fmt.Sprintf("fleet: {nats_url: %q, bucket: %s, name: %s}", n.url(), bucket, name)})
		if i == 0 {
			legacy = e.legacyURL
		}
		es = append(es, e)
	}
	imgs := es[0].images(t)
	// 200 requests/s for 2 s, spread over the three replicas.
	tick := time.NewTicker(5 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			es[i%3].send(t, fmt.Sprint("s", i), imgs[i%len(imgs)])
		}(i)
	}
	tick.Stop()
	wg.Wait()
	var spent, maxCost float64
	var mirrored int
	for _, e := range es {
		for _, o := range e.observations(t) {
			if o.Role == record.RoleCandidate {
				mirrored++
				spent += o.Cost
				maxCost = max(maxCost, o.Cost)
			}
		}
	}
	inFlight := 3 * 64 // three replicas' max_in_flight
	if spent > 0.002+float64(inFlight)*maxCost {
		t.Errorf("the fleet spent %.5f with a cap of 0.002 (+ %d calls in flight at most %.6f)", spent, inFlight, maxCost)
	}
	if mirrored == 0 || mirrored >= 400 {
		t.Errorf("%d of 400 mirrored: the cap did not bite", mirrored)
	}
	t.Logf("mirrored %d of 400, spent %.5f of 0.002 (max call %.6f)", mirrored, spent, maxCost)
}
