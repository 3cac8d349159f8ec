package bufpool

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"

	fastb64 "github.com/segmentio/asm/base64"
)

// Images holds the buffers that images decoded from base64 request bodies
// live in (DecodeBase64); RequestBodies those that encoded request bodies
// are built in (NewRequest). A 100 KB image's body was half of what a
// canary proxy allocated, on its request path.
var Images, RequestBodies Pool

// A Lease is one buffer taken from a pool, handed back by Release. Copies
// of a value holding a *Lease share it: whichever releases first returns
// the buffer, later calls do nothing. Nothing may read the buffer once it
// is released.
type Lease struct {
	buf  atomic.Pointer[[]byte]
	pool *Pool
}

// NewLease makes a lease on buf, which came from p.
func (p *Pool) NewLease(buf *[]byte) *Lease {
	l := &Lease{pool: p}
	l.buf.Store(buf)
	return l
}

// Release returns the buffer to its pool; a nil lease, or one already
// released, is left alone.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	if b := l.buf.Swap(nil); b != nil {
		l.pool.Put(b)
	}
}

// DecodeBase64 decodes standard base64 (padded, as encoding/json decodes
// []byte) into a buffer from p: a server that decodes thousands of large
// images a second reuses resident memory instead of faulting in fresh
// pages for each. The caller owns the buffer (Put, or a Lease).
func (p *Pool) DecodeBase64(src []byte) (*[]byte, error) {
	n := fastb64.StdEncoding.DecodedLen(len(src))
	buf := p.Get(n)
	m, err := fastb64.StdEncoding.Decode((*buf)[:n], src)
	if err != nil {
		p.Put(buf)
		return nil, err
	}
	*buf = (*buf)[:m]
	return buf, nil
}

// NewRequest is http.NewRequestWithContext for a body in buf, a buffer
// from RequestBodies that the request then owns. Call ReleaseRequest once
// the round trip has returned; a request never released leaves its buffer
// to the garbage collector, which is safe.
func NewRequest(ctx context.Context, method, url string, buf *[]byte) (*http.Request, error) {
	// Held by the request (until ReleaseRequest) and by every reader the
	// transport takes (until it closes it; a retry's GetBody takes
	// another): the last to let go returns the buffer.
	b := &Shared{}
	b.Init(func() { RequestBodies.Put(buf) })
	hr, err := http.NewRequestWithContext(ctx, method, url, b.Reader(bytes.NewReader(*buf)))
	if err != nil {
		RequestBodies.Put(buf)
		return nil, err
	}
	hr.ContentLength = int64(len(*buf))
	hr.GetBody = func() (io.ReadCloser, error) { return b.Reader(bytes.NewReader(*buf)), nil }
	return hr, nil
}

// ReleaseRequest lets go of the body buffer of a request from NewRequest
// once its round trip has returned: the buffer goes back when the
// transport has closed every body it took too. Only a body from Shared is
// touched (its creator's hold is dropped, at most once); calling it twice
// is harmless.
func ReleaseRequest(hr *http.Request) {
	if hr == nil {
		return
	}
	if r, ok := hr.Body.(*Reader); ok {
		r.Shared().Drop()
	}
}
