package compare

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// Options are what a measurement is made with besides the runs.
type Options struct {
	// Config supplies the report settings, prices and fx. Nil: default
	// settings and no cost.
	Config *config.Config
	// Taxonomy gives category groups and colour values; nil compares
	// colours by name.
	Taxonomy *vision.Taxonomy
	// Fixtures are the labels accuracy is scored against; nil: no accuracy.
	Fixtures *fixtures.Set
	// Baseline and Candidate override the config and the runs' roles.
	Baseline, Candidate string
	// Lenient notes a file listed in run.json but missing, and skips an
	// observation without request_id, provider or role with a note,
	// instead of failing (see record.Reader).
	Lenient bool
}

// Measurement is every figure measured over a set of run directories.
type Measurement struct {
	Runs []RunInfo
	// Baseline and Candidate name the compared providers.
	Baseline, Candidate string
	// Coverage sums the proxy runs' coverage (nil for bench-only runs).
	Coverage *Coverage
	// Providers: baseline, candidate, then the others in order of
	// appearance.
	Providers []*ProviderStats
	// Agreement and Paired compare the baseline with each other provider.
	Agreement []Agreement
	Paired    []PairedAccuracy
	Timeline  []TimelineEvent
	// Settings are the report settings the figures were computed with.
	Settings config.Report
	// TimeZone is the zone of the hour-of-day tables.
	TimeZone string
	// Observations counts the observations measured; Duplicates those
	// dropped as repeats of a request_id; Skipped the invalid ones a
	// lenient read skipped; Missing the listed files a lenient read did
	// not find.
	Observations int64
	Duplicates   int64
	Skipped      int64
	Missing      []string
	// Notes say what a reader should know to trust the figures.
	Notes []string
}

// pairHorizon is how long after its first observation a pair can still be
// completed; observations are written in completion order, so a pair is
// closed once the stream has moved this far past it (the longest provider
// timeout config allows is 10 minutes).
const pairHorizon = 11 * time.Minute

// Measure reads the run directories and measures every provider, the
// agreement of the baseline with each other provider and their paired
// accuracy. Observation files are streamed; memory is bounded by the
// providers' histograms, the pairs still open within pairHorizon, the
// request ids read (16 bytes each) and, per provider, the labelled images
// it answered (their first answers: accuracy counts images, not calls, see
// CountFirstAnswer; 92 bytes an image at 20,000 images, 117 at a million,
// the map's overhead included) and, over bench runs, each image's first
// top category for self-agreement.
// The same directory given twice is an error (record.Distinct);
// observations are read through a record.Reader.
func Measure(dirs []*record.Dir, opt Options) (*Measurement, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no run directories")
	}
	if err := record.Distinct(dirs); err != nil {
		return nil, err
	}
	b := newMeasurer(opt)
	for i, d := range dirs {
		if err := b.addRun(i, d); err != nil {
			return nil, err
		}
	}
	return b.finish(), nil
}

type measurer struct {
	opt      Options
	e        *env
	provs    map[string]*provAcc
	order    []string
	runs     []RunInfo
	coverage *Coverage
	timeline []TimelineEvent
	baseline string
	cand     string
	obs      int64
	dups     int64
	skipped  int64
	missing  []string
	notes    []string
	reader   *record.Reader
	runOf    map[string]string // run identity → the first directory holding it

	// pairs open in the current run, oldest first.
	open   map[string]*pending
	queue  []*pending
	need   int
	latest time.Time
	agree  map[string]*agreeAcc // by provider B (A is the baseline)
	intern map[string]string
	benchy bool
}

type pending struct {
	key     string
	first   time.Time
	answers []answer
	done    bool
}

func newMeasurer(opt Options) *measurer {
	b := &measurer{opt: opt, provs: map[string]*provAcc{}, agree: map[string]*agreeAcc{}, intern: map[string]string{},
		reader: record.NewReader(opt.Lenient), runOf: map[string]string{}}
	b.e = newEnv(nil, opt.Config)
	b.e.s = NewScorer(opt.Taxonomy, b.e.rc)
	b.e.str = b.str
	b.baseline, b.cand = b.e.rc.Baseline, b.e.rc.Candidate
	if opt.Baseline != "" {
		b.baseline = opt.Baseline
	}
	if opt.Candidate != "" {
		b.cand = opt.Candidate
	}
	return b
}

func (b *measurer) prov(name string) *provAcc {
	p := b.provs[name]
	if p == nil {
		p = newProvAcc(name, b.opt.Config)
		b.provs[name] = p
		b.order = append(b.order, name)
	}
	return p
}

func (b *measurer) str(s string) string {
	if v, ok := b.intern[s]; ok {
		return v
	}
	b.intern[s] = s
	return s
}

func (b *measurer) addRun(idx int, d *record.Dir) error {
	r := d.Run
	b.runs = append(b.runs, RunInfo{Path: d.Path, Kind: r.Kind, Mode: r.Mode, ConfigDigest: r.ConfigDigest,
		Started: r.Started, Ended: r.Ended, Dropped: r.Dropped})
	fst, err := b.reader.CheckFiles(d)
	if err != nil {
		return err
	}
	b.missing = append(b.missing, fst.Missing...)
	b.problems(d.Path, "listed file missing", "listed files missing", fst)
	// A copy of a run already read holds the same run: its observations
	// are merged with it (each request counted once) and its run-level
	// figures are not added again.
	orig, copied := b.runOf[d.Identity()]
	if copied {
		b.notes = append(b.notes, fmt.Sprintf("%s holds the same run as %s (same kind, host and start time): its observations are merged with it, each request counted once, and its coverage, events and latency logs are taken from %s only", d.Path, orig, orig))
	} else {
		b.runOf[d.Identity()] = d.Path
	}
	if r.Dropped > 0 && !copied {
		b.notes = append(b.notes, fmt.Sprintf("%s: %d observations were dropped by the recorder (disk too slow): rates are over what was recorded", d.Path, r.Dropped))
	}
	if len(b.runs) > 1 && r.ConfigDigest != "" && b.runs[0].ConfigDigest != "" && r.ConfigDigest != b.runs[0].ConfigDigest {
		b.notes = append(b.notes, fmt.Sprintf("%s was recorded with a different config (digest %.12s, not %.12s): check that the providers are the same", d.Path, r.ConfigDigest, b.runs[0].ConfigDigest))
	}
	if r.Ended == nil {
		b.notes = append(b.notes, fmt.Sprintf("%s: the run had not ended when the report was made (live or crashed)", d.Path))
	}
	for _, p := range r.Providers {
		pa := b.prov(p.Name)
		if pa.role == "" || pa.role == record.RoleBench {
			pa.role = p.Role
		}
		if p.Format != "" {
			pa.format = p.Format
		}
		if p.Model != "" {
			pa.model = p.Model
		}
		switch {
		case p.Role == record.RolePrimary && b.baseline == "":
			b.baseline = p.Name
		case p.Role == record.RoleCandidate && b.cand == "":
			b.cand = p.Name
		}
	}
	if r.Kind == "bench" {
		b.benchy = true
		if len(r.Providers) > 0 && b.baseline == "" {
			b.baseline = r.Providers[0].Name
		}
		if len(r.Providers) > 1 && b.cand == "" {
			b.cand = r.Providers[1].Name
		}
	}
	if r.Kind == "proxy" && !copied {
		if b.coverage == nil {
			b.coverage = &Coverage{Skipped: map[string]int64{}}
		}
		c := r.Coverage
		b.coverage.Seen += c.Seen
		b.coverage.Classify += c.Classify
		b.coverage.Mirrored += c.Mirrored
		for k, v := range c.Skipped {
			b.coverage.Skipped[k] += v
		}
	}
	if !copied {
		for _, e := range r.Events {
			b.timeline = append(b.timeline, TimelineEvent{Time: e.Time, Run: d.Path, Kind: e.Kind, Detail: e.Detail, Data: e.Data})
		}
		hs, err := d.Histograms()
		if err != nil {
			return err
		}
		for name, h := range hs {
			if strings.HasSuffix(name, ".service") {
				continue
			}
			pa := b.prov(name)
			if pa.hlog == nil {
				pa.hlog = newHist()
			}
			pa.hlog.Merge(h)
		}
	}
	b.open, b.queue, b.need, b.latest = map[string]*pending{}, nil, max(len(r.Providers), 1), time.Time{}
	prefix := fmt.Sprint(idx, "/")
	st, err := b.reader.Observations(d, func(o record.Observation) error {
		b.observe(prefix, &o)
		return nil
	})
	if err != nil {
		return err
	}
	b.dups += st.Duplicates
	b.skipped += st.Skipped
	if st.Duplicates > 0 {
		b.notes = append(b.notes, fmt.Sprintf("%s: %s a request_id already read in this run and counted once", d.Path,
			plural(st.Duplicates, "observation repeats", "observations repeat")))
	}
	b.problems(d.Path, "observation skipped", "observations skipped", st)
	for _, p := range b.queue {
		b.closePair(p)
	}
	b.open, b.queue = nil, nil
	return nil
}

// plural is "n one" or "n many".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprint(n, " ", many)
}

// problems notes what a lenient read went past in dir.
func (b *measurer) problems(dir, one, many string, st record.ReadStats) {
	if len(st.Problems) == 0 {
		return
	}
	n := int64(len(st.Missing)) + st.Skipped
	var lines []string
	for _, p := range st.Problems {
		lines = append(lines, p.String())
	}
	more := ""
	if k := n - int64(len(st.Problems)); k > 0 {
		more = fmt.Sprintf("; and %d more", k)
	}
	b.notes = append(b.notes, fmt.Sprintf("%s: %s (lenient): %s%s", dir, plural(n, one, many), strings.Join(lines, "; "), more))
}

func (b *measurer) observe(prefix string, o *record.Observation) {
	b.obs++
	p := b.prov(o.Provider)
	var fx *fixtures.Item
	if b.opt.Fixtures != nil {
		fx = b.opt.Fixtures.Ref(o.ImageSHA256)
	}
	a, counted := p.observe(b.e, o, fx, b.benchy)
	if !counted || o.PairID == "" {
		return
	}
	key := prefix + o.PairID
	pd := b.open[key]
	if pd == nil {
		pd = &pending{key: key, first: o.Time}
		b.open[key] = pd
		b.queue = append(b.queue, pd)
	}
	pd.answers = append(pd.answers, a)
	if len(pd.answers) >= b.need {
		b.closePair(pd)
	}
	if o.Time.After(b.latest) {
		b.latest = o.Time
	}
	b.evict()
}

// evict closes pairs that can no longer be completed and drops closed
// ones from the front of the queue.
func (b *measurer) evict() {
	cut := b.latest.Add(-pairHorizon)
	i := 0
	for ; i < len(b.queue); i++ {
		p := b.queue[i]
		if !p.done && !p.first.Before(cut) {
			break
		}
		b.closePair(p)
	}
	if i > 0 {
		clear(b.queue[:i])
		b.queue = b.queue[i:]
	}
}

// closePair scores the baseline's answer against each other answer of a
// pair; a pair counts in agreement only when both answered.
func (b *measurer) closePair(p *pending) {
	if p.done {
		return
	}
	p.done = true
	delete(b.open, p.key)
	var base *answer
	for i := range p.answers {
		if p.answers[i].prov.name == b.baseline {
			base = &p.answers[i]
			break
		}
	}
	if base == nil {
		return
	}
	for i := range p.answers {
		x := &p.answers[i]
		if x.prov.name == b.baseline {
			continue
		}
		ag := b.agree[x.prov.name]
		if ag == nil {
			ag = &agreeAcc{}
			b.agree[x.prov.name] = ag
		}
		if !base.ok || !x.ok {
			continue
		}
		ps := b.e.s.Agree(&base.a, &x.a)
		ag.add(base, x, &ps)
	}
	p.answers = nil
}

func (b *measurer) finish() *Measurement {
	m := &Measurement{Runs: b.runs, Baseline: b.baseline, Candidate: b.cand, Timeline: b.timeline, Settings: b.e.rc,
		TimeZone: b.e.loc.String(), Observations: b.obs, Duplicates: b.dups, Skipped: b.skipped, Missing: b.missing, Notes: b.notes,
		Agreement: []Agreement{}, Paired: []PairedAccuracy{}}
	if m.Timeline == nil {
		m.Timeline = []TimelineEvent{}
	}
	sort.SliceStable(m.Timeline, func(i, j int) bool { return m.Timeline[i].Time.Before(m.Timeline[j].Time) })
	if b.coverage != nil {
		b.coverage.Rate = NewRate(int(b.coverage.Mirrored), int(b.coverage.Classify))
		m.Coverage = b.coverage
	}
	names := slices.Clone(b.order)
	rank := func(n string) int {
		switch n {
		case b.baseline:
			return 0
		case b.cand:
			return 1
		}
		return 2
	}
	sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	for _, name := range names {
		p := b.provs[name]
		if p.calls == 0 && p.hlog == nil {
			continue
		}
		ps := p.stats(b.e)
		m.Providers = append(m.Providers, ps)
		if a := ps.Accuracy; a != nil && a.Calls > a.Images {
			m.Notes = append(m.Notes, fmt.Sprintf("%s answered %d labelled images in %d calls: accuracy counts each image once, by its first answer (repeats count in self-agreement)", name, a.Images, a.Calls))
		}
		if ne := ps.Accuracy.notExpressibleNote(name); ne != "" {
			m.Notes = append(m.Notes, ne)
		}
		if p.collisions > 0 {
			m.Notes = append(m.Notes, fmt.Sprintf("%s: %s shared the first 64 bits of another's SHA-256 and counted as its repeat", name, plural(int64(p.collisions), "labelled image", "labelled images")))
		}
	}
	if b.opt.Fixtures == nil {
		m.Notes = append(m.Notes, "no fixture set: accuracy is not measured (set fixtures: in the config)")
	}
	for _, name := range names {
		ag := b.agree[name]
		if ag == nil {
			continue
		}
		m.Agreement = append(m.Agreement, ag.result(b.baseline, name, b.e.s.TopK()))
		if pa, ok := ag.pairedResult(b.provs[b.baseline], b.provs[name]); ok {
			m.Paired = append(m.Paired, pa)
		}
	}
	return m
}
