package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	segjson "github.com/segmentio/encoding/json"

	"github.com/cutover/cutover/vision"
)

// BuildSchema returns the strict JSON schema of the tagging answer,
// constrained to tx's vocabulary: categories are leaf paths, attribute
// values the taxonomy's values (or null when the photo does not show them).
// Strict mode needs every property required and no additional properties.
func BuildSchema(tx *vision.Taxonomy, maxCategories int, kinds []vision.AttributeKind) json.RawMessage {
	leaves := tx.Leaves()
	props := map[string]any{
		"categories": map[string]any{
			"type":        "array",
			"description": fmt.Sprintf("Up to %d categories, most likely first.", maxCategories),
			"items": map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"required":             []string{"category", "confidence"},
				"properties": map[string]any{
					"category":   map[string]any{"type": "string", "enum": leaves},
					"confidence": map[string]any{"type": "number"},
				},
			},
		},
	}
	required := []string{"categories"}
	for _, k := range kinds {
		vals := []any{}
		for _, v := range tx.AttributeValues(k) {
			vals = append(vals, v)
		}
		vals = append(vals, nil)
		props[string(k)] = map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []string{"value", "confidence"},
			"properties": map[string]any{
				"value":      map[string]any{"type": []string{"string", "null"}, "enum": vals},
				"confidence": map[string]any{"type": "number"},
			},
		}
		required = append(required, string(k))
	}
	b, _ := json.Marshal(map[string]any{
		"type": "object", "additionalProperties": false, "required": required, "properties": props,
	})
	return b
}

// Answer is the parsed tagging answer.
type Answer struct {
	Categories []Scored
	Attributes map[vision.AttributeKind]*Scored
}

// Scored is a value with the model's confidence.
type Scored struct {
	Value      string
	Confidence float64
}

type rawScored struct {
	Category   *string  `json:"category"`
	Value      *string  `json:"value"`
	Confidence *float64 `json:"confidence"`
}

// ParseAnswer parses message content against the schema for kinds. Content
// that is not JSON is CodeLLMInvalidJSON; JSON of the wrong shape (missing
// or extra keys, wrong types, confidences outside 0–1, no category) is
// CodeLLMSchemaViolation. Values outside the vocabulary are kept: the
// taxonomy's synonyms may still map them, and Normalize reports the rest as
// unmapped rather than right.
func ParseAnswer(content string, kinds []vision.AttributeKind) (Answer, error) {
	var top map[string]segjson.RawMessage
	if err := strictParse([]byte(content), &top, 0); err != nil || top == nil {
		return Answer{}, vision.Errorf(vision.CodeLLMInvalidJSON, "answer is not a JSON object: %s", clip(content))
	}
	violation := func(format string, args ...any) (Answer, error) {
		return Answer{}, vision.Errorf(vision.CodeLLMSchemaViolation, format, args...)
	}
	allowed := map[string]bool{"categories": true}
	for _, k := range kinds {
		allowed[string(k)] = true
	}
	for k := range top {
		if !allowed[k] {
			return violation("unexpected key %q", k)
		}
	}
	rawCats, ok := top["categories"]
	if !ok {
		return violation("missing key \"categories\"")
	}
	var cats []rawScored
	if err := strictDecode(rawCats, &cats); err != nil {
		return violation("categories: %v", err)
	}
	var a Answer
	for i, c := range cats {
		if c.Category == nil || *c.Category == "" || c.Confidence == nil || c.Value != nil {
			return violation("categories[%d] needs category and confidence", i)
		}
		if !validConf(*c.Confidence) {
			return violation("categories[%d].confidence %v is outside 0–1", i, *c.Confidence)
		}
		a.Categories = append(a.Categories, Scored{*c.Category, *c.Confidence})
	}
	if len(a.Categories) == 0 {
		return violation("no categories")
	}
	a.Attributes = map[vision.AttributeKind]*Scored{}
	for _, k := range kinds {
		raw, ok := top[string(k)]
		if !ok {
			return violation("missing key %q", k)
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		var v rawScored
		if err := strictDecode(raw, &v); err != nil || v.Category != nil || v.Confidence == nil {
			return violation("%s needs value and confidence", k)
		}
		if !validConf(*v.Confidence) {
			return violation("%s.confidence %v is outside 0–1", k, *v.Confidence)
		}
		if v.Value != nil && *v.Value != "" {
			a.Attributes[k] = &Scored{*v.Value, *v.Confidence}
		}
	}
	return a, nil
}

func validConf(f float64) bool { return f >= 0 && f <= 1 && !math.IsNaN(f) }

func strictDecode(b []byte, v any) error {
	return strictParse(b, v, segjson.DisallowUnknownFields)
}

// strictParse decodes the one JSON value in b into v, with nothing but
// space after it (segmentio's decoder: an answer is parsed on the request
// path of every canary call).
func strictParse(b []byte, v any, flags segjson.ParseFlags) error {
	rest, err := segjson.Parse(b, v, flags)
	if err != nil {
		return err
	}
	if len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return fmt.Errorf("unexpected data after the JSON value at offset %d", len(b)-len(rest))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Content is the JSON answer a well-behaved model gives for res: its
// categories (or labels) and the top value of each kind.
func Content(res vision.Result, kinds []vision.AttributeKind) string {
	type scored struct {
		Category   string  `json:"category,omitempty"`
		Value      *string `json:"value,omitempty"`
		Confidence float64 `json:"confidence"`
	}
	var b bytes.Buffer
	b.WriteString(`{"categories":[`)
	n := 0
	for _, l := range append(append([]vision.Label(nil), res.Categories...), res.Labels...) {
		if n > 0 {
			b.WriteByte(',')
		}
		c, _ := json.Marshal(scored{Category: l.Name, Confidence: round3(l.Confidence)})
		b.Write(c)
		n++
	}
	b.WriteString("]")
	for _, k := range kinds {
		var best *vision.Attribute
		for i, a := range res.Attributes {
			if a.Kind == k && (best == nil || a.Confidence > best.Confidence) {
				best = &res.Attributes[i]
			}
		}
		fmt.Fprintf(&b, `,%q:`, k)
		if best == nil {
			b.WriteString(`{"value":null,"confidence":0}`)
			continue
		}
		v := best.Value
		c, _ := json.Marshal(scored{Value: &v, Confidence: round3(best.Confidence)})
		b.Write(c)
	}
	b.WriteString("}")
	return b.String()
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
