package testenv

import (
	"net"
	"testing"
	"time"
)

// pollInterval is how long WaitFor and Eventually sleep between two checks
// after elapsed: 10 ms for the first second, so that a latency a test
// reports or bounds is the code's and not the poll's, then 100 ms, so that
// a long wait on another process's HTTP API does not load a busy machine.
func pollInterval(elapsed time.Duration) time.Duration {
	if elapsed < time.Second {
		return 10 * time.Millisecond
	}
	return 100 * time.Millisecond
}

// WaitFor polls cond until it holds, and fails t naming what if it does
// not within timeout. It returns how long it took.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return WaitForState(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// WaitForState is WaitFor with a cond that also says why it does not hold
// yet; the failure quotes the last reason.
func WaitForState(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		last = why
		elapsed := time.Since(start)
		if elapsed >= timeout {
			break
		}
		time.Sleep(min(pollInterval(elapsed), timeout-elapsed))
	}
	if last != "" {
		t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
	return 0
}

// Eventually polls cond for up to timeout and reports whether it held, for
// tests that check a negative or report the failure themselves.
func Eventually(timeout time.Duration, cond func() bool) bool {
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < timeout; elapsed = time.Since(start) {
		if cond() {
			return true
		}
		time.Sleep(min(pollInterval(elapsed), timeout-elapsed))
	}
	return cond()
}

// FreeAddr returns a loopback address (127.0.0.1:port) whose port was free
// a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
