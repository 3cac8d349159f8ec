package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func fixturesCmd() *command {
	fs := flag.NewFlagSet("fixtures", flag.ContinueOnError)
	return &command{
		fs:      fs,
		summary: "generate or check a labelled fixture set (gen, check)",
		usage:   "gen --out DIR [--n 2000] [--seed 1] [--taxonomy taxonomy.yaml] | check [--taxonomy taxonomy.yaml] DIR",
		example: "cutover fixtures gen --out out/fixtures --n 2000 --seed 1\ncutover fixtures check out/fixtures",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 {
				return usagef("want a subcommand: gen or check")
			}
			switch args[0] {
			case "gen":
				return fixturesGen(env, args[1:])
			case "check":
				return fixturesCheck(env, args[1:])
			}
			return usagef("unknown subcommand %q (want gen or check)", args[0])
		},
	}
}

func taxonomyFlag(fs *flag.FlagSet) (*string, *string) {
	tax := fs.String("taxonomy", "", "taxonomy file (default: the one --config names, else taxonomy.yaml)")
	cfg := fs.String("config", "", "config file whose taxonomy to use")
	return tax, cfg
}

func resolveTaxonomy(tax, cfgPath string) (*vision.Taxonomy, error) {
	if tax == "" && cfgPath != "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, err
		}
		tax = cfg.TaxonomyPath()
	}
	if tax == "" {
		tax = "taxonomy.yaml"
	}
	return vision.LoadTaxonomy(tax)
}

func fixturesGen(env *Env, args []string) error {
	fs := flag.NewFlagSet("fixtures gen", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	out := fs.String("out", "", "output folder (required)")
	n := fs.Int("n", 2000, "number of images")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same set, byte for byte")
	tax, cfg := taxonomyFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if *n <= 0 || *n > 10_000_000 {
		return usagef("--n must be 1–10,000,000")
	}
	tx, err := resolveTaxonomy(*tax, *cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	s, err := fixtures.Generate(*out, tx, fixtures.GenerateOptions{N: *n, Seed: *seed})
	if err != nil {
		return err
	}
	st := fixtures.Summarise(s)
	fmt.Fprintf(env.Stdout, "generated %d labelled images in %s (%.1fs)\n", st.N, *out, time.Since(start).Seconds())
	fmt.Fprintf(env.Stdout, "groups:     %s\n", strings.Join(fixtures.TopN(st.Groups, 10), ", "))
	fmt.Fprintf(env.Stdout, "categories: %s, … (%d distinct)\n", strings.Join(fixtures.TopN(st.Categories, 5), ", "), len(st.Categories))
	fmt.Fprintf(env.Stdout, "colours:    %s, …\n", strings.Join(fixtures.TopN(st.Attributes[vision.KindColor], 5), ", "))
	fmt.Fprintf(env.Stdout, "patterns:   %s, …\n", strings.Join(fixtures.TopN(st.Attributes[vision.KindPattern], 5), ", "))
	return nil
}

func fixturesCheck(env *Env, args []string) error {
	fs := flag.NewFlagSet("fixtures check", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	tax, cfg := taxonomyFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one fixture folder")
	}
	tx, err := resolveTaxonomy(*tax, *cfg)
	if err != nil {
		return err
	}
	s, err := fixtures.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	probs := fixtures.Check(s, tx)
	for _, p := range probs {
		fmt.Fprintln(env.Stdout, p)
	}
	if len(probs) > 0 {
		return fmt.Errorf("%d problems in %d items", len(probs), len(s.Items))
	}
	fmt.Fprintf(env.Stdout, "ok: %d items, hashes, files and vocabularies valid\n", len(s.Items))
	return nil
}
