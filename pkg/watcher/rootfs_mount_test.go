package watcher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// TestJudgesHostThroughReadOnlyMount mounts this machine's / read-only at a
// prefix, as a container's /host mount would be, in a private mount
// namespace, and checks that judging through the prefix gives exactly the
// findings of judging / directly, with no scan errors.
func TestJudgesHostThroughReadOnlyMount(t *testing.T) {
	if prefix := os.Getenv("DOCKWARD_ROOTFS_PREFIX"); prefix != "" {
		rootfsChild(t, prefix)
		return
	}
	testenv.RequireRoot(t)
	testenv.RequireDocker(t)
	unshare := testenv.RequireCommand(t, "unshare")
	dir := t.TempDir()
	mnt := filepath.Join(dir, "host")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("mount --rbind / %[1]s && mount -o remount,bind,ro %[1]s && exec \"$0\" \"$@\"", mnt)
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script,
		os.Args[0], "-test.run=^TestJudgesHostThroughReadOnlyMount$", "-test.v")
	cmd.Env = append(os.Environ(), "DOCKWARD_ROOTFS_PREFIX="+mnt, "DOCKWARD_ROOTFS_STATE="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("judging through a read-only mount failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ROOTFS-OK") {
		t.Fatalf("child did not report:\n%s", out)
	}
	t.Logf("%s", out)
}

func rootfsChild(t *testing.T, prefix string) {
	if err := os.WriteFile(filepath.Join(prefix, "tmp", "dockward-write-probe"), nil, 0o600); err == nil {
		t.Fatalf("the mount at %s is writable; the test needs it read-only", prefix)
	}
	c, err := client.New(client.WithHost("unix://" + testenv.DockerSocket()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	state := os.Getenv("DOCKWARD_ROOTFS_STATE")
	direct := newHarness(t, &tree{t: t, root: "/"}, c, func(cfg *Config) { cfg.StateDir = state + "/direct" })
	viaMount := newHarness(t, &tree{t: t, root: prefix}, c, func(cfg *Config) { cfg.StateDir = state + "/mounted" })
	want, got := summary(direct.scan()), summary(viaMount.scan())
	if want != got {
		t.Fatalf("findings differ\n/ gives:\n%s\n%s gives:\n%s", want, prefix, got)
	}
	for _, r := range allReasons {
		if n := viaMount.errorCount(r); n != 0 {
			t.Errorf("scan error %s = %v through the mount", r, n)
		}
	}
	if direct.src.DockerdPID() == 0 || viaMount.src.DockerdPID() != direct.src.DockerdPID() {
		t.Errorf("dockerd PID %d through the mount, %d directly", viaMount.src.DockerdPID(), direct.src.DockerdPID())
	}
	a, b := baselinePaths(direct), baselinePaths(viaMount)
	if len(a) == 0 || strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("binaries hashed: %v directly, %v through the mount", a, b)
	}
	fmt.Printf("findings through the mount:\n%s\nROOTFS-OK\n", got)
}

func summary(fs []findings.Finding) string {
	var lines []string
	for _, f := range fs {
		lines = append(lines, f.Rule+" "+f.Subject.Name+" "+f.CIS+" "+f.Remediation)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func baselinePaths(h *harness) []string {
	var out []string
	for p := range h.src.s.baseline.get().Binaries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
