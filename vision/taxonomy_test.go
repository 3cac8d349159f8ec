package vision

import (
	"reflect"
	"strings"
	"testing"
)

func mustTaxonomy(tb testing.TB) *Taxonomy {
	tb.Helper()
	t, err := LoadTaxonomy("../taxonomy.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestTaxonomyLoads(t *testing.T) {
	tx := mustTaxonomy(t)
	if got := tx.Group("apparel/topwear/tshirts"); got != "fashion" {
		t.Errorf("group of tshirts: got %q, want fashion", got)
	}
	if got := tx.ProviderLabel("rekognition", "apparel/topwear/tshirts"); got != "T-Shirt" {
		t.Errorf("rekognition label: got %q, want T-Shirt", got)
	}
	if got := tx.ProviderParents("rekognition", "apparel/topwear/tshirts"); !reflect.DeepEqual(got, []string{"Topwear", "Clothing"}) {
		t.Errorf("parents: got %v", got)
	}
	sib := tx.Siblings("apparel/topwear/tshirts")
	if len(sib) < 5 || !contains(sib, "apparel/topwear/shirts") || contains(sib, "apparel/topwear/tshirts") {
		t.Errorf("siblings: got %v", sib)
	}
	if n := len(tx.Leaves()); n < 100 {
		t.Errorf("leaves: got %d, want ≥ 100", n)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestNormalize(t *testing.T) {
	tx := mustTaxonomy(t)
	tests := []struct {
		name   string
		format string
		in     Result
		top    string
		attrs  map[AttributeKind]string
		unmap  []string
	}{
		{"rekognition labels with parents", "rekognition", Result{Labels: []Label{
			{Name: "Clothing", Confidence: 0.99},
			{Name: "T-Shirt", Confidence: 0.93, Parents: []string{"Clothing"}},
			{Name: "Plaid", Confidence: 0.8},
		}, Colors: []Color{{Hex: "#101010", Fraction: 0.6}, {Hex: "#fefefe", Fraction: 0.2}}},
			"apparel/topwear/tshirts", map[AttributeKind]string{KindColor: "black", KindPattern: "checked"}, nil},
		{"unknown label falls back to parent", "rekognition", Result{Labels: []Label{
			{Name: "Zoot Suit", Confidence: 0.7, Parents: []string{"Clothing"}},
		}}, "apparel", nil, []string{"Zoot Suit"}},
		{"gcv names and case", "gcv", Result{Labels: []Label{{Name: "running shoe", Confidence: 0.9}}},
			"footwear/shoes/sports-shoes", nil, nil},
		{"typed attributes and aliases", "holysheep", Result{
			Categories: []Label{{Name: "apparel/topwear/shirts", Confidence: 0.91}},
			Attributes: []Attribute{{Kind: KindColor, Value: "Navy", Confidence: 0.8}, {Kind: KindMaterial, Value: "polyester", Confidence: 0.7},
				{Kind: KindPattern, Value: "zigzag", Confidence: 0.5}, {Kind: KindStyle, Value: "cotton", Confidence: 0.5}},
		}, "apparel/topwear/shirts", map[AttributeKind]string{KindColor: "navy-blue", KindMaterial: "synthetic"},
			[]string{"pattern:zigzag", "style:cotton"}},
		{"hex colour attribute", "openai", Result{Attributes: []Attribute{{Kind: KindColor, Value: "#c8102f", Confidence: 0.9}}},
			"", map[AttributeKind]string{KindColor: "red"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tx.Normalize(tc.format, tc.in)
			if g.Top() != tc.top {
				t.Errorf("top: got %q, want %q (%+v)", g.Top(), tc.top, g.Categories)
			}
			for k, v := range tc.attrs {
				if got := g.TopAttribute(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if !reflect.DeepEqual(g.Unmapped, tc.unmap) {
				t.Errorf("unmapped: got %v, want %v", g.Unmapped, tc.unmap)
			}
		})
	}
}

func TestNormalizeDropsAncestors(t *testing.T) {
	tx := mustTaxonomy(t)
	g := tx.Normalize("rekognition", Result{Labels: []Label{{Name: "Clothing", Confidence: 0.99}, {Name: "Topwear", Confidence: 0.98}, {Name: "Shirt", Confidence: 0.6}}})
	if len(g.Categories) != 1 || g.Categories[0].Value != "apparel/topwear/shirts" || g.Categories[0].Confidence != 0.6 {
		t.Fatalf("got %+v", g.Categories)
	}
}

func TestTaxonomyErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"groups: [a]\ncategories:\n  - {path: X, group: a}\n", "lower-case"},
		{"groups: [a]\ncategories:\n  - {path: x/y, group: a}\n", `parent "x" is not a category`},
		{"groups: [a]\ncategories:\n  - {path: x, group: b}\n", `group "b"`},
		{"groups: [a]\ncategories:\n  - {path: x, group: a, names: {gcv: Foo}}\n  - {path: y, group: a, names: {gcv: foo}}\n", "names both"},
		{"groups: [a]\nattributes:\n  shape: [{value: round}]\n", `unknown kind "shape"`},
		{"groups: [a]\nbogus: 1\n", "field bogus not found"},
		{"colors:\n  - {name: red, rgb: '#zz0000'}\n", "want #rrggbb"},
	} {
		_, err := ParseTaxonomy([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want error containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	for _, c := range Codes {
		if !c.Valid() {
			t.Errorf("%s not valid", c)
		}
	}
	retry := map[Code]bool{CodeThrottled: true, CodeTimeout: true, CodeServerError: true, CodeNetwork: true}
	for _, c := range Codes {
		if c.Retryable() != retry[c] {
			t.Errorf("%s retryable: got %v", c, c.Retryable())
		}
	}
	if Code("nope").Valid() {
		t.Error("nope valid")
	}
	if got := ErrorCode(Errorf(CodeBadImage, "x")); got != CodeBadImage {
		t.Errorf("got %s", got)
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{[]byte("\x89PNG\r\n\x1a\n0000"), "image/png"},
		{[]byte("\xff\xd8\xff\xe0xxxx"), "image/jpeg"},
		{[]byte("GIF89a...."), "image/gif"},
		{[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp"},
		{[]byte("hello world"), ""},
		{nil, ""},
	} {
		if got := SniffMediaType(tc.b); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.b, got, tc.want)
		}
	}
	im := NewImage([]byte("\x89PNG\r\n\x1a\n0000"))
	if im.Size != 12 || len(im.SHA256) != 64 || im.MediaType != "image/png" {
		t.Errorf("NewImage: %+v", im)
	}
}
