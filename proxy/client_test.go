package proxy

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/sim"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/openai"
)

// TestRealRekognitionClientReverse: an aws-sdk-go-v2 client with
// BaseEndpoint set to the proxy, signing with its own keys, gets correct
// DetectLabels answers from the simulated legacy (which verifies SigV4:
// the proxy re-signed with the legacy's credentials).
func TestRealRekognitionClientReverse(t *testing.T) {
	e := newEnv(t, envOpts{})
	client := rekognition.New(rekognition.Options{
		Region: "ap-southeast-1", BaseEndpoint: aws.String(e.proxyURL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK}, nil
		}),
	})
	fx := fixtureSet(t)
	right := 0
	for _, it := range fx.Items[:20] {
		b, _ := fx.ReadImage(it)
		out, err := client.DetectLabels(context.Background(), &rekognition.DetectLabelsInput{Image: &types.Image{Bytes: b}, MaxLabels: aws.Int32(10)})
		if err != nil {
			t.Fatalf("DetectLabels through the proxy: %v", err)
		}
		var labels []vision.Label
		for _, l := range out.Labels {
			labels = append(labels, vision.Label{Name: aws.ToString(l.Name), Confidence: float64(aws.ToFloat32(l.Confidence)) / 100})
		}
		if taxonomy(t).Normalize("rekognition", vision.Result{Labels: labels}).Top() == it.Category {
			right++
		}
	}
	if right < 12 {
		t.Errorf("%d/20 right through the proxy", right)
	}
	obs := e.observations(t)
	if len(obs) != 40 {
		t.Errorf("recorded %d observations, want 40 (20 primary + 20 candidate)", len(obs))
	}
}

// TestRealRekognitionClientForward: the same client with the proxy as its
// HTTPS proxy and the generated CA trusted reaches the legacy over TLS
// through interception; its own signature stays valid (the host does not
// change), and the call is mirrored. (Go ignores HTTPS_PROXY for loopback
// hosts, so the test sets the transport's Proxy to the proxy URL, which is
// what HTTPS_PROXY does for any other host.)
func TestRealRekognitionClientForward(t *testing.T) {
	tx, fx := taxonomy(t), fixtureSet(t)
	caDir := t.TempDir()
	caCert, caKey, err := InitCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(caKey); fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	// The legacy over TLS, with a certificate the proxy trusts via upstream_ca_file.
	sc, _ := config.Parse("s.yaml", []byte(fmt.Sprintf(`simulate:
  legacy: {format: rekognition, listen: "127.0.0.1:0", credentials: {access_key_id: %s, secret_access_key: %s}, profile: {latency: {median: 2ms, p99: 5ms}}}`, legacyAK, legacySK)))
	m, _ := sim.NewModel("legacy", sc.Simulate["legacy"], tx, fx, 1)
	ls, _ := sim.NewServer(m, sc.Simulate["legacy"], 1)
	legacy := httptest.NewTLSServer(ls)
	defer legacy.Close()
	upCA := filepath.Join(t.TempDir(), "upstream.pem")
	os.WriteFile(upCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: legacy.Certificate().Raw}), 0o644)
	host := strings.TrimPrefix(legacy.URL, "https://")

	// Another host, listed in forward.tunnel: tunnelled untouched.
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) }))
	defer other.Close()
	otherHost := strings.TrimPrefix(other.URL, "https://")
	e := newEnv(t, envOpts{proxyExtra: fmt.Sprintf("upstream_ca_file: %s\nforward: {enabled: true, ca_cert: %s, ca_key: %s, intercept: [%q], tunnel: [%q]}",
		upCA, caCert, caKey, host, otherHost)})
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(caCert)
	pool.AppendCertsFromPEM(b)
	proxyURL, _ := url.Parse(e.proxyURL)
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	tr.TLSClientConfig = tlsWithRoots(pool)
	client := rekognition.New(rekognition.Options{
		Region: "ap-southeast-1", BaseEndpoint: aws.String(legacy.URL), HTTPClient: &http.Client{Transport: tr},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: legacyAK, SecretAccessKey: legacySK}, nil
		}),
	})
	for _, it := range fx.Items[:10] {
		img, _ := fx.ReadImage(it)
		out, err := client.DetectLabels(context.Background(), &rekognition.DetectLabelsInput{Image: &types.Image{Bytes: img}})
		if err != nil {
			t.Fatalf("DetectLabels via HTTPS_PROXY: %v", err)
		}
		if len(out.Labels) == 0 {
			t.Fatal("no labels")
		}
	}
	// A listed host that is not intercepted is tunnelled untouched: the
	// client sees that host's own certificate.
	otherPool := x509.NewCertPool()
	otherPool.AddCert(other.Certificate())
	tr2 := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: tlsWithRoots(otherPool)}
	resp, err := (&http.Client{Transport: tr2}).Get(other.URL)
	if err != nil {
		t.Fatalf("tunnelled host: %v", err)
	}
	resp.Body.Close()
	obs := e.observations(t)
	var prim, cand int
	for _, o := range obs {
		switch o.Role {
		case record.RolePrimary:
			prim++
		case record.RoleCandidate:
			cand++
		}
	}
	if prim != 10 || cand != 10 {
		t.Errorf("forward mode recorded %d primary and %d candidate observations, want 10 and 10", prim, cand)
	}
}

// TestOpenAISDKThroughProxy: the official OpenAI SDK through the shadow
// proxy in front of an OpenAI-compatible primary, mirrored to a
// Rekognition-format candidate.
func TestOpenAISDKThroughProxy(t *testing.T) {
	tx, fx := taxonomy(t), fixtureSet(t)
	sc, _ := config.Parse("s.yaml", []byte(fmt.Sprintf(`simulate:
  hs: {format: openai, listen: "127.0.0.1:0", credentials: {api_key: %s}, profile: {latency: {median: 2ms, p99: 5ms}}}
  legacy: {format: rekognition, listen: "127.0.0.1:0", credentials: {access_key_id: %s, secret_access_key: %s}, profile: {latency: {median: 2ms, p99: 5ms}}}`,
		candidateKey, legacyAK, legacySK)))
	start := func(name string) string {
		m, _ := sim.NewModel(name, sc.Simulate[name], tx, fx, 1)
		s, _ := sim.NewServer(m, sc.Simulate[name], 1)
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	hsURL, legURL := start("hs"), start("legacy")
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(fmt.Sprintf(`
models: {gemini-2.5-flash: {input_per_million: 0.3, cached_input_per_million: 0.075, output_per_million: 2.5}}
providers:
  hs: {format: openai, base_url: "%s/v1", model: gemini-2.5-flash, credentials: {api_key: %s}}
  legacy: {format: rekognition, base_url: "%s", credentials: {access_key_id: %s, secret_access_key: %s}, pricing: {tiers: [{per_1000: 1}]}}
proxy: {primary: hs, candidate: legacy}
`, hsURL, candidateKey, legURL, legacyAK, legacySK)))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	rec, _ := record.Create(dir, record.Run{Kind: "proxy", Mode: "shadow"}, record.Options{})
	p, err := New(cfg, tx, rec, Options{Fixtures: fx})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, stop := serveProxy(t, p)
	var schema map[string]any
	json.Unmarshal(openai.BuildSchema(tx, 3, vision.AttributeKinds), &schema)
	client := oai.NewClient(option.WithBaseURL("http://"+addr+"/v1/"), option.WithAPIKey(candidateKey), option.WithMaxRetries(0))
	for _, it := range fx.Items[:5] {
		b, _ := fx.ReadImage(it)
		resp, err := client.Chat.Completions.New(context.Background(), oai.ChatCompletionNewParams{
			Model: "gemini-2.5-flash",
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{
				oai.TextContentPart("tag"),
				oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b)}),
			})},
			ResponseFormat: oai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "product_tags", Strict: oai.Bool(true), Schema: schema}}},
		})
		if err != nil {
			t.Fatalf("through the proxy: %v", err)
		}
		if resp.Usage.PromptTokens == 0 || resp.Choices[0].Message.Content == "" {
			t.Fatalf("answer: %+v", resp)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
	rec.Close()
	d, _ := record.Open(dir)
	if c := d.Run.Coverage; c.Seen != 5 || c.Mirrored != 5 {
		t.Errorf("coverage %+v", c)
	}
	n := 0
	d.Observations(func(o record.Observation) error {
		if o.Role == record.RoleCandidate && o.Code == "" && o.Tags != nil {
			n++
		}
		return nil
	})
	if n != 5 {
		t.Errorf("%d successful Rekognition-format mirrors of OpenAI-format calls, want 5", n)
	}
	_ = time.Second
}
