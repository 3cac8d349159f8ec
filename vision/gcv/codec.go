// Package gcv speaks Google Cloud Vision images:annotate (v1): a client that
// authenticates with an API key (the x-goog-api-key header) or a Bearer
// token, and a server side that reads requests as Google's servers do
// (proto3 JSON: either field-name spelling, enums by name or number, the
// $alt and enum-encoding parameters) and answers with GCV's shapes,
// including per-image errors inside HTTP 200.
package gcv

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strings"

	"github.com/cutover/cutover/internal/jsonx"

	"github.com/cutover/cutover/vision"
)

// Path is the annotate endpoint's path.
const Path = "/v1/images:annotate"

// MaxRequestBytes is GCV's documented JSON request limit (10 MB); images
// themselves may be up to 20 MB only when given by URI.
const MaxRequestBytes = 10 * 1024 * 1024

// AnnotateRequest is the request body.
type AnnotateRequest struct {
	Requests []ImageRequest `json:"requests"`
}

// ImageRequest annotates one image.
type ImageRequest struct {
	Image        Image         `json:"image"`
	Features     []Feature     `json:"features"`
	ImageContext *ImageContext `json:"imageContext,omitempty"`
}

// Image is base64 content or a source URI.
type Image struct {
	Content string       `json:"content,omitempty"`
	Source  *ImageSource `json:"source,omitempty"`
}

// ImageSource is a URI to fetch.
type ImageSource struct {
	ImageURI    string `json:"imageUri,omitempty"`
	GCSImageURI string `json:"gcsImageUri,omitempty"`
}

// Feature asks for one kind of annotation.
type Feature struct {
	Type       string `json:"type"`
	MaxResults int    `json:"maxResults,omitempty"`
}

// ImageContext is unused by cutover but accepted.
type ImageContext struct {
	LanguageHints []string `json:"languageHints,omitempty"`
}

// AnnotateResponse is the response body.
type AnnotateResponse struct {
	Responses []ImageResponse `json:"responses"`
}

// ImageResponse is one image's annotations, or its error.
type ImageResponse struct {
	LabelAnnotations          []EntityAnnotation `json:"labelAnnotations,omitempty"`
	ImagePropertiesAnnotation *ImageProperties   `json:"imagePropertiesAnnotation,omitempty"`
	Error                     *Status            `json:"error,omitempty"`
}

// EntityAnnotation is one label, scores 0–1.
type EntityAnnotation struct {
	Mid         string  `json:"mid,omitempty"`
	Description string  `json:"description"`
	Score       float64 `json:"score"`
	Topicality  float64 `json:"topicality"`
}

// ImageProperties holds dominant colours.
type ImageProperties struct {
	DominantColors DominantColors `json:"dominantColors"`
}

// DominantColors is a list of colour infos.
type DominantColors struct {
	Colors []ColorInfo `json:"colors"`
}

// ColorInfo is one dominant colour.
type ColorInfo struct {
	Color         RGB     `json:"color"`
	Score         float64 `json:"score"`
	PixelFraction float64 `json:"pixelFraction"`
}

// RGB is a colour, components 0–255 (GCV omits zero components).
type RGB struct {
	Red   float64 `json:"red,omitempty"`
	Green float64 `json:"green,omitempty"`
	Blue  float64 `json:"blue,omitempty"`
}

// Status is a google.rpc.Status: a per-image error (numeric gRPC code).
type Status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ErrorBody is a whole-request error.
type ErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// KeyHeader carries an API key. Google also accepts ?key= in the URL; a
// header keeps the key out of URLs, and so out of access logs and proxies'
// error messages.
const KeyHeader = "X-Goog-Api-Key"

// Codec is both sides of images:annotate.
type Codec struct {
	BaseURL string
	// APIKey is sent in the x-goog-api-key header; BearerToken, if set, as
	// Authorization instead.
	APIKey      string
	BearerToken string
}

// APIKeyOf returns the API key a request carries: the x-goog-api-key
// header, else the key query parameter (both are Google's).
func APIKeyOf(r *http.Request) string {
	if k := r.Header.Get(KeyHeader); k != "" {
		return k
	}
	return r.URL.Query().Get("key")
}

// NewCodec returns a client codec.
func NewCodec(baseURL, apiKey string) *Codec {
	return &Codec{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey}
}

// Format implements vision.ClientCodec.
func (c *Codec) Format() string { return "gcv" }

// EncodeRequest builds the annotate body for req.
func EncodeRequest(req vision.Request) (AnnotateRequest, error) {
	ir := ImageRequest{}
	switch {
	case len(req.Image.Bytes) > 0:
		ir.Image.Content = vision.EncodeBase64(req.Image.Bytes)
	case strings.HasPrefix(req.Image.URL, "gs://"):
		ir.Image.Source = &ImageSource{GCSImageURI: req.Image.URL}
	case req.Image.URL != "":
		ir.Image.Source = &ImageSource{ImageURI: req.Image.URL}
	default:
		return AnnotateRequest{}, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	n := req.MaxLabels
	if n == 0 {
		n = 10
	}
	ir.Features = []Feature{{Type: "LABEL_DETECTION", MaxResults: n}}
	if req.WantsAttribute(vision.KindColor) {
		ir.Features = append(ir.Features, Feature{Type: "IMAGE_PROPERTIES"})
	}
	return AnnotateRequest{Requests: []ImageRequest{ir}}, nil
}

// NewRequest implements vision.ClientCodec.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	ar, err := EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	body, err := jsonx.Marshal(ar)
	if err != nil {
		return nil, fmt.Errorf("encoding annotate request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+Path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building annotate request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	switch {
	case c.BearerToken != "":
		hr.Header.Set("Authorization", "Bearer "+c.BearerToken)
	case c.APIKey != "":
		hr.Header.Set(KeyHeader, c.APIKey)
	}
	return hr, nil
}

// DecodeResponse implements vision.ClientCodec.
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	if resp.StatusCode != http.StatusOK {
		return vision.Result{}, DecodeError(resp.StatusCode, resp.Header, body)
	}
	var ar AnnotateResponse
	if err := vision.DecodeAnswer(body, &ar, "annotate answer"); err != nil {
		return vision.Result{}, err
	}
	if len(ar.Responses) != 1 {
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: 200, Message: fmt.Sprintf("annotate answered %d responses for 1 image", len(ar.Responses))}
	}
	ir := ar.Responses[0]
	if ir.Error != nil {
		return vision.Result{}, imageError(ir.Error)
	}
	res := vision.Result{Raw: body}
	for _, l := range ir.LabelAnnotations {
		res.Labels = append(res.Labels, vision.Label{Name: l.Description, Confidence: l.Score})
	}
	if ir.ImagePropertiesAnnotation != nil {
		for _, ci := range ir.ImagePropertiesAnnotation.DominantColors.Colors {
			rgb := vision.RGB{R: c8(ci.Color.Red), G: c8(ci.Color.Green), B: c8(ci.Color.Blue)}
			res.Colors = append(res.Colors, vision.Color{R: rgb.R, G: rgb.G, B: rgb.B, Hex: rgb.Hex(), Fraction: ci.PixelFraction, Score: ci.Score})
		}
	}
	return res, nil
}

func c8(f float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(f)))) }

// gRPC canonical codes used by per-image errors.
const (
	grpcInvalidArgument   = 3
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

const tooLargeMessage = "Request payload size exceeds the limit: 10485760 bytes."

func imageError(s *Status) *vision.Error {
	code := vision.CodeServerError
	switch s.Code {
	case grpcInvalidArgument:
		code = vision.CodeBadImage
		if strings.Contains(s.Message, "exceeds the limit") {
			code = vision.CodeTooLarge
		}
	case grpcDeadlineExceeded:
		code = vision.CodeTimeout
	case grpcPermissionDenied, grpcUnauthenticated:
		code = vision.CodeUnauthorized
	case grpcResourceExhausted:
		code = vision.CodeThrottled
	}
	return &vision.Error{Code: code, Status: 200, VendorCode: fmt.Sprintf("grpc-%d", s.Code), Message: s.Message}
}

var statusCodes = map[string]vision.Code{
	"INVALID_ARGUMENT":    vision.CodeBadRequest,
	"FAILED_PRECONDITION": vision.CodeBadRequest,
	"UNAUTHENTICATED":     vision.CodeUnauthorized,
	"PERMISSION_DENIED":   vision.CodeUnauthorized,
	"RESOURCE_EXHAUSTED":  vision.CodeThrottled,
	"DEADLINE_EXCEEDED":   vision.CodeTimeout,
	"INTERNAL":            vision.CodeServerError,
	"UNAVAILABLE":         vision.CodeServerError,
	"UNKNOWN":             vision.CodeServerError,
}

// DecodeError maps a whole-request error to a typed code.
func DecodeError(status int, h http.Header, body []byte) *vision.Error {
	var eb ErrorBody
	_ = jsonx.Unmarshal(body, &eb)
	code, ok := statusCodes[eb.Error.Status]
	if !ok {
		code = vision.StatusCodeToCode(status)
	}
	if code == vision.CodeBadRequest && strings.Contains(eb.Error.Message, "exceeds the limit") {
		code = vision.CodeTooLarge
	}
	return &vision.Error{Code: code, Status: status, VendorCode: eb.Error.Status, Message: eb.Error.Message, RetryAfter: vision.ParseRetryAfter(h)}
}

// ---- server side ----

// IsClassify implements vision.ServerCodec.
func (c *Codec) IsClassify(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == Path
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return MaxRequestBytes }

// DecodeRequest implements vision.ServerCodec. A request carries exactly one
// image here: cutover classifies one image per call. Its $alt must ask for
// JSON (ParseEncoding).
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return vision.Request{}, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. Content-Type must be application/json.")
	}
	if _, err := ParseEncoding(r.URL.Query()); err != nil {
		return vision.Request{}, err
	}
	return DecodeBody(body)
}

// DecodeBody parses an annotate body (proto3 JSON).
func DecodeBody(body []byte) (vision.Request, error) {
	ir, err := decodeProto3(body)
	var req vision.Request
	if err != nil {
		return req, err
	}
	switch {
	case ir.hasContent && len(ir.content) > 0:
		im, err := vision.DecodeImageBytes(ir.content, 0)
		if err != nil {
			return req, err // answered as a per-image error
		}
		req.Image = im
	case ir.imageURI != "":
		req.Image = vision.ImageFromURL(ir.imageURI)
	case ir.gcsURI != "":
		req.Image = vision.ImageFromURL(ir.gcsURI)
	default:
		return req, vision.Errorf(vision.CodeBadImage, "Bad image data.")
	}
	labels := false
	for i, f := range ir.features {
		switch f.typ {
		case FeatureTypes["LABEL_DETECTION"]:
			labels = true
			req.MaxLabels = f.maxResults
		case FeatureTypes["IMAGE_PROPERTIES"]:
			req.Attributes = append(req.Attributes, vision.KindColor)
		case FeatureTypes["OBJECT_LOCALIZATION"]:
		default:
			name := featureName(f.typ)
			if name == "" {
				name = fmt.Sprint(f.typ)
			}
			return req, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT",
				fmt.Sprintf("Invalid value at 'requests[0].features[%d].type': %s is not served by cutover (LABEL_DETECTION, IMAGE_PROPERTIES and OBJECT_LOCALIZATION are)", i, name))
		}
	}
	if !labels && len(req.Attributes) == 0 {
		return req, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", "No feature specified.")
	}
	return req, nil
}

func statusErr(code vision.Code, status, msg string) *vision.Error {
	return &vision.Error{Code: code, VendorCode: status, Message: msg}
}

// WriteError implements vision.ServerCodec. Image problems (bad_image) are
// per-image errors inside an HTTP 200, as GCV answers them; everything else
// is a whole-request error.
func (c *Codec) WriteError(w http.ResponseWriter, err error) {
	e := vision.AsError(err)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if e.Code == vision.CodeBadImage {
		msg := e.Message
		if msg == "" || !strings.HasPrefix(msg, "Bad image") {
			msg = "Bad image data."
		}
		b, _ := jsonx.Marshal(AnnotateResponse{Responses: []ImageResponse{{Error: &Status{Code: grpcInvalidArgument, Message: msg}}}})
		w.Write(b)
		return
	}
	status, httpStatus, msg := "INTERNAL", 500, "Internal error encountered."
	switch e.Code {
	case vision.CodeBadRequest:
		status, httpStatus, msg = "INVALID_ARGUMENT", 400, "Request contains an invalid argument."
	case vision.CodeTooLarge:
		status, httpStatus, msg = "INVALID_ARGUMENT", 400, tooLargeMessage
	case vision.CodeUnauthorized:
		status, httpStatus, msg = "PERMISSION_DENIED", 403, "The request is missing a valid API key."
	case vision.CodeThrottled:
		status, httpStatus, msg = "RESOURCE_EXHAUSTED", 429, "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'."
	case vision.CodeTimeout:
		status, httpStatus, msg = "DEADLINE_EXCEEDED", 504, "Deadline exceeded."
	}
	if e.VendorCode == status && e.Message != "" {
		msg = e.Message
	}
	var eb ErrorBody
	eb.Error.Code, eb.Error.Message, eb.Error.Status = httpStatus, msg, status
	b, _ := jsonx.Marshal(eb)
	w.WriteHeader(httpStatus)
	w.Write(b)
}

// WriteResult implements vision.ServerCodec.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	b, err := jsonx.Marshal(ResponseFromResult(res))
	if err != nil {
		c.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Write(b)
}

// ResponseFromResult converts a vision.Result to an annotate answer;
// categories and attributes all become labels (GCV has one label list).
func ResponseFromResult(res vision.Result) AnnotateResponse {
	var ir ImageResponse
	add := func(name string, conf float64) {
		ir.LabelAnnotations = append(ir.LabelAnnotations, EntityAnnotation{Mid: mid(name), Description: name, Score: round6(conf), Topicality: round6(conf)})
	}
	for _, l := range res.Categories {
		add(l.Name, l.Confidence)
	}
	for _, l := range res.Labels {
		add(l.Name, l.Confidence)
	}
	for _, a := range res.Attributes {
		if a.Kind != vision.KindColor {
			add(a.Value, a.Confidence)
		}
	}
	if len(res.Colors) > 0 {
		ip := &ImageProperties{}
		for _, c := range res.Colors {
			rgb, _ := vision.ParseHex(c.Hex)
			score := c.Score
			if score == 0 {
				score = c.Fraction
			}
			ip.DominantColors.Colors = append(ip.DominantColors.Colors, ColorInfo{
				Color: RGB{float64(rgb.R), float64(rgb.G), float64(rgb.B)}, Score: round6(score), PixelFraction: round6(c.Fraction)})
		}
		ir.ImagePropertiesAnnotation = ip
	}
	return AnnotateResponse{Responses: []ImageResponse{ir}}
}

// mid is a stable Knowledge Graph-style id for a label name.
func mid(name string) string {
	var h uint32 = 2166136261
	for _, b := range []byte(strings.ToLower(name)) {
		h = (h ^ uint32(b)) * 16777619
	}
	return fmt.Sprintf("/m/0%07x", h&0xfffffff)
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

var _ vision.ClientCodec = (*Codec)(nil)
var _ vision.ServerCodec = (*Codec)(nil)
