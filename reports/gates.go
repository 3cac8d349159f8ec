package reports

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover/cutover/config"
)

// evaluate judges the configured gates on the candidate and sets the verdict.
func evaluate(r *Report, g config.Gates, cfg *config.Config) {
	r.Gates = []GateResult{}
	if cfg == nil || !g.Any() {
		r.Verdict, r.VerdictReason = Inconclusive, "no gates are configured (gates: in the config)"
		return
	}
	cand := r.Provider(r.Candidate)
	if cand == nil {
		r.Verdict = Inconclusive
		r.VerdictReason = fmt.Sprintf("the candidate %q has no observations in these runs", r.Candidate)
		return
	}
	min := g.MinSamples
	// judge says PASS when the whole interval is on the good side of the
	// threshold, FAIL when it is wholly on the bad side.
	judge := func(gr GateResult, lowerIsBetter bool) GateResult {
		switch {
		case gr.N < min:
			gr.Status, gr.Note = Inc, fmt.Sprintf("%d samples, fewer than min_samples %d", gr.N, min)
		case lowerIsBetter && gr.Hi <= gr.Threshold, !lowerIsBetter && gr.Lo >= gr.Threshold:
			gr.Status = Pass
		case lowerIsBetter && gr.Lo > gr.Threshold, !lowerIsBetter && gr.Hi < gr.Threshold:
			gr.Status = Fail
		default:
			gr.Status, gr.Note = Inc, "the 95 % interval straddles the threshold: more samples needed"
		}
		return gr
	}
	if g.P99Latency > 0 {
		l := cand.Latency
		thr := ms(int64(g.P99Latency))
		gr := GateResult{Name: "p99_latency", Description: fmt.Sprintf("candidate p99 ≤ %s", g.P99Latency),
			Value: l.P99, Lo: l.P99Lo, Hi: l.P99Hi, Threshold: thr, Unit: "ms", N: int(l.Count)}
		gr = judge(gr, true)
		if gr.Status != Fail && !l.P99Bounded && gr.N >= min {
			gr.Status, gr.Note = Inc, "too few samples to bound p99 from above"
		}
		r.Gates = append(r.Gates, gr)
	}
	if g.ErrorRate != nil {
		e := cand.ErrorRate
		r.Gates = append(r.Gates, judge(GateResult{Name: "error_rate", Description: fmt.Sprintf("candidate error rate ≤ %s", pct(g.ErrorRate.F())),
			Value: e.Value, Lo: e.Lo, Hi: e.Hi, Threshold: g.ErrorRate.F(), Unit: "share", N: e.N}, true))
	}
	groups := make([]string, 0, len(g.Misclassification))
	for k := range g.Misclassification {
		groups = append(groups, k)
	}
	sort.Strings(groups)
	for _, grp := range groups {
		thr := g.Misclassification[grp].F()
		gr := GateResult{Name: "misclassification." + grp, Description: fmt.Sprintf("candidate %s misclassification ≤ %s", grp, pct(thr)),
			Threshold: thr, Unit: "share"}
		if cand.Accuracy != nil {
			for _, m := range cand.Accuracy.Misclassification {
				if m.Group == grp {
					gr.Value, gr.Lo, gr.Hi, gr.N = m.Rate.Value, m.Rate.Lo, m.Rate.Hi, m.Rate.N
				}
			}
		}
		gr = judge(gr, true)
		if gr.N == 0 {
			gr.Note = "no labelled " + grp + " images were answered by the candidate"
		}
		r.Gates = append(r.Gates, gr)
	}
	if g.AccuracyMargin != nil {
		m := g.AccuracyMargin.F()
		gr := GateResult{Name: "accuracy_difference", Threshold: -m, Unit: "share",
			Description: fmt.Sprintf("candidate − %s top-1 accuracy ≥ −%s (non-inferiority, on the interval's lower bound)", r.Baseline, pct(m))}
		found := false
		for _, p := range r.Paired {
			if p.B == r.Candidate {
				gr.Value, gr.Lo, gr.Hi, gr.N, found = p.Diff, p.DiffLo, p.DiffHi, p.N, true
			}
		}
		gr = judge(gr, false)
		if !found {
			gr.Note = "no labelled images answered by both providers"
		}
		r.Gates = append(r.Gates, gr)
	}
	if g.TrafficAccuracyMargin != nil {
		m := g.TrafficAccuracyMargin.F()
		gr := GateResult{Name: "traffic_accuracy_difference", Threshold: -m, Unit: "share",
			Description: fmt.Sprintf("candidate − primary top-1 accuracy on the recorded traffic ≥ −%s (labelled sample, weighted; on the interval's lower bound)", pct(m))}
		switch t := r.TrafficAccuracy; {
		case t == nil:
			gr.Status, gr.Note = Inc, "no estimate from a labelled sample of the traffic (cutover label, then cutover report --labels DIR)"
		case t.Difference.B != r.Candidate:
			gr.Status, gr.Note = Inc, fmt.Sprintf("the labelled sample compares %s with %s, not the candidate %s", t.Difference.B, t.Difference.A, r.Candidate)
		default:
			d := t.Difference
			gr.Value, gr.Lo, gr.Hi, gr.N = d.Value, d.Lo, d.Hi, t.Labelled
			gr = judge(gr, false)
		}
		r.Gates = append(r.Gates, gr)
	}
	if g.MonthlyCostUSD != nil {
		gr := GateResult{Name: "monthly_cost", Threshold: *g.MonthlyCostUSD, Unit: "USD",
			Description: fmt.Sprintf("candidate monthly cost ≤ %s USD at %s images a day", money(*g.MonthlyCostUSD), thousands(r.Settings["daily_volume"]))}
		if c := cand.Cost; c != nil {
			gr.Value, gr.Lo, gr.Hi, gr.N = c.MonthlyUSD, c.MonthlyLoUSD, c.MonthlyHiUSD, cand.Calls
			if c.Basis == "tiers" {
				gr.N = max(cand.Calls, min) // a list price is not a sample
			}
			gr = judge(gr, true)
		} else {
			gr.Status, gr.Note = Inc, "the candidate has no price (pricing: or models: in the config)"
		}
		r.Gates = append(r.Gates, gr)
	}
	if g.MirroredCoverage != nil {
		thr := g.MirroredCoverage.F()
		gr := GateResult{Name: "mirrored_coverage", Description: fmt.Sprintf("mirrored share of classification calls ≥ %s", pct(thr)),
			Threshold: thr, Unit: "share"}
		if c := r.Coverage; c != nil {
			// Coverage is a count of what happened, not an estimate: it
			// is judged on its value.
			gr.Value, gr.Lo, gr.Hi, gr.N = c.Rate.Value, c.Rate.Value, c.Rate.Value, c.Rate.N
			gr = judge(gr, false)
		} else {
			gr.Status, gr.Note = Inc, "no proxy run: coverage applies to shadow traffic"
		}
		r.Gates = append(r.Gates, gr)
	}
	var failed, inc []string
	for _, gr := range r.Gates {
		switch gr.Status {
		case Fail:
			failed = append(failed, gr.Name)
		case Inc:
			inc = append(inc, gr.Name)
		}
	}
	switch {
	case len(failed) > 0:
		r.Verdict, r.VerdictReason = NoGo, "failed: "+strings.Join(failed, ", ")
	case len(inc) > 0:
		r.Verdict, r.VerdictReason = Inconclusive, "inconclusive: "+strings.Join(inc, ", ")
	default:
		r.Verdict, r.VerdictReason = Go, fmt.Sprintf("all %d gates pass", len(r.Gates))
	}
}
