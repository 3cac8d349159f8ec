package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/table"
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
			items := l.fx.Items
			if len(items) > *n {
				items = items[:*n]
			}
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
				s, err := classifyAll(ctx, c, l.tx, l.fx, items, *conc)
				if err != nil {
					return err
				}
				rows = append(rows, append(s.row(name, string(p.Format)), costCell(l.cfg, p, s)))
				if ctx.Err() != nil {
					break
				}
			}
			fmt.Fprintf(env.Stdout, "%d fixture images per provider, %d in flight; latency from send to last byte; intervals are Wilson 95 %%\n", len(items), *conc)
			fmt.Fprintf(env.Stdout, "cost: USD per 1,000 calls at %d calls a month (tiered prices), or from each call's token usage (openai)\n", monthlyCalls)
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

// monthlyCalls is the volume tiered prices are read at: 50,000 images a day.
const monthlyCalls = 50_000 * 30

// costCell is the price of 1,000 calls in USD: from the measured token
// usage for openai providers, from the tiers at monthlyCalls otherwise.
func costCell(cfg *config.Config, p *config.Provider, s *classifySummary) string {
	if p.Format == config.FormatOpenAI {
		mp := cfg.Models[p.Model]
		if mp == nil || s.calls == 0 {
			return "–"
		}
		native := mp.Cost(s.usage.InputTokens, s.usage.CachedTokens, s.usage.OutputTokens) / float64(s.calls) * 1000
		usd, ok := cfg.ToUSD(native, mp.Currency)
		if !ok {
			return "–"
		}
		return fmt.Sprintf("$%.3f", usd)
	}
	if len(p.Pricing.Tiers) == 0 {
		return "–"
	}
	usd, ok := cfg.ToUSD(p.Pricing.CostOf(monthlyCalls)/monthlyCalls*1000, p.Pricing.Currency)
	if !ok {
		return "–"
	}
	return fmt.Sprintf("$%.3f", usd)
}

type classifySummary struct {
	usage                  vision.Usage
	calls                  int // calls that reported usage (failed LLM answers included: they cost)
	mu                     sync.Mutex
	hist                   *hdrhistogram.Histogram
	requests               int
	errors                 map[vision.Code]int
	right, scored          int
	fashionWrong, fashionN int
	colourRight, colourN   int
}

func classifyAll(ctx context.Context, c *vision.Client, tx *vision.Taxonomy, fx *fixtures.Set, items []fixtures.Item, conc int) (*classifySummary, error) {
	s := &classifySummary{hist: hdrhistogram.New(1_000, 60_000_000_000, 3), errors: map[vision.Code]int{}}
	format := c.Codec.Format()
	next := make(chan fixtures.Item)
	var wg sync.WaitGroup
	var readErr error
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				b, err := fx.ReadImage(it)
				if err != nil {
					s.mu.Lock()
					readErr = err
					s.mu.Unlock()
					continue
				}
				req := vision.Request{Image: vision.NewImage(b), MaxLabels: 10, Attributes: vision.AttributeKinds}
				if err := c.Pace(ctx); err != nil {
					continue
				}
				start := time.Now()
				res, err := c.Do(ctx, req)
				d := time.Since(start)
				s.mu.Lock()
				s.requests++
				s.hist.RecordValue(max(d.Nanoseconds(), 1_000))
				u := res.Usage
				if err != nil {
					u = vision.AsError(err).Usage
				}
				if u != nil {
					s.calls++
					s.usage.InputTokens += u.InputTokens
					s.usage.CachedTokens += u.CachedTokens
					s.usage.OutputTokens += u.OutputTokens
				}
				if err != nil {
					s.errors[vision.ErrorCode(err)]++
					s.mu.Unlock()
					continue
				}
				tags := tx.Normalize(format, res)
				s.scored++
				ok := tags.Top() == it.Category
				if ok {
					s.right++
				}
				if it.Group == "fashion" {
					s.fashionN++
					if !ok {
						s.fashionWrong++
					}
				}
				if want, has := it.Attributes[vision.KindColor]; has {
					s.colourN++
					if tags.TopAttribute(vision.KindColor) == want {
						s.colourRight++
					}
				}
				s.mu.Unlock()
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return s, readErr
}

func (s *classifySummary) row(name, format string) []string {
	var errs []string
	total := 0
	for _, c := range vision.Codes {
		if n := s.errors[c]; n > 0 {
			errs = append(errs, fmt.Sprintf("%d %s", n, c))
			total += n
		}
	}
	errCell := "0"
	if total > 0 {
		errCell = strings.Join(errs, ", ")
	}
	ms := func(q float64) string {
		if s.requests == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f ms", float64(s.hist.ValueAtQuantile(q))/1e6)
	}
	return []string{name, format, fmt.Sprint(s.requests), errCell, ms(50), ms(99),
		rate(s.right, s.scored), rate(s.fashionWrong, s.fashionN), rate(s.colourRight, s.colourN)}
}

// rate formats k/n as a percentage with its Wilson 95 % interval.
func rate(k, n int) string {
	if n == 0 {
		return "–"
	}
	lo, hi := stats.Wilson(k, n, stats.Z95)
	return fmt.Sprintf("%.1f%% [%.1f–%.1f] (%d/%d)", 100*float64(k)/float64(n), 100*lo, 100*hi, k, n)
}
