package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	smithy "github.com/aws/smithy-go"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	vrek "github.com/cutover/cutover/vision/rekognition"
)

// sdkClient is the real aws-sdk-go-v2 Rekognition client pointed at the
// proxy in reverse mode, signing with the given key pair, without retries.
func sdkClient(e *env, ak, sk string) *rekognition.Client {
	return rekognition.New(rekognition.Options{
		Region: "ap-southeast-1", BaseEndpoint: aws.String(e.proxyURL), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil
		}),
	})
}

// TestClientAuthentication: reverse mode lends the legacy's credentials
// only to a client proxy.clients lists and only for the classification
// action. A request with no signature, an unknown key or a wrong secret
// gets Rekognition's own 403 and reaches neither the legacy nor the
// candidate; other actions get AccessDeniedException. Refusals are
// counted by reason and no key reaches the log.
func TestClientAuthentication(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.images(t)[0]
	body := []byte(`{"Image":{"Bytes":"` + b64(img) + `"},"MaxLabels":10}`)
	now := time.Now().UTC()
	raw := func(auth string) result {
		r, _ := http.NewRequest(http.MethodPost, e.proxyURL+"/", bytes.NewReader(body))
		r.Header.Set("Content-Type", vrek.ContentType)
		r.Header.Set("X-Amz-Target", vrek.Target)
		if auth != "" {
			r.Header.Set("Authorization", auth)
			r.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
		}
		return do(r)
	}
	for _, tc := range []struct {
		name string
		send func() result
		want string
	}{
		{"no signature", func() result { return raw("") }, "MissingAuthenticationTokenException"},
		{"forged signature", func() result {
			return raw("AWS4-HMAC-SHA256 Credential=" + clientAK + "/" + now.Format("20060102") + "/ap-southeast-1/rekognition/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
		}, "InvalidSignatureException"},
	} {
		got := tc.send()
		if got.status != http.StatusForbidden || got.header.Get("X-Amzn-Errortype") != tc.want+":" || !bytes.Contains(got.body, []byte(`"__type":"`+tc.want+`"`)) {
			t.Errorf("%s: got %d %s %s, want 403 %s", tc.name, got.status, got.header.Get("X-Amzn-Errortype"), got.body, tc.want)
		}
	}
	ctx := context.Background()
	in := &rekognition.DetectLabelsInput{Image: &types.Image{Bytes: img}}
	for _, tc := range []struct {
		name, ak, sk, want string
	}{
		{"unknown key", "AKIDNOTACLIENT001", clientSK, "UnrecognizedClientException"},
		{"wrong secret", clientAK, "wrong-secret-Xx81", "InvalidSignatureException"},
		{"the legacy's own keys", legacyAK, legacySK, "UnrecognizedClientException"},
	} {
		_, err := sdkClient(e, tc.ak, tc.sk).DetectLabels(ctx, in)
		var ae smithy.APIError
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.want || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
			t.Errorf("SDK with %s: %v, want 403 %s", tc.name, err, tc.want)
		}
	}
	if n := e.legacy.count(); n != 0 {
		t.Errorf("refused requests reached the legacy %d times", n)
	}
	if n := e.candidate.count(); n != 0 {
		t.Errorf("refused requests reached the candidate %d times", n)
	}
	// Other actions, signed by a verified client: AccessDeniedException.
	c := sdkClient(e, clientAK, clientSK)
	_, err := c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Errorf("ListCollections: %v, want AccessDeniedException", err)
	}
	_, err = c.DeleteCollection(ctx, &rekognition.DeleteCollectionInput{CollectionId: aws.String("catalogue")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Errorf("DeleteCollection: %v, want AccessDeniedException", err)
	}
	if n := e.legacy.count(); n != 0 {
		t.Errorf("denied actions reached the legacy %d times", n)
	}
	// The verified client's classification call goes through, re-signed.
	out, err := c.DetectLabels(ctx, in)
	if err != nil || len(out.Labels) == 0 {
		t.Fatalf("a verified client: %v", err)
	}
	m := scrape(t, e, "cutover_client_auth_failures_total")
	for _, want := range []string{`reason="missing"} 1`, `reason="unknown_client"} 2`, `reason="bad_signature"} 2`, `reason="action_denied"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	obs := e.observations(t)
	if len(obs) != 2 {
		t.Fatalf("%d observations, want the verified call's 2", len(obs))
	}
	for _, o := range obs {
		if o.Client != "catalogue" {
			t.Errorf("%s observation client %q, want catalogue", o.Role, o.Client)
		}
	}
	for _, s := range []string{clientSK, legacySK, "wrong-secret-Xx81"} {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("a secret is in the log")
		}
	}
	if !strings.Contains(e.logs.String(), "client refused") {
		t.Error("refusals were not logged")
	}
}

// TestAllowedActionsAll: with allowed_actions: all a verified client's
// other actions are re-signed and forwarded (the simulated legacy answers
// them as Rekognition would an unsupported call).
func TestAllowedActionsAll(t *testing.T) {
	e := newEnv(t, envOpts{proxyExtra: "allowed_actions: all"})
	_, err := sdkClient(e, clientAK, clientSK).ListCollections(context.Background(), &rekognition.ListCollectionsInput{})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "InvalidSignatureException") {
		t.Errorf("ListCollections with allowed_actions all: %v", err)
	}
	if e.legacy.count() != 1 {
		t.Errorf("the legacy saw %d requests, want the ListCollections", e.legacy.count())
	}
}

// TestListenOffLoopbackNeedsClients: a client listener off loopback
// without proxy.clients refuses to start.
func TestListenOffLoopbackNeedsClients(t *testing.T) {
	e := newEnv(t, envOpts{noClients: true})
	if _, _, err := e.p.Listen("0.0.0.0:0", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "without proxy.clients") {
		t.Errorf("Listen off loopback without clients: %v", err)
	}
	// With clients, a proxy that is not running yet binds (and is closed
	// again without serving: tests open no public port for long).
	e2 := newEnv(t, envOpts{})
	p, err := New(e2.cfg, taxonomy(t), e2.rec, Options{Fixtures: fixtureSet(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Listen("0.0.0.0:0", "127.0.0.1:0"); err != nil {
		t.Errorf("Listen off loopback with clients: %v", err)
	} else {
		p.ln.Close()
		p.aln.Close()
	}
}

// TestKeyFormatClients: with an OpenAI-compatible primary, a client's
// bearer key is checked and replaced by the primary's own key; an
// unknown key gets the format's 401 and reaches nothing.
func TestKeyFormatClients(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[]}`)
	}))
	defer primary.Close()
	const primaryKey = "sk-primary-Kk20"
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.yaml"), []byte(fmt.Sprintf(`
models: {gemini-2.5-flash: {input_per_million: 0.3, output_per_million: 2.5}}
providers:
  hs: {format: openai, base_url: "%s/v1", model: gemini-2.5-flash, credentials: {api_key: %s}}
  legacy: {format: rekognition, base_url: "http://127.0.0.1:1", credentials: {access_key_id: %s, secret_access_key: %s}}
proxy: {primary: hs, candidate: legacy, clients: [{name: batch, api_key: client-key-Rr55}]}
`, primary.URL, primaryKey, legacyAK, legacySK)))
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := record.Create(filepath.Join(t.TempDir(), "run"), record.Run{Kind: "proxy", Mode: "shadow"}, record.Options{})
	defer rec.Close()
	p, err := New(cfg, taxonomy(t), rec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, stop := serveProxy(t, p)
	send := func(key string) result {
		r, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[]}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+key)
		return do(r)
	}
	if got := send("not-a-client"); got.status != http.StatusUnauthorized || !bytes.Contains(got.body, []byte("invalid_api_key")) {
		t.Errorf("unknown key: %d %s, want OpenAI's 401 invalid_api_key", got.status, got.body)
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Fatalf("an unknown key reached the primary")
	}
	mu.Unlock()
	if got := send("client-key-Rr55"); got.status != 200 {
		t.Errorf("client key: %d %s", got.status, got.body)
	}
	stop()
	if len(seen) != 1 || seen[0] != "Bearer "+primaryKey {
		t.Errorf("the primary saw %q, want its own key", seen)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
