package record

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/bufpool"
)

// A Tracer splits one HTTP request into the phases a Trace records, from
// net/http's httptrace hooks. net/http dials in its own goroutine, and a
// dial a request began may finish after the request went out on another
// connection (or after it was answered): the phases are written under a
// lock, and those that arrive after Finish are dropped.
type Tracer struct {
	// Max1xx, when positive, ends a call (Err1xx) after that many
	// informational responses.
	Max1xx int
	// Loan, when set, is told when the request's body is written.
	Loan *bufpool.Loan

	mu                  sync.Mutex
	tr                  Trace
	done                bool
	send                time.Time
	connStart, tlsStart time.Time
}

// NewTracer starts a trace of a request sent at send (time to first byte
// is measured from it).
func NewTracer(send time.Time) *Tracer { return &Tracer{send: send} }

// Start sets the send time of a tracer made before it was known.
func (t *Tracer) Start(send time.Time) {
	t.mu.Lock()
	t.send = send
	t.mu.Unlock()
}

func (t *Tracer) phase(f func()) {
	t.mu.Lock()
	if !t.done {
		f()
	}
	t.mu.Unlock()
}

// Err1xx ends a call whose server sends more than Max1xx informational
// responses.
var Err1xx = errors.New("too many 1xx informational responses")

// Context returns ctx with the tracer's hooks attached: the request's one
// trace (a second composed onto it would cost reflection on every call).
// A request built in the returned context with a lent body
// (bufpool.NewRequest) has its loan served by it too.
func (t *Tracer) Context(ctx context.Context) context.Context {
	ctx, slot := bufpool.WithLoanSlot(ctx)
	ct := &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			t.Loan.Wrote()
			slot.Wrote()
		},
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
	}
	if t.Max1xx > 0 {
		// Without this hook net/http reads 1xx responses until their
		// headers together pass the header limit (twenty thousand small
		// ones for 1 MiB).
		var n int
		ct.Got1xxResponse = func(int, textproto.MIMEHeader) error {
			if n++; n > t.Max1xx {
				return Err1xx
			}
			return nil
		}
	}
	return httptrace.WithClientTrace(ctx, ct)
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
