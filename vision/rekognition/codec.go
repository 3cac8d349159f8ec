package rekognition

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/internal/jsonx"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/cutover/cutover/vision"
)

// Codec is both sides of DetectLabels. The zero value is a server codec;
// a client needs BaseURL, Region and Credentials.
type Codec struct {
	// BaseURL is the endpoint, e.g. https://rekognition.ap-southeast-1.amazonaws.com.
	BaseURL string
	// Region is the SigV4 signing region.
	Region string
	// Credentials sign requests; empty credentials send unsigned requests.
	Credentials aws.Credentials
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time

	signerOnce sync.Once
	signer     *v4.Signer
}

// NewCodec returns a client codec.
func NewCodec(baseURL, region string, creds aws.Credentials) *Codec {
	return &Codec{BaseURL: strings.TrimRight(baseURL, "/"), Region: region, Credentials: creds}
}

// Format implements vision.ClientCodec and vision.ServerCodec.
func (c *Codec) Format() string { return "rekognition" }

// EncodeRequest builds the DetectLabels body for req.
func EncodeRequest(req vision.Request) (DetectLabelsInput, error) {
	var in DetectLabelsInput
	switch {
	case len(req.Image.Bytes) > 0:
		in.Image.Bytes = req.Image.Bytes
	case strings.HasPrefix(req.Image.URL, "s3://"):
		rest := strings.TrimPrefix(req.Image.URL, "s3://")
		bucket, key, ok := strings.Cut(rest, "/")
		if !ok || bucket == "" || key == "" {
			return in, vision.Errorf(vision.CodeBadRequest, "S3 URL %q: want s3://bucket/key", req.Image.URL)
		}
		in.Image.S3Object = &S3Object{Bucket: bucket, Name: key}
	case req.Image.URL != "":
		return in, vision.Errorf(vision.CodeBadRequest, "rekognition takes image bytes or an s3:// object, not %q", req.Image.URL)
	default:
		return in, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	if req.MaxLabels > 0 {
		n := req.MaxLabels
		in.MaxLabels = &n
	}
	if req.MinConfidence > 0 {
		mc := math.Round(req.MinConfidence*100*1e6) / 1e6
		in.MinConfidence = &mc
	}
	in.Features = []string{"GENERAL_LABELS"}
	if req.WantsAttribute(vision.KindColor) {
		in.Features = append(in.Features, "IMAGE_PROPERTIES")
		in.Settings = &Settings{ImageProperties: &ImagePropertiesSettings{MaxDominantColors: 3}}
	}
	if len(req.CategoryFilter) > 0 {
		if in.Settings == nil {
			in.Settings = &Settings{}
		}
		in.Settings.GeneralLabels = &GeneralLabelsSettings{LabelInclusionFilters: req.CategoryFilter}
	}
	return in, nil
}

// NewRequest implements vision.ClientCodec: a signed DetectLabels call.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	in, err := EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	var hr *http.Request
	var body []byte
	if buf, ok := appendInput(in); ok {
		body = *buf
		hr, err = bufpool.NewRequest(ctx, http.MethodPost, c.BaseURL+"/", buf)
	} else {
		if body, err = jsonx.Marshal(in); err != nil {
			return nil, fmt.Errorf("encoding DetectLabels: %w", err)
		}
		hr, err = http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/", bytes.NewReader(body))
	}
	if err != nil {
		return nil, fmt.Errorf("building DetectLabels request: %w", err)
	}
	hr.Header.Set("Content-Type", ContentType)
	hr.Header.Set("X-Amz-Target", Target)
	if err := c.Sign(ctx, hr, body); err != nil {
		return nil, err
	}
	return hr, nil
}

// appendInput encodes in, an image given as bytes, into a pooled buffer
// (bufpool.RequestBodies): the image's base64 is written straight into it and
// the rest marshalled as usual, byte for byte what jsonx.Marshal(in)
// writes. ok is false for an input it does not handle.
func appendInput(in DetectLabelsInput) (*[]byte, bool) {
	img := in.Image.Bytes
	if len(img) == 0 || in.Image.S3Object != nil {
		return nil, false
	}
	in.Image.Bytes = nil
	rest, err := jsonx.Marshal(in)
	const empty, open = `{"Image":{}`, `{"Image":{"Bytes":"`
	if err != nil || !bytes.HasPrefix(rest, []byte(empty)) {
		return nil, false
	}
	rest = rest[len(empty):]
	buf := bufpool.RequestBodies.Get(len(open) + 4*((len(img)+2)/3) + 2 + len(rest))
	b := append(*buf, open...)
	b = vision.AppendBase64(b, img)
	b = append(b, `"}`...)
	*buf = append(b, rest...)
	return buf, true
}

// Sign signs hr (whose body is body) with SigV4 for service rekognition.
// Requests with empty credentials are left unsigned.
func (c *Codec) Sign(ctx context.Context, hr *http.Request, body []byte) error {
	if c.Credentials.AccessKeyID == "" {
		return nil
	}
	sum := sha256.Sum256(body)
	return c.SignHashed(ctx, hr, hex.EncodeToString(sum[:]))
}

// SignHashed is Sign for a body whose hex SHA-256 is payloadHash (as
// VerifyClientHash returns it).
func (c *Codec) SignHashed(ctx context.Context, hr *http.Request, payloadHash string) error {
	if c.Credentials.AccessKeyID == "" {
		return nil
	}
	c.signerOnce.Do(func() { c.signer = v4.NewSigner() })
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	hr.Header.Del("Authorization")
	hr.Header.Del("X-Amz-Date")
	hr.Header.Del("X-Amz-Security-Token")
	if err := c.signer.SignHTTP(ctx, c.Credentials, hr, payloadHash, "rekognition", c.Region, now().UTC()); err != nil {
		return fmt.Errorf("signing DetectLabels: %w", err)
	}
	return nil
}

// DecodeResponse implements vision.ClientCodec.
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	if resp.StatusCode != http.StatusOK {
		return vision.Result{}, DecodeError(resp.StatusCode, resp.Header, body)
	}
	var out DetectLabelsOutput
	if err := vision.DecodeAnswer(body, &out, "DetectLabels answer"); err != nil {
		return vision.Result{}, err
	}
	return ResultFromOutput(out, body), nil
}

// ResultFromOutput converts a DetectLabels answer to a vision.Result.
func ResultFromOutput(out DetectLabelsOutput, raw []byte) vision.Result {
	res := vision.Result{ModelVersion: out.LabelModelVersion, Raw: raw}
	for _, l := range out.Labels {
		vl := vision.Label{Name: l.Name, Confidence: l.Confidence / 100}
		for _, p := range l.Parents {
			vl.Parents = append(vl.Parents, p.Name)
		}
		for _, a := range l.Aliases {
			vl.Aliases = append(vl.Aliases, a.Name)
		}
		res.Labels = append(res.Labels, vl)
	}
	if out.ImageProperties != nil {
		for _, dc := range out.ImageProperties.DominantColors {
			rgb := vision.RGB{R: clamp8(dc.Red), G: clamp8(dc.Green), B: clamp8(dc.Blue)}
			res.Colors = append(res.Colors, vision.Color{R: rgb.R, G: rgb.G, B: rgb.B, Hex: rgb.Hex(),
				Fraction: dc.PixelPercent / 100, Name: dc.SimplifiedColor})
		}
	}
	return res
}

func clamp8(v int) uint8 { return uint8(max(0, min(255, v))) }

// errorCodes maps Rekognition error names to typed codes.
var errorCodes = map[string]vision.Code{
	"ThrottlingException":                    vision.CodeThrottled,
	"ProvisionedThroughputExceededException": vision.CodeThrottled,
	"LimitExceededException":                 vision.CodeThrottled,
	"AccessDeniedException":                  vision.CodeUnauthorized,
	"UnrecognizedClientException":            vision.CodeUnauthorized,
	"InvalidSignatureException":              vision.CodeUnauthorized,
	"MissingAuthenticationTokenException":    vision.CodeUnauthorized,
	"ExpiredTokenException":                  vision.CodeUnauthorized,
	"ImageTooLargeException":                 vision.CodeTooLarge,
	"InvalidImageFormatException":            vision.CodeBadImage,
	"InvalidS3ObjectException":               vision.CodeBadImage,
	"InvalidParameterException":              vision.CodeBadRequest,
	"ValidationException":                    vision.CodeBadRequest,
	"SerializationException":                 vision.CodeBadRequest,
	"UnknownOperationException":              vision.CodeBadRequest,
	"InternalServerError":                    vision.CodeServerError,
	"ServiceUnavailableException":            vision.CodeServerError,
}

// ErrorName extracts the error name the way the AWS SDKs do: the
// x-amzn-ErrorType header first, then the body's code, then __type, each
// stripped of a "namespace#" prefix and a ":…" suffix.
func ErrorName(h http.Header, body []byte) (name, message string) {
	var eb ErrorBody
	_ = jsonx.Unmarshal(body, &eb)
	var generic map[string]any
	if jsonx.Unmarshal(body, &generic) == nil {
		if m, ok := generic["Message"].(string); ok && eb.Message == "" {
			eb.Message = m
		}
	}
	for _, v := range []string{h.Get("X-Amzn-Errortype"), eb.Code, eb.Type} {
		if v == "" {
			continue
		}
		if i := strings.IndexByte(v, ':'); i >= 0 {
			v = v[:i]
		}
		if i := strings.LastIndexByte(v, '#'); i >= 0 {
			v = v[i+1:]
		}
		if v != "" {
			return v, eb.Message
		}
	}
	return "", eb.Message
}

// DecodeError maps a non-200 answer to a typed *vision.Error.
func DecodeError(status int, h http.Header, body []byte) *vision.Error {
	name, msg := ErrorName(h, body)
	code, ok := errorCodes[name]
	if !ok {
		code = vision.StatusCodeToCode(status)
	}
	return &vision.Error{Code: code, Status: status, VendorCode: name, Message: msg, RetryAfter: vision.ParseRetryAfter(h)}
}

// ---- server side ----

// IsClassify implements vision.ServerCodec: POST with the DetectLabels target.
func (c *Codec) IsClassify(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == Target
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return maxBody }

// DecodeRequest implements vision.ServerCodec.
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	return c.decodeRequest(r, body, true)
}

// DecodeRequestUnhashed implements vision.UnhashedDecoder.
func (c *Codec) DecodeRequestUnhashed(r *http.Request, body []byte) (vision.Request, error) {
	return c.decodeRequest(r, body, false)
}

func (c *Codec) decodeRequest(r *http.Request, body []byte, hash bool) (vision.Request, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != ContentType && mt != "application/json" {
		return vision.Request{}, vendorErr(vision.CodeBadRequest, "SerializationException", "Content-Type must be "+ContentType)
	}
	if t := r.Header.Get("X-Amz-Target"); t != Target {
		return vision.Request{}, vendorErr(vision.CodeBadRequest, "UnknownOperationException", "")
	}
	return decodeInput(body, hash)
}

// detectLabelsIn is DetectLabelsInput as a server decodes it: the image
// bytes go into a pooled buffer (bufpool.Images).
type detectLabelsIn struct {
	Image struct {
		Bytes    pooledBytes `json:"Bytes"`
		S3Object *S3Object   `json:"S3Object"`
	} `json:"Image"`
	MaxLabels     *int      `json:"MaxLabels"`
	MinConfidence *float64  `json:"MinConfidence"`
	Features      []string  `json:"Features"`
	Settings      *Settings `json:"Settings"`
}

// pooledBytes is a base64 JSON string decoded into a pooled buffer.
type pooledBytes struct{ buf *[]byte }

func (p *pooledBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errors.New("image bytes: not a JSON string")
	}
	s := b[1 : len(b)-1]
	if bytes.IndexByte(s, '\\') >= 0 { // escapes (a JSON encoder may write \/): unquote first
		var str string
		if err := jsonx.Unmarshal(b, &str); err != nil {
			return err
		}
		s = []byte(str)
	}
	buf, err := bufpool.Images.DecodeBase64(s)
	if err != nil {
		return err
	}
	p.buf = buf
	return nil
}

func (p pooledBytes) len() int {
	if p.buf == nil {
		return 0
	}
	return len(*p.buf)
}

// DecodeInput parses a DetectLabels body. The image's bytes are in a
// pooled buffer: the image's Lease returns it when the caller is done.
func DecodeInput(body []byte) (vision.Request, error) { return decodeInput(body, true) }

func decodeInput(body []byte, hash bool) (vision.Request, error) {
	var in detectLabelsIn
	if err := jsonx.Unmarshal(body, &in); err != nil {
		msg := "Start of structure or map found where not expected."
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			msg = "Base64 encoded binary data is invalid."
		}
		return vision.Request{}, vendorErr(vision.CodeBadRequest, "SerializationException", msg)
	}
	var req vision.Request
	switch {
	case in.Image.S3Object != nil:
		if in.Image.S3Object.Bucket == "" || in.Image.S3Object.Name == "" {
			return req, vendorErr(vision.CodeBadRequest, "ValidationException", "1 validation error detected: Value at 'image.s3Object' failed to satisfy constraint: Member must have bucket and name")
		}
		req.Image = vision.ImageFromURL("s3://" + in.Image.S3Object.Bucket + "/" + in.Image.S3Object.Name)
	case in.Image.Bytes.len() == 0:
		return req, vendorErr(vision.CodeBadRequest, "ValidationException", "1 validation error detected: Value at 'image.bytes' failed to satisfy constraint: Member must have length greater than or equal to 1")
	default:
		buf := in.Image.Bytes.buf
		im, err := vision.CheckImageBytes(*buf, MaxImageBytes)
		if err != nil {
			bufpool.Images.Put(buf)
			return req, toVendor(err)
		}
		if hash {
			vision.HashImage(&im)
		}
		im.Lease = bufpool.Images.NewLease(buf)
		req.Image = im
	}
	if in.MaxLabels != nil {
		if *in.MaxLabels < 0 {
			return req, vendorErr(vision.CodeBadRequest, "InvalidParameterException", "MaxLabels must be ≥ 0")
		}
		req.MaxLabels = *in.MaxLabels
	}
	if in.MinConfidence != nil {
		if *in.MinConfidence < 0 || *in.MinConfidence > 100 {
			return req, vendorErr(vision.CodeBadRequest, "InvalidParameterException", "MinConfidence must be between 0 and 100")
		}
		req.MinConfidence = *in.MinConfidence / 100
	} else {
		req.MinConfidence = 0.55 // Rekognition's documented default
	}
	for _, f := range in.Features {
		switch f {
		case "GENERAL_LABELS":
		case "IMAGE_PROPERTIES":
			req.Attributes = append(req.Attributes, vision.KindColor)
		default:
			return req, vendorErr(vision.CodeBadRequest, "InvalidParameterException", "unknown feature "+f)
		}
	}
	if in.Settings != nil && in.Settings.GeneralLabels != nil {
		req.CategoryFilter = in.Settings.GeneralLabels.LabelInclusionFilters
	}
	return req, nil
}

// vendorNames is the error each typed code is answered with.
var vendorNames = map[vision.Code]string{
	vision.CodeThrottled:       "ThrottlingException",
	vision.CodeUnauthorized:    "AccessDeniedException",
	vision.CodeTooLarge:        "ImageTooLargeException",
	vision.CodeBadImage:        "InvalidImageFormatException",
	vision.CodeBadRequest:      "InvalidParameterException",
	vision.CodeServerError:     "InternalServerError",
	vision.CodeTimeout:         "ServiceUnavailableException",
	vision.CodeNetwork:         "InternalServerError",
	vision.CodeInvalidResponse: "InternalServerError",
}

func vendorErr(code vision.Code, name, msg string) *vision.Error {
	return &vision.Error{Code: code, VendorCode: name, Message: msg}
}

func toVendor(err error) *vision.Error {
	e := vision.AsError(err)
	if e.VendorCode == "" {
		e2 := *e
		e2.VendorCode = vendorNames[e.Code]
		return &e2
	}
	return e
}

// statusOf is the HTTP status Rekognition answers each error name with.
func statusOf(name string) int {
	switch name {
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"MissingAuthenticationTokenException", "ExpiredTokenException":
		return http.StatusForbidden
	case "InternalServerError":
		return http.StatusInternalServerError
	case "ServiceUnavailableException":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// WriteError implements vision.ServerCodec: {"__type", "message"} with the
// x-amzn-ErrorType header, as AWS JSON 1.1 services answer.
func (c *Codec) WriteError(w http.ResponseWriter, err error) {
	e := toVendor(err)
	msg := e.Message
	if msg == "" {
		msg = defaultMessage(e.VendorCode)
	}
	b, _ := jsonx.Marshal(ErrorBody{Type: e.VendorCode, Message: msg})
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("X-Amzn-Errortype", e.VendorCode+":")
	h.Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(statusOf(e.VendorCode))
	w.Write(b)
}

func defaultMessage(name string) string {
	switch name {
	case "ThrottlingException":
		return "Rate exceeded"
	case "AccessDeniedException":
		return "User is not authorized to perform: rekognition:DetectLabels"
	case "ImageTooLargeException":
		return "Image size is too large."
	case "InvalidImageFormatException":
		return "Request has invalid image format"
	case "InternalServerError":
		return "Internal server error"
	}
	return name
}

// WriteResult implements vision.ServerCodec.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	b, err := jsonx.Marshal(OutputFromResult(res))
	if err != nil {
		c.WriteError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("X-Amzn-Requestid", requestID())
	w.Write(b)
}

// OutputFromResult converts a vision.Result to a DetectLabels answer. Typed
// attributes become labels (Rekognition has no attribute channel); colours
// become IMAGE_PROPERTIES dominant colours.
func OutputFromResult(res vision.Result) DetectLabelsOutput {
	out := DetectLabelsOutput{Labels: []Label{}, LabelModelVersion: res.ModelVersion}
	add := func(l vision.Label, category string) {
		rl := Label{Name: l.Name, Confidence: round4(l.Confidence * 100), Instances: []Instance{}, Parents: []Named{}, Aliases: []Named{}, Categories: []Named{}}
		for _, p := range l.Parents {
			rl.Parents = append(rl.Parents, Named{p})
		}
		for _, a := range l.Aliases {
			rl.Aliases = append(rl.Aliases, Named{a})
		}
		if category != "" {
			rl.Categories = append(rl.Categories, Named{category})
		}
		out.Labels = append(out.Labels, rl)
	}
	for _, l := range res.Categories {
		add(l, "Apparel and Accessories")
	}
	for _, l := range res.Labels {
		add(l, "")
	}
	for _, a := range res.Attributes {
		if a.Kind == vision.KindColor {
			continue
		}
		add(vision.Label{Name: a.Value, Confidence: a.Confidence}, attributeCategory[a.Kind])
	}
	if len(res.Colors) > 0 {
		ip := &ImageProperties{Quality: &Quality{Brightness: 70, Sharpness: 80, Contrast: 60}}
		for _, c := range res.Colors {
			rgb, _ := vision.ParseHex(c.Hex)
			ip.DominantColors = append(ip.DominantColors, DominantColor{Red: int(rgb.R), Green: int(rgb.G), Blue: int(rgb.B),
				HexCode: strings.ToUpper(rgb.Hex()), SimplifiedColor: c.Name, PixelPercent: round4(c.Fraction * 100)})
		}
		out.ImageProperties = ip
	}
	return out
}

var attributeCategory = map[vision.AttributeKind]string{
	vision.KindPattern:  "Patterns and Shapes",
	vision.KindMaterial: "Textures and Materials",
	vision.KindStyle:    "Apparel and Accessories",
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

var _ vision.ClientCodec = (*Codec)(nil)
var _ vision.ServerCodec = (*Codec)(nil)

// NoCredentials leaves requests unsigned (benchmarks, simulators without keys).
var NoCredentials = aws.Credentials{}
