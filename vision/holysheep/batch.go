package holysheep

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"

	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/jsonx"

	"github.com/cutover/cutover/vision"
)

// SignatureHeader carries the webhook signature: "sha256=" and the hex
// HMAC-SHA256 of the raw body, keyed with the API key that submitted the job.
const SignatureHeader = "X-HolySheep-Signature"

// MaxBatchImages bounds one batch.
const MaxBatchImages = 1000

// BatchRequest submits images for asynchronous classification.
type BatchRequest struct {
	Model      string     `json:"model"`
	Images     []string   `json:"images"`
	Task       string     `json:"task"`
	Parameters Parameters `json:"parameters"`
	Webhook    string     `json:"webhook,omitempty"`
}

// Job is a batch job's status. Results appear as images finish.
type Job struct {
	JobID       string        `json:"job_id"`
	Status      string        `json:"status"` // queued, running, completed
	Total       int           `json:"total"`
	Completed   int           `json:"completed"`
	Failed      int           `json:"failed"`
	Created     int64         `json:"created"`
	CompletedAt int64         `json:"completed_at,omitempty"`
	Results     []BatchResult `json:"results"`
}

// BatchResult is one image's outcome, by its index in the request.
type BatchResult struct {
	Index       int          `json:"index"`
	Predictions []Prediction `json:"predictions,omitempty"`
	Error       *ErrorDetail `json:"error,omitempty"`
}

// Sign returns the signature header value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook reports whether header is body's signature under secret.
func VerifyWebhook(secret string, body []byte, header string) bool {
	return subtle.ConstantTimeCompare([]byte(Sign(secret, body)), []byte(header)) == 1
}

// BatchServer serves the batch endpoints over a Provider that classifies
// one image. It keeps jobs in memory.
type BatchServer struct {
	Provider vision.Provider
	// Workers per job. Default 4.
	Workers int
	// WebhookAttempts is how many times a webhook is tried. Default 5.
	WebhookAttempts int
	// Backoff returns the wait before retry n (1-based). Default 500ms·2^(n-1).
	Backoff func(n int) time.Duration
	// HTTP sends webhooks. Default a client with a 10 s timeout.
	HTTP *http.Client
	// MaxJobs kept; the oldest finished jobs are dropped beyond it. Default 10,000.
	MaxJobs int

	mu    sync.Mutex
	jobs  map[string]*job
	order []string
}

type job struct {
	mu  sync.Mutex
	Job Job
}

func (s *BatchServer) defaults() {
	if s.Workers <= 0 {
		s.Workers = 4
	}
	if s.WebhookAttempts <= 0 {
		s.WebhookAttempts = 5
	}
	if s.Backoff == nil {
		s.Backoff = func(n int) time.Duration { return 500 * time.Millisecond << (n - 1) }
	}
	if s.HTTP == nil {
		s.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if s.MaxJobs <= 0 {
		s.MaxJobs = 10000
	}
	if s.jobs == nil {
		s.jobs = map[string]*job{}
	}
}

// IsBatch reports whether r is a batch call.
func IsBatch(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, BatchPath) || strings.HasPrefix(r.URL.Path, "/vision/batch")
}

// ServeHTTP handles POST /v1/vision/batch and GET /v1/vision/batch/{job_id}.
// apiKey is the caller's key (already authenticated), used to sign webhooks.
func (s *BatchServer) ServeHTTP(w http.ResponseWriter, r *http.Request, apiKey string) {
	s.mu.Lock()
	s.defaults()
	s.mu.Unlock()
	path := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v1"), "/vision/batch")
	switch {
	case r.Method == http.MethodPost && (path == "" || path == "/"):
		s.submit(w, r, apiKey)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/") && len(path) > 1:
		s.mu.Lock()
		j := s.jobs[path[1:]]
		s.mu.Unlock()
		if j == nil {
			WriteError(w, &vision.Error{Code: vision.CodeBadRequest, Status: http.StatusNotFound, Message: "no such job " + path[1:]})
			return
		}
		j.mu.Lock()
		b, _ := jsonx.Marshal(j.Job)
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	default:
		WriteError(w, &vision.Error{Code: vision.CodeBadRequest, Status: http.StatusMethodNotAllowed, Message: r.Method + " " + r.URL.Path + " is not a batch call"})
	}
}

func (s *BatchServer) submit(w http.ResponseWriter, r *http.Request, apiKey string) {
	body, tooLarge, err := vision.ReadBody(r, MaxBatchImages*1024+maxBody)
	if err != nil {
		return
	}
	if tooLarge {
		WriteError(w, vision.Errorf(vision.CodeTooLarge, "batch body too large"))
		return
	}
	var br BatchRequest
	if err := jsonx.Unmarshal(body, &br); err != nil {
		WriteError(w, vision.Errorf(vision.CodeBadRequest, "request body is not valid JSON: %s", vision.JSONErrorDetail(err)))
		return
	}
	if len(br.Images) == 0 || len(br.Images) > MaxBatchImages {
		WriteError(w, vision.Errorf(vision.CodeBadRequest, "images must list 1–%d images, got %d", MaxBatchImages, len(br.Images)))
		return
	}
	if br.Webhook != "" {
		if u, err := url.Parse(br.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			WriteError(w, vision.Errorf(vision.CodeBadRequest, "webhook must be an http(s) URL"))
			return
		}
	}
	reqs := make([]vision.Request, len(br.Images))
	errs := make([]error, len(br.Images))
	for i, im := range br.Images {
		reqs[i], errs[i] = decodeImageAndParams(im, br.Parameters)
	}
	j := &job{Job: Job{JobID: "job_" + randID(), Status: "queued", Total: len(br.Images), Created: time.Now().Unix(), Results: []BatchResult{}}}
	s.mu.Lock()
	s.jobs[j.Job.JobID] = j
	s.order = append(s.order, j.Job.JobID)
	s.evictLocked()
	s.mu.Unlock()
	j.mu.Lock()
	b, _ := jsonx.Marshal(j.Job)
	j.mu.Unlock()
	go s.run(j, reqs, errs, br.Webhook, apiKey)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	w.Write(b)
}

func (s *BatchServer) evictLocked() {
	for len(s.order) > s.MaxJobs {
		id := s.order[0]
		s.order = s.order[1:]
		delete(s.jobs, id)
	}
}

func (s *BatchServer) run(j *job, reqs []vision.Request, errs []error, webhook, secret string) {
	j.mu.Lock()
	j.Job.Status = "running"
	j.mu.Unlock()
	idx := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < s.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				br := BatchResult{Index: i}
				err := errs[i]
				var res vision.Result
				if err == nil {
					res, err = s.Provider.Classify(context.Background(), reqs[i])
				}
				if err != nil {
					e := vision.AsError(err)
					br.Error = &ErrorDetail{Code: string(e.Code), Message: e.Message}
				} else {
					br.Predictions = PredictionsFromResult(res.Filter(reqs[i].MinConfidence, reqs[i].MaxLabels))
				}
				j.mu.Lock()
				j.Job.Results = append(j.Job.Results, br)
				if br.Error != nil {
					j.Job.Failed++
				} else {
					j.Job.Completed++
				}
				j.mu.Unlock()
			}
		}()
	}
	for i := range reqs {
		idx <- i
	}
	close(idx)
	wg.Wait()
	j.mu.Lock()
	j.Job.Status = "completed"
	j.Job.CompletedAt = time.Now().Unix()
	sortResults(j.Job.Results)
	body, _ := jsonx.Marshal(j.Job)
	j.mu.Unlock()
	if webhook != "" {
		s.deliver(webhook, secret, body)
	}
}

func sortResults(rs []BatchResult) {
	for i := 1; i < len(rs); i++ {
		for k := i; k > 0 && rs[k].Index < rs[k-1].Index; k-- {
			rs[k], rs[k-1] = rs[k-1], rs[k]
		}
	}
}

// deliver POSTs the signed body until a 2xx answer or attempts run out.
func (s *BatchServer) deliver(url, secret string, body []byte) bool {
	for n := 1; n <= s.WebhookAttempts; n++ {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(SignatureHeader, Sign(secret, body))
		req.Header.Set("X-HolySheep-Delivery-Attempt", fmt.Sprint(n))
		resp, err := s.HTTP.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return true
			}
		}
		if n < s.WebhookAttempts {
			time.Sleep(s.Backoff(n))
		}
	}
	return false
}

func randID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// BatchClient submits and polls batch jobs.
type BatchClient struct {
	Codec *Codec
	HTTP  *http.Client
}

// Submit sends images (bytes or URLs) with req's parameters; webhook may be "".
func (c *BatchClient) Submit(ctx context.Context, images []vision.Image, params vision.Request, webhook string) (Job, error) {
	br := BatchRequest{Model: c.Codec.Model, Task: "batch_classification", Webhook: webhook}
	for _, im := range images {
		cr, err := EncodeRequest(c.Codec.Model, vision.Request{Image: im, MinConfidence: params.MinConfidence,
			MaxLabels: params.MaxLabels, Attributes: params.Attributes, CategoryFilter: params.CategoryFilter})
		if err != nil {
			return Job{}, err
		}
		br.Images = append(br.Images, cr.Image)
		br.Parameters = cr.Parameters
	}
	body, err := jsonx.Marshal(br)
	if err != nil {
		return Job{}, fmt.Errorf("encoding batch: %w", err)
	}
	hr, err := c.Codec.post(ctx, BatchPath, body)
	if err != nil {
		return Job{}, err
	}
	return c.do(hr, http.StatusAccepted)
}

// Status polls a job.
func (c *BatchClient) Status(ctx context.Context, jobID string) (Job, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Codec.BaseURL+BatchPath+"/"+url.PathEscape(jobID), nil)
	if err != nil {
		return Job{}, err
	}
	if c.Codec.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.Codec.APIKey)
	}
	return c.do(hr, http.StatusOK)
}

func (c *BatchClient) do(hr *http.Request, want int) (Job, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return Job{}, vision.TransportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, vision.MaxResponseBytes))
	if err != nil {
		return Job{}, vision.TransportError(err)
	}
	if resp.StatusCode != want {
		return Job{}, DecodeError(resp.StatusCode, resp.Header, body)
	}
	var j Job
	if err := jsonx.Unmarshal(body, &j); err != nil {
		return Job{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode, Err: err}
	}
	return j, nil
}
