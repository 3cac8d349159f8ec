package label

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/fixtures"
)

// SampleOptions are the settings a sample is drawn with.
type SampleOptions struct {
	// Budget is the number of images to label in all.
	Budget int
	// MinPerStratum is the floor of the allocation: each non-empty
	// stratum gets at least min(MinPerStratum, N_h) images (lowered when
	// the budget cannot pay it for every stratum).
	MinPerStratum int
	// Seed fixes the sample: the same frame and seed give the same
	// sample, in the same order, with the same sides shown first.
	Seed uint64
	// Now stamps the design (nil: time.Now).
	Now func() time.Time
}

// Draw allocates the budget over the frame's strata (stats.Allocate: a
// Neyman allocation on Spec.SD with a floor) and draws a simple random
// sample without replacement of n_h images from each stratum h, so each
// image of stratum h is in the sample with probability n_h/N_h. The
// sampled images are then put in one random order for presentation, so a
// person who stops early leaves a random subset of each stratum's sample
// unlabelled; each image also gets a random side for the primary's
// answer.
//
// Randomness comes from PCG generators seeded with (Seed, a hash of what
// they draw for) and a Fisher–Yates shuffle written here, so a sample
// does not change with the Go release.
func Draw(f *Frame, opt SampleOptions) (*fixtures.Design, error) {
	if opt.Budget <= 0 {
		return nil, fmt.Errorf("drawing the sample: the budget must be positive, not %d", opt.Budget)
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	byStratum := map[string][]int{}
	for i, u := range f.Units { // Units are sorted by SHA-256: the order is fixed
		byStratum[u.Stratum] = append(byStratum[u.Stratum], i)
	}
	sizes := make([]int, len(Strata))
	sds := make([]float64, len(Strata))
	for h, s := range Strata {
		sizes[h], sds[h] = len(byStratum[s.Name]), s.SD
	}
	alloc, err := stats.Allocate(sizes, sds, opt.Budget, opt.MinPerStratum)
	if err != nil {
		return nil, fmt.Errorf("drawing the sample: %w", err)
	}
	d := &fixtures.Design{
		FormatVersion: fixtures.DesignVersion, Tool: "cutover label", Created: now().UTC(),
		Unit: "image", StratumRule: "first pair",
		Seed: opt.Seed, Budget: opt.Budget, MinPerStratum: opt.MinPerStratum, LowConfidence: f.Low,
		Providers: f.Providers, Runs: f.Runs, Population: len(f.Units), Excluded: f.Excluded,
	}
	var picked []int
	for h, s := range Strata {
		ids := append([]int(nil), byStratum[s.Name]...)
		shuffle(rng(opt.Seed, "stratum "+s.Name), ids)
		picked = append(picked, ids[:alloc[h]]...)
		ds := fixtures.DesignStratum{Name: s.Name, Definition: s.Definition, Population: sizes[h], Sample: alloc[h],
			AnticipatedSD: s.SD, Concordant: s.Concordant}
		if sizes[h] > 0 {
			ds.InclusionProbability = float64(alloc[h]) / float64(sizes[h])
		}
		d.Strata = append(d.Strata, ds)
	}
	shuffle(rng(opt.Seed, "order"), picked)
	sides := rng(opt.Seed, "sides")
	for _, i := range picked {
		u := f.Units[i]
		d.Sample = append(d.Sample, fixtures.DesignUnit{SHA256: u.SHA256, Stratum: u.Stratum, Run: u.Run, PairID: u.PairID,
			Time: u.Time, File: u.File, ImageRun: u.ImageRun, Swap: sides.Uint64()&1 == 1, Answers: u.Answers})
	}
	return d, nil
}

// rng returns a PCG generator for seed and purpose.
func rng(seed uint64, purpose string) *rand.PCG {
	sum := sha256.Sum256([]byte(purpose))
	return rand.NewPCG(seed, binary.LittleEndian.Uint64(sum[:8]))
}

// shuffle is a Fisher–Yates shuffle with unbiased bounded draws.
func shuffle(r *rand.PCG, s []int) {
	for i := len(s) - 1; i > 0; i-- {
		j := int(below(r, uint64(i+1)))
		s[i], s[j] = s[j], s[i]
	}
}

// below returns a uniform integer in [0, n) by rejection.
func below(r *rand.PCG, n uint64) uint64 {
	limit := ^uint64(0) - (^uint64(0) % n) // a multiple of n
	for {
		if v := r.Uint64(); v < limit {
			return v % n
		}
	}
}
