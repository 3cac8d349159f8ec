package record

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/vision"
)

func TestWriteAndRead(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			w, err := Create(dir, Run{Kind: "proxy", Mode: "shadow", Providers: []Provider{{Name: "legacy", Role: RolePrimary, Format: "rekognition"}}},
				Options{RotateBytes: 64 << 10, Compress: compress, HlogInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			const n = 4000
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < n/8; i++ {
						p := "legacy"
						if i%2 == 1 {
							p = "holysheep"
						}
						w.Record(Observation{RequestID: fmt.Sprintf("%d-%d", g, i), PairID: fmt.Sprint(g, i), Time: time.Now(), Provider: p,
							Role: RolePrimary, Status: 200, LatencyNS: int64(1+i%100) * 1e6, Tags: &vision.Tags{Categories: []vision.Scored{{Value: "a/b", Confidence: 0.9}}}})
						if i == 100 {
							time.Sleep(30 * time.Millisecond) // let an hlog interval pass
						}
					}
				}(g)
			}
			wg.Wait()
			w.Skip(SkipSampledOut)
			w.Count(10, 8, 6)
			w.Event("mirror_paused", "budget reached", map[string]any{"spend": 1.5})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			d, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d.Run.Ended == nil || d.Run.Coverage.Seen != 10 || d.Run.Coverage.Skipped[SkipSampledOut] != 1 || len(d.Run.Events) != 1 || d.Run.Dropped != 0 {
				t.Errorf("run.json: %+v", d.Run)
			}
			files, _ := d.ObservationFiles()
			if len(files) < 2 {
				t.Errorf("rotation by size: %d files", len(files))
			}
			ids := map[string]bool{}
			if err := d.Observations(func(o Observation) error {
				ids[o.RequestID] = true
				if o.Tags == nil || o.Tags.Top() != "a/b" {
					return fmt.Errorf("tags lost: %+v", o)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(ids) != n {
				t.Errorf("read %d distinct observations, wrote %d", len(ids), n)
			}
			hs, err := d.Histograms()
			if err != nil {
				t.Fatal(err)
			}
			if hs["legacy"].TotalCount()+hs["holysheep"].TotalCount() != n {
				t.Errorf("hlog counts %d + %d, want %d", hs["legacy"].TotalCount(), hs["holysheep"].TotalCount(), n)
			}
			if got := hs["legacy"].ValueAtQuantile(100); got < 99e6 || got > 101e6 {
				t.Errorf("hlog max %d, want ≈ 99 ms", got)
			}
		})
	}
}

func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "run.json"), []byte(`{"format_version":1,"tool":"cutover"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "observations-20261127T09-0001.jsonl"), []byte(`{"request_id":"a","provider":"x"}`+"\n"+`{"request_id":"b","prov`), 0o644)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := d.Observations(func(Observation) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("got %d observations, %v; want 1 and the torn line skipped", n, err)
	}
	os.WriteFile(filepath.Join(dir, "observations-20261127T09-0002.jsonl"), []byte("{bad}\n{\"request_id\":\"c\"}\n"), 0o644)
	if err := d.Observations(func(Observation) error { return nil }); err == nil || !strings.Contains(err.Error(), "0002.jsonl:1") {
		t.Errorf("a malformed complete line must be an error with file:line, got %v", err)
	}
}

func TestCreateRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if _, err := Create(dir, Run{}, Options{}); err == nil {
		t.Error("a non-empty run directory must be refused")
	}
}

func TestStoreImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, _ := Create(dir, Run{}, Options{StoreImages: true})
	sha := strings.Repeat("ab", 32)
	w.StoreImage(sha, []byte("png bytes"), "image/png")
	w.StoreImage(sha, []byte("png bytes"), "image/png")
	w.Close()
	if b, err := os.ReadFile(filepath.Join(dir, "images", "ab", sha+".png")); err != nil || string(b) != "png bytes" {
		t.Errorf("stored image: %q %v", b, err)
	}
}

// TestObservationOrderAndLines: the parallel decoder hands observations
// over in file order across many batches, counts blank lines in line
// numbers, and names the right line of a malformed one deep in a file.
func TestObservationOrderAndLines(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		if i%1000 == 7 {
			b.WriteString("\n") // a blank line
		}
		fmt.Fprintf(&b, "{\"request_id\":\"r%d\",\"latency_ns\":%d}\n", i, i)
	}
	var got []string
	err := decodeParallel("f", strings.NewReader(b.String()), func(o *Observation, _ int) error {
		got = append(got, o.RequestID)
		return nil
	})
	if err != nil || len(got) != 5000 {
		t.Fatalf("%d observations, %v", len(got), err)
	}
	for i, id := range got {
		if id != fmt.Sprint("r", i) {
			t.Fatalf("observation %d is %s: out of order", i, id)
		}
	}
	bad := b.String() + "{\"request_id\": 12}\n" + "{\"request_id\":\"x\"}\n"
	// 5000 lines + 5 blank ones: the bad line is line 5006.
	if err := decodeParallel("f", strings.NewReader(bad), func(*Observation, int) error { return nil }); err == nil || !strings.Contains(err.Error(), "f:5006:") {
		t.Errorf("malformed line: %v, want f:5006", err)
	}
	stop := errors.New("stop")
	n := 0
	if err := decodeParallel("f", strings.NewReader(b.String()), func(*Observation, int) error {
		n++
		if n == 700 {
			return stop
		}
		return nil
	}); err != stop || n != 700 {
		t.Errorf("callback error: %v after %d", err, n)
	}
}

// FuzzObservations: any bytes in an observation file give observations or
// an error naming a line, never a panic or a hang.
func FuzzObservations(f *testing.F) {
	f.Add([]byte("{\"request_id\":\"a\",\"tags\":{\"categories\":[{\"value\":\"x\",\"confidence\":0.5}],\"attributes\":{\"color\":[{\"value\":\"red\"}]}}}\n{\"request_id\":\"b\""))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte("{\"usage\":{\"input_tokens\":1e99}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := decodeParallel("f", bytes.NewReader(b), func(*Observation, int) error { n++; return nil })
		if err != nil && !strings.HasPrefix(err.Error(), "f:") {
			t.Errorf("error without a line: %v", err)
		}
		if n > bytes.Count(b, []byte("\n"))+1 {
			t.Errorf("%d observations from %d lines", n, bytes.Count(b, []byte("\n"))+1)
		}
	})
}
