package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

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
// input and 5xx for the service's own failures.
type Server struct {
	Tagger       *Tagger
	Store        *Store
	Log          *slog.Logger
	MaxBodyBytes int64
	FetchTimeout time.Duration
	Workers      int
	// ImagesDir keeps images of items sent to review, for export-fixtures.
	ImagesDir string

	jobs    chan job
	wg      sync.WaitGroup
	fetcher *http.Client
}

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
	s.jobs = make(chan job, 1024)
	s.fetcher = &http.Client{Timeout: s.FetchTimeout}
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
		writeErr(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s (see cutover pipeline serve -h)", r.Method, r.URL.Path))
	})
	return mux
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
		if err != nil {
			s.Store.UpdateJob(ctx, j.id, "failed", err.Error(), 0)
			continue
		}
		s.Store.UpdateJob(ctx, j.id, "done", "", res.Version.Version)
	}
}

// validID: product ids are 1–128 printable characters without slashes.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f || r == '/' {
			return false
		}
	}
	return true
}

func (s *Server) postImage(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("id")
	if !validID(pid) {
		writeErr(w, http.StatusBadRequest, "invalid_product_id", "product ids are 1–128 printable characters without '/'")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
	img, status, code, err := s.readImage(r)
	if err != nil {
		writeErr(w, status, code, err.Error())
		return
	}
	if async, _ := strconv.ParseBool(r.URL.Query().Get("async")); async {
		id := newJobID()
		j, err := s.Store.CreateJob(r.Context(), id, pid)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, "store", err.Error())
			return
		}
		select {
		case s.jobs <- job{id: id, productID: pid, img: img}:
		default:
			s.Store.UpdateJob(r.Context(), id, "failed", "queue full", 0)
			writeErr(w, http.StatusServiceUnavailable, "busy", "too many queued jobs: retry later")
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
		writeErr(w, status, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product_id": pid, "version": res.Version.Version, "created": res.Created,
		"tags": res.Version.Tags, "review": res.Tagging.Review, "image_sha256": img.SHA256})
}

// tag tags and keeps the image of review items for export-fixtures.
func (s *Server) tag(ctx context.Context, pid string, img vision.Image) (Result, error) {
	res, err := s.Tagger.Tag(ctx, pid, img)
	if err == nil && len(res.Tagging.Review) > 0 && s.ImagesDir != "" {
		if err := storeImage(s.ImagesDir, img); err != nil && s.Log != nil {
			s.Log.Warn("keeping a review image failed", "err", err)
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

// fetch downloads an image_url (http or https), bounded in size and time.
func (s *Server) fetch(ctx context.Context, u string) ([]byte, int, error) {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, http.StatusBadRequest, errors.New("image_url must be http or https")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("image_url: %v", err)
	}
	resp, err := s.fetcher.Do(req)
	if err != nil {
		return nil, http.StatusBadGateway, fmt.Errorf("fetching image_url: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, http.StatusUnprocessableEntity, fmt.Errorf("fetching image_url: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxBodyBytes+1))
	if err != nil {
		return nil, http.StatusBadGateway, fmt.Errorf("fetching image_url: %v", err)
	}
	if int64(len(b)) > s.MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the image at image_url is larger than %d bytes", s.MaxBodyBytes)
	}
	return b, 0, nil
}

func (s *Server) getTags(w http.ResponseWriter, r *http.Request) {
	vs, err := s.Store.History(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeErr(w, http.StatusNotFound, "unknown_product", fmt.Sprintf("no tags for product %q", r.PathValue("id")))
		return
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product_id": r.PathValue("id"), "current": vs[0], "history": vs})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.Store.GetJob(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeErr(w, http.StatusNotFound, "unknown_job", fmt.Sprintf("no job %q", r.PathValue("id")))
		return
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) listReview(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeErr(w, http.StatusBadRequest, "bad_request", "limit: expected 1–1000")
			return
		}
		limit = n
	}
	items, err := s.Store.ListReview(r.Context(), limit)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) resolveReview(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("item"), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "review item ids are numbers")
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
		writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf(`invalid JSON: %v (expected {"action": "accept"|"reject"|"correct", "category": …})`, err))
		return
	}
	var corr *Tag
	if body.Action == Correct {
		if s.Tagger.Tax != nil && body.Category != "" {
			if _, ok := s.Tagger.Tax.Category(body.Category); !ok {
				writeErr(w, http.StatusBadRequest, "unknown_category", fmt.Sprintf("%q is not a category of the taxonomy", body.Category))
				return
			}
		}
		corr = &Tag{Category: body.Category, Attributes: body.Attributes}
	}
	it, v, err := s.Store.Resolve(r.Context(), id, body.Action, corr)
	switch {
	case errors.Is(err, ErrNotFound):
		writeErr(w, http.StatusNotFound, "unknown_review_item", fmt.Sprintf("no review item %d", id))
	case errors.Is(err, ErrConflict):
		writeErr(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, ErrInvalid):
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
	case err != nil:
		writeErr(w, http.StatusInternalServerError, "store", err.Error())
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

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": msg, "code": code})
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
