package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
	"github.com/cutover/cutover/vision/holysheep"
)

const testConfig = `
providers:
  rek: {format: rekognition, base_url: "http://%[1]s", credentials: {access_key_id: AKID, secret_access_key: s3cret}}
  gcv: {format: gcv, base_url: "http://%[2]s", credentials: {api_key: gk}}
  azure: {format: azure, base_url: "http://%[3]s", credentials: {api_key: ak}}
  hs: {format: holysheep, base_url: "http://%[4]s/v1", credentials: {api_key: hk}}
simulate:
  rek: {format: rekognition, listen: "%[1]s", credentials: {access_key_id: AKID, secret_access_key: s3cret}, profile: {latency: {median: 20ms, p99: 40ms}, accuracy: {misclassification: {default: 0}}}}
  gcv: {format: gcv, listen: "%[2]s", credentials: {api_key: gk}, profile: {latency: {median: 20ms, p99: 40ms}}}
  azure: {format: azure, listen: "%[3]s", credentials: {api_key: ak}, profile: {latency: {median: 20ms, p99: 40ms}}}
  hs: {format: holysheep, listen: "%[4]s", credentials: {api_key: hk}, profile: {latency: {median: 20ms, p99: 40ms}}}
`

func freeAddrs(t *testing.T, n int) []any {
	var out []any
	for i := 0; i < n; i++ {
		r, err := Listen("probe", "127.0.0.1:0", &Server{Model: &Model{}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.ln.Addr().String())
		r.Shutdown(context.Background())
	}
	return out
}

func startAll(t *testing.T, fx *fixtures.Set, scale float64) (*config.Config, *vision.Taxonomy) {
	t.Helper()
	tx := mustTaxonomy(t)
	var cfg *config.Config
	var rs []*Running
	var err error
	// A probed free port can be taken (by another package's outgoing
	// connection) before the simulator binds it: probe again.
	for attempt := 0; attempt < 5; attempt++ {
		if cfg, err = config.Parse("test.yaml", []byte(fmt.Sprintf(testConfig, freeAddrs(t, 4)...))); err != nil {
			t.Fatal(err)
		}
		if rs, err = Start(cfg, tx, fx, Options{Seed: 1, TimeScale: scale}); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range rs {
			r.Shutdown(context.Background())
		}
	})
	return cfg, tx
}

// TestEveryFormatEndToEnd classifies real fixture images through each
// simulator with the format's real client and normalises the answer.
func TestEveryFormatEndToEnd(t *testing.T) {
	tx := mustTaxonomy(t)
	fx, err := fixtures.Generate(t.TempDir(), tx, fixtures.GenerateOptions{N: 30, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := startAll(t, fx, 1)
	for _, name := range []string{"rek", "gcv", "azure", "hs"} {
		c, err := formats.NewClient(cfg, tx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		right := 0
		for _, it := range fx.Items {
			b, _ := fx.ReadImage(it)
			start := time.Now()
			res, err := c.Classify(context.Background(), vision.Request{Image: vision.NewImage(b), Attributes: vision.AttributeKinds})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if d := time.Since(start); d < 5*time.Millisecond {
				t.Errorf("%s answered in %v: latency not simulated", name, d)
			}
			tags := tx.Normalize(c.Codec.Format(), res)
			if tags.Top() == it.Category {
				right++
			}
			if tags.TopAttribute(vision.KindColor) == "" && it.Attributes[vision.KindColor] != "multi" {
				t.Errorf("%s: no colour for %s", name, it.ID)
			}
		}
		if name == "rek" && right != len(fx.Items) {
			t.Errorf("rek with 0%% misclassification got %d/%d right", right, len(fx.Items))
		}
		if right < len(fx.Items)/2 {
			t.Errorf("%s: %d/%d right", name, right, len(fx.Items))
		}
	}
	// Wrong credentials are refused in each format's own way.
	for _, name := range []string{"rek", "gcv", "azure", "hs"} {
		p := *cfg.Providers[name]
		p.Credentials = config.Credentials{APIKey: "wrong", AccessKeyID: "AKID", SecretAccessKey: "wrong"}
		if name != "rek" {
			p.Credentials.AccessKeyID, p.Credentials.SecretAccessKey = "", ""
		}
		cfg.Providers["wrong"] = &p
		c, _ := formats.NewClient(cfg, tx, "wrong", nil)
		b, _ := fx.ReadImage(fx.Items[0])
		if _, err := c.Classify(context.Background(), vision.NewImageRequest(b)); vision.ErrorCode(err) != vision.CodeUnauthorized {
			t.Errorf("%s with wrong credentials: got %v", name, err)
		}
	}
}

// TestInjectedFailures: each injected failure reaches the client as its
// typed code, including a reset connection and a garbage body.
func TestInjectedFailures(t *testing.T) {
	tx := mustTaxonomy(t)
	for _, code := range []vision.Code{vision.CodeNetwork, vision.CodeInvalidResponse, vision.CodeThrottled, vision.CodeServerError, vision.CodeTimeout, vision.CodeBadImage} {
		for _, format := range []string{"rekognition", "gcv", "azure", "holysheep"} {
			s := simConfig(t, format, fmt.Sprintf("latency: {median: 1ms, p99: 2ms}\nerrors: {%s: 1}", code))
			m, _ := NewModel("x", s, tx, nil, 1)
			srv, _ := NewServer(m, s, 0)
			r, err := Listen("x", "127.0.0.1:0", srv)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{Providers: map[string]*config.Provider{"x": {Format: config.Format(format), BaseURL: config.URL(r.URL), Region: "us-east-1", Timeout: config.Duration(2 * time.Second)}}}
			c, err := formats.NewClient(cfg, tx, "x", &http.Client{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Classify(context.Background(), vision.Request{Image: vision.NewImage(pngBytes)})
			want := code
			if code == vision.CodeTimeout && format == "rekognition" {
				want = vision.CodeServerError // Rekognition has no timeout error: ServiceUnavailable
			}
			if got := vision.ErrorCode(err); got != want {
				t.Errorf("%s injected %s: client got %s (%v)", format, code, got, err)
			}
			r.Shutdown(context.Background())
		}
	}
}

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

// TestHolySheepBatchOnSimulator drives the simulator's batch endpoint with
// the real batch client and receives its signed webhook.
func TestHolySheepBatchOnSimulator(t *testing.T) {
	tx := mustTaxonomy(t)
	fx, err := fixtures.Generate(t.TempDir(), tx, fixtures.GenerateOptions{N: 12, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := startAll(t, fx, 0)
	got := make(chan []byte, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !holysheep.VerifyWebhook("hk", body, r.Header.Get(holysheep.SignatureHeader)) {
			t.Error("webhook signature does not verify")
		}
		got <- body
	}))
	defer hook.Close()
	bc := &holysheep.BatchClient{Codec: holysheep.NewCodec(cfg.Providers["hs"].BaseURL.String(), "hk", "")}
	var images []vision.Image
	for _, it := range fx.Items {
		b, _ := fx.ReadImage(it)
		images = append(images, vision.NewImage(b))
	}
	job, err := bc.Submit(context.Background(), images, vision.Request{Attributes: vision.AttributeKinds}, hook.URL)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		var done holysheep.Job
		if err := json.Unmarshal(b, &done); err != nil || done.JobID != job.JobID || done.Completed != len(images) {
			t.Fatalf("webhook job: %s", b)
		}
		right := 0
		for _, r := range done.Results {
			res := holysheep.ResultFromPredictions(r.Predictions)
			if tx.Normalize("holysheep", res).Top() == fx.Items[r.Index].Category {
				right++
			}
		}
		if right < len(images)/2 {
			t.Errorf("batch answers: %d/%d right", right, len(images))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook")
	}
	if _, err := (&holysheep.BatchClient{Codec: holysheep.NewCodec(cfg.Providers["hs"].BaseURL.String(), "bad", "")}).Status(context.Background(), job.JobID); vision.ErrorCode(err) != vision.CodeUnauthorized {
		t.Errorf("status with a wrong key: %v", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// A simulated latency counts from the received request: time the simulator
// spent decoding it is part of the latency, not added on top of it.
func TestLatencyCountsFromReceivedRequest(t *testing.T) {
	s := &Server{TimeScale: 1}
	start := time.Now()
	if err := s.sleepFrom(context.Background(), start.Add(-30*time.Millisecond), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d >= 48*time.Millisecond {
		t.Errorf("50 ms latency, 30 ms already spent: slept %v, want about 20 ms", d)
	}
	start = time.Now()
	if err := s.sleepFrom(context.Background(), start.Add(-80*time.Millisecond), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("latency already spent: slept %v, want no sleep", d)
	}
}
