package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func fixturesCmd() *command {
	fs := flag.NewFlagSet("fixtures", flag.ContinueOnError)
	return &command{
		fs:      fs,
		summary: "generate, check or import a labelled fixture set (gen, check, import)",
		usage: "gen --out DIR [--n 2000] [--seed 1] [--preset NAME] [--taxonomy taxonomy.yaml] | check [--taxonomy taxonomy.yaml] DIR\n" +
			"       | import --out DIR [--taxonomy FILE] [--mapping FILE] [--columns SPEC] [--preset NAME] [--strict] [--write-mapping FILE] SOURCE...",
		example: "cutover fixtures gen --out out/fixtures --n 2000 --seed 1\ncutover fixtures check out/fixtures\n" +
			"cutover fixtures import --out out/catalogue --columns id=sku,image=image_path,category=article_type,color=base_colour export.csv\n" +
			"cutover fixtures import --out out/fashion --preset fashion-product-images ~/data/fashion-product-images",
		run: func(ctx context.Context, env *Env, args []string) error {
			if len(args) == 0 {
				return usagef("want a subcommand: gen, check or import")
			}
			switch args[0] {
			case "gen":
				return fixturesGen(env, args[1:])
			case "check":
				return fixturesCheck(env, args[1:])
			case "import":
				return fixturesImport(ctx, env, args[1:])
			}
			return usagef("unknown subcommand %q (want gen, check or import)", args[0])
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
		cfg, err := config.LoadWithoutSecrets(cfgPath)
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
	preset := fs.String("preset", "", "write a synthetic catalogue export in a preset's layout (fashion-product-images: styles.csv and images/<id>.jpg with the catalogue's own names) instead of a fixture set; for trying fixtures import")
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
	if *preset != "" && *preset != "fashion-product-images" {
		return usagef("--preset: unknown %q (known: fashion-product-images)", *preset)
	}
	tx, err := resolveTaxonomy(*tax, *cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if *preset != "" {
		if err := fixtures.GenerateCatalogue(*out, tx, fixtures.CatalogueOptions{N: *n, Seed: *seed}); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "generated a %s catalogue export of %d products in %s (%.1fs): styles.csv and images/\n", *preset, *n, *out, time.Since(start).Seconds())
		return nil
	}
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

func fixturesImport(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("fixtures import", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	out := fs.String("out", "", "fixture folder to create (required); written beside it first, renamed into place when complete")
	tax, cfg := taxonomyFlag(fs)
	mapping := fs.String("mapping", "", "YAML file mapping your names to canonical values (user name: canonical value)")
	columns := fs.String("columns", "", "labels columns, e.g. id=sku,image=image_path,category=article_type,color=base_colour (keys: id, image, category, color, pattern, material, style)")
	preset := fs.String("preset", "", "a known catalogue layout: "+strings.Join(fixtures.PresetNames(), ", "))
	strict := fs.Bool("strict", false, "fail (exit 1, before reading images) when any name does not map")
	writeMapping := fs.String("write-mapping", "", "write a mapping skeleton of the unmapped names (and --mapping's entries) to this file")
	replace := fs.Bool("replace", false, "replace --out if it exists (the old set is removed once the new one is in place)")
	conc := fs.Int("concurrency", fixtures.DefaultImportConcurrency, "images read at once (files, http(s), s3)")
	maxBytes := fs.Int64("max-image-bytes", fixtures.DefaultMaxImageBytes, "largest image accepted, in bytes (default: Rekognition's 5 MiB)")
	maxSide := fs.Int("max-side", fixtures.DefaultMaxSide, "largest width or height accepted, in pixels")
	timeout := fs.Duration("timeout", fixtures.DefaultImportTimeout, "time limit for fetching one http(s) image")
	s3Endpoint := fs.String("s3-endpoint", "", "S3-compatible endpoint (default $AWS_ENDPOINT_URL_S3, else AWS)")
	noProgress := fs.Bool("no-progress", false, "no progress bar (there is none when stderr is not a terminal)")
	sources, err := parseInterleaved(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	switch {
	case *out == "":
		return usagef("--out is required")
	case len(sources) == 0:
		return usagef("want at least one SOURCE: a .csv/.tsv/.jsonl labels file, a folder, or s3://bucket/prefix")
	case *conc < 1 || *conc > 1024:
		return usagef("--concurrency must be 1–1024")
	case *maxBytes < 1 || *maxSide < 1 || *timeout <= 0:
		return usagef("--max-image-bytes, --max-side and --timeout must be > 0")
	}
	opt := fixtures.ImportOptions{Out: *out, Replace: *replace, Preset: *preset, Strict: *strict, WriteMapping: *writeMapping,
		Concurrency: *conc, MaxImageBytes: *maxBytes, MaxSide: *maxSide, Timeout: *timeout, S3: fixtures.S3Options{Endpoint: *s3Endpoint}}
	if *preset != "" && !slices.Contains(fixtures.PresetNames(), *preset) {
		return usagef("--preset: unknown %q (known: %s)", *preset, strings.Join(fixtures.PresetNames(), ", "))
	}
	if *columns != "" {
		c, err := fixtures.ParseColumns(*columns)
		if err != nil {
			return usagef("%v", err)
		}
		opt.Columns = &c
	}
	if opt.Taxonomy, err = resolveTaxonomy(*tax, *cfg); err != nil {
		return err
	}
	if *mapping != "" {
		if opt.Mapping, err = fixtures.LoadMapping(*mapping, opt.Taxonomy); err != nil {
			return err
		}
	}
	if f, ok := env.Stderr.(*os.File); ok && !*noProgress && term.IsTerminal(int(f.Fd())) {
		opt.Progress = f
	}
	rep, err := fixtures.Import(ctx, sources, opt)
	if rep != nil {
		printImportReport(env.Stdout, rep, err == nil)
		if *writeMapping != "" {
			fmt.Fprintf(env.Stdout, "mapping skeleton: %s (%s to fill in)\n", *writeMapping, count(len(rep.Unmapped), "name"))
		}
	}
	return err
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// listed is how many problems of one reason the summary prints; every
// one is in the set's import-report.json.
const listed = 20

func printImportReport(w io.Writer, r *fixtures.ImportReport, complete bool) {
	if complete {
		rate := 0.0
		if s := r.Elapsed.Seconds(); s > 0 {
			rate = float64(r.Images) / s
		}
		fmt.Fprintf(w, "imported %d images into %s from %d rows in %.1fs (%.0f images/s, %.1f MB read)\n",
			r.Imported, r.Out, r.Rows, r.Elapsed.Seconds(), rate, float64(r.Bytes)/1e6)
	} else {
		fmt.Fprintf(w, "read %d rows; nothing written to %s\n", r.Rows, r.Out)
	}
	if r.MergedRows > 0 {
		fmt.Fprintf(w, "merged duplicates: %s into %s (the same image with the same labels; their ids are in duplicate_ids)\n", count(r.MergedRows, "row"), count(len(r.Merged), "image"))
	}
	if n := r.DroppedTotal(); n > 0 {
		fmt.Fprintf(w, "left out: %s\n", count(n, "row"))
		for _, reason := range fixtures.DropReasons {
			if c := r.Dropped[reason]; c > 0 {
				fmt.Fprintf(w, "  %-22s %d\n", reason, c)
			}
		}
	}
	if r.SkippedHidden > 0 {
		fmt.Fprintf(w, "skipped %s (names starting with .)\n", count(r.SkippedHidden, "hidden file or folder"))
	}
	if len(r.Unmapped) > 0 {
		fmt.Fprintf(w, "\nunmapped names (%d):\n", len(r.Unmapped))
		for _, u := range r.Unmapped {
			var c []string
			for _, x := range u.Candidates {
				c = append(c, x.Value)
			}
			fmt.Fprintf(w, "  %-8s %-28q %10s  first %s  closest: %s\n", u.Kind, u.Name, count(u.Count, "item"), u.First, strings.Join(c, ", "))
		}
	}
	if len(r.Conflicts) > 0 {
		fmt.Fprintf(w, "\nconflicting labels (%d):\n", len(r.Conflicts))
		for i, c := range r.Conflicts {
			if i == listed {
				fmt.Fprintf(w, "  … %d more\n", len(r.Conflicts)-listed)
				break
			}
			var parts []string
			for _, v := range sortedKeys(c.Values) {
				parts = append(parts, fmt.Sprintf("%s (%s)", v, strings.Join(c.Values[v], ", ")))
			}
			fmt.Fprintf(w, "  sha256 %s… %s: %s: %s\n", c.SHA256[:12], c.Field, strings.Join(parts, " vs "), c.Resolution)
		}
	}
	byReason := map[fixtures.DropReason][]fixtures.ImportProblem{}
	for _, p := range r.Problems {
		byReason[p.Reason] = append(byReason[p.Reason], p)
	}
	for _, reason := range fixtures.DropReasons {
		ps := byReason[reason]
		if len(ps) == 0 || reason == fixtures.DropConflict {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", reason, len(ps))
		for i, p := range ps {
			if i == listed {
				fmt.Fprintf(w, "  … %d more", len(ps)-listed)
				if complete {
					fmt.Fprintf(w, " (all in %s)", filepath.Join(r.Out, fixtures.ReportName))
				}
				fmt.Fprintln(w)
				break
			}
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "\nwarnings (%d, rows kept):\n", len(r.Warnings))
		for i, p := range r.Warnings {
			if i == listed {
				fmt.Fprintf(w, "  … %d more\n", len(r.Warnings)-listed)
				break
			}
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

// count is "1 row", "2 rows".
func count(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if word == "hidden file or folder" {
		return fmt.Sprintf("%d hidden files or folders", n)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
