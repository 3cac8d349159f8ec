package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestReviewStats: the share queued and the share wrong count each
// product's latest tagging by the provider once (review versions are not
// taggings), with every reason, on both stores.
func TestReviewStats(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if rs, err := s.ReviewStats(ctx); err != nil || rs.Products != 0 || rs.Labelled != 0 {
				t.Fatalf("empty store: %+v %v", rs, err)
			}
			r := testRules()
			commit := func(pid, sha, label string, tg Tagging) {
				t.Helper()
				tg.Label = label
				if _, _, err := s.Commit(ctx, pid, sha, "r1", "hs", tg); err != nil {
					t.Fatal(err)
				}
			}
			commit("p1", "a", "apparel/c0", sampleTagging())                // right, queued (attribute_low); superseded below
			commit("p2", "b", "apparel/c9", r.Apply(tags(0.95, 0.5), "hs")) // wrong, not queued
			commit("p3", "c", "apparel/c0", r.Apply(tags(0.6), "hs"))       // right, queued (category_low)
			commit("p4", "d", "", r.Apply(tags(0.95, 0.9), "hs"))           // unlabelled, queued (margin)
			commit("p1", "e", "apparel/c5", r.Apply(tags(0.95), "hs"))      // p1's latest: wrong, not queued
			items, _ := s.ListReview(ctx, 10)
			for _, it := range items {
				if it.ProductID == "p3" {
					if _, _, err := s.Resolve(ctx, it.ID, Accept, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := s.ReviewStats(ctx)
			want := ReviewStats{Products: 4, Queued: 2, ByReason: map[string]int64{ReasonCategoryLow: 1, ReasonMargin: 1},
				Labelled: 3, Wrong: 2, WrongQueued: 0, LabelledQueued: 1}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got  %+v %v\nwant %+v", got, err, want)
			}
		})
	}
}

// TestBackfillKeepsLabels: a fixture manifest's categories reach the
// store as labels, and a plain folder's items carry none.
func TestBackfillKeepsLabels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := imageDir(t, 20)
	var lines []byte
	for i := range 20 {
		b, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("fx-%d", i), "file": fmt.Sprintf("p%05d.png", i), "category": "apparel/topwear/tshirts"})
		lines = append(append(lines, b...), '\n')
	}
	os.WriteFile(filepath.Join(dir, "manifest.jsonl"), lines, 0o644)
	cfg := testConfig(t, provider(t, "", nil), "sqlite://"+filepath.Join(t.TempDir(), "p.db"), "")
	st, err := Open(ctx, cfg.Pipeline.Store.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, _ := OpenSource(ctx, dir, S3Options{})
	if _, err := Backfill(ctx, src, newTagger(t, cfg, st), 8, nil); err != nil {
		t.Fatal(err)
	}
	rs, err := st.ReviewStats(ctx)
	// Images the simulator does not know get a generic top-level answer:
	// every one is wrong, and LOW, so queued.
	if err != nil || rs.Products != 20 || rs.Labelled != 20 || rs.Wrong != 20 || rs.Queued != 20 || rs.WrongQueued != 20 {
		t.Errorf("stats %+v %v: want 20 labelled products, all wrong and queued", rs, err)
	}
}
