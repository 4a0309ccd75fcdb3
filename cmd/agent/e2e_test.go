package main

import (
	"bufio"
	"bytes"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/e2e-output.txt, README findings table)")

const goldenPath = "testdata/e2e-output.txt"

// TestEndToEndMetrics is the golden test in node_exporter's style: the real
// binary, on a fixture config with every machine-dependent source off, must
// serve /metrics within 1 s of start, and its deterministic series must
// match testdata/e2e-output.txt (go test ./cmd/agent -run EndToEnd -update
// rewrites it after an intended change).
func TestEndToEndMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "e2e.yml", allSourcesOff+`rules:
  container.no_healthcheck:
    severity: low
  container.cgroup_parent:
    disabled: true
`)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	resp, body := getUntil(t, http.DefaultClient, "http://"+a.Addr+"/metrics", a.Started.Add(time.Second))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics status %d:\n%s", resp.StatusCode, body)
	}
	if !bytes.Contains(body, []byte("dockward_build_info{")) {
		t.Fatalf("/metrics has no dockward_build_info:\n%s", body)
	}

	promtool := testenv.RequireCommand(t, "promtool")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics failed: %v\n%s", err, out)
	}

	got := normalizeMetrics(string(body))
	if *update {
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("reading %s (run with -update to create it): %v", goldenPath, err)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (after an intended change, e.g. a new rule: go test ./cmd/agent -run EndToEnd -update)\n%s",
			goldenPath, lineDiff(string(want), got))
	}
}

var (
	unstableFamily = regexp.MustCompile(`^(# (HELP|TYPE) )?(go_|process_|promhttp_)`)
	unstableLabel  = regexp.MustCompile(`(goversion|goos|goarch|tags)="[^"]*"`)
	// Series whose value is a time or a duration of this run.
	unstableValue = regexp.MustCompile(`^(dockward_config_last_reload_success_timestamp_seconds(\{[^}]*\})?) .*$`)
)

// normalizeMetrics drops the series that differ between runs or machines
// and blanks the labels and values that do.
func normalizeMetrics(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if unstableFamily.MatchString(line) {
			continue
		}
		line = unstableLabel.ReplaceAllString(line, `$1="X"`)
		line = unstableValue.ReplaceAllString(line, `$1 X`)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if g[l] < w[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if w[l] < g[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
