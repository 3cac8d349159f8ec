package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// This file holds the statistics of a stratified random sample drawn
// without replacement: how a labelling budget is split over strata
// (Allocate) and how the labelled sample estimates a proportion of the
// whole population with an interval (StratifiedProportion) and the paired
// difference of two proportions measured on the same units
// (StratifiedPaired).
//
// Notation: stratum h has N_h units in the population, n_h of them
// labelled (a simple random sample without replacement), W_h = N_h/N.
// The estimate is the stratified mean p̂ = Σ W_h p̂_h, which is the
// inverse-probability (Horvitz–Thompson) estimate with every labelled unit
// weighted N_h/n_h: it is unbiased whatever the allocation. The unweighted
// share of the labels is not an estimate of anything here, since strata
// are sampled at different rates.
//
// The interval is a MOVER interval ("method of variance estimates
// recovery", Zou and Donner 2008; for linear combinations of binomial
// proportions Zou, Huang and Zhang 2009) built on per-stratum Wilson score
// intervals with the finite-population correction:
//
//	L = p̂ − √(Σ W_h² (p̂_h − l_h)²),   U = p̂ + √(Σ W_h² (u_h − p̂_h)²)
//
// where [l_h, u_h] is the Wilson interval of stratum h at the effective
// size n*_h = n_h (N_h − 1)/(N_h − n_h), the size at which the binomial
// variance p(1−p)/n* equals the variance of a mean of n_h draws without
// replacement, (N_h − n_h)/(N_h − 1) · p(1−p)/n_h. A fully labelled
// stratum (n_h = N_h) is known exactly and adds no width. With one stratum
// the interval is the Wilson interval; for a difference it is Newcombe's
// square-and-add interval (method 10) per stratum, combined the same way.
//
// Why not the Wald interval p̂ ± z√V̂, or a Wilson interval at the
// "effective sample size" p̂(1−p̂)/V̂ (Korn and Graubard 1998), with
// V̂ = Σ W_h² (1 − f_h) p̂_h(1 − p̂_h)/(n_h − 1)? Both take each stratum's
// variance from p̂_h(1−p̂_h), which is zero in a stratum whose labels are
// all right: when two good providers agree, the large agreement stratum is
// often labelled all right, and if every stratum is, those intervals have
// no width at all (TestStratifiedAllRight). In TestStratifiedSimulation
// (five scenarios, 400 shadow runs each, 100 or 300 labels) they covered
// the true accuracy in 93.0–96.2 % (Wald) and 92.8–97.0 % (effective size)
// of runs; this interval covered 94.8–98.5 % (it is conservative: 27–38 %
// wider than Wald at 300 labels), and its difference interval 93.8–96.5 %.
// The Wilson interval of 30 of 30 still has a lower limit of 0.886, and
// MOVER carries that width into the combined interval.

// Allocate splits a budget of n labels over strata of sizes sizes[h]
// with anticipated unit standard deviations sd[h]: a Neyman allocation,
// n_h ∝ N_h·S_h (the allocation that minimises the variance of a
// stratified mean for a fixed n), where every non-empty stratum gets at
// least min(floor, N_h) labels and no stratum more than N_h. Strata that
// the Neyman share would put under the floor are set to the floor and the
// rest of the budget is shared again among the others (likewise for
// strata capped at N_h), until no stratum moves; the shares are then
// rounded by largest remainder (ties to the earlier stratum), so the
// counts add up to n exactly.
//
// A budget at or above the population labels everything (a census). It is
// an error for n to be smaller than the number of non-empty strata, since
// a stratum without labels has no estimate; floor is lowered to n divided
// by the number of non-empty strata when the budget cannot pay it.
func Allocate(sizes []int, sd []float64, n, floor int) ([]int, error) {
	if len(sizes) != len(sd) {
		return nil, fmt.Errorf("allocating: %d stratum sizes but %d standard deviations", len(sizes), len(sd))
	}
	total, nonEmpty := 0, 0
	for h, N := range sizes {
		if N < 0 || sd[h] < 0 || math.IsNaN(sd[h]) || math.IsInf(sd[h], 0) {
			return nil, fmt.Errorf("allocating: stratum %d has size %d and standard deviation %v", h, N, sd[h])
		}
		total += N
		if N > 0 {
			nonEmpty++
		}
	}
	out := make([]int, len(sizes))
	if n >= total {
		copy(out, sizes)
		return out, nil
	}
	if n < nonEmpty {
		return nil, fmt.Errorf("allocating: a budget of %d labels is smaller than the %d non-empty strata (each needs at least one)", n, nonEmpty)
	}
	floor = max(1, min(floor, n/nonEmpty))
	// a[h] is the Neyman weight; a stratum with S_h = 0 everywhere falls
	// back to proportional allocation.
	a := make([]float64, len(sizes))
	sumA := 0.0
	for h, N := range sizes {
		a[h] = float64(N) * sd[h]
		sumA += a[h]
	}
	if sumA == 0 {
		for h, N := range sizes {
			a[h] = float64(N)
		}
	}
	share := make([]float64, len(sizes))
	fixed := make([]bool, len(sizes))
	for h, N := range sizes {
		if N == 0 {
			fixed[h] = true
		}
	}
	for {
		left, weight := float64(n), 0.0
		for h := range sizes {
			if fixed[h] {
				left -= share[h]
			} else {
				weight += a[h]
			}
		}
		for h := range sizes {
			if !fixed[h] {
				if weight > 0 {
					share[h] = left * a[h] / weight
				} else {
					share[h] = left / float64(countFree(fixed))
				}
			}
		}
		moved := false
		for h, N := range sizes { // caps first: they free budget for the rest
			if !fixed[h] && share[h] > float64(N) {
				share[h], fixed[h], moved = float64(N), true, true
			}
		}
		if !moved {
			for h, N := range sizes {
				if f := float64(min(floor, N)); !fixed[h] && share[h] < f {
					share[h], fixed[h], moved = f, true, true
				}
			}
		}
		if !moved {
			break
		}
	}
	// Largest remainder.
	got := 0
	type rem struct {
		h int
		r float64
	}
	var rems []rem
	for h := range sizes {
		out[h] = int(math.Floor(share[h] + 1e-9))
		got += out[h]
		if out[h] < sizes[h] {
			rems = append(rems, rem{h, share[h] - float64(out[h])})
		}
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; got < n && i < len(rems); i++ {
		out[rems[i].h]++
		got++
	}
	if got != n {
		return nil, fmt.Errorf("allocating: %d labels allocated of %d (a bug)", got, n)
	}
	return out, nil
}

func countFree(fixed []bool) int {
	n := 0
	for _, f := range fixed {
		if !f {
			n++
		}
	}
	return max(n, 1)
}

// StratumCount is one stratum of a stratified sample scored for one
// proportion: N units in the population, Labelled of them in the sample,
// Successes of those a success (e.g. the provider was right).
type StratumCount struct {
	Name      string
	N         int
	Labelled  int
	Successes int
}

// Estimate is a proportion (or a difference of two) estimated from a
// stratified sample, with its interval.
type Estimate struct {
	Value, Lo, Hi float64
	// Labels is the number of labelled units the estimate rests on;
	// Population the number of units it describes.
	Labels     int
	Population int
}

// ErrNoLabels is returned (wrapped) when a non-empty stratum has no
// labelled unit: the population's proportion is then not estimable.
var ErrNoLabels = errors.New("a non-empty stratum has no labels")

// effectiveN is the Wilson sample size that carries the finite-population
// correction of n draws without replacement from N: n(N−1)/(N−n);
// +Inf for a census.
func effectiveN(n, N int) float64 {
	if n >= N {
		return math.Inf(1)
	}
	return float64(n) * float64(N-1) / float64(N-n)
}

// WilsonF is the Wilson score interval of a proportion p observed on an
// effective sample of size n (which need not be a whole number; +Inf
// gives the point p). It equals Wilson(k, n, z) for p = k/n.
func WilsonF(p, n, z float64) (lo, hi float64) {
	if math.IsInf(n, 1) {
		return p, p
	}
	if n <= 0 {
		return 0, 1
	}
	z2 := z * z
	den := 1 + z2/n
	center := (p + z2/(2*n)) / den
	half := z / den * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Max(0, center-half), math.Min(1, center+half)
}

func checkStratum(name string, N, labelled int) error {
	switch {
	case N < 0 || labelled < 0:
		return fmt.Errorf("stratum %q: negative counts (N %d, labelled %d)", name, N, labelled)
	case labelled > N:
		return fmt.Errorf("stratum %q: %d labelled of a population of %d", name, labelled, N)
	case N > 0 && labelled == 0:
		return fmt.Errorf("stratum %q has %d units and no labels: %w", name, N, ErrNoLabels)
	}
	return nil
}

// StratifiedProportion estimates the population proportion Σ W_h p̂_h from
// a stratified sample with the MOVER-Wilson interval described above, at
// normal quantile z.
func StratifiedProportion(strata []StratumCount, z float64) (Estimate, error) {
	var e Estimate
	for _, s := range strata {
		if err := checkStratum(s.Name, s.N, s.Labelled); err != nil {
			return Estimate{}, err
		}
		if s.Successes < 0 || s.Successes > s.Labelled {
			return Estimate{}, fmt.Errorf("stratum %q: %d successes of %d labelled", s.Name, s.Successes, s.Labelled)
		}
		e.Population += s.N
		e.Labels += s.Labelled
	}
	if e.Population == 0 {
		return Estimate{}, errors.New("estimating a proportion: the population is empty")
	}
	var down, up float64
	for _, s := range strata {
		if s.N == 0 {
			continue
		}
		w := float64(s.N) / float64(e.Population)
		p := float64(s.Successes) / float64(s.Labelled)
		l, u := WilsonF(p, effectiveN(s.Labelled, s.N), z)
		e.Value += w * p
		down += w * w * (p - l) * (p - l)
		up += w * w * (u - p) * (u - p)
	}
	e.Lo = math.Max(0, e.Value-math.Sqrt(down))
	e.Hi = math.Min(1, e.Value+math.Sqrt(up))
	return e, nil
}

// StratumPairs is one stratum of a stratified sample on which two
// classifiers, A and B, were both scored: N units in the population and
// the labelled units' paired outcomes.
type StratumPairs struct {
	Name  string
	N     int
	Table Paired
	// Concordant says that A and B are right or wrong together on every
	// unit of the stratum by construction (they gave the same answer), so
	// the difference is exactly zero there and adds no width. A labelled
	// unit with only one of them right contradicts it: an error.
	Concordant bool
}

// PairedEstimate is what a stratified sample says about two classifiers
// scored on the same units: each one's accuracy and the difference B − A,
// each with its interval.
type PairedEstimate struct {
	A, B, Diff Estimate
}

// StratifiedPaired estimates A's and B's accuracy (StratifiedProportion)
// and the difference B − A with a MOVER interval over per-stratum
// Newcombe (method 10) intervals for paired proportions, each at the
// stratum's effective size n*_h:
//
//	d̂ = Σ W_h d̂_h,  L = d̂ − √(Σ W_h² (d̂_h − l_h)²),  U = d̂ + √(Σ W_h² (u_h − d̂_h)²)
//
// Concordant strata contribute d̂_h = 0 exactly.
func StratifiedPaired(strata []StratumPairs, z float64) (PairedEstimate, error) {
	ca := make([]StratumCount, len(strata))
	cb := make([]StratumCount, len(strata))
	for i, s := range strata {
		t := s.Table
		if t.Both < 0 || t.OnlyA < 0 || t.OnlyB < 0 || t.Neither < 0 {
			return PairedEstimate{}, fmt.Errorf("stratum %q: negative counts %+v", s.Name, t)
		}
		if s.Concordant && t.OnlyA+t.OnlyB > 0 {
			return PairedEstimate{}, fmt.Errorf("stratum %q is concordant by construction but %d labelled units have only one classifier right", s.Name, t.OnlyA+t.OnlyB)
		}
		ca[i] = StratumCount{s.Name, s.N, t.N(), t.Both + t.OnlyA}
		cb[i] = StratumCount{s.Name, s.N, t.N(), t.Both + t.OnlyB}
	}
	var out PairedEstimate
	var err error
	if out.A, err = StratifiedProportion(ca, z); err != nil {
		return PairedEstimate{}, err
	}
	if out.B, err = StratifiedProportion(cb, z); err != nil {
		return PairedEstimate{}, err
	}
	d := &out.Diff
	d.Labels, d.Population = out.A.Labels, out.A.Population
	var down, up float64
	for _, s := range strata {
		if s.N == 0 {
			continue
		}
		w := float64(s.N) / float64(d.Population)
		diff, l, u := newcombeF(s.Table, effectiveN(s.Table.N(), s.N), z)
		if s.Concordant {
			diff, l, u = 0, 0, 0
		}
		d.Value += w * diff
		down += w * w * (diff - l) * (diff - l)
		up += w * w * (u - diff) * (u - diff)
	}
	d.Lo = math.Max(-1, d.Value-math.Sqrt(down))
	d.Hi = math.Min(1, d.Value+math.Sqrt(up))
	return out, nil
}

// newcombeF is Newcombe's method 10 for B's rate minus A's (see
// Paired.DiffCI, which is newcombeF at the table's own count) with the
// marginal Wilson intervals taken at effective size ne; ne = +Inf (a
// census) gives the point.
func newcombeF(t Paired, ne, z float64) (diff, lo, hi float64) {
	n := t.N()
	if n == 0 {
		return 0, -1, 1
	}
	// Newcombe writes the difference as p1 − p2 with p1 the first
	// margin; here p1 is B's rate, p2 A's.
	r1, r2 := t.Both+t.OnlyB, t.OnlyA+t.Neither // B right, B wrong
	c1, c2 := t.Both+t.OnlyA, t.OnlyB+t.Neither // A right, A wrong
	nf := float64(n)
	p1, p2 := float64(r1)/nf, float64(c1)/nf
	diff = p1 - p2
	if math.IsInf(ne, 1) {
		return diff, diff, diff
	}
	l1, u1 := WilsonF(p1, ne, z)
	l2, u2 := WilsonF(p2, ne, z)
	psi := 0.0
	if r1 > 0 && r2 > 0 && c1 > 0 && c2 > 0 {
		prod := math.Sqrt(float64(r1) * float64(r2) * float64(c1) * float64(c2))
		// Rows are B right/wrong, columns A right/wrong: n11 = Both,
		// n12 = OnlyB, n21 = OnlyA, n22 = Neither.
		a := float64(t.Both)*float64(t.Neither) - float64(t.OnlyB)*float64(t.OnlyA)
		switch {
		case a > nf/2:
			psi = (a - nf/2) / prod
		case a < 0:
			psi = a / prod
		}
	}
	lo = diff - math.Sqrt(math.Max(0, (p1-l1)*(p1-l1)+(u2-p2)*(u2-p2)-2*psi*(p1-l1)*(u2-p2)))
	hi = diff + math.Sqrt(math.Max(0, (p2-l2)*(p2-l2)+(u1-p1)*(u1-p1)-2*psi*(p2-l2)*(u1-p1)))
	return diff, math.Max(-1, lo), math.Min(1, hi)
}
