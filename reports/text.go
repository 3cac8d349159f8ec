package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/internal/table"
)

// JSON writes the report as indented JSON (the schema is Report's).
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Term writes the report for a terminal: the verdict first, then tables.
func Term(w io.Writer, r *Report) error { return text(w, r, false) }

// Markdown writes the report for a pull request or wiki page.
func Markdown(w io.Writer, r *Report) error { return text(w, r, true) }

type section struct {
	title  string
	header []string
	rows   [][]string
}

func text(w io.Writer, r *Report, md bool) error {
	ew := &errWriter{w: w}
	if md {
		fmt.Fprintf(ew, "# cutover report: %s\n\n", r.Verdict)
		fmt.Fprintf(ew, "**%s** — %s. Candidate **%s** against baseline **%s**.\n\n", r.Verdict, r.VerdictReason, r.Candidate, r.Baseline)
	} else {
		fmt.Fprintf(ew, "VERDICT: %s (%s)\ncandidate %s against baseline %s\n\n", r.Verdict, r.VerdictReason, r.Candidate, r.Baseline)
	}
	for _, s := range sections(r) {
		if len(s.rows) == 0 {
			continue
		}
		if md {
			fmt.Fprintf(ew, "## %s\n\n", s.title)
		} else {
			fmt.Fprintf(ew, "%s\n", strings.ToUpper(s.title))
		}
		if ew.err == nil {
			ew.err = table.Render(ew, s.header, s.rows, md)
		}
		fmt.Fprintln(ew)
	}
	if len(r.Notes) > 0 {
		if md {
			fmt.Fprint(ew, "## Notes\n\n")
		} else {
			fmt.Fprintln(ew, "NOTES")
		}
		for _, n := range r.Notes {
			fmt.Fprintf(ew, "- %s\n", n)
		}
		fmt.Fprintln(ew)
	}
	var runs []string
	for _, ri := range r.Runs {
		runs = append(runs, fmt.Sprintf("%s (%s %s)", ri.Path, ri.Kind, ri.Mode))
	}
	fmt.Fprintf(ew, "%s observations from %s; hours in %s; intervals are 95 %%.\n", thousands(float64(r.Observations)), strings.Join(runs, ", "), r.TimeZone)
	fmt.Fprintln(ew, countingLine)
	return ew.err
}

// countingLine states the counting rule of accuracy in every text format.
const countingLine = "Accuracy and paired accuracy count each labelled image once per provider, by its first answer; repeats count in self-agreement."

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// sections are the tables every text format shows, in order.
func sections(r *Report) []section {
	var out []section
	gates := section{title: "Gates", header: []string{"gate", "status", "value", "95 % interval", "threshold", "n", "note"}}
	for _, g := range r.Gates {
		v, iv, th := gateValue(g)
		gates.rows = append(gates.rows, []string{g.Description, g.Status, v, iv, th, thousands(float64(g.N)), g.Note})
	}
	out = append(out, gates)

	prov := section{title: "Providers", header: []string{"provider", "role", "calls", "error rate", "p50 ms", "p90 ms", "p99 ms [95 %]", "p99.9 ms", "max ms", "top-1 accuracy", "labelled images (calls)"}}
	for _, p := range r.Providers {
		acc, imgs := "–", "–"
		if p.Accuracy != nil {
			acc = rateStr(p.Accuracy.Top1)
			imgs = fmt.Sprintf("%s (%s)", thousands(float64(p.Accuracy.Images)), thousands(float64(p.Accuracy.Calls)))
		}
		l := p.Latency
		p99 := fmt.Sprintf("%s [%s, %s]", msf(l.P99), msf(l.P99Lo), msf(l.P99Hi))
		if !l.P99Bounded {
			p99 = fmt.Sprintf("%s [%s, –]", msf(l.P99), msf(l.P99Lo))
		}
		prov.rows = append(prov.rows, []string{p.Name, p.Role, thousands(float64(p.Calls)), rateStr(p.ErrorRate),
			msf(l.P50), msf(l.P90), p99, msf(l.P999), msf(l.Max), acc, imgs})
	}
	out = append(out, prov)
	out = append(out, trafficSections(r)...)

	ne := section{title: "Not expressible (left out of accuracy, not the provider's errors)", header: []string{"provider", "label", "images", ""}}
	for _, p := range r.Providers {
		if p.Accuracy == nil || p.Accuracy.NotExpressible == nil {
			continue
		}
		x := p.Accuracy.NotExpressible
		why := "not expressible by " + x.Format
		for _, c := range x.Categories {
			ne.rows = append(ne.rows, []string{p.Name, "category " + c.Category, thousands(float64(c.Images)), why})
		}
		for _, a := range x.Attributes {
			ne.rows = append(ne.rows, []string{p.Name, a.Kind + " " + a.Value, thousands(float64(a.Images)), why})
		}
	}
	out = append(out, ne)

	mis := section{title: "Misclassification by group", header: []string{"group"}}
	groups := map[string]map[string]Rate{}
	var gnames []string
	for _, p := range r.Providers {
		if p.Accuracy == nil {
			continue
		}
		mis.header = append(mis.header, p.Name)
		for _, g := range p.Accuracy.Misclassification {
			if groups[g.Group] == nil {
				groups[g.Group] = map[string]Rate{}
				gnames = append(gnames, g.Group)
			}
			groups[g.Group][p.Name] = g.Rate
		}
	}
	for _, g := range gnames {
		row := []string{g}
		for _, p := range r.Providers {
			if p.Accuracy != nil {
				row = append(row, rateStr(groups[g][p.Name]))
			}
		}
		mis.rows = append(mis.rows, row)
	}
	out = append(out, mis)

	attr := section{title: "Attribute accuracy", header: append([]string{"kind"}, mis.header[1:]...)}
	for _, k := range compare.Kinds() {
		row, any := []string{string(k)}, false
		for _, p := range r.Providers {
			if p.Accuracy == nil {
				continue
			}
			cell := "–"
			for _, a := range p.Accuracy.Attributes {
				if a.Kind == string(k) {
					cell, any = rateStr(a.Rate), true
				}
			}
			row = append(row, cell)
		}
		if any {
			attr.rows = append(attr.rows, row)
		}
	}
	out = append(out, attr)

	avg := section{title: "Category metrics (scikit-learn averages)", header: []string{"provider", "micro P/R/F1", "macro P", "macro R", "macro F1", "weighted P", "weighted R", "weighted F1", "categories"}}
	for _, p := range r.Providers {
		if a := p.Accuracy; a != nil {
			avg.rows = append(avg.rows, []string{p.Name, fmt.Sprintf("%.3f", a.Micro.F1), fmt.Sprintf("%.3f", a.Macro.Precision),
				fmt.Sprintf("%.3f", a.Macro.Recall), fmt.Sprintf("%.3f", a.Macro.F1), fmt.Sprintf("%.3f", a.Weighted.Precision),
				fmt.Sprintf("%.3f", a.Weighted.Recall), fmt.Sprintf("%.3f", a.Weighted.F1), fmt.Sprint(len(a.PerCategory))})
		}
	}
	out = append(out, avg)

	paired := section{title: "Paired accuracy (same images)", header: []string{"baseline → other", "n", "both", "only baseline (b)", "only other (c)", "neither", "difference [95 % Newcombe]", "McNemar p", "mid-p", "calls", "not expressible"}}
	for _, p := range r.Paired {
		paired.rows = append(paired.rows, []string{p.A + " → " + p.B, thousands(float64(p.N)), fmt.Sprint(p.Both), fmt.Sprint(p.OnlyA),
			fmt.Sprint(p.OnlyB), fmt.Sprint(p.Neither), fmt.Sprintf("%+.2f pts [%+.2f, %+.2f]", 100*p.Diff, 100*p.DiffLo, 100*p.DiffHi),
			pval(p.McNemarP), pval(p.McNemarMidP), thousands(float64(p.Calls)), thousands(float64(p.NotExpressible))})
	}
	out = append(out, paired)

	ag := section{title: "Agreement", header: []string{"pair", "pairs", "top-1", "top-k Jaccard", "color", "pattern", "material", "style"}}
	for _, a := range r.Agreement {
		row := []string{a.A + " ↔ " + a.B, thousands(float64(a.Pairs)), rateStr(a.Top1),
			fmt.Sprintf("%.3f [%.3f, %.3f] (k=%d)", a.TopKJaccard.Value, a.TopKJaccard.Lo, a.TopKJaccard.Hi, a.TopK)}
		for _, k := range compare.Kinds() {
			cell := "–"
			for _, x := range a.Attributes {
				if x.Kind == string(k) {
					cell = rateStr(x.Rate)
				}
			}
			row = append(row, cell)
		}
		ag.rows = append(ag.rows, row)
	}
	out = append(out, ag)

	mt := section{title: "Top-1 agreement at matched confidence", header: []string{"pair", "each keeps", "threshold a", "threshold b", "pairs kept", "top-1 agreement"}}
	for _, a := range r.Agreement {
		for _, m := range a.Matched {
			mt.rows = append(mt.rows, []string{a.A + " ↔ " + a.B, pct(m.Keep), fmt.Sprintf("%.3f", m.ThresholdA), fmt.Sprintf("%.3f", m.ThresholdB),
				thousands(float64(m.Top1.N)), rateStr(m.Top1)})
		}
	}
	out = append(out, mt)

	self := section{title: "Self-agreement (noise floor, repeats of the same image)", header: []string{"provider", "repeats compared", "same top-1"}}
	for _, p := range r.Providers {
		if p.SelfAgreement != nil {
			self.rows = append(self.rows, []string{p.Name, thousands(float64(p.SelfAgreement.N)), rateStr(*p.SelfAgreement)})
		}
	}
	out = append(out, self)

	errs := section{title: "Errors by typed code", header: []string{"provider", "code", "calls", "share [95 %]"}}
	for _, p := range r.Providers {
		for _, e := range p.Errors {
			errs.rows = append(errs.rows, []string{p.Name, e.Code, thousands(float64(e.Rate.K)), rateStr(e.Rate)})
		}
	}
	out = append(out, errs)

	cost := section{title: "Cost (USD)", header: []string{"provider", "basis", "per 1,000 calls", "per 1,000 USD", "monthly USD [95 %]", "per correct tag", "spent in runs"}}
	for _, p := range r.Providers {
		c := p.Cost
		if c == nil {
			continue
		}
		per := fmt.Sprintf("%.4f %s", c.Per1000, c.Currency)
		if c.Basis == "tiers" {
			per += " (" + tiersStr(c.Tiers) + ")"
		}
		pc := "–"
		if c.PerCorrectTagUSD > 0 {
			pc = fmt.Sprintf("%.5f", c.PerCorrectTagUSD)
		}
		cost.rows = append(cost.rows, []string{p.Name, c.Basis, per, fmt.Sprintf("%.4f", c.Per1000USD),
			fmt.Sprintf("%s [%s, %s]", money(c.MonthlyUSD), money(c.MonthlyLoUSD), money(c.MonthlyHiUSD)), pc, fmt.Sprintf("%.4f", c.SpentUSD)})
	}
	out = append(out, cost)

	hours := section{title: "p99 latency by hour of day (" + r.TimeZone + ")", header: []string{"hour"}}
	byHour := map[int][]string{}
	var hs []int
	for i, p := range r.Providers {
		hours.header = append(hours.header, p.Name+" p50 / p99 ms (n)")
		for _, h := range p.ByHour {
			if byHour[h.Hour] == nil {
				byHour[h.Hour] = make([]string, len(r.Providers))
				hs = append(hs, h.Hour)
			}
			byHour[h.Hour][i] = fmt.Sprintf("%s / %s (%s)", msf(h.P50), msf(h.P99), thousands(float64(h.Count)))
		}
	}
	sort.Ints(hs)
	for _, h := range hs {
		hours.rows = append(hours.rows, append([]string{fmt.Sprintf("%02d:00", h)}, byHour[h]...))
	}
	out = append(out, hours)

	if c := r.Coverage; c != nil {
		cov := section{title: "Shadow coverage", header: []string{"seen", "classification calls", "mirrored", "mirrored share", "skipped"}}
		var sk []string
		for k, v := range c.Skipped {
			if v > 0 {
				sk = append(sk, fmt.Sprintf("%s %s", k, thousands(float64(v))))
			}
		}
		sort.Strings(sk)
		cov.rows = [][]string{{thousands(float64(c.Seen)), thousands(float64(c.Classify)), thousands(float64(c.Mirrored)), rateStr(c.Rate), strings.Join(sk, ", ")}}
		out = append(out, cov)
	}

	tl := section{title: "Timeline", header: []string{"time (UTC)", "event", "detail"}}
	for _, e := range r.Timeline {
		tl.rows = append(tl.rows, []string{e.Time.UTC().Format("2006-01-02 15:04:05"), e.Kind, e.Detail})
	}
	out = append(out, tl)
	return out
}

func pval(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return fmt.Sprintf("%.4f", p)
}

func tiersStr(ts []Tier) string {
	var s []string
	for _, t := range ts {
		if t.UpTo > 0 {
			s = append(s, fmt.Sprintf("≤%s: %.2f", thousands(float64(t.UpTo)), t.Per1000))
		} else {
			s = append(s, fmt.Sprintf("then %.2f", t.Per1000))
		}
	}
	return strings.Join(s, ", ")
}

// trafficSections are accuracy on the recorded traffic, estimated from a
// labelled sample (none without one), and the sample by stratum.
func trafficSections(r *Report) []section {
	t := r.TrafficAccuracy
	if t == nil {
		return nil
	}
	acc := section{title: "Accuracy on the recorded traffic (labelled sample, weighted by stratum)",
		header: []string{"provider", "role", "top-1 accuracy [95 %]", "labels", "images described"}}
	for _, p := range t.Providers {
		acc.rows = append(acc.rows, []string{p.Name, p.Role, estimateStr(p.Accuracy), thousands(float64(t.Labelled)), thousands(float64(t.Population))})
	}
	d := t.Difference
	acc.rows = append(acc.rows, []string{d.B + " − " + d.A, "difference",
		fmt.Sprintf("%+.2f pts [%+.2f, %+.2f]", 100*d.Value, 100*d.Lo, 100*d.Hi), thousands(float64(t.Labelled)), thousands(float64(t.Population))})
	strata := section{title: "Labelled sample by stratum (answers of each image's first pair)",
		header: []string{"stratum", "images", "sampled", "labelled", "both right", "only " + d.A, "only " + d.B, "neither"}}
	for _, s := range t.Strata {
		strata.rows = append(strata.rows, []string{s.Name, thousands(float64(s.Population)), thousands(float64(s.Sampled)),
			thousands(float64(s.Labelled)), fmt.Sprint(s.Both), fmt.Sprint(s.OnlyA), fmt.Sprint(s.OnlyB), fmt.Sprint(s.Neither)})
	}
	return []section{acc, strata}
}
