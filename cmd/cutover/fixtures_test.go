package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision/visiontest"
)

const testTaxonomy = "../../taxonomy.yaml"

// TestFixturesImport runs the command as a user would: flags before and
// after the source, a summary on stdout, a set that fixtures check passes
// and fixtures.Load reads; --strict exits 1 with the list.
func TestFixturesImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i, n := range []string{"a.jpg", "b.jpg", "c.jpg"} {
		os.WriteFile(filepath.Join(dir, n), visiontest.JPEG(10, 10, uint64(i+1)), 0o644)
	}
	src := filepath.Join(dir, "export.csv")
	os.WriteFile(src, []byte("sku,path,type,colour\nA,a.jpg,Tshirts,Black\nB,b.jpg,Tshirtz,Blue\nC,c.jpg,Watches,\nD,missing.jpg,Jeans,\n"), 0o644)
	out := filepath.Join(dir, "set")
	code, stdout, stderr := run(t, ctx, "fixtures", "import", "--out", out, "--taxonomy", testTaxonomy, src,
		"--columns", "id=sku,image=path,category=type,color=colour", "--write-mapping", filepath.Join(dir, "m.yaml"))
	if code != exitOK {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	for _, want := range []string{"imported 2 images into " + out + " from 4 rows", "left out: 2 rows", "unmapped name          1", "missing image          1",
		`category "Tshirtz"`, "closest: apparel/topwear/tshirts", "export.csv:5: id D: missing image", "mapping skeleton: " + filepath.Join(dir, "m.yaml")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if code, o, e := run(t, ctx, "fixtures", "check", "--taxonomy", testTaxonomy, out); code != exitOK {
		t.Errorf("fixtures check: exit %d %s%s", code, o, e)
	}
	s, err := fixtures.Load(out)
	if err != nil || len(s.Items) != 2 || s.Items[0].ID != "A" {
		t.Errorf("Load: %v %v", s, err)
	}

	code, stdout, stderr = run(t, ctx, "fixtures", "import", "--strict", "--taxonomy", testTaxonomy, "--columns", "id=sku,image=path,category=type",
		"--out", filepath.Join(dir, "strict"), src)
	if code != exitRuntime || !strings.Contains(stdout, `"Tshirtz"`) || !strings.Contains(stderr, "1 name does not map") {
		t.Errorf("--strict: exit %d, want 1 with the list:\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "strict")); err == nil {
		t.Error("--strict wrote a set")
	}

	// The preset on a generated catalogue export.
	cat := filepath.Join(dir, "fpi")
	if code, o, e := run(t, ctx, "fixtures", "gen", "--preset", "fashion-product-images", "--n", "12", "--out", cat, "--taxonomy", testTaxonomy); code != exitOK {
		t.Fatalf("gen --preset: exit %d %s%s", code, o, e)
	}
	code, stdout, stderr = run(t, ctx, "fixtures", "import", "--preset", "fashion-product-images", "--taxonomy", testTaxonomy, "--out", filepath.Join(dir, "fpi-set"), cat)
	if code != exitOK || !strings.Contains(stdout, "imported 12 images") {
		t.Errorf("import --preset: exit %d %s%s", code, stdout, stderr)
	}
}

func TestFixturesImportUsage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fixtures", "import", "x.csv"}, exitUsage, "--out is required"},
		{[]string{"fixtures", "import", "--out", "o"}, exitUsage, "want at least one SOURCE"},
		{[]string{"fixtures", "import", "--out", "o", "--columns", "sku", "x.csv"}, exitUsage, `"sku": want key=column`},
		{[]string{"fixtures", "import", "--out", "o", "--preset", "nope", "x.csv"}, exitUsage, `--preset: unknown "nope"`},
		{[]string{"fixtures", "import", "--out", "o", "--concurrency", "0", "x.csv"}, exitUsage, "--concurrency must be 1–1024"},
		{[]string{"fixtures", "import", "--out", "o", "--taxonomy", testTaxonomy, "--mapping", "nope.yaml", "x.csv"}, exitRuntime, "loading mapping"},
		{[]string{"fixtures", "import", "--out", "o", "--taxonomy", testTaxonomy, "nope.csv"}, exitRuntime, "no such file"},
		{[]string{"fixtures", "gen", "--out", "o", "--preset", "nope"}, exitUsage, `--preset: unknown "nope"`},
		{[]string{"help", "fixtures"}, exitOK, "import --out DIR"},
	} {
		code, out, errs := run(t, ctx, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errs)
		}
	}
}
