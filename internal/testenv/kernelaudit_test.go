package testenv

import (
	"os/exec"
	"testing"
)

// flockFree reports whether another process could take the lock now
// (util-linux flock -n exits 1 when it is held).
func flockFree(t *testing.T, flock string) bool {
	t.Helper()
	err := exec.Command(flock, "-n", KernelAuditLockFile(), "true").Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("flock -n %s: %v", KernelAuditLockFile(), err)
	}
	return true
}

func TestKernelAuditLockHoldsAcrossProcesses(t *testing.T) {
	flock := RequireCommand(t, "flock")
	t.Run("held", func(t *testing.T) {
		LockKernelAudit(t)
		if flockFree(t, flock) {
			t.Fatal("another process took the kernel audit lock while a test held it")
		}
		t.Run("subtest shares it", func(t *testing.T) {
			LockKernelAudit(t) // would wait for itself if it did not share
			if flockFree(t, flock) {
				t.Fatal("the lock was released by a subtest")
			}
		})
		if flockFree(t, flock) {
			t.Fatal("the subtest's end released its parent's lock")
		}
	})
	if !Eventually(kernelAuditWait, func() bool { return flockFree(t, flock) }) {
		t.Fatal("the kernel audit lock is still held after the test that took it ended")
	}
}
