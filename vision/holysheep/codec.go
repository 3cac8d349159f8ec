// Package holysheep speaks the HolySheep vision classify API as the seed
// article shows it: POST /v1/vision/classify with a Bearer key, and the batch
// endpoint (POST /v1/vision/batch, GET /v1/vision/batch/{job_id}, optional
// signed webhook on completion).
//
// The article shows the request and the predictions[] of the answer and
// nothing more; the attribute object shape, ids, usage block, error bodies,
// job status shape and webhook signature are cutover's reading of the API,
// documented in README.md and pinned by the golden files in testdata/.
package holysheep

import (
	"bytes"
	"context"

	"fmt"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/jsonx"

	"github.com/cutover/cutover/vision"
)

// Paths of the API, below the base URL.
const (
	ClassifyPath = "/v1/vision/classify"
	BatchPath    = "/v1/vision/batch"
)

// MaxImageBytes is the image size limit cutover assumes (10 MB decoded);
// the article does not state one.
const MaxImageBytes = 10 * 1024 * 1024

const maxBody = MaxImageBytes*4/3 + 64<<10

// DefaultModel is the article's model name.
const DefaultModel = "vision-classifier-v3"

// ClassifyRequest is the classify body.
type ClassifyRequest struct {
	Model      string     `json:"model"`
	Image      string     `json:"image"`
	Task       string     `json:"task"`
	Parameters Parameters `json:"parameters"`
}

// Parameters tune a classification.
type Parameters struct {
	ConfidenceThreshold float64  `json:"confidence_threshold"`
	MaxCategories       int      `json:"max_categories,omitempty"`
	IncludeAttributes   bool     `json:"include_attributes"`
	AttributeTypes      []string `json:"attribute_types,omitempty"`
	CategoryFilter      []string `json:"category_filter,omitempty"`
}

// ClassifyResponse is the classify answer.
type ClassifyResponse struct {
	ID          string       `json:"id"`
	Object      string       `json:"object"`
	Model       string       `json:"model"`
	Created     int64        `json:"created"`
	Predictions []Prediction `json:"predictions"`
	Usage       Usage        `json:"usage"`
}

// Prediction is one category with its attributes.
type Prediction struct {
	Category   string      `json:"category"`
	Confidence float64     `json:"confidence"`
	Attributes []Attribute `json:"attributes"`
}

// Attribute is one typed attribute value.
type Attribute struct {
	Type       string  `json:"type"`
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"`
}

// Usage counts billable images.
type Usage struct {
	Images int `json:"images"`
}

// ErrorBody is the error envelope: code is one of cutover's typed codes.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Codec is both sides of classify.
type Codec struct {
	BaseURL string
	APIKey  string
	Model   string
}

// NewCodec returns a client codec. A base URL ending in /v1 (as the
// article writes it) is accepted.
func NewCodec(baseURL, apiKey, model string) *Codec {
	if model == "" {
		model = DefaultModel
	}
	return &Codec{BaseURL: TrimBase(baseURL), APIKey: apiKey, Model: model}
}

// TrimBase strips a trailing slash and /v1 from a base URL.
func TrimBase(u string) string {
	u = strings.TrimRight(u, "/")
	return strings.TrimSuffix(u, "/v1")
}

// Format implements vision.ClientCodec.
func (c *Codec) Format() string { return "holysheep" }

// EncodeRequest builds the classify body.
func EncodeRequest(model string, req vision.Request) (ClassifyRequest, error) {
	cr := ClassifyRequest{Model: model, Task: "product_classification"}
	switch {
	case len(req.Image.Bytes) > 0:
		cr.Image = vision.EncodeBase64(req.Image.Bytes)
	case req.Image.URL != "":
		cr.Image = req.Image.URL
	default:
		return cr, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	cr.Parameters = Parameters{ConfidenceThreshold: req.MinConfidence, MaxCategories: req.MaxLabels,
		IncludeAttributes: len(req.Attributes) > 0, CategoryFilter: req.CategoryFilter}
	for _, k := range req.Attributes {
		cr.Parameters.AttributeTypes = append(cr.Parameters.AttributeTypes, string(k))
	}
	return cr, nil
}

// NewRequest implements vision.ClientCodec.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	cr, err := EncodeRequest(c.Model, req)
	if err != nil {
		return nil, err
	}
	body, err := jsonx.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("encoding classify request: %w", err)
	}
	return c.post(ctx, ClassifyPath, body)
}

func (c *Codec) post(ctx context.Context, path string, body []byte) (*http.Request, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building %s request: %w", path, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return hr, nil
}

// DecodeResponse implements vision.ClientCodec.
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	if resp.StatusCode != http.StatusOK {
		return vision.Result{}, DecodeError(resp.StatusCode, resp.Header, body)
	}
	var cr ClassifyResponse
	if err := vision.DecodeAnswer(body, &cr, "classify answer"); err != nil {
		return vision.Result{}, err
	}
	if cr.Predictions == nil {
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: 200, Message: "classify answer has no predictions"}
	}
	res := ResultFromPredictions(cr.Predictions)
	res.ModelVersion, res.Raw = cr.Model, body
	return res, nil
}

// ResultFromPredictions converts predictions to a vision.Result.
func ResultFromPredictions(ps []Prediction) vision.Result {
	var res vision.Result
	for _, p := range ps {
		res.Categories = append(res.Categories, vision.Label{Name: p.Category, Confidence: p.Confidence})
		for _, a := range p.Attributes {
			res.Attributes = append(res.Attributes, vision.Attribute{Kind: vision.AttributeKind(a.Type), Value: a.Value, Confidence: a.Confidence})
		}
	}
	return res
}

// DecodeError maps an error answer to a typed code: error.code is the typed
// code itself; the status decides when it is missing or unknown.
func DecodeError(status int, h http.Header, body []byte) *vision.Error {
	var eb ErrorBody
	_ = jsonx.Unmarshal(body, &eb)
	code := vision.Code(eb.Error.Code)
	if !code.Valid() {
		code = vision.StatusCodeToCode(status)
	}
	return &vision.Error{Code: code, Status: status, VendorCode: eb.Error.Code, Message: eb.Error.Message, RetryAfter: vision.ParseRetryAfter(h)}
}

// ---- server side ----

// IsClassify implements vision.ServerCodec.
func (c *Codec) IsClassify(r *http.Request) bool {
	return r.Method == http.MethodPost && (r.URL.Path == ClassifyPath || r.URL.Path == "/vision/classify")
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return maxBody }

// DecodeRequest implements vision.ServerCodec.
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return vision.Request{}, vision.Errorf(vision.CodeBadRequest, "Content-Type must be application/json")
	}
	var cr ClassifyRequest
	if err := jsonx.Unmarshal(body, &cr); err != nil {
		return vision.Request{}, vision.Errorf(vision.CodeBadRequest, "request body is not valid JSON: %s", vision.JSONErrorDetail(err))
	}
	if cr.Task != "" && cr.Task != "product_classification" {
		return vision.Request{}, vision.Errorf(vision.CodeBadRequest, "unknown task %q (want product_classification)", cr.Task)
	}
	return decodeImageAndParams(cr.Image, cr.Parameters)
}

func decodeImageAndParams(image string, p Parameters) (vision.Request, error) {
	var req vision.Request
	switch {
	case image == "":
		return req, vision.Errorf(vision.CodeBadRequest, "image is empty: want a URL or base64 data")
	case strings.HasPrefix(image, "http://") || strings.HasPrefix(image, "https://"):
		req.Image = vision.ImageFromURL(image)
	default:
		b, err := vision.DecodeBase64(image)
		if err != nil {
			return req, vision.Errorf(vision.CodeBadRequest, "image is neither a URL nor valid base64")
		}
		im, err := vision.DecodeImageBytes(b, MaxImageBytes)
		if err != nil {
			return req, err
		}
		req.Image = im
	}
	if p.ConfidenceThreshold < 0 || p.ConfidenceThreshold > 1 || math.IsNaN(p.ConfidenceThreshold) {
		return req, vision.Errorf(vision.CodeBadRequest, "parameters.confidence_threshold must be between 0 and 1")
	}
	if p.MaxCategories < 0 {
		return req, vision.Errorf(vision.CodeBadRequest, "parameters.max_categories must be ≥ 0")
	}
	req.MinConfidence, req.MaxLabels, req.CategoryFilter = p.ConfidenceThreshold, p.MaxCategories, p.CategoryFilter
	if p.IncludeAttributes {
		for _, t := range p.AttributeTypes {
			k := vision.AttributeKind(t)
			if !k.Valid() {
				return req, vision.Errorf(vision.CodeBadRequest, "unknown attribute type %q (want color, pattern, material or style)", t)
			}
			req.Attributes = append(req.Attributes, k)
		}
		if len(p.AttributeTypes) == 0 {
			req.Attributes = append(req.Attributes, vision.AttributeKinds...)
		}
	}
	return req, nil
}

// WriteError implements vision.ServerCodec.
func (c *Codec) WriteError(w http.ResponseWriter, err error) { WriteError(w, err) }

// WriteError answers with the error envelope and the code's status.
func WriteError(w http.ResponseWriter, err error) {
	e := vision.AsError(err)
	msg := e.Message
	if msg == "" {
		msg = strings.ReplaceAll(string(e.Code), "_", " ")
	}
	if e.Code == vision.CodeThrottled {
		ra := e.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		w.Header().Set("Retry-After", fmt.Sprintf("%d", int(math.Ceil(ra.Seconds()))))
	}
	b, _ := jsonx.Marshal(ErrorBody{Error: ErrorDetail{Code: string(e.Code), Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	status := e.Status
	if status == 0 || status < 400 {
		status = vision.StatusCode(e.Code)
	}
	w.WriteHeader(status)
	w.Write(b)
}

// WriteResult implements vision.ServerCodec.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	model := res.ModelVersion
	if model == "" {
		model = DefaultModel
	}
	b, err := jsonx.Marshal(ClassifyResponse{ID: "cls_" + randID(), Object: "vision.classification", Model: model,
		Created: time.Now().Unix(), Predictions: PredictionsFromResult(res), Usage: Usage{Images: 1}})
	if err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// PredictionsFromResult converts a vision.Result to predictions: categories
// (and labels) in order, the attributes attached to the first prediction.
func PredictionsFromResult(res vision.Result) []Prediction {
	ps := []Prediction{}
	for _, l := range append(append([]vision.Label(nil), res.Categories...), res.Labels...) {
		ps = append(ps, Prediction{Category: l.Name, Confidence: round4(l.Confidence), Attributes: []Attribute{}})
	}
	if len(res.Attributes) > 0 && len(ps) == 0 {
		ps = append(ps, Prediction{Category: "unknown", Attributes: []Attribute{}})
	}
	for _, a := range res.Attributes {
		ps[0].Attributes = append(ps[0].Attributes, Attribute{Type: string(a.Kind), Value: a.Value, Confidence: round4(a.Confidence)})
	}
	return ps
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

var _ vision.ClientCodec = (*Codec)(nil)
var _ vision.ServerCodec = (*Codec)(nil)
