package pipeline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Review actions.
const (
	Accept  = "accept"
	Reject  = "reject"
	Correct = "correct"
)

// ListReview returns up to limit pending review items, oldest first.
func (s *Store) ListReview(ctx context.Context, limit int) ([]ReviewItem, error) {
	return s.reviewItems(ctx, `WHERE status = 'pending' ORDER BY id LIMIT ?`, limit)
}

// Corrections returns every corrected review item (for export-fixtures).
func (s *Store) Corrections(ctx context.Context) ([]ReviewItem, error) {
	return s.reviewItems(ctx, `WHERE status = 'corrected' ORDER BY id LIMIT ?`, 1<<30)
}

func (s *Store) reviewItems(ctx context.Context, where string, limit int) ([]ReviewItem, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, product_id, version, image_sha256, tag, status, correction, reasons, created_at, resolved_at FROM review_items `+where), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ReviewItem{}
	for rows.Next() {
		var it ReviewItem
		var tag, reasons, created string
		var corr, resolved sql.NullString
		if err := rows.Scan(&it.ID, &it.ProductID, &it.Version, &it.ImageSHA256, &tag, &it.Status, &corr, &reasons, &created, &resolved); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(tag), &it.Tag)
		it.Reasons = []Reason{}
		json.Unmarshal([]byte(reasons), &it.Reasons)
		if corr.Valid {
			var c Tag
			json.Unmarshal([]byte(corr.String), &c)
			it.Correction = &c
		}
		it.CreatedAt = parseTime(created)
		if resolved.Valid {
			t := parseTime(resolved.String)
			it.ResolvedAt = &t
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Resolve applies a human decision to a pending review item: accept keeps
// the tag as REVIEWED (its attributes too), reject drops it, correct
// replaces its category (and attributes, when given; the tag's own are
// kept otherwise) and puts it first. Each writes a new version of the
// product's tags (source "review") with its event, in one transaction.
// The caller checks a correction against the taxonomy.
func (s *Store) Resolve(ctx context.Context, id int64, action string, correction *Tag) (ReviewItem, Version, error) {
	var it ReviewItem
	var v Version
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var tag, status string
		err := tx.QueryRowContext(ctx, s.q(`SELECT product_id, version, image_sha256, tag, status FROM review_items WHERE id = ?`), id).
			Scan(&it.ProductID, &it.Version, &it.ImageSHA256, &tag, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if status != "pending" {
			return fmt.Errorf("%w: review item %d is already %s", ErrConflict, id, status)
		}
		it.ID, it.Status = id, status
		json.Unmarshal([]byte(tag), &it.Tag)
		// The product's current tags, with the decision applied.
		var curTags, rules string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT tags, rules_version FROM tag_versions WHERE product_id = ? ORDER BY version DESC LIMIT 1`), it.ProductID).Scan(&curTags, &rules); err != nil {
			return err
		}
		var tags []Tag
		json.Unmarshal([]byte(curTags), &tags)
		idx := -1
		for i, t := range tags {
			if t.Category == it.Tag.Category && t.Level != Reviewed && it.Tag.Category != "" {
				idx = i
				break
			}
		}
		var newStatus string
		var corrJSON any
		switch action {
		case Accept:
			newStatus = "accepted"
			if idx >= 0 {
				tags[idx].Level = Reviewed
				tags[idx].AttributeLevels = reviewedLevels(tags[idx].Attributes)
			}
		case Reject:
			newStatus = "rejected"
			if idx >= 0 {
				tags = append(tags[:idx], tags[idx+1:]...)
			}
		case Correct:
			if correction == nil || correction.Category == "" {
				return fmt.Errorf("%w: a correction needs a category", ErrInvalid)
			}
			newStatus = "corrected"
			c := Tag{Category: correction.Category, Attributes: correction.Attributes}
			if c.Attributes == nil {
				c.Attributes = it.Tag.Attributes
			}
			c.AttributeLevels = reviewedLevels(c.Attributes)
			c.Confidence, c.Level, c.Provider = 1, Reviewed, "human"
			if idx >= 0 {
				tags = append(tags[:idx], tags[idx+1:]...)
			}
			tags = append([]Tag{c}, tags...)
			b, _ := json.Marshal(c)
			corrJSON = string(b)
			it.Correction = &c
		default:
			return fmt.Errorf("%w: action %q: expected accept, reject or correct", ErrInvalid, action)
		}
		nv, err := s.insertVersion(ctx, tx, it.ProductID, it.ImageSHA256, rules, "review", tags, nil, versionMeta{})
		if err != nil {
			return err
		}
		ts := now()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE review_items SET status = ?, correction = ?, resolved_at = ? WHERE id = ?`), newStatus, corrJSON, ts, id); err != nil {
			return err
		}
		it.Status = newStatus
		t := parseTime(ts)
		it.ResolvedAt = &t
		v = nv
		return nil
	})
	return it, v, err
}

// reviewedLevels marks every attribute REVIEWED (nil without attributes).
func reviewedLevels(attrs map[string]string) map[string]string {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]string, len(attrs))
	for k := range attrs {
		out[k] = Reviewed
	}
	return out
}

// Errors the HTTP API maps to 409 and 400.
var (
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// CreateJob records an asynchronous request.
func (s *Store) CreateJob(ctx context.Context, id, productID string) (Job, error) {
	ts := now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO jobs (id, product_id, status, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?)`), id, productID, ts, ts)
		return err
	})
	t := parseTime(ts)
	return Job{ID: id, ProductID: productID, Status: "queued", CreatedAt: t, UpdatedAt: t}, err
}

// UpdateJob sets a job's status; errMsg is scrubbed of secrets.
func (s *Store) UpdateJob(ctx context.Context, id, status, errMsg string, version int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET status = ?, error = ?, version = ?, updated_at = ? WHERE id = ?`), status, s.scrub.String(errMsg), version, now(), id)
		return err
	})
}

// GetJob returns a job or ErrNotFound.
func (s *Store) GetJob(ctx context.Context, id string) (Job, error) {
	var j Job
	var created, updated string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, product_id, status, error, version, created_at, updated_at FROM jobs WHERE id = ?`), id).
		Scan(&j.ID, &j.ProductID, &j.Status, &j.Error, &j.Version, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return j, ErrNotFound
	}
	j.Error = s.scrub.String(j.Error)
	j.CreatedAt, j.UpdatedAt = parseTime(created), parseTime(updated)
	return j, err
}

// FailQueuedJobs marks jobs a previous process left queued or running as
// failed (their image bytes were in memory), at start-up.
func (s *Store) FailQueuedJobs(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET status = 'failed', error = 'the service restarted before the job ran: submit again', updated_at = ? WHERE status IN ('queued', 'running')`), now())
		if err == nil {
			n, _ = r.RowsAffected()
		}
		return err
	})
	return n, err
}
