package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cutover/cutover/vision"
)

// BackfillStats counts what a backfill did.
type BackfillStats struct {
	Items   int           `json:"items"`
	Tagged  int64         `json:"tagged"`  // committed now
	Skipped int64         `json:"skipped"` // done by an earlier run
	Dead    int64         `json:"dead"`    // dead-lettered now
	Elapsed time.Duration `json:"elapsed"`
}

// Backfill tags every item of src with concurrency workers. Items already
// committed (or dead-lettered) by an earlier run are skipped, so a rerun
// after a crash resumes and does each item exactly once: the commit is
// idempotent on (product, image, rules version). An item that fails a
// non-retryable way, or retryably max_attempts times, goes to the dead
// letter table with its last error. progress, when non-nil, shows a bar.
func Backfill(ctx context.Context, src Source, t *Tagger, concurrency int, progress io.Writer) (BackfillStats, error) {
	start := time.Now()
	items, err := src.Items(ctx)
	if err != nil {
		return BackfillStats{}, err
	}
	st := BackfillStats{Items: len(items)}
	// What earlier runs did, in one query rather than one per item.
	done, err := t.Store.DoneKeys(ctx, t.Rules.Version())
	if err != nil {
		return st, err
	}
	var bar *progressbar.ProgressBar
	if progress != nil {
		bar = progressbar.NewOptions(len(items), progressbar.OptionSetWriter(progress), progressbar.OptionSetDescription("tagging"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("images"),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	work := make(chan Item)
	var wg sync.WaitGroup
	var tl tally
	for range max(concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				tl.add(t.tagItem(ctx, src, it, done))
				if bar != nil {
					bar.Add(1)
				}
			}
		}()
	}
	for _, it := range items {
		if ctx.Err() != nil || tl.failed() != nil {
			break
		}
		select {
		case work <- it:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if bar != nil {
		bar.Finish()
	}
	tl.fill(&st, start)
	err = tl.failed()
	if err == nil {
		err = ctx.Err()
	}
	return st, err
}

// tally counts the workers' outcomes (tagged, skipped, dead, or retry for
// a redelivery to come) and keeps the first failure of the pipeline itself.
type tally struct {
	tagged, skipped, dead atomic.Int64
	mu                    sync.Mutex
	err                   error
}

// add counts one outcome; it reports whether err was the first failure.
func (t *tally) add(outcome string, err error) bool {
	if err != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.err == nil {
			t.err = err
			return true
		}
		return false
	}
	switch outcome {
	case "tagged":
		t.tagged.Add(1)
	case "skipped":
		t.skipped.Add(1)
	case "dead":
		t.dead.Add(1)
	}
	return false
}

func (t *tally) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *tally) fill(st *BackfillStats, start time.Time) {
	st.Tagged, st.Skipped, st.Dead, st.Elapsed = t.tagged.Load(), t.skipped.Load(), t.dead.Load(), time.Since(start)
}

// tagItem loads, tags and commits one item, dead-lettering it when the
// provider (or the image) fails for good. An error is returned only for
// failures of the pipeline itself (the store), which stop the backfill.
func (t *Tagger) tagItem(ctx context.Context, src Source, it Item, done map[string]bool) (string, error) {
	img, err := src.Load(ctx, it)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		key := IdemKey(it.ProductID, "unreadable:"+it.Path+it.Key, t.Rules.Version())
		if done[key] {
			return "skipped", nil
		}
		return "dead", t.Store.DeadLetter(ctx, key, it.ProductID, src.Name(), 1, t.Scrub.Error(err))
	}
	key := IdemKey(it.ProductID, img.SHA256, t.Rules.Version())
	if done[key] {
		return "skipped", nil
	}
	res, err := t.tagNew(ctx, it.ProductID, img, it.Label)
	switch {
	case err == nil && res.Created:
		return "tagged", nil
	case err == nil:
		return "skipped", nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.Is(err, ErrExhausted) || !isStoreErr(err):
		attempts := res.Attempts
		if attempts == 0 {
			attempts = 1
		}
		return "dead", t.Store.DeadLetter(ctx, key, it.ProductID, src.Name(), attempts, t.Scrub.Error(err))
	}
	return "", t.Scrub.Wrap(fmt.Errorf("%s: %w", it.ProductID, err))
}

// isStoreErr reports whether err came from committing, not from the provider.
func isStoreErr(err error) bool {
	var e *vision.Error
	return !errors.As(err, &e) && !errors.Is(err, ErrExhausted)
}
