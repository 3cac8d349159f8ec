package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// canaryAdmin registers GET /admin/canary and the mutating calls: POST
// /admin/canary ({"percent": N}), /admin/pause, /admin/resume,
// /admin/rollback, /admin/promote. Mutations need "Authorization: Bearer
// <token>" with the token from the environment variable that
// canary.admin_token_env names; without one set they are refused.
func (p *Proxy) canaryAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/canary", func(w http.ResponseWriter, r *http.Request) {
		if p.ctl == nil {
			writeJSON(w, http.StatusOK, map[string]any{"mode": p.cfg.Proxy.Mode, "note": "shadow mode: the primary answers every client"})
			return
		}
		writeJSON(w, http.StatusOK, p.ctl.status(time.Now()))
	})
	mutate := func(path string, fn func(w http.ResponseWriter, r *http.Request) bool) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if !p.authorized(w, r) {
				return
			}
			if p.ctl == nil {
				writeJSON(w, http.StatusConflict, map[string]string{"error": "proxy.mode is shadow: there is no canary to change"})
				return
			}
			if fn(w, r) {
				writeJSON(w, http.StatusOK, p.ctl.status(time.Now()))
			}
		})
	}
	mutate("/admin/canary", func(w http.ResponseWriter, r *http.Request) bool {
		var body struct {
			Percent *float64 `json:"percent"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Percent == nil || *body.Percent < 0 || *body.Percent > 100 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `expected {"percent": N} with N from 0 to 100`})
			return false
		}
		p.ctl.setPercent(*body.Percent)
		return true
	})
	mutate("/admin/pause", func(http.ResponseWriter, *http.Request) bool { p.ctl.pause(true); return true })
	mutate("/admin/resume", func(http.ResponseWriter, *http.Request) bool { p.ctl.pause(false); return true })
	mutate("/admin/rollback", func(http.ResponseWriter, *http.Request) bool { p.ctl.operatorRollback(); return true })
	mutate("/admin/promote", func(http.ResponseWriter, *http.Request) bool { p.ctl.promote(); return true })
}

// authorized checks the bearer token in constant time, answering 401/403
// itself when it fails.
func (p *Proxy) authorized(w http.ResponseWriter, r *http.Request) bool {
	if p.adminToken == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "admin mutations are disabled: set the token in $" + p.cfg.Proxy.Canary.AdminTokenEnv})
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(p.adminToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cutover admin"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required"})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
