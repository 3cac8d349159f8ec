package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// candidateAnswers decides whether the candidate answers this
// classification call: canary mode by the controller's share, sticky by
// image hash or per request; cutover mode unless the breaker is open. The
// request is decoded here, on the request path, its image hashed only when
// the hash decides (otherwise the recording hashes it, off the path): a
// request that does not decode goes to the primary as received.
func (p *Proxy) candidateAnswers(ri *reqInfo) (vision.Request, bool) {
	if p.shuttingDown.Load() {
		return vision.Request{}, false
	}
	var pct float64
	if p.cfg.Proxy.Mode == config.ModeCanary {
		if pct = p.ctl.Percent(); pct <= 0 {
			return vision.Request{}, false
		}
	}
	share := p.cfg.Proxy.Mode == config.ModeCanary && pct < 100
	byImage := share && p.cfg.Proxy.Canary.StickyBy == "image"
	if share && !byImage && rand.Float64()*100 >= pct {
		// Drawn per request for the primary: nothing to decode on the
		// request path (the recording decodes it after the answer).
		return vision.Request{}, false
	}
	decode := ri.decodeUnhashed
	if byImage {
		decode = ri.decode
	}
	req, err := decode(p.primaryServer)
	if err != nil {
		return req, false
	}
	if p.cfg.Proxy.Mode == config.ModeCutover {
		return req, p.breaker.allow(time.Now())
	}
	if byImage {
		return req, imageUnit(req.Image.SHA256)*100 < pct
	}
	return req, true
}

// imageUnit maps an image's SHA-256 to [0, 1): the same image always gets
// the same draw, and draws are uniform over images.
func imageUnit(sha string) float64 {
	if len(sha) >= 16 {
		if b, err := hex.DecodeString(sha[:16]); err == nil {
			return float64(binary.BigEndian.Uint64(b)>>11) / (1 << 53)
		}
	}
	return rand.Float64()
}

// candidateOutcome is the candidate's answer on the request path.
type candidateOutcome struct {
	start time.Time
	lat   time.Duration
	res   vision.Result
	err   error
}

// serveByCandidate asks the candidate to answer a client, translating its
// answer into the primary's wire format. A failure whose code is in
// canary.fallback_on, or no answer within canary.candidate_timeout, sends
// the request to the primary instead (the client gets the primary's
// answer); with canary.hedge_after the primary is asked too once that much
// time has passed, and the first good answer wins.
func (p *Proxy) serveByCandidate(r, out *http.Request, ri *reqInfo, req vision.Request, pairID string) *http.Response {
	k := p.cfg.Proxy.Canary
	p.rec.Count(0, 0, 1)
	ctx, cancel := context.WithTimeout(r.Context(), k.CandidateTimeout.D())
	defer cancel()
	creq := req
	creq.LLM = nil // the candidate builds its own prompt
	if k.HedgeAfter <= 0 {
		// Nothing to race: call the candidate from this goroutine (a
		// hand-off to another and back costs two wake-ups on the path).
		start, res, err := p.candidateCall(ctx, creq, nil)
		return p.afterCandidate(r, out, ri, req, pairID, candidateOutcome{start: start, lat: time.Since(start), res: res, err: err}, "canary")
	}
	cc := make(chan candidateOutcome, 1)
	ri.hold() // the candidate's request is built from the decoded image
	go func() {
		defer ri.Release()
		start, res, err := p.candidateCall(ctx, creq, nil)
		cc <- candidateOutcome{start: start, lat: time.Since(start), res: res, err: err}
	}()
	t := time.NewTimer(k.HedgeAfter.D())
	defer t.Stop()
	select {
	case c := <-cc:
		return p.afterCandidate(r, out, ri, req, pairID, c, "canary")
	case <-t.C:
		return p.hedge(r, out, ri, req, pairID, cc, cancel)
	}
}

// afterCandidate serves the candidate's outcome: its translated answer, a
// fallback to the primary, or its error in the primary's format.
func (p *Proxy) afterCandidate(r, out *http.Request, ri *reqInfo, req vision.Request, pairID string, c candidateOutcome, route string) *http.Response {
	if c.err == nil {
		p.judge(c)
		p.met.answered.WithLabelValues("candidate").Inc()
		tags := p.tx.Normalize(p.candidateClient.Codec.Format(), c.res)
		resp := p.translate(r, req, tags)
		p.recordOff(ri, func(req vision.Request) { p.recordCandidate(pairID, req, c, route, true, &tags) })
		if *p.cfg.Proxy.Canary.CompareWithLegacy {
			p.compareWithPrimary(pairID, out, ri)
		}
		closeUnsent(out)
		return resp
	}
	code := string(vision.ErrorCode(c.err))
	fallback := p.fallsBack(code)
	p.recordOff(ri, func(req vision.Request) { p.recordCandidate(pairID, req, c, route, !fallback, nil) })
	p.judge(c)
	if fallback {
		p.met.fallbacks.WithLabelValues(code).Inc()
		p.met.answered.WithLabelValues("primary").Inc()
		return p.forward(r, out, pairID, true, ri, meta{route: "fallback", served: true, pair: true})
	}
	p.met.answered.WithLabelValues("candidate").Inc()
	closeUnsent(out)
	rec := httptest.NewRecorder()
	p.primaryServer.WriteError(rec, c.err)
	return p.respond(r, rec)
}

// closeUnsent closes the body of a primary request that will not be sent,
// releasing its buffer.
func closeUnsent(out *http.Request) {
	if out.Body != nil {
		out.Body.Close()
	}
}

// hedge asks the primary while the candidate is still out: the first good
// answer (a candidate result, a 2xx from the primary) goes to the client,
// the other call is cancelled and recorded as such.
func (p *Proxy) hedge(r, out *http.Request, ri *reqInfo, req vision.Request, pairID string, cc <-chan candidateOutcome, cancelCandidate context.CancelFunc) *http.Response {
	type primaryOutcome struct {
		start time.Time
		resp  *http.Response
		err   error
	}
	lctx, cancelPrimary := context.WithCancel(r.Context())
	pc := make(chan primaryOutcome, 1)
	go func() {
		start := time.Now()
		resp, err := p.transport.RoundTrip(out.WithContext(lctx))
		pc <- primaryOutcome{start, resp, err}
	}()
	var cand *candidateOutcome
	var prim *primaryOutcome
	for {
		select {
		case c := <-cc:
			cand = &c
		case l := <-pc:
			prim = &l
		}
		switch {
		case cand != nil && cand.err == nil:
			// The candidate won: stop the primary, record it as cancelled.
			cancelPrimary()
			ri.hold()
			p.recordings.Add(1) // before the goroutine: Shutdown may be waiting
			go func() {
				defer p.recordings.Done()
				defer ri.Release()
				if prim == nil {
					l := <-pc
					prim = &l
				}
				if prim.resp != nil {
					prim.resp.Body.Close()
				}
				p.recordPrimary(pairID, prim.start, 0, 0, nil, nil, &vision.Error{Code: record.CodeCancelled, Message: "hedge: the candidate answered first"}, ri, meta{route: "hedge"})
			}()
			tags := p.tx.Normalize(p.candidateClient.Codec.Format(), cand.res)
			c := *cand
			p.recordOff(ri, func(req vision.Request) { p.recordCandidate(pairID, req, c, "hedge", true, &tags) })
			p.judge(*cand)
			p.met.answered.WithLabelValues("candidate").Inc()
			return p.translate(r, req, tags)
		case prim != nil && prim.err == nil && prim.resp.StatusCode/100 == 2, prim != nil && cand != nil:
			// The primary won, or both are in and the candidate failed:
			// the client gets the primary's own answer.
			if cand == nil {
				cancelCandidate()
				p.recordOff(ri, func(req vision.Request) { p.recordCandidateCancelled(pairID, req, <-cc) })
			} else {
				c := *cand
				p.recordOff(ri, func(req vision.Request) { p.recordCandidate(pairID, req, c, "hedge", false, nil) })
				p.judge(c)
			}
			p.met.answered.WithLabelValues("primary").Inc()
			if prim.err != nil {
				cancelPrimary()
				e := vision.TransportError(prim.err)
				p.recordPrimary(pairID, prim.start, time.Since(prim.start), http.StatusBadGateway, nil, nil, e, ri, meta{route: "hedge", served: true})
				p.requests.Done()
				return goproxy.NewResponse(r, goproxy.ContentTypeText, http.StatusBadGateway, "cutover proxy: the primary did not answer: "+p.scrub.Replace(prim.err.Error())+"\n")
			}
			resp := p.tapPrimary(prim.resp, prim.start, pairID, true, ri, meta{route: "hedge", served: true, pair: true})
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancelPrimary}
			return resp
		}
		// A bad answer from one side: wait for the other.
	}
}

// cancelOnClose releases the hedged primary call's context once the
// client has its answer.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// fallsBack reports whether a candidate failure with code goes to the primary.
func (p *Proxy) fallsBack(code string) bool {
	f := p.cfg.Proxy.Canary.FallbackOn
	return slices.Contains(f, "all") || slices.Contains(f, code)
}

// judge feeds a candidate answer on the request path to the rollout
// controller's window and, in cutover mode, to the breaker.
func (p *Proxy) judge(c candidateOutcome) {
	now := time.Now()
	p.ctl.observe(now, c.lat, c.err != nil)
	if p.breaker != nil {
		p.breaker.record(now, c.err == nil)
	}
}

// translate writes the candidate's answer in the primary's wire format, as
// the primary would have: its vocabulary (taxonomy.Render), its body, its
// headers.
func (p *Proxy) translate(r *http.Request, req vision.Request, tags vision.Tags) *http.Response {
	out := p.tx.Render(p.primaryServer.Format(), tags)
	out = out.Filter(req.MinConfidence, req.MaxLabels)
	rec := httptest.NewRecorder()
	p.primaryServer.WriteResult(rec, req, out)
	return p.respond(r, rec)
}

// respond turns a recorded answer into the client's response and ends the
// client request when the body has been read.
func (p *Proxy) respond(r *http.Request, rec *httptest.ResponseRecorder) *http.Response {
	resp := rec.Result()
	body := rec.Body.Bytes()
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Request = r
	resp.Body = &doneBody{Reader: bytes.NewReader(body), done: p.requests.Done}
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

// recordOff runs record off the request path with the request decoded and
// its image hashed (the hash may have been left out on the path); Shutdown
// waits for it.
func (p *Proxy) recordOff(ri *reqInfo, record func(req vision.Request)) {
	p.recordings.Add(1) // before the goroutine: Shutdown may be waiting
	ri.hold()
	go func() {
		defer p.recordings.Done()
		defer ri.Release()
		req, _ := ri.decode(p.primaryServer)
		record(req)
	}()
}

// recordCandidate records the candidate's call; tags are its answer's,
// normalised by the caller that also translated them (nil: normalise here).
func (p *Proxy) recordCandidate(pairID string, req vision.Request, c candidateOutcome, route string, served bool, tags *vision.Tags) {
	o := record.Observation{RequestID: pairID + "-c", PairID: pairID, Time: c.start, Provider: p.candidateName, Role: record.RoleCandidate,
		LatencyNS: c.lat.Nanoseconds(), ImageSHA256: req.Image.SHA256, ImageSize: req.Image.Size, Status: 200, Served: served, Route: route}
	if it, ok := p.fx.BySHA(req.Image.SHA256); ok {
		o.FixtureID = it.ID
	}
	usage := c.res.Usage
	if c.err != nil {
		e := vision.AsError(c.err)
		o.Status, o.Code, o.Error, usage = e.Status, string(e.Code), p.scrub.Replace(e.Error()), e.Usage
		tags = nil
	} else {
		if tags == nil {
			t := p.tx.Normalize(p.candidateClient.Codec.Format(), c.res)
			tags = &t
		}
		o.Tags, o.PromptVersion, o.ConfidenceSource = tags, c.res.PromptVersion, c.res.ConfidenceSource
	}
	o.Usage = usage
	p.priceCandidate(&o, usage, c.err)
	p.rec.Record(o)
	p.met.observe(o)
	p.pairs.join(p, pairID, record.RoleCandidate, tags)
}

// recordCandidateCancelled records a candidate call a hedge cancelled.
func (p *Proxy) recordCandidateCancelled(pairID string, req vision.Request, c candidateOutcome) {
	o := record.Observation{RequestID: pairID + "-c", PairID: pairID, Time: c.start, Provider: p.candidateName, Role: record.RoleCandidate,
		ImageSHA256: req.Image.SHA256, ImageSize: req.Image.Size, Code: record.CodeCancelled, Route: "hedge",
		Error: "hedge: the primary answered first"}
	p.rec.Record(o)
	p.pairs.join(p, pairID, record.RoleCandidate, nil)
}

// compareWithPrimary sends a copy of a request the candidate answered to
// the primary, off the request path and within the mirror's bounds, so
// that agreement is still measured while the candidate serves.
func (p *Proxy) compareWithPrimary(pairID string, out *http.Request, ri *reqInfo) {
	n := int64(len(ri.body)) * mirrorMemoryFactor
	if reason := p.admit(n); reason != "" {
		p.skip(reason, pairID)
		return
	}
	p.mirrors.Add(1)
	ri.hold()
	go func() {
		defer func() {
			ri.Release()
			p.queueBytes.Add(-n)
			p.inFlight.Add(-1)
			p.mirrors.Done()
		}()
		ctx, cancel := context.WithTimeout(p.mirrorCtx, p.primary.Timeout.D())
		defer cancel()
		cp := out.Clone(ctx)
		cp.Body = ri.newBodyReader(nil)
		start := time.Now()
		resp, err := p.transport.RoundTrip(cp)
		m := meta{route: "compare", pair: true}
		if err != nil {
			p.recordPrimary(pairID, start, time.Since(start), http.StatusBadGateway, nil, nil, vision.TransportError(err), ri, m)
			return
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, vision.MaxResponseBytes+1))
		resp.Body.Close()
		lat := time.Since(start)
		if rerr != nil || len(body) > vision.MaxResponseBytes {
			body = nil
		}
		p.recordPrimary(pairID, start, lat, resp.StatusCode, resp.Header, body, nil, ri, m)
	}()
}
