package sim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"sort"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
	"github.com/cutover/cutover/vision/openai"
)

// exampleConfig loads the repository's config.yaml with throw-away keys.
func exampleConfig(t *testing.T) *config.Config {
	t.Helper()
	for _, k := range []string{"CUTOVER_LEGACY_ACCESS_KEY_ID", "CUTOVER_LEGACY_SECRET_ACCESS_KEY", "CUTOVER_HOLYSHEEP_API_KEY", "CUTOVER_GCV_API_KEY", "CUTOVER_AZURE_API_KEY", "CUTOVER_CLIENT_ACCESS_KEY_ID", "CUTOVER_CLIENT_SECRET_ACCESS_KEY", "CUTOVER_LEGACY_CN_SECRET_ID", "CUTOVER_LEGACY_CN_SECRET_KEY", "CUTOVER_BAIDU_API_KEY", "CUTOVER_BAIDU_SECRET_KEY"} {
		t.Setenv(k, "test-"+k)
	}
	cfg, err := config.Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startOne serves the config's simulator name on a free port and points the
// provider of the same name at it.
func startOne(t *testing.T, cfg *config.Config, name string, tx *vision.Taxonomy, fx *fixtures.Set, scale float64) string {
	t.Helper()
	s := cfg.Simulate[name]
	m, err := NewModel(name, s, tx, fx, 1)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := NewServer(m, s, scale)
	r, err := Listen(name, "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	if p := cfg.Providers[name]; p != nil {
		u := r.URL
		if p.Format == config.FormatOpenAI {
			u += "/v1"
		}
		p.BaseURL = config.URL(u)
	}
	return r.URL
}

// TestOfficialSDK: github.com/openai/openai-go/v3, pointed at the simulator
// with its base-URL option, completes a vision request with a strict
// json_schema response format and reads usage.
func TestOfficialSDK(t *testing.T) {
	cfg := exampleConfig(t)
	tx := mustTaxonomy(t)
	fx := syntheticSet(tx, "fashion", 1)
	url := startOne(t, cfg, "holysheep", tx, fx, 0)
	var schema map[string]any
	json.Unmarshal(openai.BuildSchema(tx, 3, vision.AttributeKinds), &schema)
	client := oai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("test-CUTOVER_HOLYSHEEP_API_KEY"), option.WithMaxRetries(0))
	img := "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngBytes)
	params := oai.ChatCompletionNewParams{
		Model: "gemini-2.5-flash",
		Messages: []oai.ChatCompletionMessageParamUnion{
			oai.SystemMessage(config.DefaultPrompt.System),
			oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{
				oai.TextContentPart(config.DefaultPrompt.User),
				oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{URL: img, Detail: "low"}),
			}),
		},
		ResponseFormat: oai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "product_tags", Strict: oai.Bool(true), Schema: schema}}},
		MaxCompletionTokens: oai.Int(300),
		Temperature:         oai.Float(0),
	}
	resp, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Object != "chat.completion" || resp.Model != "gemini-2.5-flash" || len(resp.Choices) != 1 {
		t.Fatalf("completion: %+v", resp)
	}
	ans, err := openai.ParseAnswer(resp.Choices[0].Message.Content, vision.AttributeKinds)
	if err != nil || len(ans.Categories) == 0 {
		t.Fatalf("answer %q: %v", resp.Choices[0].Message.Content, err)
	}
	u := resp.Usage
	if u.PromptTokens < 258 || u.CompletionTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage: %+v", u)
	}
	// The schema and prompt exceed 1,024 tokens: a repeat is served from cache.
	resp2, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp2.Usage.PromptTokensDetails.CachedTokens; c < 1024 || c%128 != 0 || c > resp2.Usage.PromptTokens {
		t.Errorf("cached tokens on the repeat: %d of %d", c, resp2.Usage.PromptTokens)
	}
	// A wrong key is refused in OpenAI's shape, which the SDK reads.
	bad := oai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
	_, err = bad.Chat.Completions.New(context.Background(), params)
	var apiErr *oai.Error
	if !errorsAs(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Errorf("wrong key: %v", err)
	}
}

// TestHolySheepProfile: the default candidate profile reproduces the seed's
// claims — 180 ms mean and 340 ms p99 in all (time to first token plus
// generation), 6.4 % fashion misclassification — and at 50,000 images a day
// its token cost with Gemini 2.5 Flash prices lands near $680 a month.
func TestHolySheepProfile(t *testing.T) {
	cfg := exampleConfig(t)
	tx := mustTaxonomy(t)
	const n = 20000
	fx := syntheticSet(tx, "fashion", n)
	s := cfg.Simulate["holysheep"]
	m, err := NewModel("holysheep", s, tx, fx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.limiter = nil // throttling is not under test here
	codec, err := formats.ClientCodec(cfg, tx, cfg.Providers["holysheep"])
	if err != nil {
		t.Fatal(err)
	}
	oc := codec.(*openai.Codec)
	price := cfg.Models[cfg.Providers["holysheep"].Model]
	img := vision.NewImage(pngBytes)
	var lats []float64
	var cost float64
	wrong, scored := 0, 0
	for _, it := range fx.Items {
		cr, _ := oc.EncodeRequest(vision.Request{Image: img})
		body, _ := json.Marshal(cr)
		req, err := openai.DecodeChatRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		req.LLM.Width, req.LLM.Height = 320, 320 // the fixtures' size
		req.Image.SHA256 = it.SHA256
		out := m.Decide(req)
		if out.Err != nil {
			continue
		}
		cc, outTokens := m.completion(req, out)
		lats = append(lats, float64(out.Latency+time.Duration(outTokens)*s.Profile.LLM.PerOutputToken.D()))
		u := cc.Usage
		cost += compare.TokenCost(*price, u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.CompletionTokens)
		if res, err := oc.DecodeCompletion(cc, nil); err == nil {
			scored++
			if tx.Normalize("openai", res).Top() != it.Category {
				wrong++
			}
		}
	}
	sort.Float64s(lats)
	var sum float64
	for _, l := range lats {
		sum += l
	}
	mean, p99 := sum/float64(len(lats))/1e6, lats[int(0.99*float64(len(lats)))]/1e6
	if math.Abs(mean-180)/180 > 0.05 || math.Abs(p99-340)/340 > 0.05 {
		t.Errorf("total latency mean %.1f ms, p99 %.1f ms; want 180 and 340 ±5%%", mean, p99)
	}
	lo, hi := stats.Wilson(wrong, scored, stats.Z99)
	if 0.064 < lo || 0.064 > hi {
		t.Errorf("fashion misclassification %.4f, 99%% CI [%.4f, %.4f] excludes 0.064", float64(wrong)/float64(scored), lo, hi)
	}
	monthly := cost / float64(len(lats)) * 50000 * 30
	t.Logf("mean %.1f ms, p99 %.1f ms, $%.5f a call, $%.0f a month at 50,000 a day", mean, p99, cost/float64(len(lats)), monthly)
	if monthly < 600 || monthly > 760 {
		t.Errorf("monthly cost $%.0f, want near the article's $680", monthly)
	}
}

// TestLLMFailureModesOnTheWire: each failure mode the simulator draws
// reaches the real client as its typed code.
func TestLLMFailureModesOnTheWire(t *testing.T) {
	cfg := exampleConfig(t)
	tx := mustTaxonomy(t)
	fx := syntheticSet(tx, "fashion", 3)
	for _, tc := range []struct {
		set  func(*config.LLMProfile)
		want vision.Code
	}{
		{func(l *config.LLMProfile) { l.InvalidJSON = 1 }, vision.CodeLLMInvalidJSON},
		{func(l *config.LLMProfile) { l.SchemaViolation = 1 }, vision.CodeLLMSchemaViolation},
		{func(l *config.LLMProfile) { l.Refusal = 1 }, vision.CodeLLMRefusal},
		{func(l *config.LLMProfile) { l.Truncation = 1 }, vision.CodeLLMTruncated},
		{func(l *config.LLMProfile) {}, ""},
	} {
		s := *cfg.Simulate["holysheep"]
		s.Profile.LLM = config.LLMProfile{}
		s.Profile.Errors = nil
		tc.set(&s.Profile.LLM)
		cfg.Simulate["holysheep"] = &s
		startOne(t, cfg, "holysheep", tx, fx, 0)
		c, err := formats.NewClient(cfg, tx, "holysheep", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Classify(context.Background(), vision.Request{Image: vision.NewImage(pngBytes)})
		if got := vision.ErrorCode(err); got != tc.want {
			t.Errorf("got %q (%v), want %q", got, err, tc.want)
		}
		if err != nil && vision.AsError(err).Usage == nil {
			t.Errorf("%s: usage lost", tc.want)
		}
	}
}
