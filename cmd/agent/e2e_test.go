package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd"
	"github.com/dockward/dockward/pkg/findings"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/e2e-output.txt, README findings table)")

const goldenPath = "testdata/e2e-output.txt"

// e2eConfig runs every source over the fixture host: containers against
// the fake engine, host over the fixture tree (rootfs), audit in file mode
// over the fixture log, read from its start, images over the fake engine's
// image list with cached inventories, an offline OSV zip and a fixture
// /proc for the running container. Backstop rescans and status
// polls are an hour apart, so the output depends on the fixtures alone.
const e2eConfig = `rootfs: %s
containers:
  enabled: true
audit:
  enabled: true
  mode: file
  log_file: %s
  log_file_from_start: true
  reassembly_timeout: 100ms
  status_interval: 1h
  rule_check_interval: 1h
host:
  enabled: true
  state_dir: %s
  rescan_interval: 1h
images:
  enabled: true
  cache_dir: %s
  proc_dir: %s
vulns:
  db:
    offline: true
    dir: %s
rules:
  container.no_healthcheck:
    severity: low
  container.cgroup_parent:
    disabled: true
`

// startE2EAgent builds the fixture host and engine and starts the agent on
// them. It runs in a PID namespace of its own: the kernel answers no audit
// netlink request from there, so file mode cannot read this machine's
// kernel rules or status, as in a container without the host's PID
// namespace.
func startE2EAgent(t *testing.T) *testenv.Agent {
	t.Helper()
	testenv.RequireRoot(t) // the fixture's owners and the PID namespace
	dir := t.TempDir()
	root := filepath.Join(dir, "host")
	buildHost(t, root, fixtureHost())
	auditLog := filepath.Join(root, "var/log/audit/audit.log")
	buildHost(t, root, []hostEntry{{path: "/var/log/audit/audit.log", mode: 0o600, data: string(testenv.ReadFile(t, "testdata/e2e/audit.log"))}})
	stateDir := filepath.Join(dir, "state")
	fixtureBaseline(t, stateDir)
	engine := recordedEngine(t)
	cacheDir, vulnsDir, procDir := fixtureImages(t, dir, engine)
	cfg := writeFile(t, dir, "e2e.yml", fmt.Sprintf(e2eConfig, root, auditLog, stateDir, cacheDir, procDir, vulnsDir))
	cmd, addr := testenv.AgentCommand(t, nil, "--"+flagConfigFile+"="+cfg,
		"--"+flagDockerHost+"="+startFakeEngine(t, engine))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	return &testenv.Agent{Process: testenv.StartProcess(t, "dockward", cmd), Addr: addr}
}

// settledMetrics scrapes /metrics until every source is ready and the
// normalized output is the same three times in a row, 300 ms apart (the
// sources judge the fixtures once; nothing changes after that).
func settledMetrics(t *testing.T, a *testenv.Agent) (raw []byte, normalized string) {
	t.Helper()
	same := 0
	testenv.WaitForState(t, 30*time.Second, "every source ready and /metrics settled", func() (bool, string) {
		resp, body := getUntil(t, http.DefaultClient, a.URL(pathReady), time.Now().Add(5*time.Second))
		if resp.StatusCode != http.StatusOK {
			same = 0
			return false, fmt.Sprintf("/readyz %d: %s", resp.StatusCode, body)
		}
		time.Sleep(300 * time.Millisecond)
		_, body = getUntil(t, http.DefaultClient, a.URL("/metrics"), time.Now().Add(5*time.Second))
		if n := normalizeMetrics(string(body)); n == normalized {
			same++
		} else {
			raw, normalized, same = body, n, 1
		}
		return same >= 3, fmt.Sprintf("%d identical scrapes", same)
	})
	return raw, normalized
}

// TestEndToEndMetrics is the golden test in node_exporter's style: the real
// binary, with every source on over a fixture host (see startE2EAgent),
// must serve /metrics within 1 s of start, and once it has judged the
// fixtures its deterministic series must match testdata/e2e-output.txt (go
// test ./cmd/agent -run EndToEnd -update rewrites it after an intended
// change).
func TestEndToEndMetrics(t *testing.T) {
	a := startE2EAgent(t)
	resp, body := getUntil(t, http.DefaultClient, a.URL("/metrics"), a.Started.Add(time.Second))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics status %d:\n%s", resp.StatusCode, body)
	}
	if !bytes.Contains(body, []byte("dockward_build_info{")) {
		t.Fatalf("/metrics has no dockward_build_info:\n%s", body)
	}
	body, got := settledMetrics(t, a)

	promtool := testenv.RequireCommand(t, "promtool")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics failed: %v\n%s", err, out)
	}
	compareGolden(t, got)
	checkE2EReasons(t, a)
}

// checkE2EReasons checks that the report says why the checks the golden
// file shows as manual are: the kernel refuses this PID namespace its
// rules (the watch checks), and the config disables 5.25's rule.
func checkE2EReasons(t *testing.T, a *testenv.Agent) {
	t.Helper()
	_, body := getUntil(t, http.DefaultClient, a.URL(pathCISAPI), time.Now().Add(5*time.Second))
	var rep findings.Compliance
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("%s: %v\n%s", pathCISAPI, err, body)
	}
	for _, r := range rep.Results() {
		want := ""
		switch {
		case r.Observed == auditd.Name:
			want = "only in the host's initial PID namespace"
		case r.ID == "5.25":
			want = "the config disables container.cgroup_parent"
		default:
			continue
		}
		if r.Status != findings.StatusManual || !strings.Contains(r.Note, want) {
			t.Errorf("%s: %s %q, want manual saying %q", r.ID, r.Status, r.Note, want)
		}
	}
}

// compareGolden diffs got against the golden file, or rewrites it with
// -update.
func compareGolden(t *testing.T, got string) {
	t.Helper()
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
	unstableValue = regexp.MustCompile(`^(dockward_[a-z_]*_(timestamp|duration|age)_seconds(\{[^}]*\})?) .*$`)
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
