package tencent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	tiia "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/tiia/v20190529"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

const (
	testID  = "AKIDtencentTEST0001"
	testKey = "tencent-secret-Qw8Zx"
)

var fixedNow = func() time.Time { return time.Date(2026, 12, 3, 7, 7, 59, 0, time.UTC) }

func lookup(id string) (string, bool) {
	if id == testID {
		return testKey, true
	}
	return "", false
}

func newClient(u string) vision.ClientCodec {
	c := NewCodec(u, testID, testKey, "ap-guangzhou", "")
	return c
}

var sampleResult = vision.Result{
	Labels: []vision.Label{
		{Name: "T恤", Confidence: 0.93, Parents: []string{"上衣", "服装"}},
		{Name: "服装", Confidence: 0.97},
	},
	Attributes: []vision.Attribute{{Kind: vision.KindPattern, Value: "条纹", Confidence: 0.71}},
}

func suite() visiontest.Suite {
	post := func(body string, hdr ...string) func(string) *http.Request {
		return func(u string) *http.Request {
			h := append([]string{"X-TC-Action", ActionLabelPro, "X-TC-Version", Version, "X-TC-Region", "ap-guangzhou"}, hdr...)
			return visiontest.Post(u+"/", "application/json", []byte(body), h...)
		}
	}
	img := base64.StdEncoding.EncodeToString(visiontest.Image)
	gif := base64.StdEncoding.EncodeToString([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	return visiontest.Suite{
		Server:    &Codec{},
		NewClient: newClient,
		Request:   vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 7, MinConfidence: 0.6},
		WantDecoded: func(s vision.Request) vision.Request {
			s.MaxLabels, s.MinConfidence = 0, 0 // TIIA has no such parameters: the client filters
			s.Operation = ActionLabelPro
			return s
		},
		Result: sampleResult,
		WantResult: vision.Result{ConfidenceSource: "provider", Labels: []vision.Label{
			{Name: "T恤", Confidence: 0.93, Parents: []string{"上衣", "服装"}},
			{Name: "服装", Confidence: 0.97},
			{Name: "条纹", Confidence: 0.71, Parents: []string{"图案", "属性"}},
		}},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeUnauthorized: vision.CodeUnauthorized,
			vision.CodeTooLarge: vision.CodeTooLarge, vision.CodeBadImage: vision.CodeBadImage,
			vision.CodeBadRequest: vision.CodeBadRequest, vision.CodeServerError: vision.CodeServerError,
			vision.CodeTimeout: vision.CodeTimeout, vision.CodeQuotaExceeded: vision.CodeQuotaExceeded,
		},
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("malformed JSON", post(`{"ImageBase64":`), 200, vision.CodeBadRequest),
			visiontest.Bad("unknown parameter", post(`{"ImageBase64":"`+img+`","Scenes":["WEB"]}`), 200, vision.CodeBadRequest),
			visiontest.Bad("wrong type", post(`{"ImageBase64":5}`), 200, vision.CodeBadRequest),
			visiontest.Bad("no image", post(`{}`), 200, vision.CodeBadImage),
			visiontest.Bad("invalid base64", post(`{"ImageBase64":"@@@"}`), 200, vision.CodeBadImage),
			visiontest.Bad("not an image", post(`{"ImageBase64":"`+base64.StdEncoding.EncodeToString([]byte("plain text"))+`"}`), 200, vision.CodeBadImage),
			visiontest.Bad("GIF", post(`{"ImageBase64":"`+gif+`"}`), 200, vision.CodeBadImage),
			visiontest.Bad("base64 over 4 MB", post(`{"ImageBase64":"`+base64.StdEncoding.EncodeToString(visiontest.Huge(3<<20+1))+`"}`), 200, vision.CodeTooLarge),
			visiontest.Bad("wrong version", post(`{"ImageBase64":"`+img+`"}`, "X-TC-Version", "2017-03-12"), 200, vision.CodeBadRequest),
			visiontest.Bad("no region", post(`{"ImageBase64":"`+img+`"}`, "X-TC-Region", ""), 200, vision.CodeBadRequest),
			visiontest.Bad("another action", post(`{"ImageBase64":"`+img+`"}`, "X-TC-Action", "DetectLabel"), 200, vision.CodeBadRequest),
			visiontest.Bad("form body", func(u string) *http.Request {
				return visiontest.Post(u+"/", "application/x-www-form-urlencoded", []byte("ImageBase64="+img),
					"X-TC-Action", ActionLabelPro, "X-TC-Version", Version, "X-TC-Region", "ap-guangzhou")
			}, 200, vision.CodeBadRequest),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite()) }

func TestGolden(t *testing.T) {
	b, err := EncodeRequest(vision.NewImageRequest(visiontest.Image))
	if err != nil {
		t.Fatal(err)
	}
	visiontest.Golden(t, "request.json", append(b, '\n'))
	rid := regexpRequestID
	w := httptest.NewRecorder()
	(&Codec{}).WriteResult(w, vision.Request{Operation: ActionLabelPro}, sampleResult)
	visiontest.Golden(t, "labelpro-response.json", append(rid.ReplaceAll(w.Body.Bytes(), []byte(`"RequestId":"REQUEST-ID"`)), '\n'))
	w = httptest.NewRecorder()
	(&Codec{}).WriteResult(w, vision.Request{Operation: ActionProduct, Image: vision.NewImage(visiontest.PNG(40, 30, 1))}, sampleResult)
	visiontest.Golden(t, "product-response.json", append(rid.ReplaceAll(w.Body.Bytes(), []byte(`"RequestId":"REQUEST-ID"`)), '\n'))
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeBadImage, vision.CodeTooLarge, vision.CodeUnauthorized, vision.CodeServerError, vision.CodeQuotaExceeded} {
		w := httptest.NewRecorder()
		(&Codec{}).WriteError(w, vision.Errorf(code, ""))
		if w.Code != http.StatusOK {
			t.Errorf("%s answered HTTP %d, want 200", code, w.Code)
		}
		visiontest.Golden(t, "error-"+string(code)+".json", append(rid.ReplaceAll(w.Body.Bytes(), []byte(`"RequestId":"REQUEST-ID"`)), '\n'))
	}
}

// TestOfficialSDKAgainstCodec: Tencent's own Go SDK (tiia v1.3.70, common
// v1.3.213), pointed at a loopback server over plain http, is verified by
// VerifyTC3, reads DetectLabelPro and DetectProduct answers, and gets
// TIIA's errors as *TencentCloudSDKError with their codes.
func TestOfficialSDKAgainstCodec(t *testing.T) {
	codec := &Codec{}
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Header.Clone())
		if _, err := VerifyTC3(r, body, lookup, time.Now()); err != nil {
			codec.WriteError(w, err)
			return
		}
		req, err := codec.DecodeRequest(r, body)
		if err != nil {
			codec.WriteError(w, err)
			return
		}
		codec.WriteResult(w, req, sampleResult)
	}))
	defer srv.Close()
	client := func(id, key string) *tiia.Client {
		cpf := profile.NewClientProfile()
		cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
		cpf.HttpProfile.Scheme = "HTTP"
		cpf.HttpProfile.ReqTimeout = 5
		c, err := tiia.NewClient(common.NewCredential(id, key), "ap-guangzhou", cpf)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(testID, testKey)
	ctx := context.Background()
	img := base64.StdEncoding.EncodeToString(visiontest.JPEG(32, 24, 4))
	req := tiia.NewDetectLabelProRequest()
	req.ImageBase64 = common.StringPtr(img)
	resp, err := c.DetectLabelProWithContext(ctx, req)
	if err != nil {
		t.Fatalf("DetectLabelPro: %v", err)
	}
	ls := resp.Response.Labels
	if len(ls) != 3 || *ls[0].Name != "T恤" || *ls[0].Confidence != 93 || *ls[0].FirstCategory != "服装" || *ls[0].SecondCategory != "上衣" || *resp.Response.RequestId == "" {
		t.Errorf("labels: %s", resp.ToJsonString())
	}
	preq := tiia.NewDetectProductRequest()
	preq.ImageBase64 = common.StringPtr(img)
	presp, err := c.DetectProductWithContext(ctx, preq)
	if err != nil {
		t.Fatalf("DetectProduct: %v", err)
	}
	if ps := presp.Response.Products; len(ps) != 2 || *ps[0].Parents != "服装-上衣" || *ps[0].XMax != 32 || *ps[0].YMax != 24 {
		t.Errorf("products: %s", presp.ToJsonString())
	}
	if h := seen[0]; h.Get("X-TC-Action") != ActionLabelPro || h.Get("X-TC-Version") != Version || h.Get("X-TC-Region") != "ap-guangzhou" ||
		!strings.HasPrefix(h.Get("Authorization"), "TC3-HMAC-SHA256 Credential="+testID+"/") {
		t.Errorf("SDK headers: %v", h)
	}

	for _, c := range []struct {
		name   string
		client *tiia.Client
		body   string
		want   string
	}{
		{"wrong SecretKey", client(testID, "wrong"), img, "AuthFailure.SignatureFailure"},
		{"unknown SecretId", client("AKIDnobody", testKey), img, "AuthFailure.SecretIdNotFound"},
		{"undecodable image", c, base64.StdEncoding.EncodeToString([]byte("not pixels")), "FailedOperation.ImageDecodeFailed"},
	} {
		r := tiia.NewDetectLabelProRequest()
		r.ImageBase64 = common.StringPtr(c.body)
		_, err := c.client.DetectLabelProWithContext(ctx, r)
		var se *tcerr.TencentCloudSDKError
		if !errors.As(err, &se) || se.Code != c.want {
			t.Errorf("%s: got %v, want %s", c.name, err, c.want)
		}
	}
}

// TestVerifyTC3 checks each refusal and the clock window against our own
// client's signature.
func TestVerifyTC3(t *testing.T) {
	c := NewCodec("http://127.0.0.1:9", testID, testKey, "ap-guangzhou", "")
	c.Now = fixedNow
	hr, err := c.NewRequest(context.Background(), vision.NewImageRequest(visiontest.Image))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	now := fixedNow()
	if id, err := VerifyTC3(hr, body, lookup, now.Add(4*time.Minute)); err != nil || id != testID {
		t.Fatalf("own signature: got %q, %v", id, err)
	}
	clone := func(f func(r *http.Request)) *http.Request {
		r := hr.Clone(context.Background())
		f(r)
		return r
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		body []byte
		now  time.Time
		want string
	}{
		{"tampered body", hr, append(bytes.Clone(body), ' '), now, "AuthFailure.SignatureFailure"},
		{"another host", clone(func(r *http.Request) { r.Host = "127.0.0.1:10" }), body, now, "AuthFailure.SignatureFailure"},
		{"six minutes late", hr, body, now.Add(6 * time.Minute), "AuthFailure.SignatureExpire"},
		{"six minutes early", hr, body, now.Add(-6 * time.Minute), "AuthFailure.SignatureExpire"},
		{"no timestamp", clone(func(r *http.Request) { r.Header.Del("X-TC-Timestamp") }), body, now, "AuthFailure.SignatureExpire"},
		{"no Authorization", clone(func(r *http.Request) { r.Header.Del("Authorization") }), body, now, "AuthFailure.InvalidAuthorization"},
		{"not TC3", clone(func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }), body, now, "AuthFailure.InvalidAuthorization"},
		{"host not signed", clone(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "content-type;host", "content-type", 1))
		}), body, now, "AuthFailure.InvalidAuthorization"},
		{"unknown SecretId", clone(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testID, "AKIDother", 1))
		}), body, now, "AuthFailure.SecretIdNotFound"},
		{"scope of another day", clone(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "2026-12-03", "2026-12-02", 1))
		}), body, now, "AuthFailure.SignatureFailure"},
		{"scope of another service", clone(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/tiia/", "/cvm/", 1))
		}), body, now, "AuthFailure.SignatureFailure"},
	} {
		id, err := VerifyTC3(c.r, c.body, lookup, c.now)
		var e *vision.Error
		if !errors.As(err, &e) || e.VendorCode != c.want || e.Code != vision.CodeUnauthorized || id != "" {
			t.Errorf("%s: got %q, %v; want %s", c.name, id, err, c.want)
		}
	}
	// An unsigned payload (X-TC-Content-SHA256) signs sha256("UNSIGNED-PAYLOAD").
	u := clone(func(r *http.Request) { r.Header.Set("X-TC-Content-SHA256", "UNSIGNED-PAYLOAD") })
	signRequest(u, []byte("ignored"), testID, testKey, now)
	if _, err := VerifyTC3(u, []byte("anything"), lookup, now); err != nil {
		t.Errorf("unsigned payload: %v", err)
	}
}

// TestErrorCodes maps every code TIIA documents for the actions cutover
// calls (tiia/v20190529 client.go v1.3.70: DetectLabelPro's and
// DetectProduct's lists) and the API 3.0 common codes to its typed code,
// and each reaches our client, through WriteError, as that code.
func TestErrorCodes(t *testing.T) {
	documented := map[string]vision.Code{
		// DetectLabelPro and DetectProduct (client.go doc comments).
		"AuthFailure.InvalidAuthorization":                 vision.CodeUnauthorized,
		"FailedOperation.BalanceInsufficient":              vision.CodeQuotaExceeded,
		"FailedOperation.ImageDecodeFailed":                vision.CodeBadImage,
		"FailedOperation.ImageDownloadError":               vision.CodeBadImage,
		"FailedOperation.ImageNotSupported":                vision.CodeBadImage,
		"FailedOperation.ImageUnQualified":                 vision.CodeBadImage,
		"FailedOperation.InvokeChargeError":                vision.CodeServerError,
		"FailedOperation.RequestTimeout":                   vision.CodeTimeout,
		"FailedOperation.RpcFail":                          vision.CodeServerError,
		"FailedOperation.TooLargeFileError":                vision.CodeTooLarge,
		"FailedOperation.UnKnowError":                      vision.CodeServerError,
		"FailedOperation.Unknown":                          vision.CodeServerError,
		"FailedOperation.UnOpenError":                      vision.CodeUnauthorized,
		"InvalidParameter.InvalidParameter":                vision.CodeBadRequest,
		"InvalidParameterValue.InvalidParameterValueLimit": vision.CodeBadRequest,
		"LimitExceeded.TooLargeFileError":                  vision.CodeTooLarge,
		"ResourceUnavailable.InArrears":                    vision.CodeQuotaExceeded,
		"ResourceUnavailable.NotExist":                     vision.CodeUnauthorized,
		"ResourcesSoldOut.ChargeStatusException":           vision.CodeQuotaExceeded,
		// API 3.0 common codes.
		"AuthFailure.SignatureFailure":          vision.CodeUnauthorized,
		"AuthFailure.SignatureExpire":           vision.CodeUnauthorized,
		"AuthFailure.SecretIdNotFound":          vision.CodeUnauthorized,
		"AuthFailure.InvalidSecretId":           vision.CodeUnauthorized,
		"AuthFailure.TokenFailure":              vision.CodeUnauthorized,
		"AuthFailure.MFAFailure":                vision.CodeUnauthorized,
		"AuthFailure.UnauthorizedOperation":     vision.CodeUnauthorized,
		"UnauthorizedOperation":                 vision.CodeUnauthorized,
		"RequestLimitExceeded":                  vision.CodeThrottled,
		"RequestLimitExceeded.IPLimitExceeded":  vision.CodeThrottled,
		"RequestLimitExceeded.UinLimitExceeded": vision.CodeThrottled,
		"RequestSizeLimitExceeded":              vision.CodeTooLarge,
		"InvalidParameter":                      vision.CodeBadRequest,
		"InvalidParameterValue":                 vision.CodeBadRequest,
		"MissingParameter":                      vision.CodeBadRequest,
		"UnknownParameter":                      vision.CodeBadRequest,
		"InvalidAction":                         vision.CodeBadRequest,
		"NoSuchVersion":                         vision.CodeBadRequest,
		"UnsupportedRegion":                     vision.CodeBadRequest,
		"UnsupportedProtocol":                   vision.CodeBadRequest,
		"UnsupportedOperation":                  vision.CodeBadRequest,
		"InvalidRequest":                        vision.CodeBadRequest,
		"LimitExceeded":                         vision.CodeQuotaExceeded,
		"ResourceUnavailable.StopUsing":         vision.CodeQuotaExceeded,
		"InternalError":                         vision.CodeServerError,
		"ServiceUnavailable":                    vision.CodeServerError,
		"ResourceInsufficient":                  vision.CodeServerError,
	}
	codec := &Codec{}
	for code, want := range documented {
		if got := CodeOf(code); got != want {
			t.Errorf("CodeOf(%s) = %s, want %s", code, got, want)
		}
		w := httptest.NewRecorder()
		codec.WriteError(w, &vision.Error{Code: want, VendorCode: code, Message: "m"})
		var r Response
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.Response.Error == nil || r.Response.Error.Code != code {
			t.Errorf("%s: WriteError wrote %s", code, w.Body.Bytes())
		}
		_, err := codec.DecodeResponse(&http.Response{StatusCode: 200}, w.Body.Bytes())
		if e := vision.AsError(err); e.Code != want || e.VendorCode != code {
			t.Errorf("%s: client decoded %v, want %s", code, err, want)
		}
	}
	// Undocumented codes fall back on their family.
	for code, want := range map[string]vision.Code{"AuthFailure.Whatever": vision.CodeUnauthorized, "FailedOperation.ImageBlurry": vision.CodeBadImage,
		"RequestLimitExceeded.GlobalRegionUinLimitExceeded": vision.CodeThrottled, "ResourceUnavailable.Frozen": vision.CodeQuotaExceeded, "Mystery": vision.CodeServerError} {
		if got := CodeOf(code); got != want {
			t.Errorf("CodeOf(%s) = %s, want %s", code, got, want)
		}
	}
	// A non-200 status is ClientError.HttpStatusCodeError, as the SDK has it.
	for status, want := range map[int]vision.Code{502: vision.CodeServerError, 404: vision.CodeInvalidResponse} {
		if _, err := codec.DecodeResponse(&http.Response{StatusCode: status}, []byte(`<html>`)); vision.ErrorCode(err) != want {
			t.Errorf("HTTP %d: got %v, want %s", status, err, want)
		}
	}
}

// TestSignerResignsCachedBody: a cached body is signed again per send
// (vision.Signer), with a fresh timestamp.
func TestSignerResignsCachedBody(t *testing.T) {
	var verified int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := VerifyTC3(r, body, lookup, time.Now()); err != nil {
			(&Codec{}).WriteError(w, err)
			return
		}
		verified++
		req, _ := (&Codec{}).DecodeRequest(r, body)
		(&Codec{}).WriteResult(w, req, sampleResult)
	}))
	defer srv.Close()
	c := &vision.Client{Codec: newClient(srv.URL), Cache: &vision.BodyCache{}}
	for i := 0; i < 3; i++ {
		if _, err := c.Classify(context.Background(), vision.NewImageRequest(visiontest.Image)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if verified != 3 {
		t.Errorf("verified %d calls, want 3", verified)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	b, err := os.ReadFile("testdata/request.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"ImageUrl":"https://example.com/a.jpg","ImageBase64":""}`))
	f.Add([]byte(`{"ImageBase64":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := visiontest.Post("http://x/", "application/json", b, "X-TC-Action", ActionLabelPro, "X-TC-Version", Version, "X-TC-Region", "ap-guangzhou")
		req, err := (&Codec{}).DecodeRequest(r, b)
		if err != nil {
			if vision.AsError(err).VendorCode == "" {
				t.Fatalf("error without a TIIA code: %v", err)
			}
			return
		}
		if len(req.Image.Bytes) == 0 && req.Image.URL == "" {
			t.Fatalf("accepted a request without an image: %q", b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, p := range []string{"testdata/labelpro-response.json", "testdata/product-response.json", "testdata/error-throttled.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
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

var regexpRequestID = regexp.MustCompile(`"RequestId":"[0-9a-f-]{36}"`)

// FuzzVerifyTC3: any Authorization and X-TC-Timestamp header is refused
// with a TIIA AuthFailure code, never a panic, unless it is a real
// signature.
func FuzzVerifyTC3(f *testing.F) {
	c := NewCodec("http://127.0.0.1:9", testID, testKey, "ap-guangzhou", "")
	c.Now = fixedNow
	hr, _ := c.NewRequest(context.Background(), vision.NewImageRequest(visiontest.Image))
	body, _ := io.ReadAll(hr.Body)
	f.Add(hr.Header.Get("Authorization"), hr.Header.Get("X-TC-Timestamp"))
	f.Add("TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=;, Signature=", "x")
	f.Fuzz(func(t *testing.T, auth, ts string) {
		r := hr.Clone(context.Background())
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-TC-Timestamp", ts)
		id, err := VerifyTC3(r, body, lookup, fixedNow())
		if err == nil {
			if id != testID {
				t.Fatalf("accepted %q for %q", auth, id)
			}
			return
		}
		if e := vision.AsError(err); e.Code != vision.CodeUnauthorized || !strings.HasPrefix(e.VendorCode, "AuthFailure.") || id != "" {
			t.Fatalf("refusal %v, id %q", err, id)
		}
	})
}
