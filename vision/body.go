package vision

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

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

// pooledBody is a request body in a pooled buffer, shared by the request
// (until ReleaseRequest) and by every reader the transport takes (until
// it closes them; a retry's GetBody takes another): the last to let go
// returns the buffer.
type pooledBody struct {
	buf  *[]byte
	refs atomic.Int32
	base sync.Once
}

func (b *pooledBody) release() {
	if b.refs.Add(-1) == 0 {
		requestBodies.Put(b.buf)
	}
}

func (b *pooledBody) reader() *pooledReader {
	b.refs.Add(1)
	r := &pooledReader{b: b}
	r.Reset(*b.buf)
	return r
}

type pooledReader struct {
	bytes.Reader
	b    *pooledBody
	once sync.Once
}

func (r *pooledReader) Close() error {
	r.once.Do(r.b.release)
	return nil
}

// NewPooledRequest is http.NewRequestWithContext for a body in buf, from
// BodyBuffer, which the request then owns. Call ReleaseRequest once the
// round trip has returned; a request never released leaves its buffer to
// the garbage collector, which is safe.
func NewPooledRequest(ctx context.Context, method, url string, buf *[]byte) (*http.Request, error) {
	b := &pooledBody{buf: buf}
	b.refs.Store(1) // the request's own reference, for ReleaseRequest
	hr, err := http.NewRequestWithContext(ctx, method, url, b.reader())
	if err != nil {
		requestBodies.Put(buf)
		return nil, err
	}
	hr.ContentLength = int64(len(*buf))
	hr.GetBody = func() (io.ReadCloser, error) { return b.reader(), nil }
	return hr, nil
}

// ReleaseRequest lets go of the body buffer of a request from
// NewPooledRequest once its round trip has returned: the buffer goes back
// when the transport has closed every body it took too. Other requests
// are left alone; calling it twice is harmless.
func ReleaseRequest(hr *http.Request) {
	if hr == nil {
		return
	}
	if r, ok := hr.Body.(*pooledReader); ok {
		r.b.base.Do(r.b.release)
	}
}
