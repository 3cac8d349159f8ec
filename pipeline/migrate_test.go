package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// legacyDB is a database made the way cutover's own runner made it: the
// DDL of testdata/legacy-v1.sql (one Exec: both drivers run several
// statements in one call), version 1 recorded in schema_migrations, and
// rows as the store wrote them then (a review item per LOW tag).
func legacyDB(t *testing.T, dialect, url string) {
	t.Helper()
	ddl, err := os.ReadFile(filepath.Join("testdata", "legacy-v1.sql"))
	if err != nil {
		t.Fatal(err)
	}
	id, driver, dsn := "INTEGER PRIMARY KEY AUTOINCREMENT", "sqlite", "file:"+strings.TrimPrefix(url, "sqlite://")
	if dialect == "postgres" {
		id, driver, dsn = "BIGSERIAL PRIMARY KEY", "pgx", url
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ph := func(q string) string {
		if dialect == "postgres" {
			return numberPlaceholders(q)
		}
		return q
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ph(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(strings.ReplaceAll(string(ddl), "{{id}}", id))
	exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`)
	exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, 1, "2026-11-01T00:00:00Z")
	ts := "2026-11-01T00:00:00Z"
	exec(`INSERT INTO products (id, current_version, updated_at) VALUES ('p1', 2, ?), ('p2', 1, ?)`, ts, ts)
	low := `{"category":"apparel/topwear/shirts","confidence":0.6,"level":"LOW","provider":"hs"}`
	v1 := `[{"category":"apparel/topwear/tshirts","attributes":{"color":"black"},"confidence":0.95,"level":"HIGH","provider":"hs"},` + low + `]`
	v2 := `[{"category":"apparel/topwear/tshirts","attributes":{"color":"black"},"confidence":0.95,"level":"HIGH","provider":"hs"}]`
	exec(`INSERT INTO tag_versions (product_id, version, image_sha256, rules_version, source, tags, idem_key, created_at) VALUES
		('p1', 1, 'sha-a', 'r1', 'hs', ?, 'p1|sha-a|r1', ?),
		('p1', 2, 'sha-a', 'r1', 'review', ?, NULL, ?),
		('p2', 1, 'sha-b', 'r1', 'hs', ?, 'p2|sha-b|r1', ?)`, v1, ts, v2, ts, v1, ts)
	exec(`INSERT INTO outbox (event_id, payload, created_at, delivered_at) VALUES ('e1', '{"event_id":"e1","product_id":"p1","version":1}', ?, ?)`, ts, ts)
	exec(`INSERT INTO outbox (event_id, payload, created_at) VALUES ('e2', '{"event_id":"e2","product_id":"p1","version":2}', ?),
		('e3', '{"event_id":"e3","product_id":"p2","version":1}', ?)`, ts, ts)
	exec(`INSERT INTO review_items (product_id, version, image_sha256, tag, status, created_at, resolved_at) VALUES ('p1', 1, 'sha-a', ?, 'rejected', ?, ?)`, low, ts, ts)
	exec(`INSERT INTO review_items (product_id, version, image_sha256, tag, status, created_at) VALUES ('p2', 1, 'sha-b', ?, 'pending', ?)`, low, ts)
	exec(`INSERT INTO jobs (id, product_id, status, error, created_at, updated_at) VALUES ('job_1', 'p1', 'failed', 'server_error: it''s; down?', ?, ?)`, ts, ts)
	exec(`INSERT INTO dead_letters (item_key, product_id, source, attempts, last_error, created_at) VALUES ('p3|sha-c|r1', 'p3', 'src', 5, 'throttled', ?)`, ts)
}

// TestMigrateLegacy: a store made by cutover's own migration runner
// (schema_migrations) migrates forward with goose on both dialects: every row is kept, items already queued get
// the reason tag_low, the schema is the same as a new store's, and a
// second Open changes nothing.
func TestMigrateLegacy(t *testing.T) {
	t.Parallel()
	urls := map[string]string{"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "legacy.db")}
	if u := pgURL(t); u != "" {
		urls["postgres"] = u
	}
	fresh := stores(t)
	for dialect, url := range urls {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			legacyDB(t, dialect, url)
			s, err := Open(ctx, url, "")
			if err != nil {
				t.Fatalf("opening a legacy store: %v", err)
			}
			defer s.Close()
			cur, latest, err := s.SchemaVersion(ctx)
			if err != nil || cur != latest || latest < 2 {
				t.Fatalf("schema version %d of %d, %v: want the latest", cur, latest, err)
			}
			if ok, _ := s.tableExists(ctx, legacyTable); ok {
				t.Errorf("%s is still there after the adoption", legacyTable)
			}
			// Data kept.
			c, err := s.Counts(ctx)
			want := Counts{Products: 2, Versions: 3, Events: 3, Delivered: 1, Review: 1, DeadLetters: 1}
			if err != nil || c != want {
				t.Errorf("counts %+v %v, want %+v", c, err, want)
			}
			if h, err := s.History(ctx, "p1"); err != nil || len(h) != 2 || h[0].Source != "review" || h[1].Tags[1].Level != Low {
				t.Errorf("history of p1: %+v %v", h, err)
			}
			if j, err := s.GetJob(ctx, "job_1"); err != nil || j.Error != "server_error: it's; down?" {
				t.Errorf("job: %+v %v", j, err)
			}
			items, err := s.ListReview(ctx, 10)
			if err != nil || len(items) != 1 || items[0].ProductID != "p2" || len(items[0].Reasons) != 1 || items[0].Reasons[0].Code != ReasonTagLow {
				t.Fatalf("pending review: %+v %v", items, err)
			}
			rs, err := s.ReviewStats(ctx)
			if err != nil || rs.Products != 2 || rs.Queued != 2 || rs.ByReason[ReasonTagLow] != 2 || rs.Labelled != 0 {
				t.Errorf("review stats %+v %v: want 2 products, both queued for tag_low, none labelled", rs, err)
			}
			// The old rows work with the new code.
			if _, v, err := s.Resolve(ctx, items[0].ID, Reject, nil); err != nil || v.Version != 2 || len(v.Tags) != 1 {
				t.Errorf("rejecting a legacy item: %+v %v", v, err)
			}
			if v, created, err := s.Commit(ctx, "p3", "sha-d", "r1", "hs", sampleTagging()); err != nil || !created || v.Version != 1 {
				t.Errorf("a new commit: %+v %v %v", v, created, err)
			}
			// The schema is a new store's.
			if got, want := schemaOf(t, s), schemaOf(t, fresh[dialect]); !reflect.DeepEqual(got, want) {
				t.Errorf("migrated schema differs from a new store's:\ngot  %v\nwant %v", got, want)
			}
			// Opening again is a no-op.
			s2, err := Open(ctx, url, "")
			if err != nil {
				t.Fatalf("reopening: %v", err)
			}
			s2.Close()
			if c2, _ := s.Counts(ctx); c2.Versions != 5 {
				t.Errorf("after reopening: %+v", c2)
			}
		})
	}
}

// schemaOf lists the store's tables with their columns and indexes.
func schemaOf(t *testing.T, s *Store) []string {
	t.Helper()
	q := `SELECT m.name || '.' || p.name || ' ' || p.type || ' notnull=' || p."notnull" || ' default=' || COALESCE(p.dflt_value, '-') || ' pk=' || p.pk
		FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
		UNION ALL SELECT 'index ' || name || ' on ' || tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'
		ORDER BY 1`
	if s.dialect == "postgres" {
		q = `SELECT table_name || '.' || column_name || ' ' || data_type || ' nullable=' || is_nullable || ' default=' || COALESCE(column_default, '-')
			FROM information_schema.columns WHERE table_schema = current_schema()
			UNION ALL SELECT 'index ' || indexname || ' on ' || tablename FROM pg_indexes WHERE schemaname = current_schema()
			ORDER BY 1`
	}
	rows, err := s.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		out = append(out, line)
	}
	if len(out) < 20 {
		t.Fatalf("schema of %d lines: %v", len(out), out)
	}
	return out
}

// TestMigrationsDownUp: every migration's Down undoes its Up, on both
// dialects (goose applies them; the files are what is tested).
func TestMigrationsDownUp(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			before := schemaOf(t, s)
			p, err := s.migrationProvider()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.DownTo(ctx, 0); err != nil {
				t.Fatalf("down: %v", err)
			}
			if ok, _ := s.tableExists(ctx, "products"); ok {
				t.Error("products is still there after migrating down to 0")
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("up again: %v", err)
			}
			if after := schemaOf(t, s); !reflect.DeepEqual(before, after) {
				t.Errorf("schema after down and up:\n%v\nwant\n%v", after, before)
			}
		})
	}
}

// ExampleStore_SchemaVersion: a new store is at the newest migration.
func ExampleStore_SchemaVersion() {
	dir, _ := os.MkdirTemp("", "pipeline")
	defer os.RemoveAll(dir)
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(dir, "p.db"), "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	cur, latest, _ := s.SchemaVersion(context.Background())
	fmt.Println(cur == latest)
	// Output: true
}
