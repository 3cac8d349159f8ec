package vision

import (
	"testing"
)

// TestRenderRoundTrip: canonical tags rendered in a format's vocabulary
// normalise back to the same categories and attribute values, for every
// format: what the canary relies on to serve one provider's answer to
// another provider's clients.
func TestRenderRoundTrip(t *testing.T) {
	tx, err := LoadTaxonomy("../taxonomy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	leaves := tx.Leaves()
	for _, format := range []string{"rekognition", "gcv", "azure", "holysheep", "openai"} {
		bad := 0
		for i, leaf := range leaves {
			// Formats whose vocabulary cannot tell this leaf from another
			// (two canonical paths, one provider label) are skipped: no
			// translation can say what the format cannot.
			if p, ok := tx.LookupCategory(format, tx.ProviderLabel(format, leaf)); !ok || p != leaf {
				continue
			}
			in := Tags{Categories: []Scored{{Value: leaf, Confidence: 0.9}}, Attributes: map[AttributeKind][]Scored{
				KindPattern: {{Value: tx.AttributeValues(KindPattern)[i%3], Confidence: 0.8}},
				KindColor:   {{Value: "black", Confidence: 0.7}}}}
			out := tx.Normalize(format, tx.Render(format, in))
			if out.Top() != leaf || out.TopAttribute(KindColor) != "black" {
				if bad++; bad <= 3 {
					t.Errorf("%s: %s → %+v", format, leaf, out)
				}
			}
			if out.TopAttribute(KindPattern) != in.Attributes[KindPattern][0].Value {
				t.Errorf("%s: pattern %s → %q", format, in.Attributes[KindPattern][0].Value, out.TopAttribute(KindPattern))
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d leaves did not survive the round trip", format, bad)
		}
	}
}
