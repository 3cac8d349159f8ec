package pipeline

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/cutover/cutover/vision/visiontest"
)

// TestS3Source backfills from an S3-compatible server (gofakes3) through
// aws-sdk-go-v2: objects listed under the prefix, non-images skipped,
// product ids from keys, presigned URLs for providers that fetch images.
func TestS3Source(t *testing.T) {
	ctx := context.Background()
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer fake.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDS3TEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3-test-secret")
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDS3TEST", "s3-test-secret", "")})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("catalogue")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, b []byte) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("catalogue"), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		put("new/2026-11/sku-"+string(rune('a'+i%26))+string(rune('0'+i/26))+".png", visiontest.PNG(12, 12, uint64(500+i)))
	}
	put("new/2026-11/readme.txt", []byte("not an image"))
	put("old/sku-x.png", visiontest.PNG(12, 12, 999))
	src, err := OpenSource(ctx, "s3://catalogue/new/2026-11/", S3Options{Endpoint: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	items, err := src.Items(ctx)
	if err != nil || len(items) != 30 || items[0].ProductID != "sku-a0" {
		t.Fatalf("items: %d %+v %v", len(items), items[:min(2, len(items))], err)
	}
	cfg := testConfig(t, provider(t, "", nil), "sqlite://"+filepath.Join(t.TempDir(), "p.db"), "")
	st, _ := Open(ctx, cfg.Pipeline.Store.URL, "")
	defer st.Close()
	s, err := Backfill(ctx, src, newTagger(t, cfg, st), 8, nil)
	if err != nil || s.Tagged != 30 {
		t.Fatalf("backfill from S3: %+v %v", s, err)
	}
	// Presigned: the image is read once for its hash, then sent as a URL.
	ps, _ := OpenSource(ctx, "s3://catalogue/new/2026-11/", S3Options{Endpoint: fake.URL, PresignURLs: true})
	img, err := ps.Load(ctx, items[0])
	if err != nil || img.URL == "" || img.Bytes != nil || len(img.SHA256) != 64 {
		t.Errorf("presigned load: %+v %v", img, err)
	}
}
