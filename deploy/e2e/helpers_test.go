// Package e2e runs the shipped artifacts against real components: the
// container image with the real Docker Engine, and the agent with Debian's
// Prometheus and Alertmanager loading deploy/prometheus/alerts.yml.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// repoRoot is the dockward module, two levels above deploy/e2e.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "agent")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// buildAgent builds the static agent binary the way `make build` does, into
// dir/bin/dockward, and returns its path.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "bin", "dockward")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/agent")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, b)
	}
	return out
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// process is a background command whose output goes to a log file that is
// printed when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProcess(t *testing.T, dir, name string, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			p.dump(t)
		}
	})
	return p
}

// stop sends SIGTERM, so the agent restores what it changed, and kills the
// process if it does not exit in time.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) dump(t *testing.T) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	s := string(b)
	if len(s) > 6000 {
		s = "...\n" + s[len(s)-6000:]
	}
	t.Logf("--- %s log (%s) ---\n%s", p.name, p.log, s)
}

// httpGet fetches url and returns the status and body.
func httpGet(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond every 250 ms until it returns true or timeout passes,
// then fails with the last reason cond gave.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		last = why
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last state: %s", what, timeout, last)
	return 0
}

// docker runs the docker CLI and returns its trimmed output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(testenv.Run(t, "docker", args...))
}

// createPrivileged creates (does not start: --privileged may not start in
// every sandbox, and created containers are judged too) a privileged test
// container, removed when the test ends.
func createPrivileged(t *testing.T, image, name string) string {
	t.Helper()
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	return docker(t, "create", "--privileged", "--network", "none", "--label", "dockward.test=1",
		"--name", name, image, "sleep", "600")
}

// findingLine returns the dockward_finding series for rule and subject in
// a /metrics body, or "".
func findingLine(metrics, rule, subject string) string {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "dockward_finding{") &&
			strings.Contains(line, fmt.Sprintf(`rule="%s"`, rule)) &&
			strings.Contains(line, fmt.Sprintf(`subject="%s"`, subject)) {
			return line
		}
	}
	return ""
}

// chromiumDOM loads url in Debian's headless Chromium, isolated from
// everything but this machine, and returns the DOM it built.
func chromiumDOM(t *testing.T, url string) string {
	t.Helper()
	return string(testenv.Chromium(t, "--dump-dom", url))
}
