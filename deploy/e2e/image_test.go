package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

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
	placeAgent(t, ctxDir)
	root := testenv.RepoRoot(t)
	for _, f := range []string{"Dockerfile", ".dockerignore", containerConfig} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		if err := os.MkdirAll(filepath.Join(ctxDir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, ctxDir, f, string(data))
	}
	image := uniqueName("dockward-test-image") + ":e2e"
	docker(t, "build", "--network", "none", "--label", "dockward.test=1", "-t", image, ctxDir)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })

	// The image holds nothing but the binary and its container config.
	history := docker(t, "image", "inspect", "--format", "{{len .RootFS.Layers}} {{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}", image)
	if want := `2 0:0 ["/bin/dockward"] ["--web.listen-address=:9917","--config.file=/etc/dockward/config.yml"]`; history != want {
		t.Errorf("image layers/user/entrypoint/cmd %q, want %q", history, want)
	}

	fixture := uniqueName("dockward-e2e-privileged")
	createPrivileged(t, busybox, fixture)

	// The image's own config, with the audit source off: this test is about
	// the image and the container findings, and must not take the host's
	// audit daemon slot.
	shipped, err := os.ReadFile(filepath.Join(root, containerConfig))
	if err != nil {
		t.Fatal(err)
	}
	var cfgDoc map[string]map[string]any
	if err := yaml.Unmarshal(shipped, &cfgDoc); err != nil {
		t.Fatalf("parsing %s: %v", containerConfig, err)
	}
	cfgDoc["audit"]["enabled"] = false
	cfgYAML, err := yaml.Marshal(cfgDoc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, t.TempDir(), "config.yml", string(cfgYAML))
	addr := testenv.FreeAddr(t)
	agent := uniqueName("dockward-e2e-agent")
	// Registered first: a failed docker run can still leave a created container.
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "60", agent).CombinedOutput()
			t.Logf("--- containerised agent log ---\n%s", out)
		}
		_ = exec.Command("docker", "rm", "-f", agent).Run()
	})
	docker(t, "run", "-d", "--name", agent, "--label", "dockward.test=1",
		"-v", "/var/run/docker.sock:/var/run/docker.sock:ro",
		"-v", cfg+":/etc/dockward/config.yml:ro", "-v", "/:/host:ro",
		"--pid", "host", "--network", "host",
		"--cap-drop", "ALL", "--cap-add", "AUDIT_CONTROL", "--cap-add", "AUDIT_READ", "--cap-add", "DAC_READ_SEARCH",
		"--read-only",
		image, "--web.listen-address="+addr, "--config.file=/etc/dockward/config.yml")
	url := "http://" + addr + "/metrics"

	took := testenv.WaitForState(t, 30*time.Second, "the containerised agent reports container.privileged for "+fixture, func() (bool, string) {
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

	// The host source judges the host's files through /host.
	testenv.WaitForState(t, 30*time.Second, "the containerised agent's host source is ready", func() (bool, string) {
		_, body, err := httpGet(url)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(body, `dockward_source_ready{source="host"} 1`), "dockward_source_ready{source=\"host\"} is not 1"
	})
}

// containerConfig is the config the image ships, relative to the repository.
const containerConfig = "deploy/container/config.yml"

// TestMakeImage runs `make image` itself (under a throwaway image name) and
// checks that it produced a FROM scratch image of the binary and the
// container config, built with no network.
func TestMakeImage(t *testing.T) {
	testenv.RequireDocker(t)
	makeBin := testenv.RequireCommand(t, "make")
	image := uniqueName("dockward-test-make-image")
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image+":e2e", image+":latest").Run() })
	cmd := exec.Command(makeBin, "image", "IMAGE="+image, "IMAGE_TAG=e2e")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--network none") {
		t.Errorf("make image did not build with --network none:\n%s", out)
	}
	for _, tag := range []string{image + ":e2e", image + ":latest"} {
		got := docker(t, "image", "inspect", "--format", "{{len .RootFS.Layers}} {{json .Config.Entrypoint}}", tag)
		if want := `2 ["/bin/dockward"]`; got != want {
			t.Errorf("%s: layers/entrypoint %q, want %q", tag, got, want)
		}
	}
}
