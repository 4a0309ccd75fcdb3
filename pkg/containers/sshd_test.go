package containers

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

// renamedSource is a static program that names itself sshd (its comm, as
// ps and /proc/PID/comm show it) while its executable is /bin/renamed.
const renamedSource = `package main

import (
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

func init() { runtime.LockOSThread() } // comm is the main thread's

func main() {
	name := []byte("sshd\x00")
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0)
	time.Sleep(time.Hour)
}
`

// sshdImage builds an image whose /usr/sbin/sshd is busybox, with /bin/sleep
// a link to it (so `sleep` runs the sshd executable under the name sleep),
// and /bin/renamed, a program that calls itself sshd.
func sshdImage(t *testing.T) string {
	t.Helper()
	goBin := testenv.RequireCommand(t, "go")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(renamedSource), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(src, "renamed")
	build := exec.Command(goBin, "build", "-o", bin, "main.go")
	build.Dir, build.Env = src, append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the renamed program: %v: %s", err, out)
	}
	renamed, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("dockward-test-sshd:%d", os.Getpid())
	testenv.BuildImage(t, tag, "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY bin/busybox /usr/sbin/sshd\nCOPY renamed /bin/renamed\n"+
		"RUN [\"/bin/busybox\", \"ln\", \"-s\", \"/usr/sbin/sshd\", \"/bin/sleep\"]\n",
		testenv.ImageFile{Path: "renamed", Content: string(renamed)})
	return tag
}

func dockerRun(t *testing.T, img string, cmd ...string) string {
	t.Helper()
	args := append([]string{"run", "-d", "--label", "dockward.test=1", "--network", "none", img}, cmd...)
	id := strings.TrimSpace(testenv.Run(t, "docker", args...))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	return id
}

// TestEngineSSHD runs containers that really execute an sshd binary (CIS
// 5.7): one started as sshd is reported at start, matched by its executable
// although its name and argv say sleep; one whose process calls itself sshd
// is not; and one where sshd is started later by docker exec is reported
// at the next rescan, as no event tells of it.
func TestEngineSSHD(t *testing.T) {
	img := sshdImage(t)
	cfg := fastConfig()
	cfg.RescanInterval = 2 * time.Second
	h, p, _ := startBehindProxyWith(t, cfg)
	atStart := dockerRun(t, img, "/bin/sleep", "600")
	renamed := dockerRun(t, img, "/bin/renamed")
	later := dockerRun(t, img, "/bin/busybox", "sleep", "600")

	testenv.WaitFor(t, 10*time.Second, "sshd reported at start", func() bool { return h.rules(atStart)["container.sshd"] == "medium" })
	for _, f := range h.store.Open() {
		if f.Rule == "container.sshd" && f.Subject.ContainerID == atStart &&
			(f.Details["matched_by"] != "executable" || !strings.Contains(f.Details["processes"], "/usr/sbin/sshd")) {
			t.Errorf("sshd finding details %v, want the executable /usr/sbin/sshd", f.Details)
		}
	}
	if comm := testenv.Run(t, "docker", "top", renamed, "-o", "pid,comm"); !strings.Contains(comm, "sshd") {
		t.Fatalf("precondition: the renamed process's comm is not sshd: %s", comm)
	}
	testenv.WaitFor(t, 10*time.Second, "the other containers judged", func() bool {
		return h.findingCount(renamed) > 0 && h.findingCount(later) > 0
	})
	testenv.Run(t, "docker", "exec", "-d", later, "/bin/sleep", "600")
	testenv.WaitFor(t, 10*time.Second, "sshd started by exec reported at the rescan", func() bool {
		return h.rules(later)["container.sshd"] == "medium"
	})
	if got := h.rules(renamed)["container.sshd"]; got != "" {
		t.Errorf("a process merely named sshd is reported (%s)", got)
	}
	testenv.Run(t, "docker", "stop", "-t", "1", atStart)
	testenv.WaitFor(t, 10*time.Second, "sshd finding resolved when the container stops", func() bool {
		return h.rules(atStart)["container.sshd"] == ""
	})
	p.check(t)
}
