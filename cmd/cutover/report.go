package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/reports"
	"github.com/cutover/cutover/vision"
)

// exitCode ends a command with a specific exit code after it has written
// its output (report: 10 NO-GO, 11 INCONCLUSIVE).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func reportCmd() *command {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", "config file (gates, pricing, fixtures); credentials are not needed")
	format := fs.String("format", "term", "term, md, html or json")
	out := fs.String("out", "", "write the report to this file instead of standard output")
	hdrOut := fs.String("hdr-out", "", "also write <provider>.hgrm percentile spectra (HdrHistogram plotter format) to this directory")
	baseline := fs.String("baseline", "", "provider to compare against (default: report.baseline, else the run's primary)")
	candidate := fs.String("candidate", "", "provider the gates judge (default: report.candidate, else the run's candidate)")
	labels := fs.String("labels", "", "a labelled sample of the recorded traffic (the --out folder of cutover label): adds each provider's accuracy on that traffic, weighted by the sample's design")
	lenient := fs.Bool("lenient", false, "note a file listed in run.json but missing, and skip an observation without request_id, provider or role with a note, instead of failing")
	return &command{
		fs:      fs,
		summary: "compare providers over run directories and judge the gates: GO (exit 0), NO-GO (10), INCONCLUSIVE (11)",
		usage:   "[--config config.yaml] --format term|md|html|json [--out FILE] [--hdr-out DIR] [--labels DIR] [--lenient] RUN_DIR...",
		example: "cutover report --config config.yaml --format html --out report.html out/runs/shadow-1 out/runs/shadow-2",
		run: func(ctx context.Context, env *Env, args []string) error {
			dirs, err := interleaved(fs, args)
			if err != nil {
				return err
			}
			if len(dirs) == 0 {
				return usagef("name at least one run directory")
			}
			var render func(io.Writer, *reports.Report) error
			switch *format {
			case "term":
				render = reports.Term
			case "md", "markdown":
				render = reports.Markdown
			case "html":
				render = reports.HTML
			case "json":
				render = reports.JSON
			default:
				return usagef("--format %q: expected term, md, html or json", *format)
			}
			explicit := false
			fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
			opt, err := reportOptions(*cfgPath, explicit, env)
			if err != nil {
				return err
			}
			opt.Baseline, opt.Candidate, opt.Lenient = *baseline, *candidate, *lenient
			if *labels != "" {
				if opt.Labels, err = labelledSample(*labels); err != nil {
					return err
				}
			}
			var runs []*record.Dir
			for _, d := range dirs {
				rd, err := record.Open(d)
				if err != nil {
					return err
				}
				runs = append(runs, rd)
			}
			if err := record.Distinct(runs); err != nil {
				return usagef("%v", err)
			}
			r, err := reports.Build(runs, opt)
			if errors.Is(err, record.ErrInput) && !*lenient {
				return fmt.Errorf("%w (--lenient notes it and goes on)", err)
			}
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := render(&buf, r); err != nil {
				return fmt.Errorf("rendering: %w", err)
			}
			if *out != "" {
				if err := record.WriteFileAtomic(*out, buf.Bytes()); err != nil {
					return fmt.Errorf("writing report: %w", err)
				}
				fmt.Fprintf(env.Stderr, "report: %s written (%s)\n", *out, r.Verdict)
			} else if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
				return err
			}
			if *hdrOut != "" {
				files, err := r.WriteHGRM(*hdrOut)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stderr, "report: %d percentile spectra in %s\n", len(files), *hdrOut)
			}
			if c := r.ExitCode(); c != 0 {
				return exitCode(c)
			}
			return nil
		},
	}
}

// reportOptions loads what a report needs from the config, without
// credentials. A missing default config.yaml is not an error (no gates, no
// prices); a missing --config given on purpose is.
func reportOptions(path string, explicit bool, env *Env) (reports.Options, error) {
	var opt reports.Options
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !explicit {
		fmt.Fprintf(env.Stderr, "note: no %s: no gates, prices or fixtures (pass --config)\n", path)
		return opt, nil
	}
	cfg, err := config.LoadWithoutSecrets(path)
	if err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			return opt, fmt.Errorf("invalid config (run 'cutover config check --config %s'):\n%w", path, err)
		}
		return opt, err
	}
	opt.Config = cfg
	tx, err := vision.LoadTaxonomy(cfg.TaxonomyPath())
	if err != nil {
		return opt, err
	}
	opt.Taxonomy = tx
	fx, err := fixtures.Load(cfg.FixturesPath())
	switch {
	case err == nil:
		opt.Fixtures = fx
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(env.Stderr, "note: no fixture set at %s: accuracy is not measured\n", cfg.FixturesPath())
	default:
		return opt, err
	}
	return opt, nil
}

// labelledSample loads the fixture set cutover label wrote in dir, with
// its design.
func labelledSample(dir string) (*reports.LabelledSample, error) {
	d, err := fixtures.LoadDesign(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("--labels %s: no %s there: --labels takes the --out folder of cutover label (a fixture set of labelled images is set with fixtures: in the config)", dir, fixtures.DesignName)
	}
	if err != nil {
		return nil, fmt.Errorf("--labels %s: %w", dir, err)
	}
	set, err := fixtures.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--labels %s: %w", dir, err)
	}
	return &reports.LabelledSample{Dir: dir, Set: set, Design: d}, nil
}

// interleaved parses flags that may come before or after positional
// arguments (cutover report RUN --format md).
func interleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if strings.HasPrefix(args[0], "-") && args[0] != "-" {
			if err := fs.Parse(args); err != nil {
				return nil, usagef("%v", err)
			}
			args = fs.Args()
			continue
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, nil
}
