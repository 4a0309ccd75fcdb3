package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitAuditPIDFree waits up to two minutes for no live process to hold the
// kernel's audit PID (as auditctl -s reports it): another audit daemon (an
// agent another test package started, or auditd) would make a kernel test
// fight it.
func WaitAuditPIDFree(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pid := auditPID(t)
		if pid == 0 || !processAlive(pid) {
			return
		}
		if time.Now().After(deadline) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Fatalf("pid %d (%s) holds the kernel's audit PID; kernel tests need it free",
				pid, strings.ReplaceAll(string(comm), "\x00", " "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// auditPID is the `pid` line of auditctl -s.
func auditPID(t testing.TB) int {
	t.Helper()
	for _, l := range strings.Split(Run(t, "auditctl", "-s"), "\n") {
		if v, ok := strings.CutPrefix(l, "pid "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("auditctl -s: pid %q", v)
			}
			return n
		}
	}
	t.Fatal("auditctl -s printed no pid line")
	return 0
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// KernelAuditState is `auditctl -s` and `auditctl -l`, without what the
// kernel changes by itself.
func KernelAuditState(t testing.TB) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(Run(t, "auditctl", "-s"), "\n") {
		// The queue length, the lost counter and the total time spent
		// waiting on a full queue are the kernel's own figures, not
		// settings anyone can restore (lost can only be reset to 0).
		if strings.HasPrefix(l, "backlog ") || strings.HasPrefix(l, "lost ") || strings.HasPrefix(l, "backlog_wait_time_actual ") {
			continue
		}
		// The kernel keeps the PID of a daemon that died until it next
		// sends to it; that is no daemon, as dockward's restore leaves it.
		if pid, ok := strings.CutPrefix(l, "pid "); ok && pid != "0" {
			if n, err := strconv.Atoi(pid); err == nil && !processAlive(n) {
				l = "pid 0"
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n") + "\n--- rules ---\n" + Run(t, "auditctl", "-l")
}

// ExpectKernelAuditRestored records the kernel's audit state now and fails
// the test if it differs when the test (and every cleanup registered after
// this call, such as stopping an agent) is done.
func ExpectKernelAuditRestored(t testing.TB) {
	t.Helper()
	before := KernelAuditState(t)
	t.Cleanup(func() {
		WaitAuditPIDFree(t) // an agent another package's tests started meanwhile restores on exit
		if after := KernelAuditState(t); after != before {
			t.Errorf("kernel audit state not restored:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}
