package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/vision/visiontest"
)

// gcvKey is the test's GCV API key; it contains characters that URL
// escaping changes, so that every form of it is looked for.
const gcvKey = "AIzaSy-TEST+secret/0123456789"

// leakyGCV is a GCV endpoint that fails in the ways that carry a key back:
// mode "echo" answers 500 with the key it received (from ?key= or the
// x-goog-api-key header) in the error message; mode "hangup" closes the
// connection, so the client's transport error quotes the request URL.
func leakyGCV(t *testing.T, mode string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		if h := r.Header.Get("x-goog-api-key"); h != "" {
			key = h
		}
		if key != gcvKey {
			t.Errorf("the provider got key %q, want the configured one", key)
		}
		if mode == "hangup" {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"error": {"code": 500, "message": "backend failed for key %s (%s)", "status": "INTERNAL"}}`, key, url.QueryEscape(key))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// leaks returns the forms of the key found in text.
func leaks(text string) []string {
	var out []string
	for _, form := range []string{gcvKey, url.QueryEscape(gcvKey), url.PathEscape(gcvKey), "0123456789"} {
		if strings.Contains(text, form) {
			out = append(out, form)
		}
	}
	return out
}

// TestSecretsScrubbed: with a GCV provider whose key comes back in an
// error (echoed in the body, or in the URL of a transport error), the key
// is in none of the API's answers (sync 502, async job), the jobs and
// dead_letters rows, the dead letters as read back (rows written without
// a scrubber included) or the log.
func TestSecretsScrubbed(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"echo", "hangup"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			cfg := testConfigWith(t, fmt.Sprintf(`{format: gcv, base_url: "%s", credentials: {api_key: "%s"}, timeout: 2s}`, leakyGCV(t, mode), gcvKey),
				"sqlite://"+filepath.Join(dir, "p.db"), "")
			sc := secret.New(cfg.Secrets()...)
			st, err := Open(ctx, cfg.Pipeline.Store.URL, "", WithScrubber(sc))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tg := newTagger(t, cfg, st)
			tg.Scrub = sc
			var logs bytes.Buffer
			srv := &Server{Tagger: tg, Store: st, Log: slog.New(slog.NewTextHandler(&logs, nil)), MaxBodyBytes: 1 << 20,
				FetchTimeout: time.Second, Workers: 1, Scrub: sc}
			hs := httptest.NewServer(srv.Handler())
			defer func() { hs.Close(); srv.Close(ctx) }()
			a := &api{t: t, url: hs.URL, store: st, srv: srv}
			var seen []string // everything that left the pipeline
			img := jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(visiontest.PNG(8, 8, 1))})
			code, out := a.do("POST", "/v1/products/s-1/images", "application/json", img)
			if code != http.StatusBadGateway {
				t.Errorf("sync: %d %v, want 502", code, out)
			}
			seen = append(seen, fmt.Sprint(out))
			_, out = a.do("POST", "/v1/products/s-2/images?async=true", "application/json", img)
			job, _ := out["job_id"].(string)
			if !waitFor(t, 20*time.Second, func() bool { _, j := a.do("GET", "/v1/jobs/"+job, "", nil); return j["status"] == "failed" }) {
				t.Fatal("the async job never failed")
			}
			_, out = a.do("GET", "/v1/jobs/"+job, "", nil)
			seen = append(seen, fmt.Sprint(out))
			// A backfill dead-letters the image with its last error.
			src, _ := OpenSource(ctx, imageDir(t, 1), S3Options{})
			if s, err := Backfill(ctx, src, tg, 1, nil); err != nil || s.Dead != 1 {
				t.Fatalf("backfill: %+v %v", s, err)
			}
			// A row written by a store without a scrubber is scrubbed when read.
			if _, err := st.db.Exec(`INSERT INTO dead_letters (item_key, product_id, source, attempts, last_error, created_at) VALUES ('old', 'p', 's', 1, ?, '2026-01-01T00:00:00Z')`,
				"server_error: POST /v1/images:annotate?key="+url.QueryEscape(gcvKey)+" echoed "+gcvKey); err != nil {
				t.Fatal(err)
			}
			dl, _ := st.DeadLetters(ctx)
			if len(dl) != 2 {
				t.Fatalf("dead letters: %v", dl)
			}
			seen = append(seen, fmt.Sprint(dl), logs.String())
			var rows []string
			for _, q := range []string{`SELECT error FROM jobs`, `SELECT last_error FROM dead_letters WHERE item_key <> 'old'`} {
				r, _ := st.db.Query(q)
				for r.Next() {
					var s string
					r.Scan(&s)
					rows = append(rows, s)
				}
				r.Close()
			}
			seen = append(seen, rows...)
			for _, text := range seen {
				if l := leaks(text); len(l) > 0 {
					t.Errorf("the key (%q) leaked into: %s", l, text)
				}
			}
			if all := strings.Join(seen, "\n"); !strings.Contains(all, secret.Redacted) || !strings.Contains(all, "server_error") && !strings.Contains(all, "network") {
				t.Errorf("want the errors kept, with the key as %s:\n%s", secret.Redacted, all)
			}
		})
	}
}
