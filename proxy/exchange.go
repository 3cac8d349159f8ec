package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/vision"
)

// Request bodies are read into pooled buffers (internal/bufpool): a fresh
// buffer for every body costs more than the copy into it, because on a VM
// each new page of a large allocation is a page fault; at 200 requests/s
// of 1 MB bodies the faults alone kept a core busy until requests queued
// for seconds. A reused buffer is already resident.
//
// A buffer goes back to the pool only when its last holder lets go: the
// request path, the transport's body readers, and whatever reads the body
// or its decoded image after the request path has moved on (an exchange is
// a bufpool.Shared).

// bodies holds the request body buffers.
var bodies bufpool.Pool

// exchange is a classification call as the mirror, the canary path and
// the recorder see it: the immutable body bytes, a copy of the headers and
// URL, decoded at most once and never on the request path unless the
// canary needs it there. Whoever reads body or calls decode after the
// request path has returned holds it (hold, Release) for as long as it
// does.
type exchange struct {
	body []byte
	buf  *[]byte
	bufpool.Shared
	hdr  http.Header
	url  url.URL
	once sync.Once
	req  vision.Request // never changed after once: copies are read concurrently
	err  error

	hashOnce sync.Once
	sha      string // the image's SHA-256 when req was decoded without it

	// client is the authenticated caller's name ("" when clients are not
	// authenticated), recorded on every observation of the exchange.
	client string

	// loan is the body lent to the primary's request (lendBody); lost is
	// set when that request failed before its write began and so may
	// still be written late: the buffer is then never reused.
	loan *bufpool.Loan
	lost atomic.Bool
}

// newExchange returns body's exchange, held once by the request path
// (Drop).
func newExchange(body []byte, buf *[]byte, u url.URL) *exchange {
	ex := &exchange{body: body, buf: buf, url: u}
	ex.Init(ex.free)
	return ex
}

// hold takes a reference for a holder that reads the body or the decoded
// image after the request path has moved on; it lets go with Release.
func (ex *exchange) hold() *exchange {
	ex.Hold()
	return ex
}

// free returns the body's buffer and the decoded image's to their pools.
func (ex *exchange) free() {
	switch {
	case ex.buf == nil:
	case ex.lost.Load():
		bodies.Forget(ex.buf)
	default:
		bodies.Put(ex.buf)
	}
	ex.req.Image.Lease.Release() // a decoded image's pooled buffer
}

// newBodyReader is a forwarded request's body: the pooled bytes (followed
// by the rest of the client's stream when the body was over the mirror's
// limit), holding the buffer until the transport closes it (RoundTrip
// always closes a request body, possibly after it returns).
func (ex *exchange) newBodyReader(rest io.Reader) io.ReadCloser {
	var r io.Reader = bytes.NewReader(ex.body)
	if rest != nil {
		r = io.MultiReader(r, rest)
	}
	return ex.Reader(r)
}

// lendBody gives out the exchange's bytes as a body net/http knows to be
// in memory, so that the request's headers and the start of its body go
// out in one write (bufpool.Loan); the exchange is held until the
// Transport has written it: the upstream's trace calls ex.loan.Wrote, and
// its round trip ex.loan.RoundTripped; unsent releases it when out is not
// sent.
func (ex *exchange) lendBody(out *http.Request) {
	ex.hold()
	out.Body, ex.loan = bufpool.Lend(ex.body, ex.Release, func() { ex.lost.Store(true); ex.Release() })
	out.ContentLength = int64(len(ex.body))
}

// unsent lets go of the body of a primary request that will not be sent.
func (ex *exchange) unsent(out *http.Request) {
	if ex.loan != nil {
		ex.loan.Unsent()
	} else if out.Body != nil {
		out.Body.Close()
	}
}

// decode returns the request decoded, its image hashed.
func (ex *exchange) decode(codec vision.ServerCodec) (vision.Request, error) {
	req, err := ex.decodeUnhashed(codec)
	if err != nil || req.Image.SHA256 != "" {
		return req, err
	}
	ex.hashOnce.Do(func() {
		im := req.Image
		vision.HashImage(&im)
		ex.sha = im.SHA256
	})
	req.Image.SHA256 = ex.sha
	return req, nil
}

// decodeUnhashed is decode for the request path: the image's SHA-256 may
// be left out (vision.UnhashedDecoder), for decode to add off the path.
func (ex *exchange) decodeUnhashed(codec vision.ServerCodec) (vision.Request, error) {
	ex.once.Do(func() {
		if ex.hdr == nil {
			ex.err = errors.New("request not kept")
			return
		}
		hr := &http.Request{Method: http.MethodPost, URL: &ex.url, Header: ex.hdr}
		if u, ok := codec.(vision.UnhashedDecoder); ok {
			ex.req, ex.err = u.DecodeRequestUnhashed(hr, ex.body)
		} else {
			ex.req, ex.err = codec.DecodeRequest(hr, ex.body)
		}
		if overlaps(ex.req.Image.Bytes, ex.body) {
			// A binary upload: the image is the body, whose buffer is reused.
			ex.req.Image.Bytes = bytes.Clone(ex.req.Image.Bytes)
		}
	})
	return ex.req, ex.err
}

// overlaps reports whether a and b share memory: a decoded image may be
// the body itself (a binary upload), and must then be copied before the
// body's buffer is reused.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}
