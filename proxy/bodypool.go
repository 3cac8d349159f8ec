package proxy

import (
	"bytes"
	"io"
	"net/url"
	"unsafe"

	"github.com/cutover/cutover/internal/bufpool"
)

// Request bodies are read into pooled buffers (internal/bufpool): a fresh
// buffer for every body costs more than the copy into it, because on a VM
// each new page of a large allocation is a page fault; at 200 requests/s
// of 1 MB bodies the faults alone kept a core busy until requests queued
// for seconds. A reused buffer is already resident.
//
// A buffer goes back to the pool only when its last holder lets go: the
// request path, the transport's body readers, and whatever reads the body
// or its decoded image after the request path has moved on (reqInfo is a
// bufpool.Shared).

// bodies holds the request body buffers.
var bodies bufpool.Pool

// newReqInfo returns body's reqInfo, held once by the request path
// (Drop).
func newReqInfo(body []byte, buf *[]byte, u url.URL) *reqInfo {
	ri := &reqInfo{body: body, buf: buf, url: u}
	ri.Init(ri.free)
	return ri
}

// hold takes a reference for a holder that reads the body or the decoded
// image after the request path has moved on; it lets go with Release.
func (ri *reqInfo) hold() *reqInfo {
	ri.Hold()
	return ri
}

// free returns the body's buffer and the decoded image's to their pools.
func (ri *reqInfo) free() {
	if ri.buf != nil {
		bodies.Put(ri.buf)
	}
	ri.req.Image.Lease.Release() // a decoded image's pooled buffer
}

// newBodyReader is a forwarded request's body: the pooled bytes (followed
// by the rest of the client's stream when the body was over the mirror's
// limit), holding the buffer until the transport closes it (RoundTrip
// always closes a request body, possibly after it returns).
func (ri *reqInfo) newBodyReader(rest io.Reader) io.ReadCloser {
	var r io.Reader = bytes.NewReader(ri.body)
	if rest != nil {
		r = io.MultiReader(r, rest)
	}
	return ri.Reader(r)
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
