package reports

import (
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// FormatVersion is the JSON report's version; fields are only ever added.
const FormatVersion = 1

// Options are what a report is judged with besides the runs.
type Options struct {
	// Config supplies report settings, gates, pricing and fx. Nil: no
	// gates (the verdict is INCONCLUSIVE) and no cost.
	Config *config.Config
	// Taxonomy gives category groups and colour values; nil compares
	// colours by name.
	Taxonomy *vision.Taxonomy
	// Fixtures are the labels accuracy is scored against; nil: no accuracy.
	Fixtures *fixtures.Set
	// Baseline and Candidate override the config and the runs' roles.
	Baseline, Candidate string
	// Lenient makes a file listed in run.json but missing, and an
	// observation without request_id, provider or role, a note (the
	// observation skipped and counted) instead of an error.
	Lenient bool
	// Labels is a labelled sample of the recorded traffic (a fixture set
	// made by cutover label, with its design); nil: no accuracy on the
	// traffic.
	Labels *LabelledSample
	// Now stamps the report. Default time.Now().
	Now time.Time
}

// LabelledSample is a fixture set made by cutover label: the labels in
// Set, the sampling design they were drawn by, and the folder (Dir) both
// came from.
type LabelledSample struct {
	Dir    string
	Set    *fixtures.Set
	Design *fixtures.Design
}

// Build reads the run directories, measures them (compare.Measure) and
// judges the gates. The same directory given twice is an error wrapping
// record.ErrInput, as are input problems Lenient does not excuse.
func Build(dirs []*record.Dir, opt Options) (*Report, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	m, err := compare.Measure(dirs, compare.Options{Config: opt.Config, Taxonomy: opt.Taxonomy, Fixtures: opt.Fixtures,
		Baseline: opt.Baseline, Candidate: opt.Candidate, Lenient: opt.Lenient})
	if err != nil {
		return nil, err
	}
	gates := config.Gates{MinSamples: 100}
	if opt.Config != nil {
		gates = opt.Config.Gates
	}
	rc := m.Settings
	r := &Report{FormatVersion: FormatVersion, Generated: opt.Now.UTC(), Runs: m.Runs, Baseline: m.Baseline,
		Candidate: m.Candidate, Coverage: m.Coverage, Providers: m.Providers, Agreement: m.Agreement, Paired: m.Paired,
		Timeline: m.Timeline, TimeZone: m.TimeZone, Observations: m.Observations, Notes: m.Notes,
		DuplicateObservations: m.Duplicates, SkippedObservations: m.Skipped, MissingFiles: m.Missing,
		Settings: map[string]float64{"daily_volume": float64(rc.DailyVolume), "color_delta_e": rc.ColorDeltaE,
			"top_k": float64(rc.TopK), "min_samples": float64(gates.MinSamples)}}
	if opt.Labels != nil {
		if err := traffic(r, dirs, opt.Labels); err != nil {
			return nil, err
		}
	}
	evaluate(r, gates, opt.Config)
	return r, nil
}

// traffic estimates accuracy on the recorded traffic from a labelled
// sample of it. A sample that cannot estimate it yet (a stratum without
// labels) is a note; a set that does not belong to its design, an error.
func traffic(r *Report, dirs []*record.Dir, l *LabelledSample) error {
	digests := make([]string, len(dirs))
	for i, d := range dirs {
		dg, err := d.Digest()
		if err != nil {
			return err
		}
		digests[i] = dg
	}
	t, err := compare.Traffic(l.Dir, l.Design, l.Set, digests)
	if errors.Is(err, compare.ErrNotEstimable) {
		r.Notes = append(r.Notes, fmt.Sprintf("accuracy on the recorded traffic (%s): %v", l.Dir, err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("the labelled sample in %s: %w", l.Dir, err)
	}
	r.TrafficAccuracy = t
	r.Notes = append(r.Notes, fmt.Sprintf("accuracy on the recorded traffic rests on %d labels of a stratified sample of %d distinct images (%s), each weighted by its stratum; the share of labels a provider got right is not its accuracy (disagreements are oversampled)",
		t.Labelled, t.Population, l.Dir))
	for _, run := range t.Runs {
		if !run.InReport {
			r.Notes = append(r.Notes, fmt.Sprintf("the labelled sample was drawn from %s, which is not among this report's runs (or has changed since): its accuracy on the traffic describes that run", run.Path))
		}
	}
	return nil
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / 1e6 }
