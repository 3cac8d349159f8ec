package proxy

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

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

// figures sums the slots within the window ending at now (every slot of a
// never-expiring window), with the merged histogram.
func (w *window) figures(now time.Time) (Figures, *hdrhistogram.Histogram) {
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

func finish(f Figures, h *hdrhistogram.Histogram) Figures {
	if f.Requests > 0 {
		f.ErrorRate = float64(f.Errors) / float64(f.Requests)
		f.P99Ms = float64(h.ValueAtQuantile(99)) / 1e6
	}
	return f
}
