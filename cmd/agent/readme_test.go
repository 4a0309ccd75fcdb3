package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dockward/dockward/pkg/auditd/detect"
	"github.com/dockward/dockward/pkg/findings"
)

const (
	readmePath  = "../../README.md"
	tableBegin  = "<!-- BEGIN FINDINGS TABLE -->\n"
	tableEnd    = "<!-- END FINDINGS TABLE -->"
	readmeRegen = "go test ./cmd/agent -run Readme -update"
)

// findingsTable renders the rule catalogue as README's findings reference.
func findingsTable() string {
	var b strings.Builder
	b.WriteString("| rule | CIS | kind | default severity | title | remediation |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range findings.Rules() {
		cis := r.CIS
		if cis == "" {
			cis = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.ID, cis, r.Kind, r.Severity,
			mdCell(r.Title), mdCell(r.Remediation))
	}
	return b.String()
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
}

// coverageTable renders the check-to-rule mapping as README's CIS coverage.
func coverageTable() string {
	var b strings.Builder
	b.WriteString("| CIS | title | docker-bench | judged by |\n")
	b.WriteString("| --- | --- | --- | --- |\n")
	for _, c := range findings.Checks() {
		var by []string
		for _, r := range c.Rules {
			by = append(by, "`"+r+"`")
		}
		judged := strings.Join(by, ", ")
		switch {
		case c.Informational:
			judged += " (info: reported, not failed)"
		case c.Observed != "" && len(c.Rules) > 0:
			judged += "; observed by the " + c.Observed + " source: " + c.Manual
		case c.Observed != "":
			judged = "observed by the " + c.Observed + " source (info); in `scan`: manual. " + c.Manual
		case len(c.Rules) == 0:
			judged = "manual: " + c.Manual
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.ID, mdCell(c.Title), c.DockerBench, mdCell(judged))
	}
	return b.String()
}

// detectionsTable renders the detection catalogue as README's runtime
// detections reference.
func detectionsTable() string {
	var b strings.Builder
	b.WriteString("| detection | what the kernel reports | reported for | Falco rule it stands for |\n")
	b.WriteString("| --- | --- | --- | --- |\n")
	for _, d := range detect.Catalogue() {
		who, falco := "containers", d.Falco
		if d.HostToo {
			who = "containers and host processes"
		}
		if falco == "" {
			falco = "— (none)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", d.Name, mdCell(d.Reports()), who, mdCell(falco))
	}
	return b.String()
}

// README's runtime detections reference is the detection catalogue.
func TestReadmeDetectionsTable(t *testing.T) {
	checkReadmeBlock(t, "<!-- BEGIN DETECTIONS TABLE -->\n", "<!-- END DETECTIONS TABLE -->", detectionsTable(), "detect.Catalogue()")
}

// The findings reference in README.md is the catalogue; sources add and
// rename rules, and this keeps the README honest.
func TestReadmeFindingsTable(t *testing.T) {
	checkReadmeBlock(t, tableBegin, tableEnd, findingsTable(), "findings.Rules()")
}

// README's CIS coverage is the mapping in pkg/findings, check for check.
func TestReadmeCISCoverage(t *testing.T) {
	checkReadmeBlock(t, "<!-- BEGIN CIS COVERAGE -->\n", "<!-- END CIS COVERAGE -->", coverageTable(), "findings.Checks()")
}

// checkReadmeBlock compares the README between two markers with want, and
// rewrites it under -update.
func checkReadmeBlock(t *testing.T, begin, end, want, from string) {
	t.Helper()
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(begin), end)
	}
	got := readme[i+len(begin) : j]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md between %s and %s differs from %s; run: %s\n%s", strings.TrimSpace(begin), end, from, readmeRegen, lineDiff(got, want))
}

// Every dockward_* series the code defines is in README's metrics reference.
func TestReadmeListsEveryMetric(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	name := regexp.MustCompile(`"(dockward_[a-z0-9_]+)"`)
	for _, root := range []string{"../../pkg", "../../cmd", "../../internal"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range name.FindAllStringSubmatch(string(src), -1) {
				names[m[1]] = path
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 3 {
		t.Fatalf("found only %d metric names in the code; the scan is broken", len(names))
	}
	var missing []string
	for n, path := range names {
		if !strings.Contains(string(data), "`"+n+"`") {
			missing = append(missing, fmt.Sprintf("%s (defined in %s)", n, path))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("README.md's metrics reference lacks %s", m)
	}
}
