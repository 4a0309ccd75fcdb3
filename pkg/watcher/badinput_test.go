package watcher

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/dockward/dockward/internal/testenv"
)

func TestBadDaemonJSONIsAFindingAndAnError(t *testing.T) {
	cases := map[string][]byte{
		"truncated":      []byte("{\n  \"icc\": false,\n  \"log-level\": \"in"),
		"trailing comma": []byte("{\n  \"icc\": false,\n}\n"),
		"10 MB":          append([]byte(`{"labels": ["`), append(bytes.Repeat([]byte("x"), 10<<20), `"]}`...)...),
		"binary":         {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0xff, 0xfe, 0x00, 0x01},
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			tr := newTree(t).minimalHost()
			tr.write("/etc/docker/daemon.json", 0o644, string(content))
			h := newHarness(t, tr, nil)
			f, ok := find(h.scan(), "daemon.config_invalid", "dockerd")
			if !ok {
				t.Fatal("no daemon.config_invalid finding")
			}
			if f.Details["error"] == "" || !strings.Contains(f.Message, "/etc/docker/daemon.json") {
				t.Errorf("finding does not carry the error and path: %q %v", f.Message, f.Details)
			}
			if name != "10 MB" && (f.Details["line"] == "" || f.Details["column"] == "") {
				t.Errorf("no position in %v", f.Details)
			}
			if got := h.errorCount(reasonDaemonJSON); got != 1 {
				t.Errorf("dockward_host_scan_errors_total{reason=%q} = %v, want 1", reasonDaemonJSON, got)
			}
			// Fixing the file resolves the finding.
			tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false}`)
			if _, ok := find(h.scan(), "daemon.config_invalid", "dockerd"); ok {
				t.Error("finding not resolved after the file was fixed")
			}
		})
	}
}

func TestSymlinkLoops(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.symlink("/etc/docker/daemon.json", "/etc/docker/loop-a")
	tr.symlink("/etc/docker/loop-a", "/etc/docker/loop-b")
	tr.symlink("/etc/docker/loop-b", "/etc/docker/daemon.json")
	tr.symlink("/etc/default/docker", "/etc/default/docker") // points at itself
	tr.mkdir("/etc/docker/certs.d/reg", 0o755)
	tr.symlink("/etc/docker/certs.d/reg/up", "/etc/docker/certs.d") // a directory loop the walk must not follow
	h := newHarness(t, tr, nil)
	fs := h.scan()
	f, ok := find(fs, "daemon.config_invalid", "dockerd")
	if !ok || !strings.Contains(f.Details["error"], "symlink loop") {
		t.Errorf("daemon.json loop: finding %v, error %q", ok, f.Details["error"])
	}
	if got := h.errorCount(reasonSymlinkLoop); got < 2 {
		t.Errorf("dockward_host_scan_errors_total{reason=\"symlink_loop\"} = %v, want >= 2 (daemon.json, /etc/default/docker)", got)
	}
	// The other files are still judged.
	if len(rulesOf(fs, "/lib/systemd/system/docker.service")) != 0 {
		t.Error("unexpected findings for a compliant unit")
	}
}

// TestUnreadablePaths runs a scan as nobody (a child process), so that
// /etc/docker cannot be read: the scan must count and log the error and go
// on, not crash.
func TestUnreadablePaths(t *testing.T) {
	if root := os.Getenv("DOCKWARD_UNREADABLE_ROOT"); root != "" {
		unreadableChild(t, root)
		return
	}
	testenv.RequireRoot(t)
	tr := newTree(t).minimalHost()
	tr.fakeUnixTable(map[uint64]string{3542: "/run/docker.sock"})
	tr.fakeProc(1426, 1, []string{"/usr/sbin/dockerd", "-H", "fd://"}, nil, 3542)
	tr.write("/var/run/docker.pid", 0o644, "1426")
	tr.mkdir("/etc/docker", 0o700)
	// t.TempDir makes 0700 directories; nobody must reach the tree and the
	// test binary (the go build cache is private too).
	for _, d := range []string{filepath.Dir(tr.root), tr.root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	binDir := t.TempDir()
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "watcher.test")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnreadablePaths$", "-test.v")
	cmd.Env = append(os.Environ(), "DOCKWARD_UNREADABLE_ROOT="+tr.root, "DOCKWARD_UNREADABLE_STATE="+state, "CI=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scan as nobody failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "UNREADABLE-OK") {
		t.Fatalf("child did not report:\n%s", out)
	}
}

func unreadableChild(t *testing.T, root string) {
	h := newHarness(t, &tree{t: t, root: root}, nil, func(c *Config) { c.StateDir = os.Getenv("DOCKWARD_UNREADABLE_STATE") + "/state" })
	fs := h.scan()
	if h.src.DockerdPID() != 1426 {
		t.Fatalf("dockerd not found through its pid file: %d", h.src.DockerdPID())
	}
	// dockerd is seen but its daemon.json cannot be read: its defaults say
	// nothing about what the file sets, so nothing is judged from them.
	for _, f := range fs {
		if f.Subject.Kind == "daemon" {
			t.Errorf("daemon judged without its daemon.json: %s (%s)", f.Rule, f.Details["setting_source"])
		}
	}
	if got := h.errorCount(reasonUnreadable); got < 1 {
		t.Fatalf("dockward_host_scan_errors_total{reason=\"unreadable\"} = %v, want >= 1", got)
	}
	lines := h.logs.FilterMessage("cannot judge path").FilterField(zap.String("path", "/etc/docker/daemon.json")).All()
	if len(lines) != 1 {
		t.Fatalf("want one log line for the unreadable daemon.json, got %d: %v", len(lines), h.logs.All())
	}
	h.scan() // a rescan counts again but does not log again
	if n := h.logs.FilterMessage("cannot judge path").FilterField(zap.String("path", "/etc/docker/daemon.json")).Len(); n != 1 {
		t.Fatalf("the unreadable path was logged %d times after two scans, want once", n)
	}
	fmt.Println("UNREADABLE-OK")
}
