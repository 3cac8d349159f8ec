package vision_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/holysheep"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/visiontest"
)

// TestBodyCache: a cached body is byte-identical to a fresh encoding, and
// a signing format's cached request is signed again and verifies.
func TestBodyCache(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDCACHE", SecretAccessKey: "cache-secret"}
	var bodies [][]byte
	var bad atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
		if r.Header.Get("X-Amz-Target") != "" {
			if err := rekognition.VerifySignature(r, b, creds); err != nil {
				bad.Add(1)
			}
			(&rekognition.Codec{}).WriteResult(w, vision.Request{}, vision.Result{Labels: []vision.Label{{Name: "Shirt", Confidence: 0.9}}})
			return
		}
		(&holysheep.Codec{}).WriteResult(w, vision.Request{}, vision.Result{Categories: []vision.Label{{Name: "apparel", Confidence: 0.9}}})
	}))
	defer srv.Close()
	req := vision.Request{Image: vision.NewImage(visiontest.JPEG(32, 32, 4)), MaxLabels: 5}
	for _, codec := range []vision.ClientCodec{holysheep.NewCodec(srv.URL, "k", ""), rekognition.NewCodec(srv.URL, "us-east-1", creds)} {
		bodies = nil
		c := &vision.Client{Codec: codec, Cache: &vision.BodyCache{}}
		for i := 0; i < 3; i++ {
			if _, err := c.Classify(context.Background(), req); err != nil {
				t.Fatalf("%s: %v", codec.Format(), err)
			}
			time.Sleep(time.Millisecond)
		}
		if len(bodies) != 3 || string(bodies[0]) != string(bodies[1]) || string(bodies[1]) != string(bodies[2]) {
			t.Errorf("%s: cached bodies differ from the first encoding", codec.Format())
		}
	}
	if bad.Load() != 0 {
		t.Errorf("%d re-signed requests failed verification", bad.Load())
	}
}
