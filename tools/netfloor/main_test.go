package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestFloorRelaysBodies: the floor proxy hands each body to the upstream
// byte for byte, concurrently and with its buffers reused, and answers
// with the upstream's answer.
func TestFloorRelaysBodies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(b)
		w.Header().Set("X-Path", r.URL.Path)
		io.WriteString(w, hex.EncodeToString(sum[:]))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	floor := httptest.NewServer(newHandler(u))
	defer floor.Close()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i*7919)
			want := sha256.Sum256(body)
			resp, err := http.Post(floor.URL+"/detect", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if string(got) != hex.EncodeToString(want[:]) || resp.Header.Get("X-Path") != "/detect" {
				t.Errorf("body %d: the upstream saw another body or path (%s, %q)", i, got, resp.Header.Get("X-Path"))
			}
		}()
	}
	wg.Wait()
}

// TestFloorListensOnLoopbackOnly: netfloor is an anchor for benchmarks,
// with no protection: it refuses any other address.
func TestFloorListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9315", "localhost"} {
		err := run(addr, "http://127.0.0.1:9301")
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("-listen %s: got %v, want a refusal", addr, err)
		}
	}
	if err := run("127.0.0.1:0", "no-url"); err == nil || !strings.Contains(err.Error(), "-upstream") {
		t.Errorf("a bad -upstream: got %v", err)
	}
}
