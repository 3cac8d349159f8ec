package record

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"
	"sync"
	"time"
)

// A Tracer splits one HTTP request into the phases a Trace records, from
// net/http's httptrace hooks. net/http dials in its own goroutine, and a
// dial a request began may finish after the request went out on another
// connection (or after it was answered): the phases are written under a
// lock, and those that arrive after Finish are dropped.
type Tracer struct {
	mu                  sync.Mutex
	tr                  Trace
	done                bool
	send                time.Time
	connStart, tlsStart time.Time
}

// NewTracer starts a trace of a request sent at send (time to first byte
// is measured from it).
func NewTracer(send time.Time) *Tracer { return &Tracer{send: send} }

func (t *Tracer) phase(f func()) {
	t.mu.Lock()
	if !t.done {
		f()
	}
	t.mu.Unlock()
}

// Context returns ctx with the tracer's hooks attached.
func (t *Tracer) Context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:      func(i httptrace.GotConnInfo) { t.phase(func() { t.tr.Reused = i.Reused }) },
		ConnectStart: func(string, string) { t.phase(func() { t.connStart = time.Now() }) },
		ConnectDone: func(string, string, error) {
			t.phase(func() { t.tr.ConnectNS = time.Since(t.connStart).Nanoseconds() })
		},
		TLSHandshakeStart: func() { t.phase(func() { t.tlsStart = time.Now() }) },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			t.phase(func() { t.tr.TLSNS = time.Since(t.tlsStart).Nanoseconds() })
		},
		GotFirstResponseByte: func() { t.phase(func() { t.tr.TTFBNS = time.Since(t.send).Nanoseconds() }) },
	})
}

// Finish ends the trace and returns it; later hooks are ignored. A reused
// connection's connect and TLS phases belong to a dial another request
// used, and are cleared.
func (t *Tracer) Finish() *Trace {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	tr := t.tr
	if tr.Reused {
		tr.ConnectNS, tr.TLSNS = 0, 0
	}
	return &tr
}
