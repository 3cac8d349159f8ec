package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cutover/cutover/vision"
)

// S3Options reach an S3 (or S3-compatible) endpoint. Credentials come
// from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
type S3Options struct {
	// Endpoint overrides the AWS endpoint (MinIO, a test server). Default
	// $AWS_ENDPOINT_URL_S3, else AWS.
	Endpoint string
	// Region. Default $AWS_REGION, else us-east-1.
	Region string
	// PresignFor makes Load return presigned URLs (with the image's
	// SHA-256, read once for the idempotency key) for providers that fetch
	// images themselves; bytes otherwise.
	PresignURLs bool
	// MaxObjectBytes skips larger objects (dead-lettered). Default 32 MiB.
	MaxObjectBytes int64
}

// S3Source lists the images under s3://bucket/prefix; a product id is the
// key below the prefix without its extension.
type S3Source struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	prefix  string
	opt     S3Options
}

// NewS3Source parses s3://bucket/prefix and builds the client.
func NewS3Source(ctx context.Context, spec string, opt S3Options) (*S3Source, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--source %q: expected s3://bucket/prefix", spec)
	}
	if opt.Endpoint == "" {
		opt.Endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	if opt.Region == "" {
		opt.Region = os.Getenv("AWS_REGION")
	}
	if opt.Region == "" {
		opt.Region = "us-east-1"
	}
	if opt.MaxObjectBytes == 0 {
		opt.MaxObjectBytes = 32 << 20
	}
	o := s3.Options{Region: opt.Region, Credentials: credentials.NewStaticCredentialsProvider(
		os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))}
	if opt.Endpoint != "" {
		o.BaseEndpoint = aws.String(opt.Endpoint)
		o.UsePathStyle = true
	}
	c := s3.New(o)
	return &S3Source{client: c, presign: s3.NewPresignClient(c), bucket: u.Host, prefix: strings.TrimPrefix(u.Path, "/"), opt: opt}, nil
}

// Name implements Source.
func (s *S3Source) Name() string { return "s3://" + s.bucket + "/" + s.prefix }

// Items implements Source.
func (s *S3Source) Items(ctx context.Context) ([]Item, error) {
	var out []Item
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", s.Name(), err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !imageExt[strings.ToLower(path.Ext(key))] {
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(key, s.prefix), "/")
			out = append(out, Item{ProductID: strings.TrimSuffix(rel, path.Ext(rel)), Key: key})
		}
	}
	return out, nil
}

// Load implements Source.
func (s *S3Source) Load(ctx context.Context, it Item) (vision.Image, error) {
	obj, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(it.Key)})
	if err != nil {
		return vision.Image{}, fmt.Errorf("s3://%s/%s: %w", s.bucket, it.Key, err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(io.LimitReader(obj.Body, s.opt.MaxObjectBytes+1))
	if err != nil {
		return vision.Image{}, err
	}
	if int64(len(b)) > s.opt.MaxObjectBytes {
		return vision.Image{}, vision.Errorf(vision.CodeTooLarge, "s3://%s/%s is larger than %d bytes", s.bucket, it.Key, s.opt.MaxObjectBytes)
	}
	img := vision.NewImage(b)
	if img.MediaType == "" {
		return img, vision.Errorf(vision.CodeBadImage, "s3://%s/%s is not an image", s.bucket, it.Key)
	}
	if s.opt.PresignURLs {
		req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(it.Key)},
			s3.WithPresignExpires(time.Hour))
		if err != nil {
			return img, err
		}
		img.Bytes, img.URL = nil, req.URL
	}
	return img, nil
}
