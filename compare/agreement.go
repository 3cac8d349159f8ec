package compare

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/vision"
)

// agreeTally accumulates PairScores of pairs both providers answered.
// Jaccard overlaps are counted by value (common/union) and summed in a
// fixed order when read, so the mean does not depend on the order pairs
// arrived in (the proxy's do not arrive in file order).
type agreeTally struct {
	pairs, top1   int
	jaccard       map[[2]int]int // {common, union} → pairs
	attrN, attrOK [NumKinds]int
}

func (t *agreeTally) add(ps *PairScore) {
	t.pairs++
	if ps.Top1 {
		t.top1++
	}
	if t.jaccard == nil {
		t.jaccard = map[[2]int]int{}
	}
	t.jaccard[[2]int{ps.Common, ps.Union}]++
	for i := range kinds {
		if ps.Both[i] {
			t.attrN[i]++
			if ps.Same[i] {
				t.attrOK[i]++
			}
		}
	}
}

// result is the agreement of a with b so far, without the matched-
// confidence table (Matched is empty).
func (t *agreeTally) result(a, b string, topK int) Agreement {
	out := Agreement{A: a, B: b, Pairs: t.pairs, Top1: NewRate(t.top1, t.pairs), TopK: topK, Attributes: []KindRate{}, Matched: []MatchedAgreement{}}
	keys := slices.SortedFunc(maps.Keys(t.jaccard), func(x, y [2]int) int { return cmp.Or(cmp.Compare(x[1], y[1]), cmp.Compare(x[0], y[0])) })
	var n int
	var sum, sumSq float64
	for _, k := range keys {
		j := 1.0
		if k[1] > 0 {
			j = float64(k[0]) / float64(k[1])
		}
		c := t.jaccard[k]
		n += c
		sum += float64(c) * j
		sumSq += float64(c) * j * j
	}
	m, lo, hi := stats.MeanCI(n, sum, sumSq, stats.Z95)
	out.TopKJaccard = Mean{N: n, Value: m, Lo: math.Max(0, lo), Hi: math.Min(1, hi)}
	for i, k := range kinds {
		if t.attrN[i] > 0 {
			out.Attributes = append(out.Attributes, KindRate{Kind: string(k), Rate: NewRate(t.attrOK[i], t.attrN[i])})
		}
	}
	return out
}

// agreeAcc is a report's agreement of the baseline with one provider:
// the tally, the confidences for the matched-confidence table, and the
// paired accuracy table over labelled images.
type agreeAcc struct {
	agreeTally
	confA, confB []float32
	agreeBits    []bool
	// labelledPairs counts pairs of a labelled image both answered
	// (PairedAccuracy.Calls); the paired table itself is made from each
	// provider's first answer per image (pairedResult).
	labelledPairs int
}

func (g *agreeAcc) add(base, x *answer, ps *PairScore) {
	g.agreeTally.add(ps)
	g.confA = append(g.confA, float32(base.a.Confidence))
	g.confB = append(g.confB, float32(x.a.Confidence))
	g.agreeBits = append(g.agreeBits, ps.Top1)
	if base.fixture != nil && x.fixture != nil {
		g.labelledPairs++
	}
}

// matchedKeeps are the shares of answers each provider keeps in the
// matched-confidence agreement table.
var matchedKeeps = []float64{1, 0.9, 0.75, 0.5}

func (g *agreeAcc) result(a, b string, topK int) Agreement {
	out := g.agreeTally.result(a, b, topK)
	if len(g.confA) == 0 {
		return out
	}
	sa, sb := slices.Clone(g.confA), slices.Clone(g.confB)
	slices.Sort(sa)
	slices.Sort(sb)
	for _, keep := range matchedKeeps {
		idx := int(math.Floor((1 - keep) * float64(len(sa))))
		ta, tb := sa[min(idx, len(sa)-1)], sb[min(idx, len(sb)-1)]
		if keep == 1 {
			ta, tb = sa[0], sb[0]
		}
		k, n := 0, 0
		for i := range g.confA {
			if g.confA[i] >= ta && g.confB[i] >= tb {
				n++
				if g.agreeBits[i] {
					k++
				}
			}
		}
		out.Matched = append(out.Matched, MatchedAgreement{Keep: keep, ThresholdA: float64(ta), ThresholdB: float64(tb), Top1: NewRate(k, n)})
	}
	return out
}

// pairedResult is the paired accuracy table of a against b over the
// labelled images both answered, each judged by each provider's first
// answer to it (CountFirstAnswer); images whose category either format
// cannot express are left out and counted. ok is false when no such image
// remains.
func (g *agreeAcc) pairedResult(a, b *provAcc) (PairedAccuracy, bool) {
	var t stats.Paired
	ne := 0
	for k, x := range a.images {
		y, both := b.images[k]
		if !both {
			continue
		}
		if (x.bits|y.bits)&imageNotExpressible != 0 {
			ne++
			continue
		}
		switch xa, ya := x.bits&imageCorrect != 0, y.bits&imageCorrect != 0; {
		case xa && ya:
			t.Both++
		case xa:
			t.OnlyA++
		case ya:
			t.OnlyB++
		default:
			t.Neither++
		}
	}
	n := t.N()
	if n == 0 {
		return PairedAccuracy{}, false
	}
	d, lo, hi := t.DiffCI(stats.Z95)
	p, mid := stats.McNemar(t.OnlyA, t.OnlyB)
	return PairedAccuracy{A: a.name, B: b.name, N: n, Counting: CountFirstAnswer, Calls: g.labelledPairs, NotExpressible: ne,
		Both: t.Both, OnlyA: t.OnlyA, OnlyB: t.OnlyB, Neither: t.Neither,
		AccA: float64(t.Both+t.OnlyA) / float64(n), AccB: float64(t.Both+t.OnlyB) / float64(n),
		Diff: d, DiffLo: lo, DiffHi: hi, McNemarP: p, McNemarMidP: mid}, true
}

// LiveAgreement counts, as answers arrive, how often provider A's and
// provider B's answers to the same request agree: top-1 category, top-k
// Jaccard overlap and each attribute kind (colour within
// report.color_delta_e), by the same Scorer.Agree the report uses. On the
// same pairs its Snapshot equals the report's agreement figures except for
// the matched-confidence table, which needs every pair's confidences and
// is left empty so that memory stays constant.
//
// It is safe for concurrent use: Add takes a mutex for a few additions
// (the scoring itself runs outside it).
type LiveAgreement struct {
	s    *Scorer
	a, b string
	mu   sync.Mutex
	t    agreeTally
}

// NewLiveAgreement returns an empty tally of A's agreement with B (the
// names label the Snapshot: the proxy's primary and candidate).
func NewLiveAgreement(s *Scorer, a, b string) *LiveAgreement {
	return &LiveAgreement{s: s, a: a, b: b}
}

// Add counts one pair: a is A's normalised answer, b is B's. A nil side
// had no answer (an error, a skipped mirror) and the pair is not counted,
// as the report counts only pairs both providers answered. It returns the
// pair's score and whether it was counted, for a caller that also keeps
// its own counters (a Prometheus agree/disagree counter from ps.Top1).
func (l *LiveAgreement) Add(a, b *vision.Tags) (ps PairScore, counted bool) {
	if a == nil || b == nil {
		return PairScore{}, false
	}
	x, y := l.s.Answer(a), l.s.Answer(b)
	ps = l.s.Agree(&x, &y)
	l.mu.Lock()
	l.t.add(&ps)
	l.mu.Unlock()
	return ps, true
}

// Snapshot is the agreement so far: pairs, top-1 agreement k/n with its
// Wilson 95 % interval, the mean top-k Jaccard overlap with its interval,
// and agreement per attribute kind over pairs where both gave a value.
// Matched is empty.
func (l *LiveAgreement) Snapshot() Agreement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.t.result(l.a, l.b, l.s.TopK())
}
