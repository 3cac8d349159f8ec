package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/table"
	"github.com/cutover/cutover/label"
)

func labelCmd() *command {
	fs := flag.NewFlagSet("label", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8095", "address of the labelling page; off loopback only with a token (--token-env)")
	out := fs.String("out", "", "output folder: the fixture set the labels go to (required); an existing one is resumed")
	budget := fs.Int("budget", 300, "number of images to label in all, allocated over the strata")
	seed := fs.Uint64("seed", 1, "random seed: the same runs and seed give the same sample")
	minPer := fs.Int("min-per-stratum", 20, "least number of images drawn from each non-empty stratum (fewer when it has fewer)")
	low := fs.Float64("low-confidence", 0.75, "an agreement where either top-1 confidence is below this is in the low stratum (0–1)")
	show := fs.Bool("show-providers", false, "show the providers' names (hidden by default, so the labeller is not biased)")
	tokenEnv := fs.String("token-env", "CUTOVER_LABEL_TOKEN", "environment variable holding a token that every API request must carry (Authorization: Bearer); required off loopback")
	exitDone := fs.Bool("exit-when-done", false, "exit once every sampled image has a decision (for scripts)")
	tax, cfg := taxonomyFlag(fs)
	return &command{
		fs:      fs,
		summary: "label a stratified sample of recorded production pairs in a browser (a fixture set with inclusion probabilities)",
		usage:   "--listen 127.0.0.1:8095 --out DIR [--budget N] [--seed N] [--min-per-stratum N] [--low-confidence F] [--show-providers] RUN_DIR...",
		example: "cutover label --listen 127.0.0.1:8095 --out out/labels --budget 300 out/runs/shadow-1\n" +
			"# then open http://127.0.0.1:8095/ — keys: 1/2 take an answer, n neither (search), s skip, Enter save",
		run: func(ctx context.Context, env *Env, args []string) error {
			if *out == "" {
				return usagef("--out is required")
			}
			if len(args) == 0 {
				return usagef("want at least one run directory")
			}
			if *budget < 1 || *budget > 1_000_000 {
				return usagef("--budget must be 1–1,000,000")
			}
			if *minPer < 1 {
				return usagef("--min-per-stratum must be at least 1")
			}
			if *low < 0 || *low > 1 {
				return usagef("--low-confidence must be 0–1")
			}
			token := os.Getenv(*tokenEnv)
			if !label.LoopbackAddr(*listen) && token == "" {
				return fmt.Errorf("--listen %s is not a loopback address: refusing to serve production images there without a token in $%s", *listen, *tokenEnv)
			}
			tx, err := resolveTaxonomy(*tax, *cfg)
			if err != nil {
				return err
			}
			sess, err := label.Prepare(ctx, label.Options{Out: *out, Runs: args, Low: *low, Taxonomy: tx,
				Sample: label.SampleOptions{Budget: *budget, MinPerStratum: *minPer, Seed: *seed}})
			if err != nil {
				return err
			}
			st := sess.Store
			defer st.Close()
			printDesign(env, sess)
			ln, err := net.Listen("tcp", *listen)
			if err != nil {
				return fmt.Errorf("listening for the labelling page: %w", err)
			}
			done := make(chan struct{})
			srv := label.NewServer(st, tx, label.ServerOptions{ShowProviders: *show, Token: token, Addr: ln.Addr().String(),
				Done: func() { close(done) }})
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			fmt.Fprintf(env.Stdout, "label: open http://%s/", ln.Addr())
			if token != "" {
				fmt.Fprintf(env.Stdout, "#token=<the value of $%s>", *tokenEnv)
			}
			fmt.Fprintln(env.Stdout, " — keys: 1/2 take that answer, n neither (search the taxonomy), s skip, Enter save")
			wait := ctx.Done()
			var doneC <-chan struct{}
			if *exitDone {
				doneC = done
			}
			select {
			case <-wait:
			case <-doneC:
			case err := <-errc:
				return fmt.Errorf("serving the labelling page: %w", err)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs.Shutdown(sctx) // a label being saved finishes first
			p := st.Progress()
			fmt.Fprintf(env.Stdout, "label: %d labelled, %d skipped, %d to go of %d; fixture set in %s\n", p.Labelled, p.Skipped, p.Remaining, p.Total, st.Dir())
			return nil
		},
	}
}

// printDesign says what was sampled from what, and what was left out.
func printDesign(env *Env, sess *label.Session) {
	st := sess.Store
	d := st.Design()
	if sess.Resumed {
		fmt.Fprintf(env.Stdout, "label: resuming the sample in %s (seed %d, drawn %s)\n", st.Dir(), d.Seed, d.Created.Format(time.RFC3339))
		if st.Recovered {
			fmt.Fprintf(env.Stdout, "label: the decision log ended in a line cut short by a crash; that line was dropped (its image is asked again)\n")
		}
	}
	pairs := 0
	for _, r := range d.Runs {
		pairs += r.Pairs
	}
	ex := d.Excluded
	fmt.Fprintf(env.Stdout, "label: %d run directories, %s pairs, %s distinct images in the frame; %s and %s are %s and %s\n",
		len(d.Runs), thousands(pairs), thousands(d.Population), d.Providers[0].Role, d.Providers[1].Role, d.Providers[0].Name, d.Providers[1].Name)
	if ex.IncompletePairs+ex.UnhashedPairs+ex.MissingImages+ex.TamperedImages > 0 {
		fmt.Fprintf(env.Stdout, "label: left out of the frame: %d incomplete pairs, %d pairs without an image hash, %d images missing, %d images altered\n",
			ex.IncompletePairs, ex.UnhashedPairs, ex.MissingImages, ex.TamperedImages)
		for i, im := range ex.Images {
			if i == 20 {
				fmt.Fprintf(env.Stdout, "  … and %d more, listed in %s/design.json\n", len(ex.Images)-20, st.Dir())
				break
			}
			fmt.Fprintf(env.Stdout, "  %.12s… in %s: %s\n", im.SHA256, im.Run, im.Reason)
		}
	}
	var rows [][]string
	for _, s := range d.Strata {
		rows = append(rows, []string{s.Name, thousands(s.Population), thousands(s.Sample), strconv.FormatFloat(s.InclusionProbability, 'f', 4, 64), s.Definition})
	}
	table.Render(env.Stdout, []string{"stratum", "images", "sample", "inclusion probability", "definition"}, rows, false)
	p := st.Progress()
	fmt.Fprintf(env.Stdout, "label: %d images to label in %s: %d labelled, %d skipped so far\n", p.Total, st.Dir(), p.Labelled, p.Skipped)
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
