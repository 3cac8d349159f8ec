package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/openai"
)

// mirrorMemoryFactor estimates the memory an in-flight mirror holds per
// byte of request body: the body, the decoded image and the candidate's
// encoded request (base64 in JSON). max_queue_bytes bounds that memory, so
// a hung candidate cannot grow the proxy without limit.
const mirrorMemoryFactor = 4

// admit reserves a mirror slot and its memory, or says why not. It is on
// the request path: two atomic operations, never a wait.
func (p *Proxy) admit(n int64) string {
	m := p.cfg.Proxy.Mirror
	if p.inFlight.Add(1) > int64(m.MaxInFlight) {
		p.inFlight.Add(-1)
		return record.SkipInFlight
	}
	if p.queueBytes.Add(n) > int64(m.MaxQueueBytes) {
		p.queueBytes.Add(-n)
		p.inFlight.Add(-1)
		return record.SkipQueueBytes
	}
	if p.budget.isPaused(time.Now()) {
		p.queueBytes.Add(-n)
		p.inFlight.Add(-1)
		return record.SkipDailySpend
	}
	return ""
}

// sampled decides whether a request is mirrored: by image hash (an image
// is always or never mirrored) or by request.
func (p *Proxy) sampled(sha string) bool {
	pct := *p.cfg.Proxy.Mirror.SamplePercent
	if pct >= 100 {
		return true
	}
	if pct <= 0 {
		return false
	}
	if p.cfg.Proxy.Mirror.SampleBy == "image" && len(sha) >= 16 {
		b, err := hex.DecodeString(sha[:16])
		if err == nil {
			return float64(binary.BigEndian.Uint64(b))/float64(^uint64(0))*100 < pct
		}
	}
	return rand.Float64()*100 < pct
}

// duplicate reports whether sha was mirrored within the dedupe window,
// and remembers it otherwise.
func (p *Proxy) duplicate(sha string, now time.Time) bool {
	w := p.cfg.Proxy.Mirror.DedupeWindow.D()
	if w <= 0 || sha == "" {
		return false
	}
	if v, loaded := p.dedupe.LoadOrStore(sha, now); loaded {
		if now.Sub(v.(time.Time)) < w {
			return true
		}
		p.dedupe.Store(sha, now)
	}
	return false
}

func (p *Proxy) sweepDedupe(now time.Time) {
	w := p.cfg.Proxy.Mirror.DedupeWindow.D()
	p.dedupe.Range(func(k, v any) bool {
		if now.Sub(v.(time.Time)) >= w {
			p.dedupe.Delete(k)
		}
		return true
	})
}

// estimateCost is a call's expected price before it is sent: per call for
// tiered pricing, from estimated tokens for vision LLMs.
func (p *Proxy) estimateCost(req vision.Request) float64 {
	var in, out int64
	if oc, ok := p.candidateClient.Codec.(*openai.Codec); ok {
		rule := ""
		if m := p.cfg.Models[p.candidate.Model]; m != nil {
			rule = m.ImageTokens
		}
		u := oc.EstimateRequest(req, rule, 100)
		in, out = u.InputTokens, u.OutputTokens
	}
	c, _, _ := compare.CallCost(p.cfg, p.candidate, in, 0, out, config.DefaultMonthlyVolume)
	return c
}

// mirror sends one classification call to the candidate, detached from the
// client's context with its own timeout, and records the answer.
func (p *Proxy) mirror(pairID string, ri *reqInfo) {
	n := int64(len(ri.body)) * mirrorMemoryFactor
	defer func() {
		ri.Release() // the decoded image is read until the candidate's request is built
		p.queueBytes.Add(-n)
		p.inFlight.Add(-1)
		p.mirrors.Done()
	}()
	p.cpu <- struct{}{}
	req, err := ri.decode(p.primaryServer)
	<-p.cpu
	if err != nil {
		p.skip(record.SkipUndecodable, pairID)
		p.pairs.join(p, pairID, record.RoleCandidate, nil)
		return
	}
	now := time.Now()
	reason := ""
	switch {
	case !p.sampled(req.Image.SHA256):
		reason = record.SkipSampledOut
	case p.duplicate(req.Image.SHA256, now):
		reason = record.SkipDuplicate
	case p.candidateLimit != nil && !p.candidateLimit.Allow():
		reason = record.SkipCandidateRate
	}
	var est float64
	if reason == "" {
		if p.budget.limit > 0 { // the estimate only feeds the daily budget
			est = p.estimateCost(req)
		}
		if !p.budget.reserve(est, now, p) {
			reason = record.SkipDailySpend
		}
	}
	if reason != "" {
		p.skip(reason, pairID)
		p.pairs.join(p, pairID, record.RoleCandidate, nil)
		return
	}
	p.rec.Count(0, 0, 1)
	p.met.mirrored.Inc()
	p.rec.StoreImage(req.Image.SHA256, req.Image.Bytes, req.Image.MediaType)
	req.LLM = nil // the candidate builds its own prompt
	ctx, cancel := context.WithTimeout(p.mirrorCtx, p.mirrorTimeout)
	defer cancel()
	start, res, err := p.callCandidate(ctx, req)
	lat := time.Since(start)
	o := record.Observation{RequestID: pairID + "-c", PairID: pairID, Time: start, Provider: p.candidateName, Role: record.RoleCandidate,
		LatencyNS: lat.Nanoseconds(), ImageSHA256: req.Image.SHA256, ImageSize: req.Image.Size, Status: 200}
	if it, ok := p.fx.BySHA(req.Image.SHA256); ok {
		o.FixtureID = it.ID
	}
	var tags *vision.Tags
	usage := res.Usage
	if err != nil {
		e := vision.AsError(err)
		o.Status, o.Code, o.Error, usage = e.Status, string(e.Code), p.scrub.Replace(e.Error()), e.Usage
		if p.mirrorCtx.Err() != nil {
			o.Error = "cancelled at shutdown: " + o.Error
		}
	} else {
		t := p.tx.Normalize(p.candidateClient.Codec.Format(), res)
		tags = &t
		o.Tags, o.PromptVersion, o.ConfidenceSource = tags, res.PromptVersion, res.ConfidenceSource
	}
	o.Usage = usage
	// The actual price replaces the estimate.
	p.budget.settle(est, p.priceCandidate(&o, usage, err), start)
	p.rec.Record(o)
	p.met.observe(o)
	p.pairs.join(p, pairID, record.RoleCandidate, tags)
}

// priceCandidate sets a candidate call's cost on o and returns it: from
// its token usage for vision LLMs (a malformed answer still costs its
// tokens), the tier price otherwise; a call that failed before the model
// ran costs nothing.
func (p *Proxy) priceCandidate(o *record.Observation, usage *vision.Usage, err error) float64 {
	actual, cur, ok := compare.CallCost(p.cfg, p.candidate, usageIn(usage), usageCached(usage), usageOut(usage), config.DefaultMonthlyVolume)
	if !ok || (usage == nil && p.candidate.Format == config.FormatOpenAI) || (err != nil && p.candidate.Format != config.FormatOpenAI) {
		return 0
	}
	if actual > 0 {
		o.Cost, o.Currency = actual, cur
	}
	return actual
}

// budget is the day's candidate spend against mirror.max_daily_spend, in
// the candidate's currency. Days are UTC.
type budget struct {
	mu     sync.Mutex
	limit  float64
	day    string
	spent  float64 // settled
	held   float64 // estimates of calls in flight
	paused bool
}

func (b *budget) roll(now time.Time) {
	if d := now.UTC().Format("2006-01-02"); d != b.day {
		b.day, b.spent, b.paused = d, 0, false
	}
}

func (b *budget) isPaused(now time.Time) bool {
	if b.limit <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	return b.paused
}

// reserve holds est if the day's projected spend stays within the limit;
// otherwise it pauses mirroring for the rest of the day and says so.
func (b *budget) reserve(est float64, now time.Time, p *Proxy) bool {
	if b.limit <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	if b.paused {
		return false
	}
	if b.spent+b.held+est > b.limit {
		b.paused = true
		detail := fmt.Sprintf("mirroring paused for %s UTC: projected candidate spend %.4f would pass mirror.max_daily_spend %.4f", b.day, b.spent+b.held+est, b.limit)
		p.log.Warn(detail)
		p.rec.Event("mirror_paused", detail, map[string]any{"spent": b.spent, "in_flight": b.held, "limit": b.limit})
		p.met.paused.Set(1)
		return false
	}
	b.held += est
	return true
}

func (b *budget) settle(est, actual float64, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = max(0, b.held-est)
	if at.UTC().Format("2006-01-02") == b.day || b.limit <= 0 {
		b.spent += actual
	}
}

func (b *budget) state() (spent float64, paused bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent, b.paused
}

// pairs joins the primary's and the candidate's answers to one request to
// count live agreement.
type pairs struct {
	mu sync.Mutex
	m  map[string]*pair
}

type pair struct {
	primary, candidate         *vision.Tags
	havePrimary, haveCandidate bool
	born                       time.Time
}

// join records one side; nil tags means that side has no usable answer.
func (ps *pairs) join(p *Proxy, id, role string, tags *vision.Tags) {
	ps.mu.Lock()
	pr := ps.m[id]
	if pr == nil {
		pr = &pair{born: time.Now()}
		ps.m[id] = pr
	}
	if role == record.RolePrimary {
		pr.primary, pr.havePrimary = tags, true
	} else {
		pr.candidate, pr.haveCandidate = tags, true
	}
	done := pr.havePrimary && pr.haveCandidate
	if done {
		delete(ps.m, id)
	}
	ps.mu.Unlock()
	if done && pr.primary != nil && pr.candidate != nil {
		if pr.primary.Top() != "" && pr.primary.Top() == pr.candidate.Top() {
			p.met.agreement.WithLabelValues("agree").Inc()
		} else {
			p.met.agreement.WithLabelValues("disagree").Inc()
		}
	}
}

// sweep drops pairs whose other side will never come.
func (ps *pairs) sweep(older time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id, pr := range ps.m {
		if pr.born.Before(older) {
			delete(ps.m, id)
		}
	}
}

// callCandidate is vision.Client.Do with the CPU-bound phases (encoding
// the request, decoding the answer) inside the mirror's CPU slots, so that
// mirror work never occupies every core while client requests wait.
// start is when the request was handed to the network.
func (p *Proxy) callCandidate(ctx context.Context, req vision.Request) (time.Time, vision.Result, error) {
	return p.candidateCall(ctx, req, p.cpu)
}

// candidateCall is callCandidate with the CPU slots to use: the mirror's,
// or none (nil) when the candidate answers a client (canary), which must
// not queue behind shadow work.
func (p *Proxy) candidateCall(ctx context.Context, req vision.Request, cpu chan struct{}) (time.Time, vision.Result, error) {
	c := p.candidateClient
	acquire, release := func() {}, func() {}
	if cpu != nil {
		acquire, release = func() { cpu <- struct{}{} }, func() { <-cpu }
	}
	acquire()
	hreq, err := c.Codec.NewRequest(ctx, req)
	release()
	start := time.Now()
	if err != nil {
		return start, vision.Result{}, err
	}
	resp, err := c.HTTP.Do(hreq)
	bufpool.ReleaseRequest(hreq)
	if err != nil {
		return start, vision.Result{}, vision.TransportError(err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, vision.MaxResponseBytes+1))
	resp.Body.Close()
	if err != nil {
		return start, vision.Result{}, vision.TransportError(err)
	}
	if len(body) > vision.MaxResponseBytes {
		return start, vision.Result{}, &vision.Error{Code: vision.CodeInvalidResponse, Status: resp.StatusCode,
			Message: fmt.Sprintf("response larger than %d bytes", vision.MaxResponseBytes)}
	}
	acquire()
	defer release()
	res, err := c.Codec.DecodeResponse(resp, body)
	if err != nil {
		return start, res, err
	}
	return start, res.Filter(req.MinConfidence, req.MaxLabels), nil
}
