package watcher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/dockward/dockward/internal/testenv"
)

// dockerInfoCLI is the part of `docker info --format '{{json .}}'` the
// daemon rules depend on, decoded independently of the client library.
type dockerInfoCLI struct {
	Debug              bool
	Driver             string
	LoggingDriver      string
	LiveRestoreEnabled bool
	ExperimentalBuild  bool
	SecurityOptions    []string
	Plugins            struct{ Authorization []string }
	RegistryConfig     struct {
		InsecureRegistryCIDRs []string
		IndexConfigs          map[string]struct{ Secure bool }
	}
}

// TestRealDaemon judges this machine's dockerd through GET /info and checks
// each /info-based result against what the docker CLI reports.
func TestRealDaemon(t *testing.T) {
	testenv.RequireDocker(t)
	testenv.RequireRoot(t) // reading dockerd's /proc entries
	out := testenv.Run(t, "docker", "info", "--format", "{{json .}}")
	var cli dockerInfoCLI
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("decoding docker info: %v\n%s", err, out)
	}
	h := newHarness(t, &tree{t: t, root: "/"}, realDocker(t))
	fs := h.scan()
	got := map[string]bool{}
	for _, f := range fs {
		if f.Subject.Kind == "daemon" {
			got[f.Rule] = true
		}
	}
	if h.errorCount(reasonDockerInfo) != 0 {
		t.Fatalf("GET /info failed against the real daemon")
	}

	userns, seccompDefault := false, false
	for _, o := range cli.SecurityOptions {
		userns = userns || o == "name=userns"
		seccompDefault = seccompDefault || strings.HasPrefix(o, "name=seccomp,profile=default") || strings.HasPrefix(o, "name=seccomp,profile=builtin")
	}
	insecure := false
	for _, idx := range cli.RegistryConfig.IndexConfigs {
		insecure = insecure || !idx.Secure
	}
	for _, cidr := range cli.RegistryConfig.InsecureRegistryCIDRs {
		insecure = insecure || (cidr != "127.0.0.0/8" && cidr != "::1/128")
	}
	want := map[string]bool{
		"daemon.live_restore_off":  !cli.LiveRestoreEnabled,
		"daemon.aufs_driver":       cli.Driver == "aufs",
		"daemon.local_log_driver":  isLocalLogDriver(cli.LoggingDriver),
		"daemon.experimental":      cli.ExperimentalBuild,
		"daemon.no_authz_plugin":   len(cli.Plugins.Authorization) == 0,
		"daemon.no_userns_remap":   !userns,
		"daemon.seccomp_profile":   !seccompDefault,
		"daemon.insecure_registry": insecure,
	}
	if cli.Debug {
		want["daemon.log_level"] = true
	}
	icc := strings.TrimSpace(testenv.Run(t, "docker", "network", "inspect", "bridge", "--format",
		`{{index .Options "com.docker.network.bridge.enable_icc"}}`))
	if v, err := strconv.ParseBool(icc); err == nil {
		want["daemon.icc_enabled"] = v
	}
	for rule, w := range want {
		if got[rule] != w {
			t.Errorf("%s: dockward says %v, docker info says %v", rule, got[rule], w)
		}
	}
	t.Logf("daemon findings on this host: %v", keysOf(got))

	// The PID found through the pid file and the socket is the daemon's.
	if data, err := os.ReadFile("/var/run/docker.pid"); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid != h.src.DockerdPID() {
			t.Errorf("DockerdPID() = %d, pid file says %d", h.src.DockerdPID(), pid)
		}
	}
	if h.src.DockerdPID() == 0 {
		t.Error("the running dockerd was not found")
	}
	// Docker's binaries were hashed into the baseline.
	data, err := os.ReadFile(filepath.Join(h.cfg.StateDir, baselineFile))
	if err != nil || !strings.Contains(string(data), "dockerd") {
		t.Errorf("baseline has no dockerd: %v %s", err, data)
	}
}

// realDocker is a client of the test engine, closed when the test ends.
func realDocker(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}
