// Package baidu speaks Baidu AI Cloud image recognition (通用物体和场景识别,
// advanced_general) as format "baidu": a client that obtains an OAuth
// client-credentials access token, caches it until it expires and, as
// Baidu's SDKs do, fetches a new one and replays the call once when Baidu
// answers 110 (token invalid) or 111 (token expired); and a server side
// (decoding, answering, and Tokens, the token endpoint) for the simulator
// and the proxy.
//
// Requests are form-urlencoded (image=<base64>). Answers are
// {log_id, result_num, result[{keyword, score, root}]}; errors are
// {error_code, error_msg} with HTTP 200, mapped to typed codes by CodeOf.
// log_id exceeds 2^53 and is kept as a decimal string, never a float.
package baidu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/jsonx"
	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/vision"
)

// Wire constants.
const (
	// Path is advanced_general's path.
	Path = "/rest/2.0/image-classify/v2/advanced_general"
	// TokenPath is the OAuth token endpoint's path.
	TokenPath = "/oauth/2.0/token"
	// MaxImageBase64 is Baidu's limit on the image: 8 MB after base64.
	MaxImageBase64 = 8 << 20
	// MaxSide is the longest side Baidu reads, in pixels.
	MaxSide = 8192
	// MaxRequestBytes bounds a form body: an 8 MB base64 image, URL-encoded
	// ('+' and '/' become three bytes each).
	MaxRequestBytes = 3*MaxImageBase64 + 64<<10
	// tokenMargin is how long before its expiry a cached token is renewed
	// (Baidu's Python SDK: 30 s).
	tokenMargin = 30 * time.Second
)

// Keyword is one result: score 0–1, root "大类-细类".
type Keyword struct {
	Keyword   string     `json:"keyword"`
	Score     float64    `json:"score"`
	Root      string     `json:"root"`
	BaikeInfo *BaikeInfo `json:"baike_info,omitempty"`
}

// BaikeInfo is the encyclopedia entry sent when baike_num > 0.
type BaikeInfo struct {
	BaikeURL    string `json:"baike_url,omitempty"`
	ImageURL    string `json:"image_url,omitempty"`
	Description string `json:"description,omitempty"`
}

// LogID is Baidu's log_id: an unsigned 64-bit number sent as a JSON
// number (or, in the documentation's example, a string), kept as its
// decimal digits so that no float64 rounding touches it.
type LogID string

// UnmarshalJSON implements json.Unmarshaler: a number or a string of digits.
func (l *LogID) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "null" {
		*l = ""
		return nil
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return fmt.Errorf("log_id %q is not an unsigned 64-bit integer", s)
	}
	*l = LogID(s)
	return nil
}

// MarshalJSON implements json.Marshaler: a bare number.
func (l LogID) MarshalJSON() ([]byte, error) {
	if l == "" {
		return []byte("0"), nil
	}
	return []byte(l), nil
}

// Response is advanced_general's answer, or an error.
type Response struct {
	LogID     LogID     `json:"log_id"`
	ResultNum int       `json:"result_num"`
	Result    []Keyword `json:"result"`
	// ErrorCode and ErrorMsg are set on failure.
	ErrorCode *ErrorCode `json:"error_code,omitempty"`
	ErrorMsg  string     `json:"error_msg,omitempty"`
}

// ErrorCode is error_code: a number, read also when sent as a string.
type ErrorCode int

// UnmarshalJSON implements json.Unmarshaler.
func (e *ErrorCode) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("error_code %q is not an integer", s)
	}
	*e = ErrorCode(n)
	return nil
}

// Token is the token endpoint's answer.
type Token struct {
	AccessToken   string `json:"access_token"`
	ExpiresIn     int64  `json:"expires_in"`
	RefreshToken  string `json:"refresh_token,omitempty"`
	Scope         string `json:"scope,omitempty"`
	SessionKey    string `json:"session_key,omitempty"`
	SessionSecret string `json:"session_secret,omitempty"`
	// Error and ErrorDescription are set on failure (OAuth 2.0).
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// Codec is both sides of advanced_general. The client fields are used by
// NewRequest; the zero value is a server codec.
type Codec struct {
	// BaseURL is scheme://host[:port], e.g. https://aip.baidubce.com.
	BaseURL string
	// APIKey and SecretKey are the app's credentials (client_id and
	// client_secret of the token request).
	APIKey, SecretKey string
	// HTTP sends token requests and replays; nil means a pooled default.
	HTTP *http.Client
	// Now is the token cache's clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	scrub   *secret.Scrubber
}

// NewCodec returns a client codec.
func NewCodec(baseURL, apiKey, secretKey string) *Codec {
	return &Codec{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, SecretKey: secretKey}
}

// Format implements vision.ClientCodec and vision.ServerCodec.
func (c *Codec) Format() string { return "baidu" }

var defaultHTTP = &http.Client{Transport: vision.DefaultTransport()}

func (c *Codec) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

func (c *Codec) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// scrubber removes the credentials and the current token from messages.
func (c *Codec) scrubber() *secret.Scrubber {
	c.mu.Lock()
	defer c.mu.Unlock()
	return secret.New(c.APIKey, c.SecretKey, c.token)
}

// Token returns a valid access token: the cached one until tokenMargin
// before it expires, else a new one from the token endpoint (the cache's
// lock is held while it is fetched, so concurrent calls fetch it once).
func (c *Codec) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expires) {
		return c.token, nil
	}
	tok, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	c.token = tok.AccessToken
	c.expires = c.now().Add(time.Duration(tok.ExpiresIn)*time.Second - tokenMargin)
	return c.token, nil
}

// forget drops tok from the cache (a call was refused with it).
func (c *Codec) forget(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// fetchToken asks the token endpoint with a POSTed form: the credentials
// stay out of URLs (Baidu's SDKs put them in the query; both are served).
func (c *Codec) fetchToken(ctx context.Context) (Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.APIKey}, "client_secret": {c.SecretKey}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, fmt.Errorf("building the token request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.httpClient().Do(hr)
	if err != nil {
		e := vision.TransportError(err)
		scrub := secret.New(c.APIKey, c.SecretKey)
		return Token{}, &vision.Error{Code: e.Code, Message: "fetching the access token: " + scrub.Error(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Token{}, &vision.Error{Code: vision.ErrorCode(err), Message: "reading the access token answer"}
	}
	var tok Token
	if err := jsonx.Unmarshal(body, &tok); err != nil {
		return Token{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode, Message: "the token endpoint's answer is not JSON"}
	}
	if tok.Error != "" || tok.AccessToken == "" {
		code := vision.CodeUnauthorized
		if tok.Error == "" {
			code = vision.StatusCodeToCode(resp.StatusCode)
			if resp.StatusCode == http.StatusOK {
				code = vision.CodeInvalidResponse
			}
		}
		return Token{}, &vision.Error{Code: code, Status: resp.StatusCode, VendorCode: tok.Error,
			Message: "fetching the access token: " + tok.ErrorDescription}
	}
	if tok.ExpiresIn <= 0 {
		tok.ExpiresIn = 30 * 24 * 3600
	}
	return tok, nil
}

// EncodeForm is the form body for req: image (base64) or url.
func EncodeForm(req vision.Request) (string, error) {
	switch {
	case len(req.Image.Bytes) > 0:
		return url.Values{"image": {vision.EncodeBase64(req.Image.Bytes)}}.Encode(), nil
	case req.Image.URL != "":
		return url.Values{"url": {req.Image.URL}}.Encode(), nil
	}
	return "", vision.Errorf(vision.CodeBadRequest, "request has no image")
}

// NewRequest implements vision.ClientCodec. It fetches the access token
// first when none is cached.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	form, err := EncodeForm(req)
	if err != nil {
		return nil, err
	}
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	return c.newCall(ctx, []byte(form), tok)
}

// Sign implements vision.Signer: it puts the current access token in
// hr's URL, so that a request built from a cached body carries a valid one.
func (c *Codec) Sign(ctx context.Context, hr *http.Request, body []byte) error {
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	q := hr.URL.Query()
	q.Set("access_token", tok)
	hr.URL.RawQuery = q.Encode()
	return nil
}

func (c *Codec) newCall(ctx context.Context, body []byte, tok string) (*http.Request, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+Path+"?access_token="+url.QueryEscape(tok), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the advanced_general request: %w", c.scrubber().Wrap(err))
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return hr, nil
}

// DecodeResponse implements vision.ClientCodec. Errors are read from the
// body whatever the status (Baidu sends them with HTTP 200). When the
// answer is 110 or 111 and resp.Request is the call this codec sent, it
// fetches a new token and replays the call once, as Baidu's SDKs do; an
// answer decoded without its request (a proxy's recording) is only read.
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	res, err := decodeAnswer(resp, body)
	var e *vision.Error
	if err == nil || !errors.As(err, &e) || (e.VendorCode != "110" && e.VendorCode != "111") || resp.Request == nil || c.APIKey == "" {
		return res, err
	}
	return c.replay(resp.Request, res, err)
}

// replay sends req again with a new token and decodes the answer.
func (c *Codec) replay(req *http.Request, res vision.Result, first error) (vision.Result, error) {
	ctx := req.Context()
	if req.GetBody == nil {
		return res, first
	}
	if old := req.URL.Query().Get("access_token"); old != "" {
		c.forget(old)
	}
	tok, err := c.Token(ctx)
	if err != nil {
		return vision.Result{}, err
	}
	rc, err := req.GetBody()
	if err != nil {
		return res, first
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	hr, err := c.newCall(ctx, body, tok)
	if err != nil {
		return res, first
	}
	resp, err := c.httpClient().Do(hr)
	if err != nil {
		e := vision.TransportError(err)
		return vision.Result{}, &vision.Error{Code: e.Code, Message: "replaying with a new access token: " + c.scrubber().Error(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, vision.MaxResponseBytes+1))
	if err != nil {
		return vision.Result{}, vision.TransportError(err)
	}
	if len(b) > vision.MaxResponseBytes {
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode, Message: "answer too large"}
	}
	return decodeAnswer(resp, b)
}

// decodeAnswer reads one answer.
func decodeAnswer(resp *http.Response, body []byte) (vision.Result, error) {
	var r Response
	if err := jsonx.Unmarshal(body, &r); err != nil {
		if resp.StatusCode != http.StatusOK {
			return vision.Result{}, &vision.Error{Code: vision.StatusCodeToCode(resp.StatusCode), Status: resp.StatusCode,
				Message: fmt.Sprintf("advanced_general answered HTTP %d", resp.StatusCode)}
		}
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode, Message: "advanced_general answer is not valid JSON", Err: err}
	}
	if r.ErrorCode != nil && *r.ErrorCode != 0 {
		n := int(*r.ErrorCode)
		return vision.Result{}, &vision.Error{Code: CodeOf(n), Status: resp.StatusCode, VendorCode: strconv.Itoa(n), Message: r.ErrorMsg}
	}
	if resp.StatusCode != http.StatusOK {
		return vision.Result{}, &vision.Error{Code: vision.StatusCodeToCode(resp.StatusCode), Status: resp.StatusCode,
			Message: fmt.Sprintf("advanced_general answered HTTP %d", resp.StatusCode)}
	}
	if r.LogID == "" {
		return vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode, Message: "advanced_general answer has no log_id"}
	}
	res := vision.Result{Raw: body, ConfidenceSource: "provider"}
	for _, k := range r.Result {
		res.Labels = append(res.Labels, vision.Label{Name: k.Keyword, Confidence: math.Min(1, math.Max(0, k.Score)), Parents: rootParents(k.Keyword, k.Root)})
	}
	return res, nil
}

// rootParents splits root "大类-细类" into its levels, nearest first.
func rootParents(keyword, root string) []string {
	root = strings.TrimSpace(root)
	if root == "" {
		return nil
	}
	var out []string
	levels := strings.SplitN(root, "-", 2)
	for i := len(levels) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(levels[i]); l != "" && l != keyword {
			out = append(out, l)
		}
	}
	return out
}

// ---- server side ----

// IsClassify implements vision.ServerCodec.
func (c *Codec) IsClassify(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == Path
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return MaxRequestBytes }

func bdErr(code vision.Code, n int, msg string) *vision.Error {
	return &vision.Error{Code: code, VendorCode: strconv.Itoa(n), Message: msg}
}

// DecodeRequest implements vision.ServerCodec. The access token is the
// Tokens' business (Check).
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	return decode(r, body, true)
}

// DecodeRequestUnhashed implements vision.UnhashedDecoder.
func (c *Codec) DecodeRequestUnhashed(r *http.Request, body []byte) (vision.Request, error) {
	return decode(r, body, false)
}

func decode(r *http.Request, body []byte, hash bool) (vision.Request, error) {
	var req vision.Request
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return req, bdErr(vision.CodeBadRequest, 216101, "not enough param")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return req, bdErr(vision.CodeBadRequest, 216100, "invalid param")
	}
	if n := form.Get("baike_num"); n != "" {
		if v, err := strconv.Atoi(n); err != nil || v < 0 {
			return req, bdErr(vision.CodeBadRequest, 216100, "invalid param: baike_num")
		}
	}
	_, hasImage := form["image"]
	img, u := form.Get("image"), form.Get("url")
	switch {
	case hasImage && img == "":
		return req, bdErr(vision.CodeBadImage, 216200, "empty image")
	case img != "":
		// image wins over url.
	case u != "":
		if len(u) > 1024 {
			return req, bdErr(vision.CodeBadRequest, 216103, "param too long: url")
		}
		req.Image = vision.ImageFromURL(u)
		return req, nil
	default:
		return req, bdErr(vision.CodeBadRequest, 216101, "not enough param")
	}
	if len(img) > MaxImageBase64 {
		return req, bdErr(vision.CodeTooLarge, 216202, fmt.Sprintf("image size error: the image is %d bytes in base64, the limit is %d", len(img), MaxImageBase64))
	}
	if strings.HasPrefix(img, "data:") {
		return req, bdErr(vision.CodeBadImage, 216203, "image size error: base64 without a data: prefix expected")
	}
	b, err := vision.DecodeBase64(img)
	if err != nil {
		return req, bdErr(vision.CodeBadImage, 216203, "image size error: invalid base64")
	}
	im, err := vision.CheckImageBytes(b, 0)
	if err != nil || (im.MediaType != "image/jpeg" && im.MediaType != "image/png" && im.MediaType != "image/bmp") {
		return req, bdErr(vision.CodeBadImage, 216201, "image format error")
	}
	if w, h := imageSize(b); w > MaxSide || h > MaxSide {
		return req, bdErr(vision.CodeTooLarge, 216202, fmt.Sprintf("image size error: %d×%d px, the longest side may be %d", w, h, MaxSide))
	}
	if hash {
		vision.HashImage(&im)
	}
	req.Image = im
	return req, nil
}

// WriteError implements vision.ServerCodec: {error_code, error_msg} with
// HTTP 200, the error's own Baidu code when it carries one (VendorCode);
// a timeout is a gateway's 504 with no Baidu body (Baidu documents no
// timeout code).
func (c *Codec) WriteError(w http.ResponseWriter, err error) {
	e := vision.AsError(err)
	if e.Code == vision.CodeTimeout && e.VendorCode == "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusGatewayTimeout)
		io.WriteString(w, "<html><body>504 Gateway Time-out</body></html>\n")
		return
	}
	n, msg := answerFor(e.Code)
	if v, err := strconv.Atoi(e.VendorCode); err == nil && v > 0 {
		n = v
		if e.Message != "" {
			msg = e.Message
		}
	}
	b, _ := json.Marshal(errorAnswer{ErrorCode: n, ErrorMsg: msg, LogID: newLogID()})
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Write(b)
}

type errorAnswer struct {
	LogID     LogID  `json:"log_id"`
	ErrorCode int    `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

type answer struct {
	LogID     LogID     `json:"log_id"`
	ResultNum int       `json:"result_num"`
	Result    []Keyword `json:"result"`
}

// WriteResult implements vision.ServerCodec: labels and categories become
// keywords, most confident first, with root "商品-<nearest parent>" (or
// "商品-<keyword>" for a top-level category); attributes become keywords
// without a root, as Baidu sends some tags.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	a := answer{LogID: newLogID(), Result: []Keyword{}}
	add := func(l vision.Label) {
		root := "商品-" + l.Name
		if len(l.Parents) > 0 {
			root = "商品-" + l.Parents[0]
		}
		a.Result = append(a.Result, Keyword{Keyword: l.Name, Score: round6(l.Confidence), Root: root})
	}
	for _, l := range res.Categories {
		add(l)
	}
	for _, l := range res.Labels {
		add(l)
	}
	for _, at := range res.Attributes {
		a.Result = append(a.Result, Keyword{Keyword: at.Value, Score: round6(at.Confidence)})
	}
	for _, col := range res.Colors {
		if col.Name != "" {
			a.Result = append(a.Result, Keyword{Keyword: col.Name, Score: round6(max(col.Score, col.Fraction))})
		}
	}
	sort.SliceStable(a.Result, func(i, j int) bool { return a.Result[i].Score > a.Result[j].Score })
	a.ResultNum = len(a.Result)
	b, err := json.Marshal(a)
	if err != nil {
		c.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Write(b)
}

func round6(f float64) float64 { return math.Round(math.Min(1, math.Max(0, f))*1e6) / 1e6 }

// newLogID is a random log_id, usually above 2^53 as Baidu's are.
func newLogID() LogID {
	var b [8]byte
	rand.Read(b[:])
	return LogID(strconv.FormatUint(binary.BigEndian.Uint64(b[:])>>1, 10))
}

var _ vision.ClientCodec = (*Codec)(nil)
var _ vision.ServerCodec = (*Codec)(nil)
var _ vision.UnhashedDecoder = (*Codec)(nil)
var _ vision.Signer = (*Codec)(nil)
