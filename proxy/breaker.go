package proxy

import (
	"fmt"
	"sync"
	"time"

	"github.com/cutover/cutover/config"
)

// Breaker states, as the cutover_breaker_state gauge reports them.
const (
	breakerClosed   = 0 // the candidate answers
	breakerHalfOpen = 1 // a few probes go to the candidate
	breakerOpen     = 2 // the primary answers everything
)

var breakerNames = map[int]string{breakerClosed: "closed", breakerHalfOpen: "half-open", breakerOpen: "open"}

// breaker guards the candidate in cutover mode: it opens when the failure
// rate over the window passes breaker.failure_rate (with at least
// min_requests), lets half_open_probes through after the cooldown, and
// closes when all of them succeed (one failure opens it again).
type breaker struct {
	p        *Proxy
	cfg      config.Breaker
	mu       sync.Mutex
	state    int
	openedAt time.Time
	probes   int // let through while half-open
	probeOK  int
	win      *window
}

func newBreaker(p *Proxy) *breaker {
	return &breaker{p: p, cfg: p.cfg.Proxy.Breaker, win: newWindow(p.cfg.Proxy.Breaker.Window.D())}
}

// allow says whether the candidate may answer a request now.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if now.Sub(b.openedAt) < b.cfg.Cooldown.D() {
			return false
		}
		b.to(breakerHalfOpen, "cooldown over: probing the candidate", nil)
		b.probes, b.probeOK = 0, 0
		fallthrough
	case breakerHalfOpen:
		if b.probes >= b.cfg.HalfOpenProbes {
			return false
		}
		b.probes++
		return true
	}
	return true
}

// record counts a candidate answer on the request path.
func (b *breaker) record(now time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		b.win.add(now, 0, !ok)
		f := b.win.figures(now)
		if f.Requests >= int64(b.cfg.MinRequests) && f.ErrorRate > b.cfg.FailureRate.F() {
			b.openedAt = now
			b.to(breakerOpen, fmt.Sprintf("failure rate %.1f%% over %d requests passed breaker.failure_rate %.1f%%",
				100*f.ErrorRate, f.Requests, 100*b.cfg.FailureRate.F()), &f)
		}
	case breakerHalfOpen:
		if !ok {
			b.openedAt = now
			b.to(breakerOpen, "a half-open probe failed", nil)
			return
		}
		if b.probeOK++; b.probeOK >= b.cfg.HalfOpenProbes {
			b.win.reset()
			b.to(breakerClosed, fmt.Sprintf("%d probes succeeded", b.probeOK), nil)
		}
	}
}

// to changes state and records it. Callers hold mu.
func (b *breaker) to(state int, reason string, f *Figures) {
	from := b.state
	b.state = state
	b.p.met.breaker.Set(float64(state))
	data := map[string]any{"from": breakerNames[from], "to": breakerNames[state]}
	if f != nil {
		for k, v := range f.asMap() {
			data[k] = v
		}
	}
	b.p.log.Warn("breaker "+breakerNames[state], "reason", reason)
	b.p.rec.Event("breaker_"+breakerNames[state], reason, data)
}

func (b *breaker) status() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return map[string]any{"state": breakerNames[b.state], "opened_at": b.openedAt, "probes": b.probes, "probes_ok": b.probeOK,
		"window": b.win.figures(time.Now())}
}
