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
	Confidence float64           `json:"confidence"`
	Level      string            `json:"level"`
	Provider   string            `json:"provider"`
}

// Tagging is the outcome of the rules for one image.
type Tagging struct {
	// Tags are kept, most confident first (LOW ones included: they are
	// the catalogue's best guess until a human decides).
	Tags []Tag `json:"tags"`
	// Review lists the LOW tags sent to the human review queue.
	Review []Tag `json:"review,omitempty"`
	// Removed lists prohibited tags and those past max_tags, for the log.
	Removed []Tag `json:"removed,omitempty"`
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

// Apply turns canonical tags from provider into the catalogue's tags, in
// order: (1) prohibited categories removed, (2) levels assigned, (3) the
// max_tags most confident kept, (4) LOW tags sent to review. Every kept
// tag carries the image's most confident attribute values.
func (r *Rules) Apply(t vision.Tags, provider string) Tagging {
	attrs := map[string]string{}
	for k, v := range t.Attributes {
		if len(v) > 0 {
			attrs[string(k)] = v[0].Value
		}
	}
	var out Tagging
	var kept []Tag
	for _, c := range t.Categories {
		tag := Tag{Category: c.Value, Confidence: c.Confidence, Level: r.Level(c.Confidence), Provider: provider}
		if len(attrs) > 0 {
			tag.Attributes = attrs
		}
		if r.Prohibited(c.Value) {
			out.Removed = append(out.Removed, tag)
			continue
		}
		kept = append(kept, tag)
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Confidence > kept[j].Confidence })
	if len(kept) > r.cfg.MaxTags {
		out.Removed = append(out.Removed, kept[r.cfg.MaxTags:]...)
		kept = kept[:r.cfg.MaxTags]
	}
	out.Tags = kept
	for _, tag := range kept {
		if tag.Level == Low {
			out.Review = append(out.Review, tag)
		}
	}
	return out
}
