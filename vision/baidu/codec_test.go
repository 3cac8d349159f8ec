package baidu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

const (
	testAK = "baidu-api-key-T1"
	testSK = "baidu-secret-key-Zz9"
)

// newClient is a client whose token is already cached: the conformance
// suite's server serves advanced_general only.
func newClient(u string) vision.ClientCodec {
	c := NewCodec(u, testAK, testSK)
	c.token, c.expires = "24.preset", time.Now().Add(time.Hour)
	return c
}

var sampleResult = vision.Result{
	Labels: []vision.Label{
		{Name: "T恤", Confidence: 0.93, Parents: []string{"上衣", "服装"}},
		{Name: "手提包", Confidence: 0.41, Parents: []string{"箱包", "配饰"}},
	},
	Attributes: []vision.Attribute{{Kind: vision.KindColor, Value: "黑色", Confidence: 0.66}},
}

func suite() visiontest.Suite {
	post := func(body string) func(string) *http.Request {
		return func(u string) *http.Request {
			return visiontest.Post(u+Path+"?access_token=x", "application/x-www-form-urlencoded", []byte(body))
		}
	}
	img := url.QueryEscape(base64.StdEncoding.EncodeToString(visiontest.Image))
	return visiontest.Suite{
		Server:    &Codec{},
		NewClient: newClient,
		Request:   vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 7, MinConfidence: 0.3},
		WantDecoded: func(s vision.Request) vision.Request {
			s.MaxLabels, s.MinConfidence = 0, 0 // advanced_general has no such parameters: the client filters
			return s
		},
		Result: sampleResult,
		WantResult: vision.Result{ConfidenceSource: "provider", Labels: []vision.Label{
			{Name: "T恤", Confidence: 0.93, Parents: []string{"上衣", "商品"}},
			{Name: "黑色", Confidence: 0.66},
			{Name: "手提包", Confidence: 0.41, Parents: []string{"箱包", "商品"}},
		}},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeUnauthorized: vision.CodeUnauthorized,
			vision.CodeTooLarge: vision.CodeTooLarge, vision.CodeBadImage: vision.CodeBadImage,
			vision.CodeBadRequest: vision.CodeBadRequest, vision.CodeServerError: vision.CodeServerError,
			vision.CodeTimeout: vision.CodeTimeout, vision.CodeQuotaExceeded: vision.CodeQuotaExceeded,
		},
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("no image", post("baike_num=0"), 200, vision.CodeBadRequest),
			visiontest.Bad("empty image", post("image="), 200, vision.CodeBadImage),
			visiontest.Bad("invalid base64", post("image=%40%40%40"), 200, vision.CodeBadImage),
			visiontest.Bad("not an image", post("image="+url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("plain text")))), 200, vision.CodeBadImage),
			visiontest.Bad("over 8 MB in base64", post("image="+url.QueryEscape(base64.StdEncoding.EncodeToString(visiontest.Huge(6<<20+1)))), 200, vision.CodeTooLarge),
			visiontest.Bad("bad baike_num", post("image="+img+"&baike_num=-1"), 200, vision.CodeBadRequest),
			visiontest.Bad("JSON body", func(u string) *http.Request {
				return visiontest.Post(u+Path+"?access_token=x", "application/json", []byte(`{"image":"`+img+`"}`))
			}, 200, vision.CodeBadRequest),
			visiontest.Bad("over 8192 px", post("image="+url.QueryEscape(base64.StdEncoding.EncodeToString(visiontest.PNG(8193, 1, 1)))), 200, vision.CodeTooLarge),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite()) }

var logIDRe = regexp.MustCompile(`"log_id":\d+`)

func TestGolden(t *testing.T) {
	form, err := EncodeForm(vision.NewImageRequest(visiontest.Image))
	if err != nil {
		t.Fatal(err)
	}
	visiontest.Golden(t, "request.form", []byte(form+"\n"))
	w := httptest.NewRecorder()
	(&Codec{}).WriteResult(w, vision.Request{}, sampleResult)
	visiontest.Golden(t, "response.json", append(logIDRe.ReplaceAll(w.Body.Bytes(), []byte(`"log_id":1`)), '\n'))
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeQuotaExceeded, vision.CodeBadImage, vision.CodeTooLarge, vision.CodeUnauthorized, vision.CodeServerError} {
		w := httptest.NewRecorder()
		(&Codec{}).WriteError(w, vision.Errorf(code, ""))
		if w.Code != http.StatusOK {
			t.Errorf("%s answered HTTP %d, want 200", code, w.Code)
		}
		visiontest.Golden(t, "error-"+string(code)+".json", append(logIDRe.ReplaceAll(w.Body.Bytes(), []byte(`"log_id":1`)), '\n'))
	}
}

// TestLogIDWithoutFloatLoss: log_id above 2^53, as a number or a string,
// is kept digit for digit.
func TestLogIDWithoutFloatLoss(t *testing.T) {
	for body, want := range map[string]LogID{
		`{"log_id": 4269290077301074002, "result_num": 0, "result": []}`:   "4269290077301074002",
		`{"log_id": "9223372036854775807", "result_num": 0, "result": []}`: "9223372036854775807",
		`{"log_id": 18446744073709551615, "result_num": 0, "result": []}`:  "18446744073709551615",
	} {
		var r Response
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.LogID != want {
			t.Errorf("%s: got %q, %v; want %s", body, r.LogID, err, want)
		}
		b, _ := json.Marshal(r)
		if !strings.Contains(string(b), `"log_id":`+string(want)) {
			t.Errorf("re-encoded %s", b)
		}
	}
	for _, bad := range []string{`{"log_id": 1.5e3}`, `{"log_id": -1}`, `{"log_id": "12a"}`} {
		if _, err := (&Codec{}).DecodeResponse(&http.Response{StatusCode: 200}, []byte(bad)); vision.ErrorCode(err) != vision.CodeInvalidResponse {
			t.Errorf("%s: got %v, want invalid_response", bad, err)
		}
	}
}

// server is advanced_general with its token endpoint, counting calls.
type server struct {
	tokens            *Tokens
	tokenCalls, calls atomic.Int64
	revokeAfterFirst  atomic.Bool
	alwaysRevoke      bool
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &Codec{}
	if IsTokenRequest(r) {
		s.tokenCalls.Add(1)
		s.tokens.ServeHTTP(w, r)
		return
	}
	n := s.calls.Add(1)
	if s.alwaysRevoke || (n == 2 && s.revokeAfterFirst.Load()) {
		s.tokens.Revoke()
	}
	if err := s.tokens.Check(r); err != nil {
		c.WriteError(w, err)
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, err := c.DecodeRequest(r, body)
	if err != nil {
		c.WriteError(w, err)
		return
	}
	c.WriteResult(w, req, sampleResult)
}

// TestTokenCachedAndRefreshedOnce: the token is fetched once and reused
// until it expires; a 110 (revoked) or 111 (expired on the server's
// clock) is answered by one new token and one replay, as Baidu's SDKs do;
// a second refusal is returned, never looped on.
func TestTokenCachedAndRefreshedOnce(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := &server{tokens: &Tokens{APIKey: testAK, SecretKey: testSK, TTL: time.Hour, Now: func() time.Time { return clock() }}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	codec := NewCodec(srv.URL, testAK, testSK)
	codec.Now = func() time.Time { return clock() }
	c := &vision.Client{Codec: codec, Timeout: 5 * time.Second}
	classify := func() error {
		_, err := c.Classify(context.Background(), vision.NewImageRequest(visiontest.Image))
		return err
	}
	for i := 0; i < 5; i++ {
		if err := classify(); err != nil {
			t.Fatal(err)
		}
	}
	if s.tokenCalls.Load() != 1 || s.calls.Load() != 5 {
		t.Errorf("5 calls: %d token fetches, %d calls; want 1 and 5", s.tokenCalls.Load(), s.calls.Load())
	}
	// Past expires_in − 30 s on the client's clock: a new token first.
	now = now.Add(time.Hour - 20*time.Second)
	if err := classify(); err != nil || s.tokenCalls.Load() != 2 || s.calls.Load() != 6 {
		t.Errorf("after expiry: %v, %d token fetches, %d calls; want 2 and 6", err, s.tokenCalls.Load(), s.calls.Load())
	}
	// Expired on the server's clock only (111): one refresh, one replay.
	serverAhead := now.Add(2 * time.Hour)
	s.tokens.Now = func() time.Time { return serverAhead }
	err := classify()
	if err != nil || s.tokenCalls.Load() != 3 || s.calls.Load() != 8 {
		t.Errorf("111: %v, %d token fetches, %d calls; want nil, 3 and 8", err, s.tokenCalls.Load(), s.calls.Load())
	}
	s.tokens.Now = func() time.Time { return clock() }
	now = serverAhead
	if err := classify(); err != nil {
		t.Fatal(err)
	}
	// Revoked (110) on the next call: one refresh, one replay.
	s.calls.Store(1)
	s.revokeAfterFirst.Store(true)
	tc := s.tokenCalls.Load()
	if err := classify(); err != nil || s.tokenCalls.Load() != tc+1 || s.calls.Load() != 3 {
		t.Errorf("110: %v, %d token fetches, %d calls; want nil, %d and 3", err, s.tokenCalls.Load(), s.calls.Load(), tc+1)
	}
	// Refused again after the refresh: unauthorized (110), no loop.
	s.revokeAfterFirst.Store(false)
	s.alwaysRevoke = true
	s.calls.Store(0)
	err = classify()
	if e := vision.AsError(err); e.Code != vision.CodeUnauthorized || e.VendorCode != "110" || s.calls.Load() != 2 {
		t.Errorf("refused twice: %v after %d calls; want unauthorized (110) after 2", err, s.calls.Load())
	}
}

// TestTokenEndpoint: wrong credentials are refused in OAuth's shape, and
// the error names no secret.
func TestTokenEndpoint(t *testing.T) {
	s := &server{tokens: &Tokens{APIKey: testAK, SecretKey: testSK}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, c := range []struct{ ak, sk, want string }{
		{"nobody", testSK, "unknown client id"},
		{testAK, "wrong-secret-xyz", "Client authentication failed"},
	} {
		_, err := (&vision.Client{Codec: NewCodec(srv.URL, c.ak, c.sk)}).Classify(context.Background(), vision.NewImageRequest(visiontest.Image))
		e := vision.AsError(err)
		if e.Code != vision.CodeUnauthorized || e.VendorCode != "invalid_client" || !strings.Contains(e.Message, c.want) || strings.Contains(err.Error(), c.sk) {
			t.Errorf("%s/%s: got %v", c.ak, c.sk, err)
		}
	}
	// The SDKs' GET with a query works too, and the scope has brain_all_scope.
	resp, err := http.Get(srv.URL + TokenPath + "?grant_type=client_credentials&client_id=" + testAK + "&client_secret=" + testSK)
	if err != nil {
		t.Fatal(err)
	}
	var tok Token
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" || tok.ExpiresIn != 2592000 || !strings.Contains(tok.Scope, "brain_all_scope") {
		t.Errorf("token: %+v", tok)
	}
	// No access_token: 100.
	r := httptest.NewRequest(http.MethodPost, Path, nil)
	if e := vision.AsError(s.tokens.Check(r)); e.VendorCode != "100" {
		t.Errorf("missing token: %v", e)
	}
}

// TestErrorCodes maps every error_code of Baidu's image-recognition error
// table (and the 216xxx/282xxx codes its sibling tables share) to its
// typed code, and each reaches the client through WriteError as that code.
func TestErrorCodes(t *testing.T) {
	documented := map[int]vision.Code{
		1: vision.CodeServerError, 2: vision.CodeServerError, 3: vision.CodeBadRequest, 4: vision.CodeThrottled,
		6: vision.CodeUnauthorized, 13: vision.CodeUnauthorized, 14: vision.CodeUnauthorized, 15: vision.CodeUnauthorized,
		17: vision.CodeQuotaExceeded, 18: vision.CodeThrottled, 19: vision.CodeQuotaExceeded,
		100: vision.CodeUnauthorized, 110: vision.CodeUnauthorized, 111: vision.CodeUnauthorized,
		216100: vision.CodeBadRequest, 216101: vision.CodeBadRequest, 216102: vision.CodeBadRequest, 216103: vision.CodeBadRequest,
		216110: vision.CodeUnauthorized, 216200: vision.CodeBadImage, 216201: vision.CodeBadImage, 216202: vision.CodeTooLarge,
		216203: vision.CodeBadImage, 216630: vision.CodeServerError, 282000: vision.CodeServerError,
	}
	if len(documented) != len(Codes) {
		t.Errorf("%d documented codes, %d in the table", len(documented), len(Codes))
	}
	codec := &Codec{} // no credentials: decoding never replays
	for n, want := range documented {
		if got := CodeOf(n); got != want {
			t.Errorf("CodeOf(%d) = %s, want %s", n, got, want)
		}
		w := httptest.NewRecorder()
		codec.WriteError(w, &vision.Error{Code: want, VendorCode: itoa(n), Message: "m"})
		_, err := codec.DecodeResponse(&http.Response{StatusCode: w.Code}, w.Body.Bytes())
		if e := vision.AsError(err); e.Code != want || e.VendorCode != itoa(n) || w.Code != 200 {
			t.Errorf("%d: HTTP %d, client decoded %v; want %s", n, w.Code, err, want)
		}
	}
	if got := CodeOf(999999); got != vision.CodeServerError {
		t.Errorf("an unlisted code: %s", got)
	}
	// An error_code sent as a string, and with a non-200 status, still counts.
	if _, err := codec.DecodeResponse(&http.Response{StatusCode: 500}, []byte(`{"error_code":"18","error_msg":"Open api qps request limit reached"}`)); vision.ErrorCode(err) != vision.CodeThrottled {
		t.Errorf("string error_code: %v", err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func FuzzDecodeRequest(f *testing.F) {
	b, err := os.ReadFile("testdata/request.form")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("url=https%3A%2F%2Fexample.com%2Fa.jpg&baike_num=3"))
	f.Add([]byte("image=&url=x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := visiontest.Post("http://x"+Path, "application/x-www-form-urlencoded", b)
		req, err := (&Codec{}).DecodeRequest(r, b)
		if err != nil {
			if vision.AsError(err).VendorCode == "" {
				t.Fatalf("error without a Baidu code: %v", err)
			}
			return
		}
		if len(req.Image.Bytes) == 0 && req.Image.URL == "" {
			t.Fatalf("accepted a request without an image: %q", b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, p := range []string{"testdata/response.json", "testdata/error-throttled.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"log_id":"4269290077301074002","result_num":1,"result":[{"keyword":"围巾","score":0.42,"root":"商品-穿戴"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := (&Codec{}).DecodeResponse(&http.Response{StatusCode: 200}, b)
		if err != nil && vision.ErrorCode(err) == "" {
			t.Fatalf("untyped error %v", err)
		}
		for _, l := range res.Labels {
			if l.Confidence < 0 || l.Confidence > 1 {
				t.Fatalf("confidence %v outside 0–1", l.Confidence)
			}
		}
	})
}
