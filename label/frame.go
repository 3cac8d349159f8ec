// Package label is cutover label: a web page, and the JSON API behind
// it, on which a person adjudicates production traffic that a shadow
// proxy recorded with record.store_images. It builds the sampling frame
// (the distinct images of the recorded primary/candidate pairs), sorts
// them into strata by outcome, draws a stratified random sample with
// known inclusion probabilities, and saves each label as it is made into
// a fixture set (manifest.jsonl, the images, design.json) that bench,
// simulate and report read like any other. compare/stats turns that
// sample into weighted accuracy estimates.
//
// It is not a general annotation tool: one image at a time, one category
// and four attributes, from the taxonomy.
package label

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// The strata, a partition of the frame decided by an image's first pair.
const (
	// StratumFailed: at least one of the two calls has no usable top-1
	// category (an error, no answer, or an answer with no category).
	StratumFailed = "failed"
	// StratumDisagree: both answered, with different top-1 categories.
	StratumDisagree = "disagree"
	// StratumLow: both answered the same top-1 category, and at least
	// one of them with a confidence below the low-confidence threshold.
	StratumLow = "low"
	// StratumAgree: both answered the same top-1 category, both at or
	// above the threshold.
	StratumAgree = "agree"
)

// Spec describes one stratum for the allocation: its definition and the
// unit standard deviation the Neyman allocation anticipates there.
type Spec struct {
	Name       string
	Definition string
	// SD is the anticipated standard deviation of a unit's outcome, the
	// root of the summed variances of three 0/1 or −1/0/1 outcomes: A
	// right, B right, B right − A right (a compromise allocation for the
	// three estimates). In a disagreement at most one provider is right:
	// each is right about half the time (variance 0.25 each) and the
	// difference is ±1 about 80 % of the time (variance 0.8), √1.3 ≈ 1.
	// Where both answered alike they are right together, so the
	// difference has no variance: agreements, right about 95 % of the
	// time, give √(2·0.05) ≈ 0.3; low-confidence agreements, right about
	// 80 %, √(2·0.16) ≈ 0.6. A failed call is wrong, the other side
	// right about 70 %: √(0.21 + 0.21) ≈ 0.6.
	SD float64
	// Concordant strata hold pairs with the same top-1 category.
	Concordant bool
}

// Strata lists the strata in the order the design and the page show
// them.
var Strata = []Spec{
	{StratumDisagree, "both answered, with different top-1 categories", 1.0, false},
	{StratumFailed, "at least one call failed or answered no category", 0.6, false},
	{StratumLow, "same top-1 category, at least one confidence below the low-confidence threshold", 0.6, true},
	{StratumAgree, "same top-1 category, both confidences at or above the threshold", 0.3, true},
}

// Classify returns the stratum of a pair from its two answers: failed
// first, then disagree, then low, else agree, so every pair has exactly
// one.
func Classify(a, b fixtures.DesignAnswer, low float64) string {
	ta, tb := a.Top(), b.Top()
	switch {
	case ta == "" || tb == "":
		return StratumFailed
	case ta != tb:
		return StratumDisagree
	case a.Tags.Categories[0].Confidence < low || b.Tags.Categories[0].Confidence < low:
		return StratumLow
	}
	return StratumAgree
}

// Unit is one distinct image of the frame with its first pair.
type Unit struct {
	SHA256  string
	Stratum string
	Run     int
	PairID  string
	Time    time.Time
	// File is the stored image, relative to run ImageRun.
	File     string
	ImageRun int
	Answers  [2]fixtures.DesignAnswer
}

// Frame is the sampling frame: every distinct image of the recorded
// pairs whose stored file is intact, each in one stratum.
type Frame struct {
	Providers [2]fixtures.DesignProvider
	Runs      []fixtures.DesignRun
	// Units are sorted by SHA-256.
	Units    []Unit
	Excluded fixtures.DesignExcluded
	// Low is the confidence threshold of the low stratum.
	Low float64
}

// NoImagesError says a run directory has no stored images.
type NoImagesError struct {
	Dir    string
	Reason string
}

func (e *NoImagesError) Error() string {
	return fmt.Sprintf("%s: %s; cutover label needs a proxy run recorded with record.store_images: true", e.Dir, e.Reason)
}

// half is one side of a pair while the other is awaited.
type half struct {
	set  [2]bool
	obs  [2]fixtures.DesignAnswer
	sha  [2]string
	time time.Time
}

// BuildFrame reads the run directories and builds the frame: pairs are
// the observations sharing a pair_id with one primary and one candidate
// answer; an image seen in several pairs takes its stratum and answers
// from its first pair (earliest primary send time, then run order, then
// pair id), the pair whose answers a report scores. Every stored image of
// the frame is hashed: a missing or altered file is excluded and listed.
func BuildFrame(ctx context.Context, runDirs []string, low float64) (*Frame, error) {
	if len(runDirs) == 0 {
		return nil, errors.New("building the frame: no run directories")
	}
	f := &Frame{Low: low}
	first := map[string]*Unit{}
	stored := make([]map[string]string, len(runDirs))
	for ri, path := range runDirs {
		d, err := record.Open(path)
		if err != nil {
			return nil, err
		}
		imgs, _, err := d.StoredImages()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NoImagesError{path, "no images/ folder"}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(imgs) == 0 {
			return nil, &NoImagesError{path, "its images/ folder holds no images"}
		}
		stored[ri] = imgs
		digest, err := d.Digest()
		if err != nil {
			return nil, err
		}
		run := fixtures.DesignRun{Path: path, Digest: digest}
		pending := map[string]*half{}
		var names [2]string
		err = d.Observations(func(o record.Observation) error {
			side := -1
			switch o.Role {
			case record.RolePrimary:
				side = 0
			case record.RoleCandidate:
				side = 1
			}
			if side < 0 || o.PairID == "" {
				return nil
			}
			if names[side] == "" {
				names[side] = o.Provider
			} else if names[side] != o.Provider {
				return fmt.Errorf("%s: the %s is %q in one pair and %q in another: label compares two providers", path, o.Role, names[side], o.Provider)
			}
			h := pending[o.PairID]
			if h == nil {
				h = &half{}
				pending[o.PairID] = h
			}
			h.set[side] = true
			h.obs[side] = fixtures.DesignAnswer{Provider: o.Provider, Status: o.Status, Code: o.Code, Tags: o.Tags}
			h.sha[side] = o.ImageSHA256
			if side == 0 {
				h.time = o.Time
			}
			if !h.set[0] || !h.set[1] {
				return nil
			}
			delete(pending, o.PairID)
			if h.obs[0].Code == record.CodeCancelled || h.obs[1].Code == record.CodeCancelled {
				f.Excluded.IncompletePairs++ // a hedge's loser: no answer to compare
				return nil
			}
			sha := h.sha[0]
			if sha == "" {
				sha = h.sha[1]
			}
			if sha == "" || (h.sha[1] != "" && h.sha[1] != sha) {
				f.Excluded.UnhashedPairs++
				return nil
			}
			run.Pairs++
			u := &Unit{SHA256: sha, Run: ri, PairID: o.PairID, Time: h.time, Answers: h.obs,
				Stratum: Classify(h.obs[0], h.obs[1], low)}
			if prev := first[sha]; prev == nil || earlier(u, prev) {
				first[sha] = u
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		f.Excluded.IncompletePairs += len(pending)
		if run.Pairs == 0 {
			return nil, fmt.Errorf("%s: no complete pairs of a primary and a candidate answer (label reads shadow proxy runs)", path)
		}
		for side, n := range names {
			p := &f.Providers[side]
			if p.Name == "" {
				p.Name, p.Role = n, []string{record.RolePrimary, record.RoleCandidate}[side]
			} else if p.Name != n {
				return nil, fmt.Errorf("%s: its %s is %q but %s's is %q: label compares the same two providers across runs",
					path, p.Role, n, runDirs[0], p.Name)
			}
		}
		f.Runs = append(f.Runs, run)
	}
	units := make([]Unit, 0, len(first))
	for _, u := range first {
		units = append(units, *u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].SHA256 < units[j].SHA256 })
	// Hash every image of the frame; keep the intact ones. An image
	// missing from its first pair's run may be stored by another run.
	type check struct {
		file   string
		reason string
	}
	checks := make([]check, len(units))
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				u := &units[i]
				u.ImageRun = u.Run
				rel, ok := stored[u.Run][u.SHA256]
				run := u.Run
				if !ok {
					for r := range stored {
						if rel, ok = stored[r][u.SHA256]; ok {
							run = r
							break
						}
					}
				}
				if !ok {
					checks[i].reason = "missing: no stored file"
					continue
				}
				if err := verify(filepath.Join(runDirs[run], filepath.FromSlash(rel)), u.SHA256); err != nil {
					checks[i].reason = err.Error()
					continue
				}
				u.ImageRun, checks[i].file = run, rel
			}
		}()
	}
	for i := range units {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, u := range units {
		if c := checks[i]; c.reason != "" {
			if strings.HasPrefix(c.reason, "missing") {
				f.Excluded.MissingImages++
			} else {
				f.Excluded.TamperedImages++
			}
			f.Excluded.Images = append(f.Excluded.Images, fixtures.ExcludedImage{SHA256: u.SHA256, Run: runDirs[u.ImageRun], Reason: c.reason})
			continue
		}
		u.File = checks[i].file
		f.Units = append(f.Units, u)
		f.Runs[u.Run].Images++ // counted in the run of its first pair
	}
	if len(f.Units) == 0 {
		return nil, fmt.Errorf("building the frame: none of the %d images of the recorded pairs has an intact stored file", len(units))
	}
	return f, nil
}

func earlier(a, b *Unit) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	if a.Run != b.Run {
		return a.Run < b.Run
	}
	return a.PairID < b.PairID
}

// verify checks that the file at path hashes to sha.
func verify(path, sha string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("missing: the stored file is gone")
		}
		return fmt.Errorf("unreadable: %w", err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != sha {
		return fmt.Errorf("altered: the stored file hashes to %s…, not to its name", got[:12])
	}
	if vision.SniffMediaType(b) == "" {
		return errors.New("altered: the stored file is not a recognised image")
	}
	return nil
}
