// Command netfloor is make bench-proxy's floor for a proxy written on
// net/http: httputil.ReverseProxy in front of one upstream, reading each
// request body whole into a pooled buffer first (as cutover must, to
// mirror and re-sign it) and then forwarding it with a Transport tuned as
// cutover's (64 KiB buffers, a large idle pool, no compression). It
// mirrors nothing, decodes nothing and records nothing: what it adds over
// calling the upstream directly is what net/http itself costs on the
// host, the part of cutover's added latency that no change inside
// cutover can remove.
//
//	netfloor -listen 127.0.0.1:9315 -upstream http://127.0.0.1:9301
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/bufpool"
)

// maxBuffered is the largest body read whole; a larger or unsized one
// streams through.
const maxBuffered = 16 << 20

// bodies holds the request body buffers, read as cutover's proxy reads
// them (bufpool.Pool.Read).
var bodies bufpool.Pool

func main() {
	listen := flag.String("listen", "127.0.0.1:9315", "address to listen on (loopback)")
	upstream := flag.String("upstream", "", "the upstream's base URL, e.g. http://127.0.0.1:9301")
	flag.Parse()
	if err := run(*listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "netfloor:", err)
		os.Exit(2)
	}
}

func run(listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream %q: want a base URL such as http://127.0.0.1:9301", upstream)
	}
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback address (netfloor is a benchmark anchor, open to anyone who reaches it)", listen)
	}
	srv := &http.Server{Addr: listen, Handler: newHandler(u), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler is the floor proxy in front of u.
func newHandler(u *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     50 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength <= 0 || r.ContentLength > maxBuffered {
			rp.ServeHTTP(w, r)
			return
		}
		buf, _, err := bodies.Read(r.Body, maxBuffered, r.ContentLength)
		if err != nil {
			http.Error(w, "netfloor: reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		// The buffer is reused only once the Transport has written it: an
		// upstream may answer before it has read the whole body.
		var wrote atomic.Bool
		r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
		}))
		r.Body = io.NopCloser(bytes.NewReader(*buf)) // in memory: headers and body go out together
		rp.ServeHTTP(w, r)
		if wrote.Load() {
			bodies.Put(buf)
		} else {
			bodies.Forget(buf)
		}
	})
}
