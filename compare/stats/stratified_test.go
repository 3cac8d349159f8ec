package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestAllocate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
		sd    []float64
		n     int
		floor int
		want  []int
	}{
		// Neyman: a = N·S = 1000, 100, 400, 2400 (sum 3900); 300·a/3900 =
		// 76.9, 7.7, 30.8, 184.6; the second is under the floor of 20, so
		// it gets 20 and 280 is shared among the others: 280·a/3800 =
		// 73.68, 29.47, 176.84; whole parts 73 + 29 + 176 + 20 = 298, and
		// the two left go to the largest remainders (.84, then .68).
		{"neyman with a floor", []int{1000, 200, 800, 8000}, []float64{1, 0.5, 0.5, 0.3}, 300, 20, []int{74, 20, 29, 177}},
		// a = 1000, 100, 2.5, 2400: the second and third fall under the
		// floor, and the third has only 5 units, so it gets 5; 275 left
		// over a = 1000, 2400: 80.88, 194.12 → 81, 194.
		{"floor capped by the stratum", []int{1000, 200, 5, 8000}, []float64{1, 0.5, 0.5, 0.3}, 300, 20, []int{81, 20, 5, 194}},
		// Budget above the population: every unit.
		{"census", []int{10, 0, 3}, []float64{1, 1, 1}, 50, 20, []int{10, 0, 3}},
		// a = 30, 10: shares 75 and 25; the first has 30 units, the rest
		// moves on.
		{"cap", []int{30, 10000}, []float64{1, 0.001}, 100, 5, []int{30, 70}},
		// Floor lowered to n / non-empty strata = 2.
		{"small budget", []int{100, 100, 100, 0}, []float64{1, 0, 0, 1}, 7, 20, []int{3, 2, 2, 0}},
		// All S = 0: proportional.
		{"proportional fallback", []int{300, 100}, []float64{0, 0}, 40, 1, []int{30, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Allocate(tc.sizes, tc.sd, tc.n, tc.floor)
			if err != nil {
				t.Fatal(err)
			}
			for h := range got {
				if got[h] != tc.want[h] {
					t.Errorf("got %v, want %v", got, tc.want)
					break
				}
			}
			if sum, want := sumInts(got), min(tc.n, sumInts(tc.sizes)); sum != want {
				t.Errorf("allocated %d, want %d", sum, want)
			}
		})
	}
	if _, err := Allocate([]int{5, 5, 5}, []float64{1, 1, 1}, 2, 1); err == nil {
		t.Error("a budget below the number of strata was accepted")
	}
	if _, err := Allocate([]int{5}, []float64{1, 1}, 2, 1); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

func sumInts(s []int) int {
	t := 0
	for _, v := range s {
		t += v
	}
	return t
}

// TestWilsonFMatchesWilson: the real-valued Wilson interval is the
// integer one at whole counts (REFERENCE.md's vectors).
func TestWilsonFMatchesWilson(t *testing.T) {
	for _, c := range [][2]int{{10, 100}, {1, 10}, {50, 100}, {0, 100}, {30, 30}, {0, 1}} {
		l1, h1 := Wilson(c[0], c[1], Z95)
		l2, h2 := WilsonF(float64(c[0])/float64(c[1]), float64(c[1]), Z95)
		if math.Abs(l1-l2) > 1e-12 || math.Abs(h1-h2) > 1e-12 {
			t.Errorf("%d of %d: WilsonF [%v, %v], Wilson [%v, %v]", c[0], c[1], l2, h2, l1, h1)
		}
	}
}

// TestStratifiedProportionByHand checks the estimator on a two-stratum
// example against an independent computation (z = 1.96):
//
//	stratum a: N = 900, n = 30, 27 right; stratum b: N = 100, n = 20, 10 right.
//	W = 0.9, 0.1; p̂ = 0.9·0.9 + 0.1·0.5 = 0.86.
//	n*_a = 30·899/870 = 31; n*_b = 20·99/80 = 24.75.
//	Wilson(0.9, 31) = [0.746954, 0.964839]; Wilson(0.5, 24.75) = [0.316723, 0.683277].
//	L = 0.86 − √(0.81·(0.9 − 0.746954)² + 0.01·(0.5 − 0.316723)²) = 0.721045
//	U = 0.86 + √(0.81·(0.964839 − 0.9)² + 0.01·(0.683277 − 0.5)²) = 0.921165
//
// The figures come from this Python, written from the formulas and not
// from this code:
//
//	from math import sqrt; z = 1.96
//	def wil(p, n):
//	    d = 1 + z*z/n; c = (p + z*z/(2*n))/d; h = z/d*sqrt(p*(1-p)/n + z*z/(4*n*n)); return c-h, c+h
//	la, ua = wil(0.9, 30*899/870); lb, ub = wil(0.5, 20*99/80)
//	print(0.86 - sqrt(0.81*(0.9-la)**2 + 0.01*(0.5-lb)**2), 0.86 + sqrt(0.81*(ua-0.9)**2 + 0.01*(ub-0.5)**2))
func TestStratifiedProportionByHand(t *testing.T) {
	e, err := StratifiedProportion([]StratumCount{{"a", 900, 30, 27}, {"b", 100, 20, 10}}, Z95)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"value", e.Value, 0.86}, {"lo", e.Lo, 0.7210447}, {"hi", e.Hi, 0.9211653}} {
		if math.Abs(c.got-c.want) > 1e-7 {
			t.Errorf("%s: got %.6f, want %.6f", c.name, c.got, c.want)
		}
	}
	if e.Labels != 50 || e.Population != 1000 {
		t.Errorf("labels %d population %d, want 50 and 1000", e.Labels, e.Population)
	}
}

// TestStratifiedReducesToKnownIntervals: one stratum of an infinite-ish
// population is the Wilson interval; one stratum of pairs is Newcombe's
// interval (Paired.DiffCI, itself checked against published values); a
// census has no width.
func TestStratifiedReducesToKnownIntervals(t *testing.T) {
	const huge = 1 << 50
	e, err := StratifiedProportion([]StratumCount{{"only", huge, 100, 10}}, Z95)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := Wilson(10, 100, Z95); math.Abs(e.Lo-lo) > 1e-9 || math.Abs(e.Hi-hi) > 1e-9 {
		t.Errorf("one stratum: got [%v, %v], Wilson [%v, %v]", e.Lo, e.Hi, lo, hi)
	}
	tab := Paired{Both: 40, OnlyA: 5, OnlyB: 15, Neither: 10}
	pe, err := StratifiedPaired([]StratumPairs{{Name: "only", N: huge, Table: tab}}, Z95)
	if err != nil {
		t.Fatal(err)
	}
	d, lo, hi := tab.DiffCI(Z95)
	if math.Abs(pe.Diff.Value-d) > 1e-12 || math.Abs(pe.Diff.Lo-lo) > 1e-9 || math.Abs(pe.Diff.Hi-hi) > 1e-9 {
		t.Errorf("one stratum of pairs: got %+v, Newcombe %v [%v, %v]", pe.Diff, d, lo, hi)
	}
	census, err := StratifiedPaired([]StratumPairs{{Name: "all", N: 70, Table: tab}}, Z95)
	if err != nil {
		t.Fatal(err)
	}
	if census.A.Lo != census.A.Hi || census.Diff.Lo != census.Diff.Hi || math.Abs(census.Diff.Value-10.0/70) > 1e-12 {
		t.Errorf("a census has width: %+v", census)
	}
}

func TestStratifiedPairedConcordant(t *testing.T) {
	strata := []StratumPairs{
		{Name: "disagree", N: 200, Table: Paired{OnlyA: 5, OnlyB: 20, Neither: 5}},
		{Name: "agree", N: 800, Table: Paired{Both: 28, Neither: 2}, Concordant: true},
	}
	e, err := StratifiedPaired(strata, Z95)
	if err != nil {
		t.Fatal(err)
	}
	// Only the disagreement stratum moves the difference: 0.2·15/30 = 0.1,
	// and its interval is that stratum's Newcombe interval scaled by 0.2.
	d, lo, hi := newcombeF(strata[0].Table, effectiveN(30, 200), Z95)
	if math.Abs(e.Diff.Value-0.1) > 1e-12 || math.Abs(e.Diff.Lo-0.2*lo) > 1e-12 || math.Abs(e.Diff.Hi-0.2*hi) > 1e-12 || d != 0.5 {
		t.Errorf("got %+v, want 0.1 in [%v, %v]", e.Diff, 0.2*lo, 0.2*hi)
	}
	strata[1].Table = Paired{Both: 27, OnlyA: 1, Neither: 2}
	if _, err := StratifiedPaired(strata, Z95); err == nil {
		t.Error("a discordant unit in a concordant stratum was accepted")
	}
}

// TestStratifiedAllRight: with every label right, the Wald and
// effective-size intervals collapse to the point 1; this one keeps the
// uncertainty of the unlabelled images.
func TestStratifiedAllRight(t *testing.T) {
	strata := []StratumPairs{
		{Name: "disagree", N: 200, Table: Paired{OnlyB: 30}},
		{Name: "agree", N: 800, Table: Paired{Both: 30}, Concordant: true},
	}
	wLo, wHi, kLo, kHi := altIntervals(strata, func(t Paired) int { return t.Both + t.OnlyB })
	if wLo != 1 || wHi != 1 || kLo != 1 || kHi != 1 {
		t.Errorf("alternatives: Wald [%v, %v], effective size [%v, %v]; want both [1, 1]", wLo, wHi, kLo, kHi)
	}
	e, err := StratifiedPaired(strata, Z95)
	if err != nil {
		t.Fatal(err)
	}
	// Wilson(30 of 30) at n* = 30·199/170 and 30·799/770: lower limits
	// 0.901394 and 0.890150 (Python, from the formula);
	// L = 1 − √(0.04·0.098606² + 0.64·0.109850²) = 0.909935.
	if e.B.Value != 1 || e.B.Hi != 1 || math.Abs(e.B.Lo-0.909935) > 1e-6 {
		t.Errorf("B: got %+v, want 1 in [0.909935, 1]", e.B)
	}
}

func TestStratifiedErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		strata []StratumCount
		noLab  bool
	}{
		{"unlabelled stratum", []StratumCount{{"a", 10, 5, 2}, {"b", 10, 0, 0}}, true},
		{"more labelled than population", []StratumCount{{"a", 10, 11, 2}}, false},
		{"more successes than labels", []StratumCount{{"a", 10, 5, 6}}, false},
		{"empty population", []StratumCount{{"a", 0, 0, 0}}, false},
		{"negative", []StratumCount{{"a", -1, 0, 0}}, false},
	} {
		_, err := StratifiedProportion(tc.strata, Z95)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if got := errors.Is(err, ErrNoLabels); got != tc.noLab {
			t.Errorf("%s: errors.Is(ErrNoLabels) = %v (%v)", tc.name, got, err)
		}
	}
	// An empty stratum is fine without labels.
	if _, err := StratifiedProportion([]StratumCount{{"a", 10, 5, 2}, {"b", 0, 0, 0}}, Z95); err != nil {
		t.Error(err)
	}
}

// --- simulation with known truth ----------------------------------------

// profile is a simulated provider: calls fail with probability fail;
// answers are wrong with probability miss, with a calibrated confidence
// drawn as cutover's simulator draws it (uniform on [2μ−1, 1] with μ =
// 1 − miss, right with probability equal to the confidence), and a wrong
// answer is one of the truth's siblings (4 in each family of 5).
type profile struct{ miss, fail float64 }

type answer struct {
	ok   bool
	top  int
	conf float64
}

func (p profile) answer(rng *rand.Rand, truth int) answer {
	if rng.Float64() < p.fail {
		return answer{}
	}
	mu := 1 - p.miss
	lo := 2*mu - 1
	conf := lo + (1-lo)*rng.Float64()
	if rng.Float64() < conf {
		return answer{true, truth, conf}
	}
	family := truth / 5 * 5
	wrong := family + (truth-family+1+rng.IntN(4))%5
	return answer{true, wrong, conf}
}

// The strata as cutover label defines them, and its anticipated unit
// standard deviations (label/strata.go).
const (
	sFailed = iota
	sDisagree
	sLow
	sAgree
	nStrata
)

var simSD = []float64{0.6, 1.0, 0.6, 0.3}

func stratumOf(a, b answer, low float64) int {
	switch {
	case !a.ok || !b.ok:
		return sFailed
	case a.top != b.top:
		return sDisagree
	case a.conf < low || b.conf < low:
		return sLow
	}
	return sAgree
}

type unit struct {
	stratum        int
	rightA, rightB bool
}

type scenario struct {
	name   string
	n      int // population of distinct images
	a, b   profile
	budget int
}

type coverage struct {
	hitA, hitB, hitD     int
	biasA, biasB, biasD  float64
	widthA, waldWidthA   float64
	waldA, kgA           int // the rejected alternatives' hits
	disagreeShare        float64
	repeats, labels, pop int
}

// simulate runs repeats shadow runs of the scenario: each draws a fresh
// population of images with both providers' answers, stratifies it, takes
// the allocated simple random sample per stratum, labels it with the
// truth (the oracle) and scores it. It returns how often the 95 %
// intervals covered the population's true values and the mean errors.
func simulate(sc scenario, repeats int, seed uint64) coverage {
	rng := rand.New(rand.NewPCG(seed, 0x1abe1))
	var cv coverage
	cv.repeats = repeats
	pop := make([]unit, sc.n)
	byStratum := make([][]int, nStrata)
	for r := 0; r < repeats; r++ {
		for h := range byStratum {
			byStratum[h] = byStratum[h][:0]
		}
		rightA, rightB := 0, 0
		for i := range pop {
			truth := rng.IntN(200)
			a, b := sc.a.answer(rng, truth), sc.b.answer(rng, truth)
			u := unit{stratum: stratumOf(a, b, 0.75), rightA: a.ok && a.top == truth, rightB: b.ok && b.top == truth}
			pop[i] = u
			byStratum[u.stratum] = append(byStratum[u.stratum], i)
			if u.rightA {
				rightA++
			}
			if u.rightB {
				rightB++
			}
		}
		trueA, trueB := float64(rightA)/float64(sc.n), float64(rightB)/float64(sc.n)
		sizes := make([]int, nStrata)
		for h := range sizes {
			sizes[h] = len(byStratum[h])
		}
		cv.disagreeShare += float64(sizes[sDisagree]) / float64(sc.n) / float64(repeats)
		alloc, err := Allocate(sizes, simSD, sc.budget, 20)
		if err != nil {
			panic(err)
		}
		strata := make([]StratumPairs, nStrata)
		for h := range strata {
			ids := byStratum[h]
			// A simple random sample without replacement: a partial shuffle.
			for i := 0; i < alloc[h]; i++ {
				j := i + rng.IntN(len(ids)-i)
				ids[i], ids[j] = ids[j], ids[i]
			}
			var t Paired
			for _, id := range ids[:alloc[h]] {
				u := pop[id]
				switch {
				case u.rightA && u.rightB:
					t.Both++
				case u.rightA:
					t.OnlyA++
				case u.rightB:
					t.OnlyB++
				default:
					t.Neither++
				}
			}
			strata[h] = StratumPairs{Name: "s", N: sizes[h], Table: t, Concordant: h == sLow || h == sAgree}
		}
		e, err := StratifiedPaired(strata, Z95)
		if err != nil {
			panic(err)
		}
		cv.labels, cv.pop = e.A.Labels, e.A.Population
		in := func(e Estimate, v float64) bool { return e.Lo <= v && v <= e.Hi }
		if in(e.A, trueA) {
			cv.hitA++
		}
		if in(e.B, trueB) {
			cv.hitB++
		}
		if in(e.Diff, trueB-trueA) {
			cv.hitD++
		}
		cv.biasA += (e.A.Value - trueA) / float64(repeats)
		cv.biasB += (e.B.Value - trueB) / float64(repeats)
		cv.biasD += (e.Diff.Value - (trueB - trueA)) / float64(repeats)
		cv.widthA += (e.A.Hi - e.A.Lo) / float64(repeats)
		// The two alternatives the doc comment rejects, on the same sample.
		wLo, wHi, kLo, kHi := altIntervals(strata, func(t Paired) int { return t.Both + t.OnlyA })
		cv.waldWidthA += (wHi - wLo) / float64(repeats)
		if wLo <= trueA && trueA <= wHi {
			cv.waldA++
		}
		if kLo <= trueA && trueA <= kHi {
			cv.kgA++
		}
	}
	return cv
}

// altIntervals computes the Wald interval p̂ ± z√V̂ and the Wilson
// interval at the effective sample size p̂(1−p̂)/V̂, with
// V̂ = Σ W_h² (1 − f_h) p̂_h(1 − p̂_h)/(n_h − 1).
func altIntervals(strata []StratumPairs, right func(Paired) int) (wLo, wHi, kLo, kHi float64) {
	N := 0
	for _, s := range strata {
		N += s.N
	}
	var p, v float64
	for _, s := range strata {
		if s.N == 0 {
			continue
		}
		w := float64(s.N) / float64(N)
		nh := float64(s.Table.N())
		ph := float64(right(s.Table)) / nh
		p += w * ph
		if nh > 1 {
			v += w * w * (1 - nh/float64(s.N)) * ph * (1 - ph) / (nh - 1)
		}
	}
	h := Z95 * math.Sqrt(v)
	ne := math.Inf(1)
	if v > 0 {
		ne = p * (1 - p) / v
	}
	kLo, kHi = WilsonF(p, ne, Z95)
	return p - h, p + h, kLo, kHi
}

// TestStratifiedSimulation is the statistical test of the estimator: in
// each scenario 400 shadow runs with known truth, a budget of 300 labels
// answered by an oracle, and the 95 % intervals must cover the true
// accuracy of each provider and their true difference in at least 92 %
// of the runs, with a mean bias under one point. The story's scenario
// uses the simulator profiles' fashion rates (legacy 23 %, candidate
// 6.4 % misclassification).
func TestStratifiedSimulation(t *testing.T) {
	if raceStratified {
		t.Skip("skipping under -race: 2,000 simulated shadow runs take 14 s there and touch no shared memory; make test runs this without -race")
	}
	for i, sc := range []scenario{
		{"legacy 23 % vs candidate 6.4 %", 5000, profile{0.23, 0.003}, profile{0.064, 0.008}, 300},
		{"close providers 6 % vs 5 %", 5000, profile{0.06, 0.003}, profile{0.05, 0.003}, 300},
		{"small population (fpc)", 1200, profile{0.20, 0.01}, profile{0.10, 0.01}, 300},
		{"candidate worse 8 % vs 15 %", 8000, profile{0.08, 0.002}, profile{0.15, 0.02}, 300},
		{"legacy vs candidate, 100 labels", 5000, profile{0.23, 0.003}, profile{0.064, 0.008}, 100},
	} {
		t.Run(sc.name, func(t *testing.T) {
			cv := simulate(sc, 400, uint64(i+1))
			share := func(k int) float64 { return float64(k) / float64(cv.repeats) }
			t.Logf("disagreements %.1f %% of %d images; %d labels; coverage A %.1f %%, B %.1f %%, B−A %.1f %%; bias A %+.2f, B %+.2f, B−A %+.2f points; mean width A %.1f points (Wald %.1f); rejected alternatives' coverage of A: Wald %.1f %%, effective-n Wilson %.1f %%",
				100*cv.disagreeShare, cv.pop, cv.labels, 100*share(cv.hitA), 100*share(cv.hitB), 100*share(cv.hitD),
				100*cv.biasA, 100*cv.biasB, 100*cv.biasD, 100*cv.widthA, 100*cv.waldWidthA, 100*share(cv.waldA), 100*share(cv.kgA))
			for _, c := range []struct {
				what string
				hits int
			}{{"A", cv.hitA}, {"B", cv.hitB}, {"B − A", cv.hitD}} {
				if share(c.hits) < 0.92 {
					t.Errorf("coverage of %s: got %.1f %%, want ≥ 92 %%", c.what, 100*share(c.hits))
				}
			}
			for _, c := range []struct {
				what string
				bias float64
			}{{"A", cv.biasA}, {"B", cv.biasB}, {"B − A", cv.biasD}} {
				if math.Abs(c.bias) >= 0.01 {
					t.Errorf("mean bias of %s: got %+.2f points, want under 1", c.what, 100*c.bias)
				}
			}
		})
	}
}
