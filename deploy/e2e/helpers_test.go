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
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// TestMain removes the agent binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

// placeAgent puts the agent binary the tests build at dir/bin/dockward,
// where the image's Dockerfile takes it from, and returns that path.
func placeAgent(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(testenv.AgentBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bin", "dockward")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
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

// startIn starts bin with args as name, in dir, until the test ends.
func startIn(t *testing.T, dir, name, bin string, args ...string) *testenv.Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	return testenv.StartProcess(t, name, cmd)
}

// requireSeries checks that the agent at base exports each series, whole
// lines of its /metrics ("name{labels} value"); on a miss it shows the
// lines of the families named by show.
func requireSeries(t *testing.T, base string, series []string, show ...string) {
	t.Helper()
	_, metrics, err := httpGet(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range series {
		if !strings.Contains(metrics, "\n"+want+"\n") {
			t.Errorf("the agent's /metrics lack %s:\n%s", want, testenv.GrepLines(metrics, show...))
		}
	}
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
