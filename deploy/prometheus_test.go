package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	rulesFile     = "prometheus/cutover.rules.yml"
	rulesTestFile = "prometheus/cutover.rules.test.yml"
)

// ruleFile is the shape of a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return f
}

// promtool finds promtool (Debian's prometheus package; .ci/run installs
// it) or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus): the rules are not unit-tested")
	}
	return p
}

// TestPrometheusRules runs promtool check rules and promtool test rules:
// every recording rule against figures worked out by hand, every alert
// firing and not firing.
func TestPrometheusRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(rulesFile)},
		{"test", "rules", filepath.Base(rulesTestFile)},
	} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = filepath.Dir(rulesFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestPromtoolCatchesBrokenRule: a rules test that expects the wrong
// figure fails, so TestPrometheusRules can fail.
func TestPromtoolCatchesBrokenRule(t *testing.T) {
	pt := promtool(t)
	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	// The candidate's error ratio is 0.1: expect 0.2 instead.
	broken := strings.Replace(string(b), "            value: 0.1\n", "            value: 0.2\n", 1)
	if broken == string(b) {
		t.Fatal("the test file has no error ratio of 0.1 to break")
	}
	for name, data := range map[string][]byte{"cutover.rules.yml": rules, "t.yml": []byte(broken)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(pt, "test", "rules", "t.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("promtool test rules passed a wrong expectation:\n%s", out)
	}
}

// TestRulesNameRealSeries: every series a rule reads is one the proxy
// exports (or an earlier rule records), with the labels the rule uses;
// every annotation's $labels exist on the alert.
func TestRulesNameRealSeries(t *testing.T) {
	c := proxyCatalogue(t)
	f := loadRules(t)
	labelRef := regexp.MustCompile(`\$labels\.(\w+)`)
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			name := r.Record + r.Alert
			ls, err := c.check(r.Expr)
			if err != nil {
				t.Errorf("%s %s: %v", g.Name, name, err)
				continue
			}
			if r.Record != "" {
				c[r.Record] = ls
				continue
			}
			for k, v := range r.Annotations {
				for _, m := range labelRef.FindAllStringSubmatch(v, -1) {
					if !ls[m[1]] && r.Labels[m[1]] == "" {
						t.Errorf("alert %s annotation %s uses $labels.%s, which the alert does not carry (%v)", r.Alert, k, m[1], ls.sorted())
					}
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("%s has %d rules, want the full set", rulesFile, n)
	}
}

// TestEveryAlertTestedAndDocumented: each alert is tested firing and not
// firing in the promtool test file, has a severity and a runbook anchor,
// and docs/deployment.md has that runbook.
func TestEveryAlertTestedAndDocumented(t *testing.T) {
	f := loadRules(t)
	tb, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			Name       string `yaml:"name"`
			AlertTests []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(tb, &tf); err != nil {
		t.Fatal(err)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertTests {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	doc, err := os.ReadFile("../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if !firing[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: tested firing %v, not firing %v: want both", r.Alert, firing[r.Alert], quiet[r.Alert])
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			want := "docs/deployment.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook"] != want {
				t.Errorf("alert %s: runbook %q, want %q", r.Alert, r.Annotations["runbook"], want)
			}
			if !strings.Contains(string(doc), "\n#### "+r.Alert+"\n") {
				t.Errorf("docs/deployment.md has no runbook heading \"#### %s\"", r.Alert)
			}
		}
	}
}
