package testenv

import (
	"os/exec"
	"testing"
)

// flockFree reports whether another process could take the lock now
// (util-linux flock -n exits 1 when it is held).
func flockFree(t *testing.T, flock string, path ...string) bool {
	t.Helper()
	p := KernelAuditLockFile()
	if len(path) > 0 {
		p = path[0]
	}
	err := exec.Command(flock, "-n", p, "true").Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("flock -n %s: %v", p, err)
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

// The swarm lock is the same kind of lock on its own file: held across
// processes while a test has it, free once the test ends.
func TestSwarmLockHoldsAcrossProcesses(t *testing.T) {
	flock := RequireCommand(t, "flock")
	free := func() bool { return flockFree(t, flock, SwarmLockFile) }
	t.Run("held", func(t *testing.T) {
		LockSwarm(t)
		if free() {
			t.Fatal("another process took the swarm lock while a test held it")
		}
	})
	if !free() {
		t.Fatal("the swarm lock is still held after the test that took it ended")
	}
}
