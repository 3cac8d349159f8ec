package bufpool_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cutover/cutover/internal/bufpool"
)

func pooledRequest(t *testing.T, ctx context.Context, url string, content []byte) *http.Request {
	t.Helper()
	buf := bufpool.RequestBodies.Get(len(content))
	*buf = append(*buf, content...)
	hr, err := bufpool.NewRequest(ctx, http.MethodPost, url, buf)
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

// TestPooledRequest: a pooled body reaches a real server byte for byte,
// and its buffer goes back once net/http has written it.
func TestPooledRequest(t *testing.T) {
	pool := &bufpool.RequestBodies
	pool.Poison(true) // bytes read after their buffer went back show as 0xDB
	defer pool.Poison(false)
	start := pool.Live()
	content := bytes.Repeat([]byte("cutover-"), 20000)
	want := sha256.Sum256(content)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(b)
		io.WriteString(w, hex.EncodeToString(sum[:]))
	}))
	defer srv.Close()
	for range 50 {
		hr := pooledRequest(t, context.Background(), srv.URL, content)
		if hr.ContentLength != int64(len(content)) || hr.GetBody != nil {
			t.Fatalf("ContentLength %d (want %d), GetBody %v (want none: sent once)", hr.ContentLength, len(content), hr.GetBody != nil)
		}
		resp, err := http.DefaultClient.Do(hr)
		bufpool.ReleaseRequest(hr, err)
		bufpool.ReleaseRequest(hr, err) // twice is harmless
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != hex.EncodeToString(want[:]) {
			t.Fatalf("the server read a different body")
		}
	}
	if n := pool.Live() - start; n != 0 {
		t.Errorf("%d body buffers never went back", n)
	}
}

// TestPooledRequestOneWrite: net/http sees the body as in memory and
// writes a small request's headers and body in one write.
func TestPooledRequestOneWrite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	var writes atomic.Int64
	d := &net.Dialer{}
	tr := &http.Transport{WriteBufferSize: 64 << 10, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return countingConn{c, &writes}, err
	}}
	defer tr.CloseIdleConnections()
	for range 3 {
		hr := pooledRequest(t, context.Background(), srv.URL, bytes.Repeat([]byte("x"), 4000))
		before := writes.Load()
		resp, err := tr.RoundTrip(hr)
		bufpool.ReleaseRequest(hr, err)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n := writes.Load() - before; n != 1 {
			t.Errorf("the request went out in %d writes, want 1", n)
		}
	}
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// TestPooledRequestFailures: a request that never reached a server is
// forgotten (not reused, no longer live); one never sent is released.
func TestPooledRequestFailures(t *testing.T) {
	pool := &bufpool.RequestBodies
	start := pool.Live()
	hr := pooledRequest(t, context.Background(), "http://127.0.0.1:1/", []byte(strings.Repeat("y", 20000)))
	_, err := http.DefaultClient.Do(hr)
	if err == nil {
		t.Fatal("a closed port answered")
	}
	bufpool.ReleaseRequest(hr, err)
	if n := pool.Live() - start; n != 0 {
		t.Errorf("%d buffers live after a failed dial", n)
	}
	hr = pooledRequest(t, context.Background(), "http://127.0.0.1:1/", []byte(strings.Repeat("z", 20000)))
	bufpool.DiscardRequest(hr)
	if n := pool.Live() - start; n != 0 {
		t.Errorf("%d buffers live after a discarded request", n)
	}
}
