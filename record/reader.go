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
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
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
	br := bufio.NewReaderSize(r, 256<<10)
	line := 0
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			line++
			complete := b[len(b)-1] == '\n'
			var o Observation
			if jerr := json.Unmarshal(b, &o); jerr != nil {
				if !complete {
					return nil // a torn last line
				}
				return fmt.Errorf("%s:%d: %w", path, line, jerr)
			}
			if ferr := fn(o); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
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
