package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/deploy/internal/readme"
	"github.com/dockward/dockward/internal/testenv"
)

// This file holds what the tests of the three documented container
// deployments (the README's docker run, the helm chart's DaemonSet pod and
// the Swarm stack) share: the image from `make image`, the agent's
// container and its log stream, and the proof that a write under the
// host's /etc/docker is detected and attributed.

// deploymentImage runs `make image` under a throwaway name and returns the
// image (name:e2e), removed with its :latest tag when the test ends.
func deploymentImage(t *testing.T) string {
	t.Helper()
	name := uniqueName("dockward-e2e-deploy")
	makeImage(t, name, "e2e")
	return name + ":e2e"
}

// makeImage runs `make image IMAGE=name IMAGE_TAG=tag` in the repository
// and removes both tags it makes when the test ends; it returns the output.
func makeImage(t *testing.T, name, tag string) string {
	t.Helper()
	testenv.RequireDocker(t)
	makeBin := testenv.RequireCommand(t, "make")
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", name+":"+tag, name+":latest").Run() })
	cmd := exec.Command(makeBin, "image", "IMAGE="+name, "IMAGE_TAG="+tag)
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	return string(out)
}

// installGuide returns the sh blocks of the README's Install guide heading.
func installGuide(t *testing.T, heading string) string {
	t.Helper()
	doc, err := readme.Read(testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	sh := readme.ShellBlocks(readme.Section(readme.Section(doc, "## Install"), heading))
	if sh == "" {
		t.Fatalf("README.md's Install section has no sh blocks under %q", heading)
	}
	return sh
}

// rootIsShared reports whether the host's / is a shared mount, which
// Docker needs for rslave propagation of a bind mount of /.
func rootIsShared(t *testing.T) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options optional... - fstype ...
		fields := strings.Fields(sc.Text())
		if len(fields) > 6 && fields[4] == "/" {
			for _, opt := range fields[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					return true
				}
			}
			return false
		}
	}
	return false
}

// requirePortFree fails when port is taken on the host: the deployments
// listen on the host network, and a stale agent there would answer for
// the one under test.
func requirePortFree(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("port %d is taken on the host (%v); the deployment under test listens there", port, err)
	}
	l.Close()
}

// agentContainer is the agent running in a container the test started.
type agentContainer struct {
	name string
	logs *testenv.LogBuffer // `docker logs -f`, restarted with each start
}

// runContainer runs `docker run args...` (args start with the run flags
// and name the container) and follows its log; the container is removed
// when the test ends.
func runContainer(t *testing.T, name string, args ...string) *agentContainer {
	t.Helper()
	c := &agentContainer{name: name}
	// Registered first: a failed docker run can still leave a created container.
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	t.Logf("docker run %s", strings.Join(args, " "))
	docker(t, append([]string{"run"}, args...)...)
	c.follow(t)
	return c
}

// follow streams the container's log (from its creation) into c.logs.
func (c *agentContainer) follow(t *testing.T) {
	t.Helper()
	c.logs = &testenv.LogBuffer{}
	cmd := exec.Command("docker", "logs", "-f", c.name)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("docker logs -f %s: %v", c.name, err)
	}
	go func() { _ = cmd.Wait() }()
	logs := c.logs
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			out := logs.String()
			if len(out) > 8000 {
				out = "...\n" + out[len(out)-8000:]
			}
			t.Logf("--- %s log ---\n%s", c.name, out)
		}
	})
}

// hostPID is the container's main process as the host sees it.
func (c *agentContainer) hostPID(t *testing.T) int {
	t.Helper()
	pid, err := strconv.Atoi(docker(t, "inspect", "--format", "{{.State.Pid}}", c.name))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitReady waits until GET base/readyz answers 200 while the container
// runs, and returns how long that took.
func (c *agentContainer) waitReady(t *testing.T, base string, timeout time.Duration) time.Duration {
	t.Helper()
	return testenv.WaitForState(t, timeout, c.name+" /readyz to answer 200", func() (bool, string) {
		if state := docker(t, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c.name); !strings.HasPrefix(state, "running") {
			t.Fatalf("the agent container %s is not running: %s", c.name, state)
		}
		code, body, err := httpGet(base + "/readyz")
		return err == nil && code == 200, fmt.Sprintf("%d %q %v", code, body, err)
	})
}

// hostWrite is a write under the host's /etc/docker made by the test.
type hostWrite struct {
	path, exe string
	pid       int
	at        time.Time // when the writer exited
}

// touchUnderEtcDocker creates a new file under the host's /etc/docker with
// touch; the file is removed when the test ends.
func touchUnderEtcDocker(t *testing.T) hostWrite {
	t.Helper()
	touch, err := exec.LookPath("touch")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := filepath.EvalSymlinks(touch)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("/etc/docker", uniqueName("dockward-e2e-write"))
	t.Cleanup(func() { _ = os.Remove(path) })
	cmd := exec.Command(touch, path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("touch %s: %v\n%s", path, err, out)
	}
	return hostWrite{path: path, exe: exe, pid: cmd.ProcessState.Pid(), at: time.Now()}
}

// hostWriteUnderEtcDocker makes a write under the host's /etc/docker and
// waits for the agent's log line for it, checking that it names the path
// and the actor (exe and pid). It returns how long the line took after the
// writer exited.
func hostWriteUnderEtcDocker(t *testing.T, logs *testenv.LogBuffer, timeout time.Duration) time.Duration {
	t.Helper()
	w := touchUnderEtcDocker(t)
	var line map[string]any
	testenv.WaitForState(t, timeout, fmt.Sprintf("the agent's log line for %s written by %s (pid %d)", w.path, w.exe, w.pid), func() (bool, string) {
		line = auditLine(logs.String(), w.path)
		return line != nil, "no audit log line with path " + w.path
	})
	took := time.Since(w.at)
	actor, _ := line["actor"].(map[string]any)
	if actor["exe"] != w.exe || actor["pid"] != float64(w.pid) {
		t.Errorf("the event's actor is %v, want exe %s pid %d", actor, w.exe, w.pid)
	}
	if line["key"] != "docker_etc" || line["level"] != "warn" {
		t.Errorf("the event is %v, want key docker_etc at warn", line)
	}
	t.Logf("write under the host's /etc/docker logged %s after touch exited: %v", took, line)
	return took
}

// auditLine returns the first JSON log line of the audit source whose
// path is path, or nil.
func auditLine(logs, path string) map[string]any {
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, path) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["source"] == "audit" && m["path"] == path {
			return m
		}
	}
	return nil
}

// requireAuditRestored fails when the kernel's audit settings or rules
// differ from before.
func requireAuditRestored(t *testing.T, before auditState, when string) {
	t.Helper()
	auditctl := testenv.RequireCommand(t, "auditctl")
	after := readAudit(t, auditctl)
	for key := range restoredStatus {
		if after.status[key] != before.status[key] {
			t.Errorf("%s: audit %s is %s, was %s", when, key, after.status[key], before.status[key])
		}
	}
	if strings.Join(after.rules, "\n") != strings.Join(before.rules, "\n") {
		t.Errorf("%s: audit rules are\n%s\nwere\n%s", when, strings.Join(after.rules, "\n"), strings.Join(before.rules, "\n"))
	}
}
