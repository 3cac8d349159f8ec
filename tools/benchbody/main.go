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
	flag.Parse()
	img := visiontest.Sized(*size, *seed)
	req := vision.Request{Image: vision.NewImage(img), MaxLabels: 10, Attributes: []vision.AttributeKind{vision.KindColor}}
	var c vision.ClientCodec
	switch *format {
	case "rekognition":
		c = rekognition.NewCodec("http://x", "us-east-1", rekognition.NoCredentials)
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
	io.Copy(os.Stdout, hr.Body)
	fmt.Fprintf(os.Stderr, "benchbody: %s body with a %d-byte JPEG\n", *format, len(img))
}
