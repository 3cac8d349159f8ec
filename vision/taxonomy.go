package vision

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Taxonomy is the canonical vocabulary every provider answer is normalised
// into: category paths such as apparel/topwear/shirts with their group,
// per-format provider label names and aliases, attribute vocabularies and a
// colour palette. It is immutable once loaded and safe for concurrent use.
type Taxonomy struct {
	Version    string
	Groups     []string
	Categories []Category
	// Attributes maps a kind (pattern, material, style) to its values.
	Attributes map[AttributeKind][]AttributeValue
	Colors     []PaletteColor

	byPath   map[string]*Category
	byLabel  map[string]string            // lower-case label, any format → path
	byFormat map[string]map[string]string // format → lower-case name → path
	attrIdx  map[string]attrRef           // lower-case value or alias → kind/value
	colorIdx map[string]string            // lower-case name or alias → colour name
	labs     []Lab                        // Lab of Colors[i] (NaN L for colours without rgb)
}

// Category is one canonical category.
type Category struct {
	Path  string `yaml:"path"`
	Group string `yaml:"group"`
	// Names maps a wire format to the label that provider uses for it.
	Names   map[string]string `yaml:"names"`
	Aliases []string          `yaml:"aliases"`
}

// Depth is the number of path segments.
func (c Category) Depth() int { return strings.Count(c.Path, "/") + 1 }

// Parent returns the path of c's parent, or "" for a top-level category.
func (c Category) Parent() string {
	if i := strings.LastIndexByte(c.Path, '/'); i >= 0 {
		return c.Path[:i]
	}
	return ""
}

// AttributeValue is one canonical attribute value with its aliases.
type AttributeValue struct {
	Value   string   `yaml:"value"`
	Aliases []string `yaml:"aliases"`
}

// PaletteColor is one canonical colour; RGB is empty for colours that have no
// single value (multi).
type PaletteColor struct {
	Name    string   `yaml:"name"`
	RGB     string   `yaml:"rgb"`
	Aliases []string `yaml:"aliases"`
}

type attrRef struct {
	kind  AttributeKind
	value string
}

type taxonomyFile struct {
	Version    string                      `yaml:"version"`
	Groups     []string                    `yaml:"groups"`
	Categories []Category                  `yaml:"categories"`
	Attributes map[string][]AttributeValue `yaml:"attributes"`
	Colors     []PaletteColor              `yaml:"colors"`
}

// LoadTaxonomy reads and validates a taxonomy YAML file.
func LoadTaxonomy(path string) (*Taxonomy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading taxonomy: %w", err)
	}
	t, err := ParseTaxonomy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTaxonomy parses and validates taxonomy YAML.
func ParseTaxonomy(b []byte) (*Taxonomy, error) {
	var f taxonomyFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parsing taxonomy: %w", err)
	}
	t := &Taxonomy{
		Version: f.Version, Groups: f.Groups, Categories: f.Categories,
		Attributes: map[AttributeKind][]AttributeValue{}, Colors: f.Colors,
		byPath: map[string]*Category{}, byLabel: map[string]string{}, byFormat: map[string]map[string]string{},
		attrIdx: map[string]attrRef{}, colorIdx: map[string]string{},
	}
	groups := map[string]bool{}
	for _, g := range f.Groups {
		groups[g] = true
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for i := range t.Categories {
		c := &t.Categories[i]
		if c.Path == "" || c.Path != strings.ToLower(c.Path) || strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/") {
			bad("category %d: path %q must be non-empty, lower-case, without leading or trailing /", i, c.Path)
			continue
		}
		if _, dup := t.byPath[c.Path]; dup {
			bad("category %q listed twice", c.Path)
		}
		if !groups[c.Group] {
			bad("category %q: group %q is not in groups %v", c.Path, c.Group, f.Groups)
		}
		t.byPath[c.Path] = c
	}
	for i := range t.Categories {
		c := &t.Categories[i]
		if p := c.Parent(); p != "" && t.byPath[p] == nil {
			bad("category %q: parent %q is not a category", c.Path, p)
		}
		for format, name := range c.Names {
			key := fold(name)
			m := t.byFormat[format]
			if m == nil {
				m = map[string]string{}
				t.byFormat[format] = m
			}
			if other, dup := m[key]; dup && other != c.Path {
				bad("%s label %q names both %q and %q", format, name, other, c.Path)
			}
			m[key] = c.Path
		}
	}
	// The any-format index: paths first, then provider names, then aliases,
	// so that an exact name always wins over an alias.
	for _, c := range t.Categories {
		t.byLabel[fold(c.Path)] = c.Path
	}
	for _, c := range t.Categories {
		for _, n := range c.Names {
			if _, ok := t.byLabel[fold(n)]; !ok {
				t.byLabel[fold(n)] = c.Path
			}
		}
	}
	for _, c := range t.Categories {
		for _, a := range c.Aliases {
			if other, ok := t.byLabel[fold(a)]; ok && other != c.Path {
				continue // a name elsewhere takes precedence over an alias
			}
			t.byLabel[fold(a)] = c.Path
		}
	}
	for k, vals := range f.Attributes {
		kind := AttributeKind(k)
		if !kind.Valid() || kind == KindColor {
			bad("attributes: unknown kind %q (want pattern, material or style; colours go under colors)", k)
			continue
		}
		t.Attributes[kind] = vals
		for _, v := range vals {
			if v.Value == "" || v.Value != strings.ToLower(v.Value) {
				bad("attributes.%s: value %q must be non-empty and lower-case", k, v.Value)
			}
			for _, n := range append([]string{v.Value}, v.Aliases...) {
				if prev, dup := t.attrIdx[fold(n)]; dup && prev != (attrRef{kind, v.Value}) {
					bad("attributes.%s: %q already names %s %q", k, n, prev.kind, prev.value)
				}
				t.attrIdx[fold(n)] = attrRef{kind, v.Value}
			}
		}
	}
	t.labs = make([]Lab, len(t.Colors))
	for i, c := range t.Colors {
		if c.Name == "" {
			bad("colors[%d]: name is empty", i)
		}
		for _, n := range append([]string{c.Name}, c.Aliases...) {
			t.colorIdx[fold(n)] = c.Name
		}
		t.labs[i] = Lab{L: math.NaN()}
		if c.RGB != "" {
			rgb, err := ParseHex(c.RGB)
			if err != nil {
				bad("colors.%s: %v", c.Name, err)
				continue
			}
			t.labs[i] = rgb.Lab()
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid taxonomy:\n  %s", strings.Join(errs, "\n  "))
	}
	return t, nil
}

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Category returns the category at path, if any.
func (t *Taxonomy) Category(path string) (Category, bool) {
	c, ok := t.byPath[path]
	if !ok {
		return Category{}, false
	}
	return *c, true
}

// Group returns the group of the category at path, or "" when unknown.
func (t *Taxonomy) Group(path string) string {
	if c, ok := t.byPath[path]; ok {
		return c.Group
	}
	return ""
}

// Leaves returns the paths of categories that have no children.
func (t *Taxonomy) Leaves() []string {
	parent := map[string]bool{}
	for _, c := range t.Categories {
		parent[c.Parent()] = true
	}
	var out []string
	for _, c := range t.Categories {
		if !parent[c.Path] {
			out = append(out, c.Path)
		}
	}
	return out
}

// Siblings returns the leaf categories that share path's parent, path excluded.
func (t *Taxonomy) Siblings(path string) []string {
	c, ok := t.byPath[path]
	if !ok {
		return nil
	}
	var out []string
	for _, l := range t.Leaves() {
		if l != path && t.byPath[l].Parent() == c.Parent() {
			out = append(out, l)
		}
	}
	return out
}

// ProviderLabel returns the label that a provider speaking format uses for
// path: its configured name, else the nearest ancestor's name, else the path.
func (t *Taxonomy) ProviderLabel(format, path string) string {
	for p := path; p != ""; {
		c, ok := t.byPath[p]
		if !ok {
			break
		}
		if n := c.Names[format]; n != "" {
			return n
		}
		p = c.Parent()
	}
	return path
}

// ProviderParents returns the provider-vocabulary labels of path's ancestors,
// nearest first.
func (t *Taxonomy) ProviderParents(format, path string) []string {
	var out []string
	c, ok := t.byPath[path]
	for ok && c.Parent() != "" {
		p := c.Parent()
		out = append(out, t.ProviderLabel(format, p))
		c, ok = t.byPath[p]
	}
	return out
}

// LookupCategory maps a provider label to a canonical path: the format's own
// names first, then any format's names, paths and aliases.
func (t *Taxonomy) LookupCategory(format, label string) (string, bool) {
	k := fold(label)
	if p, ok := t.byFormat[format][k]; ok {
		return p, true
	}
	p, ok := t.byLabel[k]
	return p, ok
}

// LookupAttribute maps a provider word to a canonical attribute value.
func (t *Taxonomy) LookupAttribute(word string) (AttributeKind, string, bool) {
	if c, ok := t.colorIdx[fold(word)]; ok {
		return KindColor, c, true
	}
	r, ok := t.attrIdx[fold(word)]
	return r.kind, r.value, ok
}

// AttributeValues returns the canonical values of kind, colours included.
func (t *Taxonomy) AttributeValues(kind AttributeKind) []string {
	var out []string
	if kind == KindColor {
		for _, c := range t.Colors {
			out = append(out, c.Name)
		}
		return out
	}
	for _, v := range t.Attributes[kind] {
		out = append(out, v.Value)
	}
	return out
}

// ColorRGB returns the palette value of a canonical colour name.
func (t *Taxonomy) ColorRGB(name string) (RGB, bool) {
	for _, c := range t.Colors {
		if c.Name == name && c.RGB != "" {
			rgb, err := ParseHex(c.RGB)
			return rgb, err == nil
		}
	}
	return RGB{}, false
}

// NearestColor returns the palette colour nearest to c by CIEDE2000 and the
// distance to it.
func (t *Taxonomy) NearestColor(c RGB) (string, float64) {
	lab := c.Lab()
	best, bestD := "", math.Inf(1)
	for i, p := range t.labs {
		if math.IsNaN(p.L) {
			continue
		}
		if d := DeltaE2000(lab, p); d < bestD {
			best, bestD = t.Colors[i].Name, d
		}
	}
	return best, bestD
}

// Scored is a canonical value with a confidence 0–1.
type Scored struct {
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"`
}

// Tags is a provider answer in canonical form.
type Tags struct {
	// Categories are canonical paths, most confident first; an ancestor is
	// dropped when one of its descendants is present.
	Categories []Scored `json:"categories,omitempty"`
	// Attributes maps each kind to canonical values, most confident first.
	Attributes map[AttributeKind][]Scored `json:"attributes,omitempty"`
	// Unmapped lists provider labels the taxonomy does not know.
	Unmapped []string `json:"unmapped,omitempty"`
	// ModelVersion and PromptVersion are copied from the provider's Result.
	ModelVersion  string `json:"model_version,omitempty"`
	PromptVersion string `json:"prompt_version,omitempty"`
}

// Top returns the most confident category, or "" when there is none.
func (g Tags) Top() string {
	if len(g.Categories) == 0 {
		return ""
	}
	return g.Categories[0].Value
}

// TopAttribute returns the most confident value of kind, or "".
func (g Tags) TopAttribute(k AttributeKind) string {
	if v := g.Attributes[k]; len(v) > 0 {
		return v[0].Value
	}
	return ""
}

// Normalize turns a provider Result, as decoded from wire format format, into
// canonical Tags. It is the one place where provider vocabulary meets the
// canonical one: every consumer (proxy, bench, compare, pipeline) calls it.
//
// Labels and categories map through the taxonomy's names, aliases and, for a
// label it does not know, the label's parents; labels that name an attribute
// value become that attribute. Measured colours map to the nearest palette
// colour by CIEDE2000, scored by their pixel fraction (or score). Duplicates
// keep their highest confidence.
func (t *Taxonomy) Normalize(format string, r Result) Tags {
	cats := map[string]float64{}
	attrs := map[AttributeKind]map[string]float64{}
	var unmapped []string
	addAttr := func(k AttributeKind, v string, c float64) {
		if attrs[k] == nil {
			attrs[k] = map[string]float64{}
		}
		attrs[k][v] = max(c, attrs[k][v])
	}
	addCat := func(p string, c float64) { cats[p] = max(cats[p], c) }
	label := func(l Label) {
		if p, ok := t.LookupCategory(format, l.Name); ok {
			addCat(p, l.Confidence)
			return
		}
		if k, v, ok := t.LookupAttribute(l.Name); ok {
			addAttr(k, v, l.Confidence)
			return
		}
		for _, a := range l.Aliases {
			if p, ok := t.LookupCategory(format, a); ok {
				addCat(p, l.Confidence)
				return
			}
		}
		unmapped = append(unmapped, l.Name)
		for _, parent := range l.Parents {
			if p, ok := t.LookupCategory(format, parent); ok {
				addCat(p, l.Confidence)
				return
			}
		}
	}
	for _, l := range r.Categories {
		label(l)
	}
	for _, l := range r.Labels {
		label(l)
	}
	for _, a := range r.Attributes {
		if a.Kind == KindColor {
			if rgb, err := ParseHex(a.Value); err == nil {
				n, _ := t.NearestColor(rgb)
				addAttr(KindColor, n, a.Confidence)
				continue
			}
		}
		k, v, ok := t.LookupAttribute(a.Value)
		if !ok || (a.Kind != "" && k != a.Kind) {
			unmapped = append(unmapped, string(a.Kind)+":"+a.Value)
			continue
		}
		addAttr(k, v, a.Confidence)
	}
	for _, c := range r.Colors {
		name := ""
		if rgb, err := ParseHex(c.Hex); err == nil {
			name, _ = t.NearestColor(rgb)
		} else if _, v, ok := t.LookupAttribute(c.Name); ok {
			name = v
		}
		if name == "" {
			continue
		}
		score := c.Fraction
		if c.Score > 0 {
			score = c.Score
		}
		addAttr(KindColor, name, score)
	}
	// Drop ancestors of present descendants: "Clothing" adds nothing next to "T-Shirt".
	for p := range cats {
		for q := parentOf(p); q != ""; q = parentOf(q) {
			delete(cats, q)
		}
	}
	out := Tags{Categories: sortScored(cats), ModelVersion: r.ModelVersion, PromptVersion: r.PromptVersion, Unmapped: unmapped}
	if len(attrs) > 0 {
		out.Attributes = map[AttributeKind][]Scored{}
		for k, m := range attrs {
			out.Attributes[k] = sortScored(m)
		}
	}
	return out
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func sortScored(m map[string]float64) []Scored {
	out := make([]Scored, 0, len(m))
	for v, c := range m {
		out = append(out, Scored{Value: v, Confidence: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Confidence != out[j].Confidence {
			return out[i].Confidence > out[j].Confidence
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// Expressible reports whether a provider speaking format can name category
// path at all: its name in that format (ProviderLabel) normalises back to
// path. A category without a name of its own in format is reported under
// its nearest named ancestor's name (Rekognition says "Clothing" for a
// category its vocabulary lacks), so a provider of that format can never
// answer it right, however good it is; reports list such images as not
// expressible by the format rather than as the provider's error.
// Expressibility is computed from the per-format names, never declared: a
// name added to taxonomy.yaml makes its category expressible. A path the
// taxonomy does not know, and any path for a format without names, is
// expressible.
func (t *Taxonomy) Expressible(format, path string) bool {
	if _, ok := t.byPath[path]; !ok {
		return true
	}
	p, ok := t.LookupCategory(format, t.ProviderLabel(format, path))
	return ok && p == path
}

// NotExpressible lists, in taxonomy order, the categories a provider
// speaking format cannot name (see Expressible).
func (t *Taxonomy) NotExpressible(format string) []string {
	var out []string
	for _, c := range t.Categories {
		if !t.Expressible(format, c.Path) {
			out = append(out, c.Path)
		}
	}
	return out
}

// AttributeExpressible reports whether a provider speaking format can give
// value of kind so that Normalize reads the same value back, the way the
// format's wire carries attributes: Rekognition and GCV measure colours
// (an RGB dominant colour, so a colour without a palette RGB, such as
// multi, cannot be said) and carry pattern, material and style as plain
// labels; Azure has only tags, colours included; HolySheep and the
// OpenAI-compatible format have typed attributes. A value carried as a
// label must not name a category in the format's vocabulary (Azure's tag
// "skin" reads as the category personal-care/skin). Other formats are
// taken to carry typed attributes.
func (t *Taxonomy) AttributeExpressible(format string, kind AttributeKind, value string) bool {
	var r Result
	if kind == KindColor {
		rgb, ok := t.ColorRGB(value)
		t.AddColor(&r, format, value, 0.9, rgb, ok)
	} else {
		r.Attributes = []Attribute{{Kind: kind, Value: value, Confidence: 0.9}}
	}
	if attributesAsLabels(format, kind) {
		for _, a := range r.Attributes {
			r.Labels = append(r.Labels, Label{Name: a.Value, Confidence: a.Confidence})
		}
		for _, c := range r.Colors {
			if c.Name != "" {
				r.Labels = append(r.Labels, Label{Name: c.Name, Confidence: c.Score})
			}
		}
		r.Attributes, r.Colors = nil, nil
	}
	g := t.Normalize(format, r)
	return len(g.Categories) == 0 && g.TopAttribute(kind) == value
}

// attributesAsLabels reports whether format's wire carries attributes of
// kind as plain labels (its encoder turns them into labels or tags).
func attributesAsLabels(format string, kind AttributeKind) bool {
	switch format {
	case formatRekognition, formatGCV:
		return kind != KindColor
	case formatAzure:
		return true
	}
	return false
}
