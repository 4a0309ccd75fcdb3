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
// and checks that the containerised agent reports a privileged container
// and sees the host's files under /host, through the host's absolute
// /var/run -> /run link (Debian's layout, this machine's) too.
func TestImageReportsPrivilegedContainer(t *testing.T) {
	testenv.RequireRoot(t)
	busybox := testenv.RequireBusyboxImage(t)
	image := buildImage(t)

	fixture := uniqueName("dockward-e2e-privileged")
	createPrivileged(t, busybox, fixture)
	// Multicast mode reads only, but its rule coverage depends on the
	// kernel's rules: no other test may change them meanwhile, and the
	// kernel's audit state must be as found.
	testenv.LockKernelAudit(t)
	guardAudit(t)
	agent, url := runImage(t, image, imageTestConfig(t))

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
	checkHostThroughVarRun(t, url)
}

// buildImage builds the image from a context holding only the binary, the
// Dockerfile and the container config, and checks its shape.
func buildImage(t *testing.T) string {
	t.Helper()
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
	return image
}

// imageTestConfig is the image's own config with the audit source in
// multicast mode: read-only next to whatever holds the audit PID, so the
// test never takes the host's audit daemon slot, while the source still
// resolves its watches under /host and judges their rule coverage.
func imageTestConfig(t *testing.T) string {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), containerConfig))
	if err != nil {
		t.Fatal(err)
	}
	var cfgDoc map[string]any
	if err := yaml.Unmarshal(shipped, &cfgDoc); err != nil {
		t.Fatalf("parsing %s: %v", containerConfig, err)
	}
	if cfgDoc["rootfs"] != "/host" {
		t.Fatalf("%s: rootfs %v, want /host where the install guide mounts the host's /", containerConfig, cfgDoc["rootfs"])
	}
	cfgDoc["audit"] = map[string]any{"mode": "multicast"}
	cfgYAML, err := yaml.Marshal(cfgDoc)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "config.yml", string(cfgYAML))
}

// runImage runs the image as the install guide says, with cfg as its
// config, and returns its container name and /metrics URL.
func runImage(t *testing.T, image, cfg string) (agent, url string) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	agent = uniqueName("dockward-e2e-agent")
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
	return agent, "http://" + addr + "/metrics"
}

// checkHostThroughVarRun: this host's /var/run is an absolute link to /run,
// which inside the container leads to the container's own (empty) /run
// unless the agent resolves it under /host. Both sources must see the
// Docker socket and dockerd's containerd socket through it.
func checkHostThroughVarRun(t *testing.T, url string) {
	t.Helper()
	if target, err := os.Readlink("/var/run"); err != nil || target != "/run" {
		t.Fatalf("this host's /var/run is not the absolute link to /run the test needs (readlink: %q, %v)", target, err)
	}
	_, body, err := httpGet(url)
	if err != nil {
		t.Fatal(err)
	}
	// The host source judges the sockets by the names dockerd and
	// containerd bound them with (/proc/net/unix), under /var/run.
	for _, p := range append([]string{"/var/run/docker.sock"}, hostContainerdSockets(t)...) {
		if series := fmt.Sprintf(`dockward_file_changes_total{path=%q}`, p); !strings.Contains(body, series) {
			t.Errorf("the containerised host source does not judge %s, which exists on the host (no %s)", p, series)
		}
	}
	// The audit source watches dockerd's containerd socket where it really
	// is, and sees that it exists: with no kernel rule on it, the rule
	// coverage check reports it.
	const sock = "/run/docker/containerd/containerd.sock"
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("%s: %v; the test expects dockerd's own containerd, as on this host", sock, err)
	}
	if rules := testenv.Run(t, "auditctl", "-l"); strings.Contains(rules, sock) {
		t.Fatalf("a kernel audit rule covers %s, so coverage cannot show the watch; rules:\n%s", sock, rules)
	}
	testenv.WaitForState(t, 30*time.Second, "the containerised audit source watches "+sock, func() (bool, string) {
		_, body, err := httpGet(url)
		if err != nil {
			return false, err.Error()
		}
		return findingLine(body, "audit.watch_missing", sock) != "", "no audit.watch_missing finding for " + sock
	})
}

// hostContainerdSockets lists the listening containerd sockets this host's
// /proc/net/unix names under /var/run.
func hostContainerdSockets(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && f[3] == "00010000" && strings.HasPrefix(f[7], "/var/run/") && filepath.Base(f[7]) == "containerd.sock" {
			out = append(out, f[7])
		}
	}
	if len(out) == 0 {
		t.Fatal("no containerd socket listens under /var/run on this host; the test expects dockerd's own containerd")
	}
	return out
}

// containerConfig is the config the image ships, relative to the repository.
const containerConfig = "deploy/container/config.yml"

// TestMakeImage runs `make image` itself (under a throwaway image name) and
// checks that it produced a FROM scratch image of the binary and the
// container config, built with no network.
func TestMakeImage(t *testing.T) {
	image := uniqueName("dockward-test-make-image")
	out := makeImage(t, image, "e2e")
	if !strings.Contains(out, "--network none") {
		t.Errorf("make image did not build with --network none:\n%s", out)
	}
	for _, tag := range []string{image + ":e2e", image + ":latest"} {
		got := docker(t, "image", "inspect", "--format", "{{len .RootFS.Layers}} {{json .Config.Entrypoint}}", tag)
		if want := `2 ["/bin/dockward"]`; got != want {
			t.Errorf("%s: layers/entrypoint %q, want %q", tag, got, want)
		}
	}
}
