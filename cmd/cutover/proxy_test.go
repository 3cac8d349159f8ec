package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutover/cutover/reports"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/visiontest"
)

func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never opened", addr)
}

// TestProxyLiveReport runs `cutover simulate` and `cutover proxy` through
// the CLI's entry, as a user would, sends signed DetectLabels calls through
// the proxy, and reads the live /report page the CLI hands to the proxy:
// the recorder is flushed on each load, so every answered request is in
// it, and a reload sees the new ones. The proxy stops in order on
// cancellation and prints its summary.
func TestProxyLiveReport(t *testing.T) {
	dir := t.TempDir()
	tax, _ := filepath.Abs("../../taxonomy.yaml")
	leg, cand, listen, admin := freePort(t), freePort(t), freePort(t), freePort(t)
	t.Setenv("CUTOVER_TEST_SECRET", "s3cret-proxy-value")
	t.Setenv("CUTOVER_TEST_CLIENT_SECRET", "client-s3cret-value")
	cfg := fmt.Sprintf(`taxonomy: %s
fixtures: fx
models: {gemini-2.5-flash: {input_per_million: 0.3, output_per_million: 2.5}}
providers:
  legacy: {format: rekognition, base_url: "http://%s", credentials: {access_key_id: AKIDLEG, secret_access_key: "${CUTOVER_TEST_SECRET}"}, pricing: {tiers: [{per_1000: 1}]}}
  holysheep: {format: openai, base_url: "http://%s/v1", model: gemini-2.5-flash, credentials: {api_key: "${CUTOVER_TEST_SECRET}"}}
simulate:
  legacy: {format: rekognition, listen: "%s", credentials: {access_key_id: AKIDLEG, secret_access_key: "${CUTOVER_TEST_SECRET}"},
           profile: {latency: {median: 2ms, p99: 5ms}}}
  holysheep: {format: openai, listen: "%s", credentials: {api_key: "${CUTOVER_TEST_SECRET}"}, profile: {latency: {median: 2ms, p99: 5ms}}}
proxy:
  listen: "%s"
  admin_listen: "%s"
  primary: legacy
  candidate: holysheep
  clients: [{name: catalogue, access_key_id: AKIDCLIENT, secret_access_key: "${CUTOVER_TEST_CLIENT_SECRET}"}]
`, tax, leg, cand, leg, cand, listen, admin)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, "fixtures", "gen", "--config", cfgPath, "--out", filepath.Join(dir, "fx"), "--n", "20", "--seed", "5"); code != 0 {
		t.Fatalf("gen: %d %s %s", code, out, errs)
	}
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	go run(t, simCtx, "simulate", "--config", cfgPath)
	waitPort(t, leg)
	waitPort(t, cand)
	proxyCtx, stopProxy := context.WithCancel(ctx)
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	runDir := filepath.Join(dir, "run")
	go func() {
		code, out, errs := run(t, proxyCtx, "proxy", "--config", cfgPath, "--run-dir", runDir)
		done <- result{code, out, errs}
	}()
	waitPort(t, listen)
	waitPort(t, admin)
	client := rekognition.NewCodec("http://"+listen, "ap-southeast-1", aws.Credentials{AccessKeyID: "AKIDCLIENT", SecretAccessKey: "client-s3cret-value"})
	send := func(n int) {
		for i := range n {
			hr, err := client.NewRequest(ctx, vision.Request{Image: vision.NewImage(visiontest.JPEG(32, 32, uint64(i))), MaxLabels: 5})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("DetectLabels through the proxy: %d", resp.StatusCode)
			}
		}
	}
	get := func() reports.Report {
		t.Helper()
		// The mirrored calls are recorded off the request path: wait until
		// both sides of every call are in.
		var r reports.Report
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get("http://" + admin + "/report?format=json")
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Cutover-Verdict") == "" {
				t.Errorf("headers: %v", resp.Header)
			}
			r = reports.Report{}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /report: %d %v", resp.StatusCode, err)
			}
			if p := r.Provider("holysheep"); p != nil && r.Provider("legacy") != nil && p.Calls == r.Provider("legacy").Calls {
				break
			}
		}
		return r
	}
	send(8)
	if r := get(); r.Provider("legacy") == nil || r.Provider("legacy").Calls != 8 || r.Coverage == nil || r.Coverage.Classify != 8 {
		t.Fatalf("live report after 8 calls: %+v", r.Coverage)
	}
	send(4)
	r := get()
	if r.Provider("legacy").Calls != 12 {
		t.Errorf("after a reload: %d calls, want 12", r.Provider("legacy").Calls)
	}
	// /admin/status scores the same pairs with the report's functions.
	resp0, err := http.Get("http://" + admin + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Agreement struct {
			Pairs int64 `json:"pairs"`
			Top1  struct {
				K, N int
			} `json:"top1"`
			TopKJaccard struct {
				Value float64 `json:"value"`
			} `json:"topk_jaccard"`
		} `json:"agreement"`
	}
	json.NewDecoder(resp0.Body).Decode(&st)
	resp0.Body.Close()
	if len(r.Agreement) != 1 || st.Agreement.Pairs != int64(r.Agreement[0].Pairs) || st.Agreement.Top1.K != r.Agreement[0].Top1.K ||
		st.Agreement.Top1.N != r.Agreement[0].Top1.N || st.Agreement.TopKJaccard.Value != r.Agreement[0].TopKJaccard.Value {
		t.Errorf("/admin/status agreement %+v, the report's %+v", st.Agreement, r.Agreement)
	}
	resp, err := http.Get("http://" + admin + "/report")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("HTML report: %s %.200s", resp.Header.Get("Content-Type"), b)
	}
	if resp, _ := http.Get("http://" + admin + "/report?format=pdf"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad format: %d", resp.StatusCode)
	}
	stopProxy()
	res := <-done
	if res.code != 0 || !strings.Contains(res.out, "stopped. run directory "+runDir) || !strings.Contains(res.out, "coverage: 12 requests seen, 12 classification calls, 12 mirrored") {
		t.Errorf("proxy exit %d:\n%s%s", res.code, res.out, res.errs)
	}
	if strings.Contains(res.out+res.errs, "s3cret") {
		t.Error("a secret reached the output")
	}
}
