package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision/visiontest"
)

type api struct {
	t     *testing.T
	url   string
	store *Store
	srv   *Server
	dir   string
}

// newAPI serves the pipeline API over a simulated provider whose answers
// are low-confidence enough to send tags to review; configure, when not
// nil, sets the server's fields before it starts.
func newAPI(t *testing.T, configure func(*Server)) *api {
	t.Helper()
	return newAPIOver(t, provider(t, "", nil), configure)
}

// newAPIOver is newAPI with the holysheep provider at providerURL.
func newAPIOver(t *testing.T, providerURL string, configure func(*Server)) *api {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, providerURL, "sqlite://"+filepath.Join(dir, "p.db"), "")
	st, err := Open(ctx, cfg.Pipeline.Store.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Tagger: newTagger(t, cfg, st), Store: st, MaxBodyBytes: 256 << 10, FetchTimeout: 5 * time.Second, Workers: 2,
		ImagesDir: filepath.Join(dir, "images")}
	if configure != nil {
		configure(srv)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close(context.Background()); st.Close() })
	return &api{t: t, url: hs.URL, store: st, srv: srv, dir: dir}
}

func (a *api) do(method, path, ctype string, body []byte) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		a.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func jsonBody(v any) []byte { b, _ := json.Marshal(v); return b }

func TestAPI(t *testing.T) {
	t.Parallel()
	// The image_url server is on loopback: allowed here, refused by default.
	a := newAPI(t, func(s *Server) { s.FetchAllow = []string{"127.0.0.1"} })
	png := visiontest.PNG(16, 16, 7)
	// JSON with base64: synchronous tags.
	code, out := a.do("POST", "/v1/products/sku-1/images", "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(png)}))
	if code != 200 || out["version"].(float64) != 1 || len(out["tags"].([]any)) == 0 {
		t.Fatalf("POST base64: %d %v", code, out)
	}
	// The same image again: idempotent, same version.
	if code, out := a.do("POST", "/v1/products/sku-1/images", "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(png)})); code != 200 || out["created"] != false || out["version"].(float64) != 1 {
		t.Errorf("repeat: %d %v", code, out)
	}
	// Multipart upload.
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	fw, _ := mw.CreateFormFile("image", "x.png")
	fw.Write(visiontest.PNG(16, 16, 8))
	mw.Close()
	if code, out := a.do("POST", "/v1/products/sku-1/images", mw.FormDataContentType(), mb.Bytes()); code != 200 || out["version"].(float64) != 2 {
		t.Errorf("multipart: %d %v", code, out)
	}
	// image_url.
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.png" {
			http.NotFound(w, r)
			return
		}
		w.Write(visiontest.PNG(16, 16, 9))
	}))
	defer img.Close()
	if code, out := a.do("POST", "/v1/products/sku-2/images", "application/json", jsonBody(map[string]string{"image_url": img.URL + "/a.png"})); code != 200 {
		t.Errorf("image_url: %d %v", code, out)
	}
	// Async: 202 and a job that finishes.
	code, out = a.do("POST", "/v1/products/sku-3/images?async=true", "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(visiontest.PNG(16, 16, 10))}))
	if code != 202 || !strings.HasPrefix(out["job_id"].(string), "job_") {
		t.Fatalf("async: %d %v", code, out)
	}
	job := out["job_id"].(string)
	if !waitFor(t, 10*time.Second, func() bool { _, j := a.do("GET", "/v1/jobs/"+job, "", nil); return j["status"] == "done" }) {
		t.Errorf("job never finished")
	}
	// History.
	code, out = a.do("GET", "/v1/products/sku-1/tags", "", nil)
	if code != 200 || len(out["history"].([]any)) != 2 || out["current"].(map[string]any)["version"].(float64) != 2 {
		t.Errorf("tags: %d %v", code, out)
	}
	// Bad input: clear 4xx with a JSON body.
	for _, tc := range []struct {
		method, path, ctype string
		body                []byte
		status              int
		code                string
	}{
		{"GET", "/v1/products/nope/tags", "", nil, 404, "unknown_product"},
		{"GET", "/v1/jobs/job_nope", "", nil, 404, "unknown_job"},
		{"POST", "/v1/products/sku-1/images", "application/json", []byte(`{"image_base64": 12`), 400, "bad_request"},
		{"POST", "/v1/products/sku-1/images", "application/json", []byte(`{"image_base64": "%%%"}`), 400, "bad_request"},
		{"POST", "/v1/products/sku-1/images", "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString([]byte("not an image"))}), 422, "invalid_image"},
		{"POST", "/v1/products/sku-1/images", "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(make([]byte, 300<<10))}), 413, "too_large"},
		{"POST", "/v1/products/sku-1/images", "application/json", jsonBody(map[string]string{"image_url": "file:///etc/passwd"}), 400, "image_url"},
		{"POST", "/v1/products/sku-1/images", "application/json", jsonBody(map[string]string{"image_url": img.URL + "/missing.png"}), 422, "image_url"},
		{"POST", "/v1/products/sku%ff/images", "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(png)}), 400, "invalid_product_id"},
		{"GET", "/v1/products/sku%ff/tags", "", nil, 400, "invalid_product_id"},
		{"POST", "/v1/products/sku-1/images", "text/plain", []byte("hi"), 415, "unsupported_media_type"},
		{"POST", "/v1/products/sku-1/images", "application/json", []byte(`{}`), 400, "bad_request"},
		{"POST", "/v1/review/abc", "application/json", []byte(`{}`), 400, "bad_request"},
		{"POST", "/v1/review/999", "application/json", []byte(`{"action": "accept"}`), 404, "unknown_review_item"},
		{"GET", "/v1/nothing", "", nil, 404, "not_found"},
	} {
		code, out := a.do(tc.method, tc.path, tc.ctype, tc.body)
		if code != tc.status || out["code"] != tc.code || out["error"] == "" {
			t.Errorf("%s %s %.40s: %d %v, want %d %s", tc.method, tc.path, tc.body, code, out, tc.status, tc.code)
		}
	}
}

// TestReviewToFixtures: LOW tags wait in the review queue; a correction
// writes a new version and export-fixtures turns it into a labelled
// fixture set that fixtures.Load reads.
func TestReviewToFixtures(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	// Images the simulator does not know get one low-confidence generic
	// answer: LOW, so reviewed.
	var pending []any
	for i := 0; i < 10 && len(pending) == 0; i++ {
		a.do("POST", fmt.Sprintf("/v1/products/r-%d/images", i), "application/json", jsonBody(map[string]string{"image_base64": base64.StdEncoding.EncodeToString(visiontest.PNG(16, 16, uint64(100+i)))}))
		_, out := a.do("GET", "/v1/review", "", nil)
		pending = out["items"].([]any)
	}
	if len(pending) == 0 {
		t.Fatal("no review items")
	}
	item := pending[0].(map[string]any)
	id := int(item["id"].(float64))
	pid := item["product_id"].(string)
	if code, out := a.do("POST", fmt.Sprintf("/v1/review/%d", id), "application/json", []byte(`{"action": "correct", "category": "not/a/category"}`)); code != 400 || out["code"] != "unknown_category" {
		t.Errorf("bad correction: %d %v", code, out)
	}
	code, out := a.do("POST", fmt.Sprintf("/v1/review/%d", id), "application/json", []byte(`{"action": "correct", "category": "apparel/topwear/tshirts", "attributes": {"color": "black"}}`))
	if code != 200 || out["version"].(map[string]any)["source"] != "review" {
		t.Fatalf("correct: %d %v", code, out)
	}
	if code, _ := a.do("POST", fmt.Sprintf("/v1/review/%d", id), "application/json", []byte(`{"action": "accept"}`)); code != 409 {
		t.Errorf("resolving twice: %d, want 409", code)
	}
	_, tagsOut := a.do("GET", "/v1/products/"+pid+"/tags", "", nil)
	cur := tagsOut["current"].(map[string]any)
	if cur["version"].(float64) != 2 || !strings.Contains(fmt.Sprint(cur["tags"]), "apparel/topwear/tshirts") {
		t.Errorf("after correction: %v", cur)
	}
	out2 := filepath.Join(t.TempDir(), "reviewed")
	n, missing, err := ExportFixtures(context.Background(), a.store, a.srv.ImagesDir, out2, taxonomy(t))
	if err != nil || n != 1 || missing != 0 {
		t.Fatalf("export: %d %d %v", n, missing, err)
	}
	set, err := fixtures.Load(out2)
	if err != nil || len(set.Items) != 1 || set.Items[0].Category != "apparel/topwear/tshirts" || set.Items[0].Group != "fashion" || set.Items[0].Attributes["color"] != "black" {
		t.Fatalf("exported set: %+v %v", set, err)
	}
	if errs := fixtures.Check(set, taxonomy(t)); len(errs) > 0 {
		t.Errorf("fixtures check: %v", errs)
	}
}

// FuzzPostImage: any body to the upload endpoint gives a JSON answer and
// never a panic or a 5xx (the provider is healthy).
func FuzzPostImage(f *testing.F) {
	f.Add("application/json", []byte(`{"image_base64": "iVBORw0KGgo="}`))
	f.Add("application/json", []byte(`{"image_url": "http://127.0.0.1:1/x"}`))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a\"\r\n\r\nabc\r\n--x--\r\n"))
	f.Add("text/plain", []byte("x"))
	srv := &Server{MaxBodyBytes: 64 << 10, FetchTimeout: 100 * time.Millisecond}
	// Whatever image_url the fuzzer writes, nothing leaves the machine: no
	// name is looked up and no connection is made.
	offline := &net.Dialer{
		Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("fuzzing: no DNS")
		}},
		Control: func(string, string, syscall.RawConn) error { return errors.New("fuzzing: no dial") },
	}
	srv.fetcher, srv.guard, _ = newFetcher(nil, 100*time.Millisecond, offline)
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest("POST", "/v1/products/x/images", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		r.Body = http.MaxBytesReader(w, r.Body, srv.MaxBodyBytes)
		img, status, code, err := srv.readImage(r)
		if err == nil && img.MediaType == "" {
			t.Errorf("accepted a non-image")
		}
		if err != nil && (status < 400 || status >= 600 || code == "") {
			t.Errorf("error %v with status %d code %q", err, status, code)
		}
	})
}

// TestAPIToken: with a token every call but /healthz needs it.
func TestAPIToken(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(s *Server) { s.Token = "pipe-tok-81" })
	get := func(path, tok string) int {
		req, _ := http.NewRequest("GET", a.url+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/v1/review", "/v1/products/sku-1/tags", "/v1/jobs/x"} {
		if c := get(p, ""); c != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, c)
		}
		if c := get(p, "wrong"); c != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", p, c)
		}
	}
	if c := get("/v1/review", "pipe-tok-81"); c != 200 {
		t.Errorf("GET /v1/review with the token: %d", c)
	}
	if c := get("/healthz", ""); c != 200 {
		t.Errorf("/healthz: %d, want 200 without a token", c)
	}
}
