package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
)

func pipelineCmd() *command {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	return &command{
		fs:      fs,
		summary: "the post-cutover tagging service and backfills: serve, run, export-fixtures, status",
		usage:   "serve | run --source DIR|manifest.jsonl|s3://bucket/prefix [--concurrency 64] [--queue nats://…] | export-fixtures --out DIR | status",
		example: "cutover pipeline serve --config config.yaml\ncutover pipeline run --config config.yaml --source out/fixtures --concurrency 64\ncutover pipeline export-fixtures --config config.yaml --out out/reviewed",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 {
				return usagef("want a subcommand: serve, run, export-fixtures or status")
			}
			sub := flag.NewFlagSet("pipeline "+args[0], flag.ContinueOnError)
			sub.SetOutput(env.Stderr)
			cfgPath := sub.String("config", "config.yaml", "config file")
			switch args[0] {
			case "serve":
				listen := sub.String("listen", "", "listen address (default pipeline.serve.listen)")
				if err := sub.Parse(args[1:]); err != nil {
					return usagef("%v", err)
				}
				return pipelineServe(ctx, env, *cfgPath, *listen)
			case "run":
				src := sub.String("source", "", "a folder of images, a manifest.jsonl, or s3://bucket/prefix (required)")
				conc := sub.Int("concurrency", 64, "images tagged at once")
				queue := sub.String("queue", "", "nats://host:port: share a JetStream work queue with other workers")
				s3Endpoint := sub.String("s3-endpoint", "", "S3-compatible endpoint (default $AWS_ENDPOINT_URL_S3, else AWS)")
				noProgress := sub.Bool("no-progress", false, "no progress bar")
				if err := sub.Parse(args[1:]); err != nil {
					return usagef("%v", err)
				}
				if *src == "" || *conc < 1 {
					return usagef("--source is required and --concurrency must be ≥ 1")
				}
				return pipelineRun(ctx, env, *cfgPath, *src, *conc, *queue, *s3Endpoint, !*noProgress)
			case "export-fixtures":
				out := sub.String("out", "", "folder for manifest.jsonl and images (required)")
				if err := sub.Parse(args[1:]); err != nil {
					return usagef("%v", err)
				}
				if *out == "" {
					return usagef("--out is required")
				}
				return pipelineExport(ctx, env, *cfgPath, *out)
			case "status":
				if err := sub.Parse(args[1:]); err != nil {
					return usagef("%v", err)
				}
				return pipelineStatus(ctx, env, *cfgPath)
			}
			return usagef("unknown subcommand %q", args[0])
		},
	}
}

// pipelineEnv is what every pipeline subcommand opens.
type pipelineEnv struct {
	cfg    *config.Config
	tx     *vision.Taxonomy
	store  *pipeline.Store
	tagger *pipeline.Tagger
	log    *slog.Logger
	// scrub holds every secret of the config: errors the pipeline
	// answers, stores, logs or prints pass through it.
	scrub *secret.Scrubber
}

func openPipeline(ctx context.Context, env *Env, path string, needProvider bool) (*pipelineEnv, error) {
	l, err := loadAll(path, false, env)
	if err != nil {
		return nil, err
	}
	pc := l.cfg.Pipeline
	if pc.Provider == "" {
		return nil, fmt.Errorf("%s has no pipeline section: set pipeline.provider", l.cfg.File)
	}
	sc := secret.New(l.cfg.Secrets()...)
	st, err := pipeline.Open(ctx, pc.Store.URL, l.cfg.Dir, pipeline.WithScrubber(sc))
	if err != nil {
		return nil, err
	}
	pe := &pipelineEnv{cfg: l.cfg, tx: l.tx, store: st, scrub: sc,
		log: slog.New(slog.NewTextHandler(scrubWriter{w: env.Stderr, s: sc}, nil))}
	if needProvider {
		if err := requireEnv(l.cfg, "cutover pipeline", providerKeys(pc.Provider)...); err != nil {
			st.Close()
			return nil, err
		}
		client, err := formats.NewClient(l.cfg, l.tx, pc.Provider, &http.Client{Transport: vision.DefaultTransport()})
		if err != nil {
			st.Close()
			return nil, err
		}
		pe.tagger = &pipeline.Tagger{Store: st, Rules: pipeline.NewRules(pc.Rules), Tax: l.tx, Client: client, Provider: pc.Provider,
			Retry: pc.Retry, Scrub: sc}
	}
	return pe, nil
}

// scrubWriter removes secrets from each log line (slog's text handler
// writes one record per Write).
type scrubWriter struct {
	w io.Writer
	s *secret.Scrubber
}

func (s scrubWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(s.w, s.s.String(string(b))); err != nil {
		return 0, err
	}
	return len(b), nil
}

// publisher starts the outbox publisher; stop drains it.
func (pe *pipelineEnv) publisher(ctx context.Context, env *Env) (stop func(), err error) {
	sink, err := pipeline.NewSink(ctx, pe.cfg, env.Stdout)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	pub := &pipeline.Publisher{Store: pe.store, Sink: sink, Log: pe.log, FinalDrain: 2 * time.Minute}
	go func() { pub.Run(pctx); close(done) }()
	return func() { cancel(); <-done; sink.Close() }, nil
}

func pipelineServe(ctx context.Context, env *Env, path, listen string) (err error) {
	pe, err := openPipeline(ctx, env, path, true)
	if err != nil {
		return err
	}
	defer pe.store.Close()
	defer func() { err = pe.scrub.Wrap(err) }()
	if n, err := pe.store.FailQueuedJobs(ctx); err == nil && n > 0 {
		pe.log.Warn("jobs left queued by an earlier process marked failed", "jobs", n)
	}
	stopPub, err := pe.publisher(ctx, env)
	if err != nil {
		return err
	}
	defer stopPub()
	sc := pe.cfg.Pipeline.Serve
	if listen == "" {
		listen = sc.Listen.String()
	}
	srv := &pipeline.Server{Tagger: pe.tagger, Store: pe.store, Log: pe.log, MaxBodyBytes: int64(sc.MaxBodyBytes),
		FetchTimeout: sc.FetchTimeout.D(), FetchAllow: sc.FetchAllow, MaxQueueBytes: int64(sc.MaxQueueBytes),
		Workers: sc.Workers, ImagesDir: pe.cfg.Path(pe.cfg.Pipeline.ImagesDir), Scrub: pe.scrub, Token: os.Getenv(sc.TokenEnv)}
	if srv.Token == "" && !loopbackAddr(listen) {
		return fmt.Errorf("pipeline.serve.listen %s is not a loopback address: refusing to serve the API there without a token in $%s", listen, sc.TokenEnv)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("pipeline.serve.listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(env.Stdout, "pipeline serving on http://%s (provider %s, store %s, events %s)\n", ln.Addr(), pe.cfg.Pipeline.Provider,
		pe.store.Dialect(), pe.cfg.Pipeline.Events.Sink)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served: // the listener failed: stop in order, then say why
		serveErr = fmt.Errorf("pipeline.serve.listen: %w", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	return errors.Join(serveErr, err, srv.Close(sctx))
}

// loopbackAddr reports whether a listen address binds loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func pipelineRun(ctx context.Context, env *Env, path, source string, conc int, queue, s3Endpoint string, progress bool) (err error) {
	pe, err := openPipeline(ctx, env, path, true)
	if err != nil {
		return err
	}
	defer pe.store.Close()
	defer func() { err = pe.scrub.Wrap(err) }()
	presign := pe.cfg.Providers[pe.cfg.Pipeline.Provider].Format == config.FormatHolySheep
	src, err := pipeline.OpenSource(ctx, source, pipeline.S3Options{Endpoint: s3Endpoint, PresignURLs: presign})
	if err != nil {
		return err
	}
	stopPub, err := pe.publisher(ctx, env)
	if err != nil {
		return err
	}
	var st pipeline.BackfillStats
	var runErr error
	if queue != "" {
		q, err := pipeline.OpenQueue(ctx, queue, pe.cfg.Pipeline.Queue, pe.cfg.Pipeline.Retry.MaxAttempts)
		if err != nil {
			stopPub()
			return err
		}
		items, err := src.Items(ctx)
		if err == nil {
			err = q.Enqueue(ctx, items, pe.tagger.Rules.Version())
		}
		if err != nil {
			q.Close()
			stopPub()
			return err
		}
		st, runErr = q.Work(ctx, src, pe.tagger, conc, 2*time.Second, pe.log)
		st.Items = len(items)
		q.Close()
	} else {
		var bar io.Writer // nil: no progress bar
		if progress {
			bar = os.Stderr
		}
		st, runErr = pipeline.Backfill(ctx, src, pe.tagger, conc, bar)
	}
	stopPub() // drains the outbox
	c, _ := pe.store.Counts(context.Background())
	fmt.Fprintf(env.Stderr, "backfill %s: %d items: %d tagged now, %d done before, %d dead-lettered, in %s (%.0f images/s); store: %d versions, %d events delivered of %d, %d review items pending, %d dead letters\n",
		src.Name(), st.Items, st.Tagged, st.Skipped, st.Dead, st.Elapsed.Round(time.Millisecond), float64(st.Tagged)/max(st.Elapsed.Seconds(), 1e-9),
		c.Versions, c.Delivered, c.Events, c.Review, c.DeadLetters)
	return runErr
}

func pipelineExport(ctx context.Context, env *Env, path, out string) (err error) {
	pe, err := openPipeline(ctx, env, path, false)
	if err != nil {
		return err
	}
	defer pe.store.Close()
	defer func() { err = pe.scrub.Wrap(err) }()
	n, missing, err := pipeline.ExportFixtures(ctx, pe.store, pe.cfg.Path(pe.cfg.Pipeline.ImagesDir), out, pe.tx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "exported %d human corrections as labelled fixtures in %s", n, out)
	if missing > 0 {
		fmt.Fprintf(env.Stdout, " (%d without a kept image skipped)", missing)
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

func pipelineStatus(ctx context.Context, env *Env, path string) (err error) {
	pe, err := openPipeline(ctx, env, path, false)
	if err != nil {
		return err
	}
	defer pe.store.Close()
	defer func() { err = pe.scrub.Wrap(err) }()
	c, err := pe.store.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "store %s: %d products, %d tag versions, %d events (%d delivered), %d review items pending, %d dead letters\n",
		pe.store.Dialect(), c.Products, c.Versions, c.Events, c.Delivered, c.Review, c.DeadLetters)
	rs, err := pe.store.ReviewStats(ctx)
	if err != nil {
		return err
	}
	printReviewStats(env.Stdout, rs, pe.cfg.Pipeline.Rules)
	dl, err := pe.store.DeadLetters(ctx)
	for _, d := range dl {
		fmt.Fprintf(env.Stdout, "dead letter %v after %v attempts: %s\n", d["item_key"], d["attempts"], pe.scrub.String(strings.TrimSpace(fmt.Sprint(d["last_error"]))))
	}
	return err
}

// printReviewStats prints the share of products queued for review beside
// the share the provider got wrong.
func printReviewStats(w io.Writer, rs pipeline.ReviewStats, r config.Rules) {
	pct := func(n, of int64) string {
		if of == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f %%", 100*float64(n)/float64(of))
	}
	var why []string
	for _, code := range []string{pipeline.ReasonCategoryLow, pipeline.ReasonMargin, pipeline.ReasonAttributeLow, pipeline.ReasonNoCategory, pipeline.ReasonTagLow} {
		if n := rs.ByReason[code]; n > 0 {
			label := map[string]string{
				pipeline.ReasonCategoryLow:  fmt.Sprintf("best category LOW (< %.2f)", *r.Medium),
				pipeline.ReasonMargin:       fmt.Sprintf("best two within %.2f", *r.ReviewMargin),
				pipeline.ReasonAttributeLow: "an attribute LOW",
				pipeline.ReasonNoCategory:   "no category",
				pipeline.ReasonTagLow:       "a LOW tag (items stored one per LOW tag)",
			}[code]
			why = append(why, fmt.Sprintf("%d %s", n, label))
		}
	}
	line := fmt.Sprintf("review queue: %d of %d products queued (%s)", rs.Queued, rs.Products, pct(rs.Queued, rs.Products))
	if len(why) > 0 {
		line += ": " + strings.Join(why, ", ")
	}
	fmt.Fprintln(w, line)
	if rs.Labelled == 0 {
		fmt.Fprintln(w, "provider wrong: n/a (no tagged product's source item carried a label: tag a fixture manifest with `pipeline run --source` to measure it)")
		return
	}
	fmt.Fprintf(w, "provider wrong: %d of %d labelled products (%s): best category differs from the source's label; %d of the %d wrong queued, %d of %d labelled queued (%s)\n",
		rs.Wrong, rs.Labelled, pct(rs.Wrong, rs.Labelled), rs.WrongQueued, rs.Wrong, rs.LabelledQueued, rs.Labelled, pct(rs.LabelledQueued, rs.Labelled))
}
