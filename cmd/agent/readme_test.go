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

// The findings reference in README.md is the catalogue; sources add and
// rename rules, and this keeps the README honest.
func TestReadmeFindingsTable(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(tableBegin), tableEnd)
	}
	got, want := readme[i+len(tableBegin):j], findingsTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(readme[:i+len(tableBegin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's findings table differs from findings.Rules(); run: %s\n%s", readmeRegen, lineDiff(got, want))
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
