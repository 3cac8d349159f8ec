package proxy

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

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
// closes when all of them succeed (one failure opens it again). Its clock
// is injected: tests run the cooldown on simulated time.
type breaker struct {
	cfg      config.Breaker
	clock    clockwork.Clock
	log      *slog.Logger
	tl       timeline
	onState  func(state int) // the gauge
	mu       sync.Mutex
	state    int
	openedAt time.Time
	probes   int // let through while half-open
	probeOK  int
	win      *window
}

func newBreaker(cfg config.Breaker, clock clockwork.Clock, log *slog.Logger, tl timeline, onState func(int)) *breaker {
	return &breaker{cfg: cfg, clock: clock, log: log, tl: tl, onState: onState, win: newWindow(cfg.Window.D())}
}

// allow says whether the candidate may answer a request now.
func (b *breaker) allow() bool {
	now := b.clock.Now()
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
func (b *breaker) record(ok bool) {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		b.win.add(now, 0, !ok)
		f, _ := b.win.figures(now)
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
	b.onState(state)
	data := map[string]any{"from": breakerNames[from], "to": breakerNames[state]}
	if f != nil {
		for k, v := range f.asMap() {
			data[k] = v
		}
	}
	b.log.Warn("breaker "+breakerNames[state], "reason", reason)
	b.tl.Event("breaker_"+breakerNames[state], reason, data)
}

func (b *breaker) status() map[string]any {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f, _ := b.win.figures(now)
	return map[string]any{"state": breakerNames[b.state], "opened_at": b.openedAt, "probes": b.probes, "probes_ok": b.probeOK,
		"window": f}
}
