package gcv

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

var sampleResult = vision.Result{
	Labels:     []vision.Label{{Name: "T-shirt", Confidence: 0.93}, {Name: "Sleeve", Confidence: 0.5}},
	Attributes: []vision.Attribute{{Kind: vision.KindPattern, Value: "Plaid", Confidence: 0.7}},
	Colors:     []vision.Color{{Hex: "#102030", Fraction: 0.6, Score: 0.8}},
}

func suite() visiontest.Suite {
	body := func(content string) []byte {
		return []byte(`{"requests":[{"image":{"content":"` + content + `"},"features":[{"type":"LABEL_DETECTION"}]}]}`)
	}
	post := func(b []byte) func(string) *http.Request {
		return func(u string) *http.Request { return visiontest.Post(u+Path+"?key=k", "application/json", b) }
	}
	return visiontest.Suite{
		Server:    &Codec{},
		NewClient: func(u string) vision.ClientCodec { return NewCodec(u, "test-key") },
		Request:   vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 7, MinConfidence: 0.6, Attributes: []vision.AttributeKind{vision.KindColor}},
		WantDecoded: func(s vision.Request) vision.Request {
			s.MinConfidence = 0 // GCV has no such parameter: the client filters
			return s
		},
		Result: sampleResult,
		WantResult: vision.Result{
			Labels: []vision.Label{{Name: "T-shirt", Confidence: 0.93}, {Name: "Plaid", Confidence: 0.7}},
			Colors: []vision.Color{{R: 0x10, G: 0x20, B: 0x30, Hex: "#102030", Fraction: 0.6, Score: 0.8}},
		},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeUnauthorized: vision.CodeUnauthorized,
			vision.CodeTooLarge: vision.CodeTooLarge, vision.CodeBadImage: vision.CodeBadImage,
			vision.CodeBadRequest: vision.CodeBadRequest, vision.CodeServerError: vision.CodeServerError,
			vision.CodeTimeout: vision.CodeTimeout,
		},
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("malformed JSON", post([]byte(`{"requests":[`)), 400, vision.CodeBadRequest),
			visiontest.Bad("wrong content type", func(u string) *http.Request {
				return visiontest.Post(u+Path, "text/plain", body(base64.StdEncoding.EncodeToString(visiontest.Image)))
			}, 400, vision.CodeBadRequest),
			visiontest.Bad("invalid base64", post(body("@@@")), 400, vision.CodeBadRequest),
			visiontest.Bad("empty image", post(body("")), 200, vision.CodeBadImage),
			visiontest.Bad("not an image", post(body(base64.StdEncoding.EncodeToString([]byte("plain text, not pixels")))), 200, vision.CodeBadImage),
			visiontest.Bad("body over 10 MB", post(body(base64.StdEncoding.EncodeToString(visiontest.Huge(8<<20)))), 400, vision.CodeTooLarge),
			visiontest.Bad("no features", post([]byte(`{"requests":[{"image":{"content":"`+base64.StdEncoding.EncodeToString(visiontest.Image)+`"},"features":[]}]}`)), 400, vision.CodeBadRequest),
			visiontest.Bad("two images", post([]byte(`{"requests":[{},{}]}`)), 400, vision.CodeBadRequest),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite()) }

func TestGolden(t *testing.T) {
	ar, err := EncodeRequest(vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 5, Attributes: []vision.AttributeKind{vision.KindColor}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(ar, "", "  ")
	visiontest.Golden(t, "annotate-request.json", append(b, '\n'))
	ar2, _ := EncodeRequest(vision.Request{Image: vision.ImageFromURL("https://cdn.example.com/a.jpg")})
	b, _ = json.MarshalIndent(ar2, "", "  ")
	visiontest.Golden(t, "annotate-request-uri.json", append(b, '\n'))
	b, _ = json.MarshalIndent(ResponseFromResult(sampleResult), "", "  ")
	visiontest.Golden(t, "annotate-response.json", append(b, '\n'))
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeBadImage, vision.CodeTooLarge, vision.CodeUnauthorized, vision.CodeServerError} {
		w := httptest.NewRecorder()
		(&Codec{}).WriteError(w, vision.Errorf(code, ""))
		visiontest.Golden(t, "error-"+string(code)+".json", append(w.Body.Bytes(), '\n'))
	}
}

func TestPerImageErrorInside200(t *testing.T) {
	c := &Codec{}
	body := []byte(`{"responses":[{"error":{"code":3,"message":"Bad image data."}}]}`)
	_, err := c.DecodeResponse(&http.Response{StatusCode: 200}, body)
	if vision.ErrorCode(err) != vision.CodeBadImage {
		t.Errorf("got %v", err)
	}
	for code, want := range map[int]vision.Code{4: vision.CodeTimeout, 7: vision.CodeUnauthorized, 8: vision.CodeThrottled, 13: vision.CodeServerError, 14: vision.CodeServerError} {
		b, _ := json.Marshal(AnnotateResponse{Responses: []ImageResponse{{Error: &Status{Code: code, Message: "x"}}}})
		if _, err := c.DecodeResponse(&http.Response{StatusCode: 200}, b); vision.ErrorCode(err) != want {
			t.Errorf("grpc %d: got %v, want %s", code, err, want)
		}
	}
	if _, err := c.DecodeResponse(&http.Response{StatusCode: 200}, []byte(`{"responses":[]}`)); vision.ErrorCode(err) != vision.CodeInvalidResponse {
		t.Errorf("empty responses: got %v", err)
	}
}

func FuzzDecodeBody(f *testing.F) {
	for _, p := range []string{"testdata/annotate-request.json", "testdata/annotate-request-uri.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"requests":[{"image":{"content":"!!"}}]}`))
	f.Add([]byte(`{"requests":[{"image":{"content":"iVBORw0KGgo","source":null},"features":[{"type":4,"max_results":"3"},{"type":"IMAGE_PROPERTIES"}],"image_context":{}}],"parent":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeBody(b)
		if err != nil {
			if vision.ErrorCode(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(req.Image.Bytes) == 0 && req.Image.URL == "" {
			t.Fatalf("accepted a request without an image: %q", b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	b, _ := os.ReadFile("testdata/annotate-response.json")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := (&Codec{}).DecodeResponse(&http.Response{StatusCode: 200}, b)
		if err != nil && vision.ErrorCode(err) == "" {
			t.Fatalf("untyped error %v", err)
		}
	})
}
