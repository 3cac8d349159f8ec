package h1

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echo answers with the request's method, path, a header and its body,
// and counts the connections it accepted.
func echoServer(t *testing.T, tlsOn bool, idle ...time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server read: %v", err)
		}
		w.Header().Set("X-Len", strconv.Itoa(len(b)))
		fmt.Fprintf(w, "%s %s %s|", r.Method, r.URL.Path, r.Header.Get("X-Id"))
		w.Write(b)
	})
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	if len(idle) > 0 {
		s.Config.IdleTimeout = idle[0]
	}
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s, &conns
}

func post(t *testing.T, c *http.Client, url, id string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Id", id)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("request %s: %v", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("request %s: reading the answer: %v", id, err)
	}
	return resp, string(b)
}

func TestReuseAndConcurrency(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			s, conns := echoServer(t, tlsOn)
			tr := &Transport{}
			if tlsOn {
				tr.TLSClientConfig = &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			}
			c := &http.Client{Transport: tr}
			defer c.CloseIdleConnections()

			for i := range 20 {
				body := bytes.Repeat([]byte{byte('a' + i%26)}, 70_000+i)
				resp, got := post(t, c, s.URL+"/seq", strconv.Itoa(i), body)
				want := fmt.Sprintf("POST /seq %d|%s", i, body)
				if got != want || resp.Header.Get("X-Len") != strconv.Itoa(len(body)) {
					t.Fatalf("request %d: answer of %d bytes, want %d", i, len(got), len(want))
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("20 sequential requests used %d connections, want 1", n)
			}

			// Concurrent calls never see each other's answers.
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Go(func() {
					for i := range 25 {
						id := fmt.Sprintf("%d-%d", g, i)
						body := []byte(strings.Repeat(id, 100*(i%5+1)))
						_, got := post(t, c, s.URL+"/par", id, body)
						if want := fmt.Sprintf("POST /par %s|%s", id, body); got != want {
							t.Errorf("request %s got someone else's answer (%.40q)", id, got)
						}
					}
				})
			}
			wg.Wait()
			if n := conns.Load(); n > 17 {
				t.Fatalf("16 concurrent callers opened %d connections", n)
			}
		})
	}
}

// A connection the server closed while it sat idle is not used: the next
// request goes out on a fresh one and succeeds.
func TestServerClosedIdle(t *testing.T) {
	s, conns := echoServer(t, false, 20*time.Millisecond)
	c := &http.Client{Transport: &Transport{}}
	for i := range 5 {
		if _, got := post(t, c, s.URL+"/", strconv.Itoa(i), []byte("x")); got != "POST / "+strconv.Itoa(i)+"|x" {
			t.Fatalf("request %d: %q", i, got)
		}
		time.Sleep(80 * time.Millisecond) // the server closes the idle connection
	}
	if n := conns.Load(); n != 5 {
		t.Fatalf("%d connections, want 5 (one per request)", n)
	}
}

// The transport's own idle timeout closes old connections rather than
// reusing them.
func TestIdleTimeout(t *testing.T) {
	s, conns := echoServer(t, false)
	tr := &Transport{IdleConnTimeout: 30 * time.Millisecond}
	c := &http.Client{Transport: tr}
	post(t, c, s.URL+"/", "1", nil)
	post(t, c, s.URL+"/", "2", nil)
	time.Sleep(60 * time.Millisecond)
	post(t, c, s.URL+"/", "3", nil)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// Answers framed every way net/http frames them arrive whole; those that
// end the connection are not reused.
func TestFraming(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "chunk%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/continue", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "after 103")
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "throttled", http.StatusTooManyRequests)
	})
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(mux)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	defer s.Close()
	c := &http.Client{Transport: &Transport{}}
	for _, tc := range []struct {
		path, want string
		status     int
	}{
		{"/chunked", "chunk0;chunk1;chunk2;chunk3;chunk4;", 200},
		{"/empty", "", 204},
		{"/continue", "after 103", 200},
		{"/error", "throttled\n", 429},
		{"/chunked", "chunk0;chunk1;chunk2;chunk3;chunk4;", 200},
		{"/close", "bye", 200},
		{"/empty", "", 204},
	} {
		resp, got := post(t, c, s.URL+tc.path, "", []byte("b"))
		if got != tc.want || resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, got, tc.status, tc.want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (a new one only after Connection: close)", n)
	}
}

// An answer closed before its end closes the connection at once, without
// reading the rest, and the next request is not confused by it.
func TestEarlyClose(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 50<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "small") })
	s := httptest.NewServer(mux)
	defer s.Close()
	tr := &Transport{}
	c := &http.Client{Transport: tr}
	for range 3 {
		resp, err := c.Post(s.URL+"/big", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1000)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp.Body.Close()
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("Close took %v: it read the rest of the answer", d)
		}
		if _, got := post(t, c, s.URL+"/small", "", nil); got != "small" {
			t.Fatalf("after an early close: %q", got)
		}
	}
	// The first big answer dials; every small one dials again, because
	// the connection before it was closed early (the next big one reuses
	// the small one's).
	if n := tr.Dials(); n != 4 {
		t.Fatalf("%d dials, want 4 (an early-closed connection is never reused)", n)
	}
}

// A deadline or a cancellation ends the call wherever it is, and the
// error says which.
func TestContext(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/slowbody", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	s := httptest.NewServer(mux)
	defer s.Close()
	defer close(release)
	c := &http.Client{Transport: &Transport{}}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/hang", strings.NewReader("x"))
	start := time.Now()
	_, err := c.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("hung server: %v after %v, want DeadlineExceeded after 50ms", err, time.Since(start))
	}

	ctx, cancel = context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/slowbody", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(30*time.Millisecond, cancel)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "first" || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled mid-body: %q, %v", b, err)
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/hang", nil)
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("already cancelled: %v", err)
	}
}

// closeCounter records that the transport closed a request body.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// The request body is closed on every path, as RoundTrip must, and
// transport errors are errors, not answers.
func TestBodyClosedAndErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	tr := &Transport{}

	for _, url := range []string{"http://" + addr + "/", "ftp://" + addr + "/", "http:///nohost"} {
		b := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(http.MethodPost, url, b)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Fatalf("%s: no error", url)
		}
		if b.closed.Load() != 1 {
			t.Fatalf("%s: body closed %d times, want 1", url, b.closed.Load())
		}
	}

	// A server that resets the connection mid-answer.
	addr = rawServer(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		c.(*net.TCPConn).SetLinger(0)
	})
	b := &closeCounter{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", b)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(got) != "partial" {
		t.Fatalf("truncated answer: %q, %v; want an error", got, err)
	}
	if b.closed.Load() != 1 {
		t.Fatalf("body closed %d times", b.closed.Load())
	}
	// Malformed status line.
	addr = rawServer(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		io.WriteString(c, "NOT HTTP AT ALL\r\n\r\n")
	})
	req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader("x"))
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("malformed answer: no error")
	}
}

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// A request with a body of known length goes out in one write with its
// headers, whatever the body's type; one of unknown length is chunked.
func TestOneWrite(t *testing.T) {
	s, _ := echoServer(t, false)
	var writes atomic.Int64
	d := &net.Dialer{}
	tr := &Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, n, a)
		return countingConn{c, &writes}, err
	}}
	c := &http.Client{Transport: tr}
	body := bytes.Repeat([]byte("q"), 40_000)
	for i := range 10 {
		cc := &closeCounter{Reader: bytes.NewReader(body)} // not a type net/http knows is in memory
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/one", cc)
		req.ContentLength = int64(len(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != "POST /one |"+string(body) {
			t.Fatalf("request %d: wrong answer (%d bytes)", i, len(got))
		}
		if n := writes.Swap(0); n != 1 {
			t.Fatalf("request %d went out in %d writes, want 1", i, n)
		}
		if cc.closed.Load() != 1 {
			t.Fatalf("request %d: body closed %d times", i, cc.closed.Load())
		}
	}
	// Unknown length: chunked, and still whole at the server.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/chunked", io.MultiReader(bytes.NewReader(body[:100]), bytes.NewReader(body[100:])))
	req.ContentLength = -1
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "POST /chunked |"+string(body) || resp.Header.Get("X-Len") != "40000" {
		t.Fatalf("chunked upload arrived as %d bytes", len(got))
	}
}

// A server that answers each connection's first request and drops the
// connection on its second, without answering: an idempotent request is
// sent again on a new connection, a POST is not (it may have been acted
// on) and fails.
func TestRetryOnlyIdempotent(t *testing.T) {
	var received sync.Map // method -> *atomic.Int64
	count := func(m string) *atomic.Int64 {
		v, _ := received.LoadOrStore(m, new(atomic.Int64))
		return v.(*atomic.Int64)
	}
	url := "http://" + rawServer(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		for n := 0; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			count(req.Method).Add(1)
			if n == 1 {
				return // dropped without an answer
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}) + "/"
	c := &http.Client{Transport: &Transport{}}
	get := func() (string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for i := range 4 {
		if got, err := get(); err != nil || got != "ok" {
			t.Fatalf("GET %d: %q, %v", i, got, err)
		}
	}
	// Each connection answers once and drops its second request: 4 GETs
	// answered took 3 dropped ones sent again.
	if n := count(http.MethodGet).Load(); n != 7 {
		t.Fatalf("server received %d GETs, want 7", n)
	}
	// The last GET's connection is idle, its next request to be dropped:
	// a POST on it fails, sent once; the next POST dials and succeeds.
	if _, err := c.Post(url, "text/plain", strings.NewReader("x")); err == nil {
		t.Fatal("dropped POST: no error")
	}
	if n := count(http.MethodPost).Load(); n != 1 {
		t.Fatalf("server received %d POSTs, want 1 (never sent twice)", n)
	}
	resp, err := c.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("POST on a new connection: %v", err)
	}
	resp.Body.Close()
	if n := count(http.MethodPost).Load(); n != 2 {
		t.Fatalf("server received %d POSTs, want 2", n)
	}
}

// rawServer serves every connection with handle, which speaks raw bytes,
// and closes the connection when handle returns; it returns the address.
func rawServer(t *testing.T, handle func(net.Conn)) string {
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
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// FuzzResponse: whatever bytes an upstream answers with, RoundTrip
// returns an answer or an error (never panics or hangs), and an answer's
// body reads to its end or to an error.
func FuzzResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nuntil close"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		tr := &Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				go io.Copy(io.Discard, server) // the request
				server.Write(answer)
			}()
			return client, nil
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for range 2 { // the second call may reuse the connection
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.test/", strings.NewReader("body"))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			t.Fatal("RoundTrip hung on this answer")
		}
	})
}
