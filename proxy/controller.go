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

	// fleet shares the rollout among replicas (proxy.fleet); nil for one process.
	fleet coordinator
	name  string // this replica's, in a fleet

	pct atomic.Uint64 // math.Float64bits of the current percent: read on every request

	// evaluations counts finished evaluations (tests wait on it).
	evaluations atomic.Int64

	mu   sync.Mutex
	st   CanaryState
	rev  uint64 // the saved state's revision (fleet: the bucket's)
	seen int64  // the last transition applied here (its Seq)
	// pendingRollback is a rollback decided while the fleet was out of
	// reach, to write to the bucket when it returns (a rollback always
	// wins over an advance).
	pendingRollback *Transition
	win             *window
	step            *window // since the current step began (one slot, never expires)
}

// coordinator is a fleet of replicas sharing one rollout: who judges the
// gates (a lease), on what figures (the fleet's pooled windows), and
// whether the fleet's store is reachable.
type coordinator interface {
	// connected reports whether the fleet's store is reachable.
	connected() bool
	// judge reports whether this replica judges the gates now: it holds,
	// or has just taken, the lease.
	judge(now time.Time) bool
	// pooled adds the other live replicas' published figures to this
	// replica's window and step figures.
	pooled(now time.Time, step int, win, stepWin pooledFigures) (pooledFigures, pooledFigures)
}

// pooledFigures are window figures with their histogram.
type pooledFigures struct {
	f Figures
	h *hdrhistogram.Histogram
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
	// Seq numbers the transitions of a rollout from 1 (0 in a state saved
	// before transitions were numbered).
	Seq  int64     `json:"seq,omitempty"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"` // start, resume, advance, rollback, set, pause, promote, complete
	// By is the replica that made the change (a fleet; "" for one process).
	By      string         `json:"by,omitempty"`
	From    float64        `json:"from"`
	To      float64        `json:"to"`
	Step    int            `json:"step"`
	Reason  string         `json:"reason"`
	Figures map[string]any `json:"figures,omitempty"`
}

// stateStore persists a rollout's state.
type stateStore interface {
	// latest returns the saved state and its revision; found is false
	// when there is none.
	latest() (st CanaryState, rev uint64, found bool, err error)
	// put saves st if the saved revision is still rev (errConflict
	// otherwise) and returns the new revision. A store of one process
	// ignores revisions.
	put(st CanaryState, rev uint64) (uint64, error)
	// where names the store in messages.
	where() string
}

// errConflict: the saved state changed since it was read.
var errConflict = errors.New("the canary state changed concurrently")

// fileStore keeps the state in canary.state_file, written atomically
// (write, fsync, rename).
type fileStore struct{ path string }

func (f fileStore) where() string { return "canary.state_file " + f.path }

func (f fileStore) latest() (CanaryState, uint64, bool, error) {
	var st CanaryState
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return st, 0, false, nil
	}
	if err != nil {
		return st, 0, false, fmt.Errorf("canary.state_file: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, 0, false, fmt.Errorf("canary.state_file %s is not a canary state (%v): move it away to start afresh", f.path, err)
	}
	return st, 0, true, nil
}

func (f fileStore) put(st CanaryState, _ uint64) (uint64, error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return 0, err
	}
	if dir := filepath.Dir(f.path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, fmt.Errorf("canary.state_file: %w", err)
		}
	}
	return 0, record.WriteFileAtomic(f.path, append(b, '\n'))
}

// controllerDeps are what a controller reports to and reads from.
type controllerDeps struct {
	clock      clockwork.Clock
	store      stateStore
	log        *slog.Logger
	tl         timeline
	onRollback func()
	// fleet, with a store shared by the replicas; nil for one process.
	fleet coordinator
	// name is this replica's in a fleet.
	name string
}

func newController(cfg config.Canary, mode, primary, candidate string, d controllerDeps) (*controller, error) {
	c := &controller{cfg: cfg, mode: mode, pair: [2]string{primary, candidate}, clock: d.clock, store: d.store, log: d.log,
		tl: d.tl, onRollback: d.onRollback, fleet: d.fleet, name: d.name, win: newWindow(cfg.Window.D()), step: newWindow(0)}
	if c.fleet != nil {
		return c, c.join()
	}
	st, err := c.resume()
	if err != nil {
		return nil, err
	}
	if _, err := c.store.put(st, 0); err != nil {
		return nil, err
	}
	c.st = st
	c.seen = lastSeq(st)
	c.pct.Store(math.Float64bits(st.Percent))
	return c, nil
}

// join adopts the fleet's rollout, or starts it when there is none (the
// replica that creates it first wins; the others adopt it).
func (c *controller) join() error {
	for attempt := 0; attempt < 5; attempt++ {
		st, rev, found, err := c.store.latest()
		if err != nil {
			return fmt.Errorf("joining the fleet's canary: %w", err)
		}
		if found {
			if st.Primary != c.pair[0] || st.Candidate != c.pair[1] {
				return fmt.Errorf("%s is the rollout of %s → %s, not %s → %s: use another proxy.fleet.bucket",
					c.store.where(), st.Primary, st.Candidate, c.pair[0], c.pair[1])
			}
			c.mu.Lock()
			c.rev, c.seen = rev, lastSeq(st)
			c.install(st)
			c.mu.Unlock()
			return nil
		}
		now := c.clock.Now()
		st = c.fresh(now)
		st.History = []Transition{{Seq: 1, Time: now, Kind: "start", To: st.Percent, Step: st.Step, By: c.name, Reason: "no saved state: starting"}}
		rev, err = c.store.put(st, 0)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("starting the fleet's canary: %w", err)
		}
		c.mu.Lock()
		c.rev, c.seen = rev, 1
		c.install(st)
		c.mu.Unlock()
		return nil
	}
	return fmt.Errorf("%s keeps changing: could not join the fleet's canary", c.store.where())
}

func lastSeq(st CanaryState) int64 {
	if n := len(st.History); n > 0 {
		return st.History[n-1].Seq
	}
	return 0
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
	st, _, found, err := c.store.latest()
	if err != nil {
		return fresh, err
	}
	if !found {
		fresh.History = []Transition{{Seq: 1, Time: now, Kind: "start", To: fresh.Percent, Step: fresh.Step, Reason: "no saved state: starting"}}
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
	st.History = append(st.History, Transition{Seq: lastSeq(st) + 1, Time: now, Kind: "resume", From: from, To: st.Percent, Step: st.Step,
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

// transition changes st's share and appends why to its history.
func (c *controller) transition(st *CanaryState, kind string, to float64, reason string, f *Figures) {
	t := Transition{Seq: lastSeq(*st) + 1, Time: c.clock.Now(), Kind: kind, From: st.Percent, To: to, Step: st.Step, By: c.name, Reason: reason}
	if f != nil {
		t.Figures = f.asMap()
	}
	st.Percent = to
	st.History = append(st.History, t)
	if len(st.History) > 1000 {
		st.History = st.History[len(st.History)-1000:]
	}
}

// mutate applies fn to the rollout's latest state and saves it: in one
// process the state in memory; in a fleet the bucket's, by
// compare-and-set on its revision, read again and retried when another
// replica changed it first. fn returns false to change nothing. Callers
// hold mu.
func (c *controller) mutate(fn func(st *CanaryState) bool) error {
	for attempt := 0; attempt < 8; attempt++ {
		st, rev := c.st.clone(), c.rev
		if c.fleet != nil {
			latest, r, found, err := c.store.latest()
			if err != nil {
				return err
			}
			if found {
				st, rev = latest, r
			}
		}
		if !fn(&st) {
			return nil
		}
		nrev, err := c.store.put(st, rev)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return err
		}
		c.rev = nrev
		c.apply(st)
		return nil
	}
	return fmt.Errorf("%s keeps changing: the change was not saved", c.store.where())
}

// adopt applies a state another replica saved (the fleet's watch).
func (c *controller) adopt(st CanaryState, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.rev || st.Primary != c.pair[0] || st.Candidate != c.pair[1] {
		return
	}
	c.rev = rev
	c.apply(st)
}

// apply makes st this replica's state: the share the request path reads,
// the step's window, and the transitions it has not applied yet, each
// logged and recorded once in this replica's run. Callers hold mu.
func (c *controller) apply(st CanaryState) {
	for _, t := range st.History {
		if t.Seq <= c.seen {
			continue
		}
		c.seen = t.Seq
		data := map[string]any{"from": t.From, "percent": t.To, "step": t.Step}
		if t.By != "" {
			data["by"] = t.By
		}
		for k, v := range t.Figures {
			data[k] = v
		}
		level := c.log.Info
		if t.Kind == "rollback" {
			level = c.log.Warn
			c.onRollback()
		}
		level("canary "+t.Kind, "from", t.From, "to", t.To, "step", t.Step, "reason", t.Reason)
		c.tl.Event("canary_"+t.Kind, fmt.Sprintf("%s: %g%% → %g%%: %s", t.Kind, t.From, t.To, t.Reason), data)
	}
	c.install(st)
}

// install sets the state without recording anything. Callers hold mu.
func (c *controller) install(st CanaryState) {
	if st.Step != c.st.Step || !st.StepStarted.Equal(c.st.StepStarted) {
		c.step.reset()
	}
	c.st = st
	c.pct.Store(math.Float64bits(st.Percent))
}

// clone copies st, its history included.
func (st CanaryState) clone() CanaryState {
	st.History = append([]Transition(nil), st.History...)
	return st
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
// current step (advance, hold or roll back). In a fleet only the lease
// holder judges, on the fleet's pooled figures; a replica that cannot
// reach the fleet judges only its own window, and only to roll back.
func (c *controller) evaluate(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.evaluations.Add(1)
	if c.st.RolledBack || c.st.Percent <= 0 {
		return
	}
	win, step := c.figures(now)
	if c.fleet != nil && !c.fleet.connected() {
		if reason, f, crossed := judgeRollback(c.cfg.Rollback, win.f, win.h); crossed {
			c.localRollback(reason, &f)
		}
		return
	}
	if c.fleet != nil {
		if !c.fleet.judge(now) {
			return
		}
		win, step = c.fleet.pooled(now, c.st.Step, win, step)
	}
	if reason, f, crossed := judgeRollback(c.cfg.Rollback, win.f, win.h); crossed {
		c.rollback(reason, &f)
		return
	}
	if len(c.cfg.Steps) == 0 || c.st.Step < 0 || c.st.Paused || c.st.Manual || c.st.Complete {
		return
	}
	s := c.cfg.Steps[c.st.Step]
	if step.f.Requests < int64(s.MinRequests) {
		return
	}
	status, why := judgeStep(s, step.f, step.h)
	switch {
	case status == "fail":
		c.rollback(fmt.Sprintf("step %d (%g%%) gates failed: %s", c.st.Step+1, s.Percent, why), &step.f)
	case status == "pass" && now.Sub(c.st.StepStarted) >= s.MinDuration.D():
		c.advance("step gates passed: "+why, &step.f)
	}
}

// figures are this replica's own window and step figures.
func (c *controller) figures(now time.Time) (win, step pooledFigures) {
	win.f, win.h = c.win.figures(now)
	step.f, step.h = c.step.figures(now)
	return win, step
}

// localRollback drops this replica's share to 0 while the fleet is out of
// reach, and keeps the transition to write when it returns. Callers hold mu.
func (c *controller) localRollback(reason string, f *Figures) {
	st := c.st.clone()
	st.RolledBack = true
	c.transition(&st, "rollback", 0, reason+" (judged by this replica alone: the fleet is out of reach)", f)
	t := st.History[len(st.History)-1]
	c.pendingRollback = &t
	c.apply(st)
}

// reconcile runs when the fleet is reachable again: a rollback decided
// while it was not is written to the bucket (a rollback always wins over
// an advance); otherwise the bucket's state is adopted.
func (c *controller) reconcile() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pendingRollback; p != nil {
		err := c.mutate(func(st *CanaryState) bool {
			if st.RolledBack {
				return false
			}
			st.RolledBack = true
			c.transition(st, "rollback", 0, p.Reason, nil)
			st.History[len(st.History)-1].Figures = p.Figures
			return true
		})
		if err != nil {
			c.log.Warn("fleet: the rollback decided while disconnected is not saved yet", "err", err)
			return
		}
		c.pendingRollback = nil
	}
	st, rev, found, err := c.store.latest()
	if err != nil || !found {
		return
	}
	if rev > c.rev {
		c.rev = rev
		c.apply(st)
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

// rollback drops the share to 0. Callers hold mu.
func (c *controller) rollback(reason string, f *Figures) {
	err := c.mutate(func(st *CanaryState) bool {
		if st.RolledBack {
			return false
		}
		st.RolledBack = true
		c.transition(st, "rollback", 0, reason, f)
		return true
	})
	if err != nil {
		c.log.Error("canary rollback not saved: rolling back this replica alone", "err", err)
		c.localRollback(reason, f)
	}
}

// advance moves to the next step (or marks the last complete). Callers
// hold mu.
func (c *controller) advance(reason string, f *Figures) {
	from := c.st.Step
	c.save(func(st *CanaryState) bool {
		if st.RolledBack || st.Step != from || st.Paused || st.Manual || st.Complete {
			return false // changed meanwhile: a rollback wins over an advance
		}
		if st.Step+1 >= len(c.cfg.Steps) {
			st.Complete = true
			c.transition(st, "complete", st.Percent, "last step passed: "+reason, f)
			return true
		}
		st.Step++
		st.StepStarted = c.clock.Now()
		c.transition(st, "advance", c.cfg.Steps[st.Step].Percent, reason, f)
		return true
	})
}

// save is mutate for the controller's own decisions: a failure is logged
// (the state stays as it was; the next evaluation tries again).
func (c *controller) save(fn func(st *CanaryState) bool) {
	if err := c.mutate(fn); err != nil {
		c.log.Error("canary state not saved", "err", err)
	}
}

// Admin actions (POST /admin/…): each changes the latest state (the
// fleet's, for every replica) or returns why it could not.

func (c *controller) setPercent(pct float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mutate(func(st *CanaryState) bool {
		st.Manual, st.RolledBack, st.Complete = true, false, false
		c.transition(st, "set", pct, "set by an operator (POST /admin/canary)", nil)
		return true
	})
}

func (c *controller) pause(paused bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mutate(func(st *CanaryState) bool {
		st.Paused = paused
		kind, reason := "pause", "paused by an operator: steps do not advance"
		if !paused {
			kind, reason = "resume", "resumed by an operator"
			if st.RolledBack || st.Manual {
				// Resuming after a rollback or a manual share restarts the
				// current step from its own share.
				st.RolledBack, st.Manual = false, false
				st.StepStarted = c.clock.Now()
				to := *c.cfg.Percent
				if st.Step >= 0 {
					to = c.cfg.Steps[st.Step].Percent
				}
				c.transition(st, kind, to, reason+": the current step starts again", nil)
				return true
			}
		}
		c.transition(st, kind, st.Percent, reason, nil)
		return true
	})
}

func (c *controller) operatorRollback() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mutate(func(st *CanaryState) bool {
		st.RolledBack = true
		c.transition(st, "rollback", 0, "rolled back by an operator (POST /admin/rollback)", nil)
		return true
	})
}

// promote moves to the next step now (or to 100 % without steps).
func (c *controller) promote() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mutate(func(st *CanaryState) bool {
		st.RolledBack, st.Manual = false, false
		if len(c.cfg.Steps) == 0 || st.Step < 0 {
			c.transition(st, "promote", 100, "promoted by an operator (POST /admin/promote)", nil)
			return true
		}
		if st.Step+1 < len(c.cfg.Steps) {
			st.Step++
		}
		st.StepStarted = c.clock.Now()
		c.transition(st, "promote", c.cfg.Steps[st.Step].Percent, "promoted by an operator (POST /admin/promote)", nil)
		return true
	})
}

// state is a copy of the rollout's state.
func (c *controller) state() CanaryState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.clone()
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
