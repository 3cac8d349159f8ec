package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// candidate is the candidate API as the proxy calls it: its own client in
// its own wire format, with its own credentials (never the client's or the
// primary's), its own connection pool and its rate cap.
type candidate struct {
	name   string
	client *vision.Client
	tr     *http.Transport
	limit  *rate.Limiter // max_rps; nil: none
	// cpu are the mirror's CPU slots (GOMAXPROCS−1, at least one): encoding
	// a request and decoding an answer for a shadow copy take a slot, so
	// mirror work never occupies every core while client requests wait.
	cpu chan struct{}
}

// outcome is one candidate call: when it was handed to the network, how
// long it took, and its answer or typed error.
type outcome struct {
	start time.Time
	lat   time.Duration
	trace *record.Trace
	res   vision.Result
	err   error
}

// call sends req to the candidate. shadow calls take a CPU slot for their
// CPU-bound phases; a call that answers a client (canary) does not queue
// behind shadow work.
func (c *candidate) call(ctx context.Context, req vision.Request, shadow bool) outcome {
	acquire, release := func() {}, func() {}
	if shadow {
		acquire, release = func() { c.cpu <- struct{}{} }, func() { <-c.cpu }
	}
	// The tracer is the request's one trace; it serves the loan of the
	// body the codec builds (bufpool.NewRequest) too.
	tracer := record.NewTracer(time.Time{})
	acquire()
	hreq, err := c.client.Codec.NewRequest(tracer.Context(ctx), req)
	release()
	start := time.Now()
	if err != nil {
		return outcome{start: start, err: err}
	}
	tracer.Start(start)
	resp, err := c.tr.RoundTrip(hreq)
	bufpool.ReleaseRequest(hreq, err)
	if err != nil {
		return outcome{start: start, lat: time.Since(start), trace: tracer.Finish(), err: vision.TransportError(err)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, vision.MaxResponseBytes+1))
	resp.Body.Close()
	o := outcome{start: start, lat: time.Since(start), trace: tracer.Finish()}
	switch {
	case err != nil:
		o.err = vision.TransportError(err)
	case len(body) > vision.MaxResponseBytes:
		o.err = &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("response larger than %d bytes", vision.MaxResponseBytes)}
	default:
		acquire()
		o.res, o.err = c.client.Codec.DecodeResponse(resp, body)
		release()
		if o.err == nil {
			o.res = o.res.Filter(req.MinConfidence, req.MaxLabels)
		}
	}
	return o
}
