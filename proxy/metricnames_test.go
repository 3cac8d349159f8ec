package proxy

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func init() {
	// -update rewrites docs/metrics.md; another test file of the package
	// may define the flag too (for its golden files).
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files (docs/metrics.md)")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func TestMetricNames(t *testing.T) {
	names := MetricNames()
	if !slices.IsSorted(names) {
		t.Errorf("MetricNames is not sorted: %v", names)
	}
	if c := slices.Compact(slices.Clone(names)); len(c) != len(names) {
		t.Errorf("MetricNames has duplicates: %v", names)
	}
	for _, want := range []string{
		"cutover_provider_requests_total", "cutover_provider_latency_seconds_bucket", "cutover_provider_latency_seconds_sum",
		"cutover_provider_latency_seconds_count", "cutover_mirror_skipped_total", "cutover_canary_percent",
		"cutover_fleet_disconnected", "cutover_fleet_lease_held", "go_goroutines", "go_gc_duration_seconds_count",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("MetricNames lacks %s", want)
		}
	}
	if slices.Contains(names, "cutover_provider_latency_seconds") {
		t.Errorf("a histogram is selected by its _bucket, _sum and _count series, not its family name")
	}
}

// TestMetricFamiliesComplete: every family the registry describes is
// gathered, so a labelled family missing from metrics.vecs (and so from
// MetricNames and docs/metrics.md) fails here.
func TestMetricFamiliesComplete(t *testing.T) {
	zero := func() float64 { return 0 }
	m := newMetrics(gauges{zero, zero, zero, zero, zero, zero, zero})
	ch := make(chan *prometheus.Desc, 1000)
	m.reg.Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		described = append(described, d.String())
	}
	fams := metricFamilies()
	if len(fams) != len(described) {
		var got []string
		for _, f := range fams {
			got = append(got, f.GetName())
		}
		t.Errorf("the registry describes %d families but %d are gathered (a labelled family missing from metrics.vecs?)\ndescribed:\n%s\ngathered: %v",
			len(described), len(fams), strings.Join(described, "\n"), got)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "cutover_") && f.GetHelp() == "" {
			t.Errorf("%s has no help text", f.GetName())
		}
	}
}

const metricsDoc = "../docs/metrics.md"

// generatedMarker separates docs/metrics.md's written part from the
// tables generated from the registry.
const generatedMarker = "<!-- Generated from the proxy's registry by `go test ./proxy -run TestMetricsDoc -update`: do not edit below this line. -->"

// TestMetricsDoc checks docs/metrics.md's tables against the registry a
// proxy serves: every cutover_* family with its type, labels and help,
// exactly; every Go runtime and process series this machine gathers.
func TestMetricsDoc(t *testing.T) {
	b, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(b), generatedMarker)
	if !ok {
		t.Fatalf("%s lacks the marker line %q", metricsDoc, generatedMarker)
	}
	want := head + generatedMarker + "\n" + metricsTables(metricFamilies())
	if updating() {
		if err := os.WriteFile(metricsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	_, gen, _ := strings.Cut(string(b), generatedMarker)
	got, wantCutover := cutoverRows(gen), cutoverRows(metricsTables(metricFamilies()))
	for _, r := range got {
		if !slices.Contains(wantCutover, r) {
			t.Errorf("%s lists a row the registry does not have (go test ./proxy -run TestMetricsDoc -update):\n%s", metricsDoc, r)
		}
	}
	for _, r := range wantCutover {
		if !slices.Contains(got, r) {
			t.Errorf("%s lacks the registry's row:\n%s", metricsDoc, r)
		}
	}
	for _, f := range metricFamilies() {
		if n := f.GetName(); !strings.HasPrefix(n, "cutover_") && !strings.Contains(gen, "| `"+n+"` |") {
			t.Errorf("%s: %s is exported but not listed (go test ./proxy -run TestMetricsDoc -update)", metricsDoc, n)
		}
	}
}

// TestMetricsDocCatchesDrift: a changed help text, type or label set, a
// missing family or an extra one each make the check fail.
func TestMetricsDocCatchesDrift(t *testing.T) {
	good := cutoverRows(metricsTables(metricFamilies()))
	if len(good) < 20 {
		t.Fatalf("only %d cutover_* rows generated", len(good))
	}
	for name, edit := range map[string]func(string) string{
		"help": func(s string) string {
			return strings.Replace(s, "Requests not mirrored, by reason.", "Requests not mirrored.", 1)
		},
		"type": func(s string) string {
			return strings.Replace(s, "| `cutover_canary_percent` | gauge |", "| `cutover_canary_percent` | counter |", 1)
		},
		"labels": func(s string) string {
			return strings.Replace(s, "`code`, `provider`, `role`, `status`", "`code`, `provider`", 1)
		},
		"missing": func(s string) string {
			return strings.Replace(s, "| `cutover_fleet_lease_held` |", "| not-a-metric |", 1)
		},
		"extra": func(s string) string { return s + "| `cutover_bogus_total` | counter | | Nothing. |\n" },
	} {
		if slices.Equal(cutoverRows(edit(metricsTables(metricFamilies()))), good) {
			t.Errorf("%s: the edited table still matches", name)
		}
	}
}

// cutoverRows are the table rows of cutover_* families in doc.
func cutoverRows(doc string) []string {
	var rows []string
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "| `cutover_") {
			rows = append(rows, l)
		}
	}
	return rows
}

// metricsTables renders the registry as docs/metrics.md's tables.
func metricsTables(fams []*dto.MetricFamily) string {
	var cut, rt strings.Builder
	for _, f := range fams {
		var labels []string
		if len(f.Metric) > 0 {
			for _, l := range f.Metric[0].Label {
				labels = append(labels, "`"+l.GetName()+"`")
			}
		}
		help := strings.ReplaceAll(f.GetHelp(), "|", `\|`)
		typ := strings.ToLower(f.GetType().String())
		if strings.HasPrefix(f.GetName(), "cutover_") {
			fmt.Fprintf(&cut, "| `%s` | %s | %s | %s |\n", f.GetName(), typ, strings.Join(labels, ", "), help)
		} else {
			fmt.Fprintf(&rt, "| `%s` | %s | %s | %s |\n", f.GetName(), typ, strings.Join(labels, ", "), help)
		}
	}
	return "\n## cutover series\n\n| name | type | labels | meaning |\n|---|---|---|---|\n" + cut.String() +
		"\n## Go runtime and process series\n\nclient_golang's Go and process collectors (the process series are read from /proc, on Linux).\n\n" +
		"| name | type | labels | meaning |\n|---|---|---|---|\n" + rt.String()
}
