// Package tencent speaks Tencent Cloud TIIA (image analysis, API version
// 2019-05-29) as format "tencent": DetectLabelPro (general image tags with
// a two-level category, the recommended tagging action) and DetectProduct
// (product categories with a bounding box). The client signs every call
// with TC3-HMAC-SHA256; the server side decodes calls, verifies signatures
// (VerifyTC3) and answers as TIIA does, errors included: HTTP 200 with
// Response.Error {Code, Message}.
//
// Labels are Chinese; their confidences (integers 0–100) are normalised to
// 0–1. Category names map to the canonical taxonomy through taxonomy.yaml.
package tencent

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/jsonx"
	"github.com/cutover/cutover/vision"
)

// Wire constants.
const (
	// Service is TIIA's service name in the credential scope.
	Service = "tiia"
	// Version is the API version every action is called with.
	Version = "2019-05-29"
	// Host is TIIA's public endpoint.
	Host = "tiia.tencentcloudapi.com"
	// ActionLabelPro tags an image (general labels, two-level categories).
	ActionLabelPro = "DetectLabelPro"
	// ActionProduct names the products in an image (category path, box).
	ActionProduct = "DetectProduct"
	// MaxImageBase64 is TIIA's limit on ImageBase64: 4 MB after encoding.
	MaxImageBase64 = 4 << 20
	// MaxRequestBytes bounds a request body: the image and its JSON.
	MaxRequestBytes = MaxImageBase64 + 64<<10
)

// Request is the body of DetectLabelPro and DetectProduct. ImageUrl wins
// when both are set.
type Request struct {
	ImageUrl    string `json:"ImageUrl,omitempty"`
	ImageBase64 string `json:"ImageBase64,omitempty"`
}

// Label is a DetectLabelItem: Confidence 0–100.
type Label struct {
	Name           string `json:"Name"`
	Confidence     int64  `json:"Confidence"`
	FirstCategory  string `json:"FirstCategory"`
	SecondCategory string `json:"SecondCategory"`
}

// Product is one DetectProduct item: Parents is "first-second" level,
// Confidence 0–100, the box in pixels.
type Product struct {
	Name       string `json:"Name"`
	Parents    string `json:"Parents"`
	Confidence int64  `json:"Confidence"`
	XMin       int64  `json:"XMin"`
	YMin       int64  `json:"YMin"`
	XMax       int64  `json:"XMax"`
	YMax       int64  `json:"YMax"`
}

// ErrorBody is Response.Error.
type ErrorBody struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// Response is every answer: Labels (DetectLabelPro), Products
// (DetectProduct) or Error, and always a RequestId.
type Response struct {
	Response struct {
		Labels    []Label    `json:"Labels"`
		Products  []Product  `json:"Products"`
		Error     *ErrorBody `json:"Error"`
		RequestId string     `json:"RequestId"`
	} `json:"Response"`
}

// Codec is both sides of TIIA: the client fields are used by NewRequest.
type Codec struct {
	// BaseURL is scheme://host[:port] of the endpoint, e.g.
	// https://tiia.tencentcloudapi.com. The signature covers its host.
	BaseURL string
	// SecretID and SecretKey sign each call (TC3-HMAC-SHA256).
	SecretID, SecretKey string
	// Region is sent as X-TC-Region (e.g. ap-guangzhou).
	Region string
	// Action is ActionLabelPro (when empty) or ActionProduct.
	Action string
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// NewCodec returns a client codec for action (ActionLabelPro when "").
func NewCodec(baseURL, secretID, secretKey, region, action string) *Codec {
	if action == "" {
		action = ActionLabelPro
	}
	return &Codec{BaseURL: strings.TrimRight(baseURL, "/"), SecretID: secretID, SecretKey: secretKey, Region: region, Action: action}
}

// Format implements vision.ClientCodec and vision.ServerCodec.
func (c *Codec) Format() string { return "tencent" }

func (c *Codec) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Codec) action() string {
	if c.Action == "" {
		return ActionLabelPro
	}
	return c.Action
}

// EncodeRequest is the JSON body for req.
func EncodeRequest(req vision.Request) ([]byte, error) {
	var r Request
	switch {
	case len(req.Image.Bytes) > 0:
		r.ImageBase64 = vision.EncodeBase64(req.Image.Bytes)
	case req.Image.URL != "":
		r.ImageUrl = req.Image.URL
	default:
		return nil, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	return jsonx.Marshal(r)
}

// NewRequest implements vision.ClientCodec: a signed POST of the action.
// TIIA has no label count or confidence parameters: vision.Client filters.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	body, err := EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building %s request: %w", c.action(), err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-TC-Action", c.action())
	hr.Header.Set("X-TC-Version", Version)
	if c.Region != "" {
		hr.Header.Set("X-TC-Region", c.Region)
	}
	hr.Header.Set("X-TC-RequestClient", "cutover")
	if err := c.Sign(ctx, hr, body); err != nil {
		return nil, err
	}
	return hr, nil
}

// Sign implements vision.Signer: it (re)signs hr, whose body is body,
// with the codec's credentials at the current time. A caller that
// forwards a call to another host (or sends a cached body) signs it again.
func (c *Codec) Sign(ctx context.Context, hr *http.Request, body []byte) error {
	if c.SecretID == "" {
		return nil
	}
	signRequest(hr, body, c.SecretID, c.SecretKey, c.now())
	return nil
}

// DecodeResponse implements vision.ClientCodec. TIIA answers errors with
// HTTP 200 and Response.Error; any other status is an invalid_response
// (server_error when 5xx), as Tencent's SDK treats it
// (ClientError.HttpStatusCodeError).
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	if resp.StatusCode != http.StatusOK {
		code := vision.CodeInvalidResponse
		if resp.StatusCode >= 500 {
			code = vision.CodeServerError
		}
		return vision.Result{}, &vision.Error{Code: code, Status: resp.StatusCode, VendorCode: "ClientError.HttpStatusCodeError",
			Message: fmt.Sprintf("TIIA answered HTTP %d", resp.StatusCode)}
	}
	var r Response
	if err := vision.DecodeAnswer(body, &r, "TIIA answer"); err != nil {
		return vision.Result{}, err
	}
	if e := r.Response.Error; e != nil && e.Code != "" {
		return vision.Result{}, &vision.Error{Code: CodeOf(e.Code), Status: http.StatusOK, VendorCode: e.Code, Message: e.Message}
	}
	if r.Response.RequestId == "" {
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: http.StatusOK, Message: "TIIA answer has no Response.RequestId"}
	}
	res := vision.Result{Raw: body, ConfidenceSource: "provider"}
	for _, l := range r.Response.Labels {
		res.Labels = append(res.Labels, vision.Label{Name: l.Name, Confidence: confidence(l.Confidence),
			Parents: parents(l.Name, l.SecondCategory, l.FirstCategory)})
	}
	for _, p := range r.Response.Products {
		levels := strings.Split(p.Parents, "-")
		var ps []string
		for i := len(levels) - 1; i >= 0; i-- {
			ps = append(ps, levels[i])
		}
		res.Labels = append(res.Labels, vision.Label{Name: p.Name, Confidence: confidence(p.Confidence), Parents: parents(p.Name, ps...)})
	}
	return res, nil
}

// confidence normalises TIIA's 0–100 integer, clamped.
func confidence(c int64) float64 { return math.Min(1, math.Max(0, float64(c)/100)) }

// parents keeps the non-empty, distinct names of a label's categories,
// nearest first, without the label's own name.
func parents(name string, cats ...string) []string {
	var out []string
	for _, c := range cats {
		c = strings.TrimSpace(c)
		if c == "" || c == name || (len(out) > 0 && out[len(out)-1] == c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// newRequestID is a UUID v4, as TIIA's RequestId.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// decodeImage decodes ImageBase64 (standard base64, no data: prefix).
func decodeImage(s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		return nil, fmt.Errorf("data URI")
	}
	return vision.DecodeBase64(s)
}

var _ vision.ClientCodec = (*Codec)(nil)
var _ vision.ServerCodec = (*Codec)(nil)
var _ vision.Signer = (*Codec)(nil)
