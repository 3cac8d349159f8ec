package pipeline

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// stores returns the stores the suite runs against: SQLite always,
// PostgreSQL when CUTOVER_TEST_PG is set (each test in its own schema).
func stores(t *testing.T) map[string]*Store {
	t.Helper()
	out := map[string]*Store{}
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "p.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	out["sqlite"] = s
	if u := pgURL(t); u != "" {
		p, err := Open(context.Background(), u, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		out["postgres"] = p
	}
	return out
}

// pgURL makes a fresh schema in $CUTOVER_TEST_PG and returns a URL using
// it, or "" (with the reason logged) when the variable is unset.
func pgURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CUTOVER_TEST_PG")
	if base == "" {
		t.Log("PostgreSQL part skipped: CUTOVER_TEST_PG is unset (e.g. postgres://postgres@127.0.0.1:5432/test)")
		return ""
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "cutover_t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("CUTOVER_TEST_PG=%s: %v", base, err)
	}
	t.Cleanup(func() {
		db, _ := sql.Open("pgx", base)
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	sep := "?"
	if containsQ(base) {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func containsQ(s string) bool {
	for _, r := range s {
		if r == '?' {
			return true
		}
	}
	return false
}

// sampleTagging keeps two tags (HIGH, MEDIUM), drops a LOW runner-up and
// goes to review for its LOW material.
func sampleTagging() Tagging {
	return testRules().Apply(withAttrs(tags(0.95, 0.8, 0.6), "color", "black", 0.97, "material", "cotton", 0.6), "holysheep")
}

// TestStoreSuite: SQLite and PostgreSQL pass the same suite.
func TestStoreSuite(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tg := sampleTagging()
			v1, created, err := s.Commit(ctx, "p1", "sha-a", "r1", "holysheep", tg)
			if err != nil || !created || v1.Version != 1 {
				t.Fatalf("first commit: %+v %v %v", v1, created, err)
			}
			// Idempotent on (product, image, rules).
			again, created, err := s.Commit(ctx, "p1", "sha-a", "r1", "holysheep", tg)
			if err != nil || created || again.Version != 1 {
				t.Fatalf("repeat commit: %+v %v %v", again, created, err)
			}
			// A new image, or new rules, is a new version.
			if v, _, _ := s.Commit(ctx, "p1", "sha-b", "r1", "holysheep", tg); v.Version != 2 {
				t.Errorf("second image: version %d", v.Version)
			}
			if v, _, _ := s.Commit(ctx, "p1", "sha-b", "r2", "holysheep", tg); v.Version != 3 {
				t.Errorf("new rules: version %d", v.Version)
			}
			cur, err := s.Current(ctx, "p1")
			if err != nil || cur.Version != 3 || len(cur.Tags) != 2 || cur.Tags[0].Level != High || cur.Tags[0].AttributeLevels["material"] != Low {
				t.Errorf("current: %+v %v", cur, err)
			}
			hist, _ := s.History(ctx, "p1")
			if len(hist) != 3 || hist[2].Version != 1 {
				t.Errorf("history: %d versions", len(hist))
			}
			if _, err := s.Current(ctx, "nope"); err != ErrNotFound {
				t.Errorf("unknown product: %v", err)
			}
			// Outbox: one event per version, stable ids, delivered once marked.
			rows, _ := s.Pending(ctx, 10)
			if len(rows) != 3 || rows[0].Event.ID != eventID("p1", 1) || rows[0].Event.Type != "product_tags_updated" {
				t.Fatalf("pending: %+v", rows)
			}
			s.MarkDelivered(ctx, []int64{rows[0].Seq, rows[1].Seq})
			if rows, _ := s.Pending(ctx, 10); len(rows) != 1 || rows[0].Event.Version != 3 {
				t.Errorf("after delivery: %+v", rows)
			}
			// Review: each version waits once, with its best tag and why.
			items, _ := s.ListReview(ctx, 10)
			if len(items) != 3 || items[0].Tag.Category != "apparel/c0" || len(items[0].Reasons) != 1 || items[0].Reasons[0].Code != ReasonAttributeLow {
				t.Fatalf("review: %+v", items)
			}
			it, v, err := s.Resolve(ctx, items[2].ID, Correct, &Tag{Category: "accessories/watches"})
			if err != nil || it.Status != "corrected" || v.Version != 4 || v.Source != "review" || len(v.Tags) != 2 ||
				v.Tags[0].Category != "accessories/watches" || v.Tags[0].Level != Reviewed || v.Tags[0].Attributes["material"] != "cotton" ||
				v.Tags[0].AttributeLevels["material"] != Reviewed || v.Tags[1].Category != "apparel/c1" {
				t.Fatalf("correct: %+v %+v %v", it, v, err)
			}
			if _, _, err := s.Resolve(ctx, items[2].ID, Accept, nil); err == nil {
				t.Error("resolving twice must conflict")
			}
			s.Commit(ctx, "p2", "sha-c", "r1", "holysheep", tg)
			p2items, _ := s.ListReview(ctx, 10)
			last := p2items[len(p2items)-1]
			if _, v, err := s.Resolve(ctx, last.ID, Reject, nil); err != nil || len(v.Tags) != 1 || v.Tags[0].Category != "apparel/c1" || v.ProductID != "p2" || v.Version != 2 {
				t.Errorf("reject: %+v %v", v, err)
			}
			if _, v, err := s.Resolve(ctx, items[0].ID, Accept, nil); err != nil || v.Version != 5 {
				t.Errorf("accept: %+v %v", v, err)
			}
			if _, _, err := s.Resolve(ctx, 99999, Accept, nil); err != ErrNotFound {
				t.Errorf("unknown item: %v", err)
			}
			if _, _, err := s.Resolve(ctx, items[0].ID, "shrug", nil); err == nil {
				t.Error("unknown action accepted")
			}
			corr, _ := s.Corrections(ctx)
			if len(corr) != 1 || corr[0].Correction.Category != "accessories/watches" {
				t.Errorf("corrections: %+v", corr)
			}
			// Jobs and dead letters.
			s.CreateJob(ctx, "job1", "p9")
			s.UpdateJob(ctx, "job1", "done", "", 7)
			if j, err := s.GetJob(ctx, "job1"); err != nil || j.Status != "done" || j.Version != 7 {
				t.Errorf("job: %+v %v", j, err)
			}
			if _, err := s.GetJob(ctx, "nope"); err != ErrNotFound {
				t.Errorf("unknown job: %v", err)
			}
			s.DeadLetter(ctx, "k1", "p5", "src", 5, "throttled")
			s.DeadLetter(ctx, "k1", "p5", "src", 6, "throttled again")
			if done, _ := s.Done(ctx, "k1"); !done {
				t.Error("a dead letter counts as done")
			}
			// Concurrent writers of one product get distinct, contiguous versions.
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, _, err := s.Commit(ctx, "hot", fmt.Sprint("sha", i), "r1", "p", tg); err != nil {
						t.Errorf("concurrent commit: %v", err)
					}
				}()
			}
			wg.Wait()
			if h, _ := s.History(ctx, "hot"); len(h) != 20 || h[0].Version != 20 {
				t.Errorf("concurrent: %d versions, top %d", len(h), h[0].Version)
			}
			c, _ := s.Counts(ctx)
			if c.Versions != 27 || c.Events != 27 || c.DeadLetters != 1 {
				t.Errorf("counts %+v", c)
			}
			// Migrations are recorded and not re-applied.
			if err := s.Migrate(ctx); err != nil {
				t.Errorf("migrating again: %v", err)
			}
		})
	}
}
