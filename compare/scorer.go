// Package compare is where answers are judged: whether an answer is right
// against a fixture label, whether two providers' answers to the same
// request agree, what a call costs, and the streaming accumulation of run
// directories into the figures a go/no-go report prints (calls, errors,
// latency, accuracy, confusion, agreement, paired accuracy, self-agreement,
// cost), each with its interval from compare/stats.
//
// Every consumer judges answers through the same functions: the report
// (Measure), bench's live table and classify's table (Tally), and the
// proxy's live agreement (LiveAgreement). On the same answers they give
// the same numbers.
//
// compare does not decide anything: gates, the verdict and the renderers
// are in reports. It reads run directories through record and never
// writes them.
package compare

import (
	"math"
	"slices"
	"sync"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// kinds are the attribute kinds, in report order.
var kinds = [...]vision.AttributeKind{vision.KindColor, vision.KindPattern, vision.KindMaterial, vision.KindStyle}

// NumKinds is the number of attribute kinds; arrays indexed by kind follow
// Kinds' order.
const NumKinds = len(kinds)

// Kinds returns the attribute kinds in report order: colour, pattern,
// material, style.
func Kinds() [NumKinds]vision.AttributeKind { return kinds }

// Defaults of the scoring settings, as config applies them.
const (
	DefaultColorDeltaE = 10
	DefaultTopK        = 3
)

// Answer is what scoring reads from a normalised answer: the top category
// and its confidence, the top-k categories and the most confident value
// of each attribute kind ("" where there is none).
type Answer struct {
	Top        string
	Confidence float64
	TopK       []string
	Attributes [NumKinds]string
}

// Score is one answer judged against a fixture label.
type Score struct {
	// Truth is the label's category; Predicted the answer's top category,
	// "(none)" when it gave none.
	Truth, Predicted string
	// Correct: the top category is the label's.
	Correct bool
	// Group is the label's category group (the fixture's, else the
	// taxonomy's), "" when unknown.
	Group string
	// Labelled[k]: the label has a value of kind k; Right[k]: the answer's
	// value matches it (colours within the CIEDE2000 tolerance).
	Labelled, Right [NumKinds]bool
}

// PairScore is two answers to the same request compared.
type PairScore struct {
	// Top1: both have a top category and it is the same.
	Top1 bool
	// Jaccard is the overlap of the two top-k category sets, Common/Union
	// (1 when both are empty).
	Jaccard       float64
	Common, Union int
	// Both[k]: each answer has a value of kind k; Same[k]: they match.
	Both, Same [NumKinds]bool
}

// Scorer judges answers with the taxonomy and the report settings
// (report.color_delta_e, report.top_k). It is safe for concurrent use;
// CIEDE2000 distances between palette colours are computed once per pair
// and cached.
type Scorer struct {
	tx     *vision.Taxonomy
	deltaE float64
	topK   int
	cache  sync.Map // [2]string (ordered) → float64
}

// NewScorer returns a scorer over tx (nil: colours compare by name and
// groups come from the fixtures only) with rc's color_delta_e and top_k;
// zero values take the config defaults (10 and 3).
func NewScorer(tx *vision.Taxonomy, rc config.Report) *Scorer {
	s := &Scorer{tx: tx, deltaE: rc.ColorDeltaE, topK: rc.TopK}
	if s.deltaE == 0 {
		s.deltaE = DefaultColorDeltaE
	}
	if s.topK == 0 {
		s.topK = DefaultTopK
	}
	return s
}

// TopK is how many categories the top-k overlap compares.
func (s *Scorer) TopK() int { return s.topK }

// ColorDeltaE is the CIEDE2000 distance under which colours match.
func (s *Scorer) ColorDeltaE() float64 { return s.deltaE }

// Answer reads an answer from normalised tags; nil tags give the empty
// answer (no top category, no attributes).
func (s *Scorer) Answer(t *vision.Tags) Answer {
	var a Answer
	if t == nil {
		return a
	}
	a.Top = t.Top()
	if len(t.Categories) > 0 {
		a.Confidence = t.Categories[0].Confidence
	}
	k := min(s.topK, len(t.Categories))
	a.TopK = make([]string, k)
	for i := range k {
		a.TopK[i] = t.Categories[i].Value
	}
	for i, kd := range kinds {
		a.Attributes[i] = t.TopAttribute(kd)
	}
	return a
}

// Score judges a against the fixture label it.
func (s *Scorer) Score(a *Answer, it *fixtures.Item) Score {
	sc := Score{Truth: it.Category, Predicted: a.Top, Correct: a.Top == it.Category, Group: s.group(it)}
	if sc.Predicted == "" {
		sc.Predicted = "(none)"
	}
	for i, k := range kinds {
		want := it.Attributes[k]
		if want == "" {
			continue
		}
		sc.Labelled[i] = true
		sc.Right[i] = s.same(i, a.Attributes[i], want)
	}
	return sc
}

// group is it's category group: the fixture's, else the taxonomy's.
func (s *Scorer) group(it *fixtures.Item) string {
	if it.Group == "" && s.tx != nil {
		return s.tx.Group(it.Category)
	}
	return it.Group
}

// Agree compares two answers to the same request.
func (s *Scorer) Agree(a, b *Answer) PairScore {
	ps := PairScore{Top1: a.Top != "" && a.Top == b.Top}
	ps.Common, ps.Union = overlap(a.TopK, b.TopK)
	ps.Jaccard = 1
	if ps.Union > 0 {
		ps.Jaccard = float64(ps.Common) / float64(ps.Union)
	}
	for i := range kinds {
		if a.Attributes[i] != "" && b.Attributes[i] != "" {
			ps.Both[i] = true
			ps.Same[i] = s.same(i, a.Attributes[i], b.Attributes[i])
		}
	}
	return ps
}

// SameAttribute reports whether x and y match as values of kind k:
// colours within the CIEDE2000 tolerance (by name without a taxonomy or
// for a colour outside its palette), other kinds by canonical value. An
// empty value matches nothing.
func (s *Scorer) SameAttribute(k vision.AttributeKind, x, y string) bool {
	i := slices.Index(kinds[:], k)
	if i < 0 {
		return x != "" && x == y
	}
	return s.same(i, x, y)
}

func (s *Scorer) same(i int, x, y string) bool {
	if x == "" || y == "" {
		return false
	}
	if x == y {
		return true
	}
	if kinds[i] != vision.KindColor || s.tx == nil {
		return false
	}
	return s.colorDistance(x, y) <= s.deltaE
}

// colorDistance is the CIEDE2000 distance between two palette colours,
// +Inf when either is not in the palette. Only palette pairs are cached,
// so arbitrary names in a recording cannot grow the cache.
func (s *Scorer) colorDistance(x, y string) float64 {
	k := [2]string{x, y}
	if x > y {
		k = [2]string{y, x}
	}
	if d, ok := s.cache.Load(k); ok {
		return d.(float64)
	}
	cx, okx := s.tx.ColorRGB(x)
	cy, oky := s.tx.ColorRGB(y)
	if !okx || !oky {
		return math.Inf(1)
	}
	d := vision.ColorDistance(cx, cy)
	s.cache.Store(k, d)
	return d
}

// Jaccard is |a ∩ b| / |a ∪ b| of two category lists without repeats; two
// empty lists overlap fully (1).
func Jaccard(a, b []string) float64 {
	common, union := overlap(a, b)
	if union == 0 {
		return 1
	}
	return float64(common) / float64(union)
}

// overlap counts the values a and b share and the size of their union.
func overlap(a, b []string) (common, union int) {
	for _, x := range a {
		if slices.Contains(b, x) {
			common++
		}
	}
	return common, len(a) + len(b) - common
}
