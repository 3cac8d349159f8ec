package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRun writes a run directory by hand: run.json with files listed and
// one observation file holding lines.
func writeRun(t *testing.T, dir string, started time.Time, files []string, lines ...string) *Dir {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	r := Run{FormatVersion: 1, Kind: "bench", Host: "h", Started: started, Files: files}
	b, _ := json.Marshal(r)
	os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644)
	if len(lines) > 0 {
		os.WriteFile(filepath.Join(dir, "observations-20261120T01-0001.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func obsLine(id, provider string) string {
	return fmt.Sprintf(`{"request_id":%q,"provider":%q,"role":"bench","status":200}`, id, provider)
}

func readAll(t *testing.T, r *Reader, d *Dir) ([]string, ReadStats, error) {
	t.Helper()
	var ids []string
	st, err := r.Observations(d, func(o Observation) error {
		ids = append(ids, o.RequestID+"@"+o.Provider)
		return nil
	})
	return ids, st, err
}

// TestReaderDuplicates: a request_id is read once per run, in the same
// directory and in a copy of it; other runs may reuse it.
func TestReaderDuplicates(t *testing.T) {
	base := t.TempDir()
	t0 := time.Date(2026, 11, 20, 1, 2, 3, 456789, time.UTC)
	a := writeRun(t, filepath.Join(base, "a"), t0, nil, obsLine("1", "x"), obsLine("2", "x"), obsLine("1", "x"), obsLine("1", "y"), obsLine("3", "x"))
	copyOfA := writeRun(t, filepath.Join(base, "copy"), t0, nil, obsLine("1", "x"), obsLine("4", "x"))
	other := writeRun(t, filepath.Join(base, "other"), t0.Add(time.Nanosecond), nil, obsLine("1", "x"), obsLine("2", "x"))
	r := NewReader(false)
	for _, tc := range []struct {
		d         *Dir
		ids       []string
		dups      int64
		identical bool
	}{
		// The third line repeats request 1; so does the fourth, under
		// another provider: a request_id names one line of a run.
		{a, []string{"1@x", "2@x", "3@x"}, 2, true},
		{copyOfA, []string{"4@x"}, 1, true},
		{other, []string{"1@x", "2@x"}, 0, false},
	} {
		ids, st, err := readAll(t, r, tc.d)
		if err != nil || strings.Join(ids, " ") != strings.Join(tc.ids, " ") || st.Duplicates != tc.dups || st.Read != int64(len(tc.ids)) {
			t.Errorf("%s: read %v (%+v, %v), want %v and %d duplicates", tc.d.Path, ids, st, err, tc.ids, tc.dups)
		}
		if got := tc.d.Identity() == a.Identity(); got != tc.identical {
			t.Errorf("%s: same identity as the original %v, want %v", tc.d.Path, got, tc.identical)
		}
	}
	// Without a start time a directory is only itself.
	n1 := writeRun(t, filepath.Join(base, "n1"), time.Time{}, nil, obsLine("1", "x"))
	n2 := writeRun(t, filepath.Join(base, "n2"), time.Time{}, nil, obsLine("1", "x"))
	if n1.Identity() == n2.Identity() {
		t.Error("two runs without a start time share an identity")
	}
}

// TestReaderInvalid: an observation without request_id, provider or role
// is an error naming file and line; lenient, it is skipped and counted.
func TestReaderInvalid(t *testing.T) {
	base := t.TempDir()
	lines := []string{obsLine("1", "x"), `{}`, `{"request_id":"2","provider":"x"}`, `{"request_id":"3","role":"bench"}`, obsLine("4", "x")}
	d := writeRun(t, filepath.Join(base, "a"), time.Now(), nil, lines...)
	_, _, err := readAll(t, NewReader(false), d)
	want := "observations-20261120T01-0001.jsonl:2: observation without request_id, provider and role"
	if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), want) {
		t.Errorf("strict: %v, want %q", err, want)
	}
	ids, st, err := readAll(t, NewReader(true), d)
	if err != nil || strings.Join(ids, " ") != "1@x 4@x" || st.Skipped != 3 || len(st.Problems) != 3 {
		t.Fatalf("lenient: %v %+v %v", ids, st, err)
	}
	for i, w := range []string{":2: observation without request_id, provider and role", ":3: observation without role", ":4: observation without provider"} {
		if !strings.HasSuffix(st.Problems[i].String(), w) {
			t.Errorf("problem %d: %s, want …%s", i, st.Problems[i], w)
		}
	}
	// Problems keeps the first maxProblems; Skipped counts them all.
	many := make([]string, 3*maxProblems)
	for i := range many {
		many[i] = "{}"
	}
	d = writeRun(t, filepath.Join(base, "many"), time.Now(), nil, many...)
	if _, st, err := readAll(t, NewReader(true), d); err != nil || st.Skipped != int64(len(many)) || len(st.Problems) != maxProblems {
		t.Errorf("many: skipped %d, %d problems kept, %v", st.Skipped, len(st.Problems), err)
	}
}

// TestCheckFiles: every file run.json lists must be there, and be a file
// of the run directory.
func TestCheckFiles(t *testing.T) {
	base := t.TempDir()
	d := writeRun(t, filepath.Join(base, "a"), time.Now(), []string{"observations-20261120T01-0001.jsonl", "legacy.hlog", "../../etc/passwd"}, obsLine("1", "x"))
	st, err := NewReader(false).CheckFiles(d)
	if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), filepath.Join(d.Path, "legacy.hlog")+": listed in run.json but missing") {
		t.Errorf("strict: %v", err)
	}
	st, err = NewReader(true).CheckFiles(d)
	if err != nil || len(st.Missing) != 2 || len(st.Problems) != 2 || !strings.Contains(st.Problems[1].String(), `run.json lists "../../etc/passwd", which is not a file name in the run directory`) {
		t.Errorf("lenient: %+v %v", st, err)
	}
	os.WriteFile(filepath.Join(d.Path, "legacy.hlog"), nil, 0o644)
	d.Run.Files = d.Run.Files[:2]
	if st, err := NewReader(false).CheckFiles(d); err != nil || len(st.Missing) != 0 {
		t.Errorf("all there: %+v %v", st, err)
	}
}

// TestDistinct: the same directory under any spelling is refused.
func TestDistinct(t *testing.T) {
	base := t.TempDir()
	a := writeRun(t, filepath.Join(base, "a"), time.Now(), nil)
	b := writeRun(t, filepath.Join(base, "b"), time.Now(), nil)
	os.Symlink(a.Path, filepath.Join(base, "link"))
	if err := Distinct([]*Dir{a, b}); err != nil {
		t.Errorf("two directories: %v", err)
	}
	for _, p := range []string{a.Path, a.Path + "/", filepath.Join(base, "link"), filepath.Join(b.Path, "..", "a")} {
		err := Distinct([]*Dir{a, b, {Path: p}})
		if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "are the same directory") {
			t.Errorf("%s: %v, want refused", p, err)
		}
	}
}

// FuzzReader: any bytes in an observation file give observations, each
// request once, or an error naming a line; never a panic.
func FuzzReader(f *testing.F) {
	f.Add([]byte("{}\n"+obsLine("1", "x")+"\n"+obsLine("1", "x")+"\n"), false)
	f.Add([]byte(obsLine("1", "x")+"\n{\"request_id\":\"2\""), true)
	f.Fuzz(func(t *testing.T, b []byte, lenient bool) {
		r := NewReader(lenient)
		var st ReadStats
		seen := map[string]bool{}
		err := r.read("id", "f", bytes.NewReader(b), &st, func(o Observation) error {
			if seen[o.RequestID] || o.RequestID == "" || o.Provider == "" || o.Role == "" {
				t.Errorf("handed over %+v", o)
			}
			seen[o.RequestID] = true
			return nil
		})
		if err != nil && !strings.HasPrefix(err.Error(), "f:") && !strings.Contains(err.Error(), ": f:") {
			t.Errorf("error without a line: %v", err)
		}
		if lines := int64(bytes.Count(b, []byte("\n")) + 1); st.Read+st.Duplicates+st.Skipped > lines {
			t.Errorf("%+v from %d lines", st, lines)
		}
	})
}
