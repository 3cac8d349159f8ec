// Package h1 is an HTTP/1.1 client transport that writes the request and
// reads the answer on the calling goroutine.
//
// net/http's Transport gives every connection a reader and a writer
// goroutine and hands each call across them: at saturation a mirrored
// call crossed three goroutines per upstream, each handoff a scheduler
// wake-up. This transport does the same work without them: it writes
// the request with http.Request.Write, reads the answer with
// http.ReadResponse (so framing, chunking and trailers are net/http's
// own code), and keeps the connection for reuse once the body has been
// read to its end.
//
// It speaks HTTP/1.1 only, over TCP or TLS, with no proxy, no
// compression and no retries: a request is sent at most once, which is
// what a paid vision API wants. A connection taken from the idle pool is
// checked first (a non-blocking peek), so one the server has closed
// while idle is not used.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transport is an http.RoundTripper. The zero value is ready; set fields
// before first use.
type Transport struct {
	// DialContext dials TCP; nil uses a net.Dialer with a 10 s timeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig is used for https URLs (ServerName is filled in).
	TLSClientConfig *tls.Config
	// MaxIdleConnsPerHost bounds the idle pool per host (default 512).
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes a connection idle for longer (default 50 s,
	// under the 60 s that common load balancers allow).
	IdleConnTimeout time.Duration
	// WriteBufferSize and ReadBufferSize size each connection's buffers
	// (default 64 KiB: an image upload goes out in one write).
	WriteBufferSize, ReadBufferSize int

	mu     sync.Mutex
	idle   map[string][]*conn // by scheme://host:port, most recent last
	tlsFor map[string]*tls.Config

	dials atomic.Int64
}

type conn struct {
	key    string
	nc     net.Conn // the TLS connection for https
	raw    net.Conn // the TCP connection under it
	tls    bool
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// Dials counts the connections the transport has opened, for tests.
func (t *Transport) Dials() int64 { return t.dials.Load() }

// RoundTrip implements http.RoundTripper. As the interface requires, the
// request body is always closed, errors included.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key, addr, host, err := target(req)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(ctx, key, addr, host)
		if err != nil {
			closeBody(req)
			return nil, ctxErr(ctx, err)
		}
		// A cancelled or expired context ends any read or write at once.
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
		resp, err := c.exchange(req)
		if err != nil {
			stop()
			c.nc.Close()
			// A reused connection can fail because the server closed it
			// just as it was taken; an idempotent request is sent again
			// on a new one, once, as net/http does. Others never are.
			if reused && attempt == 0 && ctx.Err() == nil && replayable(req) {
				if again, rerr := rewind(req); rerr == nil {
					req = again
					continue
				}
			}
			return nil, ctxErr(ctx, err)
		}
		b := &body{t: t, c: c, rc: resp.Body, ctx: ctx, stop: stop, reuse: !resp.Close && !req.Close}
		if resp.Body == http.NoBody {
			b.finish(true)
			return resp, nil
		}
		resp.Body = b
		return resp, nil
	}
}

// replayable reports whether req may be sent twice: an idempotent method
// (or an Idempotency-Key) and a body that can be had again.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		if _, ok := req.Header["Idempotency-Key"]; !ok {
			if _, ok := req.Header["X-Idempotency-Key"]; !ok {
				return false
			}
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind is req with its body to send again (the caller's request is not
// changed).
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := *req
	r.Body = b
	return &r, nil
}

// exchange writes req and reads its answer, skipping 1xx interim ones.
func (c *conn) exchange(req *http.Request) (*http.Response, error) {
	// Given a *bufio.Writer, Request.Write flushes the headers before a
	// body it does not know to be in memory (ours are pooled), which
	// sends every request in two writes and wakes the server twice. A
	// body that fits the buffer with its headers goes out with them, in
	// one write. Larger ones, and chunked ones, are written as net/http
	// writes them: with 1 MB bodies, sending the first 64 KiB with the
	// headers raised the client p99 of the proxy from about 35 to 70 ms
	// (measured side by side, the cause not found), so it is not done.
	var w io.Writer = c.bw
	if req.ContentLength > 0 && req.ContentLength+maxHeaderBytes <= int64(c.bw.Size()) {
		w = oneWrite{c.bw}
	}
	if err := req.Write(w); err != nil { // closes the body
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			resp.Close = true
		}
		return resp, nil
	}
}

// oneWrite hides the *bufio.Writer from Request.Write (see exchange).
type oneWrite struct{ *bufio.Writer }

// maxHeaderBytes is the room left for a request's headers when deciding
// whether it fits the write buffer whole.
const maxHeaderBytes = 4096

// body is an answer's body: read to its end, the connection goes back to
// the idle pool; closed before that, the connection is closed (draining
// an unread answer, which may be 50 MB, would cost more than a dial).
type body struct {
	t     *Transport
	c     *conn
	rc    io.ReadCloser
	ctx   context.Context
	stop  func() bool
	reuse bool
	once  sync.Once
	eof   atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.eof.Load() {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
		b.finish(true)
	} else if err != nil {
		err = ctxErr(b.ctx, err)
	}
	return n, err
}

// Close may be called while a Read is blocked: closing the connection
// ends that Read.
func (b *body) Close() error {
	b.finish(b.eof.Load())
	return nil
}

// finish lets the connection go, once: to the idle pool after a complete
// answer, if both sides keep it alive and the context never fired.
func (b *body) finish(complete bool) {
	b.once.Do(func() {
		fired := !b.stop()
		if complete && b.reuse && !fired && b.c.br.Buffered() == 0 {
			b.t.put(b.c)
			return
		}
		b.c.nc.Close()
	})
}

// get returns an idle connection to key that is still open (reused), or
// dials.
func (t *Transport) get(ctx context.Context, key, addr, host string) (c *conn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for {
		list := t.idle[key]
		if len(list) == 0 {
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[key] = list[:len(list)-1]
		if now.Sub(c.idleAt) < t.idleTimeout() {
			t.mu.Unlock()
			if c.alive() {
				return c, true, nil
			}
			c.nc.Close()
			t.mu.Lock()
			continue
		}
		c.nc.Close()
	}
	t.mu.Unlock()
	c, err = t.dial(ctx, key, addr, host)
	return c, false, err
}

// put keeps c for reuse, closing the oldest idle connections that have
// been idle too long or are beyond the pool's size.
func (t *Transport) put(c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.idle = make(map[string][]*conn)
	}
	list := append(t.idle[c.key], c)
	drop := 0
	for drop < len(list)-1 && (len(list)-drop > t.maxIdle() || c.idleAt.Sub(list[drop].idleAt) >= t.idleTimeout()) {
		list[drop].nc.Close()
		list[drop] = nil
		drop++
	}
	t.idle[c.key] = list[drop:]
}

// CloseIdleConnections closes every idle connection (http.Client calls
// it from its own CloseIdleConnections).
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
}

func (t *Transport) dial(ctx context.Context, key, addr, host string) (*conn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	// Dialling and the TLS handshake end in 10 s even when the request's
	// own context has no deadline.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.dials.Add(1)
	c := &conn{key: key, nc: raw, raw: raw}
	if strings.HasPrefix(key, "https:") {
		tc := tls.Client(raw, t.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		c.nc, c.tls = tc, true
	}
	c.br = bufio.NewReaderSize(c.nc, bufSize(t.ReadBufferSize))
	c.bw = bufio.NewWriterSize(c.nc, bufSize(t.WriteBufferSize))
	return c, nil
}

// tlsConfig is TLSClientConfig for host, made once per host so that
// sessions resume.
func (t *Transport) tlsConfig(host string) *tls.Config {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cfg := t.tlsFor[host]; cfg != nil {
		return cfg
	}
	cfg := &tls.Config{}
	if t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	cfg.NextProtos = nil // HTTP/1.1 only
	if t.tlsFor == nil {
		t.tlsFor = make(map[string]*tls.Config)
	}
	t.tlsFor[host] = cfg
	return cfg
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleConnTimeout > 0 {
		return t.IdleConnTimeout
	}
	return 50 * time.Second
}

func (t *Transport) maxIdle() int {
	if t.MaxIdleConnsPerHost > 0 {
		return t.MaxIdleConnsPerHost
	}
	return 512
}

func bufSize(n int) int {
	if n > 0 {
		return n
	}
	return 64 << 10
}

// target is the pool key, dial address and TLS host name of req's URL.
func target(req *http.Request) (key, addr, host string, err error) {
	u := req.URL
	if u == nil {
		return "", "", "", errors.New("h1: request has no URL")
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", "", "", fmt.Errorf("h1: unsupported URL scheme %q", u.Scheme)
	}
	host = u.Hostname()
	if host == "" {
		return "", "", "", errors.New("h1: URL has no host")
	}
	addr = net.JoinHostPort(host, port)
	return u.Scheme + "://" + addr, addr, host, nil
}

// ctxErr is the context's error when it has ended (so a deadline reads
// as context.DeadlineExceeded, not as the connection's i/o timeout).
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
