package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// router decides who answers a classification call: the primary (shadow
// mode; canary mode outside the candidate's share; cutover mode while the
// breaker is open) or the candidate.
type router struct {
	mode     string
	stickyBy string
	ctl      *controller // canary and cutover modes
	brk      *breaker    // cutover mode
	server   vision.ServerCodec
	stopping *atomic.Bool
}

// candidateAnswers decides whether the candidate answers ex: canary mode
// by the controller's share, sticky by image hash or per request; cutover
// mode unless the breaker is open. The request is decoded here, on the
// request path, its image hashed only when the hash decides (otherwise the
// recording hashes it, off the path): a request that does not decode goes
// to the primary as received.
func (r *router) candidateAnswers(ex *exchange) (vision.Request, bool) {
	if r.ctl == nil || r.stopping.Load() {
		return vision.Request{}, false
	}
	var pct float64
	if r.mode == config.ModeCanary {
		if pct = r.ctl.Percent(); pct <= 0 {
			return vision.Request{}, false
		}
	}
	share := r.mode == config.ModeCanary && pct < 100
	byImage := share && r.stickyBy == "image"
	if share && !byImage && rand.Float64()*100 >= pct {
		// Drawn per request for the primary: nothing to decode on the
		// request path (the recording decodes it after the answer).
		return vision.Request{}, false
	}
	decode := ex.decodeUnhashed
	if byImage {
		decode = ex.decode
	}
	req, err := decode(r.server)
	if err != nil {
		return req, false
	}
	if r.mode == config.ModeCutover {
		return req, r.brk.allow()
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

// canaryPath answers a client from the candidate, translated into the
// primary's wire format, with per-request fallback to the primary and
// optional hedging.
type canaryPath struct {
	cfg    config.Canary
	rec    Recorder
	cand   *candidate
	relay  *relay
	obs    *observer
	met    *metrics
	mirror *mirror
	life   *lifecycle
	ctl    *controller
	brk    *breaker // cutover mode
	tx     *vision.Taxonomy
	server vision.ServerCodec
}

// serve asks the candidate to answer a client. A failure whose code is in
// canary.fallback_on, or no answer within canary.candidate_timeout, sends
// the request to the primary instead (the client gets the primary's
// answer); with canary.hedge_after the primary is asked too once that much
// time has passed, and the first good answer wins.
func (k *canaryPath) serve(r, out *http.Request, ex *exchange, req vision.Request, pairID string) *http.Response {
	k.rec.Count(0, 0, 1)
	ctx, cancel := context.WithTimeout(r.Context(), k.cfg.CandidateTimeout.D())
	defer cancel()
	creq := req
	creq.LLM = nil // the candidate builds its own prompt
	if k.cfg.HedgeAfter <= 0 {
		// Nothing to race: call the candidate from this goroutine (a
		// hand-off to another and back costs two wake-ups on the path).
		return k.after(r, out, ex, req, pairID, k.cand.call(ctx, creq, false), "canary")
	}
	cc := make(chan outcome, 1)
	ex.hold() // the candidate's request is built from the decoded image
	go func() {
		defer ex.Release()
		cc <- k.cand.call(ctx, creq, false)
	}()
	t := time.NewTimer(k.cfg.HedgeAfter.D())
	defer t.Stop()
	select {
	case c := <-cc:
		return k.after(r, out, ex, req, pairID, c, "canary")
	case <-t.C:
		return k.hedge(r, out, ex, req, pairID, cc, cancel)
	}
}

// after serves the candidate's outcome: its translated answer, a fallback
// to the primary, or its error in the primary's format.
func (k *canaryPath) after(r, out *http.Request, ex *exchange, req vision.Request, pairID string, c outcome, route string) *http.Response {
	if c.err == nil {
		k.judge(c)
		k.met.answered.WithLabelValues("candidate").Inc()
		tags := k.tx.Normalize(k.obs.candidateFormat, c.res)
		resp := k.translate(r, req, tags)
		k.recordOff(ex, func(req vision.Request) { k.obs.candidate(pairID, ex, req, c, route, true, &tags) })
		if *k.cfg.CompareWithLegacy {
			k.mirror.compare(pairID, out, ex)
		}
		ex.unsent(out)
		return resp
	}
	code := string(vision.ErrorCode(c.err))
	fallback := k.fallsBack(code)
	k.recordOff(ex, func(req vision.Request) { k.obs.candidate(pairID, ex, req, c, route, !fallback, nil) })
	k.judge(c)
	if fallback {
		k.met.fallbacks.WithLabelValues(code).Inc()
		k.met.answered.WithLabelValues("primary").Inc()
		return k.relay.forward(r, out, pairID, true, ex, meta{route: "fallback", served: true, pair: true})
	}
	k.met.answered.WithLabelValues("candidate").Inc()
	ex.unsent(out)
	rec := httptest.NewRecorder()
	k.server.WriteError(rec, c.err)
	return k.relay.respond(r, rec)
}

// hedge asks the primary while the candidate is still out: the first good
// answer (a candidate result, a 2xx from the primary) goes to the client,
// the other call is cancelled and recorded as such.
func (k *canaryPath) hedge(r, out *http.Request, ex *exchange, req vision.Request, pairID string, cc <-chan outcome, cancelCandidate context.CancelFunc) *http.Response {
	lctx, cancelPrimary := context.WithCancel(out.Context())
	pc := make(chan *call, 1)
	go func() { pc <- k.relay.up.roundTrip(out.WithContext(lctx), ex.loan) }()
	var cand *outcome
	var prim *call
	for {
		select {
		case c := <-cc:
			cand = &c
		case l := <-pc:
			prim = l
		}
		switch {
		case cand != nil && cand.err == nil:
			// The candidate won: stop the primary, record it as cancelled.
			cancelPrimary()
			ex.hold()
			k.life.record(func() {
				defer ex.Release()
				if prim == nil {
					prim = <-pc
				}
				if prim.resp != nil {
					prim.resp.Body.Close()
				}
				prim.cancel()
				k.obs.primary(pairID, ex, primaryAnswer{start: prim.start,
					err: &vision.Error{Code: record.CodeCancelled, Message: "hedge: the candidate answered first"}}, meta{route: "hedge"})
			})
			tags := k.tx.Normalize(k.obs.candidateFormat, cand.res)
			c := *cand
			k.recordOff(ex, func(req vision.Request) { k.obs.candidate(pairID, ex, req, c, "hedge", true, &tags) })
			k.judge(c)
			k.met.answered.WithLabelValues("candidate").Inc()
			return k.translate(r, req, tags)
		case prim != nil && prim.err == nil && prim.resp.StatusCode/100 == 2, prim != nil && cand != nil:
			// The primary won, or both are in and the candidate failed:
			// the client gets the primary's own answer.
			if cand == nil {
				cancelCandidate()
				k.recordOff(ex, func(req vision.Request) { k.obs.candidateCancelled(pairID, ex, req, <-cc) })
			} else {
				c := *cand
				k.recordOff(ex, func(req vision.Request) { k.obs.candidate(pairID, ex, req, c, "hedge", false, nil) })
				k.judge(c)
			}
			k.met.answered.WithLabelValues("primary").Inc()
			m := meta{route: "hedge", served: true, pair: true}
			if prim.err != nil {
				cancelPrimary()
				m.pair = false
				return k.relay.failed(r, prim, pairID, true, ex, m)
			}
			resp := k.relay.tap(prim, pairID, true, ex, m)
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
func (k *canaryPath) fallsBack(code string) bool {
	f := k.cfg.FallbackOn
	return slices.Contains(f, "all") || slices.Contains(f, code)
}

// judge feeds a candidate answer on the request path to the rollout
// controller's window and, in cutover mode, to the breaker.
func (k *canaryPath) judge(c outcome) {
	k.ctl.observe(c.lat, c.err != nil)
	if k.brk != nil {
		k.brk.record(c.err == nil)
	}
}

// translate writes the candidate's answer in the primary's wire format, as
// the primary would have: its vocabulary (taxonomy.Render), its body, its
// headers.
func (k *canaryPath) translate(r *http.Request, req vision.Request, tags vision.Tags) *http.Response {
	out := k.tx.Render(k.server.Format(), tags)
	out = out.Filter(req.MinConfidence, req.MaxLabels)
	rec := httptest.NewRecorder()
	k.server.WriteResult(rec, req, out)
	return k.relay.respond(r, rec)
}

// recordOff runs record off the request path with the request decoded and
// its image hashed (the hash may have been left out on the path).
func (k *canaryPath) recordOff(ex *exchange, record func(req vision.Request)) {
	ex.hold()
	k.life.record(func() {
		defer ex.Release()
		req, _ := ex.decode(k.server)
		record(req)
	})
}
