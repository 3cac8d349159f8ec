package record

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

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
// It hands over every line as recorded: a consumer that counts
// observations reads them through a Reader, which also drops repeats and
// checks what run.json lists.
func (d *Dir) Observations(fn func(Observation) error) error {
	files, err := d.ObservationFiles()
	if err != nil {
		return err
	}
	for _, path := range files {
		if err := readObservations(path, func(o *Observation, _ int) error { return fn(*o) }); err != nil {
			return err
		}
	}
	return nil
}

func readObservations(path string, fn func(o *Observation, line int) error) error {
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
// order with their line numbers: JSON decoding is what a report spends
// its time on, and it parallelises, while fn (the report's accumulators)
// stays single-threaded.
func decodeParallel(path string, r io.Reader, fn func(o *Observation, line int) error) error {
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
			if err := fn(&b.obs[i], b.nums[i]); err != nil {
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

// Identity names the run d holds: its kind, host and start time, which
// run.json keeps however the directory is copied or moved. Two directories
// with the same identity hold the same run (a copy, or a later copy of a
// live run). A run.json without a start time identifies only its own
// directory.
func (d *Dir) Identity() string {
	if d.Run.Started.IsZero() {
		return "path\x00" + d.Path
	}
	return d.Run.Kind + "\x00" + d.Run.Host + "\x00" + d.Run.Started.UTC().Format(time.RFC3339Nano)
}

// Digest is the SHA-256 of the run's observation files, names and
// contents in name order: two runs with the same digest hold the same
// observations.
func (d *Dir) Digest() (string, error) {
	files, err := d.ObservationFiles()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, path := range files {
		fmt.Fprintf(h, "%s\n", filepath.Base(path))
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("digesting %s: %w", d.Path, err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("digesting %s: %w", d.Path, err)
		}
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Distinct returns an error when two of dirs are the same directory,
// whatever the spelling of their paths: they are compared as files (device
// and inode), so a symlink, a relative path or a trailing slash are caught
// too. Merging a directory with itself would count every observation
// twice.
func Distinct(dirs []*Dir) error {
	infos := make([]os.FileInfo, len(dirs))
	for i, d := range dirs {
		fi, err := os.Stat(d.Path)
		if err != nil {
			return fmt.Errorf("checking run directory: %w", err)
		}
		infos[i] = fi
		for j := range i {
			if os.SameFile(infos[j], fi) {
				return fmt.Errorf("%w: %s and %s are the same directory (%s): give each run once", ErrInput, dirs[j].Path, d.Path, realPath(d.Path))
			}
		}
	}
	return nil
}

func realPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p
}

// ErrInput marks an error in the recorded input itself: a run directory
// given twice, a listed file that is missing, an observation that does
// not say whose it is. errors.Is(err, ErrInput) tells them from I/O errors.
var ErrInput = errors.New("invalid report input")

// Problem is one input problem a lenient Reader noted and went past.
type Problem struct {
	// Path is the file, Line its line (0: the file as a whole).
	Path string
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.Path, p.Line, p.Msg)
	}
	return p.Path + ": " + p.Msg
}

// maxProblems is how many problems ReadStats keeps per directory (all are
// counted).
const maxProblems = 20

// ReadStats is what a Reader handed over and left out of one directory.
type ReadStats struct {
	// Read counts observations handed to fn.
	Read int64
	// Duplicates counts observations dropped because their request_id was
	// already read in the same run.
	Duplicates int64
	// Skipped counts observations a lenient Reader skipped as invalid.
	Skipped int64
	// Missing lists files run.json names that are not there (lenient).
	Missing []string
	// Problems are the first problems a lenient Reader went past, in
	// order (Skipped and Missing count them all).
	Problems []Problem
}

func (s *ReadStats) problem(p Problem) {
	if len(s.Problems) < maxProblems {
		s.Problems = append(s.Problems, p)
	}
}

// Reader reads run directories for a consumer that counts observations
// (a report): each observation is handed over once, and what run.json
// promises is checked.
//
//   - A request_id is unique within a run: a line repeating one already
//     read in the same run (the same Identity, so also in a copy of the
//     directory) is dropped and counted in ReadStats.Duplicates. Request
//     ids may repeat across different runs (bench names requests by
//     fixture and pass), which are counted apart.
//   - A file listed in run.json but missing, and an observation without a
//     request_id, provider or role (a "{}" line), is an error naming the
//     file and line, unless Lenient: then it is noted in ReadStats and the
//     observation is skipped.
//
// A Reader remembers the request ids it has read (16 bytes each) until it
// is dropped. It is not safe for concurrent use.
type Reader struct {
	// Lenient turns missing listed files and invalid observations into
	// ReadStats problems instead of errors.
	Lenient bool

	seed0, seed1 maphash.Seed
	seen         map[string]map[[2]uint64]struct{} // by run identity
}

// NewReader returns a Reader; lenient sets Lenient.
func NewReader(lenient bool) *Reader {
	return &Reader{Lenient: lenient, seed0: maphash.MakeSeed(), seed1: maphash.MakeSeed(), seen: map[string]map[[2]uint64]struct{}{}}
}

// CheckFiles checks that every file d's run.json lists is in d. A missing
// one is an error, or with Lenient a ReadStats entry (the returned stats
// go with those of Observations).
func (r *Reader) CheckFiles(d *Dir) (ReadStats, error) {
	var st ReadStats
	for _, name := range d.Run.Files {
		path := filepath.Join(d.Path, name)
		msg := ""
		switch {
		case name == "" || name != filepath.Base(name) || name == "." || name == "..":
			msg = fmt.Sprintf("run.json lists %q, which is not a file name in the run directory", name)
			path = filepath.Join(d.Path, "run.json")
		default:
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				msg = "listed in run.json but missing"
			} else if err != nil {
				return st, fmt.Errorf("checking %s: %w", path, err)
			}
		}
		if msg == "" {
			continue
		}
		p := Problem{Path: path, Msg: msg}
		if !r.Lenient {
			return st, fmt.Errorf("%w: %s", ErrInput, p)
		}
		st.Missing = append(st.Missing, path)
		st.problem(p)
	}
	return st, nil
}

// Observations streams d's observations to fn like Dir.Observations,
// dropping repeated request ids and checking each observation names its
// request, provider and role (see Reader).
func (r *Reader) Observations(d *Dir, fn func(Observation) error) (ReadStats, error) {
	var st ReadStats
	files, err := d.ObservationFiles()
	if err != nil {
		return st, err
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return st, err
		}
		var in io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			gz, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				return st, fmt.Errorf("%s: %w", path, err)
			}
			in = gz
		}
		err = r.read(d.Identity(), path, in, &st, fn)
		f.Close()
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// read decodes one observation file from in.
func (r *Reader) read(identity, path string, in io.Reader, st *ReadStats, fn func(Observation) error) error {
	seen := r.seen[identity]
	if seen == nil {
		seen = map[[2]uint64]struct{}{}
		r.seen[identity] = seen
	}
	return decodeParallel(path, in, func(o *Observation, line int) error {
		if missing := missingFields(o); missing != "" {
			p := Problem{Path: path, Line: line, Msg: "observation without " + missing}
			if !r.Lenient {
				return fmt.Errorf("%w: %s", ErrInput, p)
			}
			st.Skipped++
			st.problem(p)
			return nil
		}
		k := [2]uint64{maphash.String(r.seed0, o.RequestID), maphash.String(r.seed1, o.RequestID)}
		if _, dup := seen[k]; dup {
			st.Duplicates++
			return nil
		}
		seen[k] = struct{}{}
		st.Read++
		return fn(*o)
	})
}

// missingFields names the identifying fields o lacks ("" when none).
func missingFields(o *Observation) string {
	var miss []string
	for _, f := range []struct{ name, v string }{{"request_id", o.RequestID}, {"provider", o.Provider}, {"role", o.Role}} {
		if f.v == "" {
			miss = append(miss, f.name)
		}
	}
	switch len(miss) {
	case 0:
		return ""
	case 1:
		return miss[0]
	}
	return strings.Join(miss[:len(miss)-1], ", ") + " and " + miss[len(miss)-1]
}
