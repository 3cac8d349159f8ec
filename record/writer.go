package record

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/internal/jsonx"
)

// Options tune a Writer.
type Options struct {
	// RotateBytes starts a new observations file past this size (files also
	// rotate every hour). Default 128 MiB.
	RotateBytes int64
	// Compress writes gzip files.
	Compress bool
	// HlogInterval is the HDR interval-log period. Default 10 s.
	HlogInterval time.Duration
	// Buffer is how many observations may wait for the disk before new ones
	// are dropped (and counted). Default 65,536.
	Buffer int
	// StoreImages keeps images for replay.
	StoreImages bool
}

// Writer records a run. Record is safe for concurrent use and never
// blocks: the request path hands observations over and moves on.
type Writer struct {
	dir  string
	opts Options

	mu   sync.Mutex
	run  Run
	hist map[string]*provHist

	ch      chan Observation
	flushCh chan chan struct{}
	chMu    sync.RWMutex // Record sends under RLock; Close closes ch under Lock
	done    chan struct{}
	dropped atomic.Int64
	closed  atomic.Bool
	wg      sync.WaitGroup

	// owned by the writer goroutine
	file      *os.File
	buf       *bufio.Writer
	gz        *gzip.Writer
	written   int64
	fileHour  int64
	fileSeq   int
	writeErr  error
	images    sync.Map
	imageDirM sync.Mutex
}

type provHist struct {
	interval   *hdrhistogram.Histogram
	cumulative *hdrhistogram.Histogram
	start      time.Time
	log        *hdrhistogram.HistogramLogWriter
	file       *os.File
}

// Create makes dir (which must not exist or be empty) and starts writing.
func Create(dir string, run Run, opts Options) (*Writer, error) {
	if opts.RotateBytes <= 0 {
		opts.RotateBytes = 128 << 20
	}
	if opts.HlogInterval <= 0 {
		opts.HlogInterval = 10 * time.Second
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1 << 16
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return nil, fmt.Errorf("run directory %s is not empty: choose a new one", dir)
	}
	run.FormatVersion, run.Tool = FormatVersion, "cutover"
	if run.Started.IsZero() {
		run.Started = time.Now()
	}
	if run.Coverage.Skipped == nil {
		run.Coverage.Skipped = map[string]int64{}
	}
	if h, err := os.Hostname(); err == nil && run.Host == "" {
		run.Host = h
	}
	w := &Writer{dir: dir, opts: opts, run: run, hist: map[string]*provHist{},
		ch: make(chan Observation, opts.Buffer), flushCh: make(chan chan struct{}), done: make(chan struct{})}
	if err := w.writeRunJSON(); err != nil {
		return nil, err
	}
	w.wg.Add(2)
	go w.loop()
	go w.ticker()
	return w, nil
}

// Dir is the run directory.
func (w *Writer) Dir() string { return w.dir }

// Record hands o to the writer. It returns false (and counts a drop) when
// the writer is closed or too far behind.
func (w *Writer) Record(o Observation) bool {
	w.chMu.RLock()
	defer w.chMu.RUnlock()
	if w.closed.Load() {
		w.dropped.Add(1)
		return false
	}
	w.observe(o.Provider, o.LatencyNS, o.Time)
	select {
	case w.ch <- o:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// ObserveLatency adds ns to the histogram (and hlog) named key without an
// observation line: bench writes service times as "<provider>.service".
func (w *Writer) ObserveLatency(key string, ns int64) {
	if w.closed.Load() {
		return
	}
	w.observe(key, ns, time.Time{})
}

func (w *Writer) observe(provider string, ns int64, at time.Time) {
	if ns <= 0 {
		return
	}
	v := min(max(ns, MinLatencyNS), MaxLatencyNS)
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hist[provider]
	if h == nil {
		var err error
		h, err = w.newHist(provider)
		if err != nil {
			return
		}
	}
	h.interval.RecordValue(v)
	h.cumulative.RecordValue(v)
}

func (w *Writer) newHist(provider string) (*provHist, error) {
	f, err := os.Create(filepath.Join(w.dir, safeName(provider)+".hlog"))
	if err != nil {
		return nil, err
	}
	lw := hdrhistogram.NewHistogramLogWriter(f)
	startMs := w.run.Started.UnixMilli()
	lw.OutputComment("cutover latency of provider " + provider + ", nanoseconds")
	lw.OutputLogFormatVersion()
	lw.OutputStartTime(startMs)
	lw.OutputBaseTime(startMs)
	lw.SetBaseTime(startMs)
	lw.OutputLegend()
	h := &provHist{interval: newHistogram(), cumulative: newHistogram(), start: time.Now(), log: lw, file: f}
	h.interval.SetTag(safeName(provider))
	w.hist[provider] = h
	w.run.Files = append(w.run.Files, safeName(provider)+".hlog")
	return h, nil
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(MinLatencyNS, MaxLatencyNS, SigFigs)
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// flushIntervals writes every provider's interval histogram to its hlog.
func (w *Writer) flushIntervals() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, h := range w.hist {
		if h.interval.TotalCount() > 0 {
			h.interval.SetStartTimeMs(h.start.UnixMilli())
			h.interval.SetEndTimeMs(now.UnixMilli())
			h.log.OutputIntervalHistogram(h.interval)
			h.interval.Reset()
		}
		h.start = now
	}
}

func (w *Writer) ticker() {
	defer w.wg.Done()
	t := time.NewTicker(w.opts.HlogInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.flushIntervals()
			w.mu.Lock()
			w.writeRunJSONLocked()
			w.mu.Unlock()
		case <-w.done:
			return
		}
	}
}

func (w *Writer) loop() {
	defer w.wg.Done()
	for {
		select {
		case o, ok := <-w.ch:
			if !ok {
				w.closeFile()
				return
			}
			w.write(o)
		case ack := <-w.flushCh:
			// Write what was handed over before the flush was asked for.
			for n := len(w.ch); n > 0; n-- {
				w.write(<-w.ch)
			}
			if w.buf != nil {
				w.buf.Flush()
				if w.gz != nil {
					w.gz.Flush()
				}
			}
			close(ack)
		}
	}
}

// Flush makes the run directory readable as it stands, for a live report:
// observations handed over so far reach their file, the histograms'
// current interval goes to the hlogs and run.json is rewritten. Recording
// goes on; Flush never drops anything.
func (w *Writer) Flush() {
	w.chMu.RLock()
	if !w.closed.Load() {
		ack := make(chan struct{})
		select {
		case w.flushCh <- ack:
			<-ack
		case <-w.done:
		}
	}
	w.chMu.RUnlock()
	w.flushIntervals()
	w.writeRunJSON()
}

func (w *Writer) write(o Observation) {
	if w.writeErr != nil {
		w.dropped.Add(1)
		return
	}
	hour := o.Time.Unix() / 3600
	if w.file == nil || w.written >= w.opts.RotateBytes || hour != w.fileHour {
		if err := w.rotate(o.Time); err != nil {
			w.writeErr = err
			w.dropped.Add(1)
			return
		}
		w.fileHour = hour
	}
	b, err := jsonx.Marshal(o)
	if err != nil {
		w.dropped.Add(1)
		return
	}
	b = append(b, '\n')
	var out io.Writer = w.buf
	n, err := out.Write(b)
	w.written += int64(n)
	if err != nil {
		w.writeErr = err
	}
}

func (w *Writer) rotate(t time.Time) error {
	w.closeFile()
	w.fileSeq++
	name := fmt.Sprintf("observations-%s-%04d.jsonl", t.UTC().Format("20060102T15"), w.fileSeq)
	if w.opts.Compress {
		name += ".gz"
	}
	f, err := os.Create(filepath.Join(w.dir, name))
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	w.file, w.written = f, 0
	if w.opts.Compress {
		w.gz = gzip.NewWriter(f)
		w.buf = bufio.NewWriterSize(w.gz, 256<<10)
	} else {
		w.buf = bufio.NewWriterSize(f, 256<<10)
	}
	w.mu.Lock()
	w.run.Files = append(w.run.Files, name)
	w.mu.Unlock()
	return nil
}

func (w *Writer) closeFile() {
	if w.file == nil {
		return
	}
	w.buf.Flush()
	if w.gz != nil {
		w.gz.Close()
		w.gz = nil
	}
	w.file.Sync()
	w.file.Close()
	w.file = nil
}

// Skip counts a request not mirrored for reason.
func (w *Writer) Skip(reason string) {
	w.mu.Lock()
	w.run.Coverage.Skipped[reason]++
	w.mu.Unlock()
}

// Count adds to the coverage counters.
func (w *Writer) Count(seen, classify, mirrored int64) {
	w.mu.Lock()
	w.run.Coverage.Seen += seen
	w.run.Coverage.Classify += classify
	w.run.Coverage.Mirrored += mirrored
	w.mu.Unlock()
}

// Coverage returns the counters so far.
func (w *Writer) Coverage() Coverage {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.run.Coverage
	c.Skipped = map[string]int64{}
	for k, v := range w.run.Coverage.Skipped {
		c.Skipped[k] = v
	}
	return c
}

// Event appends to the timeline and persists run.json.
func (w *Writer) Event(kind, detail string, data map[string]any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.run.Events = append(w.run.Events, Event{Time: time.Now(), Kind: kind, Detail: detail, Data: data})
	w.writeRunJSONLocked()
}

// Snapshot returns a copy of each provider's cumulative latency histogram.
func (w *Writer) Snapshot() map[string]*hdrhistogram.Histogram {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]*hdrhistogram.Histogram{}
	for p, h := range w.hist {
		out[p] = hdrhistogram.Import(h.cumulative.Export())
	}
	return out
}

// StoreImage keeps b under images/ by its SHA-256 (once).
func (w *Writer) StoreImage(sha string, b []byte, mediaType string) error {
	if !w.opts.StoreImages || len(sha) < 2 {
		return nil
	}
	if _, loaded := w.images.LoadOrStore(sha, true); loaded {
		return nil
	}
	dir := filepath.Join(w.dir, "images", sha[:2])
	w.imageDirM.Lock()
	err := os.MkdirAll(dir, 0o755)
	w.imageDirM.Unlock()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, sha+extFor(mediaType)), b, 0o644)
}

func extFor(mt string) string {
	switch mt {
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "image/jpeg":
		return ".jpg"
	}
	return ".img"
}

// Close drains pending observations, writes the last histogram intervals
// and the final run.json. Nothing handed to Record before Close is lost.
func (w *Writer) Close() error {
	w.chMu.Lock()
	if w.closed.Swap(true) {
		w.chMu.Unlock()
		return nil
	}
	close(w.ch)
	w.chMu.Unlock()
	close(w.done)
	w.wg.Wait()
	w.flushIntervals()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.hist {
		h.file.Sync()
		h.file.Close()
	}
	end := time.Now()
	w.run.Ended = &end
	w.run.Dropped = w.dropped.Load()
	if err := w.writeRunJSONLocked(); err != nil {
		return err
	}
	return w.writeErr
}

func (w *Writer) writeRunJSON() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeRunJSONLocked()
}

// writeRunJSONLocked writes run.json atomically (write, fsync, rename).
func (w *Writer) writeRunJSONLocked() error {
	w.run.Dropped = w.dropped.Load()
	sort.Strings(w.run.Files)
	b, err := json.MarshalIndent(w.run, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(w.dir, "run.json"), append(b, '\n'))
}

// WriteFileAtomic writes b to path via a temporary file, fsync and rename,
// so a reader sees the old or the new content, never a torn one.
func WriteFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
