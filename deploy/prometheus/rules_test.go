// Package prometheus holds the tests of the alert rules and the scrape
// example in deploy/prometheus.
package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dockward/dockward/deploy/internal/metricref"
	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTests []struct {
			EvalTime  string           `yaml:"eval_time"`
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var rf ruleFile
	testenv.DecodeFile(t, "alerts.yml", yaml.Unmarshal, &rf)
	var out []rule
	for _, g := range rf.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.RequireCommand(t, "promtool")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := promtool(t, "check", "rules", "alerts.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules did not report success:\n%s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out := promtool(t, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report success:\n%s", out)
	}
}

func TestScrapeExampleIsValidConfig(t *testing.T) {
	out := promtool(t, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "valid prometheus config") {
		t.Fatalf("promtool check config:\n%s", out)
	}
}

// Every alert needs a case where it fires and one where it stays silent, or
// a broken expression could pass its tests by never matching (or always).
func TestEveryAlertHasFiringAndSilentCase(t *testing.T) {
	var tf testFile
	testenv.DecodeFile(t, "alerts_test.yml", yaml.Unmarshal, &tf)
	if len(tf.RuleFiles) != 1 || tf.RuleFiles[0] != "alerts.yml" {
		t.Fatalf("alerts_test.yml must test alerts.yml, got rule_files %v", tf.RuleFiles)
	}
	firing, silent := map[string]int{}, map[string]int{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTests {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname]++
			} else {
				silent[a.Alertname]++
			}
		}
	}
	known := map[string]bool{}
	for _, r := range loadRules(t) {
		known[r.Alert] = true
		if firing[r.Alert] == 0 {
			t.Errorf("%s has no promtool case where it fires", r.Alert)
		}
		if silent[r.Alert] == 0 {
			t.Errorf("%s has no promtool case where it stays silent", r.Alert)
		}
	}
	for name := range firing {
		if !known[name] {
			t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", name)
		}
	}
}

func TestAlertConventions(t *testing.T) {
	runbook, err := os.ReadFile(filepath.Join("..", "..", "docs", "runbook.md"))
	if err != nil {
		t.Fatalf("reading the runbook the alerts link to: %v", err)
	}
	anchors := markdownAnchors(string(runbook))
	const runbookPrefix = "https://github.com/dockward/dockward/blob/main/docs/runbook.md#"
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		if seen[r.Alert] {
			t.Errorf("%s is defined twice", r.Alert)
		}
		seen[r.Alert] = true
		if !regexp.MustCompile(`^Dockward[A-Z][A-Za-z]+$`).MatchString(r.Alert) {
			t.Errorf("%s: alert names are CamelCase starting with Dockward", r.Alert)
		}
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity label %q, want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: annotation %s is missing", r.Alert, a)
			}
		}
		if !strings.Contains(r.Annotations["description"], "{{") {
			t.Errorf("%s: description is not templated", r.Alert)
		}
		url := r.Annotations["runbook_url"]
		if !strings.HasPrefix(url, runbookPrefix) {
			t.Errorf("%s: runbook_url %q does not point into docs/runbook.md", r.Alert, url)
		} else if anchor := strings.TrimPrefix(url, runbookPrefix); !anchors[anchor] {
			t.Errorf("%s: docs/runbook.md has no heading for anchor #%s", r.Alert, anchor)
		}
	}
	for _, name := range []string{"DockwardDown", "DockwardDockerStreamDown", "DockwardAuditEventsLost",
		"DockwardDockerFileTampered", "DockwardAuditTampered", "DockwardBinaryChanged", "DockwardPrivilegedContainer",
		"DockwardContainerEscapeAttempt", "DockwardHostKernelModuleLoaded"} {
		if !seen[name] {
			t.Errorf("required alert %s is missing", name)
		}
	}
}

// A tamper event or a detection is a moment: waiting with for: would let
// it slip out of the increase() window before it fires.
func TestTamperAlertHasNoFor(t *testing.T) {
	found := 0
	for _, r := range loadRules(t) {
		switch r.Alert {
		case "DockwardDockerFileTampered", "DockwardAuditTampered", "DockwardContainerEscapeAttempt", "DockwardHostKernelModuleLoaded":
		default:
			continue
		}
		found++
		if r.For != "" {
			t.Errorf("%s has for: %s; an event alert must fire at once", r.Alert, r.For)
		}
		if !strings.Contains(r.Expr, "increase(") {
			t.Errorf("%s must alert on increase(), got %q", r.Alert, r.Expr)
		}
	}
	if found != 4 {
		t.Fatalf("found %d of the 4 event alerts (DockwardDockerFileTampered, DockwardAuditTampered, DockwardContainerEscapeAttempt, DockwardHostKernelModuleLoaded)", found)
	}
}

// Every rule whose default severity is critical or high must be covered by
// an alert, so a rule added to the catalogue cannot go unalerted unnoticed.
func TestEveryCriticalAndHighRuleIsAlerted(t *testing.T) {
	var exprs []string
	for _, r := range loadRules(t) {
		exprs = append(exprs, r.Expr)
	}
	ruleMatcher := regexp.MustCompile(`rule(=~|=)"([^"]+)"`)
	var missing []string
	for _, fr := range findings.Rules() {
		if !fr.Severity.AtLeast(findings.High) {
			continue
		}
		covered := false
		for _, e := range exprs {
			for _, m := range ruleMatcher.FindAllStringSubmatch(e, -1) {
				if m[1] == "=" && m[2] == fr.ID {
					covered = true
				}
				if m[1] == "=~" && regexp.MustCompile("^(?:"+m[2]+")$").MatchString(fr.ID) {
					covered = true
				}
			}
		}
		if !covered {
			missing = append(missing, fr.ID+" ("+fr.Severity.String()+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("critical/high rules without an alert in alerts.yml: %s", strings.Join(missing, ", "))
	}
}

// markdownAnchors returns GitHub's anchors for the headings of a Markdown file.
func markdownAnchors(md string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		out[b.String()] = true
	}
	return out
}

// Every metric an alert queries exists in the agent's golden /metrics
// output or the design's metric table, so a renamed series cannot leave an
// alert that silently never fires.
func TestAlertMetricsExist(t *testing.T) {
	known, haveGolden, err := metricref.Known(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !haveGolden {
		t.Fatalf("%s not found: the agent's golden /metrics output is what the queries are checked against", metricref.GoldenPath)
	}
	for _, r := range loadRules(t) {
		used := metricref.Used(r.Expr)
		if len(used) == 0 && !strings.Contains(r.Expr, "up{") {
			t.Errorf("%s queries no dockward metric: %s", r.Alert, r.Expr)
		}
		for _, m := range used {
			if !known[m] {
				t.Errorf("%s queries %s, which neither the golden /metrics output nor the design table has", r.Alert, m)
			}
		}
	}
}

// The alert table in README.md ("Alert routing") lists every alert
// with its severity and for:, as in alerts.yml.
func TestInstallGuideAlertTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	row := regexp.MustCompile(`(?m)^\| (Dockward\w+) \| (\w+) \| ([^|]+) \|`)
	table := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		table[m[1]] = [2]string{m[2], strings.TrimSpace(m[3])}
	}
	for _, r := range loadRules(t) {
		got, ok := table[r.Alert]
		if !ok {
			t.Errorf("README.md's alert table lacks %s", r.Alert)
			continue
		}
		wantFor := r.For
		if wantFor == "" {
			wantFor = "none"
		}
		if got[0] != r.Labels["severity"] || got[1] != wantFor {
			t.Errorf("README.md lists %s as %s/%s; alerts.yml has %s/%s", r.Alert, got[0], got[1], r.Labels["severity"], wantFor)
		}
		delete(table, r.Alert)
	}
	for name := range table {
		t.Errorf("README.md lists %s, which alerts.yml does not define", name)
	}
}
