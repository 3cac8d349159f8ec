// Package azure speaks Azure AI Vision Image Analysis 4.0
// (imageanalysis:analyze, api-version 2024-02-01): a client that sends the
// Ocp-Apim-Subscription-Key header and a server side with Azure's shapes.
//
// Image Analysis 4.0 reports colours, patterns and materials only as tags;
// cutover's taxonomy maps tag names such as "black" or "denim" onto
// attributes.
package azure

import (
	"bytes"
	"context"

	"fmt"
	"image"
	_ "image/gif" // registered for metadata.width/height
	_ "image/jpeg"
	_ "image/png"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/cutover/cutover/internal/jsonx"

	"github.com/cutover/cutover/vision"
)

// Path is the analyze operation's path.
const Path = "/computervision/imageanalysis:analyze"

// APIVersion is the GA version cutover speaks.
const APIVersion = "2024-02-01"

// MaxImageBytes is Azure's documented image size limit (20 MB).
const MaxImageBytes = 20 * 1024 * 1024

// KeyHeader carries the subscription key.
const KeyHeader = "Ocp-Apim-Subscription-Key"

// AnalyzeResult is the response body.
type AnalyzeResult struct {
	ModelVersion  string         `json:"modelVersion"`
	Metadata      Metadata       `json:"metadata"`
	CaptionResult *CaptionResult `json:"captionResult,omitempty"`
	TagsResult    *TagsResult    `json:"tagsResult,omitempty"`
}

// Metadata is the image size in pixels.
type Metadata struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// CaptionResult is the caption feature's answer.
type CaptionResult struct {
	Text       string  `json:"text"`
	Confidence float64 `json:"confidence"`
}

// TagsResult is the tags feature's answer.
type TagsResult struct {
	Values []Tag `json:"values"`
}

// Tag is one tag, confidence 0–1.
type Tag struct {
	Name       string  `json:"name"`
	Confidence float64 `json:"confidence"`
}

// ErrorBody is Azure's error envelope.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error and its inner error.
type ErrorDetail struct {
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	InnerError *InnerError `json:"innererror,omitempty"`
}

// InnerError names the precise problem.
type InnerError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Codec is both sides of analyze.
type Codec struct {
	// Endpoint is the resource endpoint, e.g. https://myres.cognitiveservices.azure.com.
	Endpoint string
	Key      string
}

// NewCodec returns a client codec.
func NewCodec(endpoint, key string) *Codec {
	return &Codec{Endpoint: strings.TrimRight(endpoint, "/"), Key: key}
}

// Format implements vision.ClientCodec.
func (c *Codec) Format() string { return "azure" }

// NewRequest implements vision.ClientCodec: raw bytes as
// application/octet-stream, or {"url"} as JSON.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	q := url.Values{"api-version": {APIVersion}, "features": {"tags"}}
	u := c.Endpoint + Path + "?" + q.Encode()
	var body []byte
	ct := "application/octet-stream"
	switch {
	case len(req.Image.Bytes) > 0:
		body = req.Image.Bytes
	case req.Image.URL != "":
		body, _ = jsonx.Marshal(map[string]string{"url": req.Image.URL})
		ct = "application/json"
	default:
		return nil, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building analyze request: %w", err)
	}
	hr.Header.Set("Content-Type", ct)
	if c.Key != "" {
		hr.Header.Set(KeyHeader, c.Key)
	}
	return hr, nil
}

// DecodeResponse implements vision.ClientCodec.
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	if resp.StatusCode != http.StatusOK {
		return vision.Result{}, DecodeError(resp.StatusCode, resp.Header, body)
	}
	var ar AnalyzeResult
	if err := vision.DecodeAnswer(body, &ar, "analyze answer"); err != nil {
		return vision.Result{}, err
	}
	if ar.TagsResult == nil {
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: 200, Message: "analyze answer has no tagsResult"}
	}
	res := vision.Result{ModelVersion: ar.ModelVersion, Raw: body}
	for _, t := range ar.TagsResult.Values {
		res.Labels = append(res.Labels, vision.Label{Name: t.Name, Confidence: t.Confidence})
	}
	return res, nil
}

var innerCodes = map[string]vision.Code{
	"InvalidImageFormat":    vision.CodeBadImage,
	"InvalidImageDimension": vision.CodeBadImage,
	"InvalidImageUrl":       vision.CodeBadImage,
	"NotSupportedImage":     vision.CodeBadImage,
	"InvalidImageSize":      vision.CodeTooLarge,
	"InvalidArgument":       vision.CodeBadRequest,
	"UnsupportedMediaType":  vision.CodeBadRequest,
	"Timeout":               vision.CodeTimeout,
}

// DecodeError maps an Azure error answer to a typed code: the inner error
// names the precise problem; otherwise the status decides.
func DecodeError(status int, h http.Header, body []byte) *vision.Error {
	var eb ErrorBody
	_ = jsonx.Unmarshal(body, &eb)
	name := eb.Error.Code
	code := vision.StatusCodeToCode(status)
	if eb.Error.InnerError != nil {
		name = eb.Error.InnerError.Code
		if c, ok := innerCodes[name]; ok {
			code = c
		}
	}
	return &vision.Error{Code: code, Status: status, VendorCode: name, Message: eb.Error.Message, RetryAfter: vision.ParseRetryAfter(h)}
}

// ---- server side ----

// IsClassify implements vision.ServerCodec.
func (c *Codec) IsClassify(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == Path
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return MaxImageBytes + 4096 }

// DecodeRequest implements vision.ServerCodec.
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		return vision.Request{}, inner(vision.CodeBadRequest, "InvalidArgument", "The api-version query parameter is required.")
	}
	features := q.Get("features")
	if features == "" {
		return vision.Request{}, inner(vision.CodeBadRequest, "InvalidArgument", "The 'features' query parameter is required.")
	}
	var req vision.Request
	for _, f := range strings.Split(features, ",") {
		switch strings.TrimSpace(f) {
		case "tags", "caption", "denseCaptions", "objects", "read", "smartCrops", "people":
		default:
			return req, inner(vision.CodeBadRequest, "InvalidArgument", "Invalid feature "+f+".")
		}
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/json":
		var in struct {
			URL string `json:"url"`
		}
		if err := jsonx.Unmarshal(body, &in); err != nil {
			return req, inner(vision.CodeBadRequest, "InvalidArgument", "The request body is not valid JSON.")
		}
		u, err := url.Parse(in.URL)
		if in.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return req, inner(vision.CodeBadImage, "InvalidImageUrl", "Image URL is badly formatted.")
		}
		req.Image = vision.ImageFromURL(in.URL)
	case mt == "application/octet-stream" || strings.HasPrefix(mt, "image/"):
		if len(body) == 0 {
			return req, inner(vision.CodeBadImage, "InvalidImageFormat", "Input data is not a valid image: the body is empty.")
		}
		im, err := vision.DecodeImageBytes(body, MaxImageBytes)
		if err != nil {
			return req, toInner(err)
		}
		req.Image = im
	default:
		return req, &vision.Error{Code: vision.CodeBadRequest, VendorCode: "UnsupportedMediaType", Status: http.StatusUnsupportedMediaType,
			Message: "Content-Type must be application/json or application/octet-stream."}
	}
	return req, nil
}

func inner(code vision.Code, name, msg string) *vision.Error {
	return &vision.Error{Code: code, VendorCode: name, Message: msg}
}

func toInner(err error) *vision.Error {
	e := vision.AsError(err)
	switch e.Code {
	case vision.CodeTooLarge:
		return inner(e.Code, "InvalidImageSize", "Image size is too big. The maximum is 20 MB.")
	case vision.CodeBadImage:
		return inner(e.Code, "InvalidImageFormat", "Input data is not a valid image.")
	}
	return e
}

// WriteError implements vision.ServerCodec.
func (c *Codec) WriteError(w http.ResponseWriter, err error) {
	e := vision.AsError(err)
	status := http.StatusBadRequest
	detail := ErrorDetail{Code: "InvalidRequest", Message: e.Message}
	switch e.Code {
	case vision.CodeThrottled:
		status, detail = http.StatusTooManyRequests, ErrorDetail{Code: "429", Message: "Rate limit is exceeded. Try again in 1 seconds."}
		w.Header().Set("Retry-After", "1")
	case vision.CodeUnauthorized:
		status, detail = http.StatusUnauthorized, ErrorDetail{Code: "401", Message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}
	case vision.CodeServerError, vision.CodeNetwork, vision.CodeInvalidResponse:
		status, detail = http.StatusInternalServerError, ErrorDetail{Code: "InternalServerError", Message: "An unexpected error occurred."}
	case vision.CodeTimeout:
		status, detail = http.StatusInternalServerError, ErrorDetail{Code: "InternalServerError", Message: "The operation timed out.",
			InnerError: &InnerError{Code: "Timeout", Message: "The operation timed out."}}
	default:
		name := e.VendorCode
		if name == "" {
			switch e.Code {
			case vision.CodeBadImage:
				name, detail.Message = "InvalidImageFormat", "Input data is not a valid image."
			case vision.CodeTooLarge:
				name, detail.Message = "InvalidImageSize", "Image size is too big. The maximum is 20 MB."
			default:
				name = "InvalidArgument"
			}
		}
		if e.Status != 0 {
			status = e.Status
		}
		detail.InnerError = &InnerError{Code: name, Message: detail.Message}
	}
	b, _ := jsonx.Marshal(ErrorBody{Error: detail})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Apim-Request-Id", requestID())
	w.WriteHeader(status)
	w.Write(b)
}

// WriteResult implements vision.ServerCodec.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	b, err := jsonx.Marshal(ResultToAnalyze(req, res))
	if err != nil {
		c.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Apim-Request-Id", requestID())
	w.Write(b)
}

// ResultToAnalyze converts a vision.Result to an analyze answer: categories,
// labels, attributes and named colours all become tags.
func ResultToAnalyze(req vision.Request, res vision.Result) AnalyzeResult {
	ar := AnalyzeResult{ModelVersion: res.ModelVersion, TagsResult: &TagsResult{Values: []Tag{}}}
	if ar.ModelVersion == "" {
		ar.ModelVersion = "2023-10-01"
	}
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(req.Image.Bytes)); err == nil {
		ar.Metadata = Metadata{Width: cfg.Width, Height: cfg.Height}
	}
	add := func(name string, conf float64) {
		ar.TagsResult.Values = append(ar.TagsResult.Values, Tag{Name: strings.ToLower(name), Confidence: math.Round(conf*1e4) / 1e4})
	}
	for _, l := range res.Categories {
		add(l.Name, l.Confidence)
	}
	for _, l := range res.Labels {
		add(l.Name, l.Confidence)
	}
	for _, a := range res.Attributes {
		add(a.Value, a.Confidence)
	}
	for _, c := range res.Colors {
		if c.Name != "" {
			conf := c.Score
			if conf == 0 {
				conf = c.Fraction
			}
			add(c.Name, conf)
		}
	}
	return ar
}

func requestID() string {
	var b [16]byte
	randRead(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var _ vision.ClientCodec = (*Codec)(nil)
var _ vision.ServerCodec = (*Codec)(nil)
