package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jonboulle/clockwork"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/sim"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/rekognition"
)

// Test credentials: distinct per party so leaks can be grepped for.
const (
	legacyAK     = "AKIDLEGACYPROXY01"
	legacySK     = "legacy-secret-Zq81xPp0"
	clientAK     = "AKIDCLIENTSIDE001"
	clientSK     = "client-secret-Hh27Lm3"
	candidateKey = "sk-candidate-Ww4Tt9Yy"
)

var secrets = []string{legacySK, clientSK, candidateKey}

var (
	taxOnce sync.Once
	taxV    *vision.Taxonomy
	fxOnce  sync.Once
	fxV     *fixtures.Set
)

func taxonomy(tb testing.TB) *vision.Taxonomy {
	taxOnce.Do(func() {
		var err error
		if taxV, err = vision.LoadTaxonomy("../taxonomy.yaml"); err != nil {
			panic(err)
		}
	})
	return taxV
}

// liveAtStart is the body pool's count of buffers out that env.stop
// expects to find again once every request has finished.
var liveAtStart, candidateLiveAtStart int64

// fixtureDir holds the package's fixture set; TestMain removes it.
var fixtureDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-proxy-test-")
	if err != nil {
		panic(err)
	}
	fixtureDir = dir
	bodies.Poison(true) // a body or image read after its buffer was released shows as corrupted bytes
	bufpool.Images.Poison(true)
	bufpool.RequestBodies.Poison(true)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixtureSet is a small real fixture set shared by the tests.
func fixtureSet(tb testing.TB) *fixtures.Set {
	fxOnce.Do(func() {
		var err error
		if fxV, err = fixtures.Generate(fixtureDir, taxonomy(tb), fixtures.GenerateOptions{N: 60, Seed: 11}); err != nil {
			panic(err)
		}
	})
	return fxV
}

// captured is one request as a server saw it and what it answered.
type captured struct {
	reqBody   []byte
	reqHeader http.Header
	status    int
	header    http.Header
	body      []byte
}

// capture wraps a handler and keeps every captured by X-Test-Seq.
type capture struct {
	h  http.Handler
	mu sync.Mutex
	ex map[string]*captured
	n  int
}

type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *captureWriter) WriteHeader(s int) { c.status = s; c.ResponseWriter.WriteHeader(s) }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	c.buf.Write(b)
	return c.ResponseWriter.Write(b)
}
func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	cw := &captureWriter{ResponseWriter: w}
	c.h.ServeHTTP(cw, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ex == nil {
		c.ex = map[string]*captured{}
	}
	c.n++
	c.ex[r.Header.Get("X-Test-Seq")] = &captured{reqBody: body, reqHeader: r.Header.Clone(), status: cw.status, header: w.Header().Clone(), body: cw.buf.Bytes()}
}

func (c *capture) get(seq string) *captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ex[seq]
}

func (c *capture) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// env is a running proxy between a simulated legacy and a candidate.
type env struct {
	cfg       *config.Config
	clock     clockwork.Clock
	cancel    context.CancelFunc
	done      chan error
	runErr    error
	p         *Proxy
	rec       *record.Writer
	dir       string
	proxyURL  string
	adminURL  string
	legacy    *capture
	legacyURL string
	candidate *capture
	logs      *bytes.Buffer
	stopped   bool
}

type envOpts struct {
	legacyProfile string
	candidate     http.Handler // nil: a simulated holysheep (openai)
	mirror        string       // extra YAML under proxy.mirror
	proxyExtra    string       // extra YAML under proxy
	candidateURL  string       // overrides the candidate's base URL (e.g. a closed port)
	scale         float64
	clock         clockwork.Clock // nil: the real clock
	report        http.Handler    // the admin /report page
	primaryURL    string          // overrides the legacy's base URL (a misbehaving server)
	primaryExtra  string          // extra YAML in the legacy provider, e.g. "timeout: 300ms"
	noClients     bool            // no proxy.clients: nothing is verified or re-signed
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	tx, fx := taxonomy(t), fixtureSet(t)
	if o.legacyProfile == "" {
		o.legacyProfile = "{latency: {median: 2ms, p99: 5ms}, accuracy: {misclassification: {fashion: 0.23, default: 0.1}}}"
	}
	simCfg := fmt.Sprintf(`
models:
  gemini-2.5-flash: {input_per_million: 0.30, cached_input_per_million: 0.075, output_per_million: 2.50}
simulate:
  legacy: {format: rekognition, listen: "127.0.0.1:0", credentials: {access_key_id: %s, secret_access_key: %s}, profile: %s}
  holysheep: {format: openai, listen: "127.0.0.1:0", credentials: {api_key: %s},
              profile: {latency: {median: 2ms, p99: 5ms}, accuracy: {misclassification: {default: 0.05}}}}
`, legacyAK, legacySK, o.legacyProfile, candidateKey)
	sc, err := config.Parse("sim.yaml", []byte(simCfg))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{logs: &bytes.Buffer{}}
	serve := func(name string) *httptest.Server {
		m, err := sim.NewModel(name, sc.Simulate[name], tx, fx, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := sim.NewServer(m, sc.Simulate[name], o.scale)
		return httptest.NewServer(s)
	}
	legacySrv := serve("legacy")
	e.legacy = &capture{h: legacySrv.Config.Handler}
	legacyFront := httptest.NewServer(e.legacy)
	t.Cleanup(func() { legacyFront.Close(); legacySrv.Close() })
	e.legacyURL = legacyFront.URL
	candURL := o.candidateURL
	if candURL == "" {
		h := o.candidate
		if h == nil {
			cs := serve("holysheep")
			t.Cleanup(cs.Close)
			h = cs.Config.Handler
		}
		e.candidate = &capture{h: h}
		cf := httptest.NewServer(e.candidate)
		t.Cleanup(cf.Close)
		candURL = cf.URL
	}
	primaryURL, primaryExtra := e.legacyURL, ""
	if o.primaryURL != "" {
		primaryURL = o.primaryURL
	}
	if o.primaryExtra != "" {
		primaryExtra = ", " + o.primaryExtra
	}
	clients := fmt.Sprintf("  clients: [{name: catalogue, access_key_id: %s, secret_access_key: %s}]", clientAK, clientSK)
	if o.noClients {
		clients = ""
	}
	yaml := fmt.Sprintf(`
models:
  gemini-2.5-flash: {input_per_million: 0.30, cached_input_per_million: 0.075, output_per_million: 2.50}
providers:
  legacy: {format: rekognition, base_url: "%s", region: ap-southeast-1, credentials: {access_key_id: %s, secret_access_key: %s},
           pricing: {tiers: [{per_1000: 1.75}]}%s}
  holysheep: {format: openai, base_url: "%s/v1", model: gemini-2.5-flash, credentials: {api_key: %s}, timeout: 2s}
proxy:
  primary: legacy
  candidate: holysheep
  shutdown_timeout: 5s
%s
%s
  mirror:
    max_in_flight: 64
%s
`, primaryURL, legacyAK, legacySK, primaryExtra, candURL, candidateKey, clients, indentYAML(o.proxyExtra, 2), indentYAML(o.mirror, 4))
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "proxy.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	cfg.Fixtures = ""
	e.cfg = cfg
	e.dir = filepath.Join(t.TempDir(), "run")
	e.rec, err = record.Create(e.dir, record.Run{Kind: "proxy", Mode: "shadow"}, record.Options{HlogInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.clock = o.clock
	if e.clock == nil {
		e.clock = clockwork.NewRealClock()
	}
	e.p, err = New(cfg, tx, e.rec, Options{Logger: logger, Fixtures: fx, Clock: e.clock, Report: o.report})
	if err != nil {
		t.Fatal(err)
	}
	addr, admin, err := e.p.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.proxyURL, e.adminURL = "http://"+addr, "http://"+admin
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.p.Run(ctx) }()
	t.Cleanup(func() { e.stop(t) })
	return e
}

func indentYAML(s string, n int) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (e *env) stop(t *testing.T) {
	if e.stopped {
		return
	}
	e.stopped = true
	e.cancel()
	e.runErr = <-e.done
	if err := e.rec.Close(); err != nil {
		t.Errorf("closing the recorder: %v", err)
	}
	// Every request body's buffer, the client's and the candidate's, is
	// back in its pool: no path kept a reference (the transport may close
	// a body just after RoundTrip).
	for _, pool := range []struct {
		name  string
		p     *bufpool.Pool
		start *int64
	}{{"client request body", &bodies, &liveAtStart}, {"candidate request body", &bufpool.RequestBodies, &candidateLiveAtStart}} {
		deadline := time.Now().Add(3 * time.Second)
		for pool.p.Live() != *pool.start && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := pool.p.Live() - *pool.start; n != 0 {
			t.Errorf("%d %s buffers were never released", n, pool.name)
			*pool.start = pool.p.Live()
		}
	}
}

// client signs DetectLabels for the proxy's host with the client's own keys.
func (e *env) client() *rekognition.Codec {
	return rekognition.NewCodec(e.proxyURL, "ap-southeast-1", aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK})
}

// result is what a client received.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
	sent   []byte // the request body, when send made it
}

// send posts one DetectLabels call with image b through the proxy.
func (e *env) send(t testing.TB, seq string, b []byte) result {
	hr, err := e.client().NewRequest(context.Background(), vision.Request{Image: vision.NewImage(b), MaxLabels: 10,
		Attributes: []vision.AttributeKind{vision.KindColor}})
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("X-Test-Seq", seq)
	sent, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	bufpool.DiscardRequest(hr) // the body is kept as sent: its pooled buffer goes back
	hr.Body.Close()
	hr.Body = io.NopCloser(bytes.NewReader(sent))
	hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(sent)), nil }
	res := do(hr)
	res.sent = sent
	return res
}

func do(hr *http.Request) result {
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// checkTransparent: the client got exactly what the legacy sent.
func (e *env) checkTransparent(t testing.TB, seq string, got result) bool {
	t.Helper()
	if got.err != nil {
		t.Errorf("%s: client error %v", seq, got.err)
		return false
	}
	ex := e.legacy.get(seq)
	if ex == nil {
		t.Errorf("%s: the legacy never saw the request", seq)
		return false
	}
	if got.sent != nil && !bytes.Equal(got.sent, ex.reqBody) {
		t.Errorf("%s: the legacy received %d bytes that differ from the %d the client sent", seq, len(ex.reqBody), len(got.sent))
		return false
	}
	if got.status != ex.status || !bytes.Equal(got.body, ex.body) {
		t.Errorf("%s: client got %d (%d bytes), legacy sent %d (%d bytes)", seq, got.status, len(got.body), ex.status, len(ex.body))
		return false
	}
	for k, vs := range ex.header {
		if g := got.header.Values(k); strings.Join(g, ",") != strings.Join(vs, ",") {
			t.Errorf("%s: header %s: client got %q, legacy sent %q", seq, k, g, vs)
			return false
		}
	}
	return true
}

func (e *env) images(t testing.TB) [][]byte {
	fx := fixtureSet(t)
	var out [][]byte
	for _, it := range fx.Items {
		b, err := fx.ReadImage(it)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// observations reads back the run directory after stop.
func (e *env) observations(t *testing.T) []record.Observation {
	e.stop(t)
	d, err := record.Open(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Observation
	if err := d.Observations(func(o record.Observation) error { out = append(out, o); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func tlsWithRoots(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }

// serveProxy listens on loopback and runs p until the returned stop is
// called; stop returns Run's error.
func serveProxy(t *testing.T, p *Proxy) (addr, admin string, stop func() error) {
	t.Helper()
	addr, admin, err := p.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return addr, admin, stop
}
