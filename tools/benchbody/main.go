// Command benchbody writes a classification request body of a given wire
// format around a real JPEG of about -size bytes, for load generators (wrk,
// vegeta) that send one fixed body. It is a benchmark helper, not part of
// the cutover CLI.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/gcv"
	"github.com/cutover/cutover/vision/holysheep"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/visiontest"
)

func main() {
	size := flag.Int("size", 10<<10, "image size in bytes (at least)")
	format := flag.String("format", "rekognition", "rekognition, gcv or holysheep")
	seed := flag.Uint64("seed", 1, "image seed")
	signHost := flag.String("sign-host", "", "rekognition: sign the request for this host:port (a proxy with proxy.clients)")
	accessKey := flag.String("access-key", "", "the signing access key id (with -sign-host)")
	secretKey := flag.String("secret-key", "", "the signing secret key (with -sign-host)")
	headers := flag.String("headers", "", "with -sign-host: write the signature headers here, one \"Name: value\" per line (vegeta's target format)")
	flag.Parse()
	img := visiontest.Sized(*size, *seed)
	req := vision.Request{Image: vision.NewImage(img), MaxLabels: 10, Attributes: []vision.AttributeKind{vision.KindColor}}
	var c vision.ClientCodec
	switch *format {
	case "rekognition":
		c = rekognition.NewCodec("http://x", "us-east-1", rekognition.NoCredentials)
		if *signHost != "" {
			c = rekognition.NewCodec("http://"+*signHost, "us-east-1", aws.Credentials{AccessKeyID: *accessKey, SecretAccessKey: *secretKey})
		}
	case "gcv":
		c = gcv.NewCodec("http://x", "")
	case "holysheep":
		c = holysheep.NewCodec("http://x", "", "")
	default:
		fmt.Fprintln(os.Stderr, "benchbody: unknown format", *format)
		os.Exit(2)
	}
	hr, err := c.NewRequest(context.Background(), req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchbody:", err)
		os.Exit(1)
	}
	if *headers != "" {
		var b strings.Builder
		for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
			if v := hr.Header.Get(h); v != "" {
				fmt.Fprintf(&b, "%s: %s\n", h, v)
			}
		}
		if err := os.WriteFile(*headers, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchbody:", err)
			os.Exit(1)
		}
	}
	io.Copy(os.Stdout, hr.Body)
	fmt.Fprintf(os.Stderr, "benchbody: %s body with a %d-byte JPEG\n", *format, len(img))
}
