package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/openai"
)

// mirrorMemoryFactor estimates the memory an in-flight mirror holds per
// byte of request body: the body, the decoded image and the candidate's
// encoded request (base64 in JSON). max_queue_bytes bounds that memory, so
// a hung candidate cannot grow the proxy without limit.
const mirrorMemoryFactor = 4

// mirror sends copies of classification calls to the candidate (shadow
// traffic) and copies of candidate-answered calls to the primary (canary
// compare), off the request path, within bounds: in-flight calls, queued
// bytes, sampling, dedupe, the candidate's rate cap and the daily spend.
type mirror struct {
	cfg     config.Mirror
	cand    *candidate
	up      *upstream
	obs     *observer
	rec     Recorder
	met     *metrics
	life    *lifecycle
	clock   clockwork.Clock
	timeout time.Duration // one candidate call
	// primaryTimeout bounds a compare copy sent to the primary.
	primaryTimeout time.Duration

	inFlight   atomic.Int64
	queueBytes atomic.Int64
	dedupe     deduper
	spend      spendLedger
	estimate   func(req vision.Request) float64 // a call's expected price, for the spend cap
}

// admit reserves a mirror slot and its memory, or says why not. It is on
// the request path: two atomic operations, never a wait.
func (m *mirror) admit(n int64) string {
	if m.inFlight.Add(1) > int64(m.cfg.MaxInFlight) {
		m.inFlight.Add(-1)
		return record.SkipInFlight
	}
	if m.queueBytes.Add(n) > int64(m.cfg.MaxQueueBytes) {
		m.queueBytes.Add(-n)
		m.inFlight.Add(-1)
		return record.SkipQueueBytes
	}
	if m.spend.paused(m.clock.Now()) {
		m.queueBytes.Add(-n)
		m.inFlight.Add(-1)
		return record.SkipDailySpend
	}
	return ""
}

// release gives back what admit reserved.
func (m *mirror) release(n int64) {
	m.queueBytes.Add(-n)
	m.inFlight.Add(-1)
}

// skip counts a request not mirrored.
func (m *mirror) skip(reason string) {
	m.rec.Skip(reason)
	m.met.skipped.WithLabelValues(reason).Inc()
}

// sampled decides whether a request is mirrored: by image hash (an image
// is always or never mirrored) or by request.
func (m *mirror) sampled(sha string) bool {
	pct := *m.cfg.SamplePercent
	if pct >= 100 {
		return true
	}
	if pct <= 0 {
		return false
	}
	if m.cfg.SampleBy == "image" && len(sha) >= 16 {
		if b, err := hex.DecodeString(sha[:16]); err == nil {
			return float64(binary.BigEndian.Uint64(b))/float64(^uint64(0))*100 < pct
		}
	}
	return rand.Float64()*100 < pct
}

// start mirrors one admitted classification call (n bytes reserved);
// ex is held for it and released when it is done.
func (m *mirror) start(pairID string, ex *exchange, n int64) {
	m.life.mirrors.Add(1)
	go m.run(pairID, ex, n)
}

func (m *mirror) run(pairID string, ex *exchange, n int64) {
	defer func() {
		ex.Release() // the decoded image is read until the candidate's request is built
		m.release(n)
		m.life.mirrors.Done()
	}()
	m.cand.cpu <- struct{}{}
	req, err := ex.decode(m.obs.primaryServer)
	<-m.cand.cpu
	if err != nil {
		m.skip(record.SkipUndecodable)
		m.obs.live.join(pairID, record.RoleCandidate, nil)
		return
	}
	now := m.clock.Now()
	reason := ""
	switch {
	case !m.sampled(req.Image.SHA256):
		reason = record.SkipSampledOut
	case m.cfg.DedupeWindow > 0 && req.Image.SHA256 != "" && m.dedupe.seen(req.Image.SHA256, now):
		reason = record.SkipDuplicate
	case m.cand.limit != nil && !m.cand.limit.Allow():
		reason = record.SkipCandidateRate
	}
	var est float64
	if reason == "" {
		if m.cfg.MaxDailySpend > 0 { // the estimate only feeds the daily cap
			est = m.estimate(req)
		}
		reason = m.spend.reserve(est, now)
	}
	if reason != "" {
		m.skip(reason)
		m.obs.live.join(pairID, record.RoleCandidate, nil)
		return
	}
	m.rec.Count(0, 0, 1)
	m.met.mirrored.Inc()
	m.rec.StoreImage(req.Image.SHA256, req.Image.Bytes, req.Image.MediaType)
	req.LLM = nil // the candidate builds its own prompt
	ctx, cancel := context.WithTimeout(m.life.mirrorCtx, m.timeout)
	defer cancel()
	c := m.cand.call(ctx, req, true)
	if c.err != nil && m.life.mirrorCtx.Err() != nil {
		e := *vision.AsError(c.err)
		e.Message = "cancelled at shutdown: " + e.Message
		c.err = &e
	}
	actual := m.obs.candidate(pairID, ex, req, c, "", false, nil)
	m.spend.settle(est, actual, c.start) // the actual price replaces the estimate
}

// compare sends a copy of a request the candidate answered to the
// primary, off the request path and within the mirror's bounds, so that
// agreement is still measured while the candidate serves.
func (m *mirror) compare(pairID string, out *http.Request, ex *exchange) {
	n := int64(len(ex.body)) * mirrorMemoryFactor
	if reason := m.admit(n); reason != "" {
		m.skip(reason)
		return
	}
	m.life.mirrors.Add(1)
	ex.hold()
	go func() {
		defer func() {
			ex.Release()
			m.release(n)
			m.life.mirrors.Done()
		}()
		cp := out.Clone(m.life.mirrorCtx)
		cp.Body = ex.newBodyReader(nil)
		c := m.up.roundTrip(cp, nil)
		defer c.cancel()
		mt := meta{route: "compare", pair: true}
		if c.err != nil {
			_, e, _ := m.up.failure(c.err)
			m.obs.primary(pairID, ex, primaryAnswer{start: c.start, lat: time.Since(c.start), trace: c.trace, status: http.StatusBadGateway, err: e}, mt)
			return
		}
		body, rerr := io.ReadAll(io.LimitReader(c.resp.Body, vision.MaxResponseBytes+1))
		c.resp.Body.Close()
		lat := time.Since(c.start)
		if rerr != nil || len(body) > vision.MaxResponseBytes {
			body = nil
		}
		m.obs.primary(pairID, ex, primaryAnswer{start: c.start, lat: lat, trace: c.trace, status: c.resp.StatusCode, header: c.resp.Header, body: body}, mt)
	}()
}

// deduper remembers images mirrored recently (mirror.dedupe_window): in
// this process, or across a fleet of replicas.
type deduper interface {
	// seen reports whether sha was mirrored within the window ending at
	// now, and remembers it otherwise.
	seen(sha string, now time.Time) bool
	// sweep forgets images older than the window.
	sweep(now time.Time)
}

// localDedupe is a deduper for one process.
type localDedupe struct {
	window time.Duration
	m      sync.Map // sha → time mirrored
}

func (d *localDedupe) seen(sha string, now time.Time) bool {
	if v, loaded := d.m.LoadOrStore(sha, now); loaded {
		if now.Sub(v.(time.Time)) < d.window {
			return true
		}
		d.m.Store(sha, now)
	}
	return false
}

func (d *localDedupe) sweep(now time.Time) {
	d.m.Range(func(k, v any) bool {
		if now.Sub(v.(time.Time)) >= d.window {
			d.m.Delete(k)
		}
		return true
	})
}

// spendLedger is the day's candidate spend against mirror.max_daily_spend,
// in the candidate's currency, UTC days: in this process, or shared by a
// fleet of replicas.
type spendLedger interface {
	// paused reports whether mirroring is paused for the day.
	paused(now time.Time) bool
	// reserve holds est if the day's projected spend stays within the
	// limit; otherwise it pauses mirroring for the rest of the day. It
	// returns why not ("" when reserved): a record.Skip… reason.
	reserve(est float64, now time.Time) string
	// settle replaces a reservation by the call's actual price.
	settle(est, actual float64, at time.Time)
	// state is the day's settled spend and whether mirroring is paused.
	state() (spent float64, paused bool)
}

// budget is a spendLedger for one process.
type budget struct {
	mu      sync.Mutex
	limit   float64
	day     string
	spent   float64 // settled
	held    float64 // estimates of calls in flight
	stopped bool
	onPause func(detail string, data map[string]any)
}

func (b *budget) roll(now time.Time) {
	if d := now.UTC().Format(time.DateOnly); d != b.day {
		b.day, b.spent, b.stopped = d, 0, false
	}
}

func (b *budget) paused(now time.Time) bool {
	if b.limit <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	return b.stopped
}

func (b *budget) reserve(est float64, now time.Time) string {
	if b.limit <= 0 {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(now)
	if b.stopped {
		return record.SkipDailySpend
	}
	if b.spent+b.held+est > b.limit {
		b.stopped = true
		b.onPause(pauseDetail(b.day, b.spent+b.held+est, b.limit), map[string]any{"spent": b.spent, "in_flight": b.held, "limit": b.limit})
		return record.SkipDailySpend
	}
	b.held += est
	return ""
}

func (b *budget) settle(est, actual float64, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = max(0, b.held-est)
	if at.UTC().Format(time.DateOnly) == b.day || b.limit <= 0 {
		b.spent += actual
	}
}

func (b *budget) state() (float64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent, b.stopped
}

// estimator returns a call's expected price before it is sent: per call
// for tiered pricing, from estimated tokens for vision LLMs.
func estimator(cfg *config.Config, p *config.Provider, codec vision.ClientCodec, price pricer) func(vision.Request) float64 {
	return func(req vision.Request) float64 {
		var u vision.Usage
		if oc, ok := codec.(*openai.Codec); ok {
			rule := ""
			if mp := cfg.Models[p.Model]; mp != nil {
				rule = mp.ImageTokens
			}
			u = oc.EstimateRequest(req, rule, 100)
		}
		c, _, _ := price(p, &u)
		return c
	}
}

func pauseDetail(day string, projected, limit float64) string {
	return fmt.Sprintf("mirroring paused for %s UTC: projected candidate spend %.4f would pass mirror.max_daily_spend %.4f", day, projected, limit)
}

// pauseNotice logs a pause of mirroring and puts it on the timeline.
func pauseNotice(log *slog.Logger, rec Recorder, met *metrics) func(string, map[string]any) {
	return func(detail string, data map[string]any) {
		log.Warn(detail)
		rec.Event("mirror_paused", detail, data)
		met.paused.Set(1)
	}
}
