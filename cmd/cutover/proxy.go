package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/internal/table"
	"github.com/cutover/cutover/proxy"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/reports"
)

func proxyCmd() *command {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", "config file")
	mode := fs.String("mode", "", "proxy mode: shadow, canary or cutover (default: proxy.mode)")
	runDir := fs.String("run-dir", "", "run directory to record into (default: proxy.run_dir, else out/runs/<start>-<mode>)")
	return &command{
		fs:      fs,
		summary: "run the inline proxy: shadow (mirror to the candidate), canary or cutover; record both (ca init: make the interception CA)",
		usage:   "[--config config.yaml] [--mode shadow|canary|cutover] [--run-dir DIR] | ca init --out DIR",
		example: "cutover proxy --config config.yaml --mode shadow --run-dir out/runs/shadow-1\ncutover proxy ca init --out out/ca",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				if args[0] == "ca" {
					return proxyCA(env, args[1:])
				}
				return usagef("unexpected arguments %q", args)
			}
			l, err := loadAll(*cfgPath, false, env)
			if err != nil {
				return err
			}
			if *mode != "" {
				if *mode != config.ModeShadow && *mode != config.ModeCanary && *mode != config.ModeCutover {
					return usagef("--mode %q: expected shadow, canary or cutover", *mode)
				}
				l.cfg.Proxy.Mode = *mode
			}
			if l.cfg.Proxy.Primary == "" {
				return fmt.Errorf("%s has no proxy section: set proxy.primary and proxy.candidate", l.cfg.File)
			}
			if err := requireEnv(l.cfg, "cutover proxy", append(providerKeys(l.cfg.Proxy.Primary, l.cfg.Proxy.Candidate),
				"proxy.clients", "proxy.forward.auth")...); err != nil {
				return err
			}
			dir := *runDir
			if dir == "" {
				dir = l.cfg.Proxy.RunDir
			}
			if dir == "" {
				dir = filepath.Join("out", "runs", time.Now().UTC().Format("20060102T150405Z")+"-"+l.cfg.Proxy.Mode)
			}
			rec, err := record.Create(dir, runHeader(l.cfg, "proxy", l.cfg.Proxy.Mode, []string{l.cfg.Proxy.Primary}, []string{l.cfg.Proxy.Candidate}, map[string]any{
				"sample_percent": *l.cfg.Proxy.Mirror.SamplePercent, "sample_by": l.cfg.Proxy.Mirror.SampleBy,
				"max_in_flight": l.cfg.Proxy.Mirror.MaxInFlight, "max_queue_bytes": int64(l.cfg.Proxy.Mirror.MaxQueueBytes),
				"max_body_bytes": int64(l.cfg.Proxy.Mirror.MaxBodyBytes), "dedupe_window": l.cfg.Proxy.Mirror.DedupeWindow.String(),
				"max_daily_spend": l.cfg.Proxy.Mirror.MaxDailySpend, "forward": l.cfg.Proxy.Forward.Enabled,
				"canary": l.cfg.Proxy.Canary, "breaker": l.cfg.Proxy.Breaker,
			}), recordOptions(l.cfg))
			if err != nil {
				return err
			}
			tuneGC(l.cfg)
			logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
			page := reports.LiveHandler(rec, reports.Options{Config: l.cfg, Taxonomy: l.tx, Fixtures: l.fx})
			p, err := proxy.New(l.cfg, l.tx, rec, proxy.Options{Logger: logger, Fixtures: l.fx, Report: page})
			if err != nil {
				rec.Close()
				return err
			}
			addr, admin, err := p.Listen("", "")
			if err != nil {
				rec.Close()
				return err
			}
			fmt.Fprintf(env.Stdout, "proxy %s on http://%s (admin http://%s), recording to %s\n", l.cfg.Proxy.Mode, addr, admin, dir)
			stopErr := p.Run(ctx)
			st := p.Status()
			if err := rec.Close(); err != nil {
				return fmt.Errorf("closing the run directory: %w", err)
			}
			printProxySummary(env, st, dir)
			return stopErr
		},
	}
}

func proxyCA(env *Env, args []string) error {
	if len(args) == 0 || args[0] != "init" {
		return usagef("want: cutover proxy ca init --out DIR")
	}
	fs := flag.NewFlagSet("proxy ca init", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	out := fs.String("out", "", "folder for ca.pem and ca-key.pem (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%v", err)
	}
	if *out == "" {
		return usagef("--out is required")
	}
	cert, key, err := proxy.InitCA(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s (trust it on clients) and %s (mode 0600; keep it secret)\n", cert, key)
	fmt.Fprintf(env.Stdout, "set proxy.forward: {enabled: true, ca_cert: %s, ca_key: %s}\n", cert, key)
	return nil
}

// runHeader describes a run for run.json.
func runHeader(cfg *config.Config, kind, mode string, primaries, candidates []string, settings map[string]any) record.Run {
	r := record.Run{Kind: kind, Mode: mode, ConfigDigest: cfg.Digest(), Settings: settings}
	add := func(name, role string) {
		p := cfg.Providers[name]
		if p == nil {
			return
		}
		rp := record.Provider{Name: name, Role: role, Format: string(p.Format), Model: p.Model}
		if p.Format == config.FormatOpenAI {
			if pr := cfg.PromptFor(p); pr != nil {
				rp.PromptVersion = pr.Version
			}
		}
		r.Providers = append(r.Providers, rp)
	}
	for _, n := range primaries {
		add(n, record.RolePrimary)
	}
	for _, n := range candidates {
		add(n, record.RoleCandidate)
	}
	return r
}

func recordOptions(cfg *config.Config) record.Options {
	return record.Options{RotateBytes: int64(cfg.Record.RotateBytes), Compress: cfg.Record.Compress,
		HlogInterval: cfg.Record.HlogInterval.D(), StoreImages: cfg.Record.StoreImages}
}

// printProxySummary prints what the run directory holds: coverage, live
// latency per provider and top-1 agreement.
func printProxySummary(env *Env, st proxy.Status, dir string) {
	c := st.Coverage
	fmt.Fprintf(env.Stdout, "stopped. run directory %s\n", dir)
	fmt.Fprintf(env.Stdout, "coverage: %d requests seen, %d classification calls, %d mirrored", c.Seen, c.Classify, c.Mirrored)
	if len(c.Skipped) > 0 {
		var parts []string
		for _, k := range sortedKeys(c.Skipped) {
			parts = append(parts, fmt.Sprintf("%s %d", k, c.Skipped[k]))
		}
		fmt.Fprintf(env.Stdout, "; not mirrored: %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(env.Stdout)
	var rows [][]string
	for _, name := range []string{st.Primary, st.Candidate} {
		ps, ok := st.Providers[name]
		if !ok {
			continue
		}
		role := "primary"
		if name == st.Candidate {
			role = "candidate"
		}
		rows = append(rows, []string{name, role, fmt.Sprint(ps.Count), fmt.Sprintf("%.1f ms", ps.P50MS), fmt.Sprintf("%.1f ms", ps.P99MS), fmt.Sprintf("%.1f ms", ps.MaxMS)})
	}
	table.Render(env.Stdout, []string{"provider", "role", "calls", "p50", "p99", "max"}, rows, false)
	if a := st.Agreement; a.Rate != nil {
		fmt.Fprintf(env.Stdout, "top-1 category agreement: %d of %d pairs (%.1f%%)\n", a.Agree, a.Pairs, 100**a.Rate)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tuneGC trades memory the proxy already bounds for fewer collections: the
// mirror allocates several copies of every body, and at Go's default
// (GOGC=100 over a small live heap) the collector runs dozens of times a
// second and its assists land on client requests. GOGC=400 with a soft
// memory limit of twice mirror.max_queue_bytes plus 64 MiB keeps both
// latency and RSS in check (with a hung candidate and 1 MB bodies at 200
// requests/s: 128 MiB of headroom peaked at 266 MB RSS, 64 MiB at 204 MB
// with fewer page faults and a lower client p99). GOGC and GOMEMLIMIT in
// the environment win.
func tuneGC(cfg *config.Config) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(2*int64(cfg.Proxy.Mirror.MaxQueueBytes) + 64<<20)
	}
}
