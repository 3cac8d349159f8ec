package bufpool_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cutover/cutover/internal/bufpool"
)

func pooledRequest(t *testing.T, url string, content []byte) *http.Request {
	t.Helper()
	buf := bufpool.RequestBodies.Get(len(content))
	*buf = append(*buf, content...)
	hr, err := bufpool.NewRequest(context.Background(), http.MethodPost, url, buf)
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

// TestPooledRequest: a pooled body reaches a real server byte for byte,
// and its buffer goes back only when the request and every reader the
// transport took have let go.
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
		hr := pooledRequest(t, srv.URL, content)
		if hr.ContentLength != int64(len(content)) {
			t.Fatalf("ContentLength %d, want %d", hr.ContentLength, len(content))
		}
		resp, err := http.DefaultClient.Do(hr)
		bufpool.ReleaseRequest(hr)
		bufpool.ReleaseRequest(hr) // twice is harmless
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

	// A retry's body (GetBody) outlives the first body's Close and the
	// request's release, as when a reused connection turns out closed.
	hr := pooledRequest(t, "http://127.0.0.1:1/", content)
	hr.Body.Close()
	again, err := hr.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	bufpool.ReleaseRequest(hr)
	if pool.Live()-start != 1 {
		t.Fatalf("buffer went back while a retry's body was open")
	}
	b, _ := io.ReadAll(again)
	if !bytes.Equal(b, content) {
		t.Fatalf("a retry's body read %d bytes, not the content", len(b))
	}
	again.Close()
	if n := pool.Live() - start; n != 0 {
		t.Errorf("%d body buffers never went back", n)
	}
}
