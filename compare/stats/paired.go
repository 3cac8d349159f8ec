package stats

import "math"

// BinomPMF is P(X = k) for X ~ Binomial(n, p).
func BinomPMF(k, n int, p float64) float64 {
	if k < 0 || k > n {
		return 0
	}
	if p == 0 || p == 1 {
		if (p == 0 && k == 0) || (p == 1 && k == n) {
			return 1
		}
		return 0
	}
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// BinomCDF is P(X ≤ k) for X ~ Binomial(n, p), summed term by term (exact
// to rounding for the discordant counts a report sees).
func BinomCDF(k, n int, p float64) float64 {
	if k < 0 {
		return 0
	}
	if k >= n {
		return 1
	}
	s := 0.0
	for i := 0; i <= k; i++ {
		s += BinomPMF(i, n, p)
	}
	return math.Min(s, 1)
}

// McNemar is the exact conditional McNemar test of a paired 2×2 table from
// its discordant counts b and c: p = 2·P(X ≤ min(b,c)) for X ~ Bin(b+c, ½),
// capped at 1, and the mid-p value, which subtracts P(X = min(b,c)) and is
// less conservative (Fagerland, Lydersen and Laake 2013 recommend it).
// b + c = 0 gives p = midP = 1.
func McNemar(b, c int) (p, midP float64) {
	n := b + c
	if n == 0 {
		return 1, 1
	}
	k := min(b, c)
	p = math.Min(1, 2*BinomCDF(k, n, 0.5))
	midP = math.Min(1, 2*BinomCDF(k, n, 0.5)-BinomPMF(k, n, 0.5))
	return p, midP
}

// Paired is a paired 2×2 table of two classifiers on the same items:
// Both right, only A right, only B right, Neither right.
type Paired struct {
	Both, OnlyA, OnlyB, Neither int
}

// N is the number of pairs.
func (t Paired) N() int { return t.Both + t.OnlyA + t.OnlyB + t.Neither }

// DiffCI returns the difference of B's and A's success rates,
// (OnlyB − OnlyA)/N, with Newcombe's square-and-add interval for paired
// proportions (Newcombe 1998, method 10): Wilson intervals for each
// marginal rate combined with the correlation φ of the pairs, corrected
// towards zero by N/2 when positive. It is the interval Fagerland,
// Lydersen and Laake (Statistical Analysis of Contingency Tables, ch. 8)
// compute; N = 0 gives [−1, 1].
func (t Paired) DiffCI(z float64) (diff, lo, hi float64) {
	return newcombeF(t, float64(t.N()), z)
}

// QuantileRanks returns the 1-based ranks of the order statistics that
// bound a distribution-free confidence interval for the q-quantile of n
// samples (the binomial normal approximation, as in Conover's Practical
// Nonparametric Statistics): the true quantile lies between the lo-th and
// the hi-th smallest sample with about the coverage of z. ok is false when
// n is too small for the interval to have two sides inside the sample,
// which a report shows as an open interval.
func QuantileRanks(n int, q, z float64) (lo, hi int, ok bool) {
	if n <= 0 {
		return 0, 0, false
	}
	nf := float64(n)
	sd := math.Sqrt(nf * q * (1 - q))
	l := math.Floor(nf*q - z*sd)
	u := math.Ceil(nf*q+z*sd) + 1
	ok = l >= 1 && u <= nf
	lo = int(math.Max(1, l))
	hi = int(math.Min(nf, u))
	return lo, hi, ok
}

// MeanCI is the normal-approximation interval of a mean from its count,
// sum and sum of squares.
func MeanCI(n int, sum, sumSq, z float64) (mean, lo, hi float64) {
	if n == 0 {
		return 0, 0, 0
	}
	nf := float64(n)
	mean = sum / nf
	if n < 2 {
		return mean, mean, mean
	}
	v := math.Max(0, (sumSq-nf*mean*mean)/(nf-1))
	h := z * math.Sqrt(v/nf)
	return mean, mean - h, mean + h
}

// Z975 is the exact two-sided 95 % normal quantile, for comparisons with
// software that uses qnorm(0.975) rather than 1.96.
const Z975 = 1.959963984540054
