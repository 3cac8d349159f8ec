// Package vision is cutover's shared vocabulary: images, classification
// requests and results, the Provider interface every wire format implements,
// typed error codes, the canonical taxonomy and perceptual colour distance.
//
// It is not a wire format: packages under vision/ (rekognition, gcv, azure,
// holysheep, …) translate between these types and each vendor's bytes.
package vision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/cutover/cutover/internal/bufpool"
)

// Image is the picture being classified: either its bytes or a URL the
// provider fetches itself. SHA256, Size and MediaType describe the bytes and
// are empty for a URL-only image.
type Image struct {
	Bytes     []byte `json:"-"`
	URL       string `json:"url,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Size      int    `json:"size,omitempty"`
	MediaType string `json:"media_type,omitempty"`

	// Lease is Bytes' pooled buffer when the image was decoded into one
	// (DecodePooledImage): whoever decoded the request releases it once
	// nothing reads the bytes any more.
	Lease *bufpool.Lease `json:"-"`
}

// NewImage returns an Image for b with its SHA-256, size and sniffed media type.
func NewImage(b []byte) Image {
	im := unhashedImage(b)
	HashImage(&im)
	return im
}

// unhashedImage is NewImage without the SHA-256.
func unhashedImage(b []byte) Image {
	return Image{Bytes: b, Size: len(b), MediaType: SniffMediaType(b)}
}

// HashImage fills in im.SHA256 for an image decoded without it (see
// UnhashedDecoder); an image that has one, or has no bytes, is left alone.
func HashImage(im *Image) {
	if im.SHA256 == "" && len(im.Bytes) > 0 {
		sum := sha256.Sum256(im.Bytes)
		im.SHA256 = hex.EncodeToString(sum[:])
	}
}

// ImageFromURL returns an Image the provider fetches from u.
func ImageFromURL(u string) Image { return Image{URL: u} }

// SniffMediaType returns the media type of b judged from its leading bytes
// (image/jpeg, image/png, image/gif, image/webp, image/bmp, image/tiff), or
// "" when b is not an image type the supported APIs accept.
func SniffMediaType(b []byte) string {
	if len(b) >= 4 && (string(b[:4]) == "II*\x00" || string(b[:4]) == "MM\x00*") {
		return "image/tiff"
	}
	ct := http.DetectContentType(b)
	if strings.HasPrefix(ct, "image/") && ct != "image/x-icon" && ct != "image/svg+xml" {
		return ct
	}
	return ""
}

// AttributeKind names one of the attribute families a catalogue tags.
type AttributeKind string

// The attribute kinds cutover compares.
const (
	KindColor    AttributeKind = "color"
	KindPattern  AttributeKind = "pattern"
	KindMaterial AttributeKind = "material"
	KindStyle    AttributeKind = "style"
)

// AttributeKinds lists every kind in report order.
var AttributeKinds = []AttributeKind{KindColor, KindPattern, KindMaterial, KindStyle}

// Valid reports whether k is one of AttributeKinds.
func (k AttributeKind) Valid() bool {
	for _, v := range AttributeKinds {
		if k == v {
			return true
		}
	}
	return false
}

// Request asks a provider to classify one image.
type Request struct {
	Image Image `json:"image"`
	// MaxLabels caps the number of labels returned; 0 means the provider's default.
	MaxLabels int `json:"max_labels,omitempty"`
	// MinConfidence drops labels below it, 0–1; 0 means the provider's default.
	MinConfidence float64 `json:"min_confidence,omitempty"`
	// Attributes lists the attribute kinds wanted; empty means none beyond labels.
	Attributes []AttributeKind `json:"attributes,omitempty"`
	// CategoryFilter restricts answers to these categories (provider vocabulary).
	CategoryFilter []string `json:"category_filter,omitempty"`
	// Operation is the vendor's operation a server decoded the call as,
	// for formats with several classification operations whose answers
	// differ in shape (tencent: DetectLabelPro or DetectProduct); "" for
	// the rest. The server answers in that operation's shape.
	Operation string `json:"operation,omitempty"`
	// LLM describes a vision-LLM call as a server decoded it (openai format):
	// what the simulator needs to produce consistent token usage.
	LLM *LLMParams `json:"llm,omitempty"`
}

// LLMParams are the parts of a vision-LLM request that shape its answer and
// its token usage.
type LLMParams struct {
	Model     string `json:"model"`
	Detail    string `json:"detail,omitempty"`
	MaxTokens int    `json:"max_tokens,omitempty"`
	Logprobs  bool   `json:"logprobs,omitempty"`
	// PromptText is every text token the model reads: messages and schema.
	PromptText string `json:"-"`
	// Width and Height of the image, when known.
	Width, Height int `json:"-"`
}

// Usage is one call's token accounting (vision-LLM formats).
type Usage struct {
	InputTokens int64 `json:"input_tokens"`
	// CachedTokens is the part of InputTokens served from the prompt cache.
	CachedTokens int64 `json:"cached_tokens,omitempty"`
	OutputTokens int64 `json:"output_tokens"`
}

// WantsAttribute reports whether k is among r.Attributes.
func (r Request) WantsAttribute(k AttributeKind) bool {
	for _, a := range r.Attributes {
		if a == k {
			return true
		}
	}
	return false
}

// Label is one label as the provider named it, confidence 0–1.
type Label struct {
	Name       string   `json:"name"`
	Confidence float64  `json:"confidence"`
	Parents    []string `json:"parents,omitempty"`
	Aliases    []string `json:"aliases,omitempty"`
}

// Attribute is a typed attribute value as the provider named it, confidence 0–1.
type Attribute struct {
	Kind       AttributeKind `json:"kind"`
	Value      string        `json:"value"`
	Confidence float64       `json:"confidence"`
}

// Color is a dominant colour the provider measured, as sRGB with the share of
// pixels it covers (0–1) and the provider's own name for it, if any.
type Color struct {
	R, G, B  uint8   `json:"-"`
	Hex      string  `json:"hex"`
	Fraction float64 `json:"fraction,omitempty"`
	Score    float64 `json:"score,omitempty"`
	Name     string  `json:"name,omitempty"`
}

// Result is a provider's answer in provider vocabulary. Normalize turns it
// into canonical Tags.
type Result struct {
	// Labels are free labels (Rekognition, GCV, Azure tags).
	Labels []Label `json:"labels,omitempty"`
	// Categories are labels the provider itself typed as categories (holysheep, openai).
	Categories []Label `json:"categories,omitempty"`
	// Attributes are typed attribute values.
	Attributes []Attribute `json:"attributes,omitempty"`
	// Colors are measured dominant colours.
	Colors []Color `json:"colors,omitempty"`
	// ModelVersion is the provider's model identifier, if it reports one.
	ModelVersion string `json:"model_version,omitempty"`
	// PromptVersion identifies the prompt and schema that produced the
	// answer (vision LLMs), so two prompts compare like two providers.
	PromptVersion string `json:"prompt_version,omitempty"`
	// ConfidenceSource says where confidences come from: "provider" (the
	// API's score), "model" (the LLM's own report) or "logprobs" (derived
	// from token log-probabilities).
	ConfidenceSource string `json:"confidence_source,omitempty"`
	// Usage is the token accounting, for formats that report it.
	Usage *Usage `json:"usage,omitempty"`
	// Raw is the provider's response body, kept for debugging and replay.
	Raw json.RawMessage `json:"-"`
}

// Provider classifies images. Implementations must be safe for concurrent use.
type Provider interface {
	Classify(ctx context.Context, req Request) (Result, error)
}

// ProviderFunc adapts a function to Provider.
type ProviderFunc func(ctx context.Context, req Request) (Result, error)

// Classify calls f.
func (f ProviderFunc) Classify(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

var _ Provider = ProviderFunc(nil)

// Filter drops labels, categories and attributes below minConf and keeps at
// most maxLabels labels and categories (0 = no cap), most confident first.
// Clients apply it for formats whose wire has no such parameters (GCV,
// Azure), so every provider honours a Request the same way.
func (r Result) Filter(minConf float64, maxLabels int) Result {
	keep := func(ls []Label) []Label {
		var out []Label
		for _, l := range ls {
			if l.Confidence >= minConf {
				out = append(out, l)
			}
		}
		return out
	}
	r.Categories, r.Labels = keep(r.Categories), keep(r.Labels)
	var attrs []Attribute
	for _, a := range r.Attributes {
		if a.Confidence >= minConf {
			attrs = append(attrs, a)
		}
	}
	r.Attributes = attrs
	if maxLabels > 0 {
		if len(r.Categories) > maxLabels {
			r.Categories = topN(r.Categories, maxLabels)
		}
		if n := maxLabels - len(r.Categories); len(r.Labels) > n {
			r.Labels = topN(r.Labels, max(n, 0))
		}
	}
	return r
}

func topN(ls []Label, n int) []Label {
	s := append([]Label(nil), ls...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Confidence > s[j].Confidence })
	if n == 0 {
		return nil
	}
	return s[:n]
}

// NewImageRequest is a Request for image bytes b with default options.
func NewImageRequest(b []byte) Request { return Request{Image: NewImage(b)} }
