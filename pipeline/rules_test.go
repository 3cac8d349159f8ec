package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
)

func testRules() *Rules {
	h, m := 0.90, 0.75
	return NewRules(config.Rules{Version: "r1", High: &h, Medium: &m, Prohibited: []string{"adult", "nsfw", "restricted"}, MaxTags: 8})
}

func tags(cs ...float64) vision.Tags {
	var t vision.Tags
	for i, c := range cs {
		t.Categories = append(t.Categories, vision.Scored{Value: fmt.Sprintf("apparel/c%d", i), Confidence: c})
	}
	return t
}

func TestRules(t *testing.T) {
	r := testRules()
	for _, tc := range []struct {
		name    string
		in      vision.Tags
		kept    string // categories:levels in order
		review  int
		removed int
	}{
		{"levels at the thresholds", tags(0.90, 0.8999, 0.75, 0.7499),
			"apparel/c0:HIGH apparel/c1:MEDIUM apparel/c2:MEDIUM apparel/c3:LOW", 1, 0},
		{"most confident first", tags(0.5, 0.95, 0.8),
			"apparel/c1:HIGH apparel/c2:MEDIUM apparel/c0:LOW", 1, 0},
		{"at most 8, by confidence", tags(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
			"apparel/c9:HIGH apparel/c8:HIGH apparel/c7:MEDIUM apparel/c6:LOW apparel/c5:LOW apparel/c4:LOW apparel/c3:LOW apparel/c2:LOW", 5, 2},
		{"prohibited removed, any segment, any case", vision.Tags{Categories: []vision.Scored{
			{Value: "Adult", Confidence: 0.99}, {Value: "apparel/nsfw/x", Confidence: 0.98}, {Value: "restricted", Confidence: 0.97},
			{Value: "apparel/adulthood", Confidence: 0.96}}},
			"apparel/adulthood:HIGH", 0, 3},
		// Order: prohibited tags are removed before the cap, so they never
		// take one of the 8 places.
		{"prohibited before the cap", func() vision.Tags {
			t := tags(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
			t.Categories = append(t.Categories, vision.Scored{Value: "nsfw", Confidence: 0.99})
			return t
		}(), "apparel/c7:MEDIUM apparel/c6:LOW apparel/c5:LOW apparel/c4:LOW apparel/c3:LOW apparel/c2:LOW apparel/c1:LOW apparel/c0:LOW", 7, 1},
		// LOW tags past the cap are removed, not reviewed.
		{"review only among kept", tags(0.1, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95),
			"apparel/c1:HIGH apparel/c2:HIGH apparel/c3:HIGH apparel/c4:HIGH apparel/c5:HIGH apparel/c6:HIGH apparel/c7:HIGH apparel/c8:HIGH", 0, 1},
		{"nothing", vision.Tags{}, "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.Apply(tc.in, "holysheep")
			var s []string
			for _, g := range got.Tags {
				s = append(s, g.Category+":"+g.Level)
				if g.Provider != "holysheep" {
					t.Errorf("provider %q", g.Provider)
				}
			}
			if strings.Join(s, " ") != tc.kept || len(got.Review) != tc.review || len(got.Removed) != tc.removed {
				t.Errorf("got %s, %d review, %d removed; want %s, %d, %d", strings.Join(s, " "), len(got.Review), len(got.Removed), tc.kept, tc.review, tc.removed)
			}
			for _, rv := range got.Review {
				if rv.Level != Low {
					t.Errorf("a %s tag in review", rv.Level)
				}
			}
		})
	}
	// Attributes ride on every tag.
	in := tags(0.95)
	in.Attributes = map[vision.AttributeKind][]vision.Scored{"color": {{Value: "black", Confidence: 0.9}, {Value: "grey", Confidence: 0.5}}}
	if got := r.Apply(in, "p").Tags[0].Attributes["color"]; got != "black" {
		t.Errorf("attribute %q, want the most confident", got)
	}
}
