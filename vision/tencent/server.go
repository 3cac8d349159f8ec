package tencent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of JPEG product images (DetectProduct's box)
	_ "image/png"  // and PNG
	"math"
	"mime"
	"net/http"
	"strings"

	"github.com/cutover/cutover/internal/jsonx"
	"github.com/cutover/cutover/vision"
)

// IsClassify implements vision.ServerCodec: a POST to / whose X-TC-Action
// is DetectLabelPro or DetectProduct.
func (c *Codec) IsClassify(r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return false
	}
	a := r.Header.Get("X-TC-Action")
	return a == ActionLabelPro || a == ActionProduct
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return MaxRequestBytes }

func tcErr(code vision.Code, vendor, msg string) *vision.Error {
	return &vision.Error{Code: code, VendorCode: vendor, Message: msg}
}

// DecodeRequest implements vision.ServerCodec. It checks the call's
// headers and body as TIIA does; the signature is VerifyTC3's business.
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	return decode(r, body, true)
}

// DecodeRequestUnhashed implements vision.UnhashedDecoder.
func (c *Codec) DecodeRequestUnhashed(r *http.Request, body []byte) (vision.Request, error) {
	return decode(r, body, false)
}

// mediaTypes are the image types TIIA reads, per action.
var mediaTypes = map[string][]string{
	ActionLabelPro: {"image/png", "image/jpeg", "image/bmp"},
	ActionProduct:  {"image/png", "image/jpeg"},
}

func decode(r *http.Request, body []byte, hash bool) (vision.Request, error) {
	var req vision.Request
	action := r.Header.Get("X-TC-Action")
	if action != ActionLabelPro && action != ActionProduct {
		return req, tcErr(vision.CodeBadRequest, "InvalidAction", fmt.Sprintf("The requested action `%s` does not exist.", action))
	}
	req.Operation = action
	if v := r.Header.Get("X-TC-Version"); v != Version {
		return req, tcErr(vision.CodeBadRequest, "NoSuchVersion", fmt.Sprintf("The requested version `%s` of action `%s` does not exist.", v, action))
	}
	if r.Header.Get("X-TC-Region") == "" {
		return req, tcErr(vision.CodeBadRequest, "MissingParameter", "The request is missing a required parameter `Region`.")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return req, tcErr(vision.CodeBadRequest, "UnsupportedProtocol", "POST requests must be application/json.")
	}
	var fields map[string]json.RawMessage
	if err := jsonx.Unmarshal(body, &fields); err != nil {
		return req, tcErr(vision.CodeBadRequest, "InvalidParameter", "The request body is not a JSON object: "+vision.JSONErrorDetail(err))
	}
	var in Request
	for k, v := range fields {
		var dst *string
		switch k {
		case "ImageUrl":
			dst = &in.ImageUrl
		case "ImageBase64":
			dst = &in.ImageBase64
		default:
			return req, tcErr(vision.CodeBadRequest, "UnknownParameter", fmt.Sprintf("The parameter `%s` is not recognized.", k))
		}
		if err := jsonx.Unmarshal(v, dst); err != nil {
			return req, tcErr(vision.CodeBadRequest, "InvalidParameter", fmt.Sprintf("The value type of parameter `%s` is not valid.", k))
		}
	}
	switch {
	case in.ImageUrl != "":
		req.Image = vision.ImageFromURL(in.ImageUrl)
		return req, nil
	case in.ImageBase64 == "":
		return req, tcErr(vision.CodeBadImage, "InvalidParameterValue.ImageEmpty", "图片为空。")
	case len(in.ImageBase64) > MaxImageBase64:
		return req, tcErr(vision.CodeTooLarge, "LimitExceeded.TooLargeFileError",
			fmt.Sprintf("文件太大: ImageBase64 is %d bytes, the limit is %d.", len(in.ImageBase64), MaxImageBase64))
	}
	b, err := decodeImage(in.ImageBase64)
	if err != nil {
		return req, tcErr(vision.CodeBadImage, "FailedOperation.ImageDecodeFailed", "图片解码失败: ImageBase64 is not base64.")
	}
	im, err := vision.CheckImageBytes(b, 0)
	if err != nil {
		return req, tcErr(vision.CodeBadImage, "FailedOperation.ImageDecodeFailed", "图片解码失败。")
	}
	ok := false
	for _, mt := range mediaTypes[action] {
		ok = ok || im.MediaType == mt
	}
	if !ok {
		return req, tcErr(vision.CodeBadImage, "FailedOperation.ImageNotSupported", fmt.Sprintf("图片格式不支持: %s.", im.MediaType))
	}
	if hash {
		vision.HashImage(&im)
	}
	req.Image = im
	return req, nil
}

// WriteError implements vision.ServerCodec: HTTP 200 with Response.Error,
// the error's own TIIA code when it has one (VendorCode), else the code
// its typed code maps to.
func (c *Codec) WriteError(w http.ResponseWriter, err error) {
	e := vision.AsError(err)
	code, msg := answerFor(e.Code)
	if e.VendorCode != "" && isTIIACode(e.VendorCode) {
		code = e.VendorCode
		if e.Message != "" {
			msg = e.Message
		}
	}
	var r Response
	r.Response.Error = &ErrorBody{Code: code, Message: msg}
	r.Response.RequestId = newRequestID()
	b, _ := json.Marshal(errorAnswer{Response: errorResponse{Error: r.Response.Error, RequestId: r.Response.RequestId}})
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// isTIIACode reports whether s looks like a TIIA code (Family or
// Family.Detail, letters only), not another format's vendor code.
func isTIIACode(s string) bool {
	if _, ok := Codes[s]; ok {
		return true
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '.') {
			return false
		}
	}
	family, _, _ := strings.Cut(s, ".")
	switch family {
	case "AuthFailure", "FailedOperation", "InvalidParameter", "InvalidParameterValue", "LimitExceeded", "MissingParameter",
		"RequestLimitExceeded", "ResourceUnavailable", "ResourcesSoldOut", "UnauthorizedOperation", "UnknownParameter",
		"InternalError", "InvalidAction", "NoSuchVersion", "UnsupportedRegion", "UnsupportedProtocol", "RequestSizeLimitExceeded":
		return true
	}
	return false
}

type errorResponse struct {
	Error     *ErrorBody `json:"Error"`
	RequestId string     `json:"RequestId"`
}

type errorAnswer struct {
	Response errorResponse `json:"Response"`
}

type labelAnswer struct {
	Response struct {
		Labels    []Label `json:"Labels"`
		RequestId string  `json:"RequestId"`
	} `json:"Response"`
}

type productAnswer struct {
	Response struct {
		Products  []Product `json:"Products"`
		RequestId string    `json:"RequestId"`
	} `json:"Response"`
}

// attributeCategories are the categories an attribute label is reported
// under (Tencent's own for colours and materials are not published).
var attributeCategories = map[vision.AttributeKind]string{
	vision.KindColor: "颜色", vision.KindPattern: "图案", vision.KindMaterial: "材质", vision.KindStyle: "风格",
}

// WriteResult implements vision.ServerCodec: DetectLabelPro's Labels or
// DetectProduct's Products (req.Operation), confidences as integers 0–100.
// A label's Parents (nearest first) become its SecondCategory and
// FirstCategory (both its own name when it has none); a product's become
// "first-second". Attributes become labels under 属性 (attributes) and their
// kind; DetectProduct reports categories only.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	var b []byte
	var err error
	if req.Operation == ActionProduct {
		var a productAnswer
		a.Response.Products = []Product{}
		w0, h0 := imageSize(req.Image.Bytes)
		for _, l := range append(append([]vision.Label(nil), res.Categories...), res.Labels...) {
			var ps []string
			for i := len(l.Parents) - 1; i >= 0; i-- {
				ps = append(ps, l.Parents[i])
			}
			if len(ps) == 0 {
				ps = []string{l.Name}
			}
			a.Response.Products = append(a.Response.Products, Product{Name: l.Name, Parents: strings.Join(ps, "-"),
				Confidence: percent(l.Confidence), XMax: w0, YMax: h0})
		}
		a.Response.RequestId = newRequestID()
		b, err = json.Marshal(a)
	} else {
		var a labelAnswer
		a.Response.Labels = []Label{}
		add := func(name string, conf float64, ps []string) {
			first, second := name, name
			if len(ps) > 0 {
				first, second = ps[len(ps)-1], ps[0]
			}
			a.Response.Labels = append(a.Response.Labels, Label{Name: name, Confidence: percent(conf), FirstCategory: first, SecondCategory: second})
		}
		for _, l := range res.Categories {
			add(l.Name, l.Confidence, l.Parents)
		}
		for _, l := range res.Labels {
			add(l.Name, l.Confidence, l.Parents)
		}
		for _, at := range res.Attributes {
			add(at.Value, at.Confidence, []string{attributeCategories[at.Kind], "属性"})
		}
		for _, col := range res.Colors {
			if col.Name != "" {
				add(col.Name, max(col.Score, col.Fraction), []string{attributeCategories[vision.KindColor], "属性"})
			}
		}
		a.Response.RequestId = newRequestID()
		b, err = json.Marshal(a)
	}
	if err != nil {
		c.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// percent is a 0–1 confidence as TIIA's integer 0–100.
func percent(c float64) int64 { return int64(math.Round(math.Min(1, math.Max(0, c)) * 100)) }

// imageSize is a JPEG or PNG image's size in pixels (0, 0 otherwise).
func imageSize(b []byte) (int64, int64) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return 0, 0
	}
	return int64(cfg.Width), int64(cfg.Height)
}
