package label

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cutover/cutover/fixtures"
)

// serve starts the labelling server on a loopback port.
func serve(t *testing.T, st *Store, opt ServerOptions) (*httptest.Server, *Client) {
	t.Helper()
	tx, _ := world(t)
	ts := httptest.NewUnstartedServer(nil)
	opt.Addr = ts.Listener.Addr().String()
	ts.Config.Handler = NewServer(st, tx, opt).Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts, &Client{Base: ts.URL, Token: opt.Token}
}

func TestAPI(t *testing.T) {
	_, fx := world(t)
	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 5})
	st := prepare(t, filepath.Join(dir, "out"), []string{run}, 1).Store
	defer st.Close()
	ts, c := serve(t, st, ServerOptions{})
	ctx := context.Background()

	nr, err := c.Next(ctx)
	if err != nil || nr.Done || nr.Item == nil {
		t.Fatalf("next: %+v %v", nr, err)
	}
	it := *nr.Item
	if it.Answers[0].Provider != "" || it.Answers[1].Provider != "" {
		t.Errorf("provider names shown by default: %+v", it.Answers)
	}
	img, err := c.Image(ctx, it)
	truth, _ := fx.BySHA(it.SHA256)
	want, _ := fx.ReadImage(truth)
	if err != nil || !bytes.Equal(img, want) {
		t.Errorf("image: %d bytes, want the fixture's %d (%v)", len(img), len(want), err)
	}
	hits, err := c.Search(ctx, "shirt", 5)
	if err != nil || len(hits) == 0 || hits[0].Path != "apparel/topwear/shirts" {
		t.Errorf("search shirt: %+v %v", hits, err)
	}
	if hits, _ := c.Search(ctx, "zzzz", 5); len(hits) != 0 {
		t.Errorf("search zzzz: %+v", hits)
	}
	// A wrong choice is refused with 422, then the oracle's answer saved.
	bad := OracleAnswer(it, fx)
	bad.Category = "apparel"
	var ae *APIError
	if _, err := c.Label(ctx, bad); !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		t.Errorf("a non-leaf label: got %v", err)
	}
	lr, err := c.Label(ctx, OracleAnswer(it, fx))
	if err != nil || !lr.Saved || lr.Progress.Labelled != 1 {
		t.Fatalf("label: %+v %v", lr, err)
	}
	if _, err := c.Label(ctx, OracleAnswer(it, fx)); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("labelling twice: got %v, want 409", err)
	}
	again := OracleAnswer(it, fx)
	again.Replace = true
	if _, err := c.Label(ctx, again); err != nil {
		t.Errorf("replacing: %v", err)
	}
	if nr, _ := c.Next(ctx); nr.Item == nil || nr.Item.SHA256 == it.SHA256 || nr.Item.Position != 2 {
		t.Errorf("next after a label: %+v", nr.Item)
	}
	p, err := c.Progress(ctx)
	if err != nil || p.Labelled != 1 || p.Total != 20 || len(p.Strata) != 4 {
		t.Errorf("progress %+v %v", p, err)
	}
	if set, err := fixtures.Load(st.Dir()); err != nil || len(set.Items) != 1 {
		t.Errorf("the label is not in the manifest: %v", err)
	}

	// The page: same-origin assets only, under the CSP.
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy || !strings.Contains(got, "script-src 'self'") {
		t.Errorf("CSP %q", got)
	}
	for _, re := range []string{`https?://`, `//`, `\son[a-z]+=`, `style=`, `<style`} {
		if regexp.MustCompile(re).Match(body) {
			t.Errorf("the page matches %s: it must load nothing from elsewhere and run no inline code", re)
		}
	}
	if n, src := bytes.Count(body, []byte("<script")), bytes.Count(body, []byte(`<script src="/`)); n != src || n != 1 {
		t.Errorf("the page has %d scripts, %d of them from its own origin: want its one script file", n, src)
	}
}

// TestAPIGuards: the checks that keep other sites, other hosts and
// callers without the token out.
func TestAPIGuards(t *testing.T) {
	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 5})
	st := prepare(t, filepath.Join(dir, "out"), []string{run}, 1).Store
	defer st.Close()
	ts, c := serve(t, st, ServerOptions{})
	it, _ := st.Next(false)
	skip := `{"sha256":"` + it.SHA256 + `","decision":"skip"}`
	do := func(method, path, body string, hdr map[string]string) int {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jsonCT := map[string]string{"Content-Type": "application/json"}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		want   int
	}{
		{"a form post (no preflight)", "POST", "/api/label", skip, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"no content type", "POST", "/api/label", skip, nil, http.StatusUnsupportedMediaType},
		{"another origin", "POST", "/api/label", skip, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, http.StatusForbidden},
		{"a cross-site fetch", "GET", "/api/next", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"DNS rebinding (another Host)", "GET", "/api/next", "", map[string]string{"Host": "evil.example:8095"}, http.StatusMisdirectedRequest},
		{"an unknown field", "POST", "/api/label", `{"sha256":"x","decision":"skip","admin":true}`, jsonCT, http.StatusBadRequest},
		{"an image outside the sample", "GET", "/api/image/" + strings.Repeat("a", 64), "", nil, http.StatusNotFound},
		{"a bad limit", "GET", "/api/taxonomy?limit=0", "", nil, http.StatusBadRequest},
		{"a GET of the label endpoint", "GET", "/api/label", "", nil, http.StatusMethodNotAllowed},
		{"same origin", "POST", "/api/label", skip, map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": ts.URL, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"localhost", "GET", "/api/progress", "", map[string]string{"Host": "localhost" + ts.URL[strings.LastIndexByte(ts.URL, ':'):]}, http.StatusOK},
	} {
		if got := do(tc.method, tc.path, tc.body, tc.hdr); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	if p, _ := c.Progress(context.Background()); p.Skipped != 1 {
		t.Errorf("exactly the same-origin skip should have been saved: %+v", p)
	}

	// With a token, every API call needs it; the page itself does not.
	ts2, c2 := serve(t, st, ServerOptions{Token: "s3cret-token"})
	c2.Token = ""
	var ae *APIError
	if _, err := c2.Next(context.Background()); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("no token: got %v", err)
	}
	c2.Token = "wrong"
	if _, err := c2.Next(context.Background()); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("a wrong token: got %v", err)
	}
	c2.Token = "s3cret-token"
	if _, err := c2.Next(context.Background()); err != nil {
		t.Errorf("the token: %v", err)
	}
	if resp, err := http.Get(ts2.URL + "/app.js"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the page's script needs no token: %v %v", resp, err)
	}
	if !LoopbackAddr("127.0.0.1:8095") || !LoopbackAddr("localhost:1") || !LoopbackAddr("[::1]:1") || LoopbackAddr(":8095") || LoopbackAddr("0.0.0.0:8095") || LoopbackAddr("10.0.0.1:80") {
		t.Error("LoopbackAddr misjudges an address")
	}
}

// TestShowProviders: with names shown, each slot names the provider
// whose answer it holds, and the sides are shuffled across items.
func TestShowProviders(t *testing.T) {
	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 5})
	st := prepare(t, filepath.Join(dir, "out"), []string{run}, 1).Store
	defer st.Close()
	firsts := map[string]int{}
	for i, u := range st.Design().Sample {
		it := st.show(i, true)
		for slot, a := range it.Answers {
			side := sideOf(u, []string{Choice1, Choice2}[slot])
			if a.Provider != u.Answers[side].Provider {
				t.Errorf("%.8s slot %d names %s, holds %s's answer", u.SHA256, slot+1, a.Provider, u.Answers[side].Provider)
			}
		}
		firsts[it.Answers[0].Provider]++
	}
	if firsts["legacy"] == 0 || firsts["holysheep"] == 0 {
		t.Errorf("answer 1 is always the same provider: %v", firsts)
	}
}
