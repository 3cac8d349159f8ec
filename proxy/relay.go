package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/vision"
)

// lifecycle tracks the work in flight, for an orderly shutdown: client
// requests until their answer is sent, answers being recorded off the
// request path, and calls off the path (mirrors, compare copies).
type lifecycle struct {
	requests   sync.WaitGroup
	recordings sync.WaitGroup
	mirrors    sync.WaitGroup
	stopping   atomic.Bool
	// mirrorCtx bounds calls off the request path; cancelled when the
	// shutdown timeout passes with mirrors still out.
	mirrorCtx   context.Context
	stopMirrors context.CancelFunc
}

func newLifecycle() *lifecycle {
	l := &lifecycle{}
	l.mirrorCtx, l.stopMirrors = context.WithCancel(context.Background())
	return l
}

// record runs f off the request path; shutdown waits for it.
func (l *lifecycle) record(f func()) {
	l.recordings.Add(1)
	go func() {
		defer l.recordings.Done()
		f()
	}()
}

// relay forwards a client's request to the primary and passes its answer
// through unchanged, recording classification calls once the client has
// read the answer.
type relay struct {
	up    *upstream
	obs   *observer
	met   *metrics
	life  *lifecycle
	scrub *secret.Scrubber
}

// forward sends out to the primary and returns its answer for the client.
// It ends the client request that the front end began.
func (r *relay) forward(req, out *http.Request, pairID string, classify bool, ex *exchange, m meta) *http.Response {
	c := r.up.roundTrip(out, ex.loan)
	if c.err != nil {
		return r.failed(req, c, pairID, classify, ex, m)
	}
	return r.tap(c, pairID, classify, ex, m)
}

// failed answers the client for a call that got no answer: 504 past the
// primary's timeout, 502 otherwise, with a plain-text reason; recorded
// with its typed code and counted.
func (r *relay) failed(req *http.Request, c *call, pairID string, classify bool, ex *exchange, m meta) *http.Response {
	status, e, reason := r.up.failure(c.err)
	r.met.upstreamFailures.WithLabelValues(string(e.Code)).Inc()
	if classify {
		r.obs.primary(pairID, ex, primaryAnswer{start: c.start, lat: time.Since(c.start), trace: c.trace, status: status, err: e}, m)
	}
	r.life.requests.Done()
	return goproxy.NewResponse(req, goproxy.ContentTypeText, status, "cutover proxy: "+r.scrub.String(reason)+"\n")
}

// tap passes the primary's answer through, recording it once read.
func (r *relay) tap(c *call, pairID string, classify bool, ex *exchange, m meta) *http.Response {
	resp := c.resp
	removeHop(resp.Header)
	tb := &tapBody{rc: resp.Body, limit: vision.MaxResponseBytes, capture: classify}
	if classify {
		ex.hold() // the recording decodes the request once the answer is in
	}
	tb.onDone = func(captured []byte, complete bool) {
		lat := time.Since(c.start)
		c.cancel()
		if classify {
			r.life.record(func() {
				defer ex.Release()
				r.obs.primary(pairID, ex, primaryAnswer{start: c.start, lat: lat, trace: c.trace, status: resp.StatusCode,
					header: resp.Header, body: captured}, m)
			})
		}
		r.life.requests.Done()
	}
	resp.Body = tb
	return resp
}

// tapBody passes the primary's answer through to the client unchanged,
// keeping a copy (up to limit) to decode and record once it is complete.
type tapBody struct {
	rc      io.ReadCloser
	buf     bytes.Buffer
	limit   int
	capture bool
	over    bool
	once    sync.Once
	onDone  func(captured []byte, complete bool)
}

func (t *tapBody) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	if n > 0 && t.capture && !t.over {
		if t.buf.Len()+n > t.limit {
			t.over = true
			t.buf = bytes.Buffer{}
		} else {
			t.buf.Write(b[:n])
		}
	}
	if err == io.EOF {
		t.finish(true)
	}
	return n, err
}

// WriteTo copies the answer to w with plain writes, which io.Copy (what
// goproxy sends it to the client with) prefers. Otherwise io.Copy hands
// the copy to the client connection's ReadFrom, which writes the headers
// and the first 512 bytes in one syscall and the rest in another: an
// answer that fits the server's buffers now goes out in one write.
func (t *tapBody) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// Wrapped so that io.CopyBuffer uses neither t.WriteTo nor w's ReadFrom.
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{t}, *bp)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (t *tapBody) Close() error {
	err := t.rc.Close()
	t.finish(false)
	return err
}

func (t *tapBody) finish(complete bool) {
	t.once.Do(func() {
		var b []byte
		if !t.over && complete {
			b = t.buf.Bytes()
		}
		t.onDone(b, complete)
	})
}

// respond turns an answer the proxy wrote itself (a translated candidate
// answer, an error in the primary's format) into the client's response,
// ending the client request when its body has been read.
func (r *relay) respond(req *http.Request, rec *httptest.ResponseRecorder) *http.Response {
	resp := rec.Result()
	body := rec.Body.Bytes()
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Request = req
	resp.Body = &doneBody{Reader: bytes.NewReader(body), done: r.life.requests.Done}
	return resp
}

// doneBody calls done once, at EOF or Close.
type doneBody struct {
	*bytes.Reader
	done   func()
	called bool
}

func (d *doneBody) Read(b []byte) (int, error) {
	n, err := d.Reader.Read(b)
	if err == io.EOF {
		d.finish()
	}
	return n, err
}

func (d *doneBody) Close() error { d.finish(); return nil }

func (d *doneBody) finish() {
	if !d.called {
		d.called = true
		d.done()
	}
}
