// Package proxy is cutover's inline front end: a transparent reverse and
// forward (TLS-intercepting) proxy built on github.com/elazarl/goproxy that
// answers clients from the primary (legacy) API, mirrors classification
// calls to the candidate off the request path, lets the candidate answer a
// share of them (canary) or all of them (cutover), and records both.
//
// Its first duty is to change nothing for the client: the primary's status,
// headers (minus hop-by-hop) and body bytes reach the client unchanged, and
// nothing the candidate does — slow, down, wrong, huge — can delay or fail a
// client request. Its second is to measure faithfully.
//
// A Proxy is assembled from small parts, none of which holds the Proxy: the
// front end (goproxy hooks, reverse and forward), the relay to the primary
// (net/http's Transport, tuned), the router that decides who answers, the
// canary path, the mirror, the rollout controller, the breaker, the
// observer that records and scores answers, the metrics and the admin
// handler. They share a Recorder, a clock and a lifecycle.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jonboulle/clockwork"
	"github.com/oklog/run"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/proxy/fleet"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
)

// Options are what the CLI passes besides the config.
type Options struct {
	Logger *slog.Logger
	// Fixtures give ground truth by image SHA-256 (nil: none).
	Fixtures *fixtures.Set
	// Clock drives the rollout controller, the breaker, dedupe and the
	// daily spend (nil: the real clock). Latencies are always measured on
	// the real clock.
	Clock clockwork.Clock
	// Report serves GET /report on the admin listener (nil: no page).
	Report http.Handler
}

// RunRecorder is the run directory the proxy writes (record.Writer): a
// Recorder whose live figures /admin/status reads.
type RunRecorder interface {
	Recorder
	Coverage() record.Coverage
	Snapshot() map[string]*hdrhistogram.Histogram
	Dir() string
}

var _ RunRecorder = (*record.Writer)(nil)

// Proxy is one running proxy.
type Proxy struct {
	cfg    *config.Config
	log    *slog.Logger
	clock  clockwork.Clock
	rec    RunRecorder
	scrub  *secret.Scrubber
	life   *lifecycle
	met    *metrics
	front  *frontend
	mirror *mirror
	live   *liveAgreement
	// agreement is the live tally of the pairs live joins.
	agreement *compare.LiveAgreement
	ctl       *controller // canary and cutover modes
	brk       *breaker    // cutover mode
	adm       *admin
	member    *fleetMember // proxy.fleet; nil for one process
	up        *upstream
	cand      *candidate
	started   time.Time

	ln, aln  net.Listener
	srv, asv *http.Server
}

// New prepares a proxy writing to rec. cfg must have a valid proxy section.
func New(cfg *config.Config, tx *vision.Taxonomy, rec RunRecorder, opt Options) (*Proxy, error) {
	pc := cfg.Proxy
	p := &Proxy{cfg: cfg, log: opt.Logger, clock: opt.Clock, rec: rec, life: newLifecycle()}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	p.started = p.clock.Now()
	primary, candProv := cfg.Providers[pc.Primary], cfg.Providers[pc.Candidate]
	if primary == nil || candProv == nil {
		return nil, fmt.Errorf("proxy.primary %q and proxy.candidate %q must name providers", pc.Primary, pc.Candidate)
	}
	p.scrub = secret.New(cfg.Secrets()...)
	server, err := formats.ServerCodec(primary.Format)
	if err != nil {
		return nil, err
	}
	primaryClient, err := formats.ClientCodec(cfg, tx, primary)
	if err != nil {
		return nil, err
	}
	primaryURL, err := url.Parse(primary.BaseURL.String())
	if err != nil {
		return nil, err
	}
	tlsConf, err := upstreamTLS(pc.UpstreamCAFile)
	if err != nil {
		return nil, err
	}
	p.up = &upstream{url: primaryURL, tr: newTransport(tlsConf, 1024, primary.Timeout.D()), timeout: primary.Timeout.D()}

	mirrorTimeout := pc.Mirror.Timeout.D()
	if mirrorTimeout == 0 {
		mirrorTimeout = candProv.Timeout.D()
	}
	// The candidate gets its own pool: a hung candidate cannot take the
	// primary's connections.
	p.cand = &candidate{name: pc.Candidate, tr: newTransport(tlsConf.Clone(), 512, 0), cpu: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
	if p.cand.client, err = formats.NewClient(cfg, tx, pc.Candidate, &http.Client{Transport: p.cand.tr}); err != nil {
		return nil, err
	}
	if candProv.MaxRPS > 0 {
		p.cand.limit = rate.NewLimiter(rate.Limit(candProv.MaxRPS), max(1, int(candProv.MaxRPS)))
	}

	price := func(prov *config.Provider, u *vision.Usage) (float64, string, bool) {
		var in, cached, out int64
		if u != nil {
			in, cached, out = u.InputTokens, u.CachedTokens, u.OutputTokens
		}
		return compare.CallCost(cfg, prov, in, cached, out, config.DefaultMonthlyVolume)
	}
	p.mirror = &mirror{cfg: pc.Mirror, cand: p.cand, up: p.up, rec: rec, life: p.life, clock: p.clock, timeout: mirrorTimeout,
		primaryTimeout: primary.Timeout.D(), dedupe: &localDedupe{window: pc.Mirror.DedupeWindow.D()},
		estimate: estimator(cfg, candProv, p.cand.client.Codec, price)}
	var onPause func(string, map[string]any) // set once the metrics exist
	pause := func(d string, data map[string]any) { onPause(d, data) }
	var store stateStore = fileStore{path: cfg.Path(pc.Canary.StateFile)}
	if f := pc.Fleet; f != nil {
		fs, err := fleet.Open(context.Background(), fleet.Options{URL: f.NATSURL, Bucket: f.Bucket, Name: f.Name,
			CredsFile: cfg.Path(f.CredsFile), Replicas: f.Replicas, DedupeTTL: dedupeTTL(pc.Mirror), Logger: p.log})
		if err != nil {
			return nil, err
		}
		p.member = &fleetMember{store: fs, name: f.Name, clock: p.clock, log: p.log, leaseTTL: max(3*pc.Canary.EvaluateEvery.D(), time.Second)}
		store = fleetStateStore{store: fs, bucket: f.Bucket}
		p.mirror.spend = &fleetSpend{store: fs, limit: pc.Mirror.MaxDailySpend, onPause: pause}
		if pc.Mirror.DedupeScope == "fleet" {
			p.mirror.dedupe = &fleetDedupe{store: fs, local: &localDedupe{window: pc.Mirror.DedupeWindow.D()}}
		}
	} else {
		p.mirror.spend = &budget{limit: pc.Mirror.MaxDailySpend, onPause: pause}
	}

	if pc.Mode == config.ModeCanary || pc.Mode == config.ModeCutover {
		deps := controllerDeps{clock: p.clock, store: store, log: p.log, tl: rec, onRollback: func() { p.met.rollbacks.Inc() }}
		if p.member != nil {
			deps.fleet, deps.name = p.member, p.member.name
		}
		if p.ctl, err = newController(pc.Canary, pc.Mode, pc.Primary, pc.Candidate, deps); err != nil {
			p.closeFleet()
			return nil, err
		}
		if p.member != nil {
			p.member.ctl = p.ctl
		}
	}
	p.met = newMetrics(gauges{
		canaryPercent: func() float64 {
			if p.ctl == nil {
				return 0
			}
			return p.ctl.Percent()
		},
		canaryStep: func() float64 {
			if p.ctl == nil {
				return 0
			}
			return float64(p.ctl.state().Step + 1)
		},
		mirrorInFlight:   func() float64 { return float64(p.mirror.inFlight.Load()) },
		mirrorQueueBytes: func() float64 { return float64(p.mirror.queueBytes.Load()) },
		spendToday:       func() float64 { s, _ := p.mirror.spend.state(); return s },
		fleetDisconnected: func() float64 {
			if p.member != nil && !p.member.connected() {
				return 1
			}
			return 0
		},
		fleetLeaseHeld: func() float64 {
			if p.member != nil && p.member.holder.Load() {
				return 1
			}
			return 0
		},
	})
	p.mirror.met = p.met
	onPause = pauseNotice(p.log, rec, p.met)
	if pc.Mode == config.ModeCutover {
		p.brk = newBreaker(pc.Breaker, p.clock, p.log, rec, func(s int) { p.met.breaker.Set(float64(s)) })
	}
	// Live agreement is scored by the report's own scorer: /admin/status
	// and the report give the same numbers on the same pairs.
	p.agreement = compare.NewLiveAgreement(compare.NewScorer(tx, cfg.Report), pc.Primary, pc.Candidate)
	p.live = &liveAgreement{open: map[string]*openPair{}, now: p.clock.Now, agree: func(a, b *vision.Tags) {
		ps, counted := p.agreement.Add(a, b)
		switch {
		case !counted:
		case ps.Top1:
			p.met.agreement.WithLabelValues("agree").Inc()
		default:
			p.met.agreement.WithLabelValues("disagree").Inc()
		}
	}}
	obs := &observer{rec: rec, met: p.met, tx: tx, fx: opt.Fixtures, scrub: p.scrub, price: price, live: p.live,
		primaryName: pc.Primary, candidateName: pc.Candidate, primaryProv: primary, candidateProv: candProv,
		primaryServer: server, primaryClient: primaryClient, candidateFormat: p.cand.client.Codec.Format()}
	p.mirror.obs = obs
	rl := &relay{up: p.up, obs: obs, met: p.met, life: p.life, scrub: p.scrub}
	rt := &router{mode: pc.Mode, stickyBy: pc.Canary.StickyBy, ctl: p.ctl, brk: p.brk, server: server, stopping: &p.life.stopping}
	kp := &canaryPath{cfg: pc.Canary, rec: rec, cand: p.cand, relay: rl, obs: obs, met: p.met, mirror: p.mirror, life: p.life,
		ctl: p.ctl, brk: p.brk, tx: tx, server: server}
	p.front = &frontend{cfg: cfg, log: p.log, scrub: p.scrub, rec: rec, met: p.met, life: p.life, relay: rl, mirror: p.mirror,
		router: rt, canary: kp, server: server, primary: primaryURL}
	if s, ok := primaryClient.(vision.Signer); ok {
		p.front.signer = s
	}
	if len(pc.Clients) > 0 {
		p.front.auth = newClientAuth(cfg, server, p.clock)
	} else if *pc.Resign {
		p.log.Warn("proxy.clients is empty: reverse-mode requests are forwarded with the client's own credentials; " +
			"list the clients in proxy.clients to lend them the primary's (proxy.resign)")
	}
	if err := p.front.setup(tlsConf); err != nil {
		return nil, err
	}
	p.adm = &admin{token: os.Getenv(pc.Canary.AdminTokenEnv), tokenEnv: pc.Canary.AdminTokenEnv, publicMetrics: pc.AdminPublicMetrics,
		met: p.met, ctl: p.ctl, brk: p.brk, mode: pc.Mode, status: p.Status, report: opt.Report, stopping: &p.life.stopping}
	if m := p.member; m != nil {
		p.adm.ready = func() (bool, string) {
			if !m.connected() {
				return true, "fleet_disconnected: keeping the last canary state, steps do not advance"
			}
			return true, ""
		}
		p.adm.replicas = func() map[string]any {
			return map[string]any{"name": m.name, "lease_holder": m.holder.Load(), "connected": m.connected(), "replicas": m.replicas()}
		}
	}
	return p, nil
}

// dedupeTTL is how long the fleet remembers a mirrored image: the dedupe
// window when dedupe is fleet-wide.
func dedupeTTL(m config.Mirror) time.Duration {
	if m.DedupeScope == "fleet" {
		return m.DedupeWindow.D()
	}
	return 0
}

func (p *Proxy) closeFleet() {
	if p.member != nil {
		p.member.store.Close()
	}
}

// Handler is the client-facing handler (reverse and forward).
func (p *Proxy) Handler() http.Handler { return p.front.gp }

// AdminHandler serves the admin listener.
func (p *Proxy) AdminHandler() http.Handler { return p.adm.handler() }

// Listen binds proxy.listen and proxy.admin_listen (listenAddr and
// adminAddr override them when non-empty, e.g. 127.0.0.1:0 in tests) and
// returns the bound addresses; Run serves them. A listener off loopback
// without the protection it needs is refused.
func (p *Proxy) Listen(listenAddr, adminAddr string) (string, string, error) {
	pc := p.cfg.Proxy
	if listenAddr == "" {
		listenAddr = pc.Listen.String()
	}
	if adminAddr == "" {
		adminAddr = pc.AdminListen.String()
	}
	if !isLoopback(listenAddr) && len(pc.Clients) == 0 {
		return "", "", fmt.Errorf("proxy.listen %s is not a loopback address: refusing to serve clients there without proxy.clients to authenticate them", listenAddr)
	}
	if !isLoopback(adminAddr) && p.adm.token == "" {
		return "", "", fmt.Errorf("proxy.admin_listen %s is not a loopback address: refusing to serve the admin API (pprof, canary control) there without a token in $%s",
			adminAddr, pc.Canary.AdminTokenEnv)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return "", "", fmt.Errorf("proxy.listen: %w", err)
	}
	aln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		ln.Close()
		return "", "", fmt.Errorf("proxy.admin_listen: %w", err)
	}
	p.adm.offLoopback.Store(!isLoopback(adminAddr))
	if p.front.fwd != nil {
		p.front.fwd.listening(ln.Addr().String(), aln.Addr().String())
	}
	p.ln, p.aln = ln, aln
	return ln.Addr().String(), aln.Addr().String(), nil
}

// Run serves the listeners bound by Listen, with the background loops
// (the controller's evaluations, the sweeper), until ctx is done; then it
// shuts down in order: stop accepting and finish in-flight client
// requests, drain the mirror queue, stop the loops and the admin
// listener, all within proxy.shutdown_timeout. A listener that fails ends
// Run (after the same orderly shutdown) with its error. The caller closes
// the recorder afterwards, so that nothing already answered is missing
// from the run directory.
func (p *Proxy) Run(ctx context.Context) error {
	if p.ln == nil {
		return errors.New("proxy: Run before Listen")
	}
	errLog := log.New(scrubWriter{p.log, p.scrub}, "", 0)
	p.srv = &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 1 << 20, ErrorLog: errLog}
	p.asv = &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	p.log.Info("proxy listening", "listen", p.ln.Addr().String(), "admin", p.aln.Addr().String(), "mode", p.cfg.Proxy.Mode,
		"primary", p.cfg.Proxy.Primary, "candidate", p.cfg.Proxy.Candidate, "run_dir", p.rec.Dir())

	var g run.Group
	stopped := make(chan struct{}) // the orderly shutdown is over
	abort := make(chan struct{})   // another actor failed: shut down now
	serve := func(name string, srv *http.Server, ln net.Listener) {
		g.Add(func() error {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				<-stopped
				return nil
			}
			return fmt.Errorf("%s: %w", name, err)
		}, func(error) { srv.Close() })
	}
	serve("proxy.listen", p.srv, p.ln)
	serve("proxy.admin_listen", p.asv, p.aln)
	loops := make(chan struct{})
	g.Add(func() error { p.sweep(loops); return nil }, func(error) {})
	if p.ctl != nil {
		g.Add(func() error { p.ctl.run(loops); return nil }, func(error) {})
	}
	if p.member != nil && p.ctl != nil {
		g.Add(func() error { p.member.run(loops); return nil }, func(error) {})
	}
	g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-abort:
		}
		err := p.shutdown(loops)
		close(stopped)
		return err
	}, func(error) {
		select {
		case <-abort:
		default:
			close(abort)
		}
	})
	return g.Run()
}

// shutdown is Run's orderly end; closing loops stops the background loops.
func (p *Proxy) shutdown(loops chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Proxy.ShutdownTimeout.D())
	defer cancel()
	p.life.stopping.Store(true)
	var errs []error
	if err := p.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("client listener: %w", err))
	}
	wait := func(wg interface{ Wait() }) bool {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !wait(&p.life.requests) {
		errs = append(errs, errors.New("in-flight client requests did not finish before the shutdown timeout"))
	}
	if !wait(&p.life.mirrors) {
		p.life.stopMirrors()
		errs = append(errs, fmt.Errorf("%d mirrors cancelled at the shutdown timeout", p.mirror.inFlight.Load()))
		p.life.mirrors.Wait() // cancelled calls return at once and are recorded as such
	}
	p.life.stopMirrors()
	p.life.recordings.Wait() // decoding an answer already received is quick: always wait
	close(loops)
	p.up.tr.CloseIdleConnections()
	p.cand.tr.CloseIdleConnections()
	actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer acancel()
	p.asv.Shutdown(actx)
	p.closeFleet()
	cov := p.rec.Coverage()
	p.log.Info("proxy stopped", "seen", cov.Seen, "classify", cov.Classify, "mirrored", cov.Mirrored, "skipped", cov.Skipped)
	err := errors.Join(errs...)
	detail := "proxy stopped"
	if err != nil {
		detail += ": " + err.Error()
	}
	p.rec.Event("shutdown", detail, map[string]any{"errors": fmt.Sprint(err)})
	return err
}

// sweep forgets old dedupe entries and pairs whose other side will never
// come, until stop is closed.
func (p *Proxy) sweep(stop <-chan struct{}) {
	t := p.clock.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.Chan():
			p.mirror.dedupe.sweep(now)
			p.live.sweep(now.Add(-p.mirror.timeout - time.Minute))
		case <-stop:
			return
		}
	}
}

// Status reports the live figures.
func (p *Proxy) Status() Status {
	pc := p.cfg.Proxy
	s := Status{Mode: pc.Mode, Started: p.started, Primary: pc.Primary, Candidate: pc.Candidate,
		Providers: map[string]ProviderStatus{}, Coverage: p.rec.Coverage()}
	for name, h := range p.rec.Snapshot() {
		s.Providers[name] = ProviderStatus{Count: h.TotalCount(), P50MS: float64(h.ValueAtQuantile(50)) / 1e6,
			P99MS: float64(h.ValueAtQuantile(99)) / 1e6, MaxMS: float64(h.Max()) / 1e6}
	}
	a := p.agreement.Snapshot()
	s.Agreement = Agreement{Pairs: int64(a.Pairs), Agree: int64(a.Top1.K), Top1: a.Top1, TopK: a.TopK, TopKJaccard: a.TopKJaccard,
		Attributes: a.Attributes}
	if a.Pairs > 0 {
		r := a.Top1.Value
		s.Agreement.Rate = &r
	}
	spent, paused := p.mirror.spend.state()
	s.Mirror = MirrorStatus{InFlight: p.mirror.inFlight.Load(), QueueBytes: p.mirror.queueBytes.Load(), SpendToday: spent, Paused: paused}
	return s
}

// isLoopback reports whether a listen address binds to loopback only
// ("localhost", 127.0.0.0/8, ::1); an empty host binds every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scrubWriter sends net/http's server errors to the log without secrets.
type scrubWriter struct {
	log   *slog.Logger
	scrub *secret.Scrubber
}

func (s scrubWriter) Write(b []byte) (int, error) {
	s.log.Warn(s.scrub.String(string(trimSpace(b))), "component", "http")
	return len(b), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
