package gcv

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

// TestProto3JSON: every spelling Google's servers accept decodes to the
// same request, and what they refuse is a 400 INVALID_ARGUMENT.
func TestProto3JSON(t *testing.T) {
	std := base64.StdEncoding.EncodeToString(visiontest.Image)
	urlSafe := base64.RawURLEncoding.EncodeToString(visiontest.Image)
	want := vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 5, Attributes: []vision.AttributeKind{vision.KindColor}}
	ok := []struct{ name, body string }{
		{"names, lowerCamelCase", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":"LABEL_DETECTION","maxResults":5},{"type":"IMAGE_PROPERTIES"}]}]}`},
		{"numbers, as Google's Go client sends", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":4,"maxResults":5},{"type":7}]}]}`},
		{"snake_case", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":4,"max_results":5},{"type":"IMAGE_PROPERTIES"}],"image_context":{}}]}`},
		{"int32 as a string", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":"LABEL_DETECTION","maxResults":"5"},{"type":7,"maxResults":null}]}]}`},
		{"URL-safe unpadded base64, exponent int", `{"requests":[{"image":{"content":"` + urlSafe + `"},"features":[{"type":4,"maxResults":5e0},{"type":7}]}],"parent":""}`},
		{"nulls are defaults", `{"requests":[{"image":{"content":"` + std + `","source":null},"features":[{"type":4,"maxResults":5,"model":null},{"type":7}],"imageContext":null}],"labels":null}`},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeBody([]byte(c.body))
			if err != nil {
				t.Fatalf("got %v", err)
			}
			got.Image.Lease = nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	bad := []struct{ name, body, msg string }{
		{"unknown field", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":4}],"extra":1}]}`, `Unknown name "extra" at 'requests[0]'`},
		{"unknown field at the top", `{"requests":[],"foo":true}`, `Unknown name "foo" at '(root)'`},
		{"both spellings", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":4,"maxResults":1,"max_results":2}]}]}`, `Duplicate field "maxResults"`},
		{"unknown enum name", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":"LABELS"}]}]}`, `'requests[0].features[0].type'`},
		{"fractional int32", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":4,"maxResults":1.5}]}]}`, `'requests[0].features[0].max_results'`},
		{"int32 out of range", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":4,"maxResults":3000000000}]}]}`, `TYPE_INT32`},
		{"wrong type", `{"requests":[{"image":{"content":5},"features":[{"type":4}]}]}`, `'requests[0].image.content'`},
		{"unserved feature", `{"requests":[{"image":{"content":"` + std + `"},"features":[{"type":1}]}]}`, `FACE_DETECTION is not served`},
		{"not an object", `[1,2]`, `Expected an object`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeBody([]byte(c.body))
			e := vision.AsError(err)
			if err == nil || e.Code != vision.CodeBadRequest || e.VendorCode != "INVALID_ARGUMENT" || !strings.Contains(e.Message, c.msg) {
				t.Errorf("got %v, want INVALID_ARGUMENT containing %q", err, c.msg)
			}
		})
	}
}

// TestEncodingParameters: $alt (or alt) and enum-encoding as Google's REST
// clients send them.
func TestEncodingParameters(t *testing.T) {
	for _, c := range []struct {
		query string
		ints  bool
		ok    bool
	}{
		{"", false, true},
		{"$alt=json", false, true},
		{"$alt=json%3Benum-encoding%3Dint", true, true},
		{"alt=json&enum-encoding=int", true, true},
		{"$alt=json;enum-encoding=int", true, true},
		{"enum-encoding=string", false, true},
		{"$alt=proto", false, false},
		{"$alt=media", false, false},
		{"enum-encoding=hex", false, false},
		{"$alt=json;pretty=1", false, false},
	} {
		q, _ := url.ParseQuery(c.query)
		if strings.Contains(c.query, ";") && !strings.Contains(c.query, "%3B") {
			q = url.Values{"$alt": {strings.TrimPrefix(c.query, "$alt=")}}
		}
		enc, err := ParseEncoding(q)
		if (err == nil) != c.ok || enc.EnumsAsInts != c.ints {
			t.Errorf("%q: got %+v, %v; want ints %v, ok %v", c.query, enc, err, c.ints, c.ok)
		}
		if err != nil && vision.ErrorCode(err) != vision.CodeBadRequest {
			t.Errorf("%q: got %v, want bad_request", c.query, err)
		}
	}
	body := `{"requests":[{"image":{"content":"` + base64.StdEncoding.EncodeToString(visiontest.Image) + `"},"features":[{"type":4}]}]}`
	r := visiontest.Post("http://x"+Path+"?$alt=proto", "application/json", []byte(body))
	if _, err := (&Codec{}).DecodeRequest(r, []byte(body)); vision.ErrorCode(err) != vision.CodeBadRequest {
		t.Errorf("$alt=proto: got %v, want bad_request", err)
	}
}

// TestKeyInHeader: the client sends its API key in x-goog-api-key, never
// in the URL; the server reads either.
func TestKeyInHeader(t *testing.T) {
	hr, err := NewCodec("http://vision.test", "k-123").NewRequest(t.Context(), vision.NewImageRequest(visiontest.Image))
	if err != nil {
		t.Fatal(err)
	}
	if got := hr.Header.Get(KeyHeader); got != "k-123" {
		t.Errorf("x-goog-api-key: got %q, want k-123", got)
	}
	if strings.Contains(hr.URL.String(), "k-123") {
		t.Errorf("the key is in the URL %s", hr.URL)
	}
	if got := APIKeyOf(hr); got != "k-123" {
		t.Errorf("APIKeyOf(header): got %q", got)
	}
	q, _ := http.NewRequest(http.MethodPost, "http://vision.test"+Path+"?key=k-q", nil)
	if got := APIKeyOf(q); got != "k-q" {
		t.Errorf("APIKeyOf(?key=): got %q", got)
	}
}
