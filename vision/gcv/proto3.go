package gcv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/jsonx"
	"github.com/cutover/cutover/vision"
)

// Google's servers read request bodies as proto3 JSON, and so does this
// file: a field may be spelled by its JSON name (lowerCamelCase) or by its
// proto name (snake_case); an enum by its name or its number; an int32 as
// a number or a decimal string; bytes as standard or URL-safe base64, with
// or without padding; null means the field's default. An unknown field, a
// field given twice under both spellings, or a value of the wrong type is
// a 400 INVALID_ARGUMENT naming the field, as Google answers it.

// rawMsg is one JSON value, undecoded.
type rawMsg = []byte

// field is one message field: its JSON name and its proto name.
type field struct{ json, proto string }

var (
	batchFields   = []field{{"requests", "requests"}, {"parent", "parent"}, {"labels", "labels"}}
	requestFields = []field{{"image", "image"}, {"features", "features"}, {"imageContext", "image_context"}}
	imageFields   = []field{{"content", "content"}, {"source", "source"}}
	sourceFields  = []field{{"gcsImageUri", "gcs_image_uri"}, {"imageUri", "image_uri"}}
	featureFields = []field{{"type", "type"}, {"maxResults", "max_results"}, {"model", "model"}}
)

// FeatureTypes maps google.cloud.vision.v1.Feature.Type names to their
// numbers (image_annotator.proto).
var FeatureTypes = map[string]int{
	"TYPE_UNSPECIFIED": 0, "FACE_DETECTION": 1, "LANDMARK_DETECTION": 2, "LOGO_DETECTION": 3,
	"LABEL_DETECTION": 4, "TEXT_DETECTION": 5, "SAFE_SEARCH_DETECTION": 6, "IMAGE_PROPERTIES": 7,
	"CROP_HINTS": 9, "WEB_DETECTION": 10, "DOCUMENT_TEXT_DETECTION": 11, "PRODUCT_SEARCH": 12,
	"OBJECT_LOCALIZATION": 19,
}

func featureName(n int) string {
	for k, v := range FeatureTypes {
		if v == n {
			return k
		}
	}
	return ""
}

func invalid(format string, args ...any) *vision.Error {
	return statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+fmt.Sprintf(format, args...))
}

// object splits a JSON object into its fields by canonical (JSON) name.
// where is the message's place for error messages ("requests[0]"); a
// null object is an empty one.
func object(b rawMsg, where string, fs []field) (map[string]rawMsg, error) {
	b = bytes.TrimSpace(b)
	if isNull(b) {
		return map[string]rawMsg{}, nil
	}
	var m map[string]json.RawMessage
	if len(b) == 0 || b[0] != '{' {
		return nil, invalid("Expected an object at '%s'.", orTop(where))
	}
	if err := jsonx.Unmarshal(b, &m); err != nil {
		return nil, invalid("%s", vision.JSONErrorDetail(err))
	}
	out := make(map[string]rawMsg, len(m))
	for k, v := range m {
		canon := ""
		for _, f := range fs {
			if k == f.json || k == f.proto {
				canon = f.json
				break
			}
		}
		if canon == "" {
			return nil, invalid("Unknown name %q at '%s': Cannot find field.", k, orTop(where))
		}
		if _, dup := out[canon]; dup {
			return nil, invalid("Duplicate field %q at '%s'.", canon, orTop(where))
		}
		if !isNull(v) {
			out[canon] = rawMsg(v)
		}
	}
	return out, nil
}

func orTop(where string) string {
	if where == "" {
		return "(root)"
	}
	return where
}

func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }

// array splits a JSON array into its elements.
func array(b rawMsg, where string) ([]rawMsg, error) {
	var a []json.RawMessage
	if err := jsonx.Unmarshal(b, &a); err != nil {
		return nil, invalid("Invalid value at '%s', expected a list.", where)
	}
	out := make([]rawMsg, len(a))
	for i := range a {
		out[i] = rawMsg(a[i])
	}
	return out, nil
}

// str decodes a JSON string.
func str(b rawMsg, where, typ string) (string, error) {
	var s string
	if err := jsonx.Unmarshal(b, &s); err != nil {
		return "", invalid("Invalid value at '%s' (%s), %s", where, typ, bytes.TrimSpace(b))
	}
	return s, nil
}

// int32Value decodes a proto3 JSON int32: a number (integral, possibly
// written with an exponent) or a decimal string.
func int32Value(b rawMsg, where string) (int, error) {
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		var err error
		if s, err = str(b, where, "TYPE_INT32"); err != nil {
			return 0, err
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 || strings.TrimSpace(s) != s {
		return 0, invalid("Invalid value at '%s' (TYPE_INT32), %s", where, b)
	}
	return int(f), nil
}

// enumValue decodes a proto3 JSON enum: its name, or its number.
func enumValue(b rawMsg, where, typ string, names map[string]int) (int, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		s, err := str(b, where, "type.googleapis.com/"+typ)
		if err != nil {
			return 0, err
		}
		n, ok := names[s]
		if !ok {
			return 0, invalid("Invalid value at '%s' (type.googleapis.com/%s), %q", where, typ, s)
		}
		return n, nil
	}
	n, err := int32Value(b, where)
	if err != nil {
		return 0, invalid("Invalid value at '%s' (type.googleapis.com/%s), %s", where, typ, b)
	}
	return n, nil
}

// bytesValue decodes a proto3 JSON bytes field: standard or URL-safe
// base64, padded or not.
func bytesValue(b rawMsg, where string) ([]byte, error) {
	s, err := str(b, where, "TYPE_BYTES")
	if err != nil {
		return nil, err
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(s); err == nil {
			return out, nil
		}
	}
	return nil, invalid("Invalid value at '%s' (TYPE_BYTES), Base64 decoding failed for %q", where, abbrev(s))
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Encoding is how a caller asked to be answered: Google's system
// parameter $alt (also spelt alt), "json" by default, optionally with
// ";enum-encoding=int", which may also come as its own query parameter.
type Encoding struct {
	// EnumsAsInts is true for enum-encoding=int: enum values are written
	// as numbers.
	EnumsAsInts bool
}

// ParseEncoding reads $alt and enum-encoding from a request's query. Only
// JSON is served: $alt=proto (binary protobuf) and $alt=media are
// refused with INVALID_ARGUMENT.
func ParseEncoding(q url.Values) (Encoding, error) {
	var enc Encoding
	alt := q.Get("$alt")
	if alt == "" {
		alt = q.Get("alt")
	}
	params := strings.Split(alt, ";")
	switch strings.TrimSpace(params[0]) {
	case "", "json":
	default:
		return enc, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid value for $alt: %q; cutover's images:annotate answers JSON only", alt))
	}
	ee := q.Get("enum-encoding")
	for _, p := range params[1:] {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "enum-encoding" {
			ee = v
		} else if p != "" {
			return enc, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid parameter in $alt: %q", p))
		}
	}
	switch ee {
	case "", "string":
	case "int":
		enc.EnumsAsInts = true
	default:
		return enc, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid value for enum-encoding: %q (want int or string)", ee))
	}
	return enc, nil
}

// decodeProto3 parses an annotate body as proto3 JSON into the one image
// request cutover classifies.
func decodeProto3(body []byte) (imageRequest, error) {
	var ir imageRequest
	top, err := object(body, "", batchFields)
	if err != nil {
		return ir, err
	}
	var reqs []rawMsg
	if r, ok := top["requests"]; ok {
		if reqs, err = array(r, "requests"); err != nil {
			return ir, err
		}
	}
	if p, ok := top["parent"]; ok {
		if _, err := str(p, "parent", "TYPE_STRING"); err != nil {
			return ir, err
		}
	}
	if len(reqs) != 1 {
		return ir, statusErr(vision.CodeBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("cutover's annotate endpoint takes exactly 1 request, got %d", len(reqs)))
	}
	r, err := object(reqs[0], "requests[0]", requestFields)
	if err != nil {
		return ir, err
	}
	if b, ok := r["image"]; ok {
		im, err := object(b, "requests[0].image", imageFields)
		if err != nil {
			return ir, err
		}
		if c, ok := im["content"]; ok {
			if ir.content, err = bytesValue(c, "requests[0].image.content"); err != nil {
				return ir, err
			}
			ir.hasContent = true
		}
		if s, ok := im["source"]; ok {
			src, err := object(s, "requests[0].image.source", sourceFields)
			if err != nil {
				return ir, err
			}
			if v, ok := src["imageUri"]; ok {
				if ir.imageURI, err = str(v, "requests[0].image.source.image_uri", "TYPE_STRING"); err != nil {
					return ir, err
				}
			}
			if v, ok := src["gcsImageUri"]; ok {
				if ir.gcsURI, err = str(v, "requests[0].image.source.gcs_image_uri", "TYPE_STRING"); err != nil {
					return ir, err
				}
			}
		}
	}
	if f, ok := r["features"]; ok {
		fs, err := array(f, "requests[0].features")
		if err != nil {
			return ir, err
		}
		for i, fb := range fs {
			where := fmt.Sprintf("requests[0].features[%d]", i)
			fm, err := object(fb, where, featureFields)
			if err != nil {
				return ir, err
			}
			var ft feature
			if t, ok := fm["type"]; ok {
				if ft.typ, err = enumValue(t, where+".type", "google.cloud.vision.v1.Feature.Type", FeatureTypes); err != nil {
					return ir, err
				}
			}
			if m, ok := fm["maxResults"]; ok {
				if ft.maxResults, err = int32Value(m, where+".max_results"); err != nil {
					return ir, err
				}
			}
			if m, ok := fm["model"]; ok {
				if _, err := str(m, where+".model", "TYPE_STRING"); err != nil {
					return ir, err
				}
			}
			ir.features = append(ir.features, ft)
		}
	}
	if c, ok := r["imageContext"]; ok {
		// Hints for other features (language, crop, web, product search):
		// accepted as an object, not used.
		if b := bytes.TrimSpace(c); len(b) == 0 || b[0] != '{' {
			return ir, invalid("Invalid value at 'requests[0].image_context', expected an object.")
		}
	}
	return ir, nil
}

// imageRequest is one decoded AnnotateImageRequest.
type imageRequest struct {
	content          []byte
	hasContent       bool
	imageURI, gcsURI string
	features         []feature
}

type feature struct {
	typ, maxResults int
}
