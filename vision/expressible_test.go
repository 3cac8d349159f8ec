package vision

import (
	"reflect"
	"testing"
)

// TestExpressible: the categories a format cannot name are those without a
// name of their own in it, computed from taxonomy.yaml's per-format names.
func TestExpressible(t *testing.T) {
	tx := mustTaxonomy(t)
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"rekognition", []string{"apparel/dress", "apparel/socks", "footwear/sandal", "footwear/shoes"}},
		{"gcv", []string{"apparel/socks", "footwear/sandal", "sporting-goods/sports-equipment"}},
		{"azure", []string{"apparel/dress", "apparel/socks", "footwear/sandal", "footwear/shoes", "sporting-goods/sports-equipment"}},
		{"holysheep", nil},
		{"openai", nil},
		{"a-format-without-names", nil},
	} {
		if got := tx.NotExpressible(tc.format); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s cannot express %v, want %v", tc.format, got, tc.want)
		}
	}
	if !tx.Expressible("rekognition", "apparel/dress/dresses") || tx.Expressible("rekognition", "apparel/dress") {
		t.Error("rekognition: Dress names apparel/dress/dresses, nothing names apparel/dress")
	}
	if !tx.Expressible("rekognition", "not/in/the/taxonomy") {
		t.Error("an unknown path is expressible (nothing is known against it)")
	}
	// A name added makes the category expressible.
	tx2, err := ParseTaxonomy([]byte(`groups: [fashion]
categories:
  - {path: apparel, group: fashion, names: {rekognition: Clothing}}
  - {path: apparel/dress, group: fashion}
  - {path: apparel/socks, group: fashion, names: {rekognition: Sock}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tx2.NotExpressible("rekognition"); !reflect.DeepEqual(got, []string{"apparel/dress"}) {
		t.Errorf("small taxonomy: rekognition cannot express %v, want [apparel/dress]", got)
	}
}

// TestAttributeExpressible: colours a measuring format cannot say (no
// palette RGB) and attribute words a label format reads as a category.
func TestAttributeExpressible(t *testing.T) {
	tx := mustTaxonomy(t)
	for _, tc := range []struct {
		format string
		kind   AttributeKind
		value  string
		want   bool
	}{
		{"rekognition", KindColor, "navy-blue", true},
		{"rekognition", KindColor, "multi", false}, // no RGB to measure
		{"gcv", KindColor, "multi", false},
		{"azure", KindColor, "multi", true}, // a tag
		{"azure", KindColor, "skin", false}, // the tag "skin" is the category personal-care/skin
		{"rekognition", KindColor, "skin", true},
		{"holysheep", KindColor, "skin", true}, // typed attribute
		{"openai", KindColor, "multi", true},
		{"rekognition", KindPattern, "striped", true},
		{"azure", KindMaterial, "leather", true},
		{"gcv", KindStyle, "sports", true},
	} {
		if got := tx.AttributeExpressible(tc.format, tc.kind, tc.value); got != tc.want {
			t.Errorf("%s %s %s: expressible %v, want %v", tc.format, tc.kind, tc.value, got, tc.want)
		}
	}
	// Every other value of the shipped vocabulary is expressible by every format.
	for _, f := range []string{"rekognition", "gcv", "azure", "holysheep", "openai"} {
		for _, k := range AttributeKinds {
			for _, v := range tx.AttributeValues(k) {
				bad := (v == "multi" && (f == "rekognition" || f == "gcv")) || (v == "skin" && f == "azure")
				if tx.AttributeExpressible(f, k, v) == bad {
					t.Errorf("%s %s %s: expressible %v", f, k, v, !bad)
				}
			}
		}
	}
}
