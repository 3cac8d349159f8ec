package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
)

// controller owns the share of traffic the candidate answers in canary
// mode: the rolling-window rollback gates, the progressive steps, the
// admin actions, and the state file that a restart resumes from (never at
// a higher share than it had).
type controller struct {
	p   *Proxy
	cfg config.Canary

	pct atomic.Uint64 // math.Float64bits of the current percent: read on every request

	mu   sync.Mutex
	st   CanaryState
	win  *window
	step *window // since the current step began (one slot, never expires)
	stop chan struct{}
	done chan struct{}
}

// CanaryState is the persisted state of a rollout, and GET /admin/canary's
// body (with the live figures).
type CanaryState struct {
	Primary   string `json:"primary"`
	Candidate string `json:"candidate"`
	// Step indexes canary.steps (-1 without steps).
	Step        int       `json:"step"`
	Percent     float64   `json:"percent"`
	StepStarted time.Time `json:"step_started"`
	// Paused stops the steps from advancing; Manual is set when an
	// operator chose the percent (POST /admin/canary); RolledBack when a
	// gate or an operator dropped the share to 0.
	Paused     bool         `json:"paused"`
	Manual     bool         `json:"manual"`
	RolledBack bool         `json:"rolled_back"`
	Complete   bool         `json:"complete"`
	History    []Transition `json:"history"`
}

// Transition is one change of the share, for the timeline.
type Transition struct {
	Time    time.Time      `json:"time"`
	Kind    string         `json:"kind"` // start, resume, advance, hold, rollback, set, pause, promote
	From    float64        `json:"from"`
	To      float64        `json:"to"`
	Step    int            `json:"step"`
	Reason  string         `json:"reason"`
	Figures map[string]any `json:"figures,omitempty"`
}

// Figures are the candidate's numbers over a window or a step.
type Figures struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P99Ms     float64 `json:"p99_ms"`
}

func (f Figures) asMap() map[string]any {
	return map[string]any{"requests": f.Requests, "errors": f.Errors, "error_rate": f.ErrorRate, "p99_ms": f.P99Ms}
}

func newController(p *Proxy) (*controller, error) {
	c := &controller{p: p, cfg: p.cfg.Proxy.Canary, stop: make(chan struct{}), done: make(chan struct{})}
	c.cfg.StateFile = p.cfg.Path(c.cfg.StateFile) // relative to the config file
	c.win = newWindow(c.cfg.Window.D())
	c.step = newWindow(0)
	st, err := c.load()
	if err != nil {
		return nil, err
	}
	c.st = st
	c.pct.Store(math.Float64bits(st.Percent))
	if err := c.save(); err != nil {
		return nil, err
	}
	return c, nil
}

// load resumes from the state file when it belongs to this primary and
// candidate; a restart never raises the share.
func (c *controller) load() (CanaryState, error) {
	now := time.Now()
	fresh := CanaryState{Primary: c.p.primaryName, Candidate: c.p.candidateName, Step: -1, Percent: *c.cfg.Percent, StepStarted: now}
	if len(c.cfg.Steps) > 0 {
		fresh.Step, fresh.Percent = 0, c.cfg.Steps[0].Percent
	}
	if c.p.cfg.Proxy.Mode == config.ModeCutover {
		fresh.Step, fresh.Percent = -1, 100
	}
	b, err := os.ReadFile(c.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		fresh.History = []Transition{{Time: now, Kind: "start", To: fresh.Percent, Step: fresh.Step, Reason: "no state file: starting"}}
		return fresh, nil
	}
	if err != nil {
		return fresh, fmt.Errorf("canary.state_file: %w", err)
	}
	var st CanaryState
	if err := json.Unmarshal(b, &st); err != nil {
		return fresh, fmt.Errorf("canary.state_file %s is not a canary state (%v): move it away to start afresh", c.cfg.StateFile, err)
	}
	if st.Primary != fresh.Primary || st.Candidate != fresh.Candidate {
		return fresh, fmt.Errorf("canary.state_file %s is the rollout of %s → %s, not %s → %s: choose another file or remove it",
			c.cfg.StateFile, st.Primary, st.Candidate, fresh.Primary, fresh.Candidate)
	}
	from := st.Percent
	switch {
	case st.RolledBack:
		st.Percent = 0
	case len(c.cfg.Steps) > 0 && !st.Manual:
		st.Step = min(max(st.Step, 0), len(c.cfg.Steps)-1)
		st.Percent = math.Min(from, c.cfg.Steps[st.Step].Percent)
	case c.p.cfg.Proxy.Mode == config.ModeCanary && !st.Manual:
		st.Percent = math.Min(from, *c.cfg.Percent)
	}
	st.StepStarted = now // a step's figures start again with the process
	st.History = append(st.History, Transition{Time: now, Kind: "resume", From: from, To: st.Percent, Step: st.Step,
		Reason: "restarted: resuming from the state file, never higher"})
	return st, nil
}

// save writes the state atomically (write, fsync, rename). Callers hold mu
// or own c exclusively.
func (c *controller) save() error {
	b, err := json.MarshalIndent(c.st, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(c.cfg.StateFile); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("canary.state_file: %w", err)
		}
	}
	return record.WriteFileAtomic(c.cfg.StateFile, append(b, '\n'))
}

// Percent is the share of classification calls the candidate answers now.
func (c *controller) Percent() float64 { return math.Float64frombits(c.pct.Load()) }

// observe counts one candidate answer on the request path.
func (c *controller) observe(now time.Time, lat time.Duration, failed bool) {
	c.win.add(now, lat, failed)
	c.step.add(now, lat, failed)
}

// set changes the share and records why: log, run directory, metrics, state.
// Callers hold mu.
func (c *controller) set(kind string, to float64, reason string, f *Figures) {
	from := c.st.Percent
	c.st.Percent = to
	c.pct.Store(math.Float64bits(to))
	t := Transition{Time: time.Now(), Kind: kind, From: from, To: to, Step: c.st.Step, Reason: reason}
	if f != nil {
		t.Figures = f.asMap()
	}
	c.st.History = append(c.st.History, t)
	if len(c.st.History) > 1000 {
		c.st.History = c.st.History[len(c.st.History)-1000:]
	}
	data := map[string]any{"from": from, "percent": to, "step": c.st.Step}
	for k, v := range t.Figures {
		data[k] = v
	}
	level := c.p.log.Info
	if kind == "rollback" {
		level = c.p.log.Warn
		c.p.met.rollbacks.Inc()
	}
	level("canary "+kind, "from", from, "to", to, "step", c.st.Step, "reason", reason)
	c.p.rec.Event("canary_"+kind, fmt.Sprintf("%s: %g%% → %g%%: %s", kind, from, to, reason), data)
	if err := c.save(); err != nil {
		c.p.log.Error("canary state not saved", "err", err)
	}
}

// run evaluates the gates every canary.evaluate_every until Stop.
func (c *controller) run() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.EvaluateEvery.D())
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			c.evaluate(now)
		case <-c.stop:
			return
		}
	}
}

func (c *controller) Stop() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// evaluate judges the rolling window (rollback) and, with steps, the
// current step (advance, hold or roll back).
func (c *controller) evaluate(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.RolledBack || c.st.Percent <= 0 {
		return
	}
	if reason, f, crossed := c.crossed(now); crossed {
		c.rollback(reason, &f)
		return
	}
	if len(c.cfg.Steps) == 0 || c.st.Step < 0 || c.st.Paused || c.st.Manual || c.st.Complete {
		return
	}
	s := c.cfg.Steps[c.st.Step]
	f, h := c.step.total()
	if f.Requests < int64(s.MinRequests) {
		return
	}
	status, why := judgeStep(s, f, h)
	switch {
	case status == "fail":
		c.rollback(fmt.Sprintf("step %d (%g%%) gates failed: %s", c.st.Step+1, s.Percent, why), &f)
	case status == "pass" && now.Sub(c.st.StepStarted) >= s.MinDuration.D():
		c.advance("step gates passed: "+why, &f)
	}
}

// crossed judges the rollback gates on the rolling window. A gate is
// crossed when the window is above its threshold with 95 % confidence
// (the Wilson lower bound of the error rate, the order-statistic lower
// bound of p99): two failures among the first twenty answers of a healthy
// candidate are noise and must not roll it back, while a dead candidate
// crosses as soon as the window holds min_requests answers.
func (c *controller) crossed(now time.Time) (string, Figures, bool) {
	rb := c.cfg.Rollback
	w, h := c.win.figuresHist(now)
	if w.Requests < int64(rb.MinRequests) {
		return "", w, false
	}
	if lo, hi := stats.Wilson(int(w.Errors), int(w.Requests), stats.Z95); lo > rb.ErrorRate.F() {
		return fmt.Sprintf("window error rate %.2f%% [%.2f, %.2f] over %d requests crossed rollback.error_rate %.2f%%",
			100*w.ErrorRate, 100*lo, 100*hi, w.Requests, 100*rb.ErrorRate.F()), w, true
	}
	if rb.P99Latency > 0 {
		n := int(w.Requests)
		lo, _, _ := stats.QuantileRanks(n, 0.99, stats.Z95)
		if low := float64(h.ValueAtQuantile(100*float64(lo)/float64(n))) / 1e6; low > float64(rb.P99Latency.D())/1e6 {
			return fmt.Sprintf("window p99 %.0f ms (at least %.0f ms) over %d requests crossed rollback.p99_latency %s",
				w.P99Ms, low, w.Requests, rb.P99Latency), w, true
		}
	}
	return "", w, false
}

// judgeStep judges a step's gates on 95 % intervals: pass when every
// interval is on the right side of its threshold, fail when one is wholly
// on the wrong side, inconclusive (hold) otherwise.
func judgeStep(s config.Step, f Figures, h *hdrhistogram.Histogram) (string, string) {
	status, why := "pass", fmt.Sprintf("%d requests", f.Requests)
	if thr := s.Gates.ErrorRate.F(); thr > 0 {
		lo, hi := stats.Wilson(int(f.Errors), int(f.Requests), stats.Z95)
		switch {
		case lo > thr:
			return "fail", fmt.Sprintf("error rate %.2f%% [%.2f, %.2f] > %.2f%%", 100*f.ErrorRate, 100*lo, 100*hi, 100*thr)
		case hi > thr:
			status = "hold"
		}
		why += fmt.Sprintf(", error rate %.2f%% [%.2f, %.2f]", 100*f.ErrorRate, 100*lo, 100*hi)
	}
	if thr := s.Gates.P99Latency; thr > 0 && h.TotalCount() > 0 {
		n := int(h.TotalCount())
		lo, hi, ok := stats.QuantileRanks(n, 0.99, stats.Z95)
		at := func(r int) float64 { return float64(h.ValueAtQuantile(100*float64(r)/float64(n))) / 1e6 }
		t := float64(thr.D()) / 1e6
		switch {
		case at(lo) > t:
			return "fail", fmt.Sprintf("p99 %.0f ms [%.0f, %.0f] > %s", f.P99Ms, at(lo), at(hi), thr)
		case !ok || at(hi) > t:
			status = "hold"
		}
		why += fmt.Sprintf(", p99 %.0f ms", f.P99Ms)
	}
	return status, why
}

func (c *controller) rollback(reason string, f *Figures) {
	c.st.RolledBack = true
	c.set("rollback", 0, reason, f)
}

func (c *controller) advance(reason string, f *Figures) {
	if c.st.Step+1 >= len(c.cfg.Steps) {
		if !c.st.Complete {
			c.st.Complete = true
			c.set("complete", c.st.Percent, "last step passed: "+reason, f)
		}
		return
	}
	c.st.Step++
	c.st.StepStarted = time.Now()
	c.step.reset()
	c.set("advance", c.cfg.Steps[c.st.Step].Percent, reason, f)
}

// Admin actions (POST /admin/…), under mu.

func (c *controller) setPercent(pct float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Manual, c.st.RolledBack, c.st.Complete = true, false, false
	c.set("set", pct, "set by an operator (POST /admin/canary)", nil)
}

func (c *controller) pause(paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Paused = paused
	kind, reason := "pause", "paused by an operator: steps do not advance"
	if !paused {
		kind, reason = "resume", "resumed by an operator"
		if c.st.RolledBack || c.st.Manual {
			// Resuming after a rollback or a manual share restarts the
			// current step from its own share.
			c.st.RolledBack, c.st.Manual = false, false
			c.st.StepStarted = time.Now()
			c.step.reset()
			to := *c.cfg.Percent
			if c.st.Step >= 0 {
				to = c.cfg.Steps[c.st.Step].Percent
			}
			c.set(kind, to, reason+": the current step starts again", nil)
			return
		}
	}
	c.set(kind, c.st.Percent, reason, nil)
}

func (c *controller) operatorRollback() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rollback("rolled back by an operator (POST /admin/rollback)", nil)
}

// promote moves to the next step now (or to 100 % without steps).
func (c *controller) promote() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.RolledBack, c.st.Manual = false, false
	if len(c.cfg.Steps) == 0 || c.st.Step < 0 {
		c.set("promote", 100, "promoted by an operator (POST /admin/promote)", nil)
		return
	}
	if c.st.Step+1 < len(c.cfg.Steps) {
		c.st.Step++
	}
	c.st.StepStarted = time.Now()
	c.step.reset()
	c.set("promote", c.cfg.Steps[c.st.Step].Percent, "promoted by an operator (POST /admin/promote)", nil)
}

// status is GET /admin/canary.
func (c *controller) status(now time.Time) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	sf, _ := c.step.total()
	out := map[string]any{"mode": c.p.cfg.Proxy.Mode, "state": c.st, "window": c.win.figures(now), "step_figures": sf,
		"steps": c.cfg.Steps, "rollback": c.cfg.Rollback}
	if c.p.breaker != nil {
		out["breaker"] = c.p.breaker.status()
	}
	return out
}

// window counts candidate answers in one-second slots over a rolling
// duration (0: one slot that never expires, for a step's totals).
type window struct {
	mu    sync.Mutex
	span  int64
	slots []slot
}

type slot struct {
	sec      int64
	n, fails int64
	h        *hdrhistogram.Histogram
}

func newWindow(d time.Duration) *window {
	n := int64(math.Ceil(d.Seconds()))
	if n < 1 {
		return &window{span: 0, slots: []slot{{sec: -1, h: windowHist()}}}
	}
	w := &window{span: n, slots: make([]slot, n)}
	for i := range w.slots {
		w.slots[i] = slot{sec: -1, h: windowHist()}
	}
	return w
}

// windowHist: 1 µs to 10 min, 2 significant digits (~20 KB a slot).
func windowHist() *hdrhistogram.Histogram { return hdrhistogram.New(1_000, 600_000_000_000, 2) }

func (w *window) add(now time.Time, lat time.Duration, failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.slots[0]
	if w.span > 0 {
		sec := now.Unix()
		s = &w.slots[sec%w.span]
		if s.sec != sec {
			s.sec, s.n, s.fails = sec, 0, 0
			s.h.Reset()
		}
	}
	s.n++
	if failed {
		s.fails++
	}
	s.h.RecordValue(min(max(lat.Nanoseconds(), 1_000), 600_000_000_000))
}

func (w *window) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.slots {
		w.slots[i].n, w.slots[i].fails, w.slots[i].sec = 0, 0, -1
		w.slots[i].h.Reset()
	}
}

// figures sums the slots within the window ending at now.
func (w *window) figures(now time.Time) Figures {
	f, _ := w.figuresHist(now)
	return f
}

// figuresHist is figures with the window's merged histogram.
func (w *window) figuresHist(now time.Time) (Figures, *hdrhistogram.Histogram) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := windowHist()
	var f Figures
	for _, s := range w.slots {
		if w.span > 0 && (s.sec < 0 || s.sec <= now.Unix()-w.span) {
			continue
		}
		f.Requests += s.n
		f.Errors += s.fails
		h.Merge(s.h)
	}
	return finish(f, h), h
}

// total is figures for the never-expiring window, with its histogram.
func (w *window) total() (Figures, *hdrhistogram.Histogram) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := windowHist()
	var f Figures
	for _, s := range w.slots {
		f.Requests += s.n
		f.Errors += s.fails
		h.Merge(s.h)
	}
	return finish(f, h), h
}

func finish(f Figures, h *hdrhistogram.Histogram) Figures {
	if f.Requests > 0 {
		f.ErrorRate = float64(f.Errors) / float64(f.Requests)
		f.P99Ms = float64(h.ValueAtQuantile(99)) / 1e6
	}
	return f
}
