package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/run-a.txt and run-b.txt are two real `make bench-proxy`
// outputs of 2026-11-29.
func TestParseRealOutput(t *testing.T) {
	got := parseFile(t, "testdata/run-a.txt")
	want := map[string]float64{
		"added p50 over direct, sequential (ms)":     0.64,
		"added p50 over direct, interleaved (ms)":    0.31,
		"added p99 over direct, sequential (ms)":     1.00,
		"added p99 over direct, interleaved (ms)":    0.65,
		"p99, 800 ms candidate - fast (ms)":          -0.62,
		"p99, candidate down - fast (ms)":            -0.58,
		"canary 50 % - shadow p99, sequential (ms)":  -0.36,
		"canary 50 % - shadow p99, interleaved (ms)": 0.08,
		"fallback p50 over 100 ms + direct p50 (ms)": 0.76,
		"hung candidate: peak RSS (MB)":              173,
		"hung candidate: client p99 (ms)":            38.48,
		"saturation, cutover / nginx mirror":         1.03,
		"saturation, OpenAI-format / nginx mirror":   0.71,
	}
	checkFigures(t, got, want, laterFigures)
	// The nginx anchors sit beside cutover's figures: sequential p50 and
	// p99, then the interleaved blocks'.
	for i, w := range map[int]float64{1: 0.13, 3: 0.19, 5: 0.34, 7: 0.31} {
		if got[i] != w {
			t.Errorf("%s (#%d): got %v, want %v", figures[i].name, i, got[i], w)
		}
	}
}

// laterFigures are printed by runs after testdata/run-a.txt's: client
// verification, the net/http floor and the build comparison.
var laterFigures = map[string]bool{
	"clients verified: added p50, interleaved (ms)": true,
	"clients verified: added p99, interleaved (ms)": true,
	"net/http floor: added p50, interleaved (ms)":   true,
	"net/http floor: added p99, interleaved (ms)":   true,
	"shadow p50 over the net/http floor (ms)":       true,
	"base build: shadow added p50, interleaved":     true,
	"base build: shadow added p99, interleaved":     true,
	"saturation, base build (req/s)":                true,
	"saturation, this build (req/s)":                true,
	"saturation, this build / base":                 true,
}

// testdata/run-c.txt is a real `make bench-proxy` output with
// BASELINE set, of 2026-12-03: every figure is in it.
func TestParseCurrentOutput(t *testing.T) {
	got := parseFile(t, "testdata/run-c.txt")
	want := map[string]float64{
		"added p50 over direct, interleaved (ms)":       0.62,
		"clients verified: added p50, interleaved (ms)": 0.79,
		"clients verified: added p99, interleaved (ms)": 1.54,
		"net/http floor: added p50, interleaved (ms)":   0.49,
		"net/http floor: added p99, interleaved (ms)":   1.00,
		"shadow p50 over the net/http floor (ms)":       0.13,
		"base build: shadow added p50, interleaved":     0.64,
		"base build: shadow added p99, interleaved":     2.22,
		"saturation, base build (req/s)":                6154,
		"saturation, this build (req/s)":                5518,
		"saturation, this build / base":                 0.90,
	}
	checkFigures(t, got, want, nil)
}

// checkFigures: every figure is found but those in absent, which must
// not be, and those in want have their values.
func checkFigures(t *testing.T, got []float64, want map[string]float64, absent map[string]bool) {
	t.Helper()
	for i, f := range figures {
		switch {
		case absent[f.name] && !math.IsNaN(got[i]):
			t.Errorf("%s: found %v in an output from before it was printed", f.name, got[i])
		case absent[f.name]:
		case math.IsNaN(got[i]):
			t.Errorf("%s: not found", f.name)
		case want[f.name] != 0 && got[i] != want[f.name]:
			t.Errorf("%s: got %v, want %v", f.name, got[i], want[f.name])
		}
	}
}

func parseFile(t *testing.T, name string) []float64 {
	t.Helper()
	fh, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	got, err := parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSummaryCountsRunsAndMedian(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"testdata/run-a.txt", "testdata/run-b.txt"}, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		// +0.64 and +0.48: the median of two is their mean, 0.56.
		"+0.64   +0.48    +0.56  <= 0.5: median NOT met, 1 of 2 runs",
		"+0.08   +0.00    +0.04  <= 0: median NOT met, 1 of 2 runs",
		"1.03    1.06     1.04  >= 1: median met, 2 of 2 runs",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestOlderOutputAndCutShortRuns(t *testing.T) {
	dir := t.TempDir()
	a, err := os.ReadFile("testdata/run-a.txt")
	if err != nil {
		t.Fatal(err)
	}
	// An output from before the interleaved rows: those figures are "-"
	// and the run counts only where it has a value.
	var older []string
	for _, l := range strings.Split(string(a), "\n") {
		if !strings.Contains(l, "interleaved") {
			older = append(older, l)
		}
	}
	olderPath := filepath.Join(dir, "older.txt")
	os.WriteFile(olderPath, []byte(strings.Join(older, "\n")), 0o644)
	var out bytes.Buffer
	if err := run([]string{olderPath, "testdata/run-b.txt"}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "       -   +0.23    +0.23  <= 0.5: median met, 1 of 1 runs"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, out.String())
	}
	// A run stopped before its summary is an error, not a row of dashes.
	cut := filepath.Join(dir, "cut.txt")
	os.WriteFile(cut, a[:bytes.Index(a, []byte("cutover added latency"))], 0o644)
	err = run([]string{cut}, &out)
	if err == nil || !strings.Contains(err.Error(), "no bench-proxy summary") {
		t.Errorf("cut-short run: got %v, want a 'no bench-proxy summary' error", err)
	}
	if err := run(nil, &out); err == nil {
		t.Error("no files: got no error")
	}
}
