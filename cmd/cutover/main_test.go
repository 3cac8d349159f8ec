package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(ctx, args, &Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestUsageAndHelp(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"help"}, exitOK, "simulate"},
		{[]string{"help", "fixtures"}, exitOK, "cutover fixtures gen --out"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"simulate", "-h"}, exitOK, "Example:"},
		{[]string{"simulate", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"fixtures"}, exitUsage, "want a subcommand"},
		{[]string{"fixtures", "gen"}, exitUsage, "--out is required"},
		{[]string{"config", "check", "--config", "does-not-exist.yaml"}, exitRuntime, "no such file"},
		{[]string{"classify", "--n", "0"}, exitUsage, "--n and --concurrency"},
	} {
		code, out, errs := run(t, ctx, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errs)
		}
	}
}

func TestConfigCheckListsEveryError(t *testing.T) {
	code, out, _ := run(t, context.Background(), "config", "check", "--config", "../../config/testdata/bad.yaml")
	if code != exitRuntime {
		t.Errorf("exit %d, want 1", code)
	}
	if n := strings.Count(out, "bad.yaml:"); n < 15 {
		t.Errorf("listed %d errors, want every one:\n%s", n, out)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDemoFlow runs what make demo runs, in process: fixtures gen and check,
// simulate, classify through each provider's real client, and shutdown.
func TestDemoFlow(t *testing.T) {
	dir := t.TempDir()
	tax, _ := filepath.Abs("../../taxonomy.yaml")
	a, b := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`taxonomy: %s
fixtures: fx
providers:
  legacy: {format: rekognition, base_url: "http://%s", credentials: {access_key_id: AKID, secret_access_key: "${CUTOVER_TEST_SECRET}"}}
  holysheep: {format: holysheep, base_url: "http://%s/v1", credentials: {api_key: "${CUTOVER_TEST_SECRET}"}}
simulate:
  legacy: {format: rekognition, listen: "%s", credentials: {access_key_id: AKID, secret_access_key: "${CUTOVER_TEST_SECRET}"},
           profile: {latency: {median: 5ms, p99: 20ms}, accuracy: {misclassification: {fashion: 0.23, default: 0.1}}}}
  holysheep: {format: holysheep, listen: "%s", credentials: {api_key: "${CUTOVER_TEST_SECRET}"},
              profile: {latency: {median: 5ms, p99: 20ms}, accuracy: {misclassification: {default: 0.05}}}}
`, tax, a, b, a, b)
	t.Setenv("CUTOVER_TEST_SECRET", "s3cret-demo-value")
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, "fixtures", "gen", "--config", cfgPath, "--out", filepath.Join(dir, "fx"), "--n", "40", "--seed", "3"); code != 0 {
		t.Fatalf("gen: %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, ctx, "fixtures", "check", "--config", cfgPath, filepath.Join(dir, "fx")); code != 0 || !strings.Contains(out, "ok: 40 items") {
		t.Fatalf("check: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, ctx, "config", "check", "--config", cfgPath); code != 0 || strings.Contains(out, "s3cret") {
		t.Fatalf("config check: %d %s", code, out)
	}
	simCtx, stop := context.WithCancel(ctx)
	done := make(chan string)
	go func() {
		_, out, errs := run(t, simCtx, "simulate", "--config", cfgPath)
		done <- out + errs
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", b); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errs := run(t, ctx, "classify", "--config", cfgPath, "--n", "40", "--concurrency", "4")
	stop()
	simOut := <-done
	if code != 0 {
		t.Fatalf("classify: %d %s %s", code, out, errs)
	}
	for _, want := range []string{"legacy", "rekognition", "holysheep", "top-1 accuracy", "(40/40)"} {
		if !strings.Contains(out, want) {
			t.Errorf("classify output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(simOut, "ready legacy rekognition http://"+a) || !strings.Contains(simOut, "stopped") {
		t.Errorf("simulate output: %s", simOut)
	}
	if strings.Contains(out+errs+simOut, "s3cret-demo-value") {
		t.Error("a secret reached the output")
	}
}

// TestCommandsNeedOnlyTheirSecrets: a command asks only for the
// environment variables of what it uses, and names them with file:line.
func TestCommandsNeedOnlyTheirSecrets(t *testing.T) {
	dir := t.TempDir()
	tax, _ := filepath.Abs("../../taxonomy.yaml")
	a := freePort(t)
	cfg := fmt.Sprintf(`taxonomy: %s
fixtures: fx
providers:
  legacy: {format: rekognition, base_url: "http://%s", credentials: {access_key_id: AKID, secret_access_key: "${CUTOVER_TEST_LEGACY_SECRET}"}}
  other: {format: holysheep, base_url: "http://127.0.0.1:1/v1", credentials: {api_key: "${CUTOVER_TEST_UNSET_OTHER}"}}
simulate:
  legacy: {format: rekognition, listen: "%s", credentials: {access_key_id: AKID, secret_access_key: "${CUTOVER_TEST_LEGACY_SECRET}"},
           profile: {latency: {median: 1ms, p99: 5ms}}}
`, tax, a, a)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	ctx := context.Background()
	if code, out, errs := run(t, ctx, "fixtures", "gen", "--config", cfgPath, "--out", filepath.Join(dir, "fx"), "--n", "10", "--seed", "3"); code != 0 {
		t.Fatalf("gen needs no secret: %d %s %s", code, out, errs)
	}
	code, _, errs := run(t, ctx, "classify", "--config", cfgPath, "--providers", "legacy", "--n", "5")
	if code != exitRuntime || !strings.Contains(errs, "cutover classify needs these environment variables") ||
		!strings.Contains(errs, "config.yaml:4: environment variable CUTOVER_TEST_LEGACY_SECRET is not set") || strings.Contains(errs, "OTHER") {
		t.Errorf("classify without the legacy's secret: %d %s", code, errs)
	}
	t.Setenv("CUTOVER_TEST_LEGACY_SECRET", "legacy-s3cret")
	simCtx, stop := context.WithCancel(ctx)
	defer stop()
	go run(t, simCtx, "simulate", "--config", cfgPath)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			break
		}
	}
	if code, out, errs := run(t, ctx, "classify", "--config", cfgPath, "--providers", "legacy", "--n", "5"); code != 0 || !strings.Contains(out, "(5/5)") {
		t.Errorf("classify --providers legacy needs only the legacy's secret: %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, ctx, "config", "check", "--config", cfgPath); code != exitRuntime || !strings.Contains(out+errs, "CUTOVER_TEST_UNSET_OTHER is not set") {
		t.Errorf("config check asks for every variable: %d %s %s", code, out, errs)
	}
}
