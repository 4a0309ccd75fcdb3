package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// Fixed build metadata for the binary under test, so the golden output is
// stable.
const (
	testVersion  = "0.0.0-e2e"
	testRevision = "e2e-revision"
	testBranch   = "e2e-branch"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// agentBinary builds the dockward binary once per test run, with fixed
// version ldflags, into a temporary directory.
func agentBinary(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dockward-test-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "dockward")
		v := "github.com/prometheus/common/version"
		ldflags := fmt.Sprintf("-X %s.Version=%s -X %s.Revision=%s -X %s.Branch=%s -X %s.BuildDate=20260101-00:00:00",
			v, testVersion, v, testRevision, v, testBranch, v)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", binaryPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatalf("building dockward: %v", binaryErr)
	}
	return binaryPath
}

// TestMain removes the built binary after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runningAgent is a dockward process started by a test.
type runningAgent struct {
	cmd     *exec.Cmd
	addr    string
	stderr  *testenv.LogBuffer
	started time.Time
	done    chan struct{}
	err     error
}

// startAgent starts the binary listening on a free loopback port with args
// appended. It is killed at the end of the test if still running.
func startAgent(t *testing.T, env []string, args ...string) *runningAgent {
	t.Helper()
	bin := agentBinary(t)
	a := &runningAgent{addr: freeAddr(t), stderr: &testenv.LogBuffer{}, done: make(chan struct{})}
	a.cmd = exec.Command(bin, append([]string{"--" + flagListenAddress + "=" + a.addr}, args...)...)
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stderr = a.stderr
	a.cmd.Stdout = a.stderr
	a.started = time.Now()
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting dockward: %v", err)
	}
	go func() {
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			_ = a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("dockward output:\n%s", a.stderr.String())
		}
	})
	return a
}

// signal sends sig to the agent.
func (a *runningAgent) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v: %v", sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns its exit code.
func (a *runningAgent) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(timeout):
		t.Fatalf("dockward did not exit within %s", timeout)
	}
	if a.err == nil {
		return 0
	}
	if ee, ok := a.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("waiting for dockward: %v", a.err)
	return -1
}

// get fetches url until it answers or the deadline passes.
func getUntil(t *testing.T, client *http.Client, url string, deadline time.Time) (*http.Response, []byte) {
	t.Helper()
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if err == nil {
				return resp, body
			}
			lastErr = err
		} else {
			cancel()
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GET %s: no answer before the deadline: %v", url, lastErr)
	return nil, nil
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// allSourcesOff is a config that disables every source, so the output does
// not depend on the machine.
const allSourcesOff = `containers:
  enabled: false
audit:
  enabled: false
host:
  enabled: false
`

func contains(s, sub string) bool { return strings.Contains(s, sub) }
