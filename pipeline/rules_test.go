package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
)

func testRules() *Rules { return rulesWith(0.10) }

func rulesWith(margin float64) *Rules {
	h, m := 0.90, 0.75
	return NewRules(config.Rules{Version: "r1", High: &h, Medium: &m, ReviewMargin: &margin, Prohibited: []string{"adult", "nsfw", "restricted"}, MaxTags: 8})
}

func tags(cs ...float64) vision.Tags {
	var t vision.Tags
	for i, c := range cs {
		t.Categories = append(t.Categories, vision.Scored{Value: fmt.Sprintf("apparel/c%d", i), Confidence: c})
	}
	return t
}

func withAttrs(t vision.Tags, kv ...any) vision.Tags {
	t.Attributes = map[vision.AttributeKind][]vision.Scored{}
	for i := 0; i < len(kv); i += 3 {
		k := vision.AttributeKind(kv[i].(string))
		t.Attributes[k] = append(t.Attributes[k], vision.Scored{Value: kv[i+1].(string), Confidence: kv[i+2].(float64)})
	}
	return t
}

func TestRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		rules   *Rules
		in      vision.Tags
		kept    string // categories:levels in order
		reasons string // review reason codes, "" when not queued
		removed int
	}{
		{"levels at the thresholds; LOW runner-up dropped; best two within the margin", testRules(), tags(0.90, 0.8999, 0.75, 0.7499),
			"apparel/c0:HIGH apparel/c1:MEDIUM apparel/c2:MEDIUM", "margin", 1},
		{"most confident first; runner-ups below medium dropped", testRules(), tags(0.5, 0.95, 0.8),
			"apparel/c1:HIGH apparel/c2:MEDIUM", "", 1},
		{"best category LOW: kept and queued", testRules(), tags(0.6, 0.3),
			"apparel/c0:LOW", "category_low", 1},
		{"best LOW and the runner-up close: both reasons", testRules(), tags(0.6, 0.55),
			"apparel/c0:LOW", "category_low,margin", 1},
		{"a gap of exactly the margin is within it", testRules(), tags(0.80, 0.70),
			"apparel/c0:MEDIUM", "margin", 1},
		{"a gap just past the margin is not", testRules(), tags(0.80, 0.6999),
			"apparel/c0:MEDIUM", "", 1},
		{"margin 0 turns the rule off", rulesWith(0), tags(0.95, 0.95),
			"apparel/c0:HIGH apparel/c1:HIGH", "", 0},
		{"at most 8, by confidence", testRules(), tags(0.76, 0.77, 0.78, 0.79, 0.8, 0.81, 0.82, 0.83, 0.84, 0.99),
			"apparel/c9:HIGH apparel/c8:MEDIUM apparel/c7:MEDIUM apparel/c6:MEDIUM apparel/c5:MEDIUM apparel/c4:MEDIUM apparel/c3:MEDIUM apparel/c2:MEDIUM", "", 2},
		{"prohibited removed, any segment, any case", testRules(), vision.Tags{Categories: []vision.Scored{
			{Value: "Adult", Confidence: 0.99}, {Value: "apparel/nsfw/x", Confidence: 0.98}, {Value: "restricted", Confidence: 0.97},
			{Value: "apparel/adulthood", Confidence: 0.96}}},
			"apparel/adulthood:HIGH", "", 3},
		// Prohibited tags are removed first: they never take one of the 8
		// places, and never make a margin with the best.
		{"prohibited before the cap and the margin", testRules(), func() vision.Tags {
			t := tags(0.91, 0.2)
			t.Categories = append(t.Categories, vision.Scored{Value: "nsfw", Confidence: 0.92})
			return t
		}(), "apparel/c0:HIGH", "", 2},
		{"a kept attribute LOW", testRules(), withAttrs(tags(0.95), "color", "black", 0.9, "material", "cotton", 0.6),
			"apparel/c0:HIGH", "attribute_low", 0},
		{"attributes MEDIUM and HIGH: not queued", testRules(), withAttrs(tags(0.95), "color", "black", 0.9, "material", "cotton", 0.8),
			"apparel/c0:HIGH", "", 0},
		{"no category at all", testRules(), withAttrs(vision.Tags{}, "color", "black", 0.3), "", "no_category", 0},
		{"only prohibited categories", testRules(), vision.Tags{Categories: []vision.Scored{{Value: "adult", Confidence: 0.99}}}, "", "no_category", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rules.Apply(tc.in, "holysheep")
			var s []string
			for _, g := range got.Tags {
				s = append(s, g.Category+":"+g.Level)
				if g.Provider != "holysheep" {
					t.Errorf("provider %q", g.Provider)
				}
			}
			if k := strings.Join(s, " "); k != tc.kept || reasonCodes(got.Reasons) != tc.reasons || len(got.Removed) != tc.removed {
				t.Errorf("got %s, reasons %q, %d removed; want %s, %q, %d", k, reasonCodes(got.Reasons), len(got.Removed), tc.kept, tc.reasons, tc.removed)
			}
			switch {
			case tc.reasons == "" && got.Review != nil:
				t.Errorf("review %+v without a reason", got.Review)
			case tc.reasons != "" && len(got.Review) != 1:
				t.Errorf("review %+v: want the one best tag", got.Review)
			case tc.reasons != "" && len(got.Tags) > 0 && got.Review[0].Category != got.Tags[0].Category:
				t.Errorf("review holds %s, want the best tag %s", got.Review[0].Category, got.Tags[0].Category)
			}
		})
	}
	// Attributes ride on every tag, with their confidence and level.
	got := testRules().Apply(withAttrs(tags(0.95, 0.8), "color", "black", 0.9, "color", "grey", 0.5, "material", "cotton", 0.6), "p")
	for _, tag := range got.Tags {
		if tag.Attributes["color"] != "black" || tag.AttributeConfidences["color"] != 0.9 || tag.AttributeLevels["color"] != High ||
			tag.AttributeLevels["material"] != Low {
			t.Errorf("%s: attributes %v %v %v; want the most confident value of each kind with its confidence and level",
				tag.Category, tag.Attributes, tag.AttributeConfidences, tag.AttributeLevels)
		}
	}
	if r := got.Reasons; len(r) != 1 || r[0] != (Reason{Code: ReasonAttributeLow, Attribute: "material", Confidence: 0.6}) {
		t.Errorf("reasons %+v", r)
	}
	if r := testRules().Apply(tags(0.8, 0.75), "p").Reasons; len(r) != 1 || r[0].RunnerUp != "apparel/c1" || r[0].String() != "margin: runner-up apparel/c1 0.05 behind" {
		t.Errorf("margin reason %+v", r)
	}
}

func TestNumberPlaceholders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"SELECT ? FROM t WHERE a = ?", "SELECT $1 FROM t WHERE a = $2"},
		{"SELECT '?', ? FROM t WHERE a = 'it''s ?' AND b = ?", "SELECT '?', $1 FROM t WHERE a = 'it''s ?' AND b = $2"},
		{`SELECT "we?rd" FROM t WHERE x = ? AND y LIKE '%?%'`, `SELECT "we?rd" FROM t WHERE x = $1 AND y LIKE '%?%'`},
		{"VALUES (?, 'a;b', ?)", "VALUES ($1, 'a;b', $2)"},
		{"no placeholders", "no placeholders"},
		{"'unterminated ?", "'unterminated ?"},
	} {
		if got := numberPlaceholders(tc.in); got != tc.want {
			t.Errorf("%s\ngot  %s\nwant %s", tc.in, got, tc.want)
		}
	}
}
