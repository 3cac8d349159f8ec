// Command benchproxysum reads the saved output of several `make
// bench-proxy` runs (scripts/bench-proxy.sh keeps each in
// out/bench-proxy/) and prints every target figure once per run, its
// median across the runs and how many runs met its target. One run on a
// shared 2-core VM can land on a slow minute; the median of several is the
// figure to quote. It is a benchmark helper, not part of the cutover CLI.
//
//	go run ./tools/benchproxysum out/bench-proxy/*.txt
//
// It reads the summary lines that bench-proxy.sh prints; a change to
// their wording there needs the matching pattern here (the test runs
// against a saved output in testdata/).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// figure is one number bench-proxy prints, found by pattern, and the
// target it is held to.
type figure struct {
	name   string
	re     *regexp.Regexp
	group  int    // which submatch holds the value
	op     string // "<=", "<", ">=", or "" for a figure that is only stated
	target float64
	verb   string // how to print it; "" is a signed difference, %+.2f
}

const num = `([-+]?[0-9]+(?:\.[0-9]+)?)`

var (
	reAdded      = regexp.MustCompile(`^cutover added latency over direct: p50 ` + num + ` ms .*p99 ` + num + ` ms .*nginx mirror: p50 ` + num + `, p99 ` + num)
	reAddedIL    = regexp.MustCompile(`^\s+the same, interleaved .*: p50 ` + num + ` ms, p99 ` + num + ` ms; nginx mirror: p50 ` + num + `, p99 ` + num)
	reSlow       = regexp.MustCompile(`^client p99 with an 800 ms candidate: ` + num + ` ms`)
	reDown       = regexp.MustCompile(`^client p99 with the candidate down: +` + num + ` ms`)
	reCanary     = regexp.MustCompile(`^canary 50 % with a healthy candidate: p50 ` + num + ` ms, p99 ` + num + ` ms vs shadow`)
	reCanaryIL   = regexp.MustCompile(`^\s+the same, interleaved .*: p50 ` + num + ` ms, p99 ` + num + ` ms vs shadow`)
	reFallback   = regexp.MustCompile(`^fallback after .*legacy direct p50 ` + num + ` ms; p99 ` + num + ` ms`)
	reHung       = regexp.MustCompile(`^peak RSS ` + num + ` MB .*client p50 ` + num + ` ms p99 ` + num + ` ms`)
	reSaturation = regexp.MustCompile(`^saturation: cutover \(same-format\) / nginx mirror = ` + num + ` .*OpenAI-format candidate / nginx = ` + num)
	reVerify     = regexp.MustCompile(`^with client verification \(SigV4 checked, re-signed\), interleaved: p50 ` + num + ` ms .*p99 ` + num + ` ms`)
	reFloor      = regexp.MustCompile(`^net/http floor .*interleaved: p50 ` + num + ` ms, p99 ` + num + ` ms over direct; cutover shadow over the floor: p50 ` + num + ` ms, p99 ` + num)
	reBuildShdw  = regexp.MustCompile(`^\s+shadow added over direct, interleaved: base p50 ` + num + ` p99 ` + num + ` ms; this build p50 ` + num + ` p99 ` + num)
	reBuildSat   = regexp.MustCompile(`^\s+saturation, same-format: base ` + num + ` req/s; this build ` + num + ` req/s; this build / base = ` + num)
)

var figures = []figure{
	{name: "added p50 over direct, sequential (ms)", re: reAdded, group: 1, op: "<=", target: 0.5},
	{name: "  nginx mirror, same rows", re: reAdded, group: 3},
	{name: "added p50 over direct, interleaved (ms)", re: reAddedIL, group: 1, op: "<=", target: 0.5},
	{name: "  nginx mirror, same blocks", re: reAddedIL, group: 3},
	{name: "added p99 over direct, sequential (ms)", re: reAdded, group: 2, op: "<=", target: 2},
	{name: "  nginx mirror, same rows", re: reAdded, group: 4},
	{name: "added p99 over direct, interleaved (ms)", re: reAddedIL, group: 2, op: "<=", target: 2},
	{name: "  nginx mirror, same blocks", re: reAddedIL, group: 4},
	{name: "p99, 800 ms candidate - fast (ms)", re: reSlow, group: 1, op: "<=", target: 2},
	{name: "p99, candidate down - fast (ms)", re: reDown, group: 1, op: "<=", target: 2},
	{name: "canary 50 % - shadow p99, sequential (ms)", re: reCanary, group: 2, op: "<=", target: 0},
	{name: "canary 50 % - shadow p99, interleaved (ms)", re: reCanaryIL, group: 2, op: "<=", target: 0},
	{name: "fallback p50 over 100 ms + direct p50 (ms)", re: reFallback, group: 1},
	{name: "hung candidate: peak RSS (MB)", re: reHung, group: 1, op: "<", target: 256, verb: "%.0f"},
	{name: "hung candidate: client p99 (ms)", re: reHung, group: 3, verb: "%.2f"},
	{name: "saturation, cutover / nginx mirror", re: reSaturation, group: 1, op: ">=", target: 1, verb: "%.2f"},
	{name: "saturation, OpenAI-format / nginx mirror", re: reSaturation, group: 2, verb: "%.2f"},
	{name: "clients verified: added p50, interleaved (ms)", re: reVerify, group: 1, op: "<=", target: 0.5},
	{name: "clients verified: added p99, interleaved (ms)", re: reVerify, group: 2},
	{name: "net/http floor: added p50, interleaved (ms)", re: reFloor, group: 1},
	{name: "net/http floor: added p99, interleaved (ms)", re: reFloor, group: 2},
	{name: "shadow p50 over the net/http floor (ms)", re: reFloor, group: 3},
	{name: "base build: shadow added p50, interleaved", re: reBuildShdw, group: 1},
	{name: "base build: shadow added p99, interleaved", re: reBuildShdw, group: 2},
	{name: "saturation, base build (req/s)", re: reBuildSat, group: 1, verb: "%.0f"},
	{name: "saturation, this build (req/s)", re: reBuildSat, group: 2, verb: "%.0f"},
	{name: "saturation, this build / base", re: reBuildSat, group: 3, op: ">=", target: 0.9, verb: "%.2f"},
}

// parse returns each figure's value in one run's output; a figure the
// run did not print (a run cut short) is NaN.
func parse(r io.Reader) ([]float64, error) {
	vals := make([]float64, len(figures))
	for i := range vals {
		vals[i] = math.NaN()
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		for i, f := range figures {
			m := f.re.FindStringSubmatch(line)
			if m == nil || !math.IsNaN(vals[i]) {
				continue
			}
			v, err := strconv.ParseFloat(m[f.group], 64)
			if err != nil {
				return nil, fmt.Errorf("reading %q: %w", line, err)
			}
			vals[i] = v
		}
	}
	return vals, sc.Err()
}

func met(f figure, v float64) bool {
	switch f.op {
	case "<=":
		return v <= f.target
	case "<":
		return v < f.target
	case ">=":
		return v >= f.target
	}
	return true
}

// median of the values that are not NaN (NaN when there are none).
func median(vs []float64) float64 {
	var s []float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(files []string, w io.Writer) error {
	if len(files) == 0 {
		return errors.New("usage: benchproxysum RUN.txt... (the saved outputs of make bench-proxy, in out/bench-proxy/)")
	}
	runs := make([][]float64, len(files))
	for i, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		runs[i], err = parse(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if math.IsNaN(runs[i][0]) {
			return fmt.Errorf("%s: no bench-proxy summary in it (a run cut short?)", name)
		}
	}
	fmt.Fprintf(w, "runs summarised: %d\n", len(files))
	for i, name := range files {
		fmt.Fprintf(w, "  %d  %s\n", i+1, filepath.Base(name))
	}
	fmt.Fprintf(w, "\n%-44s %s %8s  %s\n", "figure (run:)", runHeader(len(files)), "median", "target")
	for fi, f := range figures {
		var b strings.Builder
		vs := make([]float64, len(files))
		n, ok := 0, 0
		for ri := range runs {
			v := runs[ri][fi]
			vs[ri] = v
			if math.IsNaN(v) {
				fmt.Fprintf(&b, "%8s", "-")
				continue
			}
			fmt.Fprintf(&b, "%8s", format(v, f))
			n++
			if met(f, v) {
				ok++
			}
		}
		med := median(vs)
		target := ""
		if f.op != "" {
			verdict := "met"
			if !met(f, med) {
				verdict = "NOT met"
			}
			target = fmt.Sprintf("%s %g: median %s, %d of %d runs", f.op, f.target, verdict, ok, n)
		}
		fmt.Fprintf(w, "%-44s %s %8s  %s\n", f.name, b.String(), format(med, f), target)
	}
	return nil
}

func runHeader(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%8d", i)
	}
	return b.String()
}

// format prints v as f says: a latency difference with its sign.
func format(v float64, f figure) string {
	if math.IsNaN(v) {
		return "-"
	}
	if f.verb == "" {
		return fmt.Sprintf("%+.2f", v)
	}
	return fmt.Sprintf(f.verb, v)
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchproxysum:", err)
		os.Exit(2)
	}
}
