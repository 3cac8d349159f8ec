package config

import (
	"strings"
	"testing"
)

// TestChineseFormats: tencent and baidu providers load with their own
// credential shapes and defaults, and every wrong shape is an error on the
// line that holds it.
func TestChineseFormats(t *testing.T) {
	t.Setenv("CUTOVER_TEST_TC_ID", "AKIDtencent")
	t.Setenv("CUTOVER_TEST_TC_KEY", "tc-secret-key")
	ok := `
fx: {CNY: 0.137}
providers:
  cn:
    format: tencent
    base_url: https://tiia.tencentcloudapi.com
    credentials: {secret_id: "${CUTOVER_TEST_TC_ID}", secret_key: "${CUTOVER_TEST_TC_KEY}"}
    pricing: {currency: CNY, tiers: [{per_1000: 7.3}]}
  product:
    format: tencent
    base_url: https://tiia.tencentcloudapi.com
    region: ap-shanghai
    action: DetectProduct
    credentials: {secret_id: a, secret_key: b}
  bd:
    format: baidu
    base_url: https://aip.baidubce.com
    credentials: {api_key: ak, secret_key: sk}
`
	c, err := Parse("ok.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	cn := c.Providers["cn"]
	if cn.Region != "ap-guangzhou" || cn.Action != "DetectLabelPro" || cn.Credentials.SecretID.Value() != "AKIDtencent" || cn.Credentials.SecretKey.Value() != "tc-secret-key" {
		t.Errorf("tencent defaults and credentials: %+v", cn)
	}
	if p := c.Providers["product"]; p.Region != "ap-shanghai" || p.Action != "DetectProduct" {
		t.Errorf("tencent region/action: %+v", p)
	}
	if got := c.Secrets(); !contains(got, "tc-secret-key") || !contains(got, "AKIDtencent") || !contains(got, "sk") {
		t.Errorf("secrets for scrubbing: %v", got)
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"tencent with an api_key", "format: tencent\n    base_url: http://x\n    credentials: {api_key: k}", "tencent uses secret_id and secret_key"},
		{"tencent without its secret_key", "format: tencent\n    base_url: http://x\n    credentials: {secret_id: k}", "tencent needs both secret_id and secret_key"},
		{"baidu with secret_id", "format: baidu\n    base_url: http://x\n    credentials: {api_key: a, secret_key: b, secret_id: c}", "baidu uses api_key and secret_key"},
		{"baidu without its secret_key", "format: baidu\n    base_url: http://x\n    credentials: {api_key: a}", "baidu needs both api_key and secret_key"},
		{"gcv with a secret_key", "format: gcv\n    base_url: http://x\n    credentials: {api_key: a, secret_key: b}", "secret_id and secret_key apply to the tencent and baidu formats only"},
		{"an unknown action", "format: tencent\n    base_url: http://x\n    action: DetectLabel", `action "DetectLabel": expected DetectLabelPro or DetectProduct`},
		{"action on another format", "format: gcv\n    base_url: http://x\n    action: DetectProduct", "action applies to the tencent format only"},
	} {
		_, err := Parse("bad.yaml", []byte("providers:\n  p:\n    "+c.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml:") {
			t.Errorf("%s: got %v, want bad.yaml:LINE: …%s", c.name, err, c.want)
		}
	}
	_, err = Parse("sim.yaml", []byte("simulate:\n  s:\n    format: baidu\n    listen: 127.0.0.1:0\n    credentials: {api_key: a}\n    profile: {latency: {median: 1ms, p99: 2ms}}\n"))
	if err == nil || !strings.Contains(err.Error(), "sim.yaml:5: simulate.s: baidu needs both") {
		t.Errorf("simulator credentials: got %v", err)
	}
}
