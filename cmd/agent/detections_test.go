package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// Runtime detection tests run the real agent as the audit daemon (unicast)
// with its containers source, and containers that really try what each
// detection names. They hold the kernel audit lock for the agent's life,
// and check that auditctl -s and -l are as before once it has stopped.

const detectingConfig = `audit:
  mode: unicast
  status_interval: 200ms
host:
  enabled: false
`

// startDetectingAgent starts the agent in unicast mode and waits until
// every source is ready (the rules are installed by then).
func startDetectingAgent(t *testing.T) *testenv.Agent {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "auditctl")
	testenv.LockKernelAudit(t)
	testenv.WaitAuditPIDFree(t)
	testenv.ExpectKernelAuditRestored(t) // checked after the agent below has stopped
	cfg := writeFile(t, t.TempDir(), "detect.yml", detectingConfig)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	testenv.WaitForState(t, 30*time.Second, "the agent is ready", func() (bool, string) {
		if a.Exited() {
			t.Fatalf("the agent exited:\n%s", a.Logs.String())
		}
		resp, err := http.Get(a.URL("/readyz"))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	if rules := testenv.Run(t, "auditctl", "-l"); !strings.Contains(rules, "key=dockward_escape") {
		t.Fatalf("the detection rules are not installed:\n%s", rules)
	}
	return a
}

// detectionLines are the agent's "runtime detection" log lines so far.
func detectionLines(a *testenv.Agent) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(a.Logs.String(), "\n") {
		if !strings.Contains(l, `"runtime detection"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "runtime detection" {
			out = append(out, m)
		}
	}
	return out
}

// logTime parses a time the agent logged (zap's ISO8601).
func logTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", s)
	if err != nil {
		t.Fatalf("log time %q: %v", s, err)
	}
	return ts
}

// startContainer runs image detached with args before it, sleeping, and
// removes it when the test ends; it returns the full ID.
func startContainer(t *testing.T, name, image string, args ...string) string {
	t.Helper()
	run := append([]string{"run", "-d", "--network", "none", "--name", name, "-l", "dockward.test=1"}, args...)
	out := testenv.Run(t, "docker", append(run, image, "sleep", "300")...)
	id := strings.TrimSpace(out)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	if len(id) != 64 {
		t.Fatalf("docker run printed %q", out)
	}
	return id
}

// escapeCase is one attempt made with docker exec, and the detection it
// must give.
type escapeCase struct {
	name      string
	cmd       string // run with sh -c in the container
	detection string
	syscall   string // the detection line's syscall
	outcome   string
	arch      string // "" for x86_64
	detail    string // a substring of the detail field, when set
}

// The attempts, each named after the call it makes, plus the other syscall
// detections and the 32-bit ABI. Each attempt is the command docker exec's
// shell ends with (exec), as a one-shot exec is: a process that has exited
// is attributed through its parent, here the container's shim (a shell
// that ran it and exited within milliseconds would leave nothing to read;
// docs/audit.md says so).
func escapeCases(t *testing.T) []escapeCase {
	cases := []escapeCase{
		{"unshare", "unshare -m true", "namespace_change", "unshare", "success", "", "CLONE_NEWNS"},
		{"mount_tmpfs", "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t", "mount_in_container", "mount", "success", "", ""},
		{"nsenter", "nsenter -t 1 -m true", "namespace_change", "setns", "success", "", ""},
		{"ptrace_attach", "sleep 30 & exec /escape ptrace-attach $!", "ptrace_attach", "ptrace", "success", "", "PTRACE_ATTACH pid "},
		{"insmod_bogus", "echo bogus > /bogus.ko; insmod /bogus.ko", "kernel_module_load", "", "failure", "", ""},
		{"bpf_prog_load", "/escape bpf-prog-load", "bpf_prog_load", "bpf", "failure", "", "BPF_PROG_LOAD"},
		{"open_by_handle_at", "/escape open-by-handle", "open_by_handle_at", "open_by_handle_at", "failure", "", ""},
		{"kexec_load", "/escape kexec-load", "kexec_load", "kexec_load", "failure", "", ""},
		{"unshare_32bit", "/escape32 unshare", "namespace_change", "unshare", "success", "i386", "none"},
		{"ptrace_32bit", "sleep 30 & exec /escape32 ptrace-attach $!", "ptrace_attach", "ptrace", "success", "i386", "PTRACE_ATTACH"},
	}
	if sub := cgroupV1Hierarchy(t); sub != "" {
		cases = append(cases, escapeCase{"release_agent", "mkdir -p /cg && mount -t cgroup -o " + sub +
			" cgroup /cg && cat /cg/release_agent > /ra && cat /ra > /cg/release_agent",
			"release_agent_write", "", "success", "", ""})
	} else {
		t.Log("release_agent: skipped, this host mounts no cgroup v1 hierarchy (/sys/fs/cgroup/*/release_agent)")
	}
	return cases
}

// cgroupV1Hierarchy is the mount option of a cgroup v1 hierarchy the host
// mounts under /sys/fs/cgroup (memory when there is one), "" if none.
func cgroupV1Hierarchy(t *testing.T) string {
	files, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "memory" {
			return "memory"
		}
	}
	if len(files) == 0 {
		return ""
	}
	sub := filepath.Base(filepath.Dir(files[0]))
	if sub == "systemd" {
		return "none,name=systemd"
	}
	return sub
}

// TestContainerEscapeDetections makes each escape attempt from a container
// that may (SYS_ADMIN, SYS_MODULE, no seccomp filter: a seccomp-denied
// call never reaches audit) and expects its detection, naming the
// container, within 1 s of the call.
func TestContainerEscapeDetections(t *testing.T) {
	image := testenv.RequireEscapeImage(t)
	a := startDetectingAgent(t)
	hostAgent := readFileOr("/sys/fs/cgroup/memory/release_agent")
	t.Cleanup(func() {
		if got := readFileOr("/sys/fs/cgroup/memory/release_agent"); got != hostAgent {
			t.Errorf("the host's memory release_agent changed from %q to %q; restoring it", hostAgent, got)
			os.WriteFile("/sys/fs/cgroup/memory/release_agent", []byte(hostAgent), 0o644)
		}
	})
	name := fmt.Sprintf("dockward-escape-%d", time.Now().UnixNano())
	id := startContainer(t, name, image, "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_MODULE",
		"--security-opt", "seccomp=unconfined")
	for _, c := range escapeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			before := len(detectionLines(a))
			start := time.Now()
			out, _ := exec.Command("docker", "exec", id, "sh", "-c", c.cmd).CombinedOutput()
			done := time.Now()
			var line map[string]any
			found := testenv.Eventually(time.Second, func() bool {
				line = findDetection(detectionLines(a)[before:], c, id)
				return line != nil
			})
			if !found {
				t.Fatalf("no %s detection within 1 s of `%s` (output %q); detections since: %v",
					c.detection, c.cmd, out, detectionLines(a)[before:])
			}
			checkDetection(t, line, c, id, name, image, start)
			t.Logf("%s: log line %s after the call, %s after docker exec returned",
				c.detection, logTime(t, line["ts"]).Sub(logTime(t, line["event_time"])), time.Since(done).Round(time.Millisecond))
		})
	}
}

func readFileOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// findDetection is the first line of the case's detection by the
// container.
func findDetection(lines []map[string]any, c escapeCase, id string) map[string]any {
	for _, l := range lines {
		ctr, _ := l["container"].(map[string]any)
		if l["detection"] == c.detection && ctr["id"] == id[:12] && (c.syscall == "" || l["syscall"] == c.syscall) &&
			(c.arch == "" || l["arch"] == c.arch) {
			return l
		}
	}
	return nil
}

func checkDetection(t *testing.T, l map[string]any, c escapeCase, id, name, image string, start time.Time) {
	t.Helper()
	ctr, _ := l["container"].(map[string]any)
	actor, _ := l["actor"].(map[string]any)
	if ctr["name"] != name || ctr["image"] != image || l["origin"] != "container" || l["outcome"] != c.outcome {
		t.Errorf("detection line = %v, want container %s (%s, %s), outcome %s", l, id[:12], name, image, c.outcome)
	}
	if exe, _ := actor["exe"].(string); !strings.HasPrefix(exe, "/bin/busybox") && !strings.HasPrefix(exe, "/escape") {
		t.Errorf("actor = %v, want the container's busybox or escape payload", actor)
	}
	if detail, _ := l["detail"].(string); !strings.Contains(detail, c.detail) {
		t.Errorf("detail %q, want %q in it", detail, c.detail)
	}
	called := logTime(t, l["event_time"])
	if lat := logTime(t, l["ts"]).Sub(called); lat > time.Second || called.Before(start.Add(-time.Second)) {
		t.Errorf("logged %s after the call at %s (exec started %s), want within 1 s", lat, called, start)
	}
}

// TestRuntimeRoutineIsQuiet starts and stops 20 containers and runs docker
// exec in each: the runtime's own namespace and mount work is counted as
// routine, and nothing is a detection.
func TestRuntimeRoutineIsQuiet(t *testing.T) {
	image := testenv.RequireBusyboxImage(t)
	a := startDetectingAgent(t)
	for i := 0; i < 20; i++ {
		id := startContainer(t, fmt.Sprintf("dockward-quiet-%d-%d", i, time.Now().UnixNano()), image)
		testenv.Run(t, "docker", "exec", id, "true")
		testenv.Run(t, "docker", "exec", id, "sh", "-c", "echo routine")
		testenv.Run(t, "docker", "stop", "-t", "1", id)
		testenv.Run(t, "docker", "rm", id)
	}
	time.Sleep(time.Second) // the last events' way through the agent
	for _, l := range detectionLines(a) {
		actor, _ := l["actor"].(map[string]any)
		exe, _ := actor["exe"].(string)
		if l["origin"] == "container" || isRuntime(exe) {
			t.Errorf("the runtime's work gave a detection: %v", l)
		} else {
			t.Logf("a host process's detection (not this test's): %v", l)
		}
	}
	resp, body := getUntil(t, http.DefaultClient, a.URL("/metrics"), time.Now().Add(5*time.Second))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	// runc's init stage is in the container's cgroup (an expected actor)
	// or, before it joins it or once it has exited, a host process: how
	// the events split between the two depends on timing, their sum not.
	for _, det := range []string{"mount_in_container", "namespace_change"} {
		series := `dockward_runtime_routine_events_total{detection="` + det + `",reason=`
		expected := metricValue(string(body), series+`"expected_actor"} `)
		host := metricValue(string(body), series+`"host_process"} `)
		t.Logf("%s: %v routine events by expected actors, %v by host processes", det, expected, host)
		if expected == 0 || expected+host < 40 {
			t.Errorf("%s: %v + %v routine events: the rules did not see the runtime's work of 20 containers", det, expected, host)
		}
	}
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "dockward_runtime_detections_total{") && strings.Contains(l, `origin="container"`) && !strings.HasSuffix(l, " 0") {
			t.Errorf("container detections counted: %s", l)
		}
	}
}

func isRuntime(exe string) bool {
	switch filepath.Base(strings.TrimSuffix(exe, " (deleted)")) {
	case "dockerd", "containerd", "runc", "containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2",
		"fuse-overlayfs", "fusermount3", "docker-init", "docker-proxy":
		return true
	}
	return exe == "/"
}

// metricValue is the value of the sample line starting with series, -1
// when it is absent.
func metricValue(body, series string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return -1
}
