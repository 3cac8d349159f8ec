// Package visiontest holds test helpers for wire formats and the code that
// uses them: the conformance suite every wire format's tests run (request and
// result round trips through a real loopback HTTP server, typed error round
// trips, bad input answered with the format's own error body, golden files)
// and small real images (valid PNG and JPEG bytes, distinct per seed).
//
// It is imported by tests only.
package visiontest

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/vision"
)

// Update rewrites golden files: go test ./vision/... -update.
var Update = flag.Bool("update", false, "rewrite golden files under testdata/")

// Golden compares got with testdata/name, rewriting it under -update.
func Golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test -update to create it)", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden %s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// Image is the small PNG the suites send.
var Image = PNG(4, 3, 1)

// Suite describes one wire format for the conformance tests.
type Suite struct {
	Server vision.ServerCodec
	// NewClient returns a client codec for a server at baseURL.
	NewClient func(baseURL string) vision.ClientCodec
	// Request is what the client sends; WantDecoded is what the server must
	// decode from it (formats lose what their wire cannot carry).
	Request     vision.Request
	WantDecoded func(sent vision.Request) vision.Request
	// Result is what the server answers; WantResult is what the client must
	// decode from it.
	Result     vision.Result
	WantResult vision.Result
	// Errors maps each typed code the server answers to the code the
	// client must decode from the format's own error body.
	Errors map[vision.Code]vision.Code
	// BadInputs are malformed calls with the status and typed code expected.
	BadInputs []BadInput
	// LLM is true for vision-LLM formats: requests carry LLM parameters and
	// results carry token usage.
	LLM bool
}

// BadInput is one malformed call.
type BadInput struct {
	Name       string
	Request    func(baseURL string) *http.Request
	WantStatus int
	WantCode   vision.Code
}

type recorder struct {
	mu   sync.Mutex
	got  []vision.Request
	res  vision.Result
	err  error
	hits int
}

func (r *recorder) Classify(ctx context.Context, req vision.Request) (vision.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	r.got = append(r.got, req)
	return r.res, r.err
}

// Run runs every conformance test.
func Run(t *testing.T, s Suite) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, s) })
	t.Run("Errors", func(t *testing.T) { errorsRoundTrip(t, s) })
	t.Run("BadInput", func(t *testing.T) { badInput(t, s) })
}

func serve(t *testing.T, s Suite, p vision.Provider) *httptest.Server {
	srv := httptest.NewServer(vision.Serve(s.Server, p))
	t.Cleanup(srv.Close)
	return srv
}

func roundTrip(t *testing.T, s Suite) {
	rec := &recorder{res: s.Result}
	srv := serve(t, s, rec)
	c := &vision.Client{Codec: s.NewClient(srv.URL), Timeout: 5 * time.Second}
	got, err := c.Classify(context.Background(), s.Request)
	if err != nil {
		t.Fatalf("Classify: %v", err)
	}
	if len(rec.got) != 1 {
		t.Fatalf("server saw %d requests", len(rec.got))
	}
	want := s.WantDecoded(s.Request)
	dec := rec.got[0]
	dec.Image.Lease.Release() // compared without the bytes (and their pool)
	dec.Image.Bytes, dec.Image.Lease = nil, nil
	want.Image.Bytes = nil
	// LLM parameters and token usage are format-specific: their own tests
	// check them; here they must only be present when the format has them.
	if (dec.LLM != nil) != s.LLM {
		t.Errorf("decoded LLM parameters: got %v, format has them: %v", dec.LLM != nil, s.LLM)
	}
	dec.LLM = nil
	if !reflect.DeepEqual(dec, want) {
		t.Errorf("decoded request:\ngot  %+v\nwant %+v", dec, want)
	}
	got.Raw = nil
	if (got.Usage != nil) != s.LLM {
		t.Errorf("decoded usage: got %v, format has it: %v", got.Usage, s.LLM)
	}
	got.Usage = nil
	if !reflect.DeepEqual(got, s.WantResult) {
		t.Errorf("decoded result:\ngot  %+v\nwant %+v", got, s.WantResult)
	}
}

func errorsRoundTrip(t *testing.T, s Suite) {
	for sent, want := range s.Errors {
		rec := &recorder{err: vision.Errorf(sent, "injected %s", sent)}
		srv := serve(t, s, rec)
		c := &vision.Client{Codec: s.NewClient(srv.URL), Timeout: 5 * time.Second}
		_, err := c.Classify(context.Background(), s.Request)
		if got := vision.ErrorCode(err); got != want {
			t.Errorf("server answered %s: client decoded %s (%v), want %s", sent, got, err, want)
		}
	}
}

func badInput(t *testing.T, s Suite) {
	rec := &recorder{res: s.Result}
	srv := serve(t, s, rec)
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, bi := range s.BadInputs {
		t.Run(bi.Name, func(t *testing.T) {
			before := rec.hits
			resp, err := hc.Do(bi.Request(srv.URL))
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != bi.WantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, bi.WantStatus, trim(body))
			}
			cc := s.NewClient(srv.URL)
			_, derr := cc.DecodeResponse(resp, body)
			if got := vision.ErrorCode(derr); got != bi.WantCode {
				t.Errorf("client decoded %q from %s, want %s", got, trim(body), bi.WantCode)
			}
			if rec.hits != before {
				t.Errorf("bad input reached the provider")
			}
		})
	}
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// Post builds a POST with the given headers and body.
func Post(url, contentType string, body []byte, headers ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// Huge is n bytes of a valid JPEG header followed by filler: an image over a
// size limit.
func Huge(n int) []byte {
	b := make([]byte, n)
	copy(b, JPEG(8, 8, 3))
	return b
}

// Bad returns a BadInput.
func Bad(name string, req func(baseURL string) *http.Request, status int, code vision.Code) BadInput {
	return BadInput{Name: name, Request: req, WantStatus: status, WantCode: code}
}
