package openai

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/visiontest"
)

func mustTaxonomy(tb testing.TB) *vision.Taxonomy {
	tb.Helper()
	tx, err := vision.LoadTaxonomy("../../taxonomy.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return tx
}

func testPrompt() config.Prompt {
	p := config.DefaultPrompt
	zero := 0.0
	seed := int64(7)
	p.Detail, p.MaxCompletionTokens, p.Temperature, p.Seed = "low", 300, &zero, &seed
	p.Schema = config.PromptSchema{Name: "product_tags", MaxCategories: 3, Attributes: []string{"color", "pattern", "material", "style"}}
	return p
}

func newClient(tb testing.TB, base string) *Codec {
	return NewCodec(base+"/v1", "sk-test", "gemini-2.5-flash", testPrompt(), mustTaxonomy(tb))
}

var sampleResult = vision.Result{
	Categories: []vision.Label{{Name: "apparel/topwear/tshirts", Confidence: 0.93}, {Name: "apparel/topwear/shirts", Confidence: 0.41}},
	Attributes: []vision.Attribute{{Kind: vision.KindColor, Value: "black", Confidence: 0.9}, {Kind: vision.KindPattern, Value: "striped", Confidence: 0.8}},
}

func suite(t *testing.T) visiontest.Suite {
	good := func() map[string]any {
		return map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "text", "text": "tag"},
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64," + base64.StdEncoding.EncodeToString(visiontest.Image)}}}}}}
	}
	withURL := func(u string) []byte {
		m := good()
		m["messages"].([]any)[0].(map[string]any)["content"].([]any)[1] = map[string]any{"type": "image_url", "image_url": map[string]any{"url": u}}
		b, _ := json.Marshal(m)
		return b
	}
	post := func(b []byte) func(string) *http.Request {
		return func(u string) *http.Request {
			return visiontest.Post(u+"/v1"+Path, "application/json", b, "Authorization", "Bearer k")
		}
	}
	noModel := good()
	delete(noModel, "model")
	noModelB, _ := json.Marshal(noModel)
	noImage, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": "hello"}}})
	return visiontest.Suite{
		Server:    &Codec{},
		NewClient: func(u string) vision.ClientCodec { return newClient(t, u) },
		Request:   vision.Request{Image: vision.NewImage(visiontest.Image)},
		WantDecoded: func(s vision.Request) vision.Request {
			s.Attributes = vision.AttributeKinds
			return s
		},
		Result: sampleResult,
		WantResult: vision.Result{Categories: sampleResult.Categories, Attributes: sampleResult.Attributes, ModelVersion: "gemini-2.5-flash",
			PromptVersion: "fashion-v1", ConfidenceSource: "model"},
		Errors: map[vision.Code]vision.Code{
			vision.CodeThrottled: vision.CodeThrottled, vision.CodeQuotaExceeded: vision.CodeQuotaExceeded,
			vision.CodeUnauthorized: vision.CodeUnauthorized, vision.CodeTooLarge: vision.CodeTooLarge,
			vision.CodeBadImage: vision.CodeBadImage, vision.CodeBadRequest: vision.CodeBadRequest,
			vision.CodeServerError: vision.CodeServerError, vision.CodeTimeout: vision.CodeTimeout,
		},
		LLM: true,
		BadInputs: []visiontest.BadInput{
			visiontest.Bad("malformed JSON", post([]byte(`{"model":`)), 400, vision.CodeBadRequest),
			visiontest.Bad("wrong content type", func(u string) *http.Request {
				return visiontest.Post(u+"/v1"+Path, "text/plain", withURL("https://x/a.jpg"))
			}, 400, vision.CodeBadRequest),
			visiontest.Bad("invalid base64", post(withURL("data:image/png;base64,@@@@")), 400, vision.CodeBadRequest),
			visiontest.Bad("empty image", post(withURL("data:image/png;base64,")), 400, vision.CodeBadRequest),
			visiontest.Bad("not an image", post(withURL("data:image/png;base64,"+base64.StdEncoding.EncodeToString([]byte("words, not pixels")))), 400, vision.CodeBadImage),
			visiontest.Bad("image over 20 MB", post(withURL("data:image/jpeg;base64,"+base64.StdEncoding.EncodeToString(visiontest.Huge(MaxImageBytes+1)))), 400, vision.CodeTooLarge),
			visiontest.Bad("no model", post(noModelB), 400, vision.CodeBadRequest),
			visiontest.Bad("no image", post(noImage), 400, vision.CodeBadRequest),
			visiontest.Bad("ftp image URL", post(withURL("ftp://x/a.jpg")), 400, vision.CodeBadImage),
		},
	}
}

func TestConformance(t *testing.T) { visiontest.Run(t, suite(t)) }

func TestGolden(t *testing.T) {
	c := newClient(t, "http://x")
	cr, err := c.EncodeRequest(vision.Request{Image: vision.NewImage(visiontest.Image)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(cr, "", "  ")
	visiontest.Golden(t, "chat-request.json", append(b, '\n'))
	cc := Completion(vision.Request{LLM: &vision.LLMParams{Model: "gemini-2.5-flash"}}, Content(sampleResult, vision.AttributeKinds), "stop",
		vision.Usage{InputTokens: 1520, CachedTokens: 1024, OutputTokens: 71})
	cc.ID, cc.Created = "chatcmpl-0", 1795000000
	b, _ = json.MarshalIndent(cc, "", "  ")
	visiontest.Golden(t, "chat-response.json", append(b, '\n'))
	for _, code := range []vision.Code{vision.CodeThrottled, vision.CodeQuotaExceeded, vision.CodeUnauthorized, vision.CodeBadImage, vision.CodeServerError} {
		w := httptest.NewRecorder()
		WriteError(w, vision.Errorf(code, ""))
		visiontest.Golden(t, "error-"+string(code)+".json", append(w.Body.Bytes(), '\n'))
	}
	// The golden request decodes back, with the schema's attributes.
	req, err := DecodeChatRequest(mustRead(t, "testdata/chat-request.json"))
	if err != nil || len(req.Attributes) != 4 || req.LLM.Detail != "low" || req.LLM.MaxTokens != 300 || req.Image.MediaType != "image/png" {
		t.Errorf("golden request decodes to %+v %v", req, err)
	}
}

func mustRead(tb testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestSchema: strict mode's rules hold and the vocabulary is the taxonomy's.
func TestSchema(t *testing.T) {
	tx := mustTaxonomy(t)
	var s struct {
		AdditionalProperties bool     `json:"additionalProperties"`
		Required             []string `json:"required"`
		Properties           map[string]struct {
			Items struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"items"`
			Properties map[string]struct {
				Enum []any `json:"enum"`
			} `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(BuildSchema(tx, 3, vision.AttributeKinds), &s); err != nil {
		t.Fatal(err)
	}
	if s.AdditionalProperties || len(s.Required) != 5 {
		t.Errorf("strict schema: %+v", s.Required)
	}
	if got := len(s.Properties["categories"].Items.Properties["category"].Enum); got != len(tx.Leaves()) {
		t.Errorf("category enum has %d values, want %d leaves", got, len(tx.Leaves()))
	}
	colours := s.Properties["color"].Properties["value"].Enum
	if len(colours) != len(tx.Colors)+1 || colours[len(colours)-1] != nil {
		t.Errorf("colour enum: %v", colours)
	}
}

// TestFailureModes: every LLM failure mode is a typed outcome, never a crash
// and never a right answer; a failed answer still carries its usage.
func TestFailureModes(t *testing.T) {
	c := newClient(t, "http://x")
	str := func(s string) *string { return &s }
	good := Content(sampleResult, vision.AttributeKinds)
	usage := &Usage{PromptTokens: 900, CompletionTokens: 40, TotalTokens: 940}
	for _, tc := range []struct {
		name    string
		content *string
		refusal *string
		finish  string
		want    vision.Code
	}{
		{"well formed", &good, nil, "stop", ""},
		{"prose, not JSON", str("Sure! The product is a black t-shirt."), nil, "stop", vision.CodeLLMInvalidJSON},
		{"half an object", str(good[:len(good)/2]), nil, "stop", vision.CodeLLMInvalidJSON},
		{"two objects", str(good + good), nil, "stop", vision.CodeLLMInvalidJSON},
		{"no content", nil, nil, "stop", vision.CodeLLMInvalidJSON},
		{"wrong shape", str(`{"category":"apparel/topwear/tshirts","confidence":0.9}`), nil, "stop", vision.CodeLLMSchemaViolation},
		{"missing attribute", str(`{"categories":[{"category":"a","confidence":0.5}],"color":null,"pattern":null,"material":null}`), nil, "stop", vision.CodeLLMSchemaViolation},
		{"confidence over 1", str(strings.Replace(good, "0.93", "93", 1)), nil, "stop", vision.CodeLLMSchemaViolation},
		{"string confidence", str(strings.Replace(good, "0.93", `"high"`, 1)), nil, "stop", vision.CodeLLMSchemaViolation},
		{"no categories", str(`{"categories":[],"color":null,"pattern":null,"material":null,"style":null}`), nil, "stop", vision.CodeLLMSchemaViolation},
		{"extra key", str(strings.Replace(good, `{"categories"`, `{"mood":"happy","categories"`, 1)), nil, "stop", vision.CodeLLMSchemaViolation},
		{"extra field in a category", str(strings.Replace(good, `"confidence":0.93`, `"confidence":0.93,"why":"collar"`, 1)), nil, "stop", vision.CodeLLMSchemaViolation},
		{"extra field in an attribute", str(strings.Replace(good, `"value":"black"`, `"value":"black","hex":"#000"`, 1)), nil, "stop", vision.CodeLLMSchemaViolation},
		{"object then garbage", str(good + " ok"), nil, "stop", vision.CodeLLMInvalidJSON},
		{"surrounding space", str(" \n" + good + "\n\t "), nil, "stop", ""},
		{"refusal", nil, str("I can't help with that."), "stop", vision.CodeLLMRefusal},
		{"content filter", str(""), nil, "content_filter", vision.CodeLLMRefusal},
		{"truncated", str(good[:40]), nil, "length", vision.CodeLLMTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := ChatCompletion{Model: "gemini-2.5-flash", Usage: usage, Choices: []Choice{{Message: ResponseMessage{Content: tc.content, Refusal: tc.refusal}, FinishReason: tc.finish}}}
			res, err := c.DecodeCompletion(cc, nil)
			if got := vision.ErrorCode(err); got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
			if err != nil {
				if e := err.(*vision.Error); e.Usage == nil || e.Usage.InputTokens != 900 {
					t.Errorf("failed call lost its usage: %+v", e.Usage)
				}
				if len(res.Categories) != 0 {
					t.Errorf("failure produced categories")
				}
			}
		})
	}
}

// TestOutOfVocabulary: a label outside the vocabulary is mapped through the
// taxonomy's synonyms when it can be, and otherwise reported as unmapped and
// never scored as the right category.
func TestOutOfVocabulary(t *testing.T) {
	tx := mustTaxonomy(t)
	c := newClient(t, "http://x")
	content := `{"categories":[{"category":"tee","confidence":0.8}],"color":{"value":"navy","confidence":0.7},"pattern":{"value":"zebra","confidence":0.6},"material":null,"style":null}`
	res, err := c.DecodeCompletion(ChatCompletion{Choices: []Choice{{Message: ResponseMessage{Content: &content}, FinishReason: "stop"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tags := tx.Normalize("openai", res)
	if tags.Top() != "apparel/topwear/tshirts" || tags.TopAttribute(vision.KindColor) != "navy-blue" {
		t.Errorf("synonyms not mapped: %+v", tags)
	}
	if len(tags.Unmapped) != 1 || tags.Unmapped[0] != "pattern:zebra" {
		t.Errorf("unmapped: %v", tags.Unmapped)
	}
	content = `{"categories":[{"category":"spaceship","confidence":0.8}],"color":null,"pattern":null,"material":null,"style":null}`
	res, _ = c.DecodeCompletion(ChatCompletion{Choices: []Choice{{Message: ResponseMessage{Content: &content}, FinishReason: "stop"}}}, nil)
	if tags := tx.Normalize("openai", res); tags.Top() != "" || len(tags.Unmapped) != 1 {
		t.Errorf("an unknown category must not become a category: %+v", tags)
	}
}

func TestLogprobConfidence(t *testing.T) {
	content := Content(sampleResult, vision.AttributeKinds)
	toks := Logprobs(content, sampleResult)
	conf, ok := ValueConfidence(content, "apparel/topwear/tshirts", toks)
	if !ok || math.Abs(conf-0.93) > 1e-9 {
		t.Fatalf("got %v %v, want 0.93", conf, ok)
	}
	p := testPrompt()
	p.Logprobs = true
	c := NewCodec("http://x", "", "m", p, mustTaxonomy(t))
	// The model reports 0.93; its tokens say 0.5.
	for i := range toks {
		if toks[i].Logprob != 0 {
			toks[i].Logprob = math.Log(0.5) / 2
		}
	}
	n := 0
	for _, tk := range toks {
		if tk.Logprob != 0 {
			n++
		}
	}
	for i := range toks {
		if toks[i].Logprob != 0 {
			toks[i].Logprob = math.Log(0.5) / float64(n)
		}
	}
	res, err := c.DecodeCompletion(ChatCompletion{Choices: []Choice{{Message: ResponseMessage{Content: &content}, FinishReason: "stop",
		Logprobs: &ChoiceLogprobs{Content: toks}}}}, nil)
	if err != nil || res.ConfidenceSource != "logprobs" || math.Abs(res.Categories[0].Confidence-0.5) > 1e-9 {
		t.Errorf("got %+v %v", res, err)
	}
	// Tokens that do not reassemble the content fall back to the model's own.
	if _, ok := ValueConfidence(content, "apparel/topwear/tshirts", toks[1:]); ok {
		t.Error("mismatched tokens accepted")
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		header map[string]string
		want   vision.Code
		retry  time.Duration
	}{
		{429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, map[string]string{"x-ratelimit-reset-requests": "1.5s"}, vision.CodeThrottled, 1500 * time.Millisecond},
		{429, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`, map[string]string{"retry-after": "3"}, vision.CodeThrottled, 3 * time.Second},
		{429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, nil, vision.CodeQuotaExceeded, 0},
		{401, `{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, nil, vision.CodeUnauthorized, 0},
		{400, `{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":null}}`, nil, vision.CodeBadRequest, 0},
		{503, `{"error":{"message":"overloaded","type":"server_error","code":null}}`, nil, vision.CodeServerError, 0},
		{500, `not json at all`, nil, vision.CodeServerError, 0},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		e := DecodeError(tc.status, h, []byte(tc.body))
		if e.Code != tc.want || e.RetryAfter != tc.retry {
			t.Errorf("%d %s: got %s retry %v, want %s %v", tc.status, tc.body, e.Code, e.RetryAfter, tc.want, tc.retry)
		}
	}
	if vision.CodeQuotaExceeded.Retryable() || !vision.CodeThrottled.Retryable() {
		t.Error("insufficient_quota must not be retryable; rate_limit_exceeded must")
	}
}

func TestImageTokens(t *testing.T) {
	for _, tc := range []struct {
		rule, detail string
		w, h         int
		want         int64
	}{
		{"gpt-4o", "low", 4096, 4096, 85},
		{"gpt-4o", "high", 1024, 1024, 765},  // 768×768 → 4 tiles
		{"gpt-4o", "high", 2048, 4096, 1105}, // 1024×2048 → 768×1536 → 6 tiles
		{"gpt-4o", "high", 320, 320, 255},
		{"gemini", "low", 320, 320, 258},
		{"gemini", "high", 1024, 1024, 1032},
		{"gpt-4.1-mini", "", 1024, 1024, 1659}, // 1024 patches × 1.62
		{"gpt-4.1-mini", "", 1800, 2400, 2353}, // OpenAI's worked example: 1,452 patches × 1.62
		{"claude", "", 1000, 1000, 1333},
		{"fixed:42", "", 10, 10, 42},
	} {
		if got := ImageTokens(tc.rule, tc.detail, tc.w, tc.h); got != tc.want {
			t.Errorf("%s %s %dx%d: got %d, want %d", tc.rule, tc.detail, tc.w, tc.h, got, tc.want)
		}
	}
	if ImageRule("", "gemini-2.5-flash") != "gemini" || ImageRule("", "gpt-4.1-mini") != "gpt-4.1-mini" || ImageRule("claude", "gpt-4.1") != "claude" {
		t.Error("ImageRule")
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	f.Add(mustRead(f, "testdata/chat-request.json"))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.jpg","detail":"high"}}]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeChatRequest(b)
		if err != nil {
			if vision.ErrorCode(err) == "" {
				t.Fatalf("untyped %v", err)
			}
			return
		}
		if len(req.Image.Bytes) == 0 && req.Image.URL == "" || req.LLM == nil {
			t.Fatalf("accepted without image: %q", b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(mustRead(f, "testdata/chat-response.json"))
	f.Add([]byte(`{"choices":[{"message":{"content":"{}"},"finish_reason":"stop"}]}`))
	c := NewCodec("http://x", "", "m", testPrompt(), mustTaxonomy(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := c.DecodeResponse(&http.Response{StatusCode: 200}, b)
		if err != nil {
			if vision.ErrorCode(err) == "" {
				t.Fatalf("untyped %v", err)
			}
			return
		}
		if len(res.Categories) == 0 {
			t.Fatalf("success without a category: %q", b)
		}
	})
}

var _ = context.Background

// TestPreEncodedBody: the spliced body is byte for byte what marshalling
// the request struct gives.
func TestPreEncodedBody(t *testing.T) {
	c := newClient(t, "http://x")
	for _, req := range []vision.Request{{Image: vision.NewImage(visiontest.Image)}, {Image: vision.ImageFromURL("https://cdn.example.com/a b\".jpg")}} {
		cr, _ := c.EncodeRequest(req)
		want, _ := json.Marshal(cr)
		got, err := c.appendBody(nil, req)
		if err != nil || string(got) != string(want) {
			t.Errorf("spliced body differs:\n%s\n%s", got, want)
		}
	}
}
