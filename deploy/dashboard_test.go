package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

const dashboardFile = "grafana/cutover.json"

// query is one PromQL query of the dashboard, where it is and its legend.
type query struct {
	where, expr, legend string
}

// dashboardQueries walks the dashboard JSON for every query: panel
// targets (expr), annotation queries (expr) and template variables
// (label_values(SERIES, LABEL) and query_result(QUERY)).
func dashboardQueries(t *testing.T, b []byte) []query {
	t.Helper()
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []query
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where += "/" + title
			} else if name, ok := v["name"].(string); ok {
				where += "/" + name
			}
			if e, ok := v["expr"].(string); ok {
				legend, _ := v["legendFormat"].(string)
				out = append(out, query{where, e, legend})
			}
			if def, ok := v["definition"].(string); ok {
				out = append(out, query{where, templateQuery(def), ""})
			}
			for k, c := range v {
				if k != "expr" {
					walk(where, c)
				}
			}
		case []any:
			for _, c := range v {
				walk(where, c)
			}
		}
	}
	walk("", d)
	return out
}

var (
	labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	queryResult = regexp.MustCompile(`^query_result\((.+)\)$`)
)

// templateQuery turns a Grafana template variable's query into PromQL:
// label_values(S, L) asks for S's label L (so S must carry L),
// query_result(Q) runs Q.
func templateQuery(def string) string {
	def = strings.TrimSpace(def)
	if m := labelValues.FindStringSubmatch(def); m != nil {
		return "count by (" + m[2] + ") (" + m[1] + ")"
	}
	if m := queryResult.FindStringSubmatch(def); m != nil {
		return m[1]
	}
	return def
}

var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// TestDashboardNamesRealSeries: every query of the dashboard parses and
// names series the proxy exports or the rules record, with labels they
// carry, and every legend's {{label}} is on the query's result.
func TestDashboardNamesRealSeries(t *testing.T) {
	c := proxyCatalogue(t)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				ls, err := c.check(r.Expr)
				if err != nil {
					t.Fatalf("rule %s: %v", r.Record, err)
				}
				c[r.Record] = ls
			}
		}
	}
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	qs := dashboardQueries(t, b)
	if len(qs) < 30 {
		t.Fatalf("found %d queries in %s, want every panel's", len(qs), dashboardFile)
	}
	used := map[string]bool{}
	for _, q := range qs {
		ls, err := c.check(substituteGrafana(q.expr))
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			if !ls[m[1]] {
				t.Errorf("%s: legend %q uses {{%s}}, which the query's result does not carry (%v)", q.where, q.legend, m[1], ls.sorted())
			}
		}
		for name := range c {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(q.expr) {
				used[name] = true
			}
		}
	}
	// The dashboard shows what the issue asks for.
	for _, name := range []string{
		"cutover_canary_percent", "cutover_canary_rollbacks_total", "job:cutover_provider_error_ratio:rate5m",
		"job:cutover_provider_latency_seconds:p99_rate5m", "job:cutover_mirror_drop_ratio:rate5m",
		"job:cutover_agreement_ratio:rate15m", "cutover_mirror_spend_today", "cutover_fleet_disconnected",
		"cutover_fleet_lease_held", "cutover_client_auth_failures_total", "cutover:candidate_error_rate_gate",
	} {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// TestDashboardQueriesFound: the walk finds targets, annotations and
// template variables, and a misspelled series in the dashboard fails the
// check.
func TestDashboardQueriesFound(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, q := range dashboardQueries(t, b) {
		switch {
		case strings.Contains(q.where, "/Rollbacks") && strings.Contains(q.expr, "> 0"):
			kinds["annotation"] = true
		case strings.HasPrefix(q.expr, "count by (instance)"):
			kinds["template"] = true
		case strings.Contains(q.where, "/Canary share per replica"):
			kinds["panel"] = true
		}
	}
	if len(kinds) != 3 {
		t.Errorf("found query kinds %v, want panel, annotation and template", kinds)
	}
	c := proxyCatalogue(t)
	bad := strings.Replace(string(b), "cutover_fleet_lease_held{", "cutover_fleet_lease_hold{", 1)
	if bad == string(b) {
		t.Fatal("nothing to misspell")
	}
	failed := false
	for _, q := range dashboardQueries(t, []byte(bad)) {
		if _, err := c.check(substituteGrafana(q.expr)); err != nil && strings.Contains(err.Error(), "cutover_fleet_lease_hold") {
			failed = true
		}
	}
	if !failed {
		t.Error("a misspelled series in the dashboard passed the check")
	}
}

// TestDashboardShape: panel ids are unique, every panel has a grid
// position and its queries a data source, and the data source is the
// dashboard's variable (so the JSON imports into any Grafana).
func TestDashboardShape(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int             `json:"id"`
			Type    string          `json:"type"`
			Title   string          `json:"title"`
			GridPos *map[string]int `json:"gridPos"`
			Targets []struct {
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
		t.Errorf("template variables %v, want datasource, job and instance", vars)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil {
			t.Errorf("panel %q has no gridPos", p.Title)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != "${datasource}" || q.RefID == "" || q.Expr == "" {
				t.Errorf("panel %q: a query with data source %q, refId %q, expr %q", p.Title, q.Datasource.UID, q.RefID, q.Expr)
			}
		}
	}
}
