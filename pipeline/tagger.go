package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/vision"
)

// Tagger classifies an image with the pipeline's provider, applies the
// rules and commits the result: the one path the service and the
// backfills share.
type Tagger struct {
	Store    *Store
	Rules    *Rules
	Tax      *vision.Taxonomy
	Client   *vision.Client
	Provider string
	Retry    config.Retry
	// Scrub removes secrets from the provider's errors before anything
	// (an answer, a job, a dead letter, a log line) sees them; nil still
	// removes conventional credential parameters such as ?key=.
	Scrub *secret.Scrubber
	// Sleep waits between attempts (tests replace it); default honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Result is one image tagged.
type Result struct {
	Version  Version `json:"version"`
	Created  bool    `json:"created"`
	Tagging  Tagging `json:"tagging"`
	Attempts int     `json:"attempts"`
}

// retryable are the codes worth another attempt.
var retryable = map[vision.Code]bool{
	vision.CodeThrottled: true, vision.CodeTimeout: true, vision.CodeServerError: true, vision.CodeNetwork: true,
	vision.CodeInvalidResponse: true, vision.CodeQuotaExceeded: true, vision.CodeLLMInvalidJSON: true,
	vision.CodeLLMSchemaViolation: true, vision.CodeLLMTruncated: true,
}

// Retryable reports whether a provider failure is worth another attempt.
func Retryable(err error) bool { return retryable[vision.ErrorCode(err)] }

// ErrExhausted wraps the last error of an item that used every attempt.
var ErrExhausted = errors.New("attempts exhausted")

// Tag classifies img for productID and commits the tags. An image already
// committed under the same rules version is not sent to the provider again.
// label is the category the image is labelled with, "" when unknown.
func (t *Tagger) Tag(ctx context.Context, productID string, img vision.Image, label string) (Result, error) {
	key := IdemKey(productID, img.SHA256, t.Rules.Version())
	if done, err := t.Store.Done(ctx, key); err != nil {
		return Result{}, err
	} else if done {
		v, err := t.Store.versionByKey(ctx, key)
		if errors.Is(err, ErrNotFound) {
			err = nil // dead-lettered by an earlier run: done, without a version
		}
		return Result{Version: v}, err
	}
	return t.tagNew(ctx, productID, img, label)
}

// tagNew classifies and commits an image not known to be done (the commit
// is idempotent all the same).
func (t *Tagger) tagNew(ctx context.Context, productID string, img vision.Image, label string) (Result, error) {
	res, attempts, err := t.Classify(ctx, img)
	if err != nil {
		return Result{Attempts: attempts}, err
	}
	tagging := t.Rules.Apply(t.Tax.Normalize(t.Client.Codec.Format(), res), t.Provider)
	tagging.Label = label
	v, created, err := t.Store.Commit(ctx, productID, img.SHA256, t.Rules.Version(), t.Provider, tagging)
	if err != nil {
		return Result{Attempts: attempts}, t.Scrub.Wrap(fmt.Errorf("committing: %w", err))
	}
	return Result{Version: v, Created: created, Tagging: tagging, Attempts: attempts}, nil
}

// Classify calls the provider, retrying retryable failures with
// exponential backoff and full jitter (a uniform wait in [0, min(max,
// base·2^attempt)]), or the provider's Retry-After when that is longer.
// Its errors are scrubbed of secrets; their codes stay (errors.As).
func (t *Tagger) Classify(ctx context.Context, img vision.Image) (vision.Result, int, error) {
	sleep := t.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var last error
	for attempt := 1; attempt <= t.Retry.MaxAttempts; attempt++ {
		res, err := t.Client.Classify(ctx, vision.Request{Image: img})
		if err == nil {
			return res, attempt, nil
		}
		last = t.Scrub.Wrap(err)
		if !Retryable(err) || attempt == t.Retry.MaxAttempts || ctx.Err() != nil {
			break
		}
		if err := sleep(ctx, t.Backoff(attempt, err)); err != nil {
			return vision.Result{}, attempt, err
		}
	}
	if Retryable(last) {
		return vision.Result{}, t.Retry.MaxAttempts, fmt.Errorf("%w after %d: %v", ErrExhausted, t.Retry.MaxAttempts, last)
	}
	return vision.Result{}, 0, last
}

// Backoff is the wait after failed attempt n (from 1).
func (t *Tagger) Backoff(n int, err error) time.Duration {
	ceil := t.Retry.BaseDelay.D() << min(n-1, 30)
	if ceil > t.Retry.MaxDelay.D() || ceil <= 0 {
		ceil = t.Retry.MaxDelay.D()
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	if e := vision.AsError(err); e != nil && e.RetryAfter > d {
		d = e.RetryAfter
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
