// Package sim serves faithful imitations of every supported vision API so
// that every cutover mode can be run and tested on one machine: the real
// wire format, with configurable latency (log-normal, with a peak window in
// a time zone), error rates per typed code, throttling, and accuracy derived
// from the labelled fixtures by image SHA-256.
//
// It is not a mock of cutover's own code: clients, the proxy and the bench
// talk to it over real HTTP exactly as they would talk to the vendor.
package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// Model is one simulated provider's behaviour: what it answers, how long it
// takes and how it fails. It is safe for concurrent use.
type Model struct {
	Name    string
	Format  string
	Profile config.Profile
	Tax     *vision.Taxonomy
	// Fixtures gives ground truth by SHA-256; nil means every image is unknown.
	Fixtures *fixtures.Set
	Seed     uint64
	// ColorDeltaE is the CIEDE2000 distance under which a report counts
	// two colours the same (report.color_delta_e; 0 means its default,
	// 10). A wrong colour is drawn farther than this from the label's, so
	// that attribute_errors.color is an error rate as a report measures it.
	ColorDeltaE float64

	offPeak, peak stats.LogNormal
	clockStart    time.Time
	realStart     time.Time
	limiter       *rate.Limiter
	errCum        []errShare
	counter       atomic.Uint64
	prompts       sync.Map // prompt prefixes seen, for cached-token accounting
	leaves        []string
	groupLeaves   map[string][]string
	// attrOK[kind][value]: the format can say the value (AttributeExpressible).
	attrOK map[vision.AttributeKind]map[string]bool
}

type errShare struct {
	code vision.Code
	cum  float64
}

// Outcome is what the model decided for one request.
type Outcome struct {
	Latency time.Duration
	// Err is set for failures; its code decides how the server fails
	// (network closes the connection, invalid_response sends garbage).
	Err    *vision.Error
	Result vision.Result
	// Fixture is the matched fixture's id, "" for an unknown image.
	Fixture string
	// Correct reports whether the top category matches the fixture label.
	Correct bool
	// AttributesRight holds, for each attribute kind of the label the
	// answer says a value of, whether that value is right as a report
	// judges it (a colour within ColorDeltaE); a kind the answer leaves
	// out (not asked for, or a value the format cannot say) is absent.
	AttributesRight map[vision.AttributeKind]bool
	// LLMFailure is the vision-LLM failure mode drawn for this answer
	// (openai format): llm_invalid_json, llm_schema_violation, llm_refusal,
	// llm_truncated, or "" for a well-formed answer.
	LLMFailure vision.Code
}

// NewModel prepares a model. now is the real clock (nil = time.Now).
func NewModel(name string, s *config.Simulator, tx *vision.Taxonomy, fx *fixtures.Set, seed uint64) (*Model, error) {
	m := &Model{Name: name, Format: string(s.Format), Profile: s.Profile, Tax: tx, Fixtures: fx, Seed: seed ^ hash64(name),
		realStart: time.Now(), groupLeaves: map[string][]string{}}
	var err error
	if m.offPeak, err = fit(s.Profile.Latency); err != nil {
		return nil, fmt.Errorf("simulate.%s latency: %w", name, err)
	}
	m.peak = m.offPeak
	if s.Profile.Peak != nil {
		if m.peak, err = fit(s.Profile.Peak.Latency); err != nil {
			return nil, fmt.Errorf("simulate.%s peak latency: %w", name, err)
		}
	}
	m.clockStart = m.realStart
	if s.Profile.ClockStart != nil {
		m.clockStart = s.Profile.ClockStart.Time
	}
	if s.Profile.ThrottleRPS > 0 {
		m.limiter = rate.NewLimiter(rate.Limit(s.Profile.ThrottleRPS), s.Profile.ThrottleBurst)
	}
	var cum float64
	for _, c := range vision.Codes {
		if r, ok := s.Profile.Errors[string(c)]; ok && r > 0 {
			cum += r.F()
			m.errCum = append(m.errCum, errShare{c, cum})
		}
	}
	// A provider answers in its format's vocabulary: wrong answers are
	// drawn among the categories the format can name.
	for _, l := range tx.Leaves() {
		if tx.Expressible(m.Format, l) {
			m.leaves = append(m.leaves, l)
			g := tx.Group(l)
			m.groupLeaves[g] = append(m.groupLeaves[g], l)
		}
	}
	m.attrOK = map[vision.AttributeKind]map[string]bool{}
	for _, k := range vision.AttributeKinds {
		m.attrOK[k] = map[string]bool{}
		for _, v := range tx.AttributeValues(k) {
			m.attrOK[k][v] = tx.AttributeExpressible(m.Format, k, v)
		}
	}
	return m, nil
}

func fit(l config.Latency) (stats.LogNormal, error) {
	if l.Mean > 0 {
		return stats.FitMeanP99(float64(l.Mean), float64(l.P99))
	}
	return stats.FitMedianP99(float64(l.Median), float64(l.P99))
}

// Now is the simulated wall clock: clock_start plus the real time elapsed.
func (m *Model) Now() time.Time { return m.clockStart.Add(time.Since(m.realStart)) }

// InPeak reports whether t falls in the profile's peak window.
func (m *Model) InPeak(t time.Time) bool {
	p := m.Profile.Peak
	if p == nil {
		return false
	}
	lt := t.In(p.Zone.Loc())
	min := lt.Hour()*60 + lt.Minute()
	s, e := p.Start.Minutes(), p.End.Minutes()
	if s < e {
		return min >= s && min < e
	}
	return min >= s || min < e // a window across midnight
}

// Latency draws one service time at simulated time t from rng.
func (m *Model) Latency(t time.Time, rng *rand.Rand) time.Duration {
	d := m.offPeak
	if m.InPeak(t) {
		d = m.peak
	}
	return time.Duration(d.Sample(rng.NormFloat64()))
}

// Decide draws the outcome of one request at the current simulated time.
func (m *Model) Decide(req vision.Request) Outcome {
	return m.DecideAt(req, m.Now())
}

// DecideAt draws the outcome of one request at simulated time t. Latency
// and failures are drawn per request; the answer to an image is fixed by
// (seed, provider, image SHA-256), so it is reproducible.
func (m *Model) DecideAt(req vision.Request, t time.Time) Outcome {
	n := m.counter.Add(1)
	rng := rand.New(rand.NewPCG(m.Seed, n))
	out := Outcome{Latency: m.Latency(t, rng)}
	if m.limiter != nil && !m.limiter.Allow() {
		out.Latency = time.Millisecond
		out.Err = &vision.Error{Code: vision.CodeThrottled, Message: "rate exceeded", RetryAfter: time.Second}
		return out
	}
	if u := rng.Float64(); len(m.errCum) > 0 && u < m.errCum[len(m.errCum)-1].cum {
		for _, e := range m.errCum {
			if u < e.cum {
				out.Err = vision.Errorf(e.code, "simulated %s", e.code)
				if e.code == vision.CodeThrottled {
					out.Err.RetryAfter = time.Second
				}
				return out
			}
		}
	}
	if l := m.Profile.LLM; m.Format == string(config.FormatOpenAI) {
		u := rng.Float64()
		for _, f := range []struct {
			code vision.Code
			rate config.Rate
		}{{vision.CodeLLMInvalidJSON, l.InvalidJSON}, {vision.CodeLLMSchemaViolation, l.SchemaViolation},
			{vision.CodeLLMRefusal, l.Refusal}, {vision.CodeLLMTruncated, l.Truncation}} {
			if u < f.rate.F() {
				out.LLMFailure = f.code
				break
			}
			u -= f.rate.F()
		}
	}
	sha := req.Image.SHA256
	if sha == "" {
		sum := sha256.Sum256([]byte(req.Image.URL))
		sha = fmt.Sprintf("%x", sum)
	}
	ans := rand.New(rand.NewPCG(m.Seed^0x5eed, hash64(sha)))
	if it, ok := m.Fixtures.BySHA(sha); ok {
		out.Fixture = it.ID
		out.Result, out.Correct, out.AttributesRight = m.answer(it, req, ans)
		// A category the format cannot name is answered under its
		// nearest named ancestor: never the label.
		out.Correct = out.Correct && m.Tax.Expressible(m.Format, it.Category)
	} else {
		out.Result = m.generic(ans)
	}
	out.Result.ModelVersion = m.Profile.ModelVersion
	out.Result = out.Result.Filter(req.MinConfidence, req.MaxLabels)
	return out
}

// calibrated draws a confidence c with mean 1−miss and a correctness that
// holds with probability c, so the share of wrong answers is exactly miss
// and confidences are calibrated (answers at 0.9 are right 90 % of the
// time). c is uniform on an interval centred on 1−miss that stays at or
// above floor, the request's minimum confidence (Rekognition applies 55
// when the client sends none): an answer below it would be filtered out of
// the response, and the provider's answer, right or wrong, would become a
// missing or an ancestor's answer on top of the configured error. A miss
// rate above 1 − floor cannot be calibrated above the floor; the interval
// is then the widest one, and answers below the floor are filtered.
func calibrated(rng *rand.Rand, miss, floor float64) (conf float64, correct bool) {
	mu := 1 - miss
	w := math.Min(mu, 1-mu)
	if floor < mu {
		w = math.Min(w, mu-floor)
	}
	conf = mu - w + 2*w*rng.Float64()
	correct = rng.Float64() < conf
	return math.Min(math.Max(conf, 0.01), 0.999), correct
}

func (m *Model) missRate(group string) float64 {
	mc := m.Profile.Accuracy.Misclassification
	if r, ok := mc[group]; ok {
		return r.F()
	}
	return mc["default"].F()
}

// confusion draws a plausible wrong category for truth: a sibling article
// type with probability sibling_share, otherwise another leaf of its group.
func (m *Model) confusion(rng *rand.Rand, truth string) string {
	share := 0.8
	if s := m.Profile.Accuracy.SiblingShare; s != nil {
		share = s.F()
	}
	if sib := m.siblings(truth); len(sib) > 0 && rng.Float64() < share {
		return sib[rng.IntN(len(sib))]
	}
	pool := m.groupLeaves[m.Tax.Group(truth)]
	if len(pool) < 2 {
		pool = m.leaves
	}
	for {
		if c := pool[rng.IntN(len(pool))]; c != truth {
			return c
		}
	}
}

// siblings are truth's siblings (Taxonomy.Siblings) the format can name.
func (m *Model) siblings(truth string) []string {
	var out []string
	for _, s := range m.Tax.Siblings(truth) {
		if m.Tax.Expressible(m.Format, s) {
			out = append(out, s)
		}
	}
	return out
}

// answer is the answer to fixture it. The profile's rates are the
// provider's own errors, reproduced as a client measures them with the
// format's real codec and a report's scorer: confidences stay above the
// request's minimum (see calibrated), wrong values are wrong by the
// report's measure (a colour farther than ColorDeltaE) and said in the
// format's vocabulary; a label the format cannot express (a category
// without a name of its own in it, an attribute value it cannot carry) is
// answered as the format would say it, and reports leave it out of the
// provider's accuracy (vision.Taxonomy.Expressible).
func (m *Model) answer(it fixtures.Item, req vision.Request, rng *rand.Rand) (vision.Result, bool, map[vision.AttributeKind]bool) {
	floor := req.MinConfidence
	conf, correct := calibrated(rng, m.missRate(it.Group), floor)
	top, second := it.Category, ""
	if !correct {
		top, second = m.confusion(rng, it.Category), it.Category
	} else if sib := m.siblings(it.Category); len(sib) > 0 {
		second = sib[rng.IntN(len(sib))]
	}
	var res vision.Result
	m.addCategory(&res, top, conf)
	if second != "" {
		m.addCategory(&res, second, conf*(0.3+0.5*rng.Float64()))
	}
	// Attributes: colour only when asked (Rekognition and GCV need
	// IMAGE_PROPERTIES) and as a colour word from the Chinese formats;
	// pattern, material and style come back as labels from label formats
	// and when asked from the classify format.
	var said map[vision.AttributeKind]bool
	labelFormat := m.Format != string(config.FormatHolySheep) && m.Format != string(config.FormatOpenAI)
	kinds := []vision.AttributeKind{vision.KindColor, vision.KindPattern, vision.KindMaterial, vision.KindStyle}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	for _, k := range kinds {
		v, ok := it.Attributes[k]
		wanted := req.WantsAttribute(k) || (labelFormat && (k != vision.KindColor || m.chinese())) ||
			m.Format == string(config.FormatAzure)
		if !ok || !wanted {
			continue
		}
		errRate := m.Profile.Accuracy.AttributeErrors[string(k)].F()
		c, right := calibrated(rng, errRate, floor)
		truth := v
		if !right {
			v = m.wrongAttribute(rng, k, v)
		}
		if !m.attrOK[k][v] {
			continue // the format cannot say it
		}
		if said == nil {
			said = map[vision.AttributeKind]bool{}
		}
		said[k] = v == truth
		if k == vision.KindColor {
			m.addColor(&res, v, c, rng)
			continue
		}
		res.Attributes = append(res.Attributes, vision.Attribute{Kind: k, Value: v, Confidence: c})
	}
	m.inVendorWords(&res)
	return res, correct, said
}

// wrongAttribute picks a plausible wrong value the format can say: for
// colours the nearest palette colour by CIEDE2000 (jittered) that a report
// counts as different (farther than ColorDeltaE), otherwise another
// vocabulary value.
func (m *Model) wrongAttribute(rng *rand.Rand, k vision.AttributeKind, v string) string {
	var vals []string
	for _, o := range m.Tax.AttributeValues(k) {
		if o != v && m.attrOK[k][o] {
			vals = append(vals, o)
		}
	}
	if len(vals) == 0 {
		return v
	}
	if k == vision.KindColor {
		tol := m.ColorDeltaE
		if tol == 0 {
			tol = defaultColorDeltaE
		}
		rgb, ok := m.Tax.ColorRGB(v)
		best, bestD := "", math.Inf(1)
		for _, o := range vals {
			orgb, ook := m.Tax.ColorRGB(o)
			if !ok || !ook {
				continue
			}
			d := vision.ColorDistance(rgb, orgb)
			if d <= tol {
				continue // a report would count it the same colour
			}
			if d *= 0.8 + 0.4*rng.Float64(); d < bestD {
				best, bestD = o, d
			}
		}
		if best != "" {
			return best
		}
	}
	return vals[rng.IntN(len(vals))]
}

// defaultColorDeltaE is report.color_delta_e's default.
const defaultColorDeltaE = 10

func (m *Model) addCategory(res *vision.Result, path string, conf float64) {
	m.Tax.AddCategory(res, m.Format, path, conf)
}

// addColor reports a colour: as a measured RGB (jittered around the palette
// value) for formats that measure colours, as a named attribute otherwise.
func (m *Model) addColor(res *vision.Result, name string, conf float64, rng *rand.Rand) {
	rgb, ok := m.Tax.ColorRGB(name)
	if ok && (m.Format == string(config.FormatRekognition) || m.Format == string(config.FormatGCV)) {
		// A measured colour is never exact; the jitter keeps it nearest
		// to the colour meant, so that it reads back as that colour.
		j := func(v uint8) uint8 { return uint8(max(0, min(255, int(v)+rng.IntN(7)-3))) }
		if jr := (vision.RGB{R: j(rgb.R), G: j(rgb.G), B: j(rgb.B)}); m.nearest(jr) == name {
			rgb = jr
		}
	}
	m.Tax.AddColor(res, m.Format, name, conf, rgb, ok)
}

// nearest is the palette colour nearest to c.
func (m *Model) nearest(c vision.RGB) string {
	n, _ := m.Tax.NearestColor(c)
	return n
}

// generic answers an image that is not a fixture: one low-confidence
// top-level category chosen by the image's hash.
func (m *Model) generic(rng *rand.Rand) vision.Result {
	var roots []string
	for _, c := range m.Tax.Categories {
		if c.Parent() == "" {
			roots = append(roots, c.Path)
		}
	}
	var res vision.Result
	if len(roots) > 0 {
		m.addCategory(&res, roots[rng.IntN(len(roots))], 0.25+0.3*rng.Float64())
	}
	res.Labels = append(res.Labels, vision.Label{Name: m.productWord(), Confidence: 0.3 + 0.2*rng.Float64()})
	return res
}

func hash64(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.LittleEndian.Uint64(sum[:8])
}
