package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/vision"
)

// Server is the tagging HTTP API:
//
//	POST /v1/products/{id}/images   JSON {"image_url"|"image_base64"} or multipart "image"; ?async=true → 202 + job
//	GET  /v1/products/{id}/tags     current tags and history
//	GET  /v1/jobs/{id}              an async job
//	GET  /v1/review                 pending review items (?limit=)
//	POST /v1/review/{item}          {"action": "accept"|"reject"|"correct", "category": …, "attributes": {…}}
//
// Errors are JSON: {"error": "...", "code": "..."} with a 4xx for bad
// input and 5xx for the service's own failures, scrubbed of secrets.
type Server struct {
	Tagger       *Tagger
	Store        *Store
	Log          *slog.Logger
	MaxBodyBytes int64
	FetchTimeout time.Duration
	// FetchAllow lists the hosts and CIDRs image_url may reach although
	// they are loopback, link-local, private or otherwise special-purpose
	// (pipeline.serve.fetch_allow).
	FetchAllow []string
	// MaxQueueBytes bounds the image bytes of queued and running async
	// jobs (pipeline.serve.max_queue_bytes); 0 means 256 MiB.
	MaxQueueBytes int64
	Workers       int
	// ImagesDir keeps images of items sent to review, for export-fixtures.
	ImagesDir string
	// Scrub removes secrets from every error the API answers or logs.
	Scrub *secret.Scrubber
	// Token, when set, is the bearer token every call but /healthz needs
	// (compared in constant time).
	Token string

	jobs        chan job
	wg          sync.WaitGroup
	fetcher     *http.Client
	guard       *fetchGuard
	dialer      *net.Dialer // tests set its Resolver and Control
	queuedBytes atomic.Int64
}

// retryAfterSeconds is what a 503 asks a client to wait.
const retryAfterSeconds = "5"

type job struct {
	id, productID string
	img           vision.Image
}

// Handler returns the API's handler and starts the async workers; Close
// stops them after the queued jobs are done.
func (s *Server) Handler() http.Handler {
	if s.Workers <= 0 {
		s.Workers = 8
	}
	if s.MaxQueueBytes <= 0 {
		s.MaxQueueBytes = 256 << 20
	}
	s.jobs = make(chan job, 1024)
	var err error
	if s.fetcher, s.guard, err = newFetcher(s.FetchAllow, s.FetchTimeout, s.dialer); err != nil {
		// Config validation reports this with its line; refusing every
		// special-purpose address is the safe fallback.
		if s.Log != nil {
			s.Log.Error("pipeline.serve.fetch_allow ignored", "err", err)
		}
		s.fetcher, s.guard, _ = newFetcher(nil, s.FetchTimeout, s.dialer)
	}
	for range s.Workers {
		s.wg.Add(1)
		go s.worker()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/products/{id}/images", s.postImage)
	mux.HandleFunc("GET /v1/products/{id}/tags", s.getTags)
	mux.HandleFunc("GET /v1/jobs/{id}", s.getJob)
	mux.HandleFunc("GET /v1/review", s.listReview)
	mux.HandleFunc("POST /v1/review/{item}", s.resolveReview)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s (see cutover pipeline serve -h)", r.Method, strconv.QuoteToASCII(r.URL.Path)))
	})
	if s.Token == "" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.URL.Path != "/healthz" && (!ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) != 1) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover pipeline"`)
			s.writeErr(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// QueuedBytes is the image bytes held by queued and running async jobs.
func (s *Server) QueuedBytes() int64 { return s.queuedBytes.Load() }

// reserve counts n more queued bytes unless that passes MaxQueueBytes.
func (s *Server) reserve(n int64) bool {
	for {
		cur := s.queuedBytes.Load()
		if cur+n > s.MaxQueueBytes {
			return false
		}
		if s.queuedBytes.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// Close waits for queued async jobs (bounded by ctx).
func (s *Server) Close(ctx context.Context) error {
	close(s.jobs)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) worker() {
	defer s.wg.Done()
	for j := range s.jobs {
		ctx := context.Background()
		s.Store.UpdateJob(ctx, j.id, "running", "", 0)
		res, err := s.tag(ctx, j.productID, j.img)
		s.queuedBytes.Add(-int64(len(j.img.Bytes)))
		if err != nil {
			s.Store.UpdateJob(ctx, j.id, "failed", s.Scrub.Error(err), 0)
			continue
		}
		s.Store.UpdateJob(ctx, j.id, "done", "", res.Version.Version)
	}
}

// maxIDRunes bounds a product id, in characters (runes), not bytes.
const maxIDRunes = 128

// validID reports whether id is a product id: valid UTF-8 of 1–128
// characters, none of them a space, '/', a control character (C0, DEL,
// C1), a bidirectional formatting character (U+061C, U+200E, U+200F,
// U+202A–U+202E, U+2066–U+2069) or a line or paragraph separator (U+2028,
// U+2029). Such characters make an id that prints as another one.
func validID(id string) bool {
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > maxIDRunes {
		return false
	}
	for _, r := range id {
		switch {
		case r <= 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f, r == '/':
			return false
		case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return false
		case r == 0x2028, r == 0x2029:
			return false
		}
	}
	return true
}

// idRule is what a 400 invalid_product_id says.
const idRule = "product ids are 1–128 characters of valid UTF-8 without spaces, '/', control, bidirectional-formatting or line-separator characters"

func (s *Server) postImage(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("id")
	if !validID(pid) {
		s.writeErr(w, http.StatusBadRequest, "invalid_product_id", idRule)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
	img, status, code, err := s.readImage(r)
	if err != nil {
		s.writeErr(w, status, code, err.Error())
		return
	}
	if async, _ := strconv.ParseBool(r.URL.Query().Get("async")); async {
		n := int64(len(img.Bytes))
		if !s.reserve(n) {
			w.Header().Set("Retry-After", retryAfterSeconds)
			s.writeErr(w, http.StatusServiceUnavailable, "busy", fmt.Sprintf("the async queue holds its limit of %d image bytes (pipeline.serve.max_queue_bytes): retry later", s.MaxQueueBytes))
			return
		}
		id := newJobID()
		j, err := s.Store.CreateJob(r.Context(), id, pid)
		if err != nil {
			s.queuedBytes.Add(-n)
			s.writeErr(w, http.StatusInternalServerError, "store", err.Error())
			return
		}
		select {
		case s.jobs <- job{id: id, productID: pid, img: img}:
		default:
			s.queuedBytes.Add(-n)
			s.Store.UpdateJob(r.Context(), id, "failed", "queue full", 0)
			w.Header().Set("Retry-After", retryAfterSeconds)
			s.writeErr(w, http.StatusServiceUnavailable, "busy", "too many queued jobs: retry later")
			return
		}
		w.Header().Set("Location", "/v1/jobs/"+id)
		writeJSON(w, http.StatusAccepted, j)
		return
	}
	res, err := s.tag(r.Context(), pid, img)
	if err != nil {
		status, code := http.StatusBadGateway, string(vision.ErrorCode(err))
		switch vision.ErrorCode(err) {
		case vision.CodeBadImage, vision.CodeTooLarge:
			status = http.StatusUnprocessableEntity
		}
		if isStoreErr(err) && !errors.Is(err, ErrExhausted) {
			status, code = http.StatusInternalServerError, "store"
		}
		s.writeErr(w, status, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product_id": pid, "version": res.Version.Version, "created": res.Created,
		"tags": res.Version.Tags, "review": res.Tagging.Review, "review_reasons": res.Tagging.Reasons, "image_sha256": img.SHA256})
}

// tag tags and keeps the image of review items for export-fixtures.
func (s *Server) tag(ctx context.Context, pid string, img vision.Image) (Result, error) {
	res, err := s.Tagger.Tag(ctx, pid, img, "")
	if err == nil && len(res.Tagging.Review) > 0 && s.ImagesDir != "" {
		if err := storeImage(s.ImagesDir, img); err != nil && s.Log != nil {
			s.Log.Warn("keeping a review image failed", "err", s.Scrub.Error(err))
		}
	}
	return res, err
}

// readImage takes the image from JSON (image_base64 or image_url) or a
// multipart upload (field "image").
func (s *Server) readImage(r *http.Request) (vision.Image, int, string, error) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var b []byte
	switch mt {
	case "application/json":
		var body struct {
			ImageURL    string `json:"image_url"`
			ImageBase64 string `json:"image_base64"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return vision.Image{}, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("the body is larger than %d bytes", s.MaxBodyBytes)
			}
			return vision.Image{}, http.StatusBadRequest, "bad_request", fmt.Errorf("invalid JSON: %v (expected {\"image_url\": …} or {\"image_base64\": …})", err)
		}
		switch {
		case body.ImageBase64 != "" && body.ImageURL != "":
			return vision.Image{}, http.StatusBadRequest, "bad_request", errors.New("give image_url or image_base64, not both")
		case body.ImageBase64 != "":
			d, err := base64.StdEncoding.DecodeString(body.ImageBase64)
			if err != nil {
				return vision.Image{}, http.StatusBadRequest, "bad_request", errors.New("image_base64 is not valid base64")
			}
			b = d
		case body.ImageURL != "":
			d, status, err := s.fetch(r.Context(), body.ImageURL)
			if err != nil {
				return vision.Image{}, status, "image_url", err
			}
			b = d
		default:
			return vision.Image{}, http.StatusBadRequest, "bad_request", errors.New("expected image_url or image_base64")
		}
	case "multipart/form-data":
		if params["boundary"] == "" {
			return vision.Image{}, http.StatusBadRequest, "bad_request", errors.New("multipart body without a boundary")
		}
		f, _, err := r.FormFile("image")
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return vision.Image{}, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("the body is larger than %d bytes", s.MaxBodyBytes)
			}
			return vision.Image{}, http.StatusBadRequest, "bad_request", errors.New(`expected a file in the multipart field "image"`)
		}
		defer f.Close()
		if b, err = io.ReadAll(f); err != nil {
			return vision.Image{}, http.StatusBadRequest, "bad_request", err
		}
	default:
		return vision.Image{}, http.StatusUnsupportedMediaType, "unsupported_media_type", errors.New("send application/json or multipart/form-data")
	}
	img := vision.NewImage(b)
	if img.MediaType == "" {
		return img, http.StatusUnprocessableEntity, "invalid_image", errors.New("not a JPEG, PNG, GIF or WebP image")
	}
	return img, 0, "", nil
}

func (s *Server) getTags(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("id")
	if !validID(pid) {
		s.writeErr(w, http.StatusBadRequest, "invalid_product_id", idRule)
		return
	}
	vs, err := s.Store.History(r.Context(), pid)
	if errors.Is(err, ErrNotFound) {
		s.writeErr(w, http.StatusNotFound, "unknown_product", fmt.Sprintf("no tags for product %q", pid))
		return
	}
	if err != nil {
		s.writeErr(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product_id": pid, "current": vs[0], "history": vs})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.Store.GetJob(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		s.writeErr(w, http.StatusNotFound, "unknown_job", fmt.Sprintf("no job %s", strconv.QuoteToASCII(r.PathValue("id"))))
		return
	}
	if err != nil {
		s.writeErr(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) listReview(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeErr(w, http.StatusBadRequest, "bad_request", "limit: expected 1–1000")
			return
		}
		limit = n
	}
	items, err := s.Store.ListReview(r.Context(), limit)
	if err != nil {
		s.writeErr(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) resolveReview(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("item"), 10, 64)
	if err != nil {
		s.writeErr(w, http.StatusBadRequest, "bad_request", "review item ids are numbers")
		return
	}
	var body struct {
		Action     string            `json:"action"`
		Category   string            `json:"category"`
		Attributes map[string]string `json:"attributes"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		s.writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf(`invalid JSON: %v (expected {"action": "accept"|"reject"|"correct", "category": …})`, err))
		return
	}
	var corr *Tag
	if body.Action == Correct {
		attrs, code, msg := checkCorrection(s.Tagger.Tax, body.Category, body.Attributes)
		if code != "" {
			s.writeErr(w, http.StatusBadRequest, code, msg)
			return
		}
		corr = &Tag{Category: body.Category, Attributes: attrs}
	}
	it, v, err := s.Store.Resolve(r.Context(), id, body.Action, corr)
	switch {
	case errors.Is(err, ErrNotFound):
		s.writeErr(w, http.StatusNotFound, "unknown_review_item", fmt.Sprintf("no review item %d", id))
	case errors.Is(err, ErrConflict):
		s.writeErr(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, ErrInvalid):
		s.writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
	case err != nil:
		s.writeErr(w, http.StatusInternalServerError, "store", err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]any{"item": it, "version": v})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// checkCorrection checks a correction against the taxonomy: the category
// must be one of its paths, each attribute kind one it has a vocabulary
// for (colours: the palette), each value one of that vocabulary's values
// or their aliases. It returns the attributes with canonical values, or an
// error code (unknown_category, unknown_attribute, unknown_value) and
// message. An empty category is left to Resolve, which refuses it.
func checkCorrection(tax *vision.Taxonomy, category string, attrs map[string]string) (map[string]string, string, string) {
	if tax == nil {
		return nil, "unknown_category", "no taxonomy is loaded to check the correction against"
	}
	if category != "" {
		if _, ok := tax.Category(category); !ok {
			return nil, "unknown_category", fmt.Sprintf("%q is not a category of the taxonomy", category)
		}
	}
	if attrs == nil {
		return nil, "", ""
	}
	kinds := make([]string, 0, len(attrs))
	for k := range attrs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	out := make(map[string]string, len(attrs))
	for _, k := range kinds {
		kind := vision.AttributeKind(k)
		vocab := tax.AttributeValues(kind)
		if !kind.Valid() || len(vocab) == 0 {
			return nil, "unknown_attribute", fmt.Sprintf("attribute %s: the taxonomy has no such attribute (expected one of %s)", strconv.QuoteToASCII(k), kindList(tax))
		}
		v := attrs[k]
		if got, canon, ok := tax.LookupAttribute(v); ok && got == kind {
			out[k] = canon
			continue
		}
		return nil, "unknown_value", fmt.Sprintf("attribute %s: %s is not one of the taxonomy's values (%s)", k, strconv.QuoteToASCII(v), strings.Join(vocab, ", "))
	}
	return out, "", ""
}

// kindList names the attribute kinds the taxonomy has values for.
func kindList(tax *vision.Taxonomy) string {
	var ks []string
	for _, k := range vision.AttributeKinds {
		if len(tax.AttributeValues(k)) > 0 {
			ks = append(ks, string(k))
		}
	}
	return strings.Join(ks, ", ")
}

// writeErr answers a JSON error, its message scrubbed of secrets.
func (s *Server) writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": s.Scrub.String(msg), "code": code})
}

func newJobID() string {
	var b [12]byte
	rand.Read(b[:])
	return "job_" + hex.EncodeToString(b[:])
}

// storeImage keeps an image content-addressed under dir.
func storeImage(dir string, img vision.Image) error {
	if img.SHA256 == "" || len(img.Bytes) == 0 {
		return nil
	}
	ext := map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}[img.MediaType]
	p := filepath.Join(dir, img.SHA256[:2], img.SHA256+ext)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, img.Bytes, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// findImage returns a kept image's path.
func findImage(dir, sha string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, sha[:min(2, len(sha))], sha+".*"))
	if len(m) == 0 {
		return "", false
	}
	return m[0], true
}
