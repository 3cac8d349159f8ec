package pipeline

import (
	"context"
	"fmt"
)

// ReviewStats sets the review queue beside the provider's errors, over
// each product's latest tagging by the provider (human review versions
// are not taggings): how many went to review, why, and, where the source
// item carried a label, how many the provider got wrong.
type ReviewStats struct {
	// Products is the number of products the provider tagged.
	Products int64 `json:"products"`
	// Queued is how many of their latest taggings went to review, and
	// ByReason how many had each reason (a tagging may have several).
	Queued   int64            `json:"queued"`
	ByReason map[string]int64 `json:"by_reason"`
	// Labelled is how many taggings had a source label; Wrong how many of
	// those had a best category other than the label; WrongQueued how
	// many of the wrong ones went to review; LabelledQueued how many
	// labelled ones went to review.
	Labelled       int64 `json:"labelled"`
	Wrong          int64 `json:"wrong"`
	WrongQueued    int64 `json:"wrong_queued"`
	LabelledQueued int64 `json:"labelled_queued"`
}

// reasonCodesCounted are the reason codes ReviewStats counts.
var reasonCodesCounted = []string{ReasonCategoryLow, ReasonMargin, ReasonAttributeLow, ReasonNoCategory, ReasonTagLow}

// ReviewStats computes the statistics in one pass over the latest provider
// version of each product.
func (s *Store) ReviewStats(ctx context.Context) (ReviewStats, error) {
	st := ReviewStats{ByReason: map[string]int64{}}
	// A tagging's reason codes are a comma-separated list: wrapping it in
	// commas makes each code a ',code,' substring.
	q := `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN t.review_reasons <> '' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.label_correct IS NOT NULL THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.label_correct = 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.label_correct = 0 AND t.review_reasons <> '' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN t.label_correct IS NOT NULL AND t.review_reasons <> '' THEN 1 ELSE 0 END), 0)`
	for _, c := range reasonCodesCounted {
		q += fmt.Sprintf(",\n\t\tCOALESCE(SUM(CASE WHEN ',' || t.review_reasons || ',' LIKE '%%,%s,%%' THEN 1 ELSE 0 END), 0)", c)
	}
	q += `
		FROM tag_versions t
		WHERE t.source <> 'review' AND t.version = (
			SELECT MAX(v.version) FROM tag_versions v WHERE v.product_id = t.product_id AND v.source <> 'review')`
	counts := make([]int64, len(reasonCodesCounted))
	dest := []any{&st.Products, &st.Queued, &st.Labelled, &st.Wrong, &st.WrongQueued, &st.LabelledQueued}
	for i := range counts {
		dest = append(dest, &counts[i])
	}
	if err := s.db.QueryRowContext(ctx, q).Scan(dest...); err != nil {
		return st, fmt.Errorf("computing review statistics: %w", err)
	}
	for i, c := range reasonCodesCounted {
		if counts[i] > 0 {
			st.ByReason[c] = counts[i]
		}
	}
	return st, nil
}
