// Package stats holds the small statistical tools several packages share:
// Wilson score intervals and log-normal fitting.
package stats

import (
	"errors"
	"math"
)

// Z95 and Z99 are the two-sided normal quantiles for 95 % and 99 %. Z95 is
// the conventional 1.96 (not 1.95996…), which is what published Wilson
// tables and REFERENCE.md's vectors use.
const (
	Z95 = 1.96
	Z99 = 2.5758293035489004
	// Z99One is the one-sided 99th percentile of the standard normal.
	Z99One = 2.3263478740408408
)

// Wilson returns the Wilson score interval for k successes in n trials at
// normal quantile z. n = 0 gives [0, 1].
func Wilson(k, n int, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	z2 := z * z
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return math.Max(0, center-half), math.Min(1, center+half)
}

// LogNormal is a log-normal distribution: exp(Mu + Sigma·N(0,1)).
type LogNormal struct{ Mu, Sigma float64 }

// FitMedianP99 fits a log-normal to its median and 99th percentile.
func FitMedianP99(median, p99 float64) (LogNormal, error) {
	if median <= 0 || p99 <= median {
		return LogNormal{}, errors.New("need 0 < median < p99")
	}
	mu := math.Log(median)
	return LogNormal{Mu: mu, Sigma: (math.Log(p99) - mu) / Z99One}, nil
}

// FitMeanP99 fits a log-normal to its mean and 99th percentile:
// mean = e^(μ+σ²/2), p99 = e^(μ+zσ) give σ²/2 − zσ + ln(p99/mean) = 0.
func FitMeanP99(mean, p99 float64) (LogNormal, error) {
	if mean <= 0 || p99 <= mean {
		return LogNormal{}, errors.New("need 0 < mean < p99")
	}
	c := math.Log(p99 / mean)
	disc := Z99One*Z99One - 2*c
	if disc < 0 {
		return LogNormal{}, errors.New("no log-normal has this mean and p99")
	}
	s := Z99One - math.Sqrt(disc)
	return LogNormal{Mu: math.Log(mean) - s*s/2, Sigma: s}, nil
}

// Median is e^μ.
func (l LogNormal) Median() float64 { return math.Exp(l.Mu) }

// Mean is e^(μ+σ²/2).
func (l LogNormal) Mean() float64 { return math.Exp(l.Mu + l.Sigma*l.Sigma/2) }

// Quantile returns the q-quantile (0<q<1) for a standard normal quantile z.
func (l LogNormal) AtZ(z float64) float64 { return math.Exp(l.Mu + l.Sigma*z) }

// Sample maps a standard normal draw to the distribution.
func (l LogNormal) Sample(normal float64) float64 { return math.Exp(l.Mu + l.Sigma*normal) }
