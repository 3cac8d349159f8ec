package reports

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/compare/stats"
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
	// Now stamps the report. Default time.Now().
	Now time.Time
}

// kinds are the attribute kinds, in report order.
var kinds = []vision.AttributeKind{"color", "pattern", "material", "style"}

// pairHorizon is how long after its first observation a pair can still be
// completed; observations are written in completion order, so a pair is
// closed once the stream has moved this far past it (the longest provider
// timeout config allows is 10 minutes).
const pairHorizon = 11 * time.Minute

// Build reads the run directories and computes the report. Observation
// files are streamed; memory is bounded by the providers' histograms and
// the pairs still open within pairHorizon.
func Build(dirs []*record.Dir, opt Options) (*Report, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no run directories")
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	b := newBuilder(opt)
	for i, d := range dirs {
		if err := b.addRun(i, d); err != nil {
			return nil, err
		}
	}
	return b.finish()
}

type builder struct {
	opt      Options
	rc       config.Report
	gates    config.Gates
	loc      *time.Location
	provs    map[string]*provAcc
	order    []string
	runs     []RunInfo
	coverage *Coverage
	timeline []TimelineEvent
	baseline string
	cand     string
	obs      int64
	notes    []string

	// pairs open in the current run, oldest first.
	open    map[string]*pending
	queue   []*pending
	need    int
	latest  time.Time
	agree   map[string]*agreeAcc // by provider B (A is the baseline)
	colorDE map[[2]string]float64
	intern  map[string]string
	benchy  bool
}

type provAcc struct {
	name, role, format, model string
	calls, ok, cancelled      int
	codes                     map[string]int
	hist                      *hdrhistogram.Histogram
	hlog                      *hdrhistogram.Histogram
	hours                     [24]*hdrhistogram.Histogram

	scored, correct int
	confusion       map[string]map[string]int
	groupN, groupW  map[string]int
	attrN, attrOK   map[vision.AttributeKind]int

	costN              int
	costSum, costSumSq float64
	spentUSD           float64
	unpriced           int

	first     map[string]string // image sha → top category of its first repeat
	selfN     int
	selfAgree int
}

type answer struct {
	prov    *provAcc
	ok      bool
	top     string
	conf    float64
	cats    []string
	attrs   [4]string
	fixture *fixtures.Item
	correct bool
}

type pending struct {
	key     string
	first   time.Time
	answers []answer
	done    bool
}

type agreeAcc struct {
	pairs, top1      int
	jacN             int
	jacSum, jacSumSq float64
	attrN, attrOK    [4]int
	confA, confB     []float32
	agreeBits        []bool
	paired           stats.Paired
}

func newBuilder(opt Options) *builder {
	b := &builder{opt: opt, provs: map[string]*provAcc{}, agree: map[string]*agreeAcc{},
		colorDE: map[[2]string]float64{}, intern: map[string]string{}, loc: time.UTC}
	if opt.Config != nil {
		b.rc, b.gates = opt.Config.Report, opt.Config.Gates
		if opt.Config.Report.TimeZone.Loc() != nil {
			b.loc = opt.Config.Report.TimeZone.Loc()
		}
	} else {
		b.rc = config.Report{DailyVolume: config.DefaultMonthlyVolume / 30, ColorDeltaE: 10, TopK: 3}
		b.gates = config.Gates{MinSamples: 100}
	}
	b.baseline, b.cand = b.rc.Baseline, b.rc.Candidate
	if opt.Baseline != "" {
		b.baseline = opt.Baseline
	}
	if opt.Candidate != "" {
		b.cand = opt.Candidate
	}
	return b
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(record.MinLatencyNS, record.MaxLatencyNS, record.SigFigs)
}

func (b *builder) prov(name string) *provAcc {
	p := b.provs[name]
	if p == nil {
		p = &provAcc{name: name, codes: map[string]int{}, hist: newHist(), confusion: map[string]map[string]int{},
			groupN: map[string]int{}, groupW: map[string]int{}, attrN: map[vision.AttributeKind]int{},
			attrOK: map[vision.AttributeKind]int{}, first: map[string]string{}}
		if b.opt.Config != nil {
			if cp := b.opt.Config.Providers[name]; cp != nil {
				p.format, p.model = string(cp.Format), cp.Model
			}
		}
		b.provs[name] = p
		b.order = append(b.order, name)
	}
	return p
}

func (b *builder) addRun(idx int, d *record.Dir) error {
	r := d.Run
	b.runs = append(b.runs, RunInfo{Path: d.Path, Kind: r.Kind, Mode: r.Mode, ConfigDigest: r.ConfigDigest,
		Started: r.Started, Ended: r.Ended, Dropped: r.Dropped})
	if r.Dropped > 0 {
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
	if r.Kind == "proxy" {
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
	b.open, b.queue, b.need, b.latest = map[string]*pending{}, nil, max(len(r.Providers), 1), time.Time{}
	prefix := fmt.Sprint(idx, "/")
	err = d.Observations(func(o record.Observation) error {
		b.observe(prefix, &o)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range b.queue {
		b.closePair(p)
	}
	b.open, b.queue = nil, nil
	return nil
}

func (b *builder) str(s string) string {
	if v, ok := b.intern[s]; ok {
		return v
	}
	b.intern[s] = s
	return s
}

func (b *builder) observe(prefix string, o *record.Observation) {
	b.obs++
	p := b.prov(o.Provider)
	if o.Code == record.CodeCancelled {
		p.cancelled++ // our own hedge cancelled it: not the provider's doing
		return
	}
	p.calls++
	ok := o.Code == "" && o.Status < 400
	if ok {
		p.ok++
	} else {
		code := o.Code
		if code == "" {
			code = fmt.Sprintf("http_%d", o.Status)
		}
		p.codes[b.str(code)]++
	}
	if o.LatencyNS > 0 {
		v := min(max(o.LatencyNS, record.MinLatencyNS), record.MaxLatencyNS)
		p.hist.RecordValue(v)
		h := o.Time.In(b.loc).Hour()
		if p.hours[h] == nil {
			p.hours[h] = newHist()
		}
		p.hours[h].RecordValue(v)
	}
	if o.Cost > 0 || (ok && o.Currency != "") {
		usd, known := o.Cost, true
		if b.opt.Config != nil {
			usd, known = b.opt.Config.ToUSD(o.Cost, o.Currency)
		} else if o.Currency != "" && o.Currency != "USD" {
			known = false
		}
		if known {
			p.spentUSD += usd
			p.costN++
			p.costSum += usd
			p.costSumSq += usd * usd
		} else {
			p.unpriced++
		}
	}
	a := answer{prov: p, ok: ok}
	if ok && o.Tags != nil {
		a.top = b.str(o.Tags.Top())
		if len(o.Tags.Categories) > 0 {
			a.conf = o.Tags.Categories[0].Confidence
		}
		k := min(b.rc.TopK, len(o.Tags.Categories))
		a.cats = make([]string, k)
		for i := range k {
			a.cats[i] = b.str(o.Tags.Categories[i].Value)
		}
		for i, kd := range kinds {
			a.attrs[i] = b.str(o.Tags.TopAttribute(kd))
		}
	}
	if b.opt.Fixtures != nil {
		a.fixture = b.opt.Fixtures.Ref(o.ImageSHA256)
	}
	if ok && a.fixture != nil {
		b.score(p, &a)
	}
	if ok && b.benchy && o.ImageSHA256 != "" && o.Tags != nil {
		if first, seen := p.first[o.ImageSHA256]; seen {
			p.selfN++
			if first == a.top {
				p.selfAgree++
			}
		} else {
			p.first[o.ImageSHA256] = a.top
		}
	}
	if o.PairID == "" {
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
func (b *builder) evict() {
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

func (b *builder) score(p *provAcc, a *answer) {
	fx := a.fixture
	p.scored++
	pred := a.top
	if pred == "" {
		pred = "(none)"
	}
	a.correct = a.top == fx.Category
	if a.correct {
		p.correct++
	}
	row := p.confusion[fx.Category]
	if row == nil {
		row = map[string]int{}
		p.confusion[fx.Category] = row
	}
	row[pred]++
	g := fx.Group
	if g == "" && b.opt.Taxonomy != nil {
		g = b.opt.Taxonomy.Group(fx.Category)
	}
	if g != "" {
		p.groupN[g]++
		if !a.correct {
			p.groupW[g]++
		}
	}
	for i, k := range kinds {
		want := fx.Attributes[k]
		if want == "" {
			continue
		}
		p.attrN[k]++
		if b.sameAttr(i, a.attrs[i], want) {
			p.attrOK[k]++
		}
	}
}

// sameAttr compares attribute values of kind index i: colours within the
// configured CIEDE2000 distance, the rest by canonical value.
func (b *builder) sameAttr(i int, x, y string) bool {
	if x == "" || y == "" {
		return false
	}
	if x == y {
		return true
	}
	if kinds[i] != "color" || b.opt.Taxonomy == nil {
		return false
	}
	k := [2]string{x, y}
	if x > y {
		k = [2]string{y, x}
	}
	d, ok := b.colorDE[k]
	if !ok {
		d = math.Inf(1)
		cx, okx := b.opt.Taxonomy.ColorRGB(x)
		cy, oky := b.opt.Taxonomy.ColorRGB(y)
		if okx && oky {
			d = vision.ColorDistance(cx, cy)
		}
		b.colorDE[k] = d
	}
	return d <= b.rc.ColorDeltaE
}

func (b *builder) closePair(p *pending) {
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
		ag.pairs++
		same := base.top != "" && base.top == x.top
		if same {
			ag.top1++
		}
		j := jaccard(base.cats, x.cats)
		ag.jacN++
		ag.jacSum += j
		ag.jacSumSq += j * j
		for k := range kinds {
			if base.attrs[k] != "" && x.attrs[k] != "" {
				ag.attrN[k]++
				if b.sameAttr(k, base.attrs[k], x.attrs[k]) {
					ag.attrOK[k]++
				}
			}
		}
		ag.confA = append(ag.confA, float32(base.conf))
		ag.confB = append(ag.confB, float32(x.conf))
		ag.agreeBits = append(ag.agreeBits, same)
		if base.fixture != nil && x.fixture != nil {
			switch {
			case base.correct && x.correct:
				ag.paired.Both++
			case base.correct:
				ag.paired.OnlyA++
			case x.correct:
				ag.paired.OnlyB++
			default:
				ag.paired.Neither++
			}
		}
	}
	p.answers = nil
}

func jaccard(a, b []string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	inter := 0
	for _, x := range a {
		if slices.Contains(b, x) {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	return float64(inter) / float64(union)
}

func rate(k, n int) Rate {
	lo, hi := stats.Wilson(k, n, stats.Z95)
	v := 0.0
	if n > 0 {
		v = float64(k) / float64(n)
	}
	return Rate{K: k, N: n, Value: v, Lo: lo, Hi: hi}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func (b *builder) finish() (*Report, error) {
	r := &Report{FormatVersion: FormatVersion, Generated: b.opt.Now.UTC(), Runs: b.runs, Baseline: b.baseline,
		Candidate: b.cand, Timeline: b.timeline, TimeZone: b.loc.String(), Observations: b.obs, Notes: b.notes,
		Settings: map[string]float64{"daily_volume": float64(b.rc.DailyVolume), "color_delta_e": b.rc.ColorDeltaE,
			"top_k": float64(b.rc.TopK), "min_samples": float64(b.gates.MinSamples)}}
	if r.Agreement == nil {
		r.Agreement = []Agreement{}
	}
	r.Paired = []PairedAccuracy{}
	if r.Timeline == nil {
		r.Timeline = []TimelineEvent{}
	}
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].Time.Before(r.Timeline[j].Time) })
	if b.coverage != nil {
		b.coverage.Rate = rate(int(b.coverage.Mirrored), int(b.coverage.Classify))
		r.Coverage = b.coverage
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
		r.Providers = append(r.Providers, b.providerReport(p))
	}
	if b.opt.Fixtures == nil {
		r.Notes = append(r.Notes, "no fixture set: accuracy is not measured (set fixtures: in the config)")
	}
	for _, name := range names {
		ag := b.agree[name]
		if ag == nil {
			continue
		}
		r.Agreement = append(r.Agreement, b.agreement(name, ag))
		if n := ag.paired.N(); n > 0 {
			t := ag.paired
			d, lo, hi := t.DiffCI(stats.Z95)
			p, mid := stats.McNemar(t.OnlyA, t.OnlyB)
			r.Paired = append(r.Paired, PairedAccuracy{A: b.baseline, B: name, N: n, Both: t.Both, OnlyA: t.OnlyA,
				OnlyB: t.OnlyB, Neither: t.Neither, AccA: float64(t.Both+t.OnlyA) / float64(n),
				AccB: float64(t.Both+t.OnlyB) / float64(n), Diff: d, DiffLo: lo, DiffHi: hi, McNemarP: p, McNemarMidP: mid})
		}
	}
	evaluate(r, b.gates, b.opt.Config)
	return r, nil
}

func (b *builder) providerReport(p *provAcc) *ProviderReport {
	pr := &ProviderReport{Name: p.name, Role: p.role, Format: p.format, Model: p.model, Calls: p.calls, OK: p.ok, Cancelled: p.cancelled,
		ErrorRate: rate(p.calls-p.ok, p.calls), Errors: []CodeCount{}, ByHour: []HourStats{}}
	codes := make([]string, 0, len(p.codes))
	for c := range p.codes {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if p.codes[codes[i]] != p.codes[codes[j]] {
			return p.codes[codes[i]] > p.codes[codes[j]]
		}
		return codes[i] < codes[j]
	})
	for _, c := range codes {
		pr.Errors = append(pr.Errors, CodeCount{Code: c, Rate: rate(p.codes[c], p.calls)})
	}
	h, src := p.hist, "observations"
	if p.hlog != nil && p.hlog.TotalCount() >= h.TotalCount() {
		h, src = p.hlog, "hlog"
	}
	pr.Latency = latency(h, src)
	pr.hist = h
	for hr, hh := range p.hours {
		if hh == nil {
			continue
		}
		pr.ByHour = append(pr.ByHour, HourStats{Hour: hr, Count: hh.TotalCount(), P50: ms(hh.ValueAtQuantile(50)), P99: ms(hh.ValueAtQuantile(99))})
	}
	if p.scored > 0 {
		pr.Accuracy = accuracy(p)
	}
	if p.selfN > 0 {
		s := rate(p.selfAgree, p.selfN)
		pr.SelfAgreement = &s
	}
	pr.Cost = b.cost(p, pr)
	return pr
}

func latency(h *hdrhistogram.Histogram, src string) Latency {
	l := Latency{Count: h.TotalCount(), Source: src}
	if l.Count == 0 {
		return l
	}
	l.Mean = h.Mean() / 1e6
	l.P50, l.P90, l.P99 = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99))
	l.P999, l.Max = ms(h.ValueAtQuantile(99.9)), ms(h.Max())
	lo, hi, ok := stats.QuantileRanks(int(l.Count), 0.99, stats.Z95)
	l.P99Bounded = ok
	atRank := func(r int) float64 { return ms(h.ValueAtQuantile(100 * float64(r) / float64(l.Count))) }
	l.P99Lo, l.P99Hi = atRank(lo), atRank(hi)
	if !ok {
		l.P99Hi = l.Max
	}
	// The spectrum at HdrHistogram's plot's x positions: 1/(1−p) from 1
	// to the sample count, 20 points a decade.
	top := math.Min(math.Log10(float64(l.Count)), 6)
	for x := 0.0; x <= top+1e-9; x += 0.05 {
		pct := 100 * (1 - math.Pow(10, -x))
		l.Spectrum = append(l.Spectrum, SpectrumPoint{Percentile: pct, Ms: ms(h.ValueAtQuantile(pct))})
	}
	l.Spectrum = append(l.Spectrum, SpectrumPoint{Percentile: 100, Ms: l.Max})
	return l
}

func accuracy(p *provAcc) *Accuracy {
	a := &Accuracy{Top1: rate(p.correct, p.scored), Confusion: p.confusion, Misclassification: []GroupRate{}, Attributes: []KindRate{}}
	groups := make([]string, 0, len(p.groupN))
	for g := range p.groupN {
		groups = append(groups, g)
	}
	// Fashion first: it is the number the migration turns on.
	sort.Slice(groups, func(i, j int) bool {
		if (groups[i] == "fashion") != (groups[j] == "fashion") {
			return groups[i] == "fashion"
		}
		return groups[i] < groups[j]
	})
	for _, g := range groups {
		a.Misclassification = append(a.Misclassification, GroupRate{Group: g, Rate: rate(p.groupW[g], p.groupN[g])})
	}
	for _, k := range kinds {
		if n := p.attrN[k]; n > 0 {
			a.Attributes = append(a.Attributes, KindRate{Kind: string(k), Rate: rate(p.attrOK[k], n)})
		}
	}
	a.PerCategory, a.Micro, a.Macro, a.Weighted = classMetrics(p.confusion)
	return a
}

// classMetrics computes per-label precision, recall and F1 and their
// averages with scikit-learn's conventions: labels are every value seen as
// truth or prediction, a metric with a zero denominator is 0, micro pools
// the counts, macro is the unweighted mean, weighted weighs by support.
func classMetrics(conf map[string]map[string]int) ([]ClassMetrics, PRF, PRF, PRF) {
	support, predicted, tp := map[string]int{}, map[string]int{}, map[string]int{}
	labels := map[string]bool{}
	total, correct := 0, 0
	for t, row := range conf {
		labels[t] = true
		for pv, n := range row {
			labels[pv] = true
			support[t] += n
			predicted[pv] += n
			total += n
			if pv == t {
				tp[t] += n
				correct += n
			}
		}
	}
	names := make([]string, 0, len(labels))
	for l := range labels {
		names = append(names, l)
	}
	sort.Strings(names)
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	var out []ClassMetrics
	var macro, weighted PRF
	for _, l := range names {
		p := div(float64(tp[l]), float64(predicted[l]))
		r := div(float64(tp[l]), float64(support[l]))
		f := div(2*p*r, p+r)
		out = append(out, ClassMetrics{Category: l, Support: support[l], Predicted: predicted[l], Precision: p, Recall: r, F1: f})
		macro.Precision += p
		macro.Recall += r
		macro.F1 += f
		w := float64(support[l])
		weighted.Precision += w * p
		weighted.Recall += w * r
		weighted.F1 += w * f
	}
	n := float64(len(names))
	macro = PRF{div(macro.Precision, n), div(macro.Recall, n), div(macro.F1, n)}
	weighted = PRF{div(weighted.Precision, float64(total)), div(weighted.Recall, float64(total)), div(weighted.F1, float64(total))}
	mp := div(float64(correct), float64(total))
	micro := PRF{mp, mp, mp}
	return out, micro, macro, weighted
}

// matchedKeeps are the shares of answers each provider keeps in the
// matched-confidence agreement table.
var matchedKeeps = []float64{1, 0.9, 0.75, 0.5}

func (b *builder) agreement(name string, ag *agreeAcc) Agreement {
	out := Agreement{A: b.baseline, B: name, Pairs: ag.pairs, Top1: rate(ag.top1, ag.pairs), TopK: b.rc.TopK, Attributes: []KindRate{}, Matched: []MatchedAgreement{}}
	m, lo, hi := stats.MeanCI(ag.jacN, ag.jacSum, ag.jacSumSq, stats.Z95)
	out.TopKJaccard = Mean{N: ag.jacN, Value: m, Lo: math.Max(0, lo), Hi: math.Min(1, hi)}
	for i, k := range kinds {
		if ag.attrN[i] > 0 {
			out.Attributes = append(out.Attributes, KindRate{Kind: string(k), Rate: rate(ag.attrOK[i], ag.attrN[i])})
		}
	}
	if len(ag.confA) == 0 {
		return out
	}
	sa, sb := slices.Clone(ag.confA), slices.Clone(ag.confB)
	slices.Sort(sa)
	slices.Sort(sb)
	for _, keep := range matchedKeeps {
		idx := int(math.Floor((1 - keep) * float64(len(sa))))
		ta, tb := sa[min(idx, len(sa)-1)], sb[min(idx, len(sb)-1)]
		if keep == 1 {
			ta, tb = sa[0], sb[0]
		}
		k, n := 0, 0
		for i := range ag.confA {
			if ag.confA[i] >= ta && ag.confB[i] >= tb {
				n++
				if ag.agreeBits[i] {
					k++
				}
			}
		}
		out.Matched = append(out.Matched, MatchedAgreement{Keep: keep, ThresholdA: float64(ta), ThresholdB: float64(tb), Top1: rate(k, n)})
	}
	return out
}

func (b *builder) cost(p *provAcc, pr *ProviderReport) *Cost {
	cfg := b.opt.Config
	vol := b.rc.MonthlyVolume()
	var cp *config.Provider
	if cfg != nil {
		cp = cfg.Providers[p.name]
	}
	c := &Cost{MonthlyVolume: vol, SpentUSD: p.spentUSD}
	switch {
	case cp != nil && cp.Format != config.FormatOpenAI && len(cp.Pricing.Tiers) > 0:
		c.Basis, c.Currency = "tiers", cp.Pricing.Currency
		for _, t := range cp.Pricing.Tiers {
			c.Tiers = append(c.Tiers, Tier{UpTo: t.UpTo, Per1000: t.Per1000})
		}
		monthly := cp.Pricing.CostOf(vol)
		usd, ok := cfg.ToUSD(monthly, c.Currency)
		if !ok {
			return nil
		}
		c.Per1000 = monthly / float64(vol) * 1000
		c.Per1000USD = usd / float64(vol) * 1000
		c.MonthlyUSD, c.MonthlyLoUSD, c.MonthlyHiUSD = usd, usd, usd
	case p.costN > 0:
		c.Basis, c.Currency = "tokens", "USD"
		if cp != nil && cfg.Models[cp.Model] != nil {
			c.Currency = cfg.Models[cp.Model].Currency
		}
		mean, lo, hi := stats.MeanCI(p.costN, p.costSum, p.costSumSq, stats.Z95)
		c.Per1000USD = mean * 1000
		c.Per1000 = c.Per1000USD
		if c.Currency != "USD" && cfg != nil {
			if rate := cfg.FX[c.Currency]; rate > 0 {
				c.Per1000 = c.Per1000USD / rate
			}
		}
		f := float64(vol)
		c.MonthlyUSD, c.MonthlyLoUSD, c.MonthlyHiUSD = mean*f, math.Max(0, lo*f), hi*f
	default:
		return nil
	}
	if p.scored > 0 && p.correct > 0 && pr.Calls > 0 {
		// Failed calls earn no tag: scale accuracy among answers by the
		// answered share.
		right := float64(p.correct) / float64(p.scored) * float64(p.ok) / float64(p.calls)
		c.PerCorrectTagUSD = c.Per1000USD / 1000 / right
	}
	return c
}
