package bufpool

import (
	"context"
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
// from RequestBodies lent to the request (see Loan): it goes back to the
// pool once the Transport has written the request. Call ReleaseRequest
// with the round trip's error when it has returned. The request has no
// GetBody: it is sent once, never replayed by a redirect or a retry.
func NewRequest(ctx context.Context, method, url string, buf *[]byte) (*http.Request, error) {
	body, loan := Lend(*buf, func() { RequestBodies.Put(buf) }, func() { RequestBodies.Forget(buf) })
	hr, err := http.NewRequestWithContext(context.WithValue(hookLoan(ctx, loan), loanKey{}, loan), method, url, body)
	if err != nil {
		RequestBodies.Put(buf)
		return nil, err
	}
	hr.ContentLength = int64(len(*buf))
	return hr, nil
}

type loanKey struct{}

// ReleaseRequest tells a request from NewRequest that its round trip
// returned err (nil, or the request was never sent: then it is released
// when written, or left to the garbage collector). Calling it on another
// request, or twice, does nothing.
func ReleaseRequest(hr *http.Request, err error) {
	if hr == nil {
		return
	}
	if l, ok := hr.Context().Value(loanKey{}).(*Loan); ok {
		l.RoundTripped(err)
	}
}

// DiscardRequest releases the body buffer of a request from NewRequest
// that will not be sent (its body may have been read by the caller).
func DiscardRequest(hr *http.Request) {
	if hr == nil {
		return
	}
	if l, ok := hr.Context().Value(loanKey{}).(*Loan); ok {
		l.Unsent()
	}
}
