// Package metricref knows which metric names the agent exports, so that the
// alert rules and the dashboard can be checked against them: the names in
// the agent's golden /metrics output (cmd/agent/testdata/e2e-output.txt,
// recorded with every source on over a fixture host), plus the fixed names
// of the design's metric table, whose counters without a child yet (no
// Docker event of a kind, say) the golden file may lack.
package metricref

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// GoldenPath is the golden /metrics output, relative to the repository root.
var GoldenPath = filepath.Join("cmd", "agent", "testdata", "e2e-output.txt")

// Design lists the series of the design's metric table.
var Design = []string{
	"dockward_finding", "dockward_findings_opened_total", "dockward_findings_exempted",
	"dockward_containers", "dockward_docker_up", "dockward_docker_events_total",
	"dockward_docker_reconnects_total", "dockward_container_execs_total", "dockward_audit_up",
	"dockward_audit_events_total", "dockward_audit_kernel_lost_total", "dockward_audit_backlog",
	"dockward_audit_receive_errors_total", "dockward_file_changes_total", "dockward_build_info",
}

var sampleName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// Known returns every known metric name and whether the golden file was
// found under repoRoot.
func Known(repoRoot string) (map[string]bool, bool, error) {
	known := map[string]bool{}
	for _, m := range Design {
		known[m] = true
	}
	f, err := os.Open(filepath.Join(repoRoot, GoldenPath))
	if os.IsNotExist(err) {
		return known, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("opening golden metrics: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			if fs := strings.Fields(line); len(fs) >= 3 {
				known[fs[2]] = true
			}
			continue
		}
		if m := sampleName.FindString(line); m != "" {
			known[m] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("reading golden metrics: %w", err)
	}
	return known, true, nil
}

var dockwardName = regexp.MustCompile(`\bdockward_[a-z0-9_]+\b`)

// Used returns the dockward_ metric names a PromQL expression mentions.
func Used(expr string) []string { return dockwardName.FindAllString(expr, -1) }
