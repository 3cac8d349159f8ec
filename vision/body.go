package vision

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/cutover/cutover/internal/bufpool"
)

// requestBodies holds the buffers that encoded request bodies are built
// in: a 100 KB image's body was half of what a canary proxy allocated,
// and on its request path, where the allocation also paid the garbage
// collector's assists.
var requestBodies bufpool.Pool

// RequestBodies is the pool behind NewPooledRequest, for tests.
func RequestBodies() *bufpool.Pool { return &requestBodies }

// BodyBuffer returns an empty buffer from the request-body pool with room
// for n bytes, for a body that NewPooledRequest then sends.
func BodyBuffer(n int) *[]byte { return requestBodies.Get(n) }

// PutBodyBuffer returns a buffer from BodyBuffer that no request took.
func PutBodyBuffer(buf *[]byte) { requestBodies.Put(buf) }

// NewPooledRequest is http.NewRequestWithContext for a body in buf, from
// BodyBuffer, which the request then owns. Call ReleaseRequest once the
// round trip has returned; a request never released leaves its buffer to
// the garbage collector, which is safe.
func NewPooledRequest(ctx context.Context, method, url string, buf *[]byte) (*http.Request, error) {
	// Held by the request (until ReleaseRequest) and by every reader the
	// transport takes (until it closes it; a retry's GetBody takes
	// another): the last to let go returns the buffer.
	b := &bufpool.Shared{}
	b.Init(func() { requestBodies.Put(buf) })
	hr, err := http.NewRequestWithContext(ctx, method, url, b.Reader(bytes.NewReader(*buf)))
	if err != nil {
		requestBodies.Put(buf)
		return nil, err
	}
	hr.ContentLength = int64(len(*buf))
	hr.GetBody = func() (io.ReadCloser, error) { return b.Reader(bytes.NewReader(*buf)), nil }
	return hr, nil
}

// ReleaseRequest lets go of the body buffer of a request from
// NewPooledRequest once its round trip has returned: the buffer goes back
// when the transport has closed every body it took too. Only a body from
// bufpool.Shared is touched (its creator's hold is dropped, at most once);
// calling it twice is harmless.
func ReleaseRequest(hr *http.Request) {
	if hr == nil {
		return
	}
	if r, ok := hr.Body.(*bufpool.Reader); ok {
		r.Shared().Drop()
	}
}
