package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// Upstream transport limits. An answer's headers past maxResponseHeaderBytes
// end the call (502): a primary that sends a 128 MiB header must not hold
// 128 MiB of the proxy's memory. More than max1xx informational (1xx)
// responses before the answer end it too (502), however many a broken
// primary would send.
const (
	maxResponseHeaderBytes = 1 << 20
	max1xx                 = 5
	upstreamBufferBytes    = 64 << 10
	idleConnTimeout        = 50 * time.Second
	dialTimeout            = 10 * time.Second
)

// newTransport is net/http's Transport tuned for one upstream API at a high
// rate: HTTP/1.1 with keep-alive (as nginx's proxy_pass), up to maxIdle
// idle connections (Go's default keeps two), 64 KiB buffers (an image
// upload is tens of kilobytes: 4 KiB buffers write one in a dozen
// syscalls), no transparent compression (the client's own Accept-Encoding
// goes through, and the answer's bytes reach it unchanged), bounded
// response headers, and headerTimeout for the answer's headers to come.
// Requests are never retried by the proxy; the Transport itself retries
// only an idempotent request whose reused connection turned out closed.
func newTransport(tlsConf *tls.Config, maxIdle int, headerTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return bodyConn{c}, nil
		},
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    dialTimeout,
		MaxIdleConnsPerHost:    maxIdle,
		IdleConnTimeout:        idleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		ResponseHeaderTimeout:  headerTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		DisableCompression:     true,
		WriteBufferSize:        upstreamBufferBytes,
		ReadBufferSize:         upstreamBufferBytes,
	}
}

// bodyConn writes an in-memory request body in one write. net/http's
// Transport copies a body past its write buffer with io.Copy through an
// io.LimitedReader, which the connection's ReadFrom would move in 32 KiB
// chunks (a 1 MB image: some thirty writes and a fresh 32 KiB buffer);
// the bytes are all in memory (bufpool.Loan), so one write does.
type bodyConn struct{ net.Conn }

func (c bodyConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if br, ok := lr.R.(interface {
			Len() int
			io.WriterTo
		}); ok && int64(br.Len()) <= lr.N {
			n, err := br.WriteTo(c.Conn)
			lr.N -= n
			return n, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// upstreamTLS trusts the system roots plus caFile's certificates.
func upstreamTLS(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("proxy.upstream_ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("proxy.upstream_ca_file %s has no PEM certificate", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// upstream is the primary API as the proxy calls it: one tuned Transport
// of its own (a hung candidate cannot take its connections), and the
// primary provider's timeout on every call, from connection to last byte.
type upstream struct {
	url     *url.URL
	tr      *http.Transport
	timeout time.Duration
}

// call is one upstream round trip in progress: its answer (or error), the
// phases of the exchange, and the context that bounds reading the body.
type call struct {
	resp   *http.Response
	err    error
	start  time.Time
	trace  *record.Trace
	cancel context.CancelFunc // ends the call's timeout; run once the body is read or dropped
}

// roundTrip sends out to the primary within the primary's timeout. out's
// context is the client's: a client that goes away ends the call.
func (u *upstream) roundTrip(out *http.Request, loan *bufpool.Loan) *call {
	ctx, cancel := context.WithTimeout(out.Context(), u.timeout)
	start := time.Now()
	tracer := record.NewTracer(start)
	tracer.Max1xx, tracer.Loan = max1xx, loan
	if _, ok := out.Header["User-Agent"]; !ok {
		// Transparent: net/http would add its own User-Agent.
		out.Header["User-Agent"] = []string{""}
	}
	resp, err := u.tr.RoundTrip(out.WithContext(tracer.Context(ctx)))
	loan.RoundTripped(err)
	c := &call{resp: resp, err: err, start: start, trace: tracer.Finish(), cancel: cancel}
	if err != nil {
		cancel()
	}
	return c
}

// failure turns a failed call into the client's answer and its typed
// error: 504 past the primary's timeout, 502 otherwise, with a plain-text
// reason (scrubbed by the caller).
func (u *upstream) failure(err error) (status int, e *vision.Error, reason string) {
	e = vision.TransportError(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Code = vision.CodeTimeout
		return http.StatusGatewayTimeout, e, fmt.Sprintf("the primary did not answer within its timeout (%s)", u.timeout)
	case strings.Contains(err.Error(), "server response headers exceeded"):
		e.Code = vision.CodeInvalidResponse
		return http.StatusBadGateway, e, fmt.Sprintf("the primary's response headers passed the %d-byte limit", maxResponseHeaderBytes)
	case errors.Is(err, record.Err1xx):
		e.Code = vision.CodeInvalidResponse
		return http.StatusBadGateway, e, "the primary sent too many 1xx informational responses"
	}
	return http.StatusBadGateway, e, "the primary did not answer: " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
