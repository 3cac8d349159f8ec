package rekognition

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

var testCreds = aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret-key"}

var fixedNow = func() time.Time { return time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC) }

func newClient(u string) vision.ClientCodec {
	c := NewCodec(u, "ap-southeast-1", testCreds)
	c.Now = fixedNow
	return c
}

var sampleResult = vision.Result{
	ModelVersion: "3.0",
	Labels: []vision.Label{
		{Name: "Clothing", Confidence: 0.99},
		{Name: "T-Shirt", Confidence: 0.9312, Parents: []string{"Topwear", "Clothing"}, Aliases: []string{"Tee"}},
	},
	Attributes: []vision.Attribute{{Kind: vision.KindPattern, Value: "Striped", Confidence: 0.8}},
	Colors:     []vision.Color{{R: 0x10, G: 0x20, B: 0x30, Hex: "#102030", Fraction: 0.61, Name: "Blue"}},
}

func suite() visiontest.Suite {
	img := vision.NewImage(visiontest.Image)
	rekBody := func(b64 string) []byte {
		return []byte(`{"Image":{"Bytes":"` + b64 + `"},"MaxLabels":10}`)
	}
	post := func(body []byte, hdr ...string) func(string) *http.Request {
		return func(u string) *http.Request {
			h := append([]string{"X-Amz-Target", Target}, hdr...)
			return visiontest.Post(u+"/", ContentType, body, h...)
		}
	}
	return visiontest.Suite{
		Server:    &Codec{},
		NewClient: newClient,
		Request:   vision.Request{Image: img, MaxLabels: 10, MinConfidence: 0.6, Attributes: []vision.AttributeKind{vision.KindColor}, CategoryFilter: []string{"Clothing"}},
		WantDecoded: func(s vision.Request) vision.Request {
			return s
		},
		Result: sampleResult,
		WantResult: vision.Result{
			ModelVersion: "3.0",
			Labels: []vision.Label{
				{Name: "Clothing", Confidence: 0.99},
				{Name: "T-Shirt", Confidence: 0.9312, Parents: []string{"Topwear", "Clothing"}, Aliases: []string{"Tee"}},
				{Name: "Striped", Confidence: 0.8},
			},
			Colors: []vision.Color{{R: 0x10, G: 0x20, B: 0x30, Hex: "#102030", Fraction: 0.61, Name: "Blue"}},
		},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeUnauthorized: vision.CodeUnauthorized,
			vision.CodeTooLarge: vision.CodeTooLarge, vision.CodeBadImage: vision.CodeBadImage,
			vision.CodeBadRequest: vision.CodeBadRequest, vision.CodeServerError: vision.CodeServerError,
			vision.CodeTimeout: vision.CodeServerError,
		},
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("malformed JSON", post([]byte(`{"Image":`)), 400, vision.CodeBadRequest),
			visiontest.Bad("wrong content type", func(u string) *http.Request {
				return visiontest.Post(u+"/", "text/plain", rekBody(base64.StdEncoding.EncodeToString(visiontest.Image)), "X-Amz-Target", Target)
			}, 400, vision.CodeBadRequest),
			visiontest.Bad("unknown target", func(u string) *http.Request {
				return visiontest.Post(u+"/", ContentType, rekBody(""), "X-Amz-Target", "RekognitionService.DetectFaces")
			}, 400, vision.CodeBadRequest),
			visiontest.Bad("invalid base64", post(rekBody("!!!not-base64!!!")), 400, vision.CodeBadRequest),
			visiontest.Bad("empty image", post(rekBody("")), 400, vision.CodeBadRequest),
			visiontest.Bad("not an image", post(rekBody(base64.StdEncoding.EncodeToString([]byte("hello, this is text")))), 400, vision.CodeBadImage),
			visiontest.Bad("image over 5 MB", post(rekBody(base64.StdEncoding.EncodeToString(visiontest.Huge(MaxImageBytes+1)))), 400, vision.CodeTooLarge),
			visiontest.Bad("body far over the limit", post(make([]byte, 12<<20)), 400, vision.CodeTooLarge),
			visiontest.Bad("negative MaxLabels", post([]byte(`{"Image":{"Bytes":"`+base64.StdEncoding.EncodeToString(visiontest.Image)+`"},"MaxLabels":-1}`)), 400, vision.CodeBadRequest),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite()) }

func TestGolden(t *testing.T) {
	in, err := EncodeRequest(vision.Request{Image: vision.NewImage(visiontest.Image), MaxLabels: 10, MinConfidence: 0.6,
		Attributes: []vision.AttributeKind{vision.KindColor}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(in, "", "  ")
	visiontest.Golden(t, "detectlabels-request.json", append(b, '\n'))
	b, _ = json.MarshalIndent(OutputFromResult(sampleResult), "", "  ")
	visiontest.Golden(t, "detectlabels-response.json", append(b, '\n'))
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeBadImage, vision.CodeTooLarge, vision.CodeUnauthorized} {
		w := httptest.NewRecorder()
		(&Codec{}).WriteError(w, vision.Errorf(code, ""))
		visiontest.Golden(t, "error-"+string(code)+".json", append(w.Body.Bytes(), '\n'))
		if w.Header().Get("X-Amzn-Errortype") == "" {
			t.Errorf("%s: no x-amzn-ErrorType header", code)
		}
	}
	// The goldens decode back to the same request.
	req, err := DecodeInput(mustRead(t, "testdata/detectlabels-request.json"))
	if err != nil || req.MaxLabels != 10 || req.MinConfidence != 0.6 || !req.WantsAttribute(vision.KindColor) {
		t.Errorf("golden request decodes to %+v, %v", req, err)
	}
}

func TestErrorName(t *testing.T) {
	for _, tc := range []struct {
		header, body, want string
	}{
		{"ThrottlingException:http://internal.amazon.com/", `{"__type":"InternalServerError"}`, "ThrottlingException"},
		{"", `{"code":"AccessDeniedException","__type":"x"}`, "AccessDeniedException"},
		{"", `{"__type":"com.amazonaws.rekognition#ImageTooLargeException","message":"big"}`, "ImageTooLargeException"},
		{"", `{"__type":"aws.protocoltests#InvalidImageFormatException:extra"}`, "InvalidImageFormatException"},
		{"", `not json`, ""},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("x-amzn-ErrorType", tc.header)
		}
		if got, _ := ErrorName(h, []byte(tc.body)); got != tc.want {
			t.Errorf("%q %q: got %q, want %q", tc.header, tc.body, got, tc.want)
		}
	}
	e := DecodeError(400, http.Header{}, []byte(`{"__type":"ProvisionedThroughputExceededException"}`))
	if e.Code != vision.CodeThrottled || !e.Code.Retryable() {
		t.Errorf("got %+v", e)
	}
}

// TestRealSDK points the official aws-sdk-go-v2 Rekognition client at a
// server built from this codec, with signature verification on.
func TestRealSDK(t *testing.T) {
	codec := &Codec{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _, _ := vision.ReadBody(r, codec.MaxBodyBytes())
		if err := VerifySignature(r, body, testCreds); err != nil {
			codec.WriteError(w, err)
			return
		}
		req, err := codec.DecodeRequest(r, body)
		if err != nil {
			codec.WriteError(w, err)
			return
		}
		if req.MaxLabels != 5 {
			t.Errorf("MaxLabels: got %d", req.MaxLabels)
		}
		codec.WriteResult(w, req, sampleResult)
	}))
	defer srv.Close()
	client := rekognition.New(rekognition.Options{
		Region:       "ap-southeast-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return testCreds, nil }),
	})
	out, err := client.DetectLabels(context.Background(), &rekognition.DetectLabelsInput{
		Image:     &types.Image{Bytes: visiontest.JPEG(16, 16, 2)},
		MaxLabels: aws.Int32(5),
		Features:  []types.DetectLabelsFeatureName{types.DetectLabelsFeatureNameGeneralLabels, types.DetectLabelsFeatureNameImageProperties},
	})
	if err != nil {
		t.Fatalf("DetectLabels: %v", err)
	}
	if len(out.Labels) != 3 || aws.ToString(out.Labels[1].Name) != "T-Shirt" || aws.ToFloat32(out.Labels[1].Confidence) < 93 ||
		aws.ToString(out.Labels[1].Parents[0].Name) != "Topwear" || aws.ToString(out.LabelModelVersion) != "3.0" {
		t.Errorf("labels: %+v", out.Labels)
	}
	if out.ImageProperties == nil || len(out.ImageProperties.DominantColors) != 1 || aws.ToInt32(out.ImageProperties.DominantColors[0].Blue) != 0x30 {
		t.Errorf("image properties: %+v", out.ImageProperties)
	}

	// A wrong secret is refused with Rekognition's own error, which the SDK reads.
	bad := rekognition.New(rekognition.Options{
		Region: "ap-southeast-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "wrong"}, nil
		}),
	})
	_, err = bad.DetectLabels(context.Background(), &rekognition.DetectLabelsInput{Image: &types.Image{Bytes: visiontest.JPEG(16, 16, 2)}})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("wrong secret: got %v", err)
	}
}

func TestSignatureVerifiesOwnClient(t *testing.T) {
	c := NewCodec("http://127.0.0.1:1", "eu-west-1", testCreds)
	hr, err := c.NewRequest(context.Background(), vision.Request{Image: vision.NewImage(visiontest.Image)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(hr)
	hr.Host = "127.0.0.1:1"
	if err := VerifySignature(hr, body, testCreds); err != nil {
		t.Fatalf("own signature rejected: %v", err)
	}
	if err := VerifySignature(hr, append(body, ' '), testCreds); vision.ErrorCode(err) != vision.CodeUnauthorized {
		t.Errorf("tampered body accepted: %v", err)
	}
	hr.Header.Del("Authorization")
	if err := VerifySignature(hr, body, testCreds); err == nil || !strings.Contains(err.Error(), "MissingAuthenticationToken") {
		t.Errorf("unsigned: got %v", err)
	}
}

func FuzzDecodeInput(f *testing.F) {
	f.Add(mustRead(f, "testdata/detectlabels-request.json"))
	f.Add([]byte(`{"Image":{"S3Object":{"Bucket":"b","Name":"k"}}}`))
	f.Add([]byte(`{"Image":{"Bytes":"AAAA"},"MinConfidence":101}`))
	f.Add([]byte(`{"Image":{"Bytes":"!!"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeInput(b)
		if err != nil {
			if vision.ErrorCode(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(req.Image.Bytes) == 0 && req.Image.URL == "" {
			t.Fatalf("accepted a request without an image: %q", b)
		}
		if req.MinConfidence < 0 || req.MinConfidence > 1 {
			t.Fatalf("confidence out of range: %v", req.MinConfidence)
		}
		// The pooled base64 decoder reads the same bytes encoding/json does.
		var std DetectLabelsInput
		if json.Unmarshal(b, &std) == nil && req.Image.URL == "" && !bytes.Equal(std.Image.Bytes, req.Image.Bytes) {
			t.Fatalf("image bytes differ from encoding/json's for %q", b)
		}
		// Decoded without the hash, HashImage adds the same one.
		un, err := decodeInput(b, false)
		if err != nil {
			t.Fatalf("decodes hashed but not unhashed: %v", err)
		}
		vision.HashImage(&un.Image)
		if un.Image.SHA256 != req.Image.SHA256 {
			t.Fatalf("HashImage %q, decoding %q", un.Image.SHA256, req.Image.SHA256)
		}
		un.Image.Lease.Release()
		// Re-encoded for a candidate: the pooled encoder writes what
		// encoding/json does.
		if in, err := EncodeRequest(req); err == nil {
			want, _ := json.Marshal(in)
			if buf, ok := appendInput(in); ok {
				if !bytes.Equal(*buf, want) {
					t.Fatalf("pooled encoding differs from encoding/json's for %q", b)
				}
				bufpool.RequestBodies.Put(buf)
			}
		}
		req.Image.Lease.Release()
	})
}

// TestDecodePooled: image bytes decode into a pooled buffer, with JSON
// escapes in the base64 and without; bad base64 is Rekognition's own
// error; the image's Lease returns the buffer.
func TestDecodePooled(t *testing.T) {
	img := visiontest.PNG(64, 64, 3)
	enc := base64.StdEncoding.EncodeToString(img)
	escaped := strings.ReplaceAll(enc, "/", `\/`)
	pool := &bufpool.Images
	before := pool.Live()
	for _, s := range []string{enc, escaped} {
		req, err := DecodeInput([]byte(`{"Image":{"Bytes":"` + s + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(req.Image.Bytes, img) || req.Image.Size != len(img) {
			t.Fatalf("decoded %d bytes, want the %d encoded", len(req.Image.Bytes), len(img))
		}
		if pool.Live() != before+1 {
			t.Errorf("%d image buffers out while one image is held, want 1", pool.Live()-before)
		}
		req.Image.Lease.Release()
		req.Image.Lease.Release() // twice is harmless
		if pool.Live() != before {
			t.Error("Release did not return the image's buffer")
		}
	}
	_, err := DecodeInput([]byte(`{"Image":{"Bytes":"` + enc[:40] + `!!` + enc[42:] + `"}}`))
	if e := vision.AsError(err); e == nil || e.VendorCode != "SerializationException" || !strings.Contains(e.Message, "Base64") {
		t.Errorf("bad base64: %v", err)
	}
	// Not an image: the buffer goes straight back.
	if _, err := DecodeInput([]byte(`{"Image":{"Bytes":"` + base64.StdEncoding.EncodeToString(make([]byte, 20000)) + `"}}`)); err == nil {
		t.Error("zeros accepted as an image")
	}
	if n := pool.Live() - before; n != 0 {
		t.Errorf("%d image buffers not returned", n)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(mustRead(f, "testdata/detectlabels-response.json"))
	f.Add([]byte(`{"Labels":[{"Name":"x","Confidence":1e308}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := (&Codec{}).DecodeResponse(&http.Response{StatusCode: 200, Header: http.Header{}}, b)
		if err != nil && vision.ErrorCode(err) != vision.CodeInvalidResponse {
			t.Fatalf("got %v", err)
		}
		_ = res
	})
}

// TestAppendInputMatchesMarshal: the pooled encoder writes byte for byte
// what jsonx.Marshal writes, for every option and image length.
func TestAppendInputMatchesMarshal(t *testing.T) {
	reqs := []vision.Request{
		{},
		{MaxLabels: 7},
		{MinConfidence: 0.55, Attributes: []vision.AttributeKind{vision.KindColor}},
		{MaxLabels: 3, MinConfidence: 0.123456789, CategoryFilter: []string{"Shoe", "Dress"}, Attributes: []vision.AttributeKind{vision.KindColor, vision.KindPattern}},
	}
	lengths := []int{75000}
	for n := 1; n < 200; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		img := make([]byte, n)
		for i := range img {
			img[i] = byte(i*131 + n)
		}
		for _, r := range reqs {
			r.Image = vision.Image{Bytes: img}
			in, err := EncodeRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			buf, ok := appendInput(in)
			if !ok {
				t.Fatalf("appendInput declined %d bytes, %+v", n, r)
			}
			if !bytes.Equal(*buf, want) {
				t.Fatalf("%d bytes, %+v:\n got %.300s\nwant %.300s", n, r, *buf, want)
			}
			bufpool.RequestBodies.Put(buf)
		}
	}
	if _, ok := appendInput(DetectLabelsInput{Image: Image{S3Object: &S3Object{Bucket: "b", Name: "k"}}}); ok {
		t.Error("appendInput took an S3 image")
	}
}
