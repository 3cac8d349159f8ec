package config

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func setTestEnv(t *testing.T) {
	t.Setenv("CUTOVER_TEST_AK", "AKIDEXAMPLE")
	t.Setenv("CUTOVER_TEST_SK", "sk-very-secret-value")
}

func TestLoadOK(t *testing.T) {
	setTestEnv(t)
	c, err := Load("testdata/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers["legacy"]
	if p.Format != FormatRekognition || p.BaseURL != "http://127.0.0.1:9101" || p.Timeout.D() != DefaultTimeout || p.Region != DefaultRegion {
		t.Errorf("provider: %+v", p)
	}
	if p.Credentials.SecretAccessKey.Value() != "sk-very-secret-value" {
		t.Errorf("secret not expanded")
	}
	if got := c.FX["CNY"]; got != 0.14 {
		t.Errorf("fx.CNY: got %v, want 0.14", got)
	}
	s := c.Simulate["legacy"]
	if s.Profile.Peak.Zone.Loc().String() != "Asia/Singapore" || s.Profile.Peak.Start.Minutes() != 540 || s.Profile.Peak.Latency.P99.D() != 2300*time.Millisecond {
		t.Errorf("peak: %+v", s.Profile.Peak)
	}
	if s.Profile.Errors["throttled"] != 0.01 {
		t.Errorf("percent rate: got %v", s.Profile.Errors["throttled"])
	}
	if c.TaxonomyPath() != filepath.Join("testdata", "tax.yaml") {
		t.Errorf("taxonomy path %q", c.TaxonomyPath())
	}
	if *s.Profile.Accuracy.SiblingShare != DefaultSiblingShare {
		t.Errorf("sibling share default")
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	setTestEnv(t)
	c, err := Load("testdata/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	for _, s := range []string{"sk-very-secret-value", "AKIDEXAMPLE"} {
		if strings.Contains(string(b), s) || strings.Contains(c.Digest(), s) {
			t.Errorf("secret %q leaked into JSON", s)
		}
	}
	if !strings.Contains(string(b), "[redacted]") {
		t.Errorf("want [redacted] in %s", b)
	}
	d1 := c.Digest()
	t.Setenv("CUTOVER_TEST_SK", "another")
	c2, _ := Load("testdata/ok.yaml")
	if c2.Digest() != d1 {
		t.Errorf("digest depends on a secret value")
	}
}

// TestErrors checks every problem in testdata/bad.yaml is reported, with its
// line, in one pass, against testdata/bad.golden (go test -update rewrites it).
func TestErrors(t *testing.T) {
	for _, name := range []string{"bad", "bad-canary"} {
		testErrors(t, name)
	}
}

func testErrors(t *testing.T, name string) {
	setTestEnv(t)
	_, err := Load("testdata/" + name + ".yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v, want ErrorList", err)
	}
	got := err.Error() + "\n"
	if *update {
		os.WriteFile("testdata/"+name+".golden", []byte(got), 0o644)
	}
	want, _ := os.ReadFile("testdata/" + name + ".golden")
	if got != string(want) {
		t.Errorf("errors differ from %s.golden:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
	for _, e := range list {
		if e.Line == 0 {
			t.Errorf("error without a line: %v", e)
		}
	}
}

func TestErrorCases(t *testing.T) {
	setTestEnv(t)
	for _, tc := range []struct{ yaml, want string }{
		{"", "x.yaml:1: config is empty"},
		{"providers: [1, 2\n", "x.yaml:1: invalid YAML"},
		{"fixtures: [a]\n", "x.yaml:1: expected a string, got a list"},
		{"providers:\n  p: {format: gcv, base_url: 'http://x', max_rps: fast}\n", `x.yaml:2: expected a number, got the string "fast"`},
		{"providers:\n  p: {format: gcv, base_url: 'http://${CUTOVER_TEST_NOPE}'}\n", "x.yaml:2: environment variable CUTOVER_TEST_NOPE is not set"},
		{"providers:\n  p: {format: gcv, base_url: 'http://x', timeout: 0s}\n", "x.yaml:2: providers.p.timeout 10s"},
		{"providers:\n  p: {format: gcv, base_url: 'http://x', timeout: 11m}\n", "out of range: expected 1ms–10m"},
		{"providers:\n  p:\n    format: gcv\n    base_url: 'http://x'\n    credentials: {access_key_id: a}\n", "x.yaml:5: providers.p: gcv uses api_key"},
		{"providers:\n  p:\n    format: rekognition\n    base_url: 'http://x'\n    credentials: {access_key_id: a}\n", "needs both access_key_id and secret_access_key"},
		{"simulate:\n  s: {format: gcv, listen: ':1', profile: {latency: {mean: 100ms, p99: 30s}}}\n", "no log-normal has mean 100ms and p99 30s"},
	} {
		_, err := Parse("x.yaml", []byte(tc.yaml))
		if tc.want == "x.yaml:2: providers.p.timeout 10s" {
			if err != nil {
				t.Errorf("%q: timeout 0 means default, got %v", tc.yaml, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\ngot  %v\nwant %q", tc.yaml, err, tc.want)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	for _, k := range []string{"CUTOVER_LEGACY_ACCESS_KEY_ID", "CUTOVER_LEGACY_SECRET_ACCESS_KEY", "CUTOVER_HOLYSHEEP_API_KEY", "CUTOVER_GCV_API_KEY", "CUTOVER_AZURE_API_KEY", "CUTOVER_CLIENT_ACCESS_KEY_ID", "CUTOVER_CLIENT_SECRET_ACCESS_KEY", "CUTOVER_LEGACY_CN_SECRET_ID", "CUTOVER_LEGACY_CN_SECRET_KEY", "CUTOVER_BAIDU_API_KEY", "CUTOVER_BAIDU_SECRET_KEY"} {
		t.Setenv(k, "test-"+k)
	}
	c, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) < 2 || len(c.Simulate) < 2 {
		t.Errorf("example config too small")
	}
	os.Unsetenv("CUTOVER_HOLYSHEEP_API_KEY")
	_, err = Load("../config.yaml")
	if err == nil || !strings.Contains(err.Error(), "CUTOVER_HOLYSHEEP_API_KEY is not set") {
		t.Errorf("unset variable: got %v", err)
	}
}

// TestRequireEnv: an unset ${VAR} in a secret does not stop the config
// from loading without secrets; RequireEnv names it, with its line, only
// for the keys a command asks about.
func TestRequireEnv(t *testing.T) {
	t.Setenv("CUTOVER_TEST_SET", "x")
	c, err := Parse("x.yaml", []byte(`providers:
  a: {format: holysheep, base_url: "http://127.0.0.1:1", credentials: {api_key: "${CUTOVER_TEST_UNSET_A}"}}
  b: {format: holysheep, base_url: "http://127.0.0.1:2", credentials: {api_key: "${CUTOVER_TEST_SET}"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RequireEnv("providers.b"); err != nil {
		t.Errorf("providers.b needs nothing unset: %v", err)
	}
	err = c.RequireEnv("providers.a")
	if err == nil || err.Error() != "x.yaml:2: environment variable CUTOVER_TEST_UNSET_A is not set (referenced as ${CUTOVER_TEST_UNSET_A})" {
		t.Errorf("providers.a: %v", err)
	}
	if u := c.Unset(); len(u) != 1 || u[0].Path != "providers.a.credentials.api_key" || u[0].Line != 2 {
		t.Errorf("Unset: %+v", u)
	}
}

// TestClientsWithoutSecrets: proxy.clients whose keys are unset ${VAR}s
// load without secrets (classify, bench and report do not use them) and
// are required by the command that does; a client with no key at all is
// an invalid config.
func TestClientsWithoutSecrets(t *testing.T) {
	const base = `providers:
  legacy: {format: rekognition, base_url: "http://127.0.0.1:1"}
  cand: {format: holysheep, base_url: "http://127.0.0.1:2"}
proxy:
  primary: legacy
  candidate: cand
  clients:
`
	c, err := Parse("x.yaml", []byte(base+`    - {name: catalogue, access_key_id: "${CUTOVER_TEST_UNSET_AK}", secret_access_key: "${CUTOVER_TEST_UNSET_SK}"}
`))
	if err != nil {
		t.Fatalf("clients with unset variables: %v", err)
	}
	if err := c.RequireEnv("proxy.clients"); err == nil || !strings.Contains(err.Error(), "x.yaml:8: environment variable CUTOVER_TEST_UNSET_AK is not set") {
		t.Errorf("RequireEnv(proxy.clients): %v", err)
	}
	_, err = Parse("x.yaml", []byte(base+"    - {name: catalogue}\n"))
	if err == nil || !strings.Contains(err.Error(), `client "catalogue": the primary's format rekognition signs requests`) {
		t.Errorf("a client without a key: %v", err)
	}
}
