package vision

import "math"

// Formats' vocabularies, as Render speaks them. Kept as strings so that
// vision does not import config.
const (
	formatRekognition = "rekognition"
	formatGCV         = "gcv"
	formatAzure       = "azure"
	formatHolySheep   = "holysheep"
	formatOpenAI      = "openai"
	formatTencent     = "tencent"
	formatBaidu       = "baidu"
)

var _ = formatGCV // named for the reader; the default case covers it

// AddCategory appends canonical category path to res as provider format
// would report it: a label with its parent labels (Rekognition, each
// parent slightly more confident than its child, as Rekognition does), a
// label carrying its ancestors' names as Parents, nearest first (Tencent's
// two-level categories, Baidu's root), a category (HolySheep,
// OpenAI-compatible) or a plain label (GCV, Azure).
func (t *Taxonomy) AddCategory(res *Result, format, path string, conf float64) {
	name := t.ProviderLabel(format, path)
	switch format {
	case formatHolySheep, formatOpenAI:
		res.Categories = append(res.Categories, Label{Name: name, Confidence: conf})
	case formatTencent, formatBaidu:
		res.Labels = append(res.Labels, Label{Name: name, Confidence: conf, Parents: t.ProviderParents(format, path)})
	case formatRekognition:
		parents := t.ProviderParents(format, path)
		res.Labels = append(res.Labels, Label{Name: name, Confidence: conf, Parents: parents})
		for i, p := range parents {
			if !hasLabel(res.Labels, p) {
				res.Labels = append(res.Labels, Label{Name: p, Confidence: math.Min(0.999, conf+0.02*float64(i+1)), Parents: parents[i+1:]})
			}
		}
	default:
		res.Labels = append(res.Labels, Label{Name: name, Confidence: conf})
	}
}

// AddColor appends colour name to res as format reports colours: a
// measured RGB dominant colour (Rekognition, GCV; rgb is the value to
// report, false for colours without one, which these formats cannot
// express), a named colour (Azure) or a colour attribute (the rest).
func (t *Taxonomy) AddColor(res *Result, format, name string, conf float64, rgb RGB, hasRGB bool) {
	switch format {
	case formatRekognition, formatGCV:
		if !hasRGB {
			return
		}
		res.Colors = append(res.Colors, Color{R: rgb.R, G: rgb.G, B: rgb.B, Hex: rgb.Hex(), Fraction: 0.35 + 0.4*conf, Score: conf, Name: name})
	case formatAzure:
		res.Colors = append(res.Colors, Color{Name: name, Score: conf})
	default:
		res.Attributes = append(res.Attributes, Attribute{Kind: KindColor, Value: name, Confidence: conf})
	}
}

// Render is Normalize's inverse: canonical tags as provider format would
// have answered them, so that an answer from one provider can be served to
// clients of another (the canary). Normalize(format, Render(format, g))
// gives back g's categories and attributes (confidences of Rekognition's
// parent labels aside).
func (t *Taxonomy) Render(format string, g Tags) Result {
	var res Result
	for _, c := range g.Categories {
		t.AddCategory(&res, format, c.Value, c.Confidence)
	}
	for _, k := range []AttributeKind{KindColor, KindPattern, KindMaterial, KindStyle} {
		for _, v := range g.Attributes[k] {
			if k == KindColor {
				rgb, ok := t.ColorRGB(v.Value)
				t.AddColor(&res, format, v.Value, v.Confidence, rgb, ok)
				continue
			}
			// Label formats' encoders turn typed attributes into labels.
			res.Attributes = append(res.Attributes, Attribute{Kind: k, Value: v.Value, Confidence: v.Confidence})
		}
	}
	res.ModelVersion, res.PromptVersion = g.ModelVersion, g.PromptVersion
	return res
}

func hasLabel(ls []Label, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}
