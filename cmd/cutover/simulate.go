package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/sim"
)

func simulateCmd() *command {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", "config file")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same answers")
	scale := fs.Float64("time-scale", 1, "multiplies every simulated delay; 0 removes sleeping (throughput tests)")
	only := fs.String("only", "", "comma-separated simulator names to run (default: all under simulate:)")
	return &command{
		fs:      fs,
		summary: "serve simulated vision APIs (every wire format) on loopback until interrupted",
		usage:   "[--config config.yaml] [--seed N] [--time-scale F] [--only a,b]",
		example: "cutover simulate --config config.yaml --seed 1 --only legacy,holysheep",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected arguments %q", args)
			}
			if *scale < 0 {
				return usagef("--time-scale must be ≥ 0")
			}
			l, err := loadAll(*cfgPath, false, env)
			if err != nil {
				return err
			}
			var names []string
			if *only != "" {
				names = strings.Split(*only, ",")
			}
			keys := []string{"simulate"}
			if len(names) > 0 {
				keys = nil
				for _, n := range names {
					keys = append(keys, "simulate."+strings.TrimSpace(n))
				}
			}
			if err := requireEnv(l.cfg, "cutover simulate", keys...); err != nil {
				return err
			}
			rs, err := sim.Start(l.cfg, l.tx, l.fx, sim.Options{Seed: *seed, TimeScale: *scale, Only: names})
			if err != nil {
				return err
			}
			for _, r := range rs {
				fmt.Fprintf(env.Stdout, "ready %s %s %s\n", r.Name, r.Format, r.URL)
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, r := range rs {
				r.Shutdown(sctx)
			}
			fmt.Fprintln(env.Stderr, "simulate: stopped")
			return nil
		},
	}
}
