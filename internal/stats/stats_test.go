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
