package reports

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium finds a headless Chromium, or skips with the reason.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CUTOVER_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping: no Chromium on PATH (apt-get install -y chromium; .ci/run installs it)")
	return ""
}

// render loads page in headless Chromium, takes a screenshot and returns
// the console messages Chromium logged.
func render(t *testing.T, bin, page, shot string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--enable-logging=stderr", "--v=0", "--user-data-dir="+t.TempDir(), "--window-size=1280,3000", "--screenshot="+shot, "file://"+page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	var console []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") {
			console = append(console, l)
		}
	}
	return console
}

// TestHTMLInChromium renders the HTML report in headless Chromium: it
// must produce a screenshot and log nothing to the console. A page that
// breaks the report's Content-Security-Policy (an external image, an
// inline script) is rendered first to prove the check sees violations.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.html")
	os.WriteFile(bad, []byte(`<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"></head>`+
		`<body><img src="http://127.0.0.1:9/x.png"><script>console.log("ran")</script></body></html>`), 0o644)
	if got := render(t, bin, bad, filepath.Join(dir, "bad.png")); len(got) < 2 {
		t.Fatalf("the console check missed a blocked image and script: %q", got)
	}

	r, _ := buildSynthetic(t, 1000)
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "report.html")
	os.WriteFile(page, b.Bytes(), 0o644)
	shot := filepath.Join(dir, "report.png")
	if console := render(t, bin, page, shot); len(console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
	}
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 20_000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	if out := os.Getenv("CUTOVER_SCREENSHOT"); out != "" {
		os.WriteFile(out, png, 0o644)
	}
	// Self-contained: nothing is fetched.
	for _, ref := range []string{"http://", "https://", "<script", "@import", "url("} {
		if i := bytes.Index(b.Bytes(), []byte(ref)); i >= 0 && !bytes.Contains(b.Bytes()[max(0, i-10):i+len(ref)+30], []byte("w3.org/2000/svg")) {
			t.Errorf("the page references %q: %.80s", ref, b.Bytes()[i:])
		}
	}
}
