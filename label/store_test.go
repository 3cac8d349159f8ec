package label

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func prepare(t *testing.T, out string, runs []string, seed uint64) *Session {
	t.Helper()
	tx, _ := world(t)
	s, err := Prepare(context.Background(), Options{Out: out, Runs: runs, Low: 0.75, Taxonomy: tx,
		Sample: SampleOptions{Budget: 20, MinPerStratum: 3, Seed: seed}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreSavesAndResumes: labels land in a fixture set that fixtures
// check accepts; a crash mid-write (a torn last log line) loses only
// that line; restarting with the same flags continues with the same
// sample where it stopped; other flags or a changed run are refused.
func TestStoreSavesAndResumes(t *testing.T) {
	tx, fx := world(t)
	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 5})
	out := filepath.Join(dir, "labels")
	sess := prepare(t, out, []string{run}, 1)
	if sess.Resumed {
		t.Fatal("a new folder was resumed")
	}
	st := sess.Store
	var labelled []string
	for i := range 4 {
		it, ok := st.Next(false)
		if !ok {
			t.Fatal("ran out of items")
		}
		if it.Position != i+1 {
			t.Errorf("item %d at position %d", i+1, it.Position)
		}
		req := OracleAnswer(it, fx)
		dc := Decision{SHA256: req.SHA256, Decision: req.Decision, Choice: req.Choice, Category: req.Category, Attributes: req.Attributes}
		if i == 2 {
			dc = Decision{SHA256: it.SHA256, Decision: DecisionSkip}
		} else {
			labelled = append(labelled, it.SHA256)
		}
		if err := st.Record(dc, false); err != nil {
			t.Fatal(err)
		}
	}
	next, _ := st.Next(false)
	// The set is a fixture set: manifest, images, vocabularies.
	set, err := fixtures.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if probs := fixtures.Check(set, tx); len(probs) > 0 {
		t.Errorf("fixtures check: %v", probs)
	}
	if len(set.Items) != 3 {
		t.Fatalf("manifest holds %d items, want 3", len(set.Items))
	}
	d := st.Design()
	for i, it := range set.Items {
		truth, _ := fx.BySHA(it.SHA256)
		s, _ := d.Stratum(it.Stratum)
		if it.SHA256 != labelled[i] || it.Source != "label" || it.Category != truth.Category || it.InclusionProbability != s.InclusionProbability || it.InclusionProbability <= 0 {
			t.Errorf("item %d: %+v (truth %s, stratum π %v)", i, it, truth.Category, s.InclusionProbability)
		}
	}
	st.Close()

	// A crash in the middle of a write: the log ends in half a line.
	f, _ := os.OpenFile(filepath.Join(out, LogName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"sha256":"` + next.SHA256 + `","decision":"lab`)
	f.Close()
	sess = prepare(t, out, []string{run}, 1)
	st = sess.Store
	if !sess.Resumed || !st.Recovered {
		t.Errorf("resumed %v, recovered %v: want both", sess.Resumed, st.Recovered)
	}
	p := st.Progress()
	if p.Labelled != 3 || p.Skipped != 1 || p.Remaining != 16 {
		t.Errorf("progress after resume %+v", p)
	}
	if again, _ := st.Next(false); again.SHA256 != next.SHA256 || again.Position != next.Position {
		t.Errorf("resumed at %.8s (%d), want %.8s (%d)", again.SHA256, again.Position, next.SHA256, next.Position)
	}
	if err := st.Record(Decision{SHA256: labelled[0], Decision: DecisionSkip}, false); !errors.Is(err, ErrDecided) {
		t.Errorf("deciding twice: got %v, want ErrDecided", err)
	}
	if err := st.Record(Decision{SHA256: labelled[0], Decision: DecisionSkip}, true); err != nil {
		t.Errorf("replacing: %v", err)
	}
	if set, _ := fixtures.Load(out); len(set.Items) != 2 {
		t.Errorf("after replacing a label by a skip the manifest holds %d, want 2", len(set.Items))
	}
	// The skip (item 3) becomes a label, and a label changes category.
	skipped := st.Design().Sample[2]
	if err := st.Record(Decision{SHA256: skipped.SHA256, Decision: DecisionLabel, Choice: ChoiceNeither, Category: "accessories/watches"}, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Record(Decision{SHA256: labelled[1], Decision: DecisionLabel, Choice: ChoiceNeither, Category: "accessories/wallets"}, true); err != nil {
		t.Fatal(err)
	}
	if p := st.Progress(); p.Labelled != 3 || p.Skipped != 1 || p.Remaining != 16 {
		t.Errorf("progress after replacing %+v", p)
	}
	set, err = fixtures.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range set.Items {
		got[it.SHA256] = it.Category
	}
	if len(got) != 3 || got[skipped.SHA256] != "accessories/watches" || got[labelled[1]] != "accessories/wallets" {
		t.Errorf("manifest after replacing: %v", got)
	}
	st.Close()

	// Other flags, or a run that changed, would not give the same sample.
	_, err = Prepare(context.Background(), Options{Out: out, Runs: []string{run}, Low: 0.75, Taxonomy: tx,
		Sample: SampleOptions{Budget: 20, MinPerStratum: 3, Seed: 2}})
	if err == nil || !strings.Contains(err.Error(), "--seed 1") {
		t.Errorf("another seed: got %v", err)
	}
	obs, _ := filepath.Glob(filepath.Join(run, "observations-*.jsonl"))
	b, _ := os.ReadFile(obs[0])
	os.WriteFile(obs[0], append(b, b[:strings.IndexByte(string(b), '\n')+1]...), 0o644)
	_, err = Prepare(context.Background(), Options{Out: out, Runs: []string{run}, Low: 0.75, Taxonomy: tx,
		Sample: SampleOptions{Budget: 20, MinPerStratum: 3, Seed: 1}})
	if err == nil || !strings.Contains(err.Error(), "is not the run") {
		t.Errorf("a changed run: got %v", err)
	}
}

func TestStoreRefuses(t *testing.T) {
	tx, _ := world(t)
	dir := t.TempDir()
	run := makeRun(t, filepath.Join(dir, "run"), runOptions{Seed: 5})
	busy := filepath.Join(dir, "busy")
	os.MkdirAll(busy, 0o755)
	os.WriteFile(filepath.Join(busy, "x"), nil, 0o644)
	_, err := Prepare(context.Background(), Options{Out: busy, Runs: []string{run}, Low: 0.75, Taxonomy: tx, Sample: SampleOptions{Budget: 10, MinPerStratum: 2, Seed: 1}})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a non-empty folder: got %v", err)
	}
	out := filepath.Join(dir, "out")
	st := prepare(t, out, []string{run}, 1).Store
	it, _ := st.Next(false)
	for _, tc := range []struct {
		name string
		dc   Decision
	}{
		{"not in the sample", Decision{SHA256: strings.Repeat("0", 64), Decision: DecisionSkip}},
		{"unknown decision", Decision{SHA256: it.SHA256, Decision: "maybe"}},
		{"not a leaf", Decision{SHA256: it.SHA256, Decision: DecisionLabel, Choice: ChoiceNeither, Category: "apparel"}},
		{"not a category", Decision{SHA256: it.SHA256, Decision: DecisionLabel, Choice: ChoiceNeither, Category: "spaceships"}},
		{"choice without its category", Decision{SHA256: it.SHA256, Decision: DecisionLabel, Choice: Choice2, Category: "accessories/watches"}},
		{"unknown choice", Decision{SHA256: it.SHA256, Decision: DecisionLabel, Choice: "3", Category: "accessories/watches"}},
		{"bad colour", Decision{SHA256: it.SHA256, Decision: DecisionLabel, Choice: ChoiceNeither, Category: "accessories/watches", Attributes: map[vision.AttributeKind]string{"color": "ultraviolet"}}},
		{"bad kind", Decision{SHA256: it.SHA256, Decision: DecisionLabel, Choice: ChoiceNeither, Category: "accessories/watches", Attributes: map[vision.AttributeKind]string{"smell": "fresh"}}},
		{"skip with a category", Decision{SHA256: it.SHA256, Decision: DecisionSkip, Category: "accessories/watches"}},
	} {
		var inv *InvalidError
		if err := st.Record(tc.dc, false); !errors.As(err, &inv) {
			t.Errorf("%s: got %v, want an InvalidError", tc.name, err)
		}
	}
	if p := st.Progress(); p.Labelled+p.Skipped != 0 {
		t.Errorf("refused decisions were counted: %+v", p)
	}
	st.Close()
	// A corrupt line in the middle of the log names its line.
	os.WriteFile(filepath.Join(out, LogName), []byte("{\"sha256\": 1}\n{}\n"), 0o644)
	_, err = Open(out, []string{run}, tx)
	if err == nil || !strings.Contains(err.Error(), LogName+":1:") {
		t.Errorf("a corrupt log: got %v", err)
	}
}
