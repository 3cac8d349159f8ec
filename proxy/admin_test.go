package proxy

import (
	"io"
	"net/http"
	"testing"
)

// TestAdminOffLoopbackNeedsToken: on an admin listener bound off
// loopback every path but /healthz and /readyz needs the bearer token,
// GETs included (pprof's goroutine dump, /report, /admin/status) and
// /metrics unless proxy.admin_public_metrics. (The listener here is on
// loopback, marked as bound off it: tests do not open public ports.)
func TestAdminOffLoopbackNeedsToken(t *testing.T) {
	t.Setenv("CUTOVER_ADMIN_TOKEN", "tok-Adm44")
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "report") })
	get := func(e *env, path, token string) int {
		r, _ := http.NewRequest(http.MethodGet, e.adminURL+path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	paths := []string{"/debug/pprof/goroutine?debug=1", "/debug/pprof/", "/report", "/admin/status", "/admin/canary", "/metrics"}
	e := newEnv(t, envOpts{report: page})
	for _, p := range append(paths, "/healthz", "/readyz") {
		if c := get(e, p, ""); c != 200 {
			t.Errorf("loopback admin GET %s: %d, want 200", p, c)
		}
	}
	e.p.adm.offLoopback.Store(true)
	for _, p := range paths {
		if c := get(e, p, ""); c != http.StatusUnauthorized {
			t.Errorf("off loopback GET %s without the token: %d, want 401", p, c)
		}
		if c := get(e, p, "wrong"); c != http.StatusUnauthorized {
			t.Errorf("off loopback GET %s with a wrong token: %d, want 401", p, c)
		}
		if c := get(e, p, "tok-Adm44"); c != 200 {
			t.Errorf("off loopback GET %s with the token: %d, want 200", p, c)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if c := get(e, p, ""); c != 200 {
			t.Errorf("off loopback GET %s: %d, want 200 (probes are open)", p, c)
		}
	}
	e2 := newEnv(t, envOpts{proxyExtra: "admin_public_metrics: true"})
	e2.p.adm.offLoopback.Store(true)
	if c := get(e2, "/metrics", ""); c != 200 {
		t.Errorf("admin_public_metrics: GET /metrics %d, want 200", c)
	}
	if c := get(e2, "/admin/status", ""); c != http.StatusUnauthorized {
		t.Errorf("admin_public_metrics: GET /admin/status %d, want 401", c)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:9091": true, "localhost:1": true, "[::1]:80": true, "127.0.0.2:5": true,
		"0.0.0.0:9091": false, ":9091": false, "10.0.0.5:80": false, "[::]:80": false, "bad": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
