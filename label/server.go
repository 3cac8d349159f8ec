package label

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/vision"
)

//go:embed page/index.html page/app.js page/app.css
var page embed.FS

// ContentSecurityPolicy is sent with every response: the page loads its
// script, style and images from its own origin only (images as blob: URLs
// made from authenticated fetches), talks to its own API, runs no inline
// script and cannot be framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServerOptions configure the page and the API.
type ServerOptions struct {
	// ShowProviders shows the providers' names; by default they are
	// hidden (slots 1 and 2, in a random order per image).
	ShowProviders bool
	// Token, when set, is required on every /api/ request as
	// "Authorization: Bearer <token>". Without one the server must listen
	// on loopback only (the command refuses otherwise).
	Token string
	// Addr is the address the server listens on. On loopback, requests
	// must name it (or localhost, 127.0.0.1, [::1] at its port) in their
	// Host header, which defeats DNS rebinding. Empty: no Host check.
	Addr string
	// Now stamps decisions (nil: time.Now).
	Now func() time.Time
	// Done, if set, is called once when every sampled image has a
	// decision.
	Done func()
}

// Server serves the labelling page and its JSON API.
type Server struct {
	st    *Store
	tx    *vision.Taxonomy
	opt   ServerOptions
	hosts map[string]bool
	once  sync.Once
}

// NewServer returns the server of a store.
func NewServer(st *Store, tx *vision.Taxonomy, opt ServerOptions) *Server {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{st: st, tx: tx, opt: opt}
	if host, port, err := net.SplitHostPort(opt.Addr); err == nil && opt.Token == "" && isLoopback(host) {
		s.hosts = map[string]bool{}
		for _, h := range []string{host, "localhost", "127.0.0.1", "[::1]", "::1"} {
			s.hosts[net.JoinHostPort(strings.Trim(h, "[]"), port)] = true
		}
	}
	if st.Progress().Remaining == 0 {
		s.done()
	}
	return s
}

// isLoopback reports whether host (a name or an IP) is loopback only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// LoopbackAddr reports whether a listen address binds to loopback only
// (an empty host binds every interface).
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

func (s *Server) done() {
	if s.opt.Done != nil {
		s.once.Do(s.opt.Done)
	}
}

// Handler returns the HTTP handler:
//
//	GET  /                 the page (and /app.js, /app.css)
//	GET  /api/next         the next item without a decision, and the progress
//	POST /api/label        a decision about one item
//	GET  /api/progress     counts so far, per stratum
//	GET  /api/taxonomy?q=  taxonomy leaves matching q (limit=, default 20)
//	GET  /api/attributes   the attribute vocabularies
//	GET  /api/image/{sha}  a sampled image
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static := func(name, ctype string) http.HandlerFunc {
		b, err := page.ReadFile("page/" + name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(b)
		}
	}
	mux.HandleFunc("GET /{$}", static("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", static("app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app.css", static("app.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /api/next", s.next)
	mux.HandleFunc("POST /api/label", s.label)
	mux.HandleFunc("GET /api/progress", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.st.Progress())
	})
	mux.HandleFunc("GET /api/taxonomy", s.search)
	mux.HandleFunc("GET /api/attributes", s.attributes)
	mux.HandleFunc("GET /api/image/{sha}", s.image)
	return s.guard(mux)
}

// guard sets the security headers and applies the Host, token and
// cross-site checks before mux sees a request.
func (s *Server) guard(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.hosts != nil && !s.hosts[r.Host] {
			writeError(w, http.StatusMisdirectedRequest, "unexpected Host "+strconv.Quote(r.Host)+": open the page at the address cutover label printed")
			return
		}
		// A browser says where a request comes from: refuse any other site.
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			writeError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if s.opt.Token != "" {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opt.Token)) != 1 {
					h.Set("WWW-Authenticate", `Bearer realm="cutover label"`)
					writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
					return
				}
			}
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
					writeError(w, http.StatusForbidden, "cross-origin request refused (Origin "+strconv.Quote(o)+")")
					return
				}
				mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
				if err != nil || mt != "application/json" {
					writeError(w, http.StatusUnsupportedMediaType, "send the body as Content-Type: application/json")
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// NextResponse is GET /api/next's answer.
type NextResponse struct {
	Done     bool     `json:"done"`
	Item     *Item    `json:"item,omitempty"`
	Progress Progress `json:"progress"`
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	it, ok := s.st.Next(s.opt.ShowProviders)
	resp := NextResponse{Done: !ok, Progress: s.st.Progress()}
	if ok {
		resp.Item = &it
	}
	writeJSON(w, http.StatusOK, resp)
}

// LabelRequest is POST /api/label's body.
type LabelRequest struct {
	SHA256     string                          `json:"sha256"`
	Decision   string                          `json:"decision"`
	Choice     string                          `json:"choice,omitempty"`
	Category   string                          `json:"category,omitempty"`
	Attributes map[vision.AttributeKind]string `json:"attributes,omitempty"`
	// Replace overwrites an earlier decision about the same image.
	Replace bool `json:"replace,omitempty"`
}

// LabelResponse is POST /api/label's answer.
type LabelResponse struct {
	Saved    bool     `json:"saved"`
	Progress Progress `json:"progress"`
}

func (s *Server) label(w http.ResponseWriter, r *http.Request) {
	var req LabelRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "reading the label: "+err.Error())
		return
	}
	dc := Decision{SHA256: req.SHA256, Decision: req.Decision, Choice: req.Choice, Category: req.Category,
		Attributes: req.Attributes, Time: s.opt.Now().UTC()}
	err := s.st.Record(dc, req.Replace)
	var inv *InvalidError
	switch {
	case errors.Is(err, ErrDecided):
		writeError(w, http.StatusConflict, err.Error()+`: send "replace": true to change it`)
		return
	case errors.As(err, &inv):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "saving the label: "+err.Error())
		return
	}
	p := s.st.Progress()
	writeJSON(w, http.StatusOK, LabelResponse{Saved: true, Progress: p})
	if p.Remaining == 0 {
		s.done()
	}
}

// SearchResponse is GET /api/taxonomy's answer.
type SearchResponse struct {
	Categories []SearchHit `json:"categories"`
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be 1–1000")
			return
		}
		limit = n
	}
	hits := Search(s.tx, r.URL.Query().Get("q"), limit)
	if hits == nil {
		hits = []SearchHit{}
	}
	writeJSON(w, http.StatusOK, SearchResponse{Categories: hits})
}

func (s *Server) attributes(w http.ResponseWriter, r *http.Request) {
	out := map[vision.AttributeKind][]string{}
	for _, k := range []vision.AttributeKind{vision.KindColor, vision.KindPattern, vision.KindMaterial, vision.KindStyle} {
		out[k] = s.tx.AttributeValues(k)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) image(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if _, ok := s.st.index[sha]; !ok {
		writeError(w, http.StatusNotFound, "no such image in the sample")
		return
	}
	b, err := s.st.ReadImage(sha)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the image: "+err.Error()+" (skip it with s)")
		return
	}
	w.Header().Set("Content-Type", vision.SniffMediaType(b))
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

var (
	_ error = (*InvalidError)(nil)
	_ error = (*APIError)(nil)
	_ error = (*NoImagesError)(nil)
)
