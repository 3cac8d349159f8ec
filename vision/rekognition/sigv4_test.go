package rekognition

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutover/cutover/vision"
)

const (
	testAK = "AKIDVERIFYCLIENT1"
	testSK = "verify-secret-Pq19"
)

func lookup(id string) (string, bool) {
	if id == testAK {
		return testSK, true
	}
	return "", false
}

// signed returns a DetectLabels request for host signed by the real
// client codec (the SDK's signer) at t.
func signed(t testing.TB, body []byte, ak, sk string, at time.Time) *http.Request {
	t.Helper()
	c := NewCodec("http://proxy.internal:8080", "ap-southeast-1", aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk})
	c.Now = func() time.Time { return at }
	hr, err := http.NewRequest(http.MethodPost, "http://proxy.internal:8080/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", ContentType)
	hr.Header.Set("X-Amz-Target", "RekognitionService.DetectLabels")
	if err := c.Sign(context.Background(), hr, body); err != nil {
		t.Fatal(err)
	}
	return hr
}

func TestVerifyClient(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	body := []byte(`{"Image":{"Bytes":"aGVsbG8="},"MaxLabels":10}`)
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		vendor string
		status int
	}{
		{"valid", func() *http.Request { return signed(t, body, testAK, testSK, now) }, "", 0},
		{"valid, 14 minutes old", func() *http.Request { return signed(t, body, testAK, testSK, now.Add(-14*time.Minute)) }, "", 0},
		{"no Authorization", func() *http.Request {
			r := signed(t, body, testAK, testSK, now)
			r.Header.Del("Authorization")
			return r
		}, "MissingAuthenticationTokenException", 403},
		{"unknown key", func() *http.Request { return signed(t, body, "AKIDSOMEONEELSE", testSK, now) }, "UnrecognizedClientException", 403},
		{"wrong secret", func() *http.Request { return signed(t, body, testAK, "not-the-secret", now) }, "InvalidSignatureException", 403},
		{"body changed", func() *http.Request {
			r := signed(t, body, testAK, testSK, now)
			r.Body = http.NoBody
			return r
		}, "InvalidSignatureException", 403},
		{"target changed", func() *http.Request {
			r := signed(t, body, testAK, testSK, now)
			r.Header.Set("X-Amz-Target", "RekognitionService.DeleteCollection")
			return r
		}, "InvalidSignatureException", 403},
		{"query added", func() *http.Request {
			r := signed(t, body, testAK, testSK, now)
			r.URL.RawQuery = "x=1"
			return r
		}, "InvalidSignatureException", 403},
		{"16 minutes old", func() *http.Request { return signed(t, body, testAK, testSK, now.Add(-16*time.Minute)) }, "InvalidSignatureException", 403},
		{"16 minutes ahead", func() *http.Request { return signed(t, body, testAK, testSK, now.Add(16*time.Minute)) }, "InvalidSignatureException", 403},
		{"not SigV4", func() *http.Request {
			r := signed(t, body, testAK, testSK, now)
			r.Header.Set("Authorization", "Bearer x")
			return r
		}, "IncompleteSignatureException", 400},
		{"another service's scope", func() *http.Request {
			r := signed(t, body, testAK, testSK, now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/rekognition/", "/s3/", 1))
			return r
		}, "InvalidSignatureException", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req()
			b := body
			if r.Body == http.NoBody {
				b = []byte(`{"Image":{"Bytes":"d29ybGQ="}}`)
			}
			id, err := VerifyClient(r, b, lookup, now)
			if tc.vendor == "" {
				if err != nil || id != testAK {
					t.Fatalf("got %q %v, want %s", id, err, testAK)
				}
				return
			}
			e := vision.AsError(err)
			if err == nil || e.VendorCode != tc.vendor || e.Code != vision.CodeUnauthorized || statusOf(e.VendorCode) != tc.status {
				t.Fatalf("got %v (%s, status %d), want %s (%d)", err, e.VendorCode, statusOf(e.VendorCode), tc.vendor, tc.status)
			}
			if strings.Contains(e.Error(), testSK) {
				t.Error("the error shows the secret")
			}
		})
	}
}

// FuzzVerifyClient: any headers and body are answered with an error in
// Rekognition's terms or the key's id, never a panic; and a request the
// SDK signed over any body verifies.
func FuzzVerifyClient(f *testing.F) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	good := signed(f, []byte(`{}`), testAK, testSK, now)
	f.Add(good.Header.Get("Authorization"), good.Header.Get("X-Amz-Date"), "/", []byte(`{}`))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host;x-amz-date, Signature=00", "20261203T090000Z", "/?a=b", []byte("x"))
	f.Add("AWS4-HMAC-SHA256 ,,,==", "", "/%zz", []byte{})
	f.Fuzz(func(t *testing.T, auth, date, path string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "http://proxy.internal:8080/", bytes.NewReader(body))
		if err != nil {
			return
		}
		if u, err := r.URL.Parse(path); err == nil {
			r.URL = u
		}
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		id, err := VerifyClient(r, body, lookup, now)
		if err == nil && id != testAK {
			t.Fatalf("verified as %q", id)
		}
		if err != nil && vision.AsError(err).VendorCode == "" {
			t.Fatalf("error without Rekognition's name: %v", err)
		}
		s := signed(t, body, testAK, testSK, now)
		if _, err := VerifyClient(s, body, lookup, now); err != nil {
			t.Fatalf("a request the SDK signed did not verify: %v", err)
		}
	})
}

// BenchmarkVerifyAndResign is what client verification costs the proxy
// per request with a 100 KB body: the client's signature checked, then
// the request signed again with the legacy's credentials.
func BenchmarkVerifyAndResign(b *testing.B) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	body := bytes.Repeat([]byte("A"), 100_000)
	req := signed(b, body, testAK, testSK, now)
	legacy := NewCodec("http://rekognition.ap-southeast-1.amazonaws.com", "ap-southeast-1", aws.Credentials{AccessKeyID: "AKIDLEGACY", SecretAccessKey: "legacy-secret"})
	legacy.Now = func() time.Time { return now }
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, hash, err := VerifyClientHash(req, body, lookup, now)
		if err != nil {
			b.Fatal(err)
		}
		out := req.Clone(context.Background())
		if err := legacy.SignHashed(context.Background(), out, hash); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyClientHash: the payload hash a verification returns is the
// body's, and signing with it is signing the body; a refused request
// returns none.
func TestVerifyClientHash(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	body := []byte(`{"Image":{"Bytes":"aGVsbG8="},"MaxLabels":10}`)
	id, hash, err := VerifyClientHash(signed(t, body, testAK, testSK, now), body, lookup, now)
	sum := sha256.Sum256(body)
	if err != nil || id != testAK || hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("VerifyClientHash: %q %q %v", id, hash, err)
	}
	legacy := NewCodec("http://rekognition.ap-southeast-1.amazonaws.com", "ap-southeast-1", aws.Credentials{AccessKeyID: "AKIDLEGACY", SecretAccessKey: "legacy-secret"})
	legacy.Now = func() time.Time { return now }
	a, b := signed(t, body, testAK, testSK, now), signed(t, body, testAK, testSK, now)
	if err := legacy.Sign(context.Background(), a, body); err != nil {
		t.Fatal(err)
	}
	if err := legacy.SignHashed(context.Background(), b, hash); err != nil {
		t.Fatal(err)
	}
	if a.Header.Get("Authorization") == "" || a.Header.Get("Authorization") != b.Header.Get("Authorization") {
		t.Errorf("Sign and SignHashed differ:\n%s\n%s", a.Header.Get("Authorization"), b.Header.Get("Authorization"))
	}
	if _, hash, err := VerifyClientHash(signed(t, body, testAK, "wrong-secret", now), body, lookup, now); err == nil || hash != "" {
		t.Errorf("a wrong signature: hash %q, err %v", hash, err)
	}
}
