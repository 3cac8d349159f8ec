package vision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	fastb64 "github.com/segmentio/asm/base64"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/internal/jsonx"
)

// ClientCodec is the client side of a wire format: it turns a Request into
// an HTTP request (credentials included) and an HTTP answer into a Result or
// a typed *Error.
type ClientCodec interface {
	// Format is the wire format's name (rekognition, gcv, …).
	Format() string
	NewRequest(ctx context.Context, req Request) (*http.Request, error)
	DecodeResponse(resp *http.Response, body []byte) (Result, error)
}

// ServerCodec is the server side of a wire format, used by the simulator and
// by the proxy to read the legacy API's requests and to answer in its format.
type ServerCodec interface {
	Format() string
	// IsClassify reports whether r is a classification call of this format
	// (path, method, X-Amz-Target …). Other calls are not decoded.
	IsClassify(r *http.Request) bool
	// MaxBodyBytes is the largest request body the format accepts.
	MaxBodyBytes() int64
	// DecodeRequest parses a classification call; errors are *Error.
	DecodeRequest(r *http.Request, body []byte) (Request, error)
	// WriteResult answers a classification call.
	WriteResult(w http.ResponseWriter, req Request, res Result)
	// WriteError answers with the format's own error body for err's code.
	WriteError(w http.ResponseWriter, err error)
}

// An UnhashedDecoder is a ServerCodec that can decode a request leaving
// Image.SHA256 empty, for a caller that needs the image's bytes at once
// and its hash only later, off its hot path (SHA-256 is about 40 µs for a
// 75 KB image); HashImage fills it in.
type UnhashedDecoder interface {
	DecodeRequestUnhashed(r *http.Request, body []byte) (Request, error)
}

// MaxResponseBytes bounds what a Client reads of an answer (a tagging answer
// with a thousand labels is well under 1 MiB); a larger answer
// is an invalid_response, never a memory blow-up.
const MaxResponseBytes = 4 << 20

// Client is a Provider over HTTP for any ClientCodec.
type Client struct {
	Codec ClientCodec
	// HTTP is the client used; nil means a default with sensible pooling.
	HTTP *http.Client
	// Timeout bounds one call; 0 means none beyond ctx's.
	Timeout time.Duration
	// Wait, if set, is called before each request (a rate limiter's Wait).
	Wait func(ctx context.Context) error
	// Cache, if set, reuses encoded bodies for repeated images (bench).
	Cache *BodyCache
}

// DefaultTransport is an http.Transport tuned for talking to one API at a
// high rate: many idle connections per host instead of Go's default two.
func DefaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	// Image uploads are tens of kilobytes: the default 4 KiB buffers
	// would write one in a dozen syscalls.
	t.WriteBufferSize = 64 << 10
	t.ReadBufferSize = 64 << 10
	return t
}

var defaultHTTP = &http.Client{Transport: DefaultTransport()}

// Classify implements Provider: it waits for the rate limit, then Do.
func (c *Client) Classify(ctx context.Context, req Request) (Result, error) {
	if err := c.Pace(ctx); err != nil {
		return Result{}, err
	}
	return c.Do(ctx, req)
}

// Pace waits for the client's rate limit, if it has one. Callers that time
// calls pace first and time Do alone, so waiting on cutover's own limiter
// is never counted as the provider's latency.
func (c *Client) Pace(ctx context.Context) error {
	if c.Wait == nil {
		return nil
	}
	if err := c.Wait(ctx); err != nil {
		return &Error{Code: CodeTimeout, Message: "waiting for the rate limit", Err: err}
	}
	return nil
}

// Do sends one request without pacing, bounded by the client's Timeout.
func (c *Client) Do(ctx context.Context, req Request) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	hreq, err := c.newRequest(ctx, req)
	if err != nil {
		return Result{}, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(hreq)
	bufpool.ReleaseRequest(hreq, err)
	if err != nil {
		return Result{}, TransportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return Result{}, TransportError(err)
	}
	if len(body) > MaxResponseBytes {
		return Result{}, &Error{Code: CodeInvalidResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("response larger than %d bytes", MaxResponseBytes)}
	}
	res, err := c.Codec.DecodeResponse(resp, body)
	if err != nil {
		return res, err
	}
	return res.Filter(req.MinConfidence, req.MaxLabels), nil
}

var _ Provider = (*Client)(nil)

// ReadBody reads at most limit bytes of r's body into a buffer from the
// pool (return it with PutBody when nothing refers to it any more).
// tooLarge is true when the body is longer; it is then not read further.
func ReadBody(r *http.Request, limit int64) (body []byte, tooLarge bool, err error) {
	if r.ContentLength > limit {
		return nil, true, nil
	}
	buf, tooLarge, err := bodies.Read(r.Body, limit, r.ContentLength)
	switch {
	case err != nil:
		return nil, false, err
	case tooLarge:
		bodies.Put(buf)
		return nil, true, nil
	case buf == nil:
		return nil, false, nil
	}
	return *buf, false, nil
}

// bodies holds the buffers ReadBody reads into.
var bodies bufpool.Pool

// PutBody returns a buffer from ReadBody to the pool. Only call it once
// nothing (a decoded request, a response) refers to the bytes.
func PutBody(b []byte) { bodies.Put(&b) }

// DecodeImageBytes checks decoded image bytes against a format's limits:
// empty → bad_request, larger than maxBytes → too_large, not a recognised
// image type → bad_image.
func DecodeImageBytes(b []byte, maxBytes int) (Image, error) {
	im, err := CheckImageBytes(b, maxBytes)
	if err == nil {
		HashImage(&im)
	}
	return im, err
}

// CheckImageBytes is DecodeImageBytes without the SHA-256, for a decoder
// that leaves it to HashImage (an UnhashedDecoder).
func CheckImageBytes(b []byte, maxBytes int) (Image, error) {
	if len(b) == 0 {
		return Image{}, Errorf(CodeBadRequest, "image is empty")
	}
	if maxBytes > 0 && len(b) > maxBytes {
		return Image{}, Errorf(CodeTooLarge, "image is %d bytes; the limit is %d", len(b), maxBytes)
	}
	im := unhashedImage(b)
	if im.MediaType == "" {
		return Image{}, Errorf(CodeBadImage, "image format not recognised (want JPEG, PNG, GIF, WebP, BMP or TIFF)")
	}
	return im, nil
}

// DecodeBase64 decodes standard base64, with or without padding, optionally
// behind a data: URI prefix.
func DecodeBase64(s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		i := strings.Index(s, ";base64,")
		if i < 0 {
			return nil, errors.New("data URI is not base64")
		}
		s = s[i+len(";base64,"):]
	}
	b, err := fastb64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	return b, err
}

// AppendBase64 appends src in standard padded base64 to dst: the wire
// encoding of an image, vectorised (14× encoding/base64 on a 75 KB image,
// and on the request path of every translated call).
func AppendBase64(dst, src []byte) []byte {
	n, m := len(dst), fastb64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, m)[:n+m]
	fastb64.StdEncoding.Encode(dst[n:], src)
	return dst
}

// EncodeBase64 is src in standard padded base64, as AppendBase64.
func EncodeBase64(src []byte) string { return fastb64.StdEncoding.EncodeToString(src) }

// ParseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func ParseRetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// StatusCode returns the conventional HTTP status for a typed code, for
// formats whose error statuses follow REST habits.
func StatusCode(c Code) int {
	switch c {
	case CodeThrottled:
		return http.StatusTooManyRequests
	case CodeTimeout:
		return http.StatusGatewayTimeout
	case CodeBadImage:
		return http.StatusUnprocessableEntity
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeNetwork:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// AsError returns err as an *Error, wrapping unknown errors as server_error.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeServerError, Message: err.Error(), Err: err}
}

// Serve answers classification calls of codec with p; other requests get
// the format's bad_request error. It is the plain server; the simulator adds
// latency and failure injection around the same codec.
func Serve(codec ServerCodec, p Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !codec.IsClassify(r) {
			codec.WriteError(w, Errorf(CodeBadRequest, "unsupported operation %s %s", r.Method, r.URL.Path))
			return
		}
		body, tooLarge, err := ReadBody(r, codec.MaxBodyBytes())
		if err != nil {
			return // the client went away
		}
		if tooLarge {
			w.Header().Set("Connection", "close")
			codec.WriteError(w, Errorf(CodeTooLarge, "request body exceeds %d bytes", codec.MaxBodyBytes()))
			return
		}
		req, err := codec.DecodeRequest(r, body)
		if err != nil {
			codec.WriteError(w, err)
			return
		}
		res, err := p.Classify(r.Context(), req)
		if err != nil {
			codec.WriteError(w, err)
		} else {
			codec.WriteResult(w, req, res)
		}
		PutBody(body)
	})
}

// StatusCodeToCode is the fallback mapping from an HTTP status alone.
func StatusCodeToCode(status int) Code {
	switch {
	case status == http.StatusTooManyRequests:
		return CodeThrottled
	case status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		return CodeTimeout
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return CodeUnauthorized
	case status == http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case status == http.StatusUnprocessableEntity:
		return CodeBadImage
	case status >= 500:
		return CodeServerError
	case status >= 400:
		return CodeBadRequest
	}
	return CodeInvalidResponse
}

// Signer is implemented by codecs whose requests carry a per-request
// signature over the body (SigV4): a cached body is signed again per send.
type Signer interface {
	Sign(ctx context.Context, hr *http.Request, body []byte) error
}

// BodyCache keeps encoded request bodies by image and options so that a
// benchmark sending the same fixtures again and again encodes each once.
// It holds at most Max bodies (older ones are not evicted: a fixture set
// is bounded). Safe for concurrent use.
type BodyCache struct {
	Max int
	mu  sync.Mutex
	m   map[string]*cachedBody
}

type cachedBody struct {
	method, url string
	header      http.Header
	body        []byte
}

func cacheKey(req Request) string {
	if req.Image.SHA256 == "" || req.LLM != nil {
		return ""
	}
	return fmt.Sprintf("%s|%d|%g|%v|%v", req.Image.SHA256, req.MaxLabels, req.MinConfidence, req.Attributes, req.CategoryFilter)
}

// newRequest builds the HTTP request for req, from the cache when it can.
func (c *Client) newRequest(ctx context.Context, req Request) (*http.Request, error) {
	key := ""
	if c.Cache != nil {
		key = cacheKey(req)
	}
	if key != "" {
		c.Cache.mu.Lock()
		cb := c.Cache.m[key]
		c.Cache.mu.Unlock()
		if cb != nil {
			hr, err := http.NewRequestWithContext(ctx, cb.method, cb.url, bytes.NewReader(cb.body))
			if err != nil {
				return nil, err
			}
			hr.Header = cb.header.Clone()
			if s, ok := c.Codec.(Signer); ok {
				if err := s.Sign(ctx, hr, cb.body); err != nil {
					return nil, err
				}
			}
			return hr, nil
		}
	}
	hr, err := c.Codec.NewRequest(ctx, req)
	if err != nil || key == "" || hr.GetBody == nil {
		return hr, err
	}
	rc, err := hr.GetBody()
	if err != nil {
		return hr, nil
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return hr, nil
	}
	c.Cache.mu.Lock()
	if c.Cache.m == nil {
		c.Cache.m = map[string]*cachedBody{}
	}
	if c.Cache.Max <= 0 || len(c.Cache.m) < c.Cache.Max {
		c.Cache.m[key] = &cachedBody{method: hr.Method, url: hr.URL.String(), header: hr.Header.Clone(), body: body}
	}
	c.Cache.mu.Unlock()
	return hr, nil
}

// DecodeAnswer unmarshals a provider's 200 answer into v; malformed JSON is
// a typed invalid_response error naming what was expected.
func DecodeAnswer(body []byte, v any, what string) error {
	if err := jsonx.Unmarshal(body, v); err != nil {
		return &Error{Code: CodeInvalidResponse, Status: http.StatusOK, Message: what + " is not valid JSON", Err: err}
	}
	return nil
}

// JSONErrorDetail describes a JSON decoding error for an error body sent
// back to a client: the offset of a syntax error, or the field of the
// wrong type.
func JSONErrorDetail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	}
	return "malformed"
}
