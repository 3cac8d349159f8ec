package compare

import (
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// Tally accumulates one provider's observations into the figures a report
// prints for it: calls, errors by typed code, latency, accuracy against
// fixture labels, self-agreement over repeated images, and cost. It is
// what bench's and classify's tables are made of, and it is the same code
// Measure runs for each provider of a report, so the same observations
// give the same figures in all three. Safe for concurrent use.
type Tally struct {
	mu sync.Mutex
	e  *env
	p  *provAcc
}

// NewTally returns an empty tally for provider name, scored by s, priced
// with cfg (nil: no cost) at cfg's report.daily_volume, hours in cfg's
// report.time_zone.
func NewTally(name string, s *Scorer, cfg *config.Config) *Tally {
	e := newEnv(s, cfg)
	if e.s == nil {
		e.s = NewScorer(nil, e.rc)
	}
	return &Tally{e: e, p: newProvAcc(name, cfg)}
}

// Add counts one observation of this tally's provider. label is the
// fixture the image is (nil: unlabelled, not scored). Repeats of an image
// (by image_sha256) count towards self-agreement.
func (t *Tally) Add(o *record.Observation, label *fixtures.Item) {
	t.mu.Lock()
	t.p.observe(t.e, o, label, true)
	t.mu.Unlock()
}

// Top1 is the top-1 accuracy so far over answered, labelled images.
func (t *Tally) Top1() Rate {
	t.mu.Lock()
	defer t.mu.Unlock()
	return NewRate(t.p.acc.correct, t.p.acc.scored)
}

// Stats returns the figures so far (latency from the observations).
func (t *Tally) Stats() *ProviderStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.p.stats(t.e)
	// Copies of what the tally goes on changing.
	ps.hist = hdrhistogram.Import(ps.hist.Export())
	if a := ps.Accuracy; a != nil {
		conf := make(map[string]map[string]int, len(a.Confusion))
		for k, row := range a.Confusion {
			conf[k] = maps.Clone(row)
		}
		a.Confusion = conf
	}
	return ps
}

// env is what accumulating needs besides the observations.
type env struct {
	s   *Scorer
	cfg *config.Config
	rc  config.Report
	loc *time.Location
	// str interns strings read from observations (categories, codes):
	// open pairs and confusion matrices hold few distinct values many times.
	str func(string) string
}

func newEnv(s *Scorer, cfg *config.Config) *env {
	e := &env{s: s, cfg: cfg, loc: time.UTC, str: func(x string) string { return x }}
	if cfg != nil {
		e.rc = cfg.Report
		if l := cfg.Report.TimeZone.Loc(); l != nil {
			e.loc = l
		}
	} else {
		e.rc = config.Report{DailyVolume: config.DefaultMonthlyVolume / 30, ColorDeltaE: DefaultColorDeltaE, TopK: DefaultTopK}
	}
	return e
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(record.MinLatencyNS, record.MaxLatencyNS, record.SigFigs)
}

// provAcc accumulates one provider; not locked (Tally locks it, Measure
// runs on one goroutine).
type provAcc struct {
	name, role, format, model string
	calls, ok, cancelled      int
	codes                     map[string]int
	hist                      *hdrhistogram.Histogram
	hlog                      *hdrhistogram.Histogram
	hours                     [24]*hdrhistogram.Histogram

	acc  accuracyAcc
	cost costAcc

	// images holds each labelled image's first answer (CountFirstAnswer),
	// by imageKey; labelled counts answered calls of labelled images.
	images   map[uint64]imageAnswer
	labelled int
	// collisions counts labelled images whose key another image already
	// held (two SHA-256s sharing their first 64 bits): counted as its repeat.
	collisions int
	// ne caches what the provider's format cannot express.
	ne       map[neKey]bool
	neFormat string

	first     map[uint64]string // image key → top category of its first answer
	selfN     int
	selfAgree int
}

// imageAnswer is one labelled image's first answer as accuracy counts it:
// 40 bytes, about 100 with the map's own overhead (see Measure).
type imageAnswer struct {
	at   int64          // observation time, Unix ns (math.MaxInt64 when unknown)
	fx   *fixtures.Item // the label
	pred string         // top category, "" for none
	bits uint16         // imageCorrect, imageNotExpressible, and per kind i: labelled, right, not expressible
}

const (
	imageCorrect = 1 << iota
	imageNotExpressible
	imageKindBits // labelled<<i, right<<(i+NumKinds), not expressible<<(i+2·NumKinds), from here
)

func newProvAcc(name string, cfg *config.Config) *provAcc {
	p := &provAcc{name: name, codes: map[string]int{}, hist: newHist(), first: map[uint64]string{}, images: map[uint64]imageAnswer{},
		acc: newAccuracyAcc()}
	if cfg != nil {
		if cp := cfg.Providers[name]; cp != nil {
			p.format, p.model = string(cp.Format), cp.Model
		}
	}
	return p
}

// answer is one observation as pairing reads it.
type answer struct {
	prov    *provAcc
	ok      bool
	a       Answer
	fixture *fixtures.Item
}

// observe counts o. fx is its label (nil: unlabelled); self turns on
// self-agreement over repeated images. counted is false for a call
// cutover cancelled itself, which takes no part in pairs.
func (p *provAcc) observe(e *env, o *record.Observation, fx *fixtures.Item, self bool) (ans answer, counted bool) {
	if o.Code == record.CodeCancelled {
		p.cancelled++ // our own hedge cancelled it: not the provider's doing
		return answer{}, false
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
		p.codes[e.str(code)]++
	}
	if o.LatencyNS > 0 {
		v := min(max(o.LatencyNS, record.MinLatencyNS), record.MaxLatencyNS)
		p.hist.RecordValue(v)
		h := o.Time.In(e.loc).Hour()
		if p.hours[h] == nil {
			p.hours[h] = newHist()
		}
		p.hours[h].RecordValue(v)
	}
	p.cost.add(e.cfg, o.Cost, o.Currency, ok)
	ans = answer{prov: p, ok: ok, fixture: fx}
	if ok && o.Tags != nil {
		ans.a = e.s.Answer(o.Tags)
		ans.a.Top = e.str(ans.a.Top)
		for i := range ans.a.TopK {
			ans.a.TopK[i] = e.str(ans.a.TopK[i])
		}
		for i := range ans.a.Attributes {
			ans.a.Attributes[i] = e.str(ans.a.Attributes[i])
		}
	}
	if ok && fx != nil {
		sc := e.s.Score(&ans.a, fx)
		p.score(e, o, fx, &sc)
	}
	if self && ok && o.ImageSHA256 != "" && o.Tags != nil {
		k := imageKey(o.ImageSHA256)
		if first, seen := p.first[k]; seen {
			p.selfN++
			if first == ans.a.Top {
				p.selfAgree++
			}
		} else {
			p.first[k] = ans.a.Top
		}
	}
	return ans, true
}

// score counts sc, the judgement of one answered call of labelled image
// fx, under CountFirstAnswer: the image's first answer is kept and
// counted; an earlier answer read later takes its place. A repeat costs a
// hash and a map lookup.
func (p *provAcc) score(e *env, o *record.Observation, fx *fixtures.Item, sc *Score) {
	p.labelled++
	id := fx.SHA256
	if id == "" {
		id = o.ImageSHA256
	}
	if id == "" {
		id = "fixture\x00" + fx.ID
	}
	key := imageKey(id)
	at := unixNano(o.Time)
	old, seen := p.images[key]
	if seen {
		if old.fx.SHA256 != fx.SHA256 || old.fx.ID != fx.ID {
			p.collisions++
		}
		if at >= old.at {
			return // a repeat: the first answer stays
		}
	}
	ia := imageAnswer{at: at, fx: fx, pred: e.str(sc.Predicted)}
	if sc.Predicted == "(none)" {
		ia.pred = ""
	}
	if sc.Correct {
		ia.bits |= imageCorrect
	}
	if !p.expressible(e, neKey{value: fx.Category}) {
		ia.bits |= imageNotExpressible
	}
	for i, k := range kinds {
		if sc.Labelled[i] {
			ia.bits |= imageKindBits << i
			if sc.Right[i] {
				ia.bits |= imageKindBits << (i + NumKinds)
			}
			if !p.expressible(e, neKey{kind: k, value: fx.Attributes[k]}) {
				ia.bits |= imageKindBits << (i + 2*NumKinds)
			}
		}
	}
	if seen {
		p.acc.add(e, &old, -1)
	}
	p.images[key] = ia
	p.acc.add(e, &ia, 1)
}

// neKey names a category (kind "") or an attribute value.
type neKey struct {
	kind  vision.AttributeKind
	value string
}

// expressible reports whether the provider's format can name k's category
// or attribute value, cached per provider. Without a taxonomy or a format
// everything is expressible.
func (p *provAcc) expressible(e *env, k neKey) bool {
	tx := e.s.tx
	if tx == nil || p.format == "" {
		return true
	}
	if p.neFormat != p.format {
		p.ne, p.neFormat = map[neKey]bool{}, p.format
	}
	ne, ok := p.ne[k]
	if !ok {
		if k.kind == "" {
			ne = !tx.Expressible(p.format, k.value)
		} else {
			ne = !tx.AttributeExpressible(p.format, k.kind, k.value)
		}
		p.ne[k] = ne
	}
	return !ne
}

// imageKey is the 64-bit key of an image: a hash of its SHA-256 (or of
// any other identifier). Two of a million images share a key with a
// probability of about 3·10⁻⁸; a shared key is detected and noted.
func imageKey(id string) uint64 { return maphash.String(keySeed, id) }

var keySeed = maphash.MakeSeed()

// unixNano is t in Unix nanoseconds, math.MaxInt64 for a time that has
// none (zero, or outside int64 nanoseconds): such an answer is first only
// when no answer with a time came before it.
func unixNano(t time.Time) int64 {
	if y := t.Year(); t.IsZero() || y < 1700 || y > 2200 {
		return math.MaxInt64
	}
	return t.UnixNano()
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// stats computes the provider's figures.
func (p *provAcc) stats(e *env) *ProviderStats {
	pr := &ProviderStats{Name: p.name, Role: p.role, Format: p.format, Model: p.model, Calls: p.calls, OK: p.ok, Cancelled: p.cancelled,
		ErrorRate: NewRate(p.calls-p.ok, p.calls), Errors: []CodeCount{}, ByHour: []HourStats{}}
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
		pr.Errors = append(pr.Errors, CodeCount{Code: c, Rate: NewRate(p.codes[c], p.calls)})
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
	if len(p.images) > 0 {
		pr.Accuracy = p.acc.result()
		pr.Accuracy.Images, pr.Accuracy.Calls = len(p.images), p.labelled
		if ne := pr.Accuracy.NotExpressible; ne != nil {
			ne.Format = p.format
		}
	}
	if p.selfN > 0 {
		s := NewRate(p.selfAgree, p.selfN)
		pr.SelfAgreement = &s
	}
	pr.Cost = projectCost(e.cfg, p.name, e.rc.MonthlyVolume(), &p.cost, p.acc.correct, p.acc.scored, p.ok, p.calls)
	return pr
}

// latency summarises h: percentiles, the order-statistic 95 % interval of
// p99, and the percentile spectrum.
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

// accuracyAcc accumulates the labelled images' first answers; an image
// whose first answer changes is taken out (d = −1) and put back.
type accuracyAcc struct {
	scored, correct int
	confusion       map[string]map[string]int
	groupN, groupW  map[string]int
	attrN, attrOK   [NumKinds]int
	// Not expressible by the provider's format: images by category, and
	// by kind and value.
	neImages int
	neCat    map[string]int
	neAttr   map[[2]string]int
}

func newAccuracyAcc() accuracyAcc {
	return accuracyAcc{confusion: map[string]map[string]int{}, groupN: map[string]int{}, groupW: map[string]int{},
		neCat: map[string]int{}, neAttr: map[[2]string]int{}}
}

// bump adds d to m[k], deleting the key when it reaches 0, so that an
// image taken out leaves no trace.
func bump[K comparable](m map[K]int, k K, d int) {
	if v := m[k] + d; v != 0 {
		m[k] = v
	} else {
		delete(m, k)
	}
}

func (a *accuracyAcc) add(e *env, ia *imageAnswer, d int) {
	fx := ia.fx
	truth := e.str(fx.Category)
	if ia.bits&imageNotExpressible != 0 {
		a.neImages += d
		bump(a.neCat, truth, d)
	} else {
		correct := ia.bits&imageCorrect != 0
		a.scored += d
		if correct {
			a.correct += d
		}
		pred := ia.pred
		if pred == "" {
			pred = "(none)"
		}
		row := a.confusion[truth]
		if row == nil {
			row = map[string]int{}
			a.confusion[truth] = row
		}
		bump(row, pred, d)
		if len(row) == 0 {
			delete(a.confusion, truth)
		}
		if g := e.s.group(fx); g != "" {
			g = e.str(g)
			bump(a.groupN, g, d)
			if !correct {
				bump(a.groupW, g, d)
			}
		}
	}
	for i, k := range kinds {
		if ia.bits&(imageKindBits<<i) == 0 {
			continue
		}
		if ia.bits&(imageKindBits<<(i+2*NumKinds)) != 0 {
			bump(a.neAttr, [2]string{string(k), e.str(fx.Attributes[k])}, d)
			continue
		}
		a.attrN[i] += d
		if ia.bits&(imageKindBits<<(i+NumKinds)) != 0 {
			a.attrOK[i] += d
		}
	}
}

func (a *accuracyAcc) result() *Accuracy {
	out := &Accuracy{Counting: CountFirstAnswer, Top1: NewRate(a.correct, a.scored), Confusion: a.confusion, Misclassification: []GroupRate{}, Attributes: []KindRate{}}
	groups := make([]string, 0, len(a.groupN))
	for g := range a.groupN {
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
		out.Misclassification = append(out.Misclassification, GroupRate{Group: g, Rate: NewRate(a.groupW[g], a.groupN[g])})
	}
	for i, k := range kinds {
		if n := a.attrN[i]; n > 0 {
			out.Attributes = append(out.Attributes, KindRate{Kind: string(k), Rate: NewRate(a.attrOK[i], n)})
		}
	}
	out.PerCategory, out.Micro, out.Macro, out.Weighted = classMetrics(a.confusion)
	if a.neImages > 0 || len(a.neAttr) > 0 {
		ne := &NotExpressible{Images: a.neImages, Categories: []CategoryCount{}}
		for c, n := range a.neCat {
			ne.Categories = append(ne.Categories, CategoryCount{Category: c, Images: n})
		}
		sort.Slice(ne.Categories, func(i, j int) bool {
			x, y := ne.Categories[i], ne.Categories[j]
			return x.Images > y.Images || (x.Images == y.Images && x.Category < y.Category)
		})
		for kv, n := range a.neAttr {
			ne.Attributes = append(ne.Attributes, AttributeCount{Kind: kv[0], Value: kv[1], Images: n})
		}
		sort.Slice(ne.Attributes, func(i, j int) bool {
			x, y := ne.Attributes[i], ne.Attributes[j]
			if x.Images != y.Images {
				return x.Images > y.Images
			}
			return x.Kind+"\x00"+x.Value < y.Kind+"\x00"+y.Value
		})
		out.NotExpressible = ne
	}
	return out
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
