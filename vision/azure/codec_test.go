package azure

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

var sampleResult = vision.Result{
	ModelVersion: "2023-10-01",
	Labels:       []vision.Label{{Name: "t-shirt", Confidence: 0.93}, {Name: "clothing", Confidence: 0.99}},
	Attributes:   []vision.Attribute{{Kind: vision.KindColor, Value: "Black", Confidence: 0.8}},
}

func suite() visiontest.Suite {
	u := func(base string) string { return base + Path + "?api-version=" + APIVersion + "&features=tags" }
	post := func(ct string, b []byte) func(string) *http.Request {
		return func(base string) *http.Request { return visiontest.Post(u(base), ct, b, KeyHeader, "k") }
	}
	return visiontest.Suite{
		Server:      &Codec{},
		NewClient:   func(u string) vision.ClientCodec { return NewCodec(u, "test-key") },
		Request:     vision.Request{Image: vision.NewImage(visiontest.Image), MinConfidence: 0.5},
		WantDecoded: func(s vision.Request) vision.Request { s.MinConfidence = 0; return s },
		Result:      sampleResult,
		WantResult: vision.Result{ModelVersion: "2023-10-01", Labels: []vision.Label{
			{Name: "t-shirt", Confidence: 0.93}, {Name: "clothing", Confidence: 0.99}, {Name: "black", Confidence: 0.8}}},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeUnauthorized: vision.CodeUnauthorized,
			vision.CodeTooLarge: vision.CodeTooLarge, vision.CodeBadImage: vision.CodeBadImage,
			vision.CodeBadRequest: vision.CodeBadRequest, vision.CodeServerError: vision.CodeServerError,
			vision.CodeTimeout: vision.CodeTimeout,
		},
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("malformed JSON", post("application/json", []byte(`{"url":`)), 400, vision.CodeBadRequest),
			visiontest.Bad("wrong content type", post("text/plain", visiontest.Image), 415, vision.CodeBadRequest),
			visiontest.Bad("bad URL", post("application/json", []byte(`{"url":"ftp://x"}`)), 400, vision.CodeBadImage),
			visiontest.Bad("empty image", post("application/octet-stream", nil), 400, vision.CodeBadImage),
			visiontest.Bad("not an image", post("application/octet-stream", []byte("<html>not an image</html>")), 400, vision.CodeBadImage),
			visiontest.Bad("image over 20 MB", post("application/octet-stream", visiontest.Huge(MaxImageBytes+1)), 400, vision.CodeTooLarge),
			visiontest.Bad("no features", func(base string) *http.Request {
				return visiontest.Post(base+Path+"?api-version="+APIVersion, "application/octet-stream", visiontest.Image)
			}, 400, vision.CodeBadRequest),
			visiontest.Bad("no api-version", func(base string) *http.Request {
				return visiontest.Post(base+Path+"?features=tags", "application/octet-stream", visiontest.Image)
			}, 400, vision.CodeBadRequest),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite()) }

func TestGolden(t *testing.T) {
	b, _ := json.MarshalIndent(ResultToAnalyze(vision.NewImageRequest(visiontest.Image), sampleResult), "", "  ")
	visiontest.Golden(t, "analyze-response.json", append(b, '\n'))
	var ar AnalyzeResult
	json.Unmarshal(b, &ar)
	if ar.Metadata.Width != 4 || ar.Metadata.Height != 3 {
		t.Errorf("metadata: %+v", ar.Metadata)
	}
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeBadImage, vision.CodeTooLarge, vision.CodeUnauthorized} {
		w := httptest.NewRecorder()
		(&Codec{}).WriteError(w, vision.Errorf(code, ""))
		visiontest.Golden(t, "error-"+string(code)+".json", append(w.Body.Bytes(), '\n'))
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add("application/json", []byte(`{"url":"https://cdn.example.com/a.jpg"}`))
	f.Add("application/octet-stream", visiontest.Image)
	f.Add("image/png", []byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, ct string, b []byte) {
		r, _ := http.NewRequest(http.MethodPost, "http://x"+Path+"?api-version="+APIVersion+"&features=tags", nil)
		r.Header.Set("Content-Type", ct)
		req, err := (&Codec{}).DecodeRequest(r, b)
		if err != nil {
			if vision.ErrorCode(err) == "" {
				t.Fatalf("untyped %v", err)
			}
			return
		}
		if len(req.Image.Bytes) == 0 && req.Image.URL == "" {
			t.Fatal("accepted without image")
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	b, _ := os.ReadFile("testdata/analyze-response.json")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := (&Codec{}).DecodeResponse(&http.Response{StatusCode: 200}, b)
		if err != nil && vision.ErrorCode(err) == "" {
			t.Fatalf("untyped %v", err)
		}
	})
}
