package compare

import (
	"errors"
	"fmt"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/fixtures"
)

// TrafficAccuracy is each provider's top-1 accuracy on recorded
// production traffic, estimated from a labelled stratified sample of its
// distinct images (a fixture set made by cutover label, with its
// design.json): every label weighted by its stratum's population over its
// labelled images (inverse-probability weights), with MOVER-Wilson
// intervals at the finite-population-corrected sizes
// (stats.StratifiedPaired). The unweighted share of right answers among
// the labels is not an estimate of accuracy (disagreements are
// oversampled) and is never reported.
type TrafficAccuracy struct {
	// Labels is the folder of the labelled set.
	Labels string `json:"labels"`
	// Unit is what a label stands for: "image", a distinct image of the
	// recorded pairs. Counting says which answer of an image is scored:
	// "first_pair", the answers of its earliest recorded pair.
	Unit     string `json:"unit"`
	Counting string `json:"counting"`
	// Population is the number of distinct images the estimate
	// describes; Sampled how many the design drew; Labelled how many of
	// them carry a label (the estimate rests on these), the rest having
	// been skipped or not yet labelled.
	Population int `json:"population"`
	Sampled    int `json:"sampled"`
	Labelled   int `json:"labelled"`
	// Providers are the primary ([0]) and the candidate ([1]) of the
	// recorded pairs.
	Providers []TrafficProvider `json:"providers"`
	// Difference is the candidate's accuracy minus the primary's.
	Difference TrafficDifference `json:"difference"`
	Strata     []TrafficStratum  `json:"strata"`
	// Runs are the run directories the sample was drawn from; InReport
	// says whether the report's own runs include each one (by digest).
	Runs []TrafficRun `json:"runs"`
}

// TrafficProvider is one provider's estimated accuracy on the traffic.
type TrafficProvider struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Accuracy Estimate `json:"accuracy"`
}

// TrafficDifference is B's accuracy minus A's on the same images.
type TrafficDifference struct {
	A string `json:"a"`
	B string `json:"b"`
	Estimate
}

// Estimate is a weighted estimate with its 95 % interval.
type Estimate struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// TrafficStratum is one stratum of the sample: its images, those drawn
// and labelled, and how the labelled ones were answered (both providers
// right, only the primary, only the candidate, neither).
type TrafficStratum struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
	Population int    `json:"population"`
	Sampled    int    `json:"sampled"`
	Labelled   int    `json:"labelled"`
	Both       int    `json:"both"`
	OnlyA      int    `json:"only_a"`
	OnlyB      int    `json:"only_b"`
	Neither    int    `json:"neither"`
}

// TrafficRun is one run the sample was drawn from.
type TrafficRun struct {
	Path     string `json:"path"`
	Digest   string `json:"digest"`
	InReport bool   `json:"in_report"`
}

// ErrNotEstimable is returned (wrapped) by Traffic when a stratum with
// images has no label yet: the traffic's accuracy cannot be estimated
// until it has one.
var ErrNotEstimable = errors.New("not estimable yet")

// Traffic estimates each provider's accuracy on the traffic design
// sampled, from the labels of set (the set in folder dir), at the 95 %
// level. digests are the digests of the runs being reported
// (record.Dir.Digest), to say which of the design's runs they include.
func Traffic(dir string, d *fixtures.Design, set *fixtures.Set, digests []string) (*TrafficAccuracy, error) {
	strata, _, err := d.Tally(set)
	if err != nil {
		return nil, err
	}
	e, err := stats.StratifiedPaired(strata, stats.Z95)
	if errors.Is(err, stats.ErrNoLabels) {
		return nil, fmt.Errorf("%w: %v (label more images of it)", ErrNotEstimable, err)
	}
	if err != nil {
		return nil, err
	}
	t := &TrafficAccuracy{Labels: dir, Unit: "image", Counting: "first_pair", Population: d.Population,
		Labelled: e.A.Labels, Difference: TrafficDifference{A: d.Providers[0].Name, B: d.Providers[1].Name, Estimate: estimate(e.Diff)}}
	for i, est := range []stats.Estimate{e.A, e.B} {
		t.Providers = append(t.Providers, TrafficProvider{Name: d.Providers[i].Name, Role: d.Providers[i].Role, Accuracy: estimate(est)})
	}
	for i, s := range d.Strata {
		tb := strata[i].Table
		t.Sampled += s.Sample
		t.Strata = append(t.Strata, TrafficStratum{Name: s.Name, Definition: s.Definition, Population: s.Population,
			Sampled: s.Sample, Labelled: tb.N(), Both: tb.Both, OnlyA: tb.OnlyA, OnlyB: tb.OnlyB, Neither: tb.Neither})
	}
	in := map[string]bool{}
	for _, dg := range digests {
		in[dg] = true
	}
	for _, r := range d.Runs {
		t.Runs = append(t.Runs, TrafficRun{Path: r.Path, Digest: r.Digest, InReport: in[r.Digest]})
	}
	return t, nil
}

func estimate(e stats.Estimate) Estimate { return Estimate{Value: e.Value, Lo: e.Lo, Hi: e.Hi} }
