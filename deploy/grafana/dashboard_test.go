// Package grafana holds the tests of the Grafana dashboard: it parses, every
// query is valid PromQL, and every metric it queries exists.
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dockward/dockward/deploy/internal/metricref"
	"github.com/dockward/dockward/internal/testenv"
)

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	testenv.DecodeFile(t, "dockward.json", json.Unmarshal, &d)
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard lacks a title, uid or panels: %+v", d)
	}
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// queries returns every PromQL expression in the dashboard, keyed by where
// it is, for error messages.
func queries(d dashboard) map[string]string {
	out := map[string]string{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for i, a := range d.Annotations.List {
		if a.Expr != "" {
			out[fmt.Sprintf("annotation %d", i)] = a.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		q, ok := v.Query.(map[string]any)
		if !ok {
			continue
		}
		if s, _ := q["query"].(string); s != "" {
			if m := labelValues.FindStringSubmatch(s); m != nil {
				out["variable "+v.Name] = m[1]
			}
		}
	}
	return out
}

func TestDashboardQueriesKnownMetrics(t *testing.T) {
	d := load(t)
	known, haveGolden, err := metricref.Known(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !haveGolden {
		t.Fatalf("%s not found: the agent's golden /metrics output is what the queries are checked against", metricref.GoldenPath)
	}
	used := map[string]bool{}
	for where, expr := range queries(d) {
		for _, m := range metricref.Used(expr) {
			used[m] = true
			if !known[m] {
				t.Errorf("%s queries %s, which neither the golden /metrics output nor the design table has", where, m)
			}
		}
	}
	var names []string
	for m := range used {
		names = append(names, m)
	}
	sort.Strings(names)
	t.Logf("dashboard queries %d dockward metrics: %s", len(names), strings.Join(names, " "))
	if len(names) < 10 {
		t.Errorf("the dashboard queries only %d dockward metrics; expected the design's series", len(names))
	}
}

// Each query is checked as PromQL by loading it into promtool as a
// recording rule, with Grafana's variables replaced by plausible values.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	bin := testenv.RequireCommand(t, "promtool")
	d := load(t)
	repl := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$instance", ".+")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	qs := queries(d)
	keys := make([]string, 0, len(qs))
	for k := range qs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		expr, err := json.Marshal(repl.Replace(qs[k]))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      # %s\n      - record: dashboard:query_%d\n        expr: %s\n", k, i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query is not valid PromQL: %v\n%s\n%s", err, out, b.String())
	}
}

func TestDashboardHasRequiredPanels(t *testing.T) {
	d := load(t)
	want := map[string]*regexp.Regexp{
		"findings by severity":              regexp.MustCompile(`(?i)findings by severity`),
		"top rules":                         regexp.MustCompile(`(?i)top rules`),
		"containers with critical findings": regexp.MustCompile(`(?i)containers with critical findings`),
		"audit events by key and expected":  regexp.MustCompile(`(?i)audit events by key.*expected`),
		"tampering with audit":              regexp.MustCompile(`(?i)tampering with audit`),
		"loss":                              regexp.MustCompile(`(?i)loss`),
		"stream status":                     regexp.MustCompile(`(?i)stream status`),
		"image vulnerabilities":             regexp.MustCompile(`(?i)image vulnerabilities`),
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		for name, re := range want {
			if re.MatchString(p.Title) && len(p.Targets) > 0 {
				delete(want, name)
			}
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		// A hard-coded data source uid breaks the import on every other Grafana.
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q must use the ${datasource} variable, got %+v", p.Title, p.Datasource)
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q has an invalid gridPos %+v", p.Title, p.GridPos)
		}
	}
	for name := range want {
		t.Errorf("no panel for %s", name)
	}
}
