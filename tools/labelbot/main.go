// Command labelbot answers a cutover label server through its JSON API
// the way a person answers the page, with an oracle for the truth: the
// label of the same image (by SHA-256) in a fixture set. The demo uses it
// because its shadow run's images are fixtures; it also shows how a
// script drives the API.
//
//	go run ./tools/labelbot --url http://127.0.0.1:8095 --fixtures out/fixtures
//
// Each image is decided as a careful labeller would: the answer slot (1 or
// 2) whose category is the fixture's, else "neither" with the fixture's
// category; the fixture's attributes; an image that is not a fixture is
// skipped. With $CUTOVER_LABEL_TOKEN set (or the variable --token-env
// names) it sends the token. It exits 0 when no item is left (or --max
// decisions were sent), 1 on an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/label"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labelbot:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("labelbot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8095", "the cutover label server")
	fxDir := fs.String("fixtures", "out/fixtures", "the fixture set that holds the truth")
	tokenEnv := fs.String("token-env", "CUTOVER_LABEL_TOKEN", "environment variable with the server's token, if it has one")
	max := fs.Int("max", 0, "stop after this many decisions (0: all)")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the server to answer at start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fx, err := fixtures.Load(*fxDir)
	if err != nil {
		return err
	}
	c := &label.Client{Base: *url, Token: os.Getenv(*tokenEnv)}
	// The server may still be drawing its sample: wait for it.
	deadline := time.Now().Add(*wait)
	for {
		_, err := c.Progress(ctx)
		if err == nil {
			break
		}
		var refused *label.APIError
		if errors.As(err, &refused) {
			return fmt.Errorf("the label server at %s refused: %w", *url, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the label server at %s does not answer: %w", *url, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	s, err := label.Bot(ctx, c, func(it label.Item) label.LabelRequest { return label.OracleAnswer(it, fx) }, *max)
	fmt.Fprintf(stdout, "labelbot: %d labelled (answer 1: %d, answer 2: %d, neither: %d), %d skipped (not fixtures)\n",
		s.Labelled, s.Answer1, s.Answer2, s.Neither, s.Skipped)
	return err
}
