// Package bench drives labelled fixtures through providers at a constant
// open-loop rate, paired image by image, and records every request into a
// run directory.
//
// Open loop: request i is due at start + i/rate whatever happened to the
// requests before it. Latency is measured from that intended send time
// (corrected for coordinated omission, as wrk2 does) and from the actual
// send time (service time); both are recorded. Workers grow as needed to
// keep the schedule, up to MaxInFlight; when all are busy a start waits for
// the next free worker and is counted as a missed start (k6 calls them
// dropped iterations) — its latency still runs from its intended time, so
// the wait is never silently absorbed.
//
// Paired design: each image is sent to every provider in consecutive slots,
// in an order shuffled per image, so providers are compared on the same
// images in the same minutes. Repeats send the image again (self-agreement).
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// Target is one provider under test.
type Target struct {
	Name     string
	Client   *vision.Client
	Provider *config.Provider
}

// Job is one scheduled request.
type Job struct {
	// Offset is the intended send time from the start of the run.
	Offset time.Duration
	Target int
	Image  vision.Image
	// FixtureID is the image's label id ("" for unlabelled replays).
	FixtureID string
	PairID    string
	Repeat    int
	Warmup    bool

	label *fixtures.Item // the fixture's label, for live accuracy
}

// Source produces the jobs of a run in intended-time order; ok is false
// when it is exhausted.
type Source interface {
	Next() (Job, bool)
}

// Options configure a run.
type Options struct {
	Targets []Target
	// Rate is requests per second over all providers; 0 is closed loop.
	Rate float64
	// Concurrency is the worker count in closed loop.
	Concurrency int
	// Duration bounds the measured part; Warmup precedes it, unrecorded.
	Duration, Warmup time.Duration
	// MaxInFlight caps concurrent requests in open loop. Default 1,024.
	MaxInFlight int
	Tax         *vision.Taxonomy
	Config      *config.Config
	Recorder    *record.Writer
	// Progress, if set, is called about every Interval with live figures.
	Progress func(Snapshot)
	Interval time.Duration
}

// Snapshot is the live state of a run.
type Snapshot struct {
	Elapsed      time.Duration
	Sent         int64
	Done         int64
	Errors       int64
	Throttled    int64
	MissedStarts int64
	AchievedRate float64
	Providers    []ProviderSnapshot
	ClosedLoop   bool
}

// ProviderSnapshot is one provider's live latency (corrected) and top-1
// accuracy so far.
type ProviderSnapshot struct {
	Name     string
	Count    int64
	P50, P99 time.Duration
	// Top1 is top-1 accuracy over answered, labelled images, scored as the
	// report scores it (compare.Tally).
	Top1 compare.Rate
}

// Summary is the outcome of a run.
type Summary struct {
	Mode         string
	Elapsed      time.Duration
	Scheduled    int64
	Sent         int64
	MissedStarts int64
	// LagP99 is the 99th percentile of actual − intended send time.
	LagP99      time.Duration
	LagMax      time.Duration
	Interrupted bool
	Providers   []ProviderSummary
}

// ProviderSummary holds one provider's figures.
type ProviderSummary struct {
	Name      string
	Requests  int64
	OK        int64
	Throttled int64
	Errors    map[vision.Code]int64
	// Corrected: from intended send time; Service: from actual send time.
	Corrected, Service *hdrhistogram.Histogram
	// Stats are the recorded observations' figures as `cutover report`
	// computes them (compare.Tally): accuracy against the fixtures,
	// self-agreement over repeats, errors, cost.
	Stats *compare.ProviderStats
}

type stats struct {
	mu        sync.Mutex
	corrected *hdrhistogram.Histogram
	service   *hdrhistogram.Histogram
	ps        ProviderSummary
	tally     *compare.Tally // locks itself
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(record.MinLatencyNS, record.MaxLatencyNS, record.SigFigs)
}

func clamp(ns int64) int64 { return min(max(ns, record.MinLatencyNS), record.MaxLatencyNS) }

// Run executes a run until src is exhausted, Duration passes or ctx ends.
func Run(ctx context.Context, src Source, opt Options) (Summary, error) {
	if len(opt.Targets) == 0 {
		return Summary{}, errors.New("bench: no providers")
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 1024
	}
	if opt.Interval <= 0 {
		opt.Interval = 2 * time.Second
	}
	r := &runner{opt: opt, lag: newHist()}
	var rc config.Report
	if opt.Config != nil {
		rc = opt.Config.Report
	}
	scorer := compare.NewScorer(opt.Tax, rc)
	for _, t := range opt.Targets {
		r.stats = append(r.stats, &stats{corrected: newHist(), service: newHist(),
			ps:    ProviderSummary{Name: t.Name, Errors: map[vision.Code]int64{}},
			tally: compare.NewTally(t.Name, scorer, opt.Config)})
	}
	mode := "open-loop"
	if opt.Rate <= 0 {
		mode = "closed-loop"
	}
	r.start = time.Now().Add(10 * time.Millisecond)
	stopProgress := r.progress(mode == "closed-loop")
	var err error
	if mode == "open-loop" {
		err = r.openLoop(ctx, src)
	} else {
		err = r.closedLoop(ctx, src)
	}
	r.wg.Wait()
	stopProgress()
	s := Summary{Mode: mode, Scheduled: r.scheduled.Load(), Sent: r.measured.Load(),
		MissedStarts: r.missed.Load(), Interrupted: ctx.Err() != nil}
	if last := r.lastSend.Load(); last > 0 {
		// The measured part runs from the end of the warm-up to the last send:
		// the achieved rate is sends over that span, not over the tail wait.
		s.Elapsed = time.Duration(last) - opt.Warmup
		if n := s.Sent; n > 1 && opt.Rate > 0 {
			s.Elapsed = max(s.Elapsed, time.Duration(float64(n-1)/opt.Rate*float64(time.Second)))
		}
	}
	r.lagMu.Lock()
	s.LagP99, s.LagMax = time.Duration(r.lag.ValueAtQuantile(99)), time.Duration(r.lag.Max())
	r.lagMu.Unlock()
	for _, st := range r.stats {
		st.mu.Lock()
		ps := st.ps
		ps.Corrected, ps.Service = st.corrected, st.service
		ps.Stats = st.tally.Stats()
		s.Providers = append(s.Providers, ps)
		st.mu.Unlock()
	}
	return s, err
}

type runner struct {
	opt       Options
	start     time.Time
	stats     []*stats
	wg        sync.WaitGroup
	idle      chan Job // idle workers take jobs here
	workers   atomic.Int64
	scheduled atomic.Int64
	sent      atomic.Int64
	measured  atomic.Int64 // sends after the warm-up
	lastSend  atomic.Int64 // ns from start of the latest send
	done      atomic.Int64
	missed    atomic.Int64
	errs      atomic.Int64
	throttled atomic.Int64
	lagMu     sync.Mutex
	lag       *hdrhistogram.Histogram
}

// openLoop paces jobs at their intended times, growing workers as needed.
// (Handing jobs to workers a little early so that each sleeps until its own
// due time was measured too: no lower lag on this machine, where the lag is
// the timer's wake-up itself, and a muddier definition of a missed start.)
func (r *runner) openLoop(ctx context.Context, src Source) error {
	r.idle = make(chan Job)
	defer close(r.idle)
	end := r.opt.Warmup + r.opt.Duration
	for {
		j, ok := src.Next()
		if !ok || (r.opt.Duration > 0 && j.Offset >= end) {
			return nil
		}
		j.Warmup = j.Offset < r.opt.Warmup
		if !waitUntil(ctx, r.start.Add(j.Offset)) {
			return nil
		}
		r.scheduled.Add(1)
		select {
		case r.idle <- j: // an idle worker took it
			continue
		default:
		}
		if r.workers.Load() < int64(r.opt.MaxInFlight) {
			r.workers.Add(1)
			r.wg.Add(1)
			go r.worker(ctx, j)
			continue
		}
		// Every worker is busy: the start is missed. Send it as soon as one
		// frees; its latency still counts from the intended time.
		r.missed.Add(1)
		select {
		case r.idle <- j:
		case <-ctx.Done():
			return nil
		}
	}
}

// preciseLead is how long before a due time waitUntil leaves Go's timer
// (millisecond wake-ups) for nanosleep (see preciseSleep).
const preciseLead = 2 * time.Millisecond

// waitUntil returns at due, false if ctx ended first: a cancellable Go
// timer for all but the last preciseLead, then nanosleep, which wakes on
// time (Ctrl-C waits at most that last stretch).
func waitUntil(ctx context.Context, due time.Time) bool {
	if d := time.Until(due) - preciseLead; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	if d := time.Until(due); d > 0 {
		preciseSleep(d)
	}
	return ctx.Err() == nil
}

func (r *runner) worker(ctx context.Context, j Job) {
	defer r.wg.Done()
	defer r.workers.Add(-1)
	for {
		r.do(ctx, j, r.start.Add(j.Offset))
		var ok bool
		if j, ok = <-r.idle; !ok {
			return
		}
	}
}

// closedLoop runs Concurrency workers back to back: each sends its next
// request as soon as the previous one is answered.
func (r *runner) closedLoop(ctx context.Context, src Source) error {
	var mu sync.Mutex
	end := r.start.Add(r.opt.Warmup + r.opt.Duration)
	n := max(r.opt.Concurrency, 1)
	// Start at r.start like the open loop: a job sent before it would have a
	// negative offset and be taken for warm-up (and not recorded).
	if d := time.Until(r.start); d > 0 {
		time.Sleep(d)
	}
	for w := 0; w < n; w++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for ctx.Err() == nil && (r.opt.Duration == 0 || time.Now().Before(end)) {
				mu.Lock()
				j, ok := src.Next()
				mu.Unlock()
				if !ok {
					return
				}
				now := time.Now()
				j.Offset = now.Sub(r.start)
				j.Warmup = r.opt.Warmup > 0 && j.Offset < r.opt.Warmup
				r.scheduled.Add(1)
				r.do(ctx, j, now)
			}
		}()
	}
	return nil
}

func (r *runner) do(ctx context.Context, j Job, intended time.Time) {
	t := r.opt.Targets[j.Target]
	if err := t.Client.Pace(ctx); err != nil {
		return
	}
	sendStart := time.Now()
	tracer := record.NewTracer(sendStart)
	r.sent.Add(1)
	if !j.Warmup {
		r.measured.Add(1)
		for off := sendStart.Sub(r.start).Nanoseconds(); ; {
			cur := r.lastSend.Load()
			if off <= cur || r.lastSend.CompareAndSwap(cur, off) {
				break
			}
		}
		r.lagMu.Lock()
		r.lag.RecordValue(clamp(sendStart.Sub(intended).Nanoseconds()))
		r.lagMu.Unlock()
	}
	res, err := t.Client.Do(tracer.Context(context.WithoutCancel(ctx)), vision.Request{Image: j.Image, MaxLabels: 10, Attributes: vision.AttributeKinds})
	end := time.Now()
	trace := tracer.Finish()
	r.done.Add(1)
	if j.Warmup {
		return
	}
	corrected, service := end.Sub(intended), end.Sub(sendStart)
	o := record.Observation{RequestID: fmt.Sprintf("%s-%s", j.PairID, t.Name), PairID: j.PairID, Time: intended, Provider: t.Name,
		Role: record.RoleBench, Status: 200, LatencyNS: corrected.Nanoseconds(), ServiceNS: service.Nanoseconds(),
		ImageSHA256: j.Image.SHA256, ImageSize: j.Image.Size, FixtureID: j.FixtureID, Repeat: j.Repeat, Trace: trace}
	st := r.stats[j.Target]
	usage := res.Usage
	var tags *vision.Tags
	if err != nil {
		e := vision.AsError(err)
		o.Status, o.Code, o.Error, usage = e.Status, string(e.Code), e.Message, e.Usage
		if e.Code == vision.CodeThrottled {
			r.throttled.Add(1)
		} else {
			r.errs.Add(1)
		}
	} else {
		tg := r.opt.Tax.Normalize(t.Client.Codec.Format(), res)
		tags = &tg
		o.Tags, o.PromptVersion, o.ConfidenceSource = tags, res.PromptVersion, res.ConfidenceSource
	}
	o.Usage = usage
	compare.PriceCall(r.opt.Config, t.Provider, &o)
	if r.opt.Recorder != nil {
		r.opt.Recorder.Record(o)
		r.opt.Recorder.ObserveLatency(t.Name+".service", service.Nanoseconds())
	}
	st.tally.Add(&o, j.label)
	st.mu.Lock()
	st.corrected.RecordValue(clamp(corrected.Nanoseconds()))
	st.service.RecordValue(clamp(service.Nanoseconds()))
	st.ps.Requests++
	switch {
	case err == nil:
		st.ps.OK++
	case vision.ErrorCode(err) == vision.CodeThrottled:
		st.ps.Throttled++
	default:
		st.ps.Errors[vision.ErrorCode(err)]++
	}
	st.mu.Unlock()
}

func (r *runner) progress(closed bool) func() {
	if r.opt.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.opt.Interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.opt.Progress(r.snapshot(closed))
			case <-stop:
				r.opt.Progress(r.snapshot(closed))
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (r *runner) snapshot(closed bool) Snapshot {
	el := time.Since(r.start)
	s := Snapshot{Elapsed: el, Sent: r.sent.Load(), Done: r.done.Load(), Errors: r.errs.Load(), Throttled: r.throttled.Load(),
		MissedStarts: r.missed.Load(), ClosedLoop: closed}
	if el > 0 {
		s.AchievedRate = float64(s.Sent) / el.Seconds()
	}
	for _, st := range r.stats {
		st.mu.Lock()
		ps := ProviderSnapshot{Name: st.ps.Name, Count: st.corrected.TotalCount(),
			P50: time.Duration(st.corrected.ValueAtQuantile(50)), P99: time.Duration(st.corrected.ValueAtQuantile(99))}
		st.mu.Unlock()
		ps.Top1 = st.tally.Top1()
		s.Providers = append(s.Providers, ps)
	}
	return s
}

// FixtureSource pairs fixtures across targets: image after image (shuffled
// per pass), each sent to every target in a per-image random order, at
// consecutive slots 1/rate apart; Passes passes over the set (0 = until the
// run ends). In closed loop the offsets are ignored.
type FixtureSource struct {
	Set     *fixtures.Set
	Images  []vision.Image
	Targets int
	Rate    float64
	Passes  int
	rng     *rand.Rand
	order   []int
	perm    []int
	pass    int
	idx     int
	slot    int64
	pending []Job
}

// NewFixtureSource loads every image of set into memory once.
func NewFixtureSource(set *fixtures.Set, targets int, rate float64, passes int, seed uint64) (*FixtureSource, error) {
	s := &FixtureSource{Set: set, Targets: targets, Rate: rate, Passes: passes, rng: rand.New(rand.NewPCG(seed, 0xbe7c4))}
	for _, it := range set.Items {
		b, err := set.ReadImage(it)
		if err != nil {
			return nil, err
		}
		s.Images = append(s.Images, vision.NewImage(b)) // hashed once, not per send
	}
	if len(s.Images) == 0 {
		return nil, errors.New("the fixture set is empty")
	}
	return s, nil
}

// Next implements Source.
func (s *FixtureSource) Next() (Job, bool) {
	if len(s.pending) == 0 {
		if s.order == nil || s.idx == len(s.order) {
			if s.order != nil {
				s.pass++
			}
			if s.Passes > 0 && s.pass >= s.Passes {
				return Job{}, false
			}
			s.order = s.rng.Perm(len(s.Images))
			s.idx = 0
		}
		i := s.order[s.idx]
		s.idx++
		it := s.Set.Items[i]
		im := s.Images[i]
		for _, t := range s.rng.Perm(s.Targets) {
			s.pending = append(s.pending, Job{Target: t, Image: im, FixtureID: it.ID, label: &s.Set.Items[i],
				PairID: fmt.Sprintf("%s-%d", it.ID, s.pass), Repeat: s.pass})
		}
	}
	j := s.pending[0]
	s.pending = s.pending[1:]
	if s.Rate > 0 {
		j.Offset = time.Duration(float64(s.slot) / s.Rate * float64(time.Second))
	}
	s.slot++
	return j, true
}

// sortedCodes lists codes with counts, in report order.
func sortedCodes(m map[vision.Code]int64) []vision.Code {
	var out []vision.Code
	for c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ReplaySource replays a recorded run's timing against the targets: each
// recorded primary (or bench) request is sent again at the same offset from
// the run's first request, with its stored image.
type ReplaySource struct {
	jobs []Job
	i    int
}

// NewReplaySource reads dir's observations (one per pair, in time order)
// and their images from dir/images. Requests whose image was not stored
// are counted in missing and left out.
func NewReplaySource(dir *record.Dir, targets int, set *fixtures.Set) (*ReplaySource, int, error) {
	type rec struct {
		t      time.Time
		sha    string
		pairID string
	}
	var recs []rec
	seen := map[string]bool{}
	err := dir.Observations(func(o record.Observation) error {
		if o.ImageSHA256 == "" || seen[o.PairID] || o.Role == record.RoleCandidate {
			return nil
		}
		seen[o.PairID] = true
		recs = append(recs, rec{o.Time, o.ImageSHA256, o.PairID})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].t.Before(recs[j].t) })
	s := &ReplaySource{}
	missing := 0
	cache := map[string][]byte{}
	for _, r := range recs {
		b, ok := cache[r.sha]
		if !ok {
			b, ok = dir.Image(r.sha)
			if ok {
				cache[r.sha] = b
			}
		}
		if !ok {
			missing++
			continue
		}
		im := vision.NewImage(b)
		var fxID string
		label := set.Ref(r.sha)
		if label != nil {
			fxID = label.ID
		}
		for t := 0; t < targets; t++ {
			s.jobs = append(s.jobs, Job{Offset: r.t.Sub(recs[0].t), Target: t, Image: im, FixtureID: fxID, label: label, PairID: "replay-" + r.pairID})
		}
	}
	if len(s.jobs) == 0 {
		return nil, missing, fmt.Errorf("%s has no replayable requests: run the proxy with record.store_images: true to keep images", dir.Path)
	}
	return s, missing, nil
}

// Next implements Source.
func (s *ReplaySource) Next() (Job, bool) {
	if s.i >= len(s.jobs) {
		return Job{}, false
	}
	s.i++
	return s.jobs[s.i-1], true
}
