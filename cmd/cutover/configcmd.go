package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func configCmd() *command {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", "config file")
	return &command{
		fs:      fs,
		summary: "check a config file and list every problem with its line (check)",
		usage:   "check [--config config.yaml]",
		example: "cutover config check --config config.yaml",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 || args[0] != "check" {
				return usagef("want the subcommand check")
			}
			sub := flag.NewFlagSet("config check", flag.ContinueOnError)
			sub.SetOutput(env.Stderr)
			p := sub.String("config", *cfgPath, "config file")
			if err := sub.Parse(args[1:]); err != nil {
				return usagef("%v", err)
			}
			return configCheck(env, *p)
		},
	}
}

func configCheck(env *Env, path string) error {
	cfg, err := config.Load(path)
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(env.Stdout, e)
		}
		return fmt.Errorf("%d problems in %s", len(list), path)
	}
	if err != nil {
		return err
	}
	if _, err := vision.LoadTaxonomy(cfg.TaxonomyPath()); err != nil {
		fmt.Fprintf(env.Stdout, "%s:%d: taxonomy: %v\n", path, cfg.Line("taxonomy"), err)
		return fmt.Errorf("taxonomy is invalid")
	}
	if _, err := fixtures.Load(cfg.FixturesPath()); err != nil {
		fmt.Fprintf(env.Stdout, "note: fixtures %s: %v\n", cfg.FixturesPath(), err)
	}
	names := make([]string, 0, len(cfg.Providers))
	for n := range cfg.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := cfg.Providers[n]
		fmt.Fprintf(env.Stdout, "provider %-20s %-12s %s timeout %s\n", n, p.Format, p.BaseURL, p.Timeout)
	}
	fmt.Fprintf(env.Stdout, "ok: %s (%d providers, %d simulators, digest %s)\n", path, len(cfg.Providers), len(cfg.Simulate), cfg.Digest()[:12])
	return nil
}
