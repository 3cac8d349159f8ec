package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/config"
)

const (
	unitFile     = "systemd/cutover-proxy.service"
	unitConfig   = "systemd/config.yaml"
	envExample   = "systemd/cutover.env.example"
	manifestFile = "kubernetes/cutover-proxy.yaml"
	deploymentMD = "../docs/deployment.md"
)

// unit is a systemd unit file: section → key → values (a key may repeat).
type unit map[string]map[string][]string

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func loadUnit(t *testing.T) unit {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", unitFile, n, l)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// manifest is the Kubernetes manifest's documents, by kind.
type manifest map[string]map[string]any

func loadManifest(t *testing.T) (manifest, string) {
	t.Helper()
	b, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", manifestFile, err)
		}
		if doc == nil {
			continue
		}
		kind, _ := doc["kind"].(string)
		if _, dup := m[kind]; dup || kind == "" {
			t.Fatalf("%s: kind %q missing or repeated", manifestFile, kind)
		}
		if doc["apiVersion"] == nil || dig(doc, "metadata", "name") == nil {
			t.Errorf("%s: %s without apiVersion or metadata.name", manifestFile, kind)
		}
		m[kind] = doc
	}
	return m, string(b)
}

// dig follows keys (string: map key; int: list index) into v.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// secretEnv are the variables the deployment examples' secrets hold
// (cutover.env.example), set to dummy values so the configs load.
func secretEnv(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || !envAssign.MatchString(l) {
			t.Fatalf("%s: not NAME=: %q", envExample, l)
		}
		if v != "" {
			t.Errorf("%s: %s has a value: the example must not hold a secret", envExample, k)
		}
		keys = append(keys, k)
	}
	return keys
}

var envRef = regexp.MustCompile(`\$\{(\w+)\}`)

// loadExampleConfig parses an example config.yaml with config.Parse (which
// rejects unknown keys and validates every value), with its secrets set
// to dummies and the repository's taxonomy beside it, and runs the real
// `cutover config check` on it. It returns the parsed config.
func loadExampleConfig(t *testing.T, name string, b []byte) *config.Config {
	t.Helper()
	keys := secretEnv(t)
	for _, k := range keys {
		t.Setenv(k, "dummy-"+strings.ToLower(k))
	}
	for _, v := range scalars(t, name, b) {
		for _, m := range envRef.FindAllStringSubmatch(v, -1) {
			if !slices.Contains(keys, m[1]) {
				t.Errorf("%s uses ${%s}, which %s does not list", name, m[1], envExample)
			}
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tx, err := os.ReadFile("../taxonomy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.TaxonomyPath(), tx, 0o644); err != nil {
		t.Fatalf("%s: taxonomy %s: %v", name, cfg.Taxonomy, err)
	}
	c := buildCLI(t)
	cmd := exec.Command(c.bin, "config", "check", "--config", path)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cutover config check on %s: %v\n%s", name, err, out)
	}
	if !slices.Contains(keys, cfg.Proxy.Canary.AdminTokenEnv) {
		t.Errorf("%s: canary.admin_token_env %s is not in %s", name, cfg.Proxy.Canary.AdminTokenEnv, envExample)
	}
	return cfg
}

// scalars are the scalar values of a YAML document (comments left out).
func scalars(t *testing.T, name string, b []byte) []string {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			out = append(out, n.Value)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return out
}

// softLimit is the Go memory limit `cutover proxy` sets (cmd/cutover's
// tuneGC): twice mirror.max_queue_bytes plus 64 MiB.
func softLimit(cfg *config.Config) int64 {
	return 2*int64(cfg.Proxy.Mirror.MaxQueueBytes) + 64<<20
}

// gateOfRules is the candidate error-rate gate the alert rules use.
func gateOfRules(t *testing.T) float64 {
	t.Helper()
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record == "cutover:candidate_error_rate_gate" {
				m := regexp.MustCompile(`^vector\(([0-9.]+)\)$`).FindStringSubmatch(strings.TrimSpace(r.Expr))
				if m == nil {
					t.Fatalf("the gate rule is %q, want vector(N)", r.Expr)
				}
				v, _ := strconv.ParseFloat(m[1], 64)
				return v
			}
		}
	}
	t.Fatal("no cutover:candidate_error_rate_gate rule")
	return 0
}

// TestSystemdUnit: the unit's command line is a real cutover command with
// real flags; its config loads; it stops after the proxy's own shutdown
// timeout; it can write where the config writes and nowhere else; its
// memory cap is above the proxy's memory bound; systemd-analyze verify
// accepts every directive.
func TestSystemdUnit(t *testing.T) {
	u := loadUnit(t)
	c := buildCLI(t)
	execStart := u.get("Service", "ExecStart")
	words := cutoverWords(execStart)
	if words == nil || words[1] != "proxy" {
		t.Fatalf("ExecStart=%s is not a cutover proxy command", execStart)
	}
	if err := c.checkCommand(words); err != nil {
		t.Errorf("ExecStart: %v", err)
	}
	cfgPath := flagValue(words, "config")
	if cfgPath != "/etc/cutover/"+filepath.Base(unitConfig) || u.get("Service", "ConfigurationDirectory") != "cutover" {
		t.Errorf("ExecStart reads %s with ConfigurationDirectory=%s, want /etc/cutover/config.yaml and cutover", cfgPath, u.get("Service", "ConfigurationDirectory"))
	}
	b, err := os.ReadFile(unitConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadExampleConfig(t, unitConfig, b)

	for k, want := range map[string]string{
		"Restart": "on-failure", "KillSignal": "SIGTERM", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"DynamicUser": "yes", "StateDirectory": "cutover", "EnvironmentFile": "/etc/cutover/cutover.env",
		"WorkingDirectory": "/var/lib/cutover", "CapabilityBoundingSet": "",
	} {
		if _, ok := u["Service"][k]; !ok || u.get("Service", k) != want {
			t.Errorf("[Service] %s=%q, want %q", k, u.get("Service", k), want)
		}
	}
	stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if sd := cfg.Proxy.ShutdownTimeout.D(); stop <= sd+5*time.Second {
		t.Errorf("TimeoutStopSec=%s does not leave room above proxy.shutdown_timeout %s", stop, sd)
	}
	state := "/var/lib/" + u.get("Service", "StateDirectory") + "/"
	if sf := cfg.Path(cfg.Proxy.Canary.StateFile); !strings.HasPrefix(sf, state) {
		t.Errorf("canary.state_file %s is outside the state directory %s: ProtectSystem=strict makes it read-only", sf, state)
	}
	if cfg.Proxy.Fleet != nil {
		t.Error("the one-replica example should not need NATS (proxy.fleet)")
	}
	if max := parseBytes(t, u.get("Service", "MemoryMax"), false); max < 2*softLimit(cfg) {
		t.Errorf("MemoryMax=%d is under twice the proxy's soft memory limit %d (2 × mirror.max_queue_bytes + 64 MiB)", max, softLimit(cfg))
	}
	if r := cfg.Proxy.Canary.Rollback.ErrorRate; r == nil || float64(*r) != gateOfRules(t) {
		t.Errorf("canary.rollback.error_rate %v differs from the rules' gate %v", r, gateOfRules(t))
	}

	if _, err := osexec("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the unit's directives are not verified")
		return
	}
	// systemd-analyze verify wants ExecStart's binary to exist: point it at
	// the one just built.
	dir := t.TempDir()
	ub, _ := os.ReadFile(unitFile)
	local := strings.Replace(string(ub), "ExecStart="+words[0], "ExecStart="+c.bin, 1)
	p := filepath.Join(dir, filepath.Base(unitFile))
	if err := os.WriteFile(p, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runOut("systemd-analyze", "verify", p)
	if err != nil || strings.Contains(out, filepath.Base(unitFile)) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdVerifyCatchesMistakes: a misspelled directive or value is
// reported by systemd-analyze verify, so TestSystemdUnit can fail.
func TestSystemdVerifyCatchesMistakes(t *testing.T) {
	if _, err := osexec("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	ub, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	c := buildCLI(t)
	for _, edit := range [][2]string{{"ProtectSystem=strict", "ProtectSystem=strickt"}, {"NoNewPrivileges=yes", "NoNewPrivilege=yes"}} {
		s := strings.Replace(strings.Replace(string(ub), "/usr/local/bin/cutover", c.bin, 1), edit[0], edit[1], 1)
		p := filepath.Join(t.TempDir(), filepath.Base(unitFile))
		os.WriteFile(p, []byte(s), 0o644)
		if out, _ := runOut("systemd-analyze", "verify", p); !strings.Contains(out, filepath.Base(unitFile)) {
			t.Errorf("%s: systemd-analyze verify said nothing:\n%s", edit[1], out)
		}
	}
}

// TestKubernetesManifest: the manifest parses as YAML documents; the
// Deployment runs 3 replicas of a real cutover command whose config loads
// and shares the canary through proxy.fleet; its probes hit /readyz and
// /healthz on the admin port the config binds; its secrets come from the
// Secret the docs create, one variable for each the config uses; its
// memory matches the proxy's bound; its grace period covers the shutdown;
// the Service and PodDisruptionBudget select its pods.
func TestKubernetesManifest(t *testing.T) {
	m, text := loadManifest(t)
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} {
		if m[k] == nil {
			t.Fatalf("%s has no %s", manifestFile, k)
		}
	}
	c := buildCLI(t)
	d := m["Deployment"]
	if r := dig(d, "spec", "replicas"); r != 3 {
		t.Errorf("replicas %v, want 3", r)
	}
	labels := dig(d, "spec", "template", "metadata", "labels")
	for _, sel := range []any{dig(d, "spec", "selector", "matchLabels"), dig(m["Service"], "spec", "selector"),
		dig(m["PodDisruptionBudget"], "spec", "selector", "matchLabels")} {
		if fmt.Sprint(sel) != fmt.Sprint(labels) {
			t.Errorf("selector %v does not match the pod labels %v", sel, labels)
		}
	}
	if n, ok := dig(m["PodDisruptionBudget"], "spec", "minAvailable").(int); !ok || n < 2 {
		t.Errorf("PodDisruptionBudget minAvailable %v, want at least 2 of 3", dig(m["PodDisruptionBudget"], "spec", "minAvailable"))
	}
	pod := dig(d, "spec", "template", "spec")
	ctr := dig(pod, "containers", 0)
	var words []string
	for _, part := range []string{"command", "args"} {
		l, _ := dig(ctr, part).([]any)
		for _, w := range l {
			words = append(words, str(w))
		}
	}
	if len(words) < 2 || filepath.Base(words[0]) != "cutover" || words[1] != "proxy" {
		t.Fatalf("the container runs %q, want cutover proxy", words)
	}
	if err := c.checkCommand(words); err != nil {
		t.Errorf("container command: %v", err)
	}
	// The config is the ConfigMap's config.yaml, mounted where --config says.
	cfgPath := flagValue(words, "config")
	cmName := str(dig(m["ConfigMap"], "metadata", "name"))
	raw := str(dig(m["ConfigMap"], "data", filepath.Base(cfgPath)))
	if raw == "" {
		t.Fatalf("ConfigMap %s has no %s", cmName, filepath.Base(cfgPath))
	}
	cfg := loadExampleConfig(t, manifestFile+" ConfigMap "+cmName, []byte(raw))
	mounts := map[string]string{}
	for _, vm := range dig(ctr, "volumeMounts").([]any) {
		mounts[str(dig(vm, "mountPath"))] = str(dig(vm, "name"))
	}
	vols := map[string]any{}
	for _, v := range dig(pod, "volumes").([]any) {
		vols[str(dig(v, "name"))] = v
	}
	cfgVol := vols[mounts[filepath.Dir(cfgPath)]]
	var sources []string
	if l, ok := dig(cfgVol, "projected", "sources").([]any); ok {
		for _, s := range l {
			sources = append(sources, str(dig(s, "configMap", "name")))
		}
	}
	if !slices.Contains(sources, cmName) || !slices.Contains(sources, "cutover-taxonomy") {
		t.Errorf("%s is mounted from %v, want the ConfigMap %s and cutover-taxonomy", filepath.Dir(cfgPath), sources, cmName)
	}
	if cfg.Taxonomy != "taxonomy.yaml" || !strings.Contains(text, "create configmap cutover-taxonomy --from-file=taxonomy.yaml") {
		t.Errorf("the taxonomy (%s) must come from the cutover-taxonomy ConfigMap the header creates", cfg.Taxonomy)
	}
	if wd := str(dig(ctr, "workingDir")); mounts[wd] == "" || dig(vols[mounts[wd]], "emptyDir") == nil {
		t.Errorf("workingDir %s (where run directories go) is not a writable volume", wd)
	}
	if dig(ctr, "securityContext", "readOnlyRootFilesystem") != true || dig(ctr, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("the container should run with a read-only root and no privilege escalation")
	}

	// Several replicas act as one only through proxy.fleet.
	if cfg.Proxy.Fleet == nil || cfg.Proxy.Fleet.NATSURL == "" {
		t.Fatal("3 replicas without proxy.fleet would each run their own canary")
	}
	if cfg.Proxy.Mirror.DedupeScope != "fleet" {
		t.Errorf("mirror.dedupe_scope %s, want fleet", cfg.Proxy.Mirror.DedupeScope)
	}
	if r := cfg.Proxy.Canary.Rollback.ErrorRate; r == nil || float64(*r) != gateOfRules(t) {
		t.Errorf("canary.rollback.error_rate %v differs from the rules' gate %v", r, gateOfRules(t))
	}

	// Ports: the container's named ports are the config's listeners.
	ports := map[string]string{}
	for _, p := range dig(ctr, "ports").([]any) {
		ports[str(dig(p, "name"))] = str(dig(p, "containerPort"))
	}
	for name, addr := range map[string]string{"http": cfg.Proxy.Listen.String(), "admin": cfg.Proxy.AdminListen.String()} {
		if _, port, _ := strings.Cut(addr, ":"); ports[name] != port || !strings.HasPrefix(addr, "0.0.0.0:") {
			t.Errorf("container port %s is %s, config listens on %s (want 0.0.0.0 and the same port)", name, ports[name], addr)
		}
	}
	for _, sp := range dig(m["Service"], "spec", "ports").([]any) {
		if tp := str(dig(sp, "targetPort")); ports[tp] == "" {
			t.Errorf("Service targetPort %s is not a container port", tp)
		}
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if p, port := str(dig(ctr, probe, "httpGet", "path")), str(dig(ctr, probe, "httpGet", "port")); p != path || port != "admin" {
			t.Errorf("%s on %s port %s, want %s on admin", probe, p, port, path)
		}
	}

	// Secrets: exactly the variables the examples' env file lists, each
	// from the Secret the header creates.
	keys := secretEnv(t)
	var got []string
	for _, e := range dig(ctr, "env").([]any) {
		name := str(dig(e, "name"))
		ref := dig(e, "valueFrom", "secretKeyRef")
		if ref == nil || str(dig(ref, "name")) != "cutover-proxy" || str(dig(ref, "key")) != name {
			t.Errorf("env %s is not key %s of the cutover-proxy Secret", name, name)
		}
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("env from the Secret %v, want %s's %v", got, envExample, keys)
	}
	if !strings.Contains(text, "create secret generic cutover-proxy --from-env-file=") {
		t.Error("the header does not say how to create the cutover-proxy Secret")
	}

	// Memory and shutdown follow the proxy's own bounds.
	req := parseBytes(t, str(dig(ctr, "resources", "requests", "memory")), true)
	lim := parseBytes(t, str(dig(ctr, "resources", "limits", "memory")), true)
	if req < softLimit(cfg) || lim < 2*softLimit(cfg) {
		t.Errorf("memory request %d / limit %d: want at least the soft limit %d and twice it", req, lim, softLimit(cfg))
	}
	grace, _ := dig(pod, "terminationGracePeriodSeconds").(int)
	pre, _ := dig(ctr, "lifecycle", "preStop", "sleep", "seconds").(int)
	if time.Duration(grace)*time.Second <= time.Duration(pre)*time.Second+cfg.Proxy.ShutdownTimeout.D() {
		t.Errorf("terminationGracePeriodSeconds %d does not cover preStop %ds + shutdown_timeout %s", grace, pre, cfg.Proxy.ShutdownTimeout)
	}
}

// TestExampleConfigCatchesMistakes: config.Parse rejects an unknown key
// and a bad value, so the example configs' checks can fail.
func TestExampleConfigCatchesMistakes(t *testing.T) {
	for _, k := range secretEnv(t) {
		t.Setenv(k, "x")
	}
	b, err := os.ReadFile(unitConfig)
	if err != nil {
		t.Fatal(err)
	}
	for edit, want := range map[[2]string]string{
		{"    max_in_flight: 256", "    max_inflight: 256"}:             `unknown key "max_inflight"`,
		{"  shutdown_timeout: 30s", "  shutdown_timeout: 30"}:           `invalid duration "30"`,
		{"${CUTOVER_HOLYSHEEP_API_KEY}", "${CUTOVER_NOT_SET_ANYWHERE}"}: "CUTOVER_NOT_SET_ANYWHERE is not set",
	} {
		s := strings.Replace(string(b), edit[0], edit[1], 1)
		if s == string(b) {
			t.Fatalf("%q is not in %s", edit[0], unitConfig)
		}
		cfg, err := config.Parse(unitConfig, []byte(s))
		if err == nil {
			err = cfg.RequireEnv() // as cutover config check asks for every variable
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", edit[1], err, want)
		}
	}
}

// TestDocumentedCommandLines: every cutover command line in the deploy
// files' comments, in docs/deployment.md's code blocks and in `code`
// spans of both uses real commands and flags.
func TestDocumentedCommandLines(t *testing.T) {
	c := buildCLI(t)
	var lines []string
	codeSpan := regexp.MustCompile("`((?:/usr/local/bin/)?cutover [^`]+)`")
	for _, f := range []string{unitFile, unitConfig, envExample, manifestFile, deploymentMD} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeSpan.FindAllStringSubmatch(string(b), -1) {
			lines = append(lines, f+": "+m[1])
		}
		if f == deploymentMD {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			// Commands in comments are indented past "# " (prose is not).
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "#"); ok && strings.HasPrefix(rest, "   ") {
				lines = append(lines, f+": "+strings.TrimSpace(rest))
			}
		}
	}
	doc, err := os.ReadFile(deploymentMD)
	if err != nil {
		t.Fatal(err)
	}
	inCode := false
	var cont string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cont += s + " "
			continue
		}
		lines = append(lines, "docs/deployment.md: "+strings.TrimSpace(cont+l))
		cont = ""
	}
	n := 0
	for _, l := range lines {
		where, cmd, _ := strings.Cut(l, ": ")
		words := cutoverWords(cmd)
		if words == nil {
			continue
		}
		n++
		if err := c.checkCommand(words); err != nil {
			t.Errorf("%s: %s: %v", where, cmd, err)
		} else {
			t.Logf("%s: %s", where, cmd)
		}
	}
	if n < 5 {
		t.Errorf("found %d cutover command lines in the deploy files and docs/deployment.md, want the examples'", n)
	}
}

// flagValue is the value of --name in words ("" if absent).
func flagValue(words []string, name string) string {
	for i, w := range words {
		f := strings.TrimLeft(w, "-")
		if v, ok := strings.CutPrefix(f, name+"="); ok && strings.HasPrefix(w, "-") {
			return v
		}
		if f == name && strings.HasPrefix(w, "-") && i+1 < len(words) {
			return words[i+1]
		}
	}
	return ""
}

// parseBytes reads a size as systemd writes it (K, M, G: powers of
// 1024) or, with k8s, as Kubernetes does (Ki, Mi, Gi: powers of 1024; k,
// M, G: powers of 1000).
func parseBytes(t *testing.T, s string, k8s bool) int64 {
	t.Helper()
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}}
	if k8s {
		units = append(units[:3], struct {
			suffix string
			mult   int64
		}{"k", 1e3}, struct {
			suffix string
			mult   int64
		}{"M", 1e6}, struct {
			suffix string
			mult   int64
		}{"G", 1e9})
	}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("size %q: %v", s, err)
			}
			return v * u.mult
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return v
}

func osexec(name string) (string, error) { return exec.LookPath(name) }

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
