package reports

import (
	"bytes"
	"net/http"

	"github.com/cutover/cutover/record"
)

// LiveRun is a run directory being recorded, as the live report page
// reads it. *record.Writer is one.
type LiveRun interface {
	// Flush makes the run directory readable as it stands (observations
	// handed over so far reach their file, run.json is rewritten).
	Flush()
	// Dir is the run directory's path.
	Dir() string
}

var _ LiveRun = (*record.Writer)(nil)

// LiveHandler serves the go/no-go report over a run being recorded: on
// every GET the run is flushed, its directory opened and the report built
// afresh with opt, then rendered as HTML or, with ?format=json, as JSON
// (any other format is 400). The verdict is in the X-Cutover-Verdict
// header and nothing is cached (Cache-Control: no-store).
//
// One report is built at a time: reloads wait for the build in progress
// (or give up when their client does) rather than pile up work on the
// machine that carries production traffic. A failed build is a 500 with
// its error. The proxy's admin listener serves it at /report; cmd hands it
// over, so the proxy does not depend on this package.
func LiveHandler(run LiveRun, opt Options) http.Handler {
	sem := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		format := r.URL.Query().Get("format")
		if format != "" && format != "html" && format != "json" {
			http.Error(w, "format: expected html or json", http.StatusBadRequest)
			return
		}
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-r.Context().Done():
			return
		}
		run.Flush()
		d, err := record.Open(run.Dir())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rep, err := Build([]*record.Dir{d}, opt) // a zero opt.Now stamps each build anew
		if err != nil {
			http.Error(w, "building the report: "+err.Error(), http.StatusInternalServerError)
			return
		}
		var buf bytes.Buffer
		if format == "json" {
			w.Header().Set("Content-Type", "application/json")
			err = JSON(&buf, rep)
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			err = HTML(&buf, rep)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Cutover-Verdict", rep.Verdict)
		w.Write(buf.Bytes())
	})
}
