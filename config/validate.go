package config

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Defaults applied by setDefaults; documented on the fields.
const (
	DefaultTimeout = 10 * time.Second
	DefaultRegion  = "us-east-1"
	// DefaultTencentRegion is the X-TC-Region a tencent provider sends
	// when region is unset.
	DefaultTencentRegion = "ap-guangzhou"
	// DefaultTencentAction is the TIIA action a tencent provider calls
	// when action is unset.
	DefaultTencentAction = "DetectLabelPro"
	DefaultSiblingShare  = 0.8
)

// The typed error codes a simulator profile may inject, mirrored from
// vision.Codes (config may not import vision's format packages, and keeping
// the list here lets validation name the key's line).
var errorCodes = []string{"throttled", "timeout", "bad_image", "too_large", "unauthorized",
	"bad_request", "server_error", "network", "invalid_response", "quota_exceeded"}

var attributeKinds = []string{"color", "pattern", "material", "style"}

func (c *Config) setDefaults() {
	if c.Taxonomy == "" {
		c.Taxonomy = "taxonomy.yaml"
	}
	if c.Fixtures == "" {
		c.Fixtures = "out/fixtures"
	}
	if c.FX == nil {
		c.FX = map[string]float64{}
	}
	c.FX["USD"] = 1
	c.setProxyDefaults()
	c.setReportDefaults()
	c.setPipelineDefaults()
	if c.Prompts == nil {
		c.Prompts = map[string]*Prompt{}
	}
	if _, ok := c.Prompts["default"]; !ok {
		d := DefaultPrompt
		c.Prompts["default"] = &d
	}
	for _, pr := range c.Prompts {
		if pr == nil {
			continue
		}
		if pr.Detail == "" {
			pr.Detail = "low"
		}
		if pr.MaxCompletionTokens == 0 {
			pr.MaxCompletionTokens = 300
		}
		if pr.Temperature == nil {
			zero := 0.0
			pr.Temperature = &zero
		}
		if pr.Schema.Name == "" {
			pr.Schema.Name = "product_tags"
		}
		if pr.Schema.MaxCategories == 0 {
			pr.Schema.MaxCategories = 3
		}
		if len(pr.Schema.Attributes) == 0 {
			pr.Schema.Attributes = append([]string(nil), attributeKinds...)
		}
	}
	for _, m := range c.Models {
		if m != nil && m.Currency == "" {
			m.Currency = "USD"
		}
	}
	for _, p := range c.Providers {
		if p == nil {
			continue
		}
		if p.Timeout == 0 {
			p.Timeout = Duration(DefaultTimeout)
		}
		if p.Region == "" {
			p.Region = DefaultRegion
			if p.Format == FormatTencent {
				p.Region = DefaultTencentRegion
			}
		}
		if p.Action == "" && p.Format == FormatTencent {
			p.Action = DefaultTencentAction
		}
		if p.Pricing.Currency == "" {
			p.Pricing.Currency = "USD"
		}
	}
	for _, s := range c.Simulate {
		if s == nil {
			continue
		}
		if s.Profile.ModelVersion == "" {
			s.Profile.ModelVersion = "sim-1"
		}
		if s.Profile.Accuracy.SiblingShare == nil {
			r := Rate(DefaultSiblingShare)
			s.Profile.Accuracy.SiblingShare = &r
		}
		if s.Profile.ThrottleBurst == 0 {
			s.Profile.ThrottleBurst = int(math.Max(1, math.Ceil(s.Profile.ThrottleRPS)))
		}
	}
}

type validator struct {
	c    *Config
	errs ErrorList
}

func (v *validator) errf(path, format string, args ...any) {
	v.errs = append(v.errs, Error{File: v.c.File, Line: v.c.Line(path), Msg: fmt.Sprintf(format, args...)})
}

// has reports whether the file sets path (set but invalid counts: its own
// error has been reported already).
func (v *validator) has(path string) bool {
	_, ok := v.c.lines[path]
	return ok
}

func (c *Config) validate() ErrorList {
	v := &validator{c: c}
	for code, rate := range c.FX {
		if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
			v.errf("fx."+code, "fx.%s must be a positive USD rate, got %v", code, rate)
		}
		if len(code) != 3 || strings.ToUpper(code) != code {
			v.errf("fx."+code, "fx key %q: expected an ISO 4217 currency code such as CNY", code)
		}
	}
	for _, name := range sortedKeys(c.Prompts) {
		v.prompt(name, c.Prompts[name])
	}
	for _, name := range sortedKeys(c.Models) {
		v.model(name, c.Models[name])
	}
	for _, name := range sortedKeys(c.Providers) {
		v.provider(name, c.Providers[name])
	}
	v.proxy()
	v.report()
	v.pipeline()
	listens := map[Addr]string{}
	for _, name := range sortedKeys(c.Simulate) {
		s := c.Simulate[name]
		p := "simulate." + name
		if s == nil {
			v.errf(p, "simulate.%s is empty: expected format, listen and profile", name)
			continue
		}
		if !v.has(p + ".format") {
			v.errf(p, "simulate.%s: format is required (one of %s)", name, formatList())
		}
		if !v.has(p + ".listen") {
			v.errf(p, "simulate.%s: listen is required, e.g. 127.0.0.1:9101", name)
		} else if other, dup := listens[s.Listen]; dup && s.Listen != "" && !strings.HasSuffix(string(s.Listen), ":0") {
			v.errf(p+".listen", "simulate.%s: listen %s is already used by simulate.%s", name, s.Listen, other)
		} else {
			listens[s.Listen] = name
		}
		v.credentialShape(p+".credentials", "simulate."+name, s.Format, s.Credentials)
		v.profile(p+".profile", &s.Profile)
	}
	return v.errs
}

func (v *validator) provider(name string, p *Provider) {
	path := "providers." + name
	if p == nil {
		v.errf(path, "providers.%s is empty: expected format and base_url", name)
		return
	}
	if !v.has(path + ".format") {
		v.errf(path, "providers.%s: format is required (one of %s)", name, formatList())
	}
	if !v.has(path + ".base_url") {
		v.errf(path, "providers.%s: base_url is required, e.g. https://api.example.com", name)
	}
	if d := p.Timeout.D(); d < time.Millisecond || d > 10*time.Minute {
		v.errf(path+".timeout", "providers.%s.timeout %s is out of range: expected 1ms–10m", name, d)
	}
	if p.MaxRPS < 0 {
		v.errf(path+".max_rps", "providers.%s.max_rps must be ≥ 0 (0 = no cap)", name)
	}
	switch p.Format {
	case FormatRekognition:
		if (p.Credentials.AccessKeyID == "") != (p.Credentials.SecretAccessKey == "") && len(v.c.Unset(path+".credentials")) == 0 {
			v.errf(path+".credentials", "providers.%s: rekognition needs both access_key_id and secret_access_key", name)
		}
	case FormatHolySheep, FormatGCV, FormatAzure, FormatOpenAI:
		if p.Credentials.AccessKeyID != "" || p.Credentials.SecretAccessKey != "" {
			v.errf(path+".credentials", "providers.%s: %s uses api_key, not an AWS key pair", name, p.Format)
		}
	}
	v.credentialShape(path+".credentials", name, p.Format, p.Credentials)
	switch p.Format {
	case FormatTencent:
		if !tencentActions[p.Action] {
			v.errf(path+".action", "providers.%s.action %q: expected DetectLabelPro or DetectProduct", name, p.Action)
		}
	default:
		if v.has(path + ".action") {
			v.errf(path+".action", "providers.%s: action applies to the tencent format only", name)
		}
	}
	if p.Format == FormatHolySheep && p.Model == "" {
		p.Model = "vision-classifier-v3"
	}
	if p.Format == FormatOpenAI {
		if p.Model == "" {
			v.errf(path, "providers.%s: openai needs model (e.g. gemini-2.5-flash)", name)
		} else if v.c.Models[p.Model] == nil {
			v.errf(path+".model", "providers.%s: model %q has no token prices under models: (add models.%s with input_per_million, cached_input_per_million, output_per_million)", name, p.Model, p.Model)
		}
		if v.c.PromptFor(p) == nil {
			v.errf(path+".prompt", "providers.%s: prompt %q is not defined under prompts:", name, p.Prompt)
		}
		if len(p.Pricing.Tiers) > 0 {
			v.errf(path+".pricing", "providers.%s: openai providers are priced per token under models:, not per call", name)
		}
	} else if p.Prompt != "" {
		v.errf(path+".prompt", "providers.%s: prompt applies to the openai format only", name)
	}
	v.pricing(path+".pricing", &p.Pricing)
}

// tencentActions are the TIIA actions a tencent provider may call.
var tencentActions = map[string]bool{"DetectLabelPro": true, "DetectProduct": true}

// credentialShape checks that a provider (or simulator) names the
// credentials of its own format: tencent's secret_id and secret_key come
// together, baidu's api_key and secret_key come together, and neither
// takes another format's keys.
func (v *validator) credentialShape(path, name string, f Format, c Credentials) {
	// A half that is an unset ${VAR} is reported as such, not as missing.
	lenient := len(v.c.Unset(path)) > 0
	switch f {
	case FormatTencent:
		if c.APIKey != "" || c.AccessKeyID != "" || c.SecretAccessKey != "" || c.SessionToken != "" {
			v.errf(path, "%s: tencent uses secret_id and secret_key (a Tencent Cloud SecretId/SecretKey pair), not api_key or an AWS key pair", name)
		}
		if (c.SecretID == "") != (c.SecretKey == "") && !lenient {
			v.errf(path, "%s: tencent needs both secret_id and secret_key", name)
		}
	case FormatBaidu:
		if c.SecretID != "" || c.AccessKeyID != "" || c.SecretAccessKey != "" || c.SessionToken != "" {
			v.errf(path, "%s: baidu uses api_key and secret_key (the app's API Key and Secret Key), not secret_id or an AWS key pair", name)
		}
		if (c.APIKey == "") != (c.SecretKey == "") && !lenient {
			v.errf(path, "%s: baidu needs both api_key and secret_key", name)
		}
	default:
		if c.SecretID != "" || c.SecretKey != "" {
			v.errf(path, "%s: secret_id and secret_key apply to the tencent and baidu formats only", name)
		}
	}
}

func (v *validator) prompt(name string, p *Prompt) {
	path := "prompts." + name
	if p == nil {
		v.errf(path, "prompts.%s is empty: expected version, system and user", name)
		return
	}
	if p.Version == "" {
		v.errf(path, "prompts.%s: version is required (it is recorded with every observation)", name)
	}
	if strings.TrimSpace(p.System) == "" && strings.TrimSpace(p.User) == "" {
		v.errf(path, "prompts.%s: system or user text is required", name)
	}
	switch p.Detail {
	case "low", "high", "auto":
	default:
		v.errf(path+".detail", "prompts.%s.detail %q: expected low, high or auto", name, p.Detail)
	}
	if p.MaxCompletionTokens < 16 || p.MaxCompletionTokens > 8192 {
		v.errf(path+".max_completion_tokens", "prompts.%s.max_completion_tokens %d: expected 16–8192", name, p.MaxCompletionTokens)
	}
	if t := *p.Temperature; t < 0 || t > 2 {
		v.errf(path+".temperature", "prompts.%s.temperature %v: expected 0–2", name, t)
	}
	if p.Schema.MaxCategories < 1 || p.Schema.MaxCategories > 10 {
		v.errf(path+".schema.max_categories", "prompts.%s.schema.max_categories %d: expected 1–10", name, p.Schema.MaxCategories)
	}
	for _, a := range p.Schema.Attributes {
		if !contains(attributeKinds, a) {
			v.errf(path+".schema.attributes", "prompts.%s.schema.attributes: unknown kind %q (expected %s)", name, a, strings.Join(attributeKinds, ", "))
		}
	}
}

func (v *validator) model(name string, m *ModelPrice) {
	path := "models." + name
	if m == nil {
		v.errf(path, "models.%s is empty: expected input_per_million, cached_input_per_million and output_per_million", name)
		return
	}
	if m.InputPerMillion < 0 || m.CachedInputPerMillion < 0 || m.OutputPerMillion < 0 {
		v.errf(path, "models.%s: prices must be ≥ 0", name)
	}
	if m.Currency != "USD" {
		if _, ok := v.c.FX[m.Currency]; !ok {
			v.errf(path+".currency", "currency %s has no rate under fx", m.Currency)
		}
	}
	if m.ImageTokens != "" && !validImageRule(m.ImageTokens) {
		v.errf(path+".image_tokens", "models.%s.image_tokens %q: expected gpt-4o, gpt-4.1-mini, gpt-4.1-nano, gemini, claude or fixed:N", name, m.ImageTokens)
	}
}

func validImageRule(s string) bool {
	switch s {
	case "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano", "gemini", "claude":
		return true
	}
	if n, ok := strings.CutPrefix(s, "fixed:"); ok {
		for _, r := range n {
			if r < '0' || r > '9' {
				return false
			}
		}
		return n != ""
	}
	return false
}

func (v *validator) pricing(path string, pr *Pricing) {
	if pr.Currency != "USD" {
		if _, ok := v.c.FX[pr.Currency]; !ok {
			v.errf(path+".currency", "currency %s has no rate under fx: add fx.%s (its value in USD)", pr.Currency, pr.Currency)
		}
	}
	var last int64
	for i, t := range pr.Tiers {
		tp := fmt.Sprintf("%s.tiers[%d]", path, i)
		if t.Per1000 < 0 {
			v.errf(tp, "per_1000 must be ≥ 0")
		}
		if t.UpTo == 0 && i != len(pr.Tiers)-1 {
			v.errf(tp, "only the last tier may omit up_to")
		}
		if t.UpTo != 0 && t.UpTo <= last {
			v.errf(tp, "up_to %d must be greater than the previous tier's %d", t.UpTo, last)
		}
		last = t.UpTo
	}
}

func (v *validator) latency(path string, l Latency) {
	if l.Median == 0 && l.Mean == 0 {
		v.errf(path, "latency needs median or mean, and p99")
		return
	}
	if l.Median != 0 && l.Mean != 0 {
		v.errf(path, "latency takes median or mean, not both")
	}
	if l.P99 == 0 {
		v.errf(path, "latency needs p99")
		return
	}
	center := l.Median
	if center == 0 {
		center = l.Mean
	}
	if l.P99 <= center {
		v.errf(path+".p99", "p99 %s must be greater than %s", l.P99, center)
	}
	if l.Mean != 0 {
		// mean = m·exp(s²/2), p99 = m·exp(2.326·s): solvable only while
		// ln(p99/mean) ≤ z²/2.
		if math.Log(float64(l.P99)/float64(l.Mean)) > 2.3263478740408408*2.3263478740408408/2 {
			v.errf(path+".p99", "no log-normal has mean %s and p99 %s: p99/mean must be ≤ %.1f", l.Mean, l.P99, math.Exp(2.3263478740408408*2.3263478740408408/2))
		}
	}
}

func (v *validator) profile(path string, p *Profile) {
	v.latency(path+".latency", p.Latency)
	if p.Peak != nil {
		v.latency(path+".peak.latency", p.Peak.Latency)
		if p.Peak.Start == p.Peak.End {
			v.errf(path+".peak", "peak window start and end are equal")
		}
	}
	var total float64
	for code, r := range p.Errors {
		if !contains(errorCodes, code) {
			v.errf(path+".errors."+code, "unknown error code %q: expected one of %s", code, strings.Join(errorCodes, ", "))
		}
		total += r.F()
	}
	if total > 1 {
		v.errf(path+".errors", "error rates add up to %.3f: must be ≤ 1", total)
	}
	if p.ThrottleRPS < 0 {
		v.errf(path+".throttle_rps", "throttle_rps must be ≥ 0")
	}
	if total := p.LLM.InvalidJSON + p.LLM.SchemaViolation + p.LLM.Refusal + p.LLM.Truncation; total > 1 {
		v.errf(path+".llm", "llm failure rates add up to %.3f: must be ≤ 1", float64(total))
	}
	for k := range p.Accuracy.AttributeErrors {
		if !contains(attributeKinds, k) {
			v.errf(path+".accuracy.attribute_errors."+k, "unknown attribute kind %q: expected one of %s", k, strings.Join(attributeKinds, ", "))
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func formatList() string {
	s := make([]string, len(Formats))
	for i, f := range Formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
