package secret

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
)

func TestScrubber(t *testing.T) {
	s := New("AIzaSyFAKE+key/1", "sk-live-123", "")
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"key sk-live-123 leaked", "key [redacted] leaked"},
		{`Post "https://vision.example/v1/images:annotate?key=AIzaSyFAKE%2Bkey%2F1": dial tcp: refused`,
			`Post "https://vision.example/v1/images:annotate?key=[redacted]": dial tcp: refused`},
		{"raw AIzaSyFAKE+key/1 and escaped AIzaSyFAKE%2Bkey%2F1", "raw [redacted] and escaped [redacted]"},
		// Not configured, but a credential by convention.
		{"GET https://x.example/a?alt=json&api_key=unknown123&b=1", "GET https://x.example/a?alt=json&api_key=[redacted]&b=1"},
		{"https://s3.example/o?X-Amz-Signature=abcdef&X-Amz-Credential=AK%2F2026", "https://s3.example/o?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]"},
		{"grant_type=client_credentials&client_id=id&client_secret=shh", "grant_type=client_credentials&client_id=id&client_secret=[redacted]"},
		{"monkey=business?keyboard=1", "monkey=business?keyboard=1"},
	} {
		if got := s.String(tc.in); got != tc.want {
			t.Errorf("String(%q)\ngot  %q\nwant %q", tc.in, got, tc.want)
		}
	}
	if got := New("k", "ab").String("keep the key in a bank"); got != "keep the key in a bank" {
		t.Errorf("short strings scrubbed: %q", got)
	}
	var nilS *Scrubber
	if got := nilS.String("a?key=b"); got != "a?key=[redacted]" {
		t.Errorf("nil scrubber: got %q", got)
	}
}

func TestWrapKeepsChain(t *testing.T) {
	s := New("topsecret")
	u := &url.Error{Op: "Get", URL: "http://h/?key=topsecret", Err: io.ErrUnexpectedEOF}
	err := s.Wrap(fmt.Errorf("fetching: %w", u))
	if strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("secret in %q", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("errors.Is lost the cause")
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Error("errors.As lost the url.Error")
	}
	if s.Wrap(nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
}
