// Package pipeline is the post-cutover tagging service: business rules
// that turn a provider's answer into the catalogue's tags, a versioned tag
// store (SQLite embedded, PostgreSQL at scale) with a transactional outbox
// of product_tags_updated events, the HTTP API, the human review queue and
// backfills that resume after a crash and do each item exactly once.
//
// It is not a second proxy: it calls the configured provider directly
// through the same vision clients the rest of cutover uses.
package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
)

// Confidence levels.
const (
	High   = "HIGH"
	Medium = "MEDIUM"
	Low    = "LOW"
	// Reviewed marks a tag a human accepted or corrected.
	Reviewed = "REVIEWED"
)

// Tag is one catalogue tag: a category with the image's attributes, its
// confidence and level, and who said so.
type Tag struct {
	Category   string            `json:"category"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// AttributeConfidences and AttributeLevels give each attribute's
	// confidence (0–1) and level, by kind, as the provider answered.
	AttributeConfidences map[string]float64 `json:"attribute_confidences,omitempty"`
	AttributeLevels      map[string]string  `json:"attribute_levels,omitempty"`
	Confidence           float64            `json:"confidence"`
	Level                string             `json:"level"`
	Provider             string             `json:"provider"`
}

// Reason codes: why a tagging went to review.
const (
	// ReasonCategoryLow: the best category is LOW.
	ReasonCategoryLow = "category_low"
	// ReasonMargin: the best two categories are within review_margin.
	ReasonMargin = "margin"
	// ReasonAttributeLow: a kept attribute is LOW.
	ReasonAttributeLow = "attribute_low"
	// ReasonNoCategory: no category is left to tag the product with.
	ReasonNoCategory = "no_category"
	// ReasonTagLow marks review items stored one per LOW tag.
	ReasonTagLow = "tag_low"
)

// Reason is one reason a tagging is doubtful, with what the reviewer needs
// to judge it.
type Reason struct {
	Code string `json:"code"`
	// Attribute is the LOW attribute's kind (attribute_low).
	Attribute string `json:"attribute,omitempty"`
	// RunnerUp and Margin are the second category and its distance to the
	// best (margin).
	RunnerUp string  `json:"runner_up,omitempty"`
	Margin   float64 `json:"margin,omitempty"`
	// Confidence is the LOW category's or attribute's.
	Confidence float64 `json:"confidence,omitempty"`
}

// String is the reason for people: "margin: apparel/topwear/tshirts 0.06".
func (r Reason) String() string {
	switch r.Code {
	case ReasonMargin:
		return fmt.Sprintf("%s: runner-up %s %.2f behind", r.Code, r.RunnerUp, r.Margin)
	case ReasonAttributeLow:
		return fmt.Sprintf("%s: %s %.2f", r.Code, r.Attribute, r.Confidence)
	case ReasonCategoryLow:
		return fmt.Sprintf("%s: %.2f", r.Code, r.Confidence)
	}
	return r.Code
}

// Tagging is the outcome of the rules for one image.
type Tagging struct {
	// Tags are kept, most confident first: the best category whatever its
	// level (the catalogue's best guess until a human decides), then the
	// runner-ups of MEDIUM or HIGH level.
	Tags []Tag `json:"tags"`
	// Review holds the tag a reviewer judges (the best category; an empty
	// category when there is none), when the tagging is doubtful; at most
	// one, nil otherwise.
	Review []Tag `json:"review,omitempty"`
	// Reasons says why the tagging went to review.
	Reasons []Reason `json:"review_reasons,omitempty"`
	// Removed lists prohibited tags, LOW runner-ups and those past
	// max_tags, for the log.
	Removed []Tag `json:"removed,omitempty"`
	// Label is the category the source item was labelled with (a fixture
	// manifest's), "" when it has none: kept with the version to measure
	// how often the provider's best category is wrong.
	Label string `json:"-"`
}

// Rules applies config.Rules.
type Rules struct {
	cfg config.Rules
}

// NewRules wraps the configured rules.
func NewRules(r config.Rules) *Rules { return &Rules{cfg: r} }

// Version is the rules version writes are keyed by.
func (r *Rules) Version() string { return r.cfg.Version }

// Level gives a confidence its level.
func (r *Rules) Level(c float64) string {
	switch {
	case c >= *r.cfg.High:
		return High
	case c >= *r.cfg.Medium:
		return Medium
	}
	return Low
}

// Prohibited reports whether a category path has a prohibited segment.
func (r *Rules) Prohibited(category string) bool {
	for _, seg := range strings.Split(strings.ToLower(category), "/") {
		for _, p := range r.cfg.Prohibited {
			if seg == strings.ToLower(strings.TrimSpace(p)) {
				return true
			}
		}
	}
	return false
}

// marginEpsilon absorbs the rounding of confidence differences, so that
// 0.80 − 0.75 counts as within a margin of 0.05.
const marginEpsilon = 1e-9

// Apply turns canonical tags from provider into the catalogue's tags, in
// order: (1) prohibited categories removed; (2) levels assigned; (3)
// runner-up categories below medium (LOW) removed, the best one kept
// whatever its level; (4) the max_tags most confident kept; (5) the
// tagging sent to review when its best category is LOW, when its best two
// categories (before step 3) are within review_margin of each other, when
// a kept attribute is LOW, or when no category is left. Every kept tag
// carries the image's most confident value of each attribute kind, with
// its confidence and level.
func (r *Rules) Apply(t vision.Tags, provider string) Tagging {
	var attrs map[string]string
	var attrConf map[string]float64
	var attrLevel map[string]string
	kinds := make([]string, 0, len(t.Attributes))
	for k, v := range t.Attributes {
		if len(v) == 0 {
			continue
		}
		if attrs == nil {
			attrs, attrConf, attrLevel = map[string]string{}, map[string]float64{}, map[string]string{}
		}
		attrs[string(k)] = v[0].Value
		attrConf[string(k)] = v[0].Confidence
		attrLevel[string(k)] = r.Level(v[0].Confidence)
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	var out Tagging
	var cands []Tag
	for _, c := range t.Categories {
		tag := Tag{Category: c.Value, Confidence: c.Confidence, Level: r.Level(c.Confidence), Provider: provider,
			Attributes: attrs, AttributeConfidences: attrConf, AttributeLevels: attrLevel}
		if r.Prohibited(c.Value) {
			out.Removed = append(out.Removed, tag)
			continue
		}
		cands = append(cands, tag)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Confidence > cands[j].Confidence })
	var kept []Tag
	for i, tag := range cands {
		if i > 0 && tag.Level == Low {
			out.Removed = append(out.Removed, tag)
			continue
		}
		kept = append(kept, tag)
	}
	if len(kept) > r.cfg.MaxTags {
		out.Removed = append(out.Removed, kept[r.cfg.MaxTags:]...)
		kept = kept[:r.cfg.MaxTags]
	}
	out.Tags = kept
	var best Tag
	if len(kept) == 0 {
		best = Tag{Provider: provider, Attributes: attrs, AttributeConfidences: attrConf, AttributeLevels: attrLevel, Level: Low}
		out.Reasons = append(out.Reasons, Reason{Code: ReasonNoCategory})
	} else {
		best = kept[0]
		if best.Level == Low {
			out.Reasons = append(out.Reasons, Reason{Code: ReasonCategoryLow, Confidence: best.Confidence})
		}
		if m := r.margin(); m > 0 && len(cands) > 1 {
			if gap := cands[0].Confidence - cands[1].Confidence; gap <= m+marginEpsilon {
				out.Reasons = append(out.Reasons, Reason{Code: ReasonMargin, RunnerUp: cands[1].Category, Margin: gap})
			}
		}
	}
	for _, k := range kinds {
		if len(kept) > 0 && attrLevel[k] == Low {
			out.Reasons = append(out.Reasons, Reason{Code: ReasonAttributeLow, Attribute: k, Confidence: attrConf[k]})
		}
	}
	if len(out.Reasons) > 0 {
		out.Review = []Tag{best}
	}
	return out
}

// margin is review_margin, 0 (off) when unset.
func (r *Rules) margin() float64 {
	if r.cfg.ReviewMargin == nil {
		return 0
	}
	return *r.cfg.ReviewMargin
}

// reasonCodes is the comma-separated list of distinct reason codes.
func reasonCodes(rs []Reason) string {
	var codes []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Code] {
			seen[r.Code] = true
			codes = append(codes, r.Code)
		}
	}
	return strings.Join(codes, ",")
}
