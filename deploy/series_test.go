package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/cutover/cutover/proxy"
)

// catalogue is every series a query may name, with the labels it carries:
// the proxy's (proxy.MetricNames, labels from docs/metrics.md, which a
// proxy test checks against the same registry), the series Prometheus
// makes itself, and the series the rules record.
type catalogue map[string]labelSet

type labelSet map[string]bool

func (s labelSet) sorted() []string {
	out := make([]string, 0, len(s))
	for l := range s {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// docRow is a table row of docs/metrics.md: name, type, labels.
var docRow = regexp.MustCompile("^\\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \\| (\\w+) \\| ([^|]*) \\|")

// proxyCatalogue is the series a proxy serves, with their labels.
func proxyCatalogue(t *testing.T) catalogue {
	t.Helper()
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	type family struct {
		typ    string
		labels []string
	}
	fams := map[string]family{}
	// The tables generated from the registry follow the marker.
	_, gen, ok := strings.Cut(string(b), "<!-- Generated from the proxy's registry")
	if !ok {
		t.Fatal("docs/metrics.md has no generated tables")
	}
	for _, l := range strings.Split(gen, "\n") {
		m := docRow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var ls []string
		for _, f := range strings.Split(m[3], ",") {
			if f = strings.Trim(strings.TrimSpace(f), "`"); f != "" {
				ls = append(ls, f)
			}
		}
		fams[m[1]] = family{m[2], ls}
	}
	c := catalogue{}
	for _, name := range proxy.MetricNames() {
		fam, suffix := name, ""
		if _, ok := fams[name]; !ok {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, s); ok {
					fam, suffix = base, s
				}
			}
		}
		f, ok := fams[fam]
		if !ok {
			t.Fatalf("the proxy exports %s but docs/metrics.md does not list it (go test ./proxy -run TestMetricsDoc -update)", name)
		}
		ls := labelSet{}
		for _, l := range append(slices.Clone(targetLabels), f.labels...) {
			ls[l] = true
		}
		switch {
		case suffix == "_bucket" && f.typ == "histogram":
			ls["le"] = true
		case suffix == "" && f.typ == "summary":
			ls["quantile"] = true
		}
		c[name] = ls
	}
	// Prometheus's own series for every target.
	c["up"] = labelSet{"job": true, "instance": true}
	return c
}

// promqlParser parses the queries: the standard functions, no experimental ones.
var promqlParser = parser.NewParser(parser.Options{})

// grafanaVar matches a Grafana variable: $name, ${name}, ${name:format}, [[name]].
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substituteGrafana replaces Grafana's variables with values PromQL
// parses: interval variables ($__rate_interval, $__range…) with a
// duration, the others (used in label values) with a word.
func substituteGrafana(q string) string {
	return grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		m := grafanaVar.FindStringSubmatch(v)
		name := m[1] + m[2] + m[3]
		if strings.HasPrefix(name, "__") {
			return "5m"
		}
		return "x"
	})
}

// check parses expr and checks that every series it names is in c, with
// the labels its matchers, by/on clauses and group_left name; it returns
// the labels of the result.
func (c catalogue) check(expr string) (labelSet, error) {
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", expr, err)
	}
	var errs []string
	out := c.labelsOf(e, &errs)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// labelsOf returns the labels of e's result (nil for a scalar or a
// string) and notes every problem in errs.
func (c catalogue) labelsOf(e parser.Expr, errs *[]string) labelSet {
	fail := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	switch n := e.(type) {
	case *parser.NumberLiteral, *parser.StringLiteral:
		return nil
	case *parser.ParenExpr:
		return c.labelsOf(n.Expr, errs)
	case *parser.UnaryExpr:
		return c.labelsOf(n.Expr, errs)
	case *parser.StepInvariantExpr:
		return c.labelsOf(n.Expr, errs)
	case *parser.SubqueryExpr:
		return c.labelsOf(n.Expr, errs)
	case *parser.MatrixSelector:
		return c.labelsOf(n.VectorSelector, errs)
	case *parser.VectorSelector:
		name := n.Name
		for _, m := range n.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			fail("%s: a selector without a metric name", n)
			return labelSet{}
		}
		ls, ok := c[name]
		if !ok {
			fail("%s: no such series: the proxy does not export it (docs/metrics.md) and no rule records it", name)
			return labelSet{}
		}
		for _, m := range n.LabelMatchers {
			if m.Name != labels.MetricName && !ls[m.Name] {
				fail("%s: no label %q (it has %v)", name, m.Name, ls.sorted())
			}
		}
		return ls
	case *parser.AggregateExpr:
		in := c.labelsOf(n.Expr, errs)
		if n.Param != nil {
			c.labelsOf(n.Param, errs)
		}
		for _, g := range n.Grouping {
			if !in[g] {
				fail("%s by/without (%s): the input has no label %q (it has %v)", n.Op, strings.Join(n.Grouping, ", "), g, in.sorted())
			}
		}
		switch {
		case n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO:
			return in
		case n.Without:
			out := labelSet{}
			for l := range in {
				if !slices.Contains(n.Grouping, l) {
					out[l] = true
				}
			}
			return out
		}
		out := labelSet{}
		for _, g := range n.Grouping {
			out[g] = true
		}
		return out
	case *parser.Call:
		var args []labelSet
		for _, a := range n.Args {
			args = append(args, c.labelsOf(a, errs))
		}
		switch n.Func.Name {
		case "vector", "time", "scalar", "pi":
			if n.Func.Name == "vector" {
				return labelSet{}
			}
			return nil
		case "histogram_quantile", "histogram_fraction":
			in := args[len(args)-1]
			if !in["le"] {
				fail("%s over series without le buckets", n.Func.Name)
			}
			out := labelSet{}
			for l := range in {
				if l != "le" {
					out[l] = true
				}
			}
			return out
		case "label_replace":
			out := labelSet{}
			for l := range args[0] {
				out[l] = true
			}
			if s, ok := n.Args[1].(*parser.StringLiteral); ok {
				out[s.Val] = true
			}
			return out
		}
		for _, a := range args { // rate, increase, abs, clamp…: the vector argument's labels
			if a != nil {
				return a
			}
		}
		return nil
	case *parser.BinaryExpr:
		l, r := c.labelsOf(n.LHS, errs), c.labelsOf(n.RHS, errs)
		if l == nil {
			return r
		}
		if r == nil {
			return l
		}
		vm := n.VectorMatching
		if vm != nil {
			for _, m := range vm.MatchingLabels {
				if vm.On && (!l[m] || !r[m]) {
					fail("on (%s): %q is not on both sides (left %v, right %v)", strings.Join(vm.MatchingLabels, ", "), m, l.sorted(), r.sorted())
				}
			}
			for _, m := range vm.Include {
				if !r[m] && !l[m] {
					fail("group_left/right (%s): no side has %q", strings.Join(vm.Include, ", "), m)
				}
			}
		}
		switch {
		case n.Op == parser.LOR:
			out := labelSet{}
			for k := range l {
				out[k] = true
			}
			for k := range r {
				out[k] = true
			}
			return out
		case n.Op.IsSetOperator(), n.Op.IsComparisonOperator() && !n.ReturnBool:
			return l
		case vm != nil && vm.Card == parser.CardOneToOne && vm.On:
			out := labelSet{}
			for _, m := range vm.MatchingLabels {
				out[m] = true
			}
			return out
		case vm != nil && vm.Card == parser.CardManyToOne:
			return l
		case vm != nil && vm.Card == parser.CardOneToMany:
			return r
		}
		return l
	}
	fail("unexpected node %T in %s", e, e)
	return labelSet{}
}

// TestSeriesCheckCatchesMistakes: the check fails on a misspelled series,
// a label the series lacks, a by/on clause over a missing label and a
// query that does not parse, and passes real ones.
func TestSeriesCheckCatchesMistakes(t *testing.T) {
	c := proxyCatalogue(t)
	for _, tc := range []struct {
		expr, want string
	}{
		{`sum by (job) (rate(cutover_provider_requests_total{code!=""}[5m]))`, ""},
		{`histogram_quantile(0.99, sum by (le, provider) (rate(cutover_provider_latency_seconds_bucket[5m])))`, ""},
		{`max by (job) (cutover_canary_percent) != min by (job) (cutover_canary_percent)`, ""},
		{`up{job="cutover-proxy"} == 0`, ""},
		{`sum(rate(cutover_provider_request_total[5m]))`, "cutover_provider_request_total: no such series"},
		{`cutover_provider_latency_seconds{role="candidate"}`, "cutover_provider_latency_seconds: no such series"},
		{`cutover_canary_percent{role="candidate"}`, `cutover_canary_percent: no label "role"`},
		{`sum by (reason) (rate(cutover_provider_requests_total[5m]))`, `the input has no label "reason"`},
		{`histogram_quantile(0.99, sum by (provider) (rate(cutover_provider_latency_seconds_bucket[5m])))`, "without le buckets"},
		{`cutover_mirror_sent_total / on (reason) cutover_mirror_skipped_total`, `"reason" is not on both sides`},
		{`sum(rate(cutover_mirror_sent_total[5m])`, "parsing"},
	} {
		_, err := c.check(tc.expr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error with %q", tc.expr, err, tc.want)
		}
	}
}

func TestSubstituteGrafana(t *testing.T) {
	for in, want := range map[string]string{
		`rate(x{job="$job", instance=~"$instance"}[$__rate_interval])`: `rate(x{job="x", instance=~"x"}[5m])`,
		`increase(x{job="${job}"}[${__range}])`:                        `increase(x{job="x"}[5m])`,
		`x{instance=~"${instance:regex}"}`:                             `x{instance=~"x"}`,
		`x{job="[[job]]"}`:                                             `x{job="x"}`,
	} {
		if got := substituteGrafana(in); got != want {
			t.Errorf("substituteGrafana(%s) = %s, want %s", in, got, want)
		}
	}
}
