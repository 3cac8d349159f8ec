package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/cutover/cutover/bench"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/table"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
)

func benchCmd() *command {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", "config file")
	fxDir := fs.String("fixtures", "", "labelled fixture folder (default: the config's fixtures)")
	providers := fs.String("providers", "", "comma-separated provider names (required)")
	rate := fs.Float64("rate", 50, "requests per second over all providers, open loop; 0 = closed loop (see --concurrency)")
	duration := fs.Duration("duration", 2*time.Minute, "measured duration (after --warmup)")
	warmup := fs.Duration("warmup", 0, "unrecorded warm-up before the measured part")
	repeat := fs.Int("repeat", 1, "passes over the fixture set: each image is sent N times to each provider (0 = until --duration ends)")
	runDir := fs.String("run-dir", "", "run directory (default out/runs/<start>-bench)")
	maxInFlight := fs.Int("max-in-flight", 1024, "open loop: most requests in flight; beyond it starts are missed (counted) and sent late")
	conc := fs.Int("concurrency", 16, "closed loop (--rate 0): workers sending back to back")
	replay := fs.String("replay", "", "replay a recorded run's timing and stored images instead of the fixtures")
	seed := fs.Uint64("seed", 1, "seed for the image order and the per-image provider order")
	return &command{
		fs:      fs,
		summary: "benchmark providers over labelled fixtures: open-loop, paired, coordinated-omission corrected",
		usage:   "--providers a,b [--config config.yaml] [--fixtures DIR] [--rate 50] [--duration 2m] [--warmup 10s] [--repeat 1] [--run-dir DIR] [--max-in-flight N] [--rate 0 --concurrency N] [--replay RUN_DIR]",
		example: "cutover bench --config config.yaml --fixtures out/fixtures --providers legacy,holysheep --rate 50 --duration 2m --warmup 10s",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected arguments %q", args)
			}
			names := splitNames(*providers)
			switch {
			case len(names) == 0:
				return usagef("--providers is required")
			case *rate < 0:
				return usagef("--rate must be ≥ 0")
			case *rate == 0 && *conc < 1:
				return usagef("closed loop needs --concurrency ≥ 1")
			case *duration <= 0:
				return usagef("--duration must be > 0")
			case *repeat < 0 || *maxInFlight < 1:
				return usagef("--repeat must be ≥ 0 and --max-in-flight ≥ 1")
			}
			l, err := loadAll(*cfgPath, *fxDir == "" && *replay == "", env)
			if err != nil {
				return err
			}
			if err := requireEnv(l.cfg, "cutover bench", providerKeys(names...)...); err != nil {
				return err
			}
			if *fxDir != "" {
				if l.fx, err = fixtures.Load(*fxDir); err != nil {
					return err
				}
			}
			var targets []bench.Target
			for _, n := range names {
				p, ok := l.cfg.Providers[n]
				if !ok {
					return usagef("no provider %q under providers: in %s", n, l.cfg.File)
				}
				if *rate > 0 && p.MaxRPS > 0 && *rate/float64(len(names)) > p.MaxRPS {
					return usagef("--rate %.0f gives %s %.1f requests/s, above its max_rps %.1f: lower --rate", *rate, n, *rate/float64(len(names)), p.MaxRPS)
				}
				c, err := formats.NewClient(l.cfg, l.tx, n, &http.Client{Transport: vision.DefaultTransport()})
				if err != nil {
					return err
				}
				// Each fixture is encoded once per provider (signed again per
				// send where the format signs): bounded by the set's size.
				c.Cache = &vision.BodyCache{Max: 100_000}
				targets = append(targets, bench.Target{Name: n, Client: c, Provider: p})
			}
			mode := "open-loop"
			if *rate == 0 {
				mode = "closed-loop"
			}
			var src bench.Source
			if *replay != "" {
				rd, err := record.Open(*replay)
				if err != nil {
					return err
				}
				rs, missing, err := bench.NewReplaySource(rd, len(targets), l.fx)
				if err != nil {
					return err
				}
				if missing > 0 {
					fmt.Fprintf(env.Stderr, "replay: %d recorded requests have no stored image and are left out\n", missing)
				}
				src, mode = rs, "replay"
			} else {
				if l.fx == nil {
					return fmt.Errorf("no fixture set: give --fixtures or make one with 'cutover fixtures gen'")
				}
				fsrc, err := bench.NewFixtureSource(l.fx, len(targets), *rate, *repeat, *seed)
				if err != nil {
					return err
				}
				src = fsrc
			}
			dir := *runDir
			if dir == "" {
				dir = filepath.Join("out", "runs", time.Now().UTC().Format("20060102T150405Z")+"-bench")
			}
			settings := map[string]any{"rate": *rate, "duration": duration.String(), "warmup": warmup.String(), "repeat": *repeat,
				"max_in_flight": *maxInFlight, "concurrency": *conc, "seed": *seed, "latency": "corrected from intended send time; service_ns from actual send"}
			if *replay != "" {
				settings["replay"] = *replay
			}
			hdr := runHeader(l.cfg, "bench", mode, nil, nil, settings)
			for _, t := range targets {
				rp := record.Provider{Name: t.Name, Role: record.RoleBench, Format: string(t.Provider.Format), Model: t.Provider.Model}
				if pr := l.cfg.PromptFor(t.Provider); pr != nil && t.Provider.Format == "openai" {
					rp.PromptVersion = pr.Version
				}
				hdr.Providers = append(hdr.Providers, rp)
			}
			rec, err := record.Create(dir, hdr, recordOptions(l.cfg))
			if err != nil {
				return err
			}
			// Images are copied several times per request; fewer, larger
			// collections keep GC pauses out of the send schedule.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			prog, finish := progressReporter(env, *duration+*warmup, mode)
			brate := *rate
			if mode == "replay" {
				brate = 1 // offsets come from the recording
			}
			sum, runErr := bench.Run(ctx, src, bench.Options{Targets: targets, Rate: brate, Concurrency: *conc, Duration: *duration,
				Warmup: *warmup, MaxInFlight: *maxInFlight, Tax: l.tx, Config: l.cfg, Recorder: rec, Progress: prog, Interval: time.Second})
			finish()
			if sum.Interrupted {
				rec.Event("interrupted", "stopped by a signal: everything measured so far is kept", nil)
			}
			if err := rec.Close(); err != nil {
				return fmt.Errorf("closing the run directory: %w", err)
			}
			printBenchSummary(env.Stdout, sum, dir)
			return runErr
		},
	}
}

// progressReporter draws a live progress bar on a terminal and plain
// periodic lines otherwise.
func progressReporter(env *Env, total time.Duration, mode string) (func(bench.Snapshot), func()) {
	f, isFile := env.Stderr.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions64(int64(total/time.Second), progressbar.OptionSetWriter(f), progressbar.OptionSetWidth(24),
			progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionSetPredictTime(false), progressbar.OptionThrottle(200*time.Millisecond))
		return func(s bench.Snapshot) {
				bar.Describe(snapshotLine(s, mode))
				bar.Set64(int64(s.Elapsed / time.Second))
			}, func() {
				bar.Finish()
				fmt.Fprintln(f)
			}
	}
	last := time.Time{}
	return func(s bench.Snapshot) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			fmt.Fprintln(env.Stderr, snapshotLine(s, mode))
		}
	}, func() {}
}

func snapshotLine(s bench.Snapshot, mode string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %5.0fs %7d sent %7.1f/s %d errors %d throttled %d missed", mode, s.Elapsed.Seconds(), s.Sent, s.AchievedRate, s.Errors, s.Throttled, s.MissedStarts)
	for _, p := range s.Providers {
		fmt.Fprintf(&b, " | %s p50 %s p99 %s", p.Name, ms(p.P50), ms(p.P99))
		if p.Top1.N > 0 {
			fmt.Fprintf(&b, " top-1 %.1f%%", 100*p.Top1.Value)
		}
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/1e6) }

func printBenchSummary(w io.Writer, s bench.Summary, dir string) {
	label := s.Mode
	switch s.Mode {
	case "open-loop", "replay":
		label += ": latency from each request's intended send time (coordinated-omission corrected); service = from actual send"
	case "closed-loop":
		label += " (maximum throughput; latency is service time, not corrected)"
	}
	fmt.Fprintln(w, label)
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: the run directory holds everything measured so far")
	}
	fmt.Fprintf(w, "%d scheduled, %d sent in %.1fs (%.1f/s); %d missed starts (sent late, measured from their schedule); send lag p99 %.3f ms, max %.3f ms\n",
		s.Scheduled, s.Sent, s.Elapsed.Seconds(), float64(s.Sent)/max(s.Elapsed.Seconds(), 1e-9), s.MissedStarts, float64(s.LagP99)/1e6, float64(s.LagMax)/1e6)
	var rows [][]string
	for _, p := range s.Providers {
		var errs []string
		for _, c := range vision.Codes {
			if n := p.Errors[c]; n > 0 {
				errs = append(errs, fmt.Sprintf("%d %s", n, c))
			}
		}
		e := "0"
		if len(errs) > 0 {
			e = strings.Join(errs, ", ")
		}
		q := func(h interface{ ValueAtQuantile(float64) int64 }, pct float64) string {
			return fmt.Sprintf("%.1f", float64(h.ValueAtQuantile(pct))/1e6)
		}
		acc := "–"
		if p.Stats != nil && p.Stats.Accuracy != nil {
			acc = rateCell(p.Stats.Accuracy.Top1)
		}
		rows = append(rows, []string{p.Name, fmt.Sprint(p.Requests), fmt.Sprint(p.Throttled), e,
			q(p.Corrected, 50), q(p.Corrected, 90), q(p.Corrected, 99), q(p.Corrected, 99.9), fmt.Sprintf("%.1f", float64(p.Corrected.Max())/1e6),
			q(p.Service, 50), q(p.Service, 99), acc})
	}
	table.Render(w, []string{"provider", "requests", "throttled", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "service p50", "service p99", "top-1 accuracy"}, rows, false)
	fmt.Fprintf(w, "run directory %s\n", dir)
}
