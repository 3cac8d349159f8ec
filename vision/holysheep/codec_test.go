package holysheep

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

var sampleResult = vision.Result{
	ModelVersion: DefaultModel,
	Categories:   []vision.Label{{Name: "apparel/topwear/tshirts", Confidence: 0.93}, {Name: "apparel/topwear/shirts", Confidence: 0.81}},
	Attributes: []vision.Attribute{{Kind: vision.KindColor, Value: "black", Confidence: 0.9},
		{Kind: vision.KindPattern, Value: "striped", Confidence: 0.77}},
}

func suite() visiontest.Suite {
	body := func(img string) []byte {
		return []byte(`{"model":"m","image":"` + img + `","task":"product_classification","parameters":{"confidence_threshold":0.5}}`)
	}
	post := func(b []byte) func(string) *http.Request {
		return func(u string) *http.Request {
			return visiontest.Post(u+ClassifyPath, "application/json", b, "Authorization", "Bearer k")
		}
	}
	return visiontest.Suite{
		Server:    &Codec{},
		NewClient: func(u string) vision.ClientCodec { return NewCodec(u+"/v1", "test-key", "") },
		Request: vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 5, MinConfidence: 0.75,
			Attributes: []vision.AttributeKind{vision.KindColor, vision.KindPattern}, CategoryFilter: []string{"apparel"}},
		WantDecoded: func(s vision.Request) vision.Request { return s },
		Result:      sampleResult,
		WantResult: vision.Result{ModelVersion: DefaultModel,
			Categories: []vision.Label{{Name: "apparel/topwear/tshirts", Confidence: 0.93}, {Name: "apparel/topwear/shirts", Confidence: 0.81}},
			Attributes: sampleResult.Attributes},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeUnauthorized: vision.CodeUnauthorized,
			vision.CodeTooLarge: vision.CodeTooLarge, vision.CodeBadImage: vision.CodeBadImage,
			vision.CodeBadRequest: vision.CodeBadRequest, vision.CodeServerError: vision.CodeServerError,
			vision.CodeTimeout: vision.CodeTimeout,
		},
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("malformed JSON", post([]byte(`{"image":`)), 400, vision.CodeBadRequest),
			visiontest.Bad("wrong content type", func(u string) *http.Request {
				return visiontest.Post(u+ClassifyPath, "text/plain", body(base64.StdEncoding.EncodeToString(visiontest.Image)))
			}, 400, vision.CodeBadRequest),
			visiontest.Bad("invalid base64", post(body("%%%not base64%%%")), 400, vision.CodeBadRequest),
			visiontest.Bad("empty image", post(body("")), 400, vision.CodeBadRequest),
			visiontest.Bad("not an image", post(body(base64.StdEncoding.EncodeToString([]byte("just some text bytes")))), 422, vision.CodeBadImage),
			visiontest.Bad("image over 10 MB", post(body(base64.StdEncoding.EncodeToString(visiontest.Huge(MaxImageBytes+1)))), 413, vision.CodeTooLarge),
			visiontest.Bad("bad threshold", post([]byte(`{"image":"`+base64.StdEncoding.EncodeToString(visiontest.Image)+`","parameters":{"confidence_threshold":7}}`)), 400, vision.CodeBadRequest),
			visiontest.Bad("unknown attribute", post([]byte(`{"image":"`+base64.StdEncoding.EncodeToString(visiontest.Image)+`","parameters":{"include_attributes":true,"attribute_types":["smell"]}}`)), 400, vision.CodeBadRequest),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite()) }

func TestGolden(t *testing.T) {
	cr, _ := EncodeRequest(DefaultModel, vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 5, MinConfidence: 0.75,
		Attributes: vision.AttributeKinds})
	b, _ := json.MarshalIndent(cr, "", "  ")
	visiontest.Golden(t, "classify-request.json", append(b, '\n'))
	cr2, _ := EncodeRequest(DefaultModel, vision.Request{Image: vision.ImageFromURL("https://cdn.example.com/p/1.jpg"), CategoryFilter: []string{"clothing"}})
	b, _ = json.MarshalIndent(cr2, "", "  ")
	visiontest.Golden(t, "classify-request-url.json", append(b, '\n'))
	b, _ = json.MarshalIndent(ClassifyResponse{ID: "cls_0", Object: "vision.classification", Model: DefaultModel, Created: 1795000000,
		Predictions: PredictionsFromResult(sampleResult), Usage: Usage{Images: 1}}, "", "  ")
	visiontest.Golden(t, "classify-response.json", append(b, '\n'))
	b, _ = json.MarshalIndent(Job{JobID: "job_0", Status: "completed", Total: 2, Completed: 1, Failed: 1, Created: 1795000000, CompletedAt: 1795000002,
		Results: []BatchResult{{Index: 0, Predictions: PredictionsFromResult(sampleResult)}, {Index: 1, Error: &ErrorDetail{Code: "bad_image", Message: "image format not recognised"}}}}, "", "  ")
	visiontest.Golden(t, "batch-status.json", append(b, '\n'))
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeBadImage, vision.CodeTooLarge, vision.CodeUnauthorized} {
		w := httptest.NewRecorder()
		WriteError(w, vision.Errorf(code, ""))
		visiontest.Golden(t, "error-"+string(code)+".json", append(w.Body.Bytes(), '\n'))
	}
}

func TestAuth(t *testing.T) {
	srv := httptest.NewServer(NewServer(vision.ProviderFunc(func(context.Context, vision.Request) (vision.Result, error) { return sampleResult, nil }), "right"))
	defer srv.Close()
	for key, want := range map[string]vision.Code{"wrong": vision.CodeUnauthorized, "": vision.CodeUnauthorized, "right": ""} {
		c := &vision.Client{Codec: NewCodec(srv.URL, key, "")}
		if _, err := c.Classify(context.Background(), vision.NewImageRequest(visiontest.Image)); vision.ErrorCode(err) != want {
			t.Errorf("key %q: got %v, want %q", key, err, want)
		}
	}
}

// TestBatchWebhook submits a batch, polls it to completion and receives the
// signed webhook after one failed delivery (retried with back-off).
func TestBatchWebhook(t *testing.T) {
	var attempts atomic.Int32
	got := make(chan []byte, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifyWebhook("batch-key", body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got <- body
	}))
	defer hook.Close()
	p := vision.ProviderFunc(func(_ context.Context, req vision.Request) (vision.Result, error) { return sampleResult, nil })
	bs := &BatchServer{Provider: p, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := Authorize(r, "batch-key")
		if err != nil {
			WriteError(w, err)
			return
		}
		bs.ServeHTTP(w, r, key)
	}))
	defer srv.Close()
	bc := &BatchClient{Codec: NewCodec(srv.URL, "batch-key", "")}
	images := []vision.Image{vision.NewImage(visiontest.PNG(3, 3, 1)), vision.NewImage([]byte("not an image at all")), vision.ImageFromURL("https://cdn.example.com/x.jpg")}
	job, err := bc.Submit(context.Background(), images, vision.Request{MinConfidence: 0.85}, hook.URL)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != "queued" || job.Total != 3 || job.JobID == "" {
		t.Fatalf("submit: %+v", job)
	}
	deadline := time.Now().Add(5 * time.Second)
	for job.Status != "completed" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if job, err = bc.Status(context.Background(), job.JobID); err != nil {
			t.Fatal(err)
		}
	}
	if job.Completed != 2 || job.Failed != 1 || len(job.Results) != 3 || job.Results[1].Error.Code != "bad_image" {
		t.Fatalf("job: %+v", job)
	}
	if n := len(job.Results[0].Predictions); n != 1 {
		t.Errorf("confidence threshold 0.85 should keep 1 prediction, got %d", n)
	}
	select {
	case b := <-got:
		var hooked Job
		json.Unmarshal(b, &hooked)
		if hooked.JobID != job.JobID || hooked.Status != "completed" {
			t.Errorf("webhook body %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("webhook never delivered")
	}
	if attempts.Load() != 2 {
		t.Errorf("webhook attempts: got %d, want 2", attempts.Load())
	}
	if _, err := bc.Status(context.Background(), "job_nope"); vision.ErrorCode(err) != vision.CodeBadRequest {
		t.Errorf("unknown job: got %v", err)
	}
	bad := &BatchClient{Codec: NewCodec(srv.URL, "wrong", "")}
	if _, err := bad.Submit(context.Background(), images, vision.Request{}, ""); vision.ErrorCode(err) != vision.CodeUnauthorized {
		t.Errorf("wrong key: got %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, p := range []string{"testdata/classify-request.json", "testdata/classify-request-url.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"image":"data:image/png;base64,iVBORw0KGgo=","parameters":{"include_attributes":true}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _ := http.NewRequest(http.MethodPost, "http://x"+ClassifyPath, nil)
		r.Header.Set("Content-Type", "application/json")
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
	b, _ := os.ReadFile("testdata/classify-response.json")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := (&Codec{}).DecodeResponse(&http.Response{StatusCode: 200}, b)
		if err != nil && vision.ErrorCode(err) == "" {
			t.Fatalf("untyped %v", err)
		}
	})
}
