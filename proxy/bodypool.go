package proxy

import (
	"bytes"
	"io"
	"sync"
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
// A buffer goes back to the pool only when its last holder lets go (see
// reqInfo.hold and release). A holder that forgets leaves the buffer to
// the garbage collector, which is safe; a release too early would hand
// bytes still being forwarded to another request, so every path that
// reads the body holds a reference for as long as it does.

// bodies holds the request body buffers.
var bodies bufpool.Pool

// hold takes a reference to the request's body buffer, and to its decoded
// image's, for a holder that reads either after the request path has
// moved on; release lets go, and the last one returns both to their pools.
func (ri *reqInfo) hold() *reqInfo {
	ri.refs.Add(1)
	return ri
}

func (ri *reqInfo) release() {
	if ri.refs.Add(-1) != 0 {
		return
	}
	if ri.buf != nil {
		bodies.Put(ri.buf)
	}
	vision.ReleaseImage(&ri.req.Image) // a decoded image's pooled buffer
}

// bodyReader is a forwarded request's body: the pooled bytes (followed
// by the rest of the client's stream when the body was over the mirror's
// limit), with the reference released when the transport closes it
// (RoundTrip always closes a request body, possibly after it returns).
type bodyReader struct {
	io.Reader
	ri   *reqInfo
	once sync.Once
}

func (ri *reqInfo) newBodyReader(rest io.Reader) io.ReadCloser {
	var r io.Reader = bytes.NewReader(ri.body)
	if rest != nil {
		r = io.MultiReader(r, rest)
	}
	return &bodyReader{Reader: r, ri: ri.hold()}
}

func (b *bodyReader) Close() error {
	b.once.Do(b.ri.release)
	return nil
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
