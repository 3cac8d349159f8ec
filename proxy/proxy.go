// Package proxy is cutover's inline front end: a transparent reverse and
// forward (TLS-intercepting) proxy built on github.com/elazarl/goproxy that
// answers clients from the primary (legacy) API, mirrors classification
// calls to the candidate off the request path, and records both.
//
// Its first duty is to change nothing for the client: the primary's status,
// headers (minus hop-by-hop) and body bytes reach the client unchanged, and
// nothing the candidate does — slow, down, wrong, huge — can delay or fail a
// client request. Its second is to measure faithfully.
package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/internal/h1"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
	"github.com/cutover/cutover/vision/rekognition"
)

// Proxy is one running shadow proxy.
type Proxy struct {
	cfg *config.Config
	tx  *vision.Taxonomy
	fx  *fixtures.Set
	rec *record.Writer
	log *slog.Logger

	primaryName, candidateName string
	primary, candidate         *config.Provider
	primaryServer              vision.ServerCodec // reads the legacy's requests
	primaryClient              vision.ClientCodec // reads its answers; re-signs
	candidateClient            *vision.Client
	candidateLimit             *rate.Limiter
	primaryURL                 *url.URL
	transport                  *h1.Transport
	candidateTransport         *h1.Transport
	gp                         *goproxy.ProxyHttpServer
	intercept                  map[string]bool
	scrub                      *strings.Replacer

	mirrorTimeout time.Duration
	cpu           chan struct{} // mirror CPU slots: GOMAXPROCS−1, at least 1
	inFlight      atomic.Int64
	queueBytes    atomic.Int64
	dedupe        sync.Map // sha → time mirrored
	budget        budget

	pairs pairs
	met   *metrics

	requests     sync.WaitGroup // client requests until their body is sent
	recordings   sync.WaitGroup // primary answers being decoded and recorded
	mirrors      sync.WaitGroup
	mirrorCtx    context.Context
	stopMirrors  context.CancelFunc
	shuttingDown atomic.Bool
	started      time.Time
	srv, admin   *http.Server
	sweepStop    chan struct{}
	idPrefix     string
	idSeq        atomic.Uint64
	reportSem    chan struct{} // one /report build at a time

	ctl        *controller // canary and cutover modes
	breaker    *breaker    // cutover mode
	adminToken string
}

// Options are what the CLI passes besides the config.
type Options struct {
	Logger *slog.Logger
	// Fixtures give ground truth by image SHA-256 (nil: none).
	Fixtures *fixtures.Set
}

// New prepares a proxy writing to rec. cfg must have a valid proxy section.
func New(cfg *config.Config, tx *vision.Taxonomy, rec *record.Writer, opt Options) (*Proxy, error) {
	pc := cfg.Proxy
	p := &Proxy{cfg: cfg, tx: tx, fx: opt.Fixtures, rec: rec, log: opt.Logger,
		primaryName: pc.Primary, candidateName: pc.Candidate,
		primary: cfg.Providers[pc.Primary], candidate: cfg.Providers[pc.Candidate], reportSem: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if p.primary == nil || p.candidate == nil {
		return nil, fmt.Errorf("proxy.primary %q and proxy.candidate %q must name providers", pc.Primary, pc.Candidate)
	}
	var err error
	if p.primaryServer, err = formats.ServerCodec(p.primary.Format); err != nil {
		return nil, err
	}
	if p.primaryClient, err = formats.ClientCodec(cfg, tx, p.primary); err != nil {
		return nil, err
	}
	if p.primaryURL, err = url.Parse(p.primary.BaseURL.String()); err != nil {
		return nil, err
	}
	tlsConf, err := upstreamTLS(pc.UpstreamCAFile)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	// Both upstreams are called through internal/h1: an HTTP/1.1 client
	// that writes a request up to 60 KiB in one write with its headers and
	// reads the answer on the calling goroutine. net/http's Transport
	// flushes the headers of a pooled body on their own (two writes, and
	// the upstream woken twice) and hands every call across two goroutines
	// of its own; at saturation the switch took about 15 % off the proxy's
	// CPU per request. Requests go once, never retried, except an
	// idempotent one whose reused connection turned out closed.
	p.transport = &h1.Transport{DialContext: dialer.DialContext, TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 1024}
	// The candidate gets its own pool: a hung candidate cannot take the
	// primary's connections.
	p.candidateTransport = &h1.Transport{DialContext: dialer.DialContext, TLSClientConfig: tlsConf.Clone(), MaxIdleConnsPerHost: 512}
	if p.candidateClient, err = formats.NewClient(cfg, tx, pc.Candidate, &http.Client{Transport: p.candidateTransport}); err != nil {
		return nil, err
	}
	if p.candidate.MaxRPS > 0 {
		p.candidateLimit = rate.NewLimiter(rate.Limit(p.candidate.MaxRPS), max(1, int(p.candidate.MaxRPS)))
	}
	p.mirrorTimeout = pc.Mirror.Timeout.D()
	if p.mirrorTimeout == 0 {
		p.mirrorTimeout = p.candidate.Timeout.D()
	}
	p.mirrorCtx, p.stopMirrors = context.WithCancel(context.Background())
	p.started = time.Now()
	p.cpu = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))
	p.budget = budget{limit: pc.Mirror.MaxDailySpend}
	p.pairs = pairs{m: map[string]*pair{}}
	p.met = newMetrics(p)
	var sb [6]byte
	rand.Read(sb[:])
	p.idPrefix = hex.EncodeToString(sb[:])
	var secrets []string
	for _, s := range cfg.Secrets() {
		secrets = append(secrets, s, "[redacted]")
		if q := url.QueryEscape(s); q != s {
			secrets = append(secrets, q, "[redacted]")
		}
	}
	p.scrub = strings.NewReplacer(secrets...)
	if err := p.setupGoproxy(tlsConf); err != nil {
		return nil, err
	}
	p.adminToken = os.Getenv(pc.Canary.AdminTokenEnv)
	if pc.Mode == config.ModeCutover {
		p.breaker = newBreaker(p)
	}
	if pc.Mode == config.ModeCanary || pc.Mode == config.ModeCutover {
		if p.ctl, err = newController(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func upstreamTLS(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("proxy.upstream_ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("proxy.upstream_ca_file %s has no PEM certificate", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

type reverseKey struct{}

// goproxyLogger keeps goproxy's own warnings, scrubbed of secrets (a GCV
// ?key= in a URL must never reach a log).
type goproxyLogger struct{ p *Proxy }

func (l goproxyLogger) Printf(format string, v ...any) {
	l.p.log.Debug(l.p.scrub.Replace(fmt.Sprintf(format, v...)), "component", "goproxy")
}

func (p *Proxy) setupGoproxy(tlsConf *tls.Config) error {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{p}
	gp.KeepAcceptEncoding = true
	gp.Tr = &http.Transport{Proxy: nil, TLSClientConfig: tlsConf.Clone(), DisableCompression: true,
		MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	d := &net.Dialer{Timeout: 10 * time.Second}
	gp.ConnectDial = func(network, addr string) (net.Conn, error) { return d.Dial(network, addr) }
	// Reverse mode: a relative URL is a request for the primary; make it
	// absolute and run it through the same hooks.
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), reverseKey{}, true))
		r.URL.Scheme, r.URL.Host = p.primaryURL.Scheme, p.primaryURL.Host
		gp.ServeHTTP(w, r)
	})
	fw := p.cfg.Proxy.Forward
	p.intercept = map[string]bool{}
	if fw.Enabled {
		ca, err := LoadCA(fw.CACert, fw.CAKey)
		if err != nil {
			return err
		}
		gp.CertStore = &certStore{}
		hosts := fw.Intercept
		if len(hosts) == 0 {
			hosts = []string{p.cfg.PrimaryHostPort()}
		}
		for _, h := range hosts {
			p.intercept[h] = true
		}
		mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(ca)}
		gp.OnRequest(goproxy.ReqHostIs(hosts...)).HandleConnect(goproxy.FuncHttpsHandler(
			func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) { return mitm, host }))
	} else {
		gp.OnRequest().HandleConnect(goproxy.AlwaysReject)
	}
	gp.OnRequest().DoFunc(p.onRequest)
	p.gp = gp
	return nil
}

// Handler is the client-facing handler (reverse and forward).
func (p *Proxy) Handler() http.Handler { return p.gp }

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

func (p *Proxy) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	reverse, _ := r.Context().Value(reverseKey{}).(bool)
	if !reverse && !p.intercept[hostPort(r.URL)] {
		if !p.cfg.Proxy.Forward.Enabled {
			return r, goproxy.NewResponse(r, goproxy.ContentTypeText, http.StatusForbidden,
				"cutover proxy: forward proxying is disabled (proxy.forward.enabled)\n")
		}
		return r, nil // another host: forwarded untouched by goproxy
	}
	return r, p.handlePrimary(r, reverse)
}

func (p *Proxy) newID() string {
	return p.idPrefix + "-" + strconv.FormatUint(p.idSeq.Add(1), 36)
}

// handlePrimary forwards r to the primary and starts the mirror. The
// primary request is a clone with its own body reader: nothing mutable is
// shared with the mirror, which only reads the immutable body bytes.
func (p *Proxy) handlePrimary(r *http.Request, reverse bool) *http.Response {
	p.requests.Add(1)
	pairID := p.newID()
	classify := p.primaryServer.IsClassify(r)
	limit := int64(p.cfg.Proxy.Mirror.MaxBodyBytes)
	buf, tooLarge, err := bodies.Read(r.Body, limit, r.ContentLength)
	if err != nil {
		p.requests.Done()
		return goproxy.NewResponse(r, goproxy.ContentTypeText, http.StatusBadRequest, "cutover proxy: reading the request body: client went away\n")
	}
	var body []byte
	if buf != nil {
		body = *buf
	}
	// The request path's own reference; every later reader holds its own.
	ri := newReqInfo(body, buf, *r.URL)
	defer ri.Drop()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	if tooLarge {
		out.Body = ri.newBodyReader(r.Body) // re-joined, never truncated
	} else if body != nil {
		out.Body = ri.newBodyReader(nil)
	}
	removeHop(out.Header)
	if reverse {
		out.Host = p.primaryURL.Host
		if p.cfg.Proxy.Resign != nil && *p.cfg.Proxy.Resign && !tooLarge {
			if err := p.resign(out, body); err != nil {
				p.log.Warn("re-signing for the primary failed; forwarding as received", "err", p.scrub.Replace(err.Error()))
			}
		}
	}
	var cls int64
	if classify {
		cls = 1
	}
	p.rec.Count(1, cls, 0)
	p.met.seen.Inc()
	if classify && !tooLarge {
		ri.hdr = r.Header.Clone()
	}
	if classify && !tooLarge && p.ctl != nil {
		if req, ok := p.candidateAnswers(ri); ok {
			return p.serveByCandidate(r, out, ri, req, pairID)
		}
	}
	mirrored := false
	switch {
	case !classify:
		p.skip(record.SkipNotClassify, pairID)
	case tooLarge:
		p.skip(record.SkipBodyTooLarge, pairID)
	case p.shuttingDown.Load():
		p.skip(record.SkipShutdown, pairID)
	case p.cfg.Proxy.Mode == config.ModeCutover:
		// The primary answers because the candidate's breaker is open (or
		// the request could not be decoded): no copy for the candidate.
		p.skip(record.SkipBreakerOpen, pairID)
	default:
		if reason := p.admit(int64(len(body)) * mirrorMemoryFactor); reason != "" {
			p.skip(reason, pairID)
		} else {
			mirrored = true
			p.mirrors.Add(1)
			go p.mirror(pairID, ri.hold())
		}
	}
	return p.forward(r, out, pairID, classify, ri, meta{served: true, pair: mirrored})
}

// meta is how a primary observation is labelled.
type meta struct {
	route  string
	served bool
	pair   bool // join the live agreement pair
}

// forward sends out to the primary and returns its answer for the client,
// recording it (classification calls) once the client has read it all.
// It ends the client request that handlePrimary began.
func (p *Proxy) forward(r, out *http.Request, pairID string, classify bool, ri *reqInfo, m meta) *http.Response {
	start := time.Now()
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		e := vision.TransportError(err)
		if classify {
			p.recordPrimary(pairID, start, time.Since(start), http.StatusBadGateway, nil, nil, e, ri, m)
		}
		p.requests.Done()
		msg := "cutover proxy: the primary did not answer: " + p.scrub.Replace(err.Error()) + "\n"
		return goproxy.NewResponse(r, goproxy.ContentTypeText, http.StatusBadGateway, msg)
	}
	return p.tapPrimary(resp, start, pairID, classify, ri, m)
}

// tapPrimary passes the primary's answer through, recording it once read.
func (p *Proxy) tapPrimary(resp *http.Response, start time.Time, pairID string, classify bool, ri *reqInfo, m meta) *http.Response {
	removeHop(resp.Header)
	tap := &tapBody{rc: resp.Body, limit: vision.MaxResponseBytes, capture: classify}
	if classify {
		ri.hold() // recordPrimary decodes the request once the answer is in
	}
	tap.onDone = func(captured []byte, complete bool) {
		lat := time.Since(start)
		if classify {
			p.recordings.Add(1)
			go func() {
				defer p.recordings.Done()
				defer ri.Release()
				p.recordPrimary(pairID, start, lat, resp.StatusCode, resp.Header, captured, nil, ri, m)
			}()
		}
		p.requests.Done()
	}
	resp.Body = tap
	return resp
}

// resign replaces the client's SigV4 signature (made for the proxy's host)
// with one made with the primary's own credentials for the primary's host.
func (p *Proxy) resign(out *http.Request, body []byte) error {
	rc, ok := p.primaryClient.(*rekognition.Codec)
	if !ok || rc.Credentials.AccessKeyID == "" {
		return nil // not SigV4: keys are not bound to the host
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		out.Header.Del(h)
	}
	return rc.Sign(out.Context(), out, body)
}

// tapBody passes the primary's answer through to the client unchanged,
// keeping a copy (up to limit) to decode and record once it is complete.
type tapBody struct {
	rc      io.ReadCloser
	buf     bytes.Buffer
	limit   int
	capture bool
	over    bool
	once    sync.Once
	onDone  func(captured []byte, complete bool)
}

func (t *tapBody) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	if n > 0 && t.capture && !t.over {
		if t.buf.Len()+n > t.limit {
			t.over = true
			t.buf = bytes.Buffer{}
		} else {
			t.buf.Write(b[:n])
		}
	}
	if err == io.EOF {
		t.finish(true)
	}
	return n, err
}

// WriteTo copies the answer to w with plain writes, which io.Copy (what
// goproxy sends it to the client with) prefers. Otherwise io.Copy hands
// the copy to the client connection's ReadFrom, which writes the headers
// and the first 512 bytes in one syscall and the rest in another: an
// answer that fits the server's buffers now goes out in one write.
func (t *tapBody) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// Wrapped so that io.CopyBuffer uses neither t.WriteTo nor w's ReadFrom.
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{t}, *bp)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (t *tapBody) Close() error {
	err := t.rc.Close()
	t.finish(false)
	return err
}

func (t *tapBody) finish(complete bool) {
	t.once.Do(func() {
		var b []byte
		if !t.over {
			b = t.buf.Bytes()
		}
		t.onDone(b, complete)
	})
}

// recordPrimary decodes the primary's answer and records it.
func (p *Proxy) recordPrimary(pairID string, start time.Time, lat time.Duration, status int, h http.Header, body []byte, terr *vision.Error, ri *reqInfo, m meta) {
	o := record.Observation{RequestID: pairID + "-p", PairID: pairID, Time: start, Provider: p.primaryName, Role: record.RolePrimary,
		Status: status, LatencyNS: lat.Nanoseconds(), Served: m.served, Route: m.route}
	var tags *vision.Tags
	if terr != nil {
		o.Code, o.Error = string(terr.Code), p.scrub.Replace(terr.Error())
	} else {
		if enc := h.Get("Content-Encoding"); enc == "gzip" && body != nil {
			body = gunzip(body)
		}
		res, err := p.primaryClient.DecodeResponse(&http.Response{StatusCode: status, Header: h}, body)
		switch {
		case body == nil && status == http.StatusOK:
			o.Code, o.Error = string(vision.CodeInvalidResponse), "answer too large to decode or cut short"
		case err != nil:
			e := vision.AsError(err)
			o.Code, o.Error = string(e.Code), p.scrub.Replace(e.Message)
		default:
			t := p.tx.Normalize(p.primaryClient.Format(), res)
			tags = &t
			o.Tags, o.PromptVersion, o.Usage = tags, res.PromptVersion, res.Usage
		}
	}
	if req, err := ri.decode(p.primaryServer); err == nil && req.Image.SHA256 != "" {
		o.ImageSHA256, o.ImageSize = req.Image.SHA256, req.Image.Size
		im := req.Image
		if it, ok := p.fx.BySHA(im.SHA256); ok {
			o.FixtureID = it.ID
		}
	}
	// A call is priced when it was answered (or, for a vision LLM, when it
	// reported usage: a malformed answer still costs its tokens).
	if o.Code == "" || o.Usage != nil {
		if amount, cur, ok := compare.CallCost(p.cfg, p.primary, usageIn(o.Usage), usageCached(o.Usage), usageOut(o.Usage), config.DefaultMonthlyVolume); ok {
			o.Cost, o.Currency = amount, cur
		}
	}
	if terr != nil && terr.Code == record.CodeCancelled {
		o.Code, o.LatencyNS, o.Cost = record.CodeCancelled, 0, 0
	}
	p.rec.Record(o)
	p.met.observe(o)
	if m.pair {
		p.pairs.join(p, pairID, record.RolePrimary, tags)
	}
}

// reqInfo is a classification call as the mirror and the recorder see
// it: the immutable body bytes, a copy of the headers and URL, decoded at
// most once and never on the request path. The body lives in a pooled
// buffer (buf) that returns to its pool when its last holder lets go
// (bufpool.Shared): whoever reads body or calls decode after
// handlePrimary has returned holds it (hold, Release) for as long as it
// does.
type reqInfo struct {
	body []byte
	buf  *[]byte
	bufpool.Shared
	hdr  http.Header
	url  url.URL
	once sync.Once
	req  vision.Request // never changed after once: copies are read concurrently
	err  error

	hashOnce sync.Once
	sha      string // the image's SHA-256 when req was decoded without it
}

// decode returns the request decoded, its image hashed.
func (ri *reqInfo) decode(codec vision.ServerCodec) (vision.Request, error) {
	req, err := ri.decodeUnhashed(codec)
	if err != nil || req.Image.SHA256 != "" {
		return req, err
	}
	ri.hashOnce.Do(func() {
		im := req.Image
		vision.HashImage(&im)
		ri.sha = im.SHA256
	})
	req.Image.SHA256 = ri.sha
	return req, nil
}

// decodeUnhashed is decode for the request path: the image's SHA-256 may
// be left out (vision.UnhashedDecoder), for decode to add off the path.
func (ri *reqInfo) decodeUnhashed(codec vision.ServerCodec) (vision.Request, error) {
	ri.once.Do(func() {
		if ri.hdr == nil {
			ri.err = errors.New("request not kept")
			return
		}
		hr := &http.Request{Method: http.MethodPost, URL: &ri.url, Header: ri.hdr}
		if u, ok := codec.(vision.UnhashedDecoder); ok {
			ri.req, ri.err = u.DecodeRequestUnhashed(hr, ri.body)
		} else {
			ri.req, ri.err = codec.DecodeRequest(hr, ri.body)
		}
		if overlaps(ri.req.Image.Bytes, ri.body) {
			// A binary upload: the image is the body, whose buffer is reused.
			ri.req.Image.Bytes = bytes.Clone(ri.req.Image.Bytes)
		}
	})
	return ri.req, ri.err
}

func usageIn(u *vision.Usage) int64 {
	if u == nil {
		return 0
	}
	return u.InputTokens
}

func usageCached(u *vision.Usage) int64 {
	if u == nil {
		return 0
	}
	return u.CachedTokens
}

func usageOut(u *vision.Usage) int64 {
	if u == nil {
		return 0
	}
	return u.OutputTokens
}

// skip counts a request not mirrored.
func (p *Proxy) skip(reason, pairID string) {
	p.rec.Skip(reason)
	p.met.skipped.WithLabelValues(reason).Inc()
}

// Shutdown stops taking new mirrors, waits for in-flight client requests
// and then for the mirror queue, each bounded by ctx, and closes only its
// idle upstream connections: the caller closes the recorder after the
// listeners.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.shuttingDown.Store(true)
	wait := func(wg *sync.WaitGroup) bool {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var errs []error
	if !wait(&p.requests) {
		errs = append(errs, errors.New("in-flight client requests did not finish before the shutdown timeout"))
	}
	if !wait(&p.mirrors) {
		p.stopMirrors()
		errs = append(errs, fmt.Errorf("%d mirrors cancelled at the shutdown timeout", p.inFlight.Load()))
		p.mirrors.Wait() // cancelled calls return at once and are recorded as such
	}
	p.stopMirrors()
	p.recordings.Wait() // decoding an answer already received is quick: always wait
	p.transport.CloseIdleConnections()
	p.candidateTransport.CloseIdleConnections()
	return errors.Join(errs...)
}
