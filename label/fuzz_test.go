package label

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	fuzzOnce  sync.Once
	fuzzStore *Store
	fuzzRun   string
	fuzzOut   string // under sharedRoot
)

// fuzzSetup makes one run and one output folder per fuzzing process.
func fuzzSetup(f *testing.F) {
	fuzzOnce.Do(func() {
		world(f) // makes sharedRoot, which TestMain removes
		dir, err := os.MkdirTemp(sharedRoot, "fuzz-")
		if err != nil {
			f.Fatal(err)
		}
		fuzzRun = makeRun(f, filepath.Join(dir, "run"), runOptions{Seed: 5})
		tx, _ := world(f)
		fuzzOut = filepath.Join(dir, "out")
		sess, err := Prepare(f.Context(), Options{Out: fuzzOut, Runs: []string{fuzzRun}, Low: 0.75, Taxonomy: tx,
			Sample: SampleOptions{Budget: 10, MinPerStratum: 2, Seed: 1}})
		if err != nil {
			f.Fatal(err)
		}
		fuzzStore = sess.Store
	})
}

// FuzzLabelBody posts arbitrary bytes to POST /api/label: the server
// answers 200, 400, 409 or 422 and never fails or panics; whatever it
// saved can be read back.
func FuzzLabelBody(f *testing.F) {
	fuzzSetup(f)
	it, _ := fuzzStore.Next(false)
	sha := it.SHA256
	for _, s := range []string{
		`{"sha256":"` + sha + `","decision":"skip","replace":true}`,
		`{"sha256":"` + sha + `","decision":"label","choice":"neither","category":"accessories/watches","attributes":{"color":"red"},"replace":true}`,
		`{"sha256":"` + sha + `","decision":"label","choice":"1","category":"` + it.Answers[0].Category + `","replace":true}`,
		`{"sha256":"` + sha + `","decision":"label","choice":"neither","category":"apparel"}`,
		`{"decision":"skip"}`, `{}`, `[]`, `null`, `{"sha256":1}`, `{"attributes":{"":""}}`, "\x00", "",
	} {
		f.Add([]byte(s))
	}
	tx, _ := world(f)
	h := NewServer(fuzzStore, tx, ServerOptions{}).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/label", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusOK {
			st, err := Open(fuzzOut, []string{fuzzRun}, tx)
			if err != nil {
				t.Fatalf("%q was saved, but the folder no longer opens: %v", body, err)
			}
			st.Close()
		}
	})
}

// FuzzDecisionLog parses arbitrary bytes as labels.jsonl: an error naming
// the file and line, or decisions about sampled images only, never a
// panic.
func FuzzDecisionLog(f *testing.F) {
	fuzzSetup(f)
	it, _ := fuzzStore.Next(false)
	f.Add([]byte(`{"sha256":"` + it.SHA256 + `","decision":"skip","time":"2026-01-01T00:00:00Z"}` + "\n"))
	f.Add([]byte(`{"sha256":"` + it.SHA256 + `","decision":"label","choice":"neither","category":"accessories/watches","time":"2026-01-01T00:00:00Z"}` + "\n{\"sha"))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte("not json"))
	f.Add([]byte("{} {}\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		decisions, keep, err := fuzzStore.parseLog("labels.jsonl", log)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "labels.jsonl:") {
				t.Fatalf("an error that names no line: %v", err)
			}
			return
		}
		if keep > len(log) || (keep > 0 && log[keep-1] != '\n') {
			t.Fatalf("keeps %d bytes of %d", keep, len(log))
		}
		for sha, dc := range decisions {
			if _, ok := fuzzStore.index[sha]; !ok || dc.SHA256 != sha {
				t.Fatalf("a decision about %q, not in the sample", sha)
			}
		}
	})
}
