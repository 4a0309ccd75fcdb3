package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KernelAuditLockFile is the file whose flock serialises the tests that take
// the kernel's one audit PID (unicast audit, auditd, an agent whose audit
// source may choose unicast). It is a different lock from the one developers
// hold around whole test runs, so a run under that lock still serialises
// its own packages, which `go test ./...` runs as parallel processes, and
// the two Go modules.
func KernelAuditLockFile() string {
	dir := "/run/lock"
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "dockward-test-kernel-audit.lock")
}

// kernelAuditWait is how long a test waits for another to release the lock.
const kernelAuditWait = 8 * time.Minute

var kernelAudit testLock

// LockKernelAudit takes the kernel audit lock for the rest of t (released
// by t's cleanup, after every cleanup registered later, so an agent the test
// started has stopped and restored the kernel first). A subtest of the
// holder shares its parent's lock, and a second call by the holder is a
// no-op. It fails t if the lock stays held for
// kernelAuditWait, naming the holder.
func LockKernelAudit(t testing.TB) {
	t.Helper()
	kernelAudit.take(t, KernelAuditLockFile(), "kernel audit", kernelAuditWait)
}

// testLock is one cross-process test lock: an flock on a file that names
// its holder, shared by the holder's subtests (and a no-op for the holder).
type testLock struct {
	mu     sync.Mutex
	holder string // the test of this process that holds the lock, "" if none
}

func (l *testLock) take(t testing.TB, path, what string, wait time.Duration) {
	t.Helper()
	l.mu.Lock()
	holder := l.holder
	l.mu.Unlock()
	if holder != "" && (t.Name() == holder || strings.HasPrefix(t.Name(), holder+"/")) {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("opening the %s test lock %s: %v", what, path, err)
	}
	if err := flockWithin(f, wait, func() {
		t.Logf("waiting for the %s test lock %s, held by %s", what, path, lockHolder(path))
	}); err != nil {
		f.Close()
		t.Fatalf("the %s test lock %s: %v (held by %s)", what, path, err, lockHolder(path))
	}
	// Who holds it, for the message of whoever waits next.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d (%s), test %s\n", os.Getpid(), filepath.Base(os.Args[0]), t.Name())), 0)
	l.mu.Lock()
	l.holder = t.Name()
	l.mu.Unlock()
	t.Cleanup(func() {
		l.mu.Lock()
		l.holder = ""
		l.mu.Unlock()
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// flockWithin takes an exclusive flock on f, polling so that it can give up
// after timeout; waiting is called once if the lock is not free at once.
func flockWithin(f *os.File, timeout time.Duration, waiting func()) error {
	deadline := time.Now().Add(timeout)
	for announced := false; ; announced = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("flock: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still held after %s", timeout)
		}
		if !announced {
			waiting()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lockHolder(path string) string {
	b, err := os.ReadFile(path)
	if s := strings.TrimSpace(string(b)); err == nil && s != "" {
		return s
	}
	return "an unknown process"
}

// auditdConf is a test auditd's config: it takes the audit PID and keeps
// no log, so it stands in for a host's auditd without touching
// /var/log/audit.
const auditdConf = "local_events = yes\nwrite_logs = no\nlog_format = ENRICHED\nflush = NONE\nnum_logs = 1\n" +
	"name_format = NONE\nmax_log_file_action = IGNORE\nspace_left = 75\nspace_left_action = IGNORE\n" +
	"admin_space_left = 50\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\ndisk_error_action = IGNORE\n" +
	"plugin_dir = %s/plugins\nq_depth = 2000\noverflow_action = IGNORE\n"

// StartAuditd runs Debian's auditd in the foreground as the kernel's audit
// daemon until t ends, and returns it once it holds the audit PID. auditd
// leaves audit enabled when it exits, so the cleanup puts the enabled flag
// back to what it was. The caller holds the kernel audit lock.
func StartAuditd(t testing.TB) *Process {
	t.Helper()
	auditd := RequireCommand(t, "auditd")
	auditctl := RequireCommand(t, "auditctl")
	orig := Run(t, auditctl, "-s")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auditd.conf"), []byte(fmt.Sprintf(auditdConf, dir)), 0o640); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(orig, "enabled 0\n") {
			Run(t, auditctl, "-e", "0")
		}
	})
	p := StartProcess(t, "auditd", exec.Command(auditd, "-f", "-n", "-c", dir))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(Run(t, auditctl, "-s"), fmt.Sprintf("pid %d\n", p.Cmd.Process.Pid)) {
		if time.Now().After(deadline) {
			t.Fatalf("auditd did not take the audit PID within 5s:\n%s", p.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}
