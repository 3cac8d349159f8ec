package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/table"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
)

func classifyCmd() *command {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	cfgPath := fs.String("config", "config.yaml", "config file")
	providers := fs.String("providers", "", "comma-separated provider names (default: all under providers:)")
	fxDir := fs.String("fixtures", "", "fixture folder (default: the config's fixtures)")
	n := fs.Int("n", 200, "images to classify per provider (the first n of the set)")
	conc := fs.Int("concurrency", 16, "requests in flight per provider")
	return &command{
		fs:      fs,
		summary: "classify fixture images through each provider with its real client and print a summary table",
		usage:   "[--config config.yaml] [--providers a,b] [--fixtures DIR] [--n 200] [--concurrency 16]",
		example: "cutover classify --config config.yaml --providers legacy,holysheep --n 200",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected arguments %q", args)
			}
			if *n <= 0 || *conc <= 0 {
				return usagef("--n and --concurrency must be > 0")
			}
			l, err := loadAll(*cfgPath, *fxDir == "", env)
			if err != nil {
				return err
			}
			if *fxDir != "" {
				if l.fx, err = fixtures.Load(*fxDir); err != nil {
					return err
				}
			}
			names := splitNames(*providers)
			if len(names) == 0 {
				for name := range l.cfg.Providers {
					names = append(names, name)
				}
				sort.Strings(names)
			}
			if err := requireEnv(l.cfg, "cutover classify", providerKeys(names...)...); err != nil {
				return err
			}
			items := l.fx.Items
			if len(items) > *n {
				items = items[:*n]
			}
			scorer := compare.NewScorer(l.tx, l.cfg.Report)
			var rows [][]string
			for _, name := range names {
				p, ok := l.cfg.Providers[name]
				if !ok {
					return usagef("no provider %q under providers: in %s", name, l.cfg.File)
				}
				c, err := formats.NewClient(l.cfg, l.tx, name, nil)
				if err != nil {
					return err
				}
				k := &classifier{name: name, client: c, tx: l.tx, cfg: l.cfg, provider: p, tally: compare.NewTally(name, scorer, l.cfg)}
				if err := k.classifyAll(ctx, l.fx, items, *conc); err != nil {
					return err
				}
				rows = append(rows, classifyRow(k.tally.Stats(), string(p.Format)))
				if ctx.Err() != nil {
					break
				}
			}
			fmt.Fprintf(env.Stdout, "%d fixture images per provider, %d in flight; latency from send to last byte; intervals are Wilson 95 %%\n", len(items), *conc)
			fmt.Fprintf(env.Stdout, "cost: USD per 1,000 calls at %d calls a month (tiered prices), or from each call's token usage (openai)\n", l.cfg.Report.MonthlyVolume())
			return table.Render(env.Stdout, []string{"provider", "format", "requests", "errors", "p50", "p99", "top-1 accuracy", "fashion misclassified", "colour accuracy", "USD / 1,000"}, rows, false)
		},
	}
}

func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// classifier classifies fixture images through one provider's client.
type classifier struct {
	name     string
	client   *vision.Client
	tx       *vision.Taxonomy
	cfg      *config.Config
	provider *config.Provider
	tally    *compare.Tally
}

// classifyAll sends items through the client, conc at a time, and adds
// each call to the tally as an observation recorded the way bench records
// it (priced with compare.PriceCall), labelled with its fixture item. It
// stops early when ctx ends; the first image that cannot be read is
// returned as an error after the others are done.
func (k *classifier) classifyAll(ctx context.Context, fx *fixtures.Set, items []fixtures.Item, conc int) error {
	c := k.client
	format := c.Codec.Format()
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var readErr error
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				it := &items[i]
				b, err := fx.ReadImage(*it)
				if err != nil {
					mu.Lock()
					readErr = cmp.Or(readErr, err)
					mu.Unlock()
					continue
				}
				req := vision.Request{Image: vision.NewImage(b), MaxLabels: 10, Attributes: vision.AttributeKinds}
				if err := c.Pace(ctx); err != nil {
					continue
				}
				start := time.Now()
				res, err := c.Do(ctx, req)
				o := record.Observation{RequestID: it.ID, Time: start, Provider: k.name, Role: record.RoleBench, Status: 200,
					LatencyNS: time.Since(start).Nanoseconds(), ImageSHA256: req.Image.SHA256, ImageSize: req.Image.Size, FixtureID: it.ID, Usage: res.Usage}
				if err != nil {
					e := vision.AsError(err)
					o.Status, o.Code, o.Usage = e.Status, string(e.Code), e.Usage
				} else {
					tags := k.tx.Normalize(format, res)
					o.Tags = &tags
				}
				compare.PriceCall(k.cfg, k.provider, &o)
				k.tally.Add(&o, it)
			}
		}()
	}
feed:
	for i := range items {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return readErr
}

// classifyRow is one provider's row: requests, errors by typed code,
// latency, top-1 accuracy, fashion misclassification, colour accuracy
// and the price of 1,000 calls, all as `cutover report` computes them.
func classifyRow(s *compare.ProviderStats, format string) []string {
	var errs []string
	for _, e := range s.Errors {
		errs = append(errs, fmt.Sprintf("%d %s", e.Rate.K, e.Code))
	}
	errCell := "0"
	if len(errs) > 0 {
		errCell = strings.Join(errs, ", ")
	}
	msCell := func(v float64) string {
		if s.Latency.Count == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f ms", v)
	}
	top1, fashion, colour := "–", "–", "–"
	if a := s.Accuracy; a != nil {
		top1 = rateCell(a.Top1)
		if r, ok := a.Group("fashion"); ok {
			fashion = rateCell(r)
		}
		if r, ok := a.Attribute(string(vision.KindColor)); ok {
			colour = rateCell(r)
		}
	}
	cost := "–"
	if s.Cost != nil {
		cost = fmt.Sprintf("$%.3f", s.Cost.Per1000USD)
	}
	return []string{s.Name, format, fmt.Sprint(s.Calls), errCell, msCell(s.Latency.P50), msCell(s.Latency.P99), top1, fashion, colour, cost}
}

// rateCell formats a rate as a percentage with its Wilson 95 % interval
// and its counts.
func rateCell(r compare.Rate) string {
	if r.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%% [%.1f–%.1f] (%d/%d)", 100*r.Value, 100*r.Lo, 100*r.Hi, r.K, r.N)
}
