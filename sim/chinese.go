package sim

import (
	"unicode"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
)

// chinese reports whether the model's format answers in Chinese (tencent,
// baidu): its attribute values are then the taxonomy's Chinese aliases.
func (m *Model) chinese() bool {
	return m.Format == string(config.FormatTencent) || m.Format == string(config.FormatBaidu)
}

// productWord is the label a provider gives an image it knows nothing
// about.
func (m *Model) productWord() string {
	if m.chinese() {
		return "商品"
	}
	return "Product"
}

// inVendorWords rewrites canonical attribute values into the format's
// words: for Chinese formats the first alias in Han script (黑色 for
// black, 条纹 for striped), when the taxonomy has one.
func (m *Model) inVendorWords(res *vision.Result) {
	if !m.chinese() {
		return
	}
	for i, a := range res.Attributes {
		res.Attributes[i].Value = m.hanAlias(a.Kind, a.Value)
	}
}

func (m *Model) hanAlias(k vision.AttributeKind, v string) string {
	var aliases []string
	if k == vision.KindColor {
		for _, c := range m.Tax.Colors {
			if c.Name == v {
				aliases = c.Aliases
			}
		}
	} else {
		for _, av := range m.Tax.Attributes[k] {
			if av.Value == v {
				aliases = av.Aliases
			}
		}
	}
	for _, a := range aliases {
		for _, r := range a {
			if unicode.Is(unicode.Han, r) {
				return a
			}
		}
	}
	return v
}
