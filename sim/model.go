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

	offPeak, peak stats.LogNormal
	clockStart    time.Time
	realStart     time.Time
	limiter       *rate.Limiter
	errCum        []errShare
	counter       atomic.Uint64
	prompts       sync.Map // prompt prefixes seen, for cached-token accounting
	leaves        []string
	groupLeaves   map[string][]string
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
	m.leaves = tx.Leaves()
	for _, l := range m.leaves {
		g := tx.Group(l)
		m.groupLeaves[g] = append(m.groupLeaves[g], l)
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
		out.Result, out.Correct = m.answer(it, req, ans)
	} else {
		out.Result = m.generic(ans)
	}
	out.Result.ModelVersion = m.Profile.ModelVersion
	out.Result = out.Result.Filter(req.MinConfidence, req.MaxLabels)
	return out
}

// calibrated draws a confidence c with mean 1−miss and a correctness that
// holds with probability c, so the share of wrong answers is exactly miss
// and confidences are calibrated (answers at 0.9 are right 90 % of the time).
func calibrated(rng *rand.Rand, miss float64) (conf float64, correct bool) {
	mu := 1 - miss
	lo, hi := 2*mu-1, 1.0
	if mu < 0.5 {
		lo, hi = 0, 2*mu
	}
	conf = lo + (hi-lo)*rng.Float64()
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
	if sib := m.Tax.Siblings(truth); len(sib) > 0 && rng.Float64() < share {
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

func (m *Model) answer(it fixtures.Item, req vision.Request, rng *rand.Rand) (vision.Result, bool) {
	conf, correct := calibrated(rng, m.missRate(it.Group))
	top, second := it.Category, ""
	if !correct {
		top, second = m.confusion(rng, it.Category), it.Category
	} else if sib := m.Tax.Siblings(it.Category); len(sib) > 0 {
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
		c, right := calibrated(rng, errRate)
		if !right {
			v = m.wrongAttribute(rng, k, v)
		}
		if k == vision.KindColor {
			m.addColor(&res, v, c, rng)
			continue
		}
		res.Attributes = append(res.Attributes, vision.Attribute{Kind: k, Value: v, Confidence: c})
	}
	m.inVendorWords(&res)
	return res, correct
}

// wrongAttribute picks a plausible wrong value: for colours the nearest
// other palette colour by CIEDE2000, otherwise another vocabulary value.
func (m *Model) wrongAttribute(rng *rand.Rand, k vision.AttributeKind, v string) string {
	vals := m.Tax.AttributeValues(k)
	if k == vision.KindColor {
		if rgb, ok := m.Tax.ColorRGB(v); ok {
			best, bestD := "", math.Inf(1)
			for _, o := range vals {
				if o == v {
					continue
				}
				if orgb, ok := m.Tax.ColorRGB(o); ok {
					if d := vision.ColorDistance(rgb, orgb) * (0.8 + 0.4*rng.Float64()); d < bestD {
						best, bestD = o, d
					}
				}
			}
			if best != "" {
				return best
			}
		}
	}
	for len(vals) > 1 {
		if o := vals[rng.IntN(len(vals))]; o != v {
			return o
		}
	}
	return v
}

func (m *Model) addCategory(res *vision.Result, path string, conf float64) {
	m.Tax.AddCategory(res, m.Format, path, conf)
}

// addColor reports a colour: as a measured RGB (jittered around the palette
// value) for formats that measure colours, as a named attribute otherwise.
func (m *Model) addColor(res *vision.Result, name string, conf float64, rng *rand.Rand) {
	rgb, ok := m.Tax.ColorRGB(name)
	if ok && (m.Format == string(config.FormatRekognition) || m.Format == string(config.FormatGCV)) {
		j := func(v uint8) uint8 { return uint8(max(0, min(255, int(v)+rng.IntN(7)-3))) }
		rgb = vision.RGB{R: j(rgb.R), G: j(rgb.G), B: j(rgb.B)}
	}
	m.Tax.AddColor(res, m.Format, name, conf, rgb, ok)
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
