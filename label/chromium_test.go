package label

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/cutover/cutover/fixtures"
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

// browser starts headless Chromium driven over the DevTools protocol and
// collects what the page logs: console calls, uncaught exceptions and
// browser log entries (where CSP violations and failed loads appear).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	bin := chromium(t)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))...)
	var mu sync.Mutex
	var logs []string
	add := func(s string) { mu.Lock(); logs = append(logs, s); mu.Unlock() }
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value))
			}
			add(fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " ")))
		case *runtime.EventExceptionThrown:
			add("exception: " + e.ExceptionDetails.Text + " " + fmt.Sprint(e.ExceptionDetails.Exception))
		case *log.EventEntryAdded:
			add(fmt.Sprintf("log %s %s: %s", e.Entry.Source, e.Entry.Level, e.Entry.Text))
		}
	}))
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), logs...) }
}

// step runs actions with a deadline, failing the test with what the page
// logged.
func step(t *testing.T, ctx context.Context, logs func() []string, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({data: document.body.dataset, focus: document.activeElement.id, q: (document.getElementById('q')||{}).value, hits: Array.from(document.querySelectorAll('#hits li')).map(li => li.className + ' ' + li.textContent).slice(0, 5), message: document.getElementById('message').textContent})`))
		t.Fatalf("%s: %v\npage state: %s\npage log:\n%s", what, err, state, strings.Join(logs(), "\n"))
	}
}

func waitFor(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
}

// TestPageInChromium drives the page with the keyboard in headless
// Chromium: n, a search, Enter to pick, a corrected colour and Enter to
// save; a pickable answer's key and Enter; s to skip. Each decision is
// on disk when the page moves on, and a reload resumes at the next item.
// The page must log nothing (no CSP violation, no error). A page that
// breaks the policy is loaded first to prove the check sees violations.
func TestPageInChromium(t *testing.T) {
	tx, _ := world(t)
	ctx, logs := browser(t)

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", ContentSecurityPolicy)
		w.Write([]byte(`<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"><script>console.log("ran")</script></body></html>`))
	}))
	defer bad.Close()
	step(t, ctx, logs, "loading a page that breaks the CSP", chromedp.Navigate(bad.URL))
	// The violation reports may arrive after the load event.
	for deadline := time.Now().Add(10 * time.Second); len(logs()) < 2 && time.Now().Before(deadline); {
		runtimeGosched()
	}
	if got := logs(); len(got) < 2 {
		t.Fatalf("the log check missed a blocked image and an inline script: %q", got)
	}
	seenBad := len(logs())

	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 5})
	out := filepath.Join(dir, "out")
	st := prepare(t, out, []string{run}, 1).Store
	defer st.Close()
	ts := httptest.NewUnstartedServer(nil)
	ts.Config.Handler = NewServer(st, tx, ServerOptions{Addr: ts.Listener.Addr().String()}).Handler()
	ts.Start()
	defer ts.Close()

	d := st.Design()
	ready := func(i int) chromedp.Action[chromedp.Void] {
		return waitFor(fmt.Sprintf(`document.body.dataset.ready === %q && document.getElementById('image').naturalWidth > 0`, d.Sample[i].SHA256))
	}
	step(t, ctx, logs, "opening the page", chromedp.Navigate(ts.URL+"/"), ready(0))

	// Item 1: neither answer — n, search "watch", Enter picks the first
	// hit, the colour is corrected, Enter saves.
	step(t, ctx, logs, "n and a search",
		chromedp.KeyEvent("n"), waitFor(`document.body.dataset.mode === 'search' && document.activeElement.id === 'q'`),
		chromedp.KeyEvent("watch"), waitFor(`document.getElementById('q').value === 'watch' && document.querySelector('#hits li.active') && document.querySelector('#hits li.active').textContent === 'accessories/watches'`),
		chromedp.KeyEvent(kb.Enter), waitFor(`document.body.dataset.mode === 'confirm' && document.getElementById('category').textContent === 'accessories/watches'`),
		chromedp.SetValue(chromedp.CSS(`#attr-color`), "navy-blue"), chromedp.Focus(chromedp.CSS(`#attr-color`)),
		chromedp.KeyEvent(kb.Enter), ready(1))
	dc := lastDecision(t, out)
	if dc.SHA256 != d.Sample[0].SHA256 || dc.Decision != DecisionLabel || dc.Choice != ChoiceNeither || dc.Category != "accessories/watches" || dc.Attributes["color"] != "navy-blue" {
		t.Errorf("item 1 saved as %+v", dc)
	}

	// Item 2: the first pickable answer's key, then Enter.
	it := st.show(1, false)
	key := ""
	for _, a := range it.Answers {
		if a.Pickable {
			key = fmt.Sprint(a.Slot)
			break
		}
	}
	if key == "" {
		t.Fatalf("item 2 has no pickable answer: %+v", it.Answers)
	}
	step(t, ctx, logs, "pressing "+key,
		chromedp.KeyEvent(key), waitFor(`document.body.dataset.mode === 'confirm' && document.getElementById('answer-`+key+`').classList.contains('chosen')`),
		chromedp.KeyEvent(kb.Enter), ready(2))
	dc = lastDecision(t, out)
	want := it.Answers[0]
	if key == "2" {
		want = it.Answers[1]
	}
	if dc.SHA256 != it.SHA256 || dc.Choice != key || dc.Category != want.Category || dc.Attributes["color"] != want.Attributes["color"] {
		t.Errorf("item 2 saved as %+v, want answer %s (%s, colour %s)", dc, key, want.Category, want.Attributes["color"])
	}

	// Item 3: skipped.
	step(t, ctx, logs, "s", chromedp.KeyEvent("s"), ready(3))
	if dc = lastDecision(t, out); dc.SHA256 != d.Sample[2].SHA256 || dc.Decision != DecisionSkip {
		t.Errorf("item 3 saved as %+v", dc)
	}

	// The labels are in the fixture set; a reload resumes at item 4.
	set, err := fixtures.Load(out)
	if err != nil || len(set.Items) != 2 || set.Items[0].Category != "accessories/watches" {
		t.Fatalf("fixture set after two labels: %v %+v", err, set)
	}
	if probs := fixtures.Check(set, tx); len(probs) > 0 {
		t.Errorf("fixtures check: %v", probs)
	}
	step(t, ctx, logs, "reloading", chromedp.Reload(), ready(3),
		waitFor(`document.getElementById('progress').textContent.startsWith('2 labelled, 1 skipped')`))
	if shot := os.Getenv("CUTOVER_SCREENSHOT"); shot != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			os.WriteFile(shot, png, 0o644)
		}
	}
	if got := logs()[seenBad:]; len(got) > 0 {
		t.Errorf("the page logged:\n%s", strings.Join(got, "\n"))
	}
}

// runtimeGosched waits a moment for events from the browser.
func runtimeGosched() { <-time.After(10 * time.Millisecond) }

// lastDecision reads the last line of the decision log.
func lastDecision(t *testing.T, out string) Decision {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, LogName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var dc Decision
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &dc); err != nil {
		t.Fatal(err)
	}
	return dc
}
