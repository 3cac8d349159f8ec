package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// frontend is what clients talk to: reverse mode (clients use the proxy
// as their base URL) and forward mode (HTTPS_PROXY, TLS interception of
// the primary's host only), both through goproxy's hooks. It reads each
// request for the primary once, lets the router pick who answers, and
// starts the mirror.
type frontend struct {
	cfg     *config.Config
	log     *slog.Logger
	scrub   *secret.Scrubber
	rec     Recorder
	met     *metrics
	life    *lifecycle
	relay   *relay
	mirror  *mirror
	router  *router
	canary  *canaryPath
	server  vision.ServerCodec
	signer  vision.Signer // the primary's codec, when it signs its requests (SigV4, TC3) or adds a token (baidu)
	auth    *clientAuth   // reverse-mode clients; nil: not authenticated (loopback only), nothing lent
	primary *url.URL

	gp        *goproxy.ProxyHttpServer
	intercept map[string]bool
	fwd       *forwardPolicy // forward mode; nil when off

	idPrefix string
	idSeq    atomic.Uint64
}

type reverseKey struct{}

// goproxyLogger keeps goproxy's own warnings, scrubbed of secrets (a key
// in a URL must never reach a log).
type goproxyLogger struct {
	log   *slog.Logger
	scrub *secret.Scrubber
}

func (l goproxyLogger) Printf(format string, v ...any) {
	l.log.Debug(l.scrub.String(fmt.Sprintf(format, v...)), "component", "goproxy")
}

func (f *frontend) setup(tlsConf *tls.Config) error {
	var sb [6]byte
	rand.Read(sb[:])
	f.idPrefix = hex.EncodeToString(sb[:])
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{f.log, f.scrub}
	gp.KeepAcceptEncoding = true
	gp.Tr = &http.Transport{Proxy: nil, TLSClientConfig: tlsConf.Clone(), DisableCompression: true,
		MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second, MaxResponseHeaderBytes: maxResponseHeaderBytes}
	d := &net.Dialer{Timeout: dialTimeout}
	gp.ConnectDial = func(network, addr string) (net.Conn, error) { return d.Dial(network, addr) }
	// Reverse mode: a relative URL is a request for the primary; make it
	// absolute and run it through the same hooks.
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), reverseKey{}, true))
		r.URL.Scheme, r.URL.Host = f.primary.Scheme, f.primary.Host
		gp.ServeHTTP(w, r)
	})
	fw := f.cfg.Proxy.Forward
	f.intercept = map[string]bool{}
	if fw.Enabled {
		ca, err := LoadCA(fw.CACert, fw.CAKey)
		if err != nil {
			return err
		}
		gp.CertStore = &certStore{}
		hosts := fw.Intercept
		if len(hosts) == 0 {
			hosts = []string{f.cfg.PrimaryHostPort()}
		}
		for _, h := range hosts {
			f.intercept[strings.ToLower(h)] = true
		}
		f.fwd = newForwardPolicy(fw, f.intercept, f.met)
		gp.Tr.DialContext = f.fwd.dial
		gp.ConnectDial = func(network, addr string) (net.Conn, error) { return f.fwd.dial(context.Background(), network, addr) }
		gp.ConnectionErrHandler = connectionError
		mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(ca)}
		gp.OnRequest().HandleConnect(goproxy.FuncHttpsHandler(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
			if !f.fwd.authorized(ctx.Req) {
				ctx.Resp = f.fwd.refuse(ctx.Req, http.StatusProxyAuthRequired, "proxy_auth", "proxy authentication required (proxy.forward.auth)")
				return goproxy.RejectConnect, host
			}
			if f.intercept[strings.ToLower(host)] {
				return mitm, host
			}
			if ok, why := f.fwd.allowed(host); !ok {
				ctx.Resp = f.fwd.refuse(ctx.Req, http.StatusForbidden, "not_listed", why)
				return goproxy.RejectConnect, host
			}
			return goproxy.OkConnect, host
		}))
	} else {
		gp.OnRequest().HandleConnect(goproxy.AlwaysReject)
	}
	gp.OnRequest().DoFunc(f.onRequest)
	f.gp = gp
	return nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

func (f *frontend) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	if reverse, _ := r.Context().Value(reverseKey{}).(bool); reverse {
		return r, f.handlePrimary(r, true)
	}
	if f.fwd == nil {
		return r, goproxy.NewResponse(r, goproxy.ContentTypeText, http.StatusForbidden,
			"cutover proxy: forward proxying is disabled (proxy.forward.enabled)\n")
	}
	// A request inside an intercepted CONNECT tunnel (https) was
	// authorised with the CONNECT; a plain absolute URL (http) is
	// authorised here.
	if r.URL.Scheme != "https" && !f.fwd.authorized(r) {
		return r, f.fwd.refuse(r, http.StatusProxyAuthRequired, "proxy_auth", "proxy authentication required (proxy.forward.auth)")
	}
	hp := hostPort(r.URL)
	if f.intercept[strings.ToLower(hp)] {
		return r, f.handlePrimary(r, false)
	}
	if ok, why := f.fwd.allowed(hp); !ok {
		return r, f.fwd.refuse(r, http.StatusForbidden, "not_listed", why)
	}
	return r, nil // a listed host: forwarded untouched by goproxy
}

func (f *frontend) newID() string {
	return f.idPrefix + "-" + strconv.FormatUint(f.idSeq.Add(1), 36)
}

// handlePrimary forwards r to the primary and starts the mirror. The
// primary request is a clone with its own body reader: nothing mutable is
// shared with the mirror, which only reads the immutable body bytes.
func (f *frontend) handlePrimary(r *http.Request, reverse bool) *http.Response {
	f.life.requests.Add(1)
	pairID := f.newID()
	classify := f.server.IsClassify(r)
	limit := int64(f.cfg.Proxy.Mirror.MaxBodyBytes)
	buf, tooLarge, err := bodies.Read(r.Body, limit, r.ContentLength)
	if err != nil {
		f.life.requests.Done()
		return goproxy.NewResponse(r, goproxy.ContentTypeText, http.StatusBadRequest, "cutover proxy: reading the request body: client went away\n")
	}
	var body []byte
	if buf != nil {
		body = *buf
	}
	// The request path's own reference; every later reader holds its own.
	ex := newExchange(body, buf, *r.URL)
	defer ex.Drop()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	if tooLarge {
		out.Body = ex.newBodyReader(r.Body) // re-joined, never truncated
	} else if body != nil {
		ex.lendBody(out)
	}
	removeHop(out.Header)
	if reverse {
		out.Host = f.primary.Host
		if f.auth != nil {
			if resp := f.authenticate(r, out, ex, body, classify, tooLarge); resp != nil {
				return resp
			}
		}
	}
	var cls int64
	if classify {
		cls = 1
	}
	f.rec.Count(1, cls, 0)
	f.met.seen.Inc()
	if classify && !tooLarge {
		ex.hdr = r.Header.Clone()
	}
	if classify && !tooLarge {
		if req, ok := f.router.candidateAnswers(ex); ok {
			return f.canary.serve(r, out, ex, req, pairID)
		}
	}
	mirrored := false
	switch {
	case !classify:
		f.mirror.skip(record.SkipNotClassify)
	case tooLarge:
		f.mirror.skip(record.SkipBodyTooLarge)
	case f.life.stopping.Load():
		f.mirror.skip(record.SkipShutdown)
	case f.cfg.Proxy.Mode == config.ModeCutover:
		// The primary answers because the candidate's breaker is open (or
		// the request could not be decoded): no copy for the candidate.
		f.mirror.skip(record.SkipBreakerOpen)
	default:
		n := int64(len(body)) * mirrorMemoryFactor
		if reason := f.mirror.admit(n); reason != "" {
			f.mirror.skip(reason)
		} else {
			mirrored = true
			f.mirror.start(pairID, ex.hold(), n)
		}
	}
	return f.relay.forward(r, out, pairID, classify, ex, meta{served: true, pair: mirrored})
}

// authenticate verifies a reverse-mode client and, when it passes, lends
// it the primary's credentials (proxy.resign): a SigV4 request is
// re-signed, a key format's key replaced. A refused request gets the
// primary format's own error, here, and reaches no provider.
func (f *frontend) authenticate(r, out *http.Request, ex *exchange, body []byte, classify, tooLarge bool) *http.Response {
	var name, payloadHash string
	var d *denial
	if tooLarge && f.auth.format.Signs() {
		d = &denial{err: vision.Errorf(vision.CodeTooLarge, "the request body is over proxy.mirror.max_body_bytes: its signature cannot be verified"), reason: "too_large"}
	} else {
		name, payloadHash, d = f.auth.verify(r, body, classify)
	}
	if d != nil {
		f.met.authFailures.WithLabelValues(d.reason).Inc()
		f.log.Info("client refused", "reason", d.reason, "remote", r.RemoteAddr, "error", f.scrub.String(d.err.Message))
		ex.unsent(out)
		rec := httptest.NewRecorder()
		f.server.WriteError(rec, d.err)
		return f.relay.respond(r, rec)
	}
	ex.client = name
	if !*f.cfg.Proxy.Resign {
		return nil
	}
	if f.signer != nil {
		if err := f.resign(out, body, payloadHash); err != nil {
			f.log.Warn("re-signing for the primary failed; forwarding as received", "err", f.scrub.Error(err))
		}
	} else {
		f.auth.rekey(out)
	}
	return nil
}

// resign replaces the client's signature (SigV4 or TC3, made for the
// proxy's host with the client's key) with one made with the primary's own
// credentials for the primary's host; for baidu, the client's access token
// with the primary's. payloadHash, when the client's verification
// computed it, is the body's hash for a signer that can reuse it.
func (f *frontend) resign(out *http.Request, body []byte, payloadHash string) error {
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "X-TC-Timestamp", "X-TC-Token"} {
		out.Header.Del(h)
	}
	if hs, ok := f.signer.(hashedSigner); ok && payloadHash != "" {
		return hs.SignHashed(out.Context(), out, payloadHash)
	}
	return f.signer.Sign(out.Context(), out, body)
}

// hashedSigner signs a request whose body's hash is known (SigV4).
type hashedSigner interface {
	SignHashed(ctx context.Context, hr *http.Request, payloadHash string) error
}
