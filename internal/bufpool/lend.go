package bufpool

import (
	"bytes"
	"context"
	"io"
	"net/http/httptrace"
	"sync/atomic"
)

// A Loan lends bytes to net/http as a request body. Up to 60 KiB it is a
// body net/http knows to be in memory (io.NopCloser over a *bytes.Reader):
// the Transport then writes the request's headers and its body in one
// write, where a body it cannot see into has its headers flushed on their
// own first (two writes, the upstream woken twice for every request).
//
// The lender learns when the Transport is done with the bytes from
// httptrace's WroteRequest hook, which net/http calls after every write
// of a request, failed or not (Wrote): the bytes are then released. A
// request whose round trip failed before any write began may still be
// written late (a connection handed the request as it was cancelled), so
// such a loan is forgotten instead (RoundTripped): its bytes are never
// reused, and left to the garbage collector.
//
// A request should carry one httptrace.ClientTrace: composing a second
// onto a context that has one costs reflection on every request. So the
// hook is wired by whoever builds the request's trace (a LoanSlot, or
// Wrote called from the caller's own trace).
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

// inMemoryMax is the largest body lent as in memory. A larger one goes
// out after its headers, on its own: sent with the headers, the first
// 64 KiB of a 1 MB body doubled the proxy's client p99 (measured side by
// side with make bench-proxy's hung-candidate row).
const inMemoryMax = 60 << 10

// largeBody is a body net/http does not know to be in memory (its
// headers are flushed first), whose bytes a connection can still write
// in one write (Len and WriteTo: see the proxy's bodyConn). It closes
// itself rather than through io.NopCloser: the Transport unwraps one
// layer (its own rewind wrapper) before it limits the body to its
// length, so a NopCloser inside would hide Len and the connection would
// copy the body through a fresh 32 KiB buffer, a write per 32 KiB.
type largeBody struct{ *bytes.Reader }

func (largeBody) Close() error { return nil }

// Lend returns a body over b and its loan. release runs once the
// Transport has written the request (Wrote) or when the request is not
// sent (Unsent); forget when the round trip failed before the write began
// (RoundTripped).
func Lend(b []byte, release, forget func()) (io.ReadCloser, *Loan) {
	l := &Loan{release: release, forget: forget}
	if len(b) > inMemoryMax {
		return largeBody{bytes.NewReader(b)}, l
	}
	return io.NopCloser(bytes.NewReader(b)), l
}

// Wrote is the request's WroteRequest hook: the Transport is done with
// the bytes.
func (l *Loan) Wrote() {
	if l != nil && l.state.CompareAndSwap(loanOut, loanReturned) {
		l.release()
	}
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

// A LoanSlot lets a trace built before its request (record.Tracer) serve
// the loan of the request built afterwards in its context (NewRequest).
type LoanSlot struct{ l atomic.Pointer[Loan] }

type slotKey struct{}

// WithLoanSlot returns ctx with a slot for the loan of a request built in
// it; the caller's trace calls slot.Wrote from its WroteRequest hook.
func WithLoanSlot(ctx context.Context) (context.Context, *LoanSlot) {
	s := &LoanSlot{}
	return context.WithValue(ctx, slotKey{}, s), s
}

// Wrote passes WroteRequest on to the slot's loan, if any.
func (s *LoanSlot) Wrote() { s.l.Load().Wrote() }

// hookLoan wires a loan to ctx's slot, or installs a trace of its own.
func hookLoan(ctx context.Context, l *Loan) context.Context {
	if s, ok := ctx.Value(slotKey{}).(*LoanSlot); ok {
		s.l.Store(l)
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { l.Wrote() }})
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
