package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cutover/cutover/compare"
)

// pct formats a share as a percentage with up to two decimals.
func pct(v float64) string {
	s := strconv.FormatFloat(100*v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " %"
}

// pct1 formats a share with one decimal, always.
func pct1(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) }

func money(v float64) string {
	if v >= 100 {
		return thousands(math.Round(v))
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func msf(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// rateStr is "12.3 % [10.1, 14.8]".
func rateStr(r Rate) string {
	if r.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%s [%.1f, %.1f]", pct1(r.Value), 100*r.Lo, 100*r.Hi)
}

// estimateStr is "12.3 % [10.1, 14.8]" for a weighted estimate.
func estimateStr(e compare.Estimate) string {
	return fmt.Sprintf("%s [%.1f, %.1f]", pct1(e.Value), 100*e.Lo, 100*e.Hi)
}

// gateValue formats a gate's value, interval and threshold in its unit.
func gateValue(g GateResult) (value, interval, threshold string) {
	switch g.Unit {
	case "ms":
		return msf(g.Value) + " ms", fmt.Sprintf("[%s, %s]", msf(g.Lo), msf(g.Hi)), msf(g.Threshold) + " ms"
	case "USD":
		return money(g.Value) + " USD", fmt.Sprintf("[%s, %s]", money(g.Lo), money(g.Hi)), money(g.Threshold) + " USD"
	}
	return fmt.Sprintf("%.2f %%", 100*g.Value), fmt.Sprintf("[%.2f, %.2f]", 100*g.Lo, 100*g.Hi), pct(g.Threshold)
}
