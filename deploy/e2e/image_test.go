package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// TestImageReportsPrivilegedContainer builds the image from the repository's
// Dockerfile the way `make image` does (binary first, then docker build with
// no network, so nothing can be pulled), runs it as the install guide says,
// and checks that the containerised agent reports a privileged container.
func TestImageReportsPrivilegedContainer(t *testing.T) {
	testenv.RequireRoot(t)
	busybox := testenv.RequireBusyboxImage(t)

	ctxDir := t.TempDir()
	buildAgent(t, ctxDir)
	root := repoRoot(t)
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		writeFile(t, ctxDir, f, string(data))
	}
	image := uniqueName("dockward-test-image") + ":e2e"
	docker(t, "build", "--network", "none", "--label", "dockward.test=1", "-t", image, ctxDir)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })

	// The image holds nothing but the binary.
	history := docker(t, "image", "inspect", "--format", "{{len .RootFS.Layers}} {{.Config.User}} {{json .Config.Entrypoint}}", image)
	if history != `1 0:0 ["/bin/dockward"]` {
		t.Errorf("image layers/user/entrypoint %q, want one layer with the binary, user 0:0, /bin/dockward", history)
	}

	fixture := uniqueName("dockward-e2e-privileged")
	createPrivileged(t, busybox, fixture)

	// The audit source is off here: this test is about the image and the
	// container findings, and must not take the host's audit daemon slot.
	cfgDir := t.TempDir()
	cfg := writeFile(t, cfgDir, "config.yml", "audit:\n  enabled: false\n")
	port := freePort(t)
	agent := uniqueName("dockward-e2e-agent")
	docker(t, "run", "-d", "--name", agent, "--label", "dockward.test=1",
		"-v", "/var/run/docker.sock:/var/run/docker.sock:ro",
		"-v", cfg+":/etc/dockward/config.yml:ro",
		"--pid", "host", "--network", "host",
		"--cap-drop", "ALL", "--cap-add", "AUDIT_CONTROL", "--cap-add", "AUDIT_READ", "--cap-add", "DAC_READ_SEARCH",
		"--read-only",
		image, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--config.file=/etc/dockward/config.yml")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "60", agent).CombinedOutput()
			t.Logf("--- containerised agent log ---\n%s", out)
		}
		_ = exec.Command("docker", "rm", "-f", agent).Run()
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	took := waitFor(t, 30*time.Second, "the containerised agent reports container.privileged for "+fixture, func() (bool, string) {
		if state := docker(t, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", agent); !strings.HasPrefix(state, "running") {
			t.Fatalf("the agent container is not running: %s", state)
		}
		code, body, err := httpGet(url)
		if err != nil || code != 200 {
			return false, fmt.Sprintf("GET %s: %d %v", url, code, err)
		}
		if line := findingLine(body, "container.privileged", fixture); line != "" {
			t.Logf("containerised agent: %s", line)
			return true, ""
		}
		return false, "no dockward_finding{rule=\"container.privileged\"} series for " + fixture
	})
	t.Logf("the containerised agent reported the privileged container after %s", took.Round(time.Millisecond))
}
