package pipeline

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/cutover/cutover/internal/secret"
)

// ErrNotFound is returned for an unknown product, job or review item.
var ErrNotFound = errors.New("not found")

// Version is one version of a product's tags.
type Version struct {
	ProductID    string `json:"product_id"`
	Version      int    `json:"version"`
	ImageSHA256  string `json:"image_sha256"`
	RulesVersion string `json:"rules_version"`
	// Source is the provider that tagged the image, or "review" for a
	// human decision.
	Source    string    `json:"source"`
	Tags      []Tag     `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
}

// Event is a product_tags_updated event as the outbox holds and delivers it.
type Event struct {
	// ID is stable: redeliveries of one event carry the same id, for
	// consumers to de-duplicate.
	ID         string    `json:"event_id"`
	Type       string    `json:"event_type"`
	ProductID  string    `json:"product_id"`
	Version    int       `json:"version"`
	Categories []string  `json:"tag_categories"`
	Tags       []Tag     `json:"tags"`
	Source     string    `json:"source"`
	Timestamp  time.Time `json:"timestamp"`
}

// ReviewItem is a doubtful tagging waiting for a human: its best tag and
// the reasons it is doubtful.
type ReviewItem struct {
	ID          int64      `json:"id"`
	ProductID   string     `json:"product_id"`
	Version     int        `json:"version"`
	ImageSHA256 string     `json:"image_sha256"`
	Tag         Tag        `json:"tag"`
	Reasons     []Reason   `json:"reasons"`
	Status      string     `json:"status"` // pending, accepted, rejected, corrected
	Correction  *Tag       `json:"correction,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
}

// Job is an asynchronous tagging request.
type Job struct {
	ID        string    `json:"job_id"`
	ProductID string    `json:"product_id"`
	Status    string    `json:"status"` // queued, running, done, failed
	Error     string    `json:"error,omitempty"`
	Version   int       `json:"version,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// OutboxRow is an event waiting for delivery.
type OutboxRow struct {
	Seq   int64
	Event Event
}

// Store is the tag store over database/sql, with one schema and one set
// of versioned migrations for SQLite and PostgreSQL (the SQL differs only
// in placeholders and the id column).
type Store struct {
	db      *sql.DB
	dialect string // sqlite or postgres
	// writeMu serialises SQLite writers (one writer at a time is SQLite's
	// rule; waiting here is cheaper than SQLITE_BUSY retries).
	writeMu sync.Mutex
	// commits feed the group committer.
	commits       chan *commitReq
	closed        chan struct{}
	committerDone chan struct{}
	closeOnce     sync.Once
	// scrub removes secrets from the error text the store keeps (jobs,
	// dead letters) and returns.
	scrub *secret.Scrubber
}

// Option tunes Open.
type Option func(*Store)

// WithScrubber removes sc's secrets from every error message the store
// writes (jobs.error, dead_letters.last_error) or reads back. Without it,
// only credentials carried by convention (?key=, …) are removed.
func WithScrubber(sc *secret.Scrubber) Option { return func(s *Store) { s.scrub = sc } }

// Open connects to url (sqlite://PATH or postgres://…) and migrates. A
// relative SQLite path is relative to base.
func Open(ctx context.Context, rawURL, base string, opts ...Option) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("pipeline.store.url: %w", err)
	}
	var s *Store
	switch u.Scheme {
	case "sqlite":
		path := strings.TrimPrefix(rawURL, "sqlite://")
		if !filepath.IsAbs(path) && base != "" {
			path = filepath.Join(base, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(8)
		s = &Store{db: db, dialect: "sqlite"}
	case "postgres", "postgresql":
		db, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		s = &Store{db: db, dialect: "postgres"}
	default:
		return nil, fmt.Errorf("pipeline.store.url %q: expected sqlite://PATH or postgres://…", rawURL)
	}
	for _, o := range opts {
		o(s)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, s.scrub.Wrap(fmt.Errorf("opening the %s store: %w", s.dialect, err))
	}
	if err := s.Migrate(ctx); err != nil {
		s.db.Close()
		return nil, s.scrub.Wrap(err)
	}
	s.commits, s.closed, s.committerDone = make(chan *commitReq, 256), make(chan struct{}), make(chan struct{})
	go s.committer()
	return s, nil
}

// Close finishes the queued commits and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		<-s.committerDone
	})
	return s.db.Close()
}

// Dialect is sqlite or postgres.
func (s *Store) Dialect() string { return s.dialect }

// q rewrites ? placeholders to $1, $2, … for PostgreSQL. A ? inside a
// quoted string ('…', with ” as an escaped quote) or a quoted identifier
// ("…") is text, not a placeholder, and is left alone.
func (s *Store) q(query string) string {
	if s.dialect != "postgres" {
		return query
	}
	return numberPlaceholders(query)
}

func numberPlaceholders(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte // the quote we are inside, or 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0 // a doubled quote closes and reopens: same result
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// IdemKey is the idempotency key of a write: (product, image, rules).
func IdemKey(productID, sha, rulesVersion string) string {
	return productID + "|" + sha + "|" + rulesVersion
}

// eventID derives a stable event id from what the event announces.
func eventID(productID string, version int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("product_tags_updated|%s|%d", productID, version)))
	return hex.EncodeToString(h[:16])
}

// tx runs fn in a transaction, serialising writers on SQLite, retrying
// serialisation conflicts a few times.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.dialect == "sqlite" {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var tx *sql.Tx
		tx, err = s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err = fn(tx); err != nil {
			tx.Rollback()
			if isConflict(err) {
				continue
			}
			return err
		}
		if err = tx.Commit(); err != nil {
			if isConflict(err) {
				continue
			}
			return err
		}
		return nil
	}
	return err
}

func isConflict(err error) bool {
	s := err.Error()
	return strings.Contains(s, "40001") || strings.Contains(s, "40P01") || strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
}

// Commit writes one image's tagging as the product's next version, its
// product_tags_updated event into the outbox and its LOW tags into the
// review queue, in one transaction. It is idempotent on (product, image,
// rules version): a second commit of the same key returns the version the
// first wrote and created false.
//
// On SQLite, concurrent commits are grouped: a committer writes up to 128
// waiting commits in one transaction (one fsync instead of 128; a commit
// that finds the committer idle goes alone). If a group fails, each of its
// commits is retried on its own, so one bad commit never fails another.
func (s *Store) Commit(ctx context.Context, productID, sha, rulesVersion, source string, t Tagging) (Version, bool, error) {
	req := &commitReq{productID: productID, sha: sha, rules: rulesVersion, source: source, t: t, done: make(chan commitRes, 1)}
	if s.dialect == "postgres" {
		// PostgreSQL commits concurrent transactions in parallel and
		// groups their WAL flushes itself: no client-side grouping. The
		// idempotency check is the unique idem_key itself (one round trip
		// fewer than a SELECT first): a duplicate rolls back and reads the
		// version the first commit wrote.
		var v Version
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var err error
			v, err = s.insertTx(ctx, tx, req)
			return err
		})
		if err != nil && strings.Contains(err.Error(), "23505") && strings.Contains(err.Error(), "idem_key") {
			v, err = s.versionByKey(ctx, IdemKey(productID, sha, rulesVersion))
			return v, false, err
		}
		return v, err == nil, err
	}
	select {
	case s.commits <- req:
	case <-ctx.Done():
		return Version{}, false, ctx.Err()
	case <-s.closed:
		return Version{}, false, errors.New("the store is closed")
	}
	select {
	case r := <-req.done:
		return r.v, r.created, r.err
	case <-s.committerDone:
		select {
		case r := <-req.done:
			return r.v, r.created, r.err
		default:
			return Version{}, false, errors.New("the store is closed")
		}
	case <-ctx.Done():
		// Queued: it may still commit; a retry is idempotent.
		return Version{}, false, ctx.Err()
	}
}

type commitReq struct {
	productID, sha, rules, source string
	t                             Tagging
	done                          chan commitRes
}

type commitRes struct {
	v       Version
	created bool
	err     error
}

// committer groups the commits waiting in s.commits into transactions.
func (s *Store) committer() {
	defer close(s.committerDone)
	const maxGroup = 128
	for {
		var first *commitReq
		select {
		case first = <-s.commits:
		case <-s.closed:
			select {
			case first = <-s.commits: // finish what was queued
			default:
				return
			}
		}
		group := []*commitReq{first}
	collect:
		for len(group) < maxGroup {
			select {
			case r := <-s.commits:
				group = append(group, r)
			default:
				break collect
			}
		}
		ctx := context.Background()
		results := make([]commitRes, len(group))
		err := s.tx(ctx, func(tx *sql.Tx) error {
			for i, r := range group {
				v, created, err := s.commitTx(ctx, tx, r)
				if err != nil {
					return err
				}
				results[i] = commitRes{v: v, created: created}
			}
			return nil
		})
		if err != nil && len(group) > 1 {
			for i, r := range group {
				results[i] = commitRes{}
				results[i].err = s.tx(ctx, func(tx *sql.Tx) error {
					v, created, err := s.commitTx(ctx, tx, r)
					results[i].v, results[i].created = v, created
					return err
				})
			}
		} else if err != nil {
			results[0].err = err
		}
		for i, r := range group {
			r.done <- results[i]
		}
	}
}

// commitTx is one commit inside a transaction.
func (s *Store) commitTx(ctx context.Context, tx *sql.Tx, r *commitReq) (Version, bool, error) {
	key := IdemKey(r.productID, r.sha, r.rules)
	var existing int
	switch err := tx.QueryRowContext(ctx, s.q(`SELECT version FROM tag_versions WHERE idem_key = ?`), key).Scan(&existing); {
	case err == nil:
		return Version{ProductID: r.productID, Version: existing, ImageSHA256: r.sha, RulesVersion: r.rules, Source: r.source, Tags: r.t.Tags}, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return Version{}, false, err
	}
	ver, err := s.insertTx(ctx, tx, r)
	return ver, err == nil, err
}

// insertTx writes a new version with its event and its review item.
func (s *Store) insertTx(ctx context.Context, tx *sql.Tx, r *commitReq) (Version, error) {
	key := IdemKey(r.productID, r.sha, r.rules)
	meta := versionMeta{reviewReasons: reasonCodes(r.t.Reasons), label: r.t.Label}
	ver, err := s.insertVersion(ctx, tx, r.productID, r.sha, r.rules, r.source, r.t.Tags, &key, meta)
	if err != nil || len(r.t.Review) == 0 {
		return ver, err
	}
	// One statement for all review items (the rules make at most one).
	ts := now()
	reasons := r.t.Reasons
	if reasons == nil {
		reasons = []Reason{}
	}
	rb, _ := json.Marshal(reasons)
	var marks []string
	var args []any
	for _, rv := range r.t.Review {
		b, _ := json.Marshal(rv)
		marks = append(marks, "(?, ?, ?, ?, 'pending', ?, ?)")
		args = append(args, r.productID, ver.Version, r.sha, string(b), string(rb), ts)
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO review_items (product_id, version, image_sha256, tag, status, reasons, created_at) VALUES `+strings.Join(marks, ", ")), args...)
	return ver, err
}

// versionMeta is what a version row keeps beside its tags, for the review
// statistics: the reason codes of its review item and its source label.
type versionMeta struct {
	reviewReasons string
	label         string
}

// insertVersion bumps the product's version (the row lock serialises
// writers of one product on PostgreSQL), writes the version and its event.
func (s *Store) insertVersion(ctx context.Context, tx *sql.Tx, productID, sha, rulesVersion, source string, tags []Tag, key *string, meta versionMeta) (Version, error) {
	ts := now()
	var ver int
	if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO products (id, current_version, updated_at) VALUES (?, 1, ?)
		ON CONFLICT (id) DO UPDATE SET current_version = products.current_version + 1, updated_at = excluded.updated_at
		RETURNING current_version`), productID, ts).Scan(&ver); err != nil {
		return Version{}, err
	}
	if tags == nil {
		tags = []Tag{}
	}
	tb, _ := json.Marshal(tags)
	var label, correct any // NULL without a label
	if meta.label != "" {
		label, correct = meta.label, 0
		if len(tags) > 0 && tags[0].Category == meta.label {
			correct = 1
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tag_versions (product_id, version, image_sha256, rules_version, source, tags, idem_key, created_at, review_reasons, label_category, label_correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		productID, ver, sha, rulesVersion, source, string(tb), key, ts, meta.reviewReasons, label, correct); err != nil {
		return Version{}, err
	}
	v := Version{ProductID: productID, Version: ver, ImageSHA256: sha, RulesVersion: rulesVersion, Source: source, Tags: tags, CreatedAt: parseTime(ts)}
	ev := Event{ID: eventID(productID, ver), Type: "product_tags_updated", ProductID: productID, Version: ver, Tags: tags, Source: source, Timestamp: v.CreatedAt, Categories: []string{}}
	for _, t := range tags {
		ev.Categories = append(ev.Categories, t.Category)
	}
	eb, _ := json.Marshal(ev)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbox (event_id, payload, created_at) VALUES (?, ?, ?)`), ev.ID, string(eb), ts); err != nil {
		return Version{}, err
	}
	return v, nil
}

// Done reports whether (product, image, rules) has been committed or dead-lettered.
func (s *Store) Done(ctx context.Context, key string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM tag_versions WHERE idem_key = ?) + (SELECT COUNT(*) FROM dead_letters WHERE item_key = ?)`), key, key).Scan(&n)
	return n > 0, err
}

// Current returns a product's current tags, or ErrNotFound.
func (s *Store) Current(ctx context.Context, productID string) (Version, error) {
	vs, err := s.versions(ctx, productID, true)
	if err != nil {
		return Version{}, err
	}
	return vs[0], nil
}

// History returns every version of a product's tags, newest first.
func (s *Store) History(ctx context.Context, productID string) ([]Version, error) {
	return s.versions(ctx, productID, false)
}

func (s *Store) versions(ctx context.Context, productID string, onlyCurrent bool) ([]Version, error) {
	q := `SELECT version, image_sha256, rules_version, source, tags, created_at FROM tag_versions WHERE product_id = ? ORDER BY version DESC`
	if onlyCurrent {
		q += ` LIMIT 1`
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), productID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v := Version{ProductID: productID}
		var tags, created string
		if err := rows.Scan(&v.Version, &v.ImageSHA256, &v.RulesVersion, &v.Source, &tags, &created); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(tags), &v.Tags)
		v.CreatedAt = parseTime(created)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// Pending returns up to limit undelivered events, oldest first.
func (s *Store) Pending(ctx context.Context, limit int) ([]OutboxRow, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, payload FROM outbox WHERE delivered_at IS NULL ORDER BY seq LIMIT ?`), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		var payload string
		if err := rows.Scan(&r.Seq, &payload); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &r.Event); err != nil {
			return nil, fmt.Errorf("outbox row %d: %w", r.Seq, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeliverPending hands up to limit undelivered events to deliver and marks
// them delivered when it returns nil. On PostgreSQL the rows are claimed
// with FOR UPDATE SKIP LOCKED for the delivery, so that publishers of
// several workers deliver disjoint batches; on SQLite (one process) they
// are read, delivered and then marked.
func (s *Store) DeliverPending(ctx context.Context, limit int, deliver func([]Event) error) (int, error) {
	if s.dialect != "postgres" {
		rows, err := s.Pending(ctx, limit)
		if err != nil || len(rows) == 0 {
			return 0, err
		}
		events, seqs := splitRows(rows)
		if err := deliver(events); err != nil {
			return 0, err
		}
		return len(rows), s.MarkDelivered(ctx, seqs)
	}
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rs, err := tx.QueryContext(ctx, `SELECT seq, payload FROM outbox WHERE delivered_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		var rows []OutboxRow
		for rs.Next() {
			var r OutboxRow
			var payload string
			if err := rs.Scan(&r.Seq, &payload); err != nil {
				rs.Close()
				return err
			}
			if err := json.Unmarshal([]byte(payload), &r.Event); err != nil {
				rs.Close()
				return fmt.Errorf("outbox row %d: %w", r.Seq, err)
			}
			rows = append(rows, r)
		}
		rs.Close()
		if len(rows) == 0 {
			return nil
		}
		events, seqs := splitRows(rows)
		if err := deliver(events); err != nil {
			return err
		}
		if err := s.markTx(ctx, tx, seqs); err != nil {
			return err
		}
		n = len(rows)
		return nil
	})
	return n, err
}

func splitRows(rows []OutboxRow) ([]Event, []int64) {
	events := make([]Event, len(rows))
	seqs := make([]int64, len(rows))
	for i, r := range rows {
		events[i], seqs[i] = r.Event, r.Seq
	}
	return events, seqs
}

// MarkDelivered records that the events up to these seqs were delivered.
func (s *Store) MarkDelivered(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error { return s.markTx(ctx, tx, seqs) })
}

// markTx marks seqs delivered in one statement.
func (s *Store) markTx(ctx context.Context, tx *sql.Tx, seqs []int64) error {
	args := make([]any, 0, len(seqs)+1)
	args = append(args, now())
	marks := make([]string, len(seqs))
	for i, seq := range seqs {
		marks[i] = "?"
		args = append(args, seq)
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET delivered_at = ? WHERE seq IN (`+strings.Join(marks, ", ")+`)`), args...)
	return err
}

// Counts are the store's totals, for tests, benchmarks and the CLI.
type Counts struct {
	Products, Versions, Events, Delivered, Review, DeadLetters int64
}

// Counts returns the totals.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM products), (SELECT COUNT(*) FROM tag_versions), (SELECT COUNT(*) FROM outbox),
		(SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL), (SELECT COUNT(*) FROM review_items WHERE status = 'pending'),
		(SELECT COUNT(*) FROM dead_letters)`).Scan(&c.Products, &c.Versions, &c.Events, &c.Delivered, &c.Review, &c.DeadLetters)
	return c, err
}

// DeadLetter records an item that failed max_attempts times.
func (s *Store) DeadLetter(ctx context.Context, key, productID, source string, attempts int, lastErr string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO dead_letters (item_key, product_id, source, attempts, last_error, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (item_key) DO UPDATE SET attempts = excluded.attempts, last_error = excluded.last_error`), key, productID, source, attempts, s.scrub.String(lastErr), now())
		return err
	})
}

// DeadLetters lists the dead-lettered items, their errors scrubbed of
// secrets (rows written without a scrubber included).
func (s *Store) DeadLetters(ctx context.Context) ([]map[string]any, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT item_key, product_id, source, attempts, last_error, created_at FROM dead_letters ORDER BY created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var key, pid, src, lastErr, created string
		var attempts int
		if err := rows.Scan(&key, &pid, &src, &attempts, &lastErr, &created); err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"item_key": key, "product_id": pid, "source": src, "attempts": attempts, "last_error": s.scrub.String(lastErr), "created_at": created})
	}
	return out, rows.Err()
}

// versionByKey returns the version an idempotency key wrote.
func (s *Store) versionByKey(ctx context.Context, key string) (Version, error) {
	var v Version
	var tags, created string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT product_id, version, image_sha256, rules_version, source, tags, created_at FROM tag_versions WHERE idem_key = ?`), key).
		Scan(&v.ProductID, &v.Version, &v.ImageSHA256, &v.RulesVersion, &v.Source, &tags, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound // dead-lettered, not tagged
	}
	json.Unmarshal([]byte(tags), &v.Tags)
	v.CreatedAt = parseTime(created)
	return v, err
}

// DoneKeys returns the idempotency keys of a rules version already
// committed or dead-lettered: a backfill's checkpoint, read once.
func (s *Store) DoneKeys(ctx context.Context, rulesVersion string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, q := range []string{`SELECT idem_key FROM tag_versions WHERE rules_version = ? AND idem_key IS NOT NULL`, `SELECT item_key FROM dead_letters WHERE item_key LIKE ?`} {
		arg := rulesVersion
		if strings.Contains(q, "LIKE") {
			arg = "%|" + rulesVersion
		}
		rows, err := s.db.QueryContext(ctx, s.q(q), arg)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
