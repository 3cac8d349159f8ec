package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jonboulle/clockwork"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
)

// controller owns the share of traffic the candidate answers in canary
// and cutover modes: the rolling-window rollback gates, the progressive
// steps, the admin actions, and the persisted state that a restart
// resumes from (never at a higher share than it had). Its clock is
// injected: tests judge windows on simulated time.
type controller struct {
	cfg   config.Canary
	mode  string
	pair  [2]string // primary, candidate
	clock clockwork.Clock
	store stateStore
	log   *slog.Logger
	tl    timeline
	// onRollback counts rollbacks (/metrics).
	onRollback func()

	pct atomic.Uint64 // math.Float64bits of the current percent: read on every request

	// evaluations counts finished evaluations (tests wait on it).
	evaluations atomic.Int64

	mu   sync.Mutex
	st   CanaryState
	win  *window
	step *window // since the current step began (one slot, never expires)
}

// timeline receives the events of a run (record.Writer.Event).
type timeline interface {
	Event(kind, detail string, data map[string]any)
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
	Kind    string         `json:"kind"` // start, resume, advance, hold, rollback, set, pause, promote, complete
	From    float64        `json:"from"`
	To      float64        `json:"to"`
	Step    int            `json:"step"`
	Reason  string         `json:"reason"`
	Figures map[string]any `json:"figures,omitempty"`
}

// stateStore persists a rollout's state.
type stateStore interface {
	// load returns the saved state; found is false when there is none.
	load() (st CanaryState, found bool, err error)
	// save replaces the saved state.
	save(st CanaryState) error
	// where names the store in messages.
	where() string
}

// fileStore keeps the state in canary.state_file, written atomically
// (write, fsync, rename).
type fileStore struct{ path string }

func (f fileStore) where() string { return "canary.state_file " + f.path }

func (f fileStore) load() (CanaryState, bool, error) {
	var st CanaryState
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("canary.state_file: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("canary.state_file %s is not a canary state (%v): move it away to start afresh", f.path, err)
	}
	return st, true, nil
}

func (f fileStore) save(st CanaryState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(f.path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("canary.state_file: %w", err)
		}
	}
	return record.WriteFileAtomic(f.path, append(b, '\n'))
}

// controllerDeps are what a controller reports to and reads from.
type controllerDeps struct {
	clock      clockwork.Clock
	store      stateStore
	log        *slog.Logger
	tl         timeline
	onRollback func()
}

func newController(cfg config.Canary, mode, primary, candidate string, d controllerDeps) (*controller, error) {
	c := &controller{cfg: cfg, mode: mode, pair: [2]string{primary, candidate}, clock: d.clock, store: d.store, log: d.log,
		tl: d.tl, onRollback: d.onRollback, win: newWindow(cfg.Window.D()), step: newWindow(0)}
	st, err := c.resume()
	if err != nil {
		return nil, err
	}
	c.st = st
	c.pct.Store(math.Float64bits(st.Percent))
	if err := c.store.save(c.st); err != nil {
		return nil, err
	}
	return c, nil
}

// fresh is the state of a rollout that starts now.
func (c *controller) fresh(now time.Time) CanaryState {
	st := CanaryState{Primary: c.pair[0], Candidate: c.pair[1], Step: -1, Percent: *c.cfg.Percent, StepStarted: now}
	if len(c.cfg.Steps) > 0 {
		st.Step, st.Percent = 0, c.cfg.Steps[0].Percent
	}
	if c.mode == config.ModeCutover {
		st.Step, st.Percent = -1, 100
	}
	return st
}

// resume continues from the saved state when it belongs to this primary
// and candidate; a restart never raises the share.
func (c *controller) resume() (CanaryState, error) {
	now := c.clock.Now()
	fresh := c.fresh(now)
	st, found, err := c.store.load()
	if err != nil {
		return fresh, err
	}
	if !found {
		fresh.History = []Transition{{Time: now, Kind: "start", To: fresh.Percent, Step: fresh.Step, Reason: "no saved state: starting"}}
		return fresh, nil
	}
	if st.Primary != fresh.Primary || st.Candidate != fresh.Candidate {
		return fresh, fmt.Errorf("%s is the rollout of %s → %s, not %s → %s: choose another or remove it",
			c.store.where(), st.Primary, st.Candidate, fresh.Primary, fresh.Candidate)
	}
	from := st.Percent
	if !st.RolledBack && len(c.cfg.Steps) > 0 && !st.Manual {
		st.Step = min(max(st.Step, 0), len(c.cfg.Steps)-1)
	}
	st.Percent = c.ceiling(st)
	st.StepStarted = now // a step's figures start again with the process
	st.History = append(st.History, Transition{Time: now, Kind: "resume", From: from, To: st.Percent, Step: st.Step,
		Reason: "restarted: resuming from the saved state, never higher"})
	return st, nil
}

// ceiling is the highest share st may resume at: 0 after a rollback, at
// most its step's share (or canary.percent) unless an operator set it.
func (c *controller) ceiling(st CanaryState) float64 {
	switch {
	case st.RolledBack:
		return 0
	case len(c.cfg.Steps) > 0 && !st.Manual:
		return math.Min(st.Percent, c.cfg.Steps[min(max(st.Step, 0), len(c.cfg.Steps)-1)].Percent)
	case c.mode == config.ModeCanary && !st.Manual:
		return math.Min(st.Percent, *c.cfg.Percent)
	}
	return st.Percent
}

// Percent is the share of classification calls the candidate answers now.
func (c *controller) Percent() float64 { return math.Float64frombits(c.pct.Load()) }

// observe counts one candidate answer on the request path.
func (c *controller) observe(lat time.Duration, failed bool) {
	now := c.clock.Now()
	c.win.add(now, lat, failed)
	c.step.add(now, lat, failed)
}

// set changes the share and records why: log, run directory, metrics,
// saved state. Callers hold mu.
func (c *controller) set(kind string, to float64, reason string, f *Figures) {
	from := c.st.Percent
	c.st.Percent = to
	c.pct.Store(math.Float64bits(to))
	t := Transition{Time: c.clock.Now(), Kind: kind, From: from, To: to, Step: c.st.Step, Reason: reason}
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
	level := c.log.Info
	if kind == "rollback" {
		level = c.log.Warn
		c.onRollback()
	}
	level("canary "+kind, "from", from, "to", to, "step", c.st.Step, "reason", reason)
	c.tl.Event("canary_"+kind, fmt.Sprintf("%s: %g%% → %g%%: %s", kind, from, to, reason), data)
	if err := c.store.save(c.st); err != nil {
		c.log.Error("canary state not saved", "err", err)
	}
}

// run evaluates the gates every canary.evaluate_every until stop is closed.
func (c *controller) run(stop <-chan struct{}) {
	t := c.clock.NewTicker(c.cfg.EvaluateEvery.D())
	defer t.Stop()
	for {
		select {
		case now := <-t.Chan():
			c.evaluate(now)
		case <-stop:
			return
		}
	}
}

// evaluate judges the rolling window (rollback) and, with steps, the
// current step (advance, hold or roll back).
func (c *controller) evaluate(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.evaluations.Add(1)
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
	f, h := c.step.figures(now)
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
	w, h := c.win.figures(now)
	return judgeRollback(c.cfg.Rollback, w, h)
}

// judgeRollback is crossed for given figures (one replica's or a
// fleet's pooled window).
func judgeRollback(rb config.RollbackGates, w Figures, h *hdrhistogram.Histogram) (string, Figures, bool) {
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
	c.st.StepStarted = c.clock.Now()
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
			c.st.StepStarted = c.clock.Now()
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
	c.st.StepStarted = c.clock.Now()
	c.step.reset()
	c.set("promote", c.cfg.Steps[c.st.Step].Percent, "promoted by an operator (POST /admin/promote)", nil)
}

// state is a copy of the rollout's state.
func (c *controller) state() CanaryState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.History = append([]Transition(nil), c.st.History...)
	return st
}

// status is GET /admin/canary's body.
func (c *controller) status() map[string]any {
	now := c.clock.Now()
	st := c.state()
	wf, _ := c.win.figures(now)
	sf, _ := c.step.figures(now)
	return map[string]any{"mode": c.mode, "state": st, "window": wf, "step_figures": sf,
		"steps": c.cfg.Steps, "rollback": c.cfg.Rollback}
}
