package openai

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // image sizes for token estimates
	_ "image/jpeg"
	_ "image/png"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/internal/bufpool"
	"github.com/cutover/cutover/internal/jsonx"
	"github.com/cutover/cutover/vision"
)

// Codec is both sides of Chat Completions tagging. A client needs BaseURL,
// APIKey, Model, Prompt and Schema (NewCodec builds them).
type Codec struct {
	// BaseURL ends in /v1, e.g. https://api.holysheep.ai/v1.
	BaseURL string
	APIKey  string
	Model   string
	Prompt  config.Prompt
	// Schema is the json_schema sent; Kinds the attributes it asks for.
	Schema json.RawMessage
	Kinds  []vision.AttributeKind

	// prefix and suffix are the request body around the image URL, encoded
	// once: re-marshalling the constant prompt and schema for every call
	// cost the proxy 13 % of its CPU.
	prefix, suffix []byte
}

// imagePlaceholder marks where the image URL goes in a pre-encoded body.
const imagePlaceholder = "\u0000cutover-image\u0000"

// NewCodec returns a client codec whose schema is built from tx.
func NewCodec(baseURL, apiKey, model string, prompt config.Prompt, tx *vision.Taxonomy) *Codec {
	var kinds []vision.AttributeKind
	for _, a := range prompt.Schema.Attributes {
		kinds = append(kinds, vision.AttributeKind(a))
	}
	c := &Codec{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, Model: model, Prompt: prompt,
		Schema: BuildSchema(tx, prompt.Schema.MaxCategories, kinds), Kinds: kinds}
	c.prepare()
	return c
}

// prepare encodes the request once with a placeholder URL and keeps the
// bytes around it, so that each call only appends its image.
func (c *Codec) prepare() {
	cr := c.chatRequest(imagePlaceholder)
	b, err := json.Marshal(cr)
	if err != nil {
		return
	}
	marker := []byte(`"` + `\u0000cutover-image\u0000` + `"`)
	i := bytes.Index(b, marker)
	if i < 0 {
		return
	}
	c.prefix = append([]byte(nil), b[:i]...)
	c.suffix = append([]byte(nil), b[i+len(marker):]...)
}

// appendBody appends the JSON body for req to dst: the pre-encoded parts
// around the image URL, base64 written straight into the buffer.
func (c *Codec) appendBody(dst []byte, req vision.Request) ([]byte, error) {
	switch {
	case len(req.Image.Bytes) > 0:
		mt := req.Image.MediaType
		if mt == "" {
			mt = "image/jpeg"
		}
		dst = append(dst, c.prefix...)
		dst = append(dst, `"data:`...)
		dst = append(dst, mt...)
		dst = append(dst, ";base64,"...)
		dst = vision.AppendBase64(dst, req.Image.Bytes)
		dst = append(dst, '"')
	case req.Image.URL != "":
		u, err := json.Marshal(req.Image.URL)
		if err != nil {
			return nil, err
		}
		dst = append(dst, c.prefix...)
		dst = append(dst, u...)
	default:
		return nil, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	return append(dst, c.suffix...), nil
}

// Format implements vision.ClientCodec.
func (c *Codec) Format() string { return "openai" }

// EncodeRequest builds the chat request for req.
func (c *Codec) EncodeRequest(req vision.Request) (ChatRequest, error) {
	var url string
	switch {
	case len(req.Image.Bytes) > 0:
		mt := req.Image.MediaType
		if mt == "" {
			mt = "image/jpeg"
		}
		url = "data:" + mt + ";base64," + vision.EncodeBase64(req.Image.Bytes)
	case req.Image.URL != "":
		url = req.Image.URL
	default:
		return ChatRequest{}, vision.Errorf(vision.CodeBadRequest, "request has no image")
	}
	return c.chatRequest(url), nil
}

func (c *Codec) chatRequest(url string) ChatRequest {
	cr := ChatRequest{
		Model: c.Model,
		Messages: []Message{
			{Role: "system", Content: MessageContent{Text: c.Prompt.System}},
			{Role: "user", Content: MessageContent{Parts: []Part{
				{Type: "text", Text: c.Prompt.User},
				{Type: "image_url", ImageURL: &ImageURL{URL: url, Detail: c.Prompt.Detail}},
			}}},
		},
		ResponseFormat:      &ResponseFormat{Type: "json_schema", JSONSchema: &JSONSchema{Name: c.Prompt.Schema.Name, Strict: true, Schema: c.Schema}},
		MaxCompletionTokens: c.Prompt.MaxCompletionTokens,
		Temperature:         c.Prompt.Temperature,
		Seed:                c.Prompt.Seed,
		Logprobs:            c.Prompt.Logprobs,
	}
	if c.Prompt.Logprobs {
		cr.TopLogprobs = 3
	}
	return cr
}

// NewRequest implements vision.ClientCodec.
func (c *Codec) NewRequest(ctx context.Context, req vision.Request) (*http.Request, error) {
	var hr *http.Request
	var err error
	if c.prefix != nil && len(req.Image.Bytes) > 0 {
		// Built in a pooled buffer sized so that appending never grows it
		// (the data URL's media type is at most a few dozen bytes).
		buf := bufpool.RequestBodies.Get(len(c.prefix) + len(c.suffix) + 4*((len(req.Image.Bytes)+2)/3) + len(req.Image.MediaType) + 64)
		body, err := c.appendBody(*buf, req)
		if err != nil {
			bufpool.RequestBodies.Put(buf)
			return nil, err
		}
		*buf = body
		hr, err = bufpool.NewRequest(ctx, http.MethodPost, c.BaseURL+Path, buf)
	} else {
		var body []byte
		if c.prefix != nil {
			body, err = c.appendBody(nil, req)
		} else {
			var cr ChatRequest
			if cr, err = c.EncodeRequest(req); err == nil {
				body, err = jsonx.Marshal(cr)
			}
		}
		if err != nil {
			return nil, err
		}
		hr, err = http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+Path, bytes.NewReader(body))
	}
	if err != nil {
		return nil, fmt.Errorf("building chat request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return hr, nil
}

// PromptText is the text the model reads besides the image: messages and
// the schema, for token estimates.
func (c *Codec) PromptText() string {
	return c.Prompt.System + c.Prompt.User + string(c.Schema)
}

// DecodeResponse implements vision.ClientCodec.
func (c *Codec) DecodeResponse(resp *http.Response, body []byte) (vision.Result, error) {
	if resp.StatusCode != http.StatusOK {
		return vision.Result{}, DecodeError(resp.StatusCode, resp.Header, body)
	}
	var cc ChatCompletion
	if err := vision.DecodeAnswer(body, &cc, "chat completion"); err != nil {
		return vision.Result{}, err
	}
	return c.DecodeCompletion(cc, body)
}

// DecodeCompletion turns a completion into a Result, or into the typed code
// of its failure mode (carrying the usage, since a failed answer still costs).
func (c *Codec) DecodeCompletion(cc ChatCompletion, raw []byte) (vision.Result, error) {
	var usage *vision.Usage
	if cc.Usage != nil {
		usage = &vision.Usage{InputTokens: cc.Usage.PromptTokens, OutputTokens: cc.Usage.CompletionTokens}
		if cc.Usage.PromptTokensDetails != nil {
			usage.CachedTokens = cc.Usage.PromptTokensDetails.CachedTokens
		}
	}
	fail := func(code vision.Code, format string, args ...any) (vision.Result, error) {
		e := vision.Errorf(code, format, args...)
		e.Status, e.Usage = 200, usage
		return vision.Result{}, e
	}
	if len(cc.Choices) == 0 {
		return fail(vision.CodeInvalidResponse, "chat completion has no choices")
	}
	ch := cc.Choices[0]
	if ch.Message.Refusal != nil && *ch.Message.Refusal != "" {
		return fail(vision.CodeLLMRefusal, "model refused: %s", clip(*ch.Message.Refusal))
	}
	switch ch.FinishReason {
	case "content_filter":
		return fail(vision.CodeLLMRefusal, "answer stopped by the content filter")
	case "length":
		return fail(vision.CodeLLMTruncated, "answer truncated at max_completion_tokens %d", c.Prompt.MaxCompletionTokens)
	}
	if ch.Message.Content == nil {
		return fail(vision.CodeLLMInvalidJSON, "answer has no content")
	}
	content := *ch.Message.Content
	ans, err := ParseAnswer(content, c.Kinds)
	if err != nil {
		e := err.(*vision.Error)
		e.Status, e.Usage = 200, usage
		return vision.Result{}, e
	}
	res := vision.Result{ModelVersion: cc.Model, PromptVersion: c.Prompt.Version, ConfidenceSource: "model", Usage: usage, Raw: raw}
	for _, s := range ans.Categories {
		res.Categories = append(res.Categories, vision.Label{Name: s.Value, Confidence: s.Confidence})
	}
	if c.Prompt.Logprobs && ch.Logprobs != nil && len(res.Categories) > 0 {
		if conf, ok := ValueConfidence(content, res.Categories[0].Name, ch.Logprobs.Content); ok {
			res.Categories[0].Confidence = conf
			res.ConfidenceSource = "logprobs"
		}
	}
	for _, k := range c.Kinds {
		if a := ans.Attributes[k]; a != nil {
			res.Attributes = append(res.Attributes, vision.Attribute{Kind: k, Value: a.Value, Confidence: a.Confidence})
		}
	}
	return res, nil
}

// ValueConfidence derives a confidence for value from the log-probabilities
// of the tokens that spell its first occurrence in content: exp of their
// sum, the probability of generating exactly that value. ok is false when
// the tokens do not reassemble content.
func ValueConfidence(content, value string, tokens []TokenLogprob) (float64, bool) {
	start := strings.Index(content, `"`+value+`"`)
	if start < 0 {
		return 0, false
	}
	start++
	end := start + len(value)
	var pos int
	var sum float64
	var assembled strings.Builder
	for _, t := range tokens {
		tStart, tEnd := pos, pos+len(t.Token)
		if tEnd > start && tStart < end {
			sum += t.Logprob
		}
		assembled.WriteString(t.Token)
		pos = tEnd
	}
	if assembled.String() != content {
		return 0, false
	}
	return math.Exp(sum), true
}

// DecodeError maps an error answer to a typed code: 429 is throttled,
// unless its code is insufficient_quota (retrying does not help).
func DecodeError(status int, h http.Header, body []byte) *vision.Error {
	var eb ErrorBody
	_ = jsonx.Unmarshal(body, &eb)
	code := ""
	if eb.Error.Code != nil {
		code = *eb.Error.Code
	}
	typed := vision.StatusCodeToCode(status)
	switch {
	case code == "insufficient_quota" || eb.Error.Type == "insufficient_quota":
		typed = vision.CodeQuotaExceeded
	case status == 429:
		typed = vision.CodeThrottled
	case code == "invalid_api_key" || status == 401 || status == 403:
		typed = vision.CodeUnauthorized
	case code == "invalid_image_format" || code == "invalid_image" || code == "image_parse_error" || code == "invalid_image_url":
		typed = vision.CodeBadImage
	case code == "image_too_large":
		typed = vision.CodeTooLarge
	case status == 503 || status == 502 || status == 500:
		typed = vision.CodeServerError
	}
	name := code
	if name == "" {
		name = eb.Error.Type
	}
	e := &vision.Error{Code: typed, Status: status, VendorCode: name, Message: eb.Error.Message, RetryAfter: vision.ParseRetryAfter(h)}
	if e.RetryAfter == 0 && typed == vision.CodeThrottled {
		if d, err := time.ParseDuration(h.Get("X-Ratelimit-Reset-Requests")); err == nil && d > 0 {
			e.RetryAfter = d
		}
	}
	return e
}

// ---- server side ----

// IsClassify implements vision.ServerCodec.
func (c *Codec) IsClassify(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, Path)
}

// MaxBodyBytes implements vision.ServerCodec.
func (c *Codec) MaxBodyBytes() int64 { return maxBody }

// DecodeRequest implements vision.ServerCodec.
func (c *Codec) DecodeRequest(r *http.Request, body []byte) (vision.Request, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return vision.Request{}, badRequest("", "Content-Type must be application/json")
	}
	return DecodeChatRequest(body)
}

// DecodeChatRequest parses a chat request carrying exactly one image.
func DecodeChatRequest(body []byte) (vision.Request, error) {
	var cr ChatRequest
	if err := jsonx.Unmarshal(body, &cr); err != nil {
		return vision.Request{}, badRequest("", "We could not parse the JSON body of your request.")
	}
	if cr.Model == "" {
		return vision.Request{}, badRequest("model", "you must provide a model parameter")
	}
	if len(cr.Messages) == 0 {
		return vision.Request{}, badRequest("messages", "messages must not be empty")
	}
	var req vision.Request
	llm := &vision.LLMParams{Model: cr.Model, MaxTokens: cr.MaxCompletionTokens, Logprobs: cr.Logprobs}
	if llm.MaxTokens == 0 {
		llm.MaxTokens = cr.MaxTokens
	}
	var text strings.Builder
	var img *ImageURL
	for i, m := range cr.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		default:
			return req, badRequest(fmt.Sprintf("messages[%d].role", i), "invalid role "+strconv.Quote(m.Role))
		}
		text.WriteString(m.Content.Text)
		for j, p := range m.Content.Parts {
			switch p.Type {
			case "text":
				text.WriteString(p.Text)
			case "image_url":
				if p.ImageURL == nil || img != nil {
					return req, badRequest(fmt.Sprintf("messages[%d].content[%d]", i, j), "exactly one image_url part is supported")
				}
				img = p.ImageURL
			default:
				return req, badRequest(fmt.Sprintf("messages[%d].content[%d].type", i, j), "unsupported content part type "+strconv.Quote(p.Type))
			}
		}
	}
	if img == nil {
		return req, badRequest("messages", "no image_url part: cutover classifies one image per call")
	}
	switch img.Detail {
	case "", "low", "high", "auto", "original":
		llm.Detail = img.Detail
	default:
		return req, badRequest("detail", "detail must be low, high, auto or original")
	}
	switch {
	case strings.HasPrefix(img.URL, "data:"):
		b, err := vision.DecodeBase64(img.URL)
		if err != nil {
			return req, &vision.Error{Code: vision.CodeBadRequest, VendorCode: "invalid_image_url", Message: "Invalid base64 in the image data URL."}
		}
		im, err := vision.DecodeImageBytes(b, MaxImageBytes)
		if err != nil {
			return req, err
		}
		req.Image = im
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
			llm.Width, llm.Height = cfg.Width, cfg.Height
		}
	case strings.HasPrefix(img.URL, "https://") || strings.HasPrefix(img.URL, "http://"):
		req.Image = vision.ImageFromURL(img.URL)
	default:
		return req, &vision.Error{Code: vision.CodeBadImage, VendorCode: "invalid_image_url", Message: "image_url must be an http(s) URL or a data: URL"}
	}
	if rf := cr.ResponseFormat; rf != nil && rf.JSONSchema != nil {
		var s struct {
			Properties map[string]struct {
				MaxItems int `json:"maxItems"`
			} `json:"properties"`
		}
		if err := jsonx.Unmarshal(rf.JSONSchema.Schema, &s); err != nil {
			return req, badRequest("response_format", "json_schema.schema is not a JSON object")
		}
		for _, k := range vision.AttributeKinds {
			if _, ok := s.Properties[string(k)]; ok {
				req.Attributes = append(req.Attributes, k)
			}
		}
		req.MaxLabels = s.Properties["categories"].MaxItems
		text.Write(rf.JSONSchema.Schema)
	}
	llm.PromptText = text.String()
	req.LLM = llm
	return req, nil
}

func badRequest(param, msg string) *vision.Error {
	return &vision.Error{Code: vision.CodeBadRequest, VendorCode: param, Message: msg}
}

// WriteError implements vision.ServerCodec.
func (c *Codec) WriteError(w http.ResponseWriter, err error) { WriteError(w, err) }

func strp(s string) *string { return &s }

// WriteError answers err in OpenAI's error envelope and status.
func WriteError(w http.ResponseWriter, err error) {
	e := vision.AsError(err)
	status, d := http.StatusInternalServerError, ErrorDetail{Message: "The server had an error while processing your request.", Type: "server_error"}
	switch e.Code {
	case vision.CodeThrottled:
		status, d = 429, ErrorDetail{Message: "Rate limit reached for requests. Please try again later.", Type: "requests", Code: strp("rate_limit_exceeded")}
		ra := e.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.Seconds()))))
	case vision.CodeQuotaExceeded:
		status, d = 429, ErrorDetail{Message: "You exceeded your current quota, please check your plan and billing details.", Type: "insufficient_quota", Code: strp("insufficient_quota")}
	case vision.CodeUnauthorized:
		status, d = 401, ErrorDetail{Message: "Incorrect API key provided.", Type: "invalid_request_error", Code: strp("invalid_api_key")}
	case vision.CodeBadImage:
		status, d = 400, ErrorDetail{Message: "You uploaded an unsupported image. Please make sure your image is valid.", Type: "invalid_request_error", Code: strp("invalid_image_format")}
	case vision.CodeTooLarge:
		status, d = 400, ErrorDetail{Message: "The image is larger than 20 MB.", Type: "invalid_request_error", Code: strp("image_too_large")}
	case vision.CodeBadRequest:
		status, d = 400, ErrorDetail{Message: e.Message, Type: "invalid_request_error"}
		if e.VendorCode != "" {
			d.Param = strp(e.VendorCode)
		}
	case vision.CodeTimeout:
		status, d = 504, ErrorDetail{Message: "The request timed out.", Type: "server_error", Code: strp("timeout")}
	}
	b, _ := jsonx.Marshal(ErrorBody{Error: d})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// Completion builds the chat completion that answers req with content.
func Completion(req vision.Request, content string, finish string, usage vision.Usage) ChatCompletion {
	model := "sim"
	if req.LLM != nil {
		model = req.LLM.Model
	}
	c := content
	return ChatCompletion{
		ID: "chatcmpl-" + randID(), Object: "chat.completion", Created: time.Now().Unix(), Model: model,
		SystemFingerprint: "fp_cutover_sim",
		Choices:           []Choice{{Index: 0, Message: ResponseMessage{Role: "assistant", Content: &c}, FinishReason: finish}},
		Usage: &Usage{PromptTokens: usage.InputTokens, CompletionTokens: usage.OutputTokens,
			TotalTokens: usage.InputTokens + usage.OutputTokens, PromptTokensDetails: &TokenDetails{CachedTokens: usage.CachedTokens}},
	}
}

// WriteCompletion answers a completion.
func WriteCompletion(w http.ResponseWriter, cc ChatCompletion) {
	b, err := jsonx.Marshal(cc)
	if err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// WriteResult implements vision.ServerCodec: the answer a well-behaved
// model gives, with usage from res or estimated from the request.
func (c *Codec) WriteResult(w http.ResponseWriter, req vision.Request, res vision.Result) {
	content := Content(res, req.Attributes)
	var usage vision.Usage
	if res.Usage != nil {
		usage = *res.Usage
	} else if req.LLM != nil {
		usage = EstimateUsage(req.LLM.PromptText, ImageRule("", req.LLM.Model), req.LLM.Detail, req.LLM.Width, req.LLM.Height, TextTokens(content))
	}
	cc := Completion(req, content, "stop", usage)
	if req.LLM != nil && req.LLM.Logprobs {
		cc.Choices[0].Logprobs = &ChoiceLogprobs{Content: Logprobs(content, res)}
	}
	WriteCompletion(w, cc)
}

// Logprobs tokenises content in four-character pieces and gives the
// category's tokens log-probabilities that multiply to its confidence
// (every other token gets log-probability 0), so ValueConfidence recovers it.
func Logprobs(content string, res vision.Result) []TokenLogprob {
	var toks []TokenLogprob
	for i := 0; i < len(content); i += 4 {
		toks = append(toks, TokenLogprob{Token: content[i:min(i+4, len(content))]})
	}
	cats := append(append([]vision.Label(nil), res.Categories...), res.Labels...)
	if len(cats) == 0 {
		return toks
	}
	start := strings.Index(content, `"`+cats[0].Name+`"`)
	if start < 0 {
		return toks
	}
	start++
	end := start + len(cats[0].Name)
	var idx []int
	for i := range toks {
		if ts, te := i*4, i*4+len(toks[i].Token); te > start && ts < end {
			idx = append(idx, i)
		}
	}
	lp := math.Log(math.Max(cats[0].Confidence, 1e-9)) / float64(len(idx))
	for _, i := range idx {
		toks[i].Logprob = lp
	}
	return toks
}

func randID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	_ vision.ClientCodec = (*Codec)(nil)
	_ vision.ServerCodec = (*Codec)(nil)
)

func imageSize(b []byte) (int, int) {
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(b)); err == nil {
		return cfg.Width, cfg.Height
	}
	return 0, 0
}
