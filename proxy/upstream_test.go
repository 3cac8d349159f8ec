package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// rawServer is a TCP server on loopback that reads one request head per
// connection and then does what answer says with the connection.
func rawServer(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				answer(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestPrimaryTimeout: a primary that never answers gets the client a 504
// with a plain-text reason within the primary's timeout, recorded with
// code timeout and counted.
func TestPrimaryTimeout(t *testing.T) {
	hung := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // reads forever, never answers
	e := newEnv(t, envOpts{primaryURL: hung, primaryExtra: "timeout: 300ms"})
	img := e.images(t)[0]
	start := time.Now()
	r := e.send(t, "hung", img)
	el := time.Since(start)
	if r.err != nil || r.status != http.StatusGatewayTimeout {
		t.Fatalf("client got %d %v, want 504", r.status, r.err)
	}
	if el < 300*time.Millisecond || el > 3*time.Second {
		t.Errorf("the 504 came after %v; the timeout is 300ms (the default would be 10s)", el)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(string(r.body), "did not answer within its timeout (300ms)") {
		t.Errorf("504 body %q (%s)", r.body, ct)
	}
	if m := scrape(t, e, "cutover_upstream_failures_total"); !strings.Contains(m, `cutover_upstream_failures_total{code="timeout"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
	var prim *record.Observation
	for _, o := range e.observations(t) {
		if o.Role == record.RolePrimary {
			prim = &o
		}
	}
	if prim == nil || prim.Code != string(vision.CodeTimeout) || prim.Status != http.StatusGatewayTimeout || !prim.Served {
		t.Errorf("primary observation %+v, want code timeout, status 504, served", prim)
	}
}

// TestPrimaryMisbehaves: answers the Transport must not relay: a 12 MB
// response header, and an endless run of 1xx responses, end as 502 and
// are counted; the proxy does not hold the header in memory nor loop on
// the 1xx responses.
func TestPrimaryMisbehaves(t *testing.T) {
	var informational atomic.Int64
	for _, tc := range []struct {
		name   string
		answer func(c net.Conn)
		reason string
	}{
		{"12 MB header", func(c net.Conn) {
			bw := bufio.NewWriterSize(c, 64<<10)
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nX-Huge: ")
			chunk := strings.Repeat("a", 64<<10)
			for i := 0; i < 12<<20/len(chunk); i++ {
				if _, err := bw.WriteString(chunk); err != nil {
					return
				}
			}
			bw.WriteString("\r\nContent-Length: 2\r\n\r\n{}")
			bw.Flush()
		}, "response headers passed the 1048576-byte limit"},
		{"endless 103", func(c net.Conn) {
			for {
				if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"); err != nil {
					return
				}
				informational.Add(1)
			}
		}, "too many 1xx informational responses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := rawServer(t, tc.answer)
			e := newEnv(t, envOpts{primaryURL: srv, primaryExtra: "timeout: 5s"})
			r := e.send(t, "bad", e.images(t)[0])
			if r.err != nil || r.status != http.StatusBadGateway || !strings.Contains(string(r.body), tc.reason) {
				t.Fatalf("client got %d %q %v, want 502 saying %q", r.status, r.body, r.err, tc.reason)
			}
			if m := scrape(t, e, "cutover_upstream_failures_total"); !strings.Contains(m, `cutover_upstream_failures_total{code="invalid_response"} 1`) {
				t.Errorf("metrics:\n%s", m)
			}
		})
	}
	// The proxy gives up after a handful of 1xx responses; the server
	// fills the socket buffers (a few thousand) before it notices the
	// connection closed, but does not go on to millions.
	if n := informational.Load(); n > 100_000 {
		t.Errorf("the proxy consumed %d 1xx responses", n)
	}
}

// TestObservationsCarryTrace: the proxy's observations split each call
// into the httptrace phases bench records: the first call on a
// connection dials it, later ones reuse it; time to first byte is set.
func TestObservationsCarryTrace(t *testing.T) {
	e := newEnv(t, envOpts{})
	imgs := e.images(t)
	for i := range 5 {
		if r := e.send(t, fmt.Sprint("t", i), imgs[i]); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	reused, dialed := 0, 0
	for _, o := range e.observations(t) {
		if o.Trace == nil || o.Trace.TTFBNS <= 0 || o.Trace.TTFBNS > o.LatencyNS {
			t.Fatalf("%s observation without a sound trace: %+v (latency %d)", o.Role, o.Trace, o.LatencyNS)
		}
		if o.Role != record.RolePrimary {
			continue
		}
		if o.Trace.Reused {
			reused++
		} else if o.Trace.ConnectNS > 0 {
			dialed++
		}
	}
	if dialed < 1 || reused < 1 {
		t.Errorf("primary calls: %d dialed, %d reused; want both", dialed, reused)
	}
}

// TestServeErrorEndsRun: a listener that fails ends Run with its error
// (after the orderly shutdown), rather than leaving a proxy that accepts
// nothing.
func TestServeErrorEndsRun(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.p.ln.(*net.TCPListener).Close() // the client listener dies under the server
	select {
	case err := <-e.done:
		e.stopped, e.runErr = true, err
		if err == nil || !strings.Contains(err.Error(), "proxy.listen") || errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Run returned %v, want the listener's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end when its listener failed")
	}
	e.rec.Close()
}

func scrape(t *testing.T, e *env, prefix string) string {
	t.Helper()
	resp, err := http.Get(e.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return grepLines(string(b), prefix)
}

// TestLentBodyWrites: the upstream Transport writes a lent body in one
// write whatever its size: a small one with its headers, a large one
// (over bufpool's in-memory size) right after them, never in 32 KiB
// pieces through a copy buffer.
func TestLentBodyWrites(t *testing.T) {
	for _, tc := range []struct {
		size   int
		writes int64
	}{{4 << 10, 1}, {100 << 10, 2}, {1 << 20, 2}} {
		content := bytes.Repeat([]byte("b"), tc.size)
		got := make(chan int, 1)
		url := rawServerBody(t, got)
		var writes atomic.Int64
		tr := newTransport(&tls.Config{}, 4, 0)
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			return bodyConn{writeCounter{c, &writes}}, err
		}
		var released atomic.Bool
		body, loan := bufpool.Lend(content, func() { released.Store(true) }, func() {})
		hr, err := http.NewRequest(http.MethodPost, url, body)
		if err != nil {
			t.Fatal(err)
		}
		hr.ContentLength = int64(len(content))
		tracer := record.NewTracer(time.Now())
		tracer.Loan = loan
		resp, err := tr.RoundTrip(hr.WithContext(tracer.Context(context.Background())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if n := <-got; n != tc.size {
			t.Fatalf("%d-byte body: the server read %d bytes", tc.size, n)
		}
		if n := writes.Load(); n != tc.writes {
			t.Errorf("%d-byte body: the request went out in %d writes, want %d", tc.size, n, tc.writes)
		}
		if !released.Load() {
			t.Errorf("%d-byte body: the loan was not returned once written", tc.size)
		}
	}
}

// rawServerBody answers 204 to each request and sends the length of its
// body on got.
func rawServerBody(t *testing.T, got chan<- int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- int(n)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}
