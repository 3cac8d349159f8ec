// Command benchreport makes the inputs of `make bench-report` and measures
// a command's wall time and peak memory:
//
//	benchreport gen --out DIR --n 1000000   a shadow run of N observations (N/2 pairs)
//	                                        with a fixture manifest and a config
//	benchreport measure -- CMD ARGS...      run CMD; print wall seconds and max RSS MiB
//
// The run is what a day of a busy proxy writes: legacy and candidate
// observations of labelled images, with realistic tags, latencies over
// 24 hours, errors and costs, in hourly observation files.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport gen --out DIR --n N | benchreport measure -- CMD...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		out := fs.String("out", "", "output directory")
		n := fs.Int("n", 1_000_000, "observations")
		tax := fs.String("taxonomy", "taxonomy.yaml", "taxonomy file")
		fs.Parse(os.Args[2:])
		if err := gen(*out, *n, *tax); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	case "measure":
		args := os.Args[2:]
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		start := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = nil, os.Stderr
		err := cmd.Run()
		wall := time.Since(start)
		ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		rss := 0.0
		if ru != nil {
			rss = float64(ru.Maxrss) / 1024 // KiB on Linux
		}
		fmt.Printf("%.2f %.0f %d\n", wall.Seconds(), rss, cmd.ProcessState.ExitCode())
		if err != nil && cmd.ProcessState.ExitCode() < 10 {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "benchreport: unknown subcommand", os.Args[1])
		os.Exit(2)
	}
}

func gen(out string, n int, taxPath string) error {
	tx, err := vision.LoadTaxonomy(taxPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "fixtures"), 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	leaves := tx.Leaves()
	colors := tx.AttributeValues("color")
	patterns := tx.AttributeValues("pattern")
	// 20,000 labelled images, seen again and again over the day.
	const nImages = 20_000
	items := make([]fixtures.Item, nImages)
	mf, err := os.Create(filepath.Join(out, "fixtures", fixtures.ManifestName))
	if err != nil {
		return err
	}
	mw := bufio.NewWriter(mf)
	for i := range items {
		c := leaves[rng.IntN(len(leaves))]
		h := sha256.Sum256([]byte(fmt.Sprint("bench-report-image-", i)))
		items[i] = fixtures.Item{ID: fmt.Sprintf("img-%05d", i), File: fmt.Sprintf("img-%05d.jpg", i), SHA256: hex.EncodeToString(h[:]),
			Category: c, Group: tx.Group(c), Attributes: map[vision.AttributeKind]string{"color": colors[rng.IntN(len(colors))], "pattern": patterns[rng.IntN(len(patterns))]}}
		b, _ := json.Marshal(items[i])
		mw.Write(append(b, '\n'))
	}
	mw.Flush()
	mf.Close()
	run := filepath.Join(out, "run")
	os.RemoveAll(run)
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	w, err := record.Create(run, record.Run{Kind: "proxy", Mode: "shadow", Started: start,
		Providers: []record.Provider{{Name: "legacy", Role: "primary", Format: "rekognition"}, {Name: "holysheep", Role: "candidate", Format: "openai", Model: "gemini-2.5-flash"}}},
		record.Options{Buffer: 1 << 20})
	if err != nil {
		return err
	}
	pairs := n / 2
	step := 24 * time.Hour / time.Duration(max(pairs, 1))
	lat := func(median, sigma float64) int64 { return int64(median * math.Exp(sigma*rng.NormFloat64()) * 1e6) }
	answer := func(it fixtures.Item, miss float64, conf float64) *vision.Tags {
		top := it.Category
		if rng.Float64() < miss {
			top = leaves[rng.IntN(len(leaves))]
		}
		second := leaves[rng.IntN(len(leaves))]
		col := it.Attributes["color"]
		if rng.Float64() < 0.1 {
			col = colors[rng.IntN(len(colors))]
		}
		return &vision.Tags{Categories: []vision.Scored{{Value: top, Confidence: conf}, {Value: second, Confidence: conf / 3}},
			Attributes: map[vision.AttributeKind][]vision.Scored{"color": {{Value: col, Confidence: 0.8}}, "pattern": {{Value: it.Attributes["pattern"], Confidence: 0.7}}}}
	}
	for i := range pairs {
		it := items[rng.IntN(nImages)]
		at := start.Add(time.Duration(i) * step)
		pid := fmt.Sprintf("p%08d", i)
		l := record.Observation{RequestID: pid + "-l", PairID: pid, Time: at, Provider: "legacy", Role: record.RolePrimary, Status: 200,
			LatencyNS: lat(250, 0.55), ImageSHA256: it.SHA256, ImageSize: 120_000, FixtureID: it.ID, Tags: answer(it, 0.2, 0.5+0.5*rng.Float64()),
			Cost: 0.0016, Currency: "USD"}
		c := record.Observation{RequestID: pid + "-c", PairID: pid, Time: at, Provider: "holysheep", Role: record.RoleCandidate, Status: 200,
			LatencyNS: lat(175, 0.28), ImageSHA256: it.SHA256, ImageSize: 120_000, FixtureID: it.ID, PromptVersion: "fashion-v1",
			Usage: &vision.Usage{InputTokens: 1290, OutputTokens: 70 + int64(rng.IntN(20))}, Currency: "USD"}
		c.Cost = (float64(c.Usage.InputTokens)*0.30 + float64(c.Usage.OutputTokens)*2.5) / 1e6
		if rng.Float64() < 0.004 {
			c.Status, c.Code, c.Error, c.Tags = 200, "llm_invalid_json", "answer is not JSON", nil
		} else {
			c.Tags = answer(it, 0.06, 0.7+0.3*rng.Float64())
		}
		for !w.Record(l) {
			time.Sleep(time.Millisecond)
		}
		for !w.Record(c) {
			time.Sleep(time.Millisecond)
		}
	}
	w.Count(int64(pairs), int64(pairs), int64(pairs))
	if err := w.Close(); err != nil {
		return err
	}
	if d, _ := record.Open(run); d != nil && d.Run.Dropped > 0 {
		return fmt.Errorf("the recorder dropped %d observations", d.Run.Dropped)
	}
	abs, _ := filepath.Abs(taxPath)
	cfg := fmt.Sprintf(`# made by benchreport gen
taxonomy: %s
fixtures: fixtures
providers:
  legacy: {format: rekognition, base_url: "http://127.0.0.1:9101", pricing: {tiers: [{up_to: 1000000, per_1000: 1.75}, {per_1000: 1.40}]}}
  holysheep: {format: openai, base_url: "http://127.0.0.1:9102/v1", model: gemini-2.5-flash}
models:
  gemini-2.5-flash: {input_per_million: 0.30, cached_input_per_million: 0.075, output_per_million: 2.50}
report: {time_zone: Asia/Singapore, daily_volume: 50000}
gates: {min_samples: 100, p99_latency: 400ms, error_rate: 0.5%%, misclassification: {fashion: 10%%}, accuracy_margin: 1%%, monthly_cost_usd: 1000, mirrored_coverage: 90%%}
`, abs)
	return os.WriteFile(filepath.Join(out, "config.yaml"), []byte(cfg), 0o644)
}
