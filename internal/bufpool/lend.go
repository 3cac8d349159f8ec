package bufpool

import (
	"bytes"
	"context"
	"io"
	"net/http/httptrace"
	"sync/atomic"
)

// A Loan lends bytes to net/http as a request body it knows to be in
// memory (io.NopCloser over a *bytes.Reader). net/http's Transport then
// writes the request's headers and the start of its body in one write;
// a body it cannot see into has its headers flushed on their own first:
// two writes, and the upstream woken twice for every request.
//
// The lender learns when the Transport is done with the bytes from
// httptrace's WroteRequest hook, which net/http calls after every write
// of a request, failed or not: the bytes are then released. A request
// whose round trip failed before any write began may still be written
// late (a connection handed the request as it was cancelled), so such a
// loan is forgotten instead: its bytes are never reused, and left to the
// garbage collector.
type Loan struct {
	state   atomic.Int32 // loanOut, loanReturned, loanForgotten
	release func()
	forget  func()
}

const (
	loanOut int32 = iota
	loanReturned
	loanForgotten
)

// Lend returns a body over b, the context to send its request with, and
// the loan. release runs once the Transport has written the request (or
// when the request is not sent: Unsent); forget when the round trip
// failed before the write began (RoundTripped).
func Lend(ctx context.Context, b []byte, release, forget func()) (context.Context, io.ReadCloser, *Loan) {
	l := &Loan{release: release, forget: forget}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		if l.state.CompareAndSwap(loanOut, loanReturned) {
			l.release()
		}
	}})
	return ctx, io.NopCloser(bytes.NewReader(b)), l
}

// RoundTripped tells the loan its round trip returned err: a failure
// before the write began forgets the bytes (see Loan).
func (l *Loan) RoundTripped(err error) {
	if l != nil && err != nil && l.state.CompareAndSwap(loanOut, loanForgotten) {
		l.forget()
	}
}

// Unsent releases the bytes of a request that was never given to a
// Transport.
func (l *Loan) Unsent() {
	if l != nil && l.state.CompareAndSwap(loanOut, loanReturned) {
		l.release()
	}
}

// Forget drops a buffer from Get that may still be read: it is not
// reused (the garbage collector takes it), and no longer counts as live.
func (p *Pool) Forget(b *[]byte) {
	c := cap(*b)
	if c < 1<<minClass || c > 1<<maxClass || c&(c-1) != 0 {
		return
	}
	p.live.Add(-1)
}
