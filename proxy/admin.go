package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/record"
)

// admin is the admin listener's handler: /metrics, /healthz, /readyz,
// /admin/status, the canary API, the live /report page (a handler cmd/
// hands in) and Go's profiler.
//
// Who may call what: /healthz and /readyz are open (load balancers probe
// them). Mutations (POST) always need "Authorization: Bearer <token>"
// with the token from the environment variable canary.admin_token_env
// names; without one set they are refused. On a listener bound off
// loopback every other path needs the token too, GETs included (pprof,
// /report, /admin/status), and /metrics unless proxy.admin_public_metrics.
type admin struct {
	token, tokenEnv string
	// offLoopback is set once the listener is bound to a non-loopback address.
	offLoopback   atomic.Bool
	publicMetrics bool

	met      *metrics
	ctl      *controller // nil in shadow mode
	brk      *breaker
	mode     string
	status   func() Status
	report   http.Handler // nil: no /report page
	stopping *atomic.Bool
	ready    func() (bool, string) // extra readiness (a fleet's connection); nil: always
	replicas func() map[string]any // the fleet's replicas; nil for one process
}

func (a *admin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace) // scheduling delays: go tool trace
	if a.report != nil {
		mux.Handle("GET /report", a.report)
	}
	a.canaryAPI(mux)
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, a.status()) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.needsToken(r) && !a.authorized(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// needsToken says whether r must carry the admin token.
func (a *admin) needsToken(r *http.Request) bool {
	switch {
	case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
		return false
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return true
	case !a.offLoopback.Load():
		return false
	case r.URL.Path == "/metrics":
		return !a.publicMetrics
	}
	return true
}

func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	if a.stopping.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if a.ready != nil {
		if ok, detail := a.ready(); !ok {
			http.Error(w, "not ready: "+detail, http.StatusServiceUnavailable)
			return
		} else if detail != "" {
			w.Write([]byte("ready: " + detail + "\n"))
			return
		}
	}
	w.Write([]byte("ready\n"))
}

// canaryAPI registers GET /admin/canary and the mutating calls: POST
// /admin/canary ({"percent": N}), /admin/pause, /admin/resume,
// /admin/rollback, /admin/promote.
func (a *admin) canaryAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/canary", func(w http.ResponseWriter, r *http.Request) {
		if a.ctl == nil {
			writeJSON(w, http.StatusOK, map[string]any{"mode": a.mode, "note": "shadow mode: the primary answers every client"})
			return
		}
		writeJSON(w, http.StatusOK, a.canaryStatus())
	})
	// A mutation answers 503 when the change could not be saved (a fleet
	// whose store is out of reach): the share stays as it was.
	mutate := func(path string, fn func(w http.ResponseWriter, r *http.Request) (bool, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if a.ctl == nil {
				writeJSON(w, http.StatusConflict, map[string]string{"error": "proxy.mode is shadow: there is no canary to change"})
				return
			}
			ok, err := fn(w, r)
			switch {
			case err != nil:
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the change was not saved: " + err.Error()})
			case ok:
				writeJSON(w, http.StatusOK, a.canaryStatus())
			}
		})
	}
	mutate("/admin/canary", func(w http.ResponseWriter, r *http.Request) (bool, error) {
		var body struct {
			Percent *float64 `json:"percent"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Percent == nil || *body.Percent < 0 || *body.Percent > 100 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `expected {"percent": N} with N from 0 to 100`})
			return false, nil
		}
		return true, a.ctl.setPercent(*body.Percent)
	})
	mutate("/admin/pause", func(http.ResponseWriter, *http.Request) (bool, error) { return true, a.ctl.pause(true) })
	mutate("/admin/resume", func(http.ResponseWriter, *http.Request) (bool, error) { return true, a.ctl.pause(false) })
	mutate("/admin/rollback", func(http.ResponseWriter, *http.Request) (bool, error) { return true, a.ctl.operatorRollback() })
	mutate("/admin/promote", func(http.ResponseWriter, *http.Request) (bool, error) { return true, a.ctl.promote() })
}

func (a *admin) canaryStatus() map[string]any {
	out := a.ctl.status()
	if a.brk != nil {
		out["breaker"] = a.brk.status()
	}
	if a.replicas != nil {
		out["fleet"] = a.replicas()
	}
	return out
}

// authorized checks the bearer token in constant time, answering 401/403
// itself when it fails.
func (a *admin) authorized(w http.ResponseWriter, r *http.Request) bool {
	if a.token == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "this admin call needs a token: set it in $" + a.tokenEnv})
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
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

// Status is GET /admin/status.
type Status struct {
	Mode      string                    `json:"mode"`
	Started   time.Time                 `json:"started"`
	Primary   string                    `json:"primary"`
	Candidate string                    `json:"candidate"`
	Providers map[string]ProviderStatus `json:"providers"`
	Agreement Agreement                 `json:"agreement"`
	Coverage  record.Coverage           `json:"coverage"`
	Mirror    MirrorStatus              `json:"mirror"`
}

// ProviderStatus is live latency from the HDR histograms.
type ProviderStatus struct {
	Count int64   `json:"count"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// Agreement is live agreement over pairs where both answered, scored by
// the report's own functions (compare): the same pairs give the report's
// numbers.
type Agreement struct {
	Pairs int64    `json:"pairs"`
	Agree int64    `json:"agree"`
	Rate  *float64 `json:"rate"`
	// Top1 is the top-1 agreement with its Wilson 95 % interval.
	Top1 compare.Rate `json:"top1"`
	// TopKJaccard is the mean Jaccard overlap of the top-k category sets.
	TopK        int          `json:"top_k"`
	TopKJaccard compare.Mean `json:"topk_jaccard"`
	// Attributes is agreement per attribute kind (colour within report.color_delta_e).
	Attributes []compare.KindRate `json:"attributes"`
}

// MirrorStatus is the mirror's live state.
type MirrorStatus struct {
	InFlight   int64   `json:"in_flight"`
	QueueBytes int64   `json:"queue_bytes"`
	SpendToday float64 `json:"spend_today"`
	Paused     bool    `json:"paused"`
}
