package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jonboulle/clockwork"

	"github.com/cutover/cutover/proxy/fleet"
	"github.com/cutover/cutover/record"
)

// Keys of the fleet's bucket.
const (
	keyState   = "canary.state"
	keyLease   = "canary.lease"
	keyReplica = "replica." // + name
	keySpend   = "spend."   // + UTC day
	keyImage   = "img."     // + SHA-256, in the dedupe bucket
)

// fleetMember is this replica in a fleet (proxy.fleet): it keeps the
// canary state in the bucket (compare-and-set), watches it, publishes its
// window figures every second, and judges the gates on the fleet's
// pooled figures while it holds the lease.
type fleetMember struct {
	store    *fleet.Store
	name     string
	clock    clockwork.Clock
	log      *slog.Logger
	leaseTTL time.Duration
	ctl      *controller // set once the controller exists

	holder       atomic.Bool
	wasConnected atomic.Bool
}

// ReplicaStatus is one replica as it published itself (GET /admin/canary's
// replicas; cutover canary status).
type ReplicaStatus struct {
	Name        string    `json:"name"`
	LastSeen    time.Time `json:"last_seen"`
	Percent     float64   `json:"percent"`
	Step        int       `json:"step"`
	LeaseHolder bool      `json:"lease_holder"`
	Window      Figures   `json:"window"`
	StepFigures Figures   `json:"step_figures"`
	WindowHist  []byte    `json:"window_hist,omitempty"`
	StepHist    []byte    `json:"step_hist,omitempty"`
}

type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

func (m *fleetMember) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 3*time.Second)
}

// fleetStateStore keeps the canary state under keyState.
type fleetStateStore struct {
	store  *fleet.Store
	bucket string
}

func (f fleetStateStore) where() string { return "the fleet's bucket " + f.bucket }

func (f fleetStateStore) latest() (CanaryState, uint64, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var st CanaryState
	e, err := f.store.Get(ctx, keyState)
	if errors.Is(err, fleet.ErrNotFound) {
		return st, 0, false, nil
	}
	if err != nil {
		return st, 0, false, err
	}
	if err := json.Unmarshal(e.Value, &st); err != nil {
		return st, 0, false, fmt.Errorf("%s: %s is not a canary state: %w", f.where(), keyState, err)
	}
	return st, e.Revision, true, nil
}

func (f fleetStateStore) put(st CanaryState, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = f.store.Create(ctx, keyState, b)
	} else {
		rev, err = f.store.Update(ctx, keyState, b, rev)
	}
	if errors.Is(err, fleet.ErrConflict) {
		return 0, errConflict
	}
	return rev, err
}

func (m *fleetMember) connected() bool { return m.store.Connected() }

// judge takes or renews the lease: free, expired, or already ours.
func (m *fleetMember) judge(now time.Time) bool {
	ok := m.takeLease(now)
	m.holder.Store(ok)
	return ok
}

func (m *fleetMember) takeLease(now time.Time) bool {
	ctx, cancel := m.ctx()
	defer cancel()
	b, _ := json.Marshal(lease{Holder: m.name, Until: now.Add(m.leaseTTL)})
	e, err := m.store.Get(ctx, keyLease)
	switch {
	case errors.Is(err, fleet.ErrNotFound):
		_, err = m.store.Create(ctx, keyLease, b)
		return err == nil
	case err != nil:
		return false
	}
	var l lease
	if json.Unmarshal(e.Value, &l) == nil && l.Holder != m.name && now.Before(l.Until) {
		return false
	}
	_, err = m.store.Update(ctx, keyLease, b, e.Revision)
	return err == nil
}

// releaseLease hands the lease back at shutdown, so that another replica
// judges the next window without waiting for it to expire.
func (m *fleetMember) releaseLease() {
	if !m.holder.Load() {
		return
	}
	ctx, cancel := m.ctx()
	defer cancel()
	e, err := m.store.Get(ctx, keyLease)
	if err != nil {
		return
	}
	var l lease
	if json.Unmarshal(e.Value, &l) != nil || l.Holder != m.name {
		return
	}
	b, _ := json.Marshal(lease{Holder: m.name, Until: time.Time{}})
	m.store.Update(ctx, keyLease, b, e.Revision)
	m.holder.Store(false)
}

// pooled adds the other live replicas' published figures to this
// replica's own; step figures only from replicas on the same step.
func (m *fleetMember) pooled(now time.Time, step int, win, stepWin pooledFigures) (pooledFigures, pooledFigures) {
	win = pooledFigures{f: win.f, h: copyHist(win.h)}
	stepWin = pooledFigures{f: stepWin.f, h: copyHist(stepWin.h)}
	for _, r := range m.replicas() {
		if r.Name == m.name || now.Sub(r.LastSeen) > m.leaseTTL {
			continue
		}
		add(&win, r.Window, r.WindowHist)
		if r.Step == step {
			add(&stepWin, r.StepFigures, r.StepHist)
		}
	}
	win.f, stepWin.f = finish(win.f, win.h), finish(stepWin.f, stepWin.h)
	return win, stepWin
}

func copyHist(h *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	c := windowHist()
	c.Merge(h)
	return c
}

func add(p *pooledFigures, f Figures, enc []byte) {
	p.f.Requests += f.Requests
	p.f.Errors += f.Errors
	if len(enc) > 0 {
		if h, err := hdrhistogram.Decode(enc); err == nil {
			p.h.Merge(h)
		}
	}
}

// replicas lists the replicas' published figures, by name.
func (m *fleetMember) replicas() []ReplicaStatus {
	ctx, cancel := m.ctx()
	defer cancel()
	es, err := m.store.List(ctx, keyReplica)
	if err != nil {
		return nil
	}
	var out []ReplicaStatus
	for _, e := range es {
		var r ReplicaStatus
		if json.Unmarshal(e.Value, &r) == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// publish puts this replica's figures under replica.<name>.
func (m *fleetMember) publish(now time.Time) {
	c := m.ctl
	c.mu.Lock()
	st := c.st
	win, step := c.figures(now)
	c.mu.Unlock()
	r := ReplicaStatus{Name: m.name, LastSeen: now, Percent: c.Percent(), Step: st.Step, LeaseHolder: m.holder.Load(),
		Window: win.f, StepFigures: step.f}
	r.WindowHist, _ = win.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	r.StepHist, _ = step.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	ctx, cancel := m.ctx()
	defer cancel()
	m.store.Put(ctx, keyReplica+fleetKey(m.name), b)
}

// run keeps this replica in step with the fleet until stop: it watches
// the canary state (a change applies at once), and every second it
// publishes its figures and reads the state again (a watch lost while
// NATS was away cannot leave it behind); when the fleet is reachable
// again after an outage the controller reconciles with it first.
func (m *fleetMember) run(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var watching <-chan struct{}
	watch := func() {
		d, err := m.store.Watch(ctx, keyState, func(e fleet.Entry) {
			if e.Deleted {
				return
			}
			var st CanaryState
			if json.Unmarshal(e.Value, &st) == nil {
				m.ctl.adopt(st, e.Revision)
			}
		})
		if err != nil {
			m.log.Warn("fleet: watching the canary state", "err", err)
			return
		}
		watching = d
	}
	watch()
	m.wasConnected.Store(m.connected())
	t := m.clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.Chan():
			up := m.connected()
			if up && !m.wasConnected.Load() {
				m.log.Info("fleet: reachable again: reconciling the canary state")
				m.ctl.reconcile()
			}
			m.wasConnected.Store(up)
			if !up {
				m.holder.Store(false)
				continue
			}
			select {
			case <-watching:
				watch()
			default:
				if watching == nil {
					watch()
				}
			}
			m.sync()
			m.publish(now)
		case <-stop:
			m.releaseLease()
			return
		}
	}
}

// sync adopts the bucket's state if it is newer than this replica's.
func (m *fleetMember) sync() {
	st, rev, found, err := fleetStateStore{store: m.store}.latest()
	if err == nil && found {
		m.ctl.adopt(st, rev)
	}
}

// fleetKey makes a name safe as a key token (NATS KV keys allow letters,
// digits and -_=./).
func fleetKey(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			return r
		}
		return '_'
	}, name)
}

// fleetSpend is the daily spend cap shared by the fleet: every
// reservation is an atomic (compare-and-set) increment of the day's key,
// so the fleet spends at most the cap plus what its estimates of calls in
// flight undershoot. With NATS out of reach nothing is reserved: the
// mirror pauses rather than spend unaccounted.
type fleetSpend struct {
	store   *fleet.Store
	limit   float64
	onPause func(detail string, data map[string]any)

	mu      sync.Mutex
	day     string
	spent   float64 // the fleet's, as last read
	stopped bool
}

type spendValue struct {
	Spent float64 `json:"spent"`
}

func (s *fleetSpend) roll(now time.Time) string {
	d := now.UTC().Format(time.DateOnly)
	if d != s.day {
		s.day, s.spent, s.stopped = d, 0, false
	}
	return d
}

func (s *fleetSpend) paused(now time.Time) bool {
	if s.limit <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(now)
	return s.stopped
}

func (s *fleetSpend) reserve(est float64, now time.Time) string {
	if s.limit <= 0 {
		return ""
	}
	s.mu.Lock()
	day := s.roll(now)
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return record.SkipDailySpend
	}
	if !s.store.Connected() {
		return record.SkipFleetDisconnected
	}
	spent, err := s.addTo(day, est, func(cur float64) bool { return cur+est <= s.limit })
	switch {
	case errors.Is(err, errOverLimit):
		s.mu.Lock()
		if !s.stopped && s.day == day {
			s.stopped = true
			s.spent = spent
			s.onPause(pauseDetail(day, spent+est, s.limit)+" (the fleet's spend)", map[string]any{"spent": spent, "limit": s.limit, "scope": "fleet"})
		}
		s.mu.Unlock()
		return record.SkipDailySpend
	case err != nil:
		return record.SkipFleetDisconnected
	}
	s.mu.Lock()
	s.spent = spent
	s.mu.Unlock()
	return ""
}

func (s *fleetSpend) settle(est, actual float64, at time.Time) {
	if s.limit <= 0 || actual == est {
		return
	}
	day := at.UTC().Format(time.DateOnly)
	if spent, err := s.addTo(day, actual-est, nil); err == nil {
		s.mu.Lock()
		if s.day == day {
			s.spent = spent
		}
		s.mu.Unlock()
	}
}

func (s *fleetSpend) state() (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spent, s.stopped
}

var errOverLimit = errors.New("over the daily limit")

// addTo adds delta to day's spend by compare-and-set, retried on
// conflict, if ok allows the current value; it returns the new value (or
// the current one when ok refused).
func (s *fleetSpend) addTo(day string, delta float64, ok func(cur float64) bool) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	key := keySpend + day
	for attempt := 0; attempt < 32; attempt++ {
		var cur spendValue
		var rev uint64
		e, err := s.store.Get(ctx, key)
		switch {
		case errors.Is(err, fleet.ErrNotFound):
		case err != nil:
			return 0, err
		default:
			if err := json.Unmarshal(e.Value, &cur); err != nil {
				return 0, fmt.Errorf("%s is not a spend: %w", key, err)
			}
			rev = e.Revision
		}
		if ok != nil && !ok(cur.Spent) {
			return cur.Spent, errOverLimit
		}
		b, _ := json.Marshal(spendValue{Spent: max(0, cur.Spent+delta)})
		if rev == 0 {
			_, err = s.store.Create(ctx, key, b)
		} else {
			_, err = s.store.Update(ctx, key, b, rev)
		}
		if errors.Is(err, fleet.ErrConflict) {
			continue
		}
		return cur.Spent + delta, err
	}
	return 0, errors.New("the fleet's spend keeps changing")
}

// fleetDedupe is mirror.dedupe_scope: fleet: an image mirrored by any
// replica within the window is not mirrored again. Without NATS it falls
// back to this replica's own memory.
type fleetDedupe struct {
	store *fleet.Store
	local *localDedupe
}

func (d *fleetDedupe) seen(sha string, now time.Time) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	first, err := d.store.FirstSeen(ctx, keyImage+sha)
	if err != nil {
		return d.local.seen(sha, now)
	}
	d.local.seen(sha, now) // remembered locally too, for an outage
	return !first
}

func (d *fleetDedupe) sweep(now time.Time) { d.local.sweep(now) }
