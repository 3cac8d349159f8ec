package stats

import (
	"math"
	"testing"
)

// Reference vectors from REFERENCE.md. Its "1 of 10 → [0.0162318,
// 0.3773646]" is the Wilson interval of 1 of 11; 1 of 10 is
// [0.0178757, 0.4041564] (checked by hand from the formula).
func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{10, 100, 0.0552285, 0.1743673},
		{1, 11, 0.0162318, 0.3773646},
		{1, 10, 0.0178757, 0.4041564},
		{50, 100, 0.4038298, 0.5961702},
		{0, 100, 0, 0.0369948},
	} {
		lo, hi := Wilson(tc.k, tc.n, Z95)
		if math.Abs(lo-tc.lo) > 5e-7 || math.Abs(hi-tc.hi) > 5e-7 {
			t.Errorf("Wilson(%d, %d): got [%.7f, %.7f], want [%.7f, %.7f]", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}

func TestFit(t *testing.T) {
	l, err := FitMeanP99(180, 340)
	if err != nil || math.Abs(l.Mean()-180) > 1e-9 || math.Abs(l.AtZ(Z99One)-340) > 1e-9 {
		t.Errorf("mean/p99 fit: %+v mean %v p99 %v %v", l, l.Mean(), l.AtZ(Z99One), err)
	}
	l, err = FitMedianP99(250, 900)
	if err != nil || math.Abs(l.Median()-250) > 1e-9 || math.Abs(l.AtZ(Z99One)-900) > 1e-9 {
		t.Errorf("median/p99 fit: %+v", l)
	}
	if _, err := FitMeanP99(100, 100000); err == nil {
		t.Error("impossible fit accepted")
	}
}

// McNemar by hand and from a published example. Fagerland, Lydersen and
// Laake (2013, BMC Med Res Methodol 13:91), airway hyper-responsiveness
// before and after stem cell transplantation (Bentur et al. 2009): b = 1,
// c = 7 gives an exact p of 0.0703 and a mid-p of 0.0391.
func TestMcNemar(t *testing.T) {
	for _, tc := range []struct {
		b, c    int
		p, midP float64
	}{
		{1, 7, 18.0 / 256, 10.0 / 256}, // 2·(1+8)/2^8; minus 8/2^8
		{7, 1, 18.0 / 256, 10.0 / 256}, // symmetric
		{0, 0, 1, 1},
		{5, 5, 1, 1},               // 2·P(X≤5; 10) = 1.246… capped
		{0, 4, 2.0 / 16, 1.0 / 16}, // 2·(1/16); minus 1/16
		{3, 10, 2 * 378.0 / 8192, 2*378.0/8192 - 286.0/8192}, // P(X≤3; 13) = (1+13+78+286)/2^13
	} {
		p, mid := McNemar(tc.b, tc.c)
		if math.Abs(p-tc.p) > 1e-12 || math.Abs(mid-tc.midP) > 1e-12 {
			t.Errorf("McNemar(%d, %d) = %.6f, %.6f; want %.6f, %.6f", tc.b, tc.c, p, mid, tc.p, tc.midP)
		}
	}
	if p, mid := McNemar(1, 7); math.Abs(p-0.0703) > 5e-5 || math.Abs(mid-0.0391) > 5e-5 {
		t.Errorf("Bentur example: p %.4f mid-p %.4f, want 0.0703 and 0.0391", p, mid)
	}
}

// Newcombe's square-and-add interval, against the published example in
// Fagerland, Lydersen and Laake, Statistical Analysis of Contingency
// Tables (2017), ch. 8: complete response before and after consolidation
// therapy (Cavo et al. 2012), table [[59, 6], [16, 80]]: estimate −0.0621,
// 95 % CI −0.1186 to −0.0046.
func TestPairedDiffCI(t *testing.T) {
	// Rows: before right/wrong (A); columns: after (B). Their estimate is
	// p(before) − p(after) = (6 − 16)/161; DiffCI gives B − A, so negate.
	tab := Paired{Both: 59, OnlyA: 6, OnlyB: 16, Neither: 80}
	d, lo, hi := tab.DiffCI(Z975)
	if math.Abs(-d-(-0.0621)) > 5e-5 || math.Abs(-hi-(-0.1186)) > 5e-5 || math.Abs(-lo-(-0.0046)) > 5e-5 {
		t.Errorf("Cavo example: got %.4f [%.4f, %.4f] (negated), want -0.0621 [-0.1186, -0.0046]", -d, -hi, -lo)
	}
	// Symmetry: swapping A and B mirrors the interval.
	sw := Paired{Both: 59, OnlyA: 16, OnlyB: 6, Neither: 80}
	d2, lo2, hi2 := sw.DiffCI(Z975)
	if math.Abs(d2+d) > 1e-12 || math.Abs(lo2+hi) > 1e-12 || math.Abs(hi2+lo) > 1e-12 {
		t.Errorf("swap: got %v [%v, %v], want the mirror of %v [%v, %v]", d2, lo2, hi2, d, lo, hi)
	}
	if _, lo, hi := (Paired{}).DiffCI(Z95); lo != -1 || hi != 1 {
		t.Errorf("empty table: [%v, %v], want [-1, 1]", lo, hi)
	}
	// Identical classifiers: a zero-width difference at 0 is not claimed;
	// the interval still has width from the margins' uncertainty.
	if d, lo, hi := (Paired{Both: 90, Neither: 10}).DiffCI(Z95); d != 0 || lo > 0 || hi < 0 {
		t.Errorf("identical: %v [%v, %v]", d, lo, hi)
	}
}

func TestQuantileRanks(t *testing.T) {
	// n = 1000, q = 0.99: np = 990, sd = √9.9 = 3.146; 990 ∓ 6.17.
	lo, hi, ok := QuantileRanks(1000, 0.99, Z95)
	if lo != 983 || hi != 998 || !ok {
		t.Errorf("QuantileRanks(1000, .99) = %d, %d, %v; want 983, 998, true", lo, hi, ok)
	}
	if _, _, ok := QuantileRanks(50, 0.99, Z95); ok {
		t.Error("50 samples cannot bound a p99 from above")
	}
}

func TestBinom(t *testing.T) {
	if got := BinomPMF(3, 10, 0.5); math.Abs(got-120.0/1024) > 1e-12 {
		t.Errorf("BinomPMF(3,10,.5) = %v, want %v", got, 120.0/1024)
	}
	if got := BinomCDF(10, 10, 0.3); got != 1 {
		t.Errorf("BinomCDF(n, n) = %v", got)
	}
}
