package record

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cutover/cutover/internal/jsonx"
)

// Dir is an opened run directory.
type Dir struct {
	Path string
	Run  Run
}

// Open reads dir/run.json.
func Open(dir string) (*Dir, error) {
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, fmt.Errorf("opening run directory: %w", err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s/run.json: %w", dir, err)
	}
	if r.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("%s: run format %d is newer than this cutover reads (%d)", dir, r.FormatVersion, FormatVersion)
	}
	return &Dir{Path: dir, Run: r}, nil
}

// ObservationFiles lists the observation files in write order.
func (d *Dir) ObservationFiles() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(d.Path, "observations-*.jsonl*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	return m, nil
}

// Observations streams every observation to fn, file by file, without
// loading the run into memory. A truncated last line (a crash mid-write)
// is skipped; any other malformed line is an error naming file and line.
func (d *Dir) Observations(fn func(Observation) error) error {
	files, err := d.ObservationFiles()
	if err != nil {
		return err
	}
	for _, path := range files {
		if err := readObservations(path, fn); err != nil {
			return err
		}
	}
	return nil
}

func readObservations(path string, fn func(Observation) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	return decodeParallel(path, r, fn)
}

// batch is a run of lines decoded by one worker.
type batch struct {
	nums  []int // line numbers of lines
	lines [][]byte
	obs   []Observation
	err   error
	done  chan struct{}
}

// decodeParallel splits r into lines on this goroutine, decodes batches of
// them on GOMAXPROCS workers and hands the observations to fn in file
// order: JSON decoding is what a report spends its time on, and it
// parallelises, while fn (the report's accumulators) stays single-threaded.
func decodeParallel(path string, r io.Reader, fn func(Observation) error) error {
	const batchLines = 512
	workers := max(runtime.GOMAXPROCS(0), 1)
	todo := make(chan *batch, workers)
	order := make(chan *batch, 2*workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range todo {
				b.obs = make([]Observation, len(b.lines))
				for i, l := range b.lines {
					if err := jsonx.Unmarshal(l, &b.obs[i]); err != nil {
						if i == len(b.lines)-1 && l[len(l)-1] != '\n' {
							b.obs = b.obs[:i] // a torn last line: the writer was still at it
							break
						}
						b.err = fmt.Errorf("%s:%d: %w", path, b.nums[i], err)
						b.obs = b.obs[:i]
						break
					}
				}
				close(b.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(todo)
		br := bufio.NewReaderSize(r, 1<<20)
		line := 0
		cur := &batch{done: make(chan struct{})}
		send := func() bool {
			select {
			case order <- cur:
			case <-stop:
				return false
			}
			todo <- cur
			cur = &batch{done: make(chan struct{})}
			return true
		}
		for {
			b, err := br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				// A line longer than the buffer: gather it whole.
				long := append([]byte(nil), b...)
				for err == bufio.ErrBufferFull {
					b, err = br.ReadSlice('\n')
					long = append(long, b...)
				}
				b = long
			} else {
				b = append([]byte(nil), b...)
			}
			if len(b) > 0 {
				line++
			}
			if len(bytesTrimSpace(b)) > 0 {
				cur.lines = append(cur.lines, b)
				cur.nums = append(cur.nums, line)
				if len(cur.lines) == batchLines && !send() {
					readErr <- nil
					return
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				if len(cur.lines) > 0 {
					send()
				}
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- fmt.Errorf("%s: %w", path, err)
				return
			}
		}
	}()
	var ferr error
	for b := range order {
		if ferr != nil {
			continue
		}
		<-b.done
		for i := range b.obs {
			if err := fn(b.obs[i]); err != nil {
				ferr = err
				break
			}
		}
		if ferr == nil && b.err != nil {
			ferr = b.err
		}
		if ferr != nil {
			close(stop)
		}
	}
	wg.Wait()
	if err := <-readErr; ferr == nil {
		ferr = err
	}
	return ferr
}

func bytesTrimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Histograms merges each provider's hlog intervals into one histogram per
// provider (HDR histograms merge losslessly).
func (d *Dir) Histograms() (map[string]*hdrhistogram.Histogram, error) {
	m, err := filepath.Glob(filepath.Join(d.Path, "*.hlog"))
	if err != nil {
		return nil, err
	}
	out := map[string]*hdrhistogram.Histogram{}
	for _, path := range m {
		name := strings.TrimSuffix(filepath.Base(path), ".hlog")
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		h := newHistogram()
		lr := hdrhistogram.NewHistogramLogReader(f)
		for {
			ih, err := lr.NextIntervalHistogram()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if ih == nil {
				break
			}
			h.Merge(ih)
		}
		f.Close()
		out[name] = h
	}
	return out, nil
}

// Image returns a stored image by SHA-256 (record.store_images).
func (d *Dir) Image(sha string) ([]byte, bool) {
	if len(sha) < 2 {
		return nil, false
	}
	m, _ := filepath.Glob(filepath.Join(d.Path, "images", sha[:2], sha+".*"))
	if len(m) == 0 {
		return nil, false
	}
	b, err := os.ReadFile(m[0])
	return b, err == nil
}
