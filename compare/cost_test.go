package compare

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

func TestTierCost(t *testing.T) {
	p := config.Pricing{Currency: "USD", Tiers: []config.Tier{{UpTo: 1_000_000, Per1000: 1}, {Per1000: 0.8}}}
	for _, tc := range []struct {
		calls int64
		want  float64
	}{{0, 0}, {1000, 1}, {1_000_000, 1000}, {1_500_000, 1400}} {
		if got := TierCost(p, tc.calls); got != tc.want {
			t.Errorf("TierCost(%d): got %v, want %v", tc.calls, got, tc.want)
		}
	}
	flat := config.Pricing{Tiers: []config.Tier{{Per1000: 0.45}}}
	if got := TierCost(flat, 1_500_000); got != 675 {
		t.Errorf("flat: got %v, want 675", got)
	}
}

// TestTokenCost: a call's cost from its usage equals the hand computation.
func TestTokenCost(t *testing.T) {
	usage := vision.Usage{InputTokens: 1600, CachedTokens: 1024, OutputTokens: 80}
	for _, tc := range []struct {
		model string
		price config.ModelPrice
		want  float64
	}{
		// Gemini 2.5 Flash: 576 × $0.30 + 1,024 × $0.075 + 80 × $2.50 per million
		// = 172.8 + 76.8 + 200 = 449.6 µ$.
		{"gemini-2.5-flash", config.ModelPrice{InputPerMillion: 0.30, CachedInputPerMillion: 0.075, OutputPerMillion: 2.50}, 0.0004496},
		// GPT-4.1: 576 × $2 + 1,024 × $0.50 + 80 × $8 = 1152 + 512 + 640 = 2304 µ$.
		{"gpt-4.1", config.ModelPrice{InputPerMillion: 2.00, CachedInputPerMillion: 0.50, OutputPerMillion: 8.00}, 0.002304},
	} {
		got := TokenCost(tc.price, usage.InputTokens, usage.CachedTokens, usage.OutputTokens)
		if math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: got $%.7f, want $%.7f", tc.model, got, tc.want)
		}
	}
}

func pricedConfig(t *testing.T) *config.Config {
	t.Helper()
	y := `taxonomy: ` + filepath.Join("..", "taxonomy.yaml") + `
providers:
  legacy: {format: rekognition, base_url: "http://127.0.0.1:1", pricing: {tiers: [{up_to: 1000000, per_1000: 1.00}, {per_1000: 0.80}]}}
  cand: {format: holysheep, base_url: "http://127.0.0.1:2", pricing: {currency: CNY, tiers: [{per_1000: 2.8}]}}
  llm: {format: openai, base_url: "http://127.0.0.1:3", model: m}
  free: {format: gcv, base_url: "http://127.0.0.1:4"}
models:
  m: {currency: CNY, input_per_million: 2, cached_input_per_million: 0.5, output_per_million: 8}
fx: {CNY: 0.14}
`
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "config.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCallCostAndToUSD(t *testing.T) {
	cfg := pricedConfig(t)
	for _, tc := range []struct {
		provider string
		in, out  int64
		want     float64
		currency string
		ok       bool
	}{
		// 1.5 M calls: 1 M × $1 + 0.5 M × $0.80 = $1,400, $0.000933… a call.
		{"legacy", 0, 0, 1400.0 / 1_500_000, "USD", true},
		{"cand", 0, 0, 0.0028, "CNY", true},
		// 1,000 input × ¥2 + 100 output × ¥8 per million = ¥0.0028.
		{"llm", 1000, 100, 0.0028, "CNY", true},
		{"free", 0, 0, 0, "", false},
	} {
		got, cur, ok := CallCost(cfg, cfg.Providers[tc.provider], tc.in, 0, tc.out, config.DefaultMonthlyVolume)
		if math.Abs(got-tc.want) > 1e-15 || cur != tc.currency || ok != tc.ok {
			t.Errorf("%s: %v %s %v, want %v %s %v", tc.provider, got, cur, ok, tc.want, tc.currency, tc.ok)
		}
	}
	if usd, ok := ToUSD(cfg, 100, "CNY"); !ok || math.Abs(usd-14) > 1e-9 {
		t.Errorf("ToUSD(100 CNY) = %v %v, want 14", usd, ok)
	}
	if _, ok := ToUSD(cfg, 1, "EUR"); ok {
		t.Error("EUR has no rate, converted anyway")
	}
	if usd, ok := ToUSD(nil, 3, ""); !ok || usd != 3 {
		t.Errorf("no currency without a config: %v %v", usd, ok)
	}
	if _, ok := ToUSD(nil, 3, "CNY"); ok {
		t.Error("CNY converted without a config")
	}
}

// TestPriceCall: answered calls are priced; a failed call only when it
// reported token usage.
func TestPriceCall(t *testing.T) {
	cfg := pricedConfig(t)
	usage := &vision.Usage{InputTokens: 1000, OutputTokens: 100}
	for _, tc := range []struct {
		name     string
		provider string
		o        record.Observation
		want     float64
	}{
		{"tiered answer", "cand", record.Observation{Status: 200}, 0.0028},
		{"tiered failure", "cand", record.Observation{Status: 500, Code: "server_error"}, 0},
		{"llm answer", "llm", record.Observation{Status: 200, Usage: usage}, 0.0028},
		{"llm refusal with usage", "llm", record.Observation{Status: 200, Code: "llm_refusal", Usage: usage}, 0.0028},
		{"llm failure without usage", "llm", record.Observation{Status: 429, Code: "throttled"}, 0},
		{"no price", "free", record.Observation{Status: 200}, 0},
	} {
		o := tc.o
		PriceCall(cfg, cfg.Providers[tc.provider], &o)
		if math.Abs(o.Cost-tc.want) > 1e-15 || (tc.want > 0) != (o.Currency != "") {
			t.Errorf("%s: cost %v %q, want %v", tc.name, o.Cost, o.Currency, tc.want)
		}
	}
}
