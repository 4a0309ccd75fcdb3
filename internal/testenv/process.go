package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process is a background command started by a test: its output is
// collected, printed (the end of it) when the test fails, and it is stopped
// with SIGTERM, then killed, when the test ends.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	Logs    *LogBuffer // stdout and stderr
	Started time.Time
	done    chan struct{}
	err     error
}

// stopWait is how long a process has after SIGTERM before it is killed:
// the agent restores the kernel's audit state on the way out.
const stopWait = 15 * time.Second

// StartProcess starts cmd (Stdout and Stderr are set here) as name.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, Logs: &LogBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // never outlive a test binary that crashed
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, tail(p.Logs.String(), 8000))
		}
	})
	return p
}

// Command starts bin with args as name, in the test's environment.
func Command(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	return StartProcess(t, name, exec.Command(bin, args...))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// Stop sends SIGTERM and kills the process if it has not exited within
// stopWait. It returns at once if the process has exited.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopWait):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to %s: %v", sig, p.Name, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// status.
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.Name, timeout)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("waiting for %s: %v", p.Name, p.err)
	return -1
}

// Agent is the agent binary running in a test.
type Agent struct {
	*Process
	Addr string // its loopback listen address
}

// StartAgent starts AgentBinary on a free loopback address with args after
// --web.listen-address, its environment being the test's plus env.
func StartAgent(t testing.TB, env []string, args ...string) *Agent {
	t.Helper()
	cmd, addr := AgentCommand(t, env, args...)
	return &Agent{Process: StartProcess(t, "dockward", cmd), Addr: addr}
}

// AgentCommand is StartAgent's command and address, not started, for a
// test that sets more of it (SysProcAttr) before StartProcess.
func AgentCommand(t testing.TB, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	addr := FreeAddr(t)
	cmd := exec.Command(AgentBinary(t), append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd, addr
}

// URL is http://Addr followed by path.
func (a *Agent) URL(path string) string { return "http://" + a.Addr + path }

// AgentAcceptsConfig starts the agent with configYAML as its config file
// and waits until it logs "starting dockward", which it does only after its
// strict config parser accepted the file; a rejected config makes the agent
// exit with status 2 first, and fails t with its output and the config.
func AgentAcceptsConfig(t testing.TB, configYAML string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	a := StartAgent(t, nil, "--config.file="+path)
	defer a.Stop()
	WaitForState(t, 15*time.Second, "the agent accepts its config", func() (bool, string) {
		if strings.Contains(a.Logs.String(), "starting dockward") {
			return true, ""
		}
		if a.Exited() {
			t.Fatalf("the agent rejected the config (%v):\n%s\nconfig:\n%s", a.err, a.Logs.String(), configYAML)
		}
		return false, "not started yet"
	})
}

// AgentOutput runs the agent binary with args to completion and returns
// its combined output, failing t if it does not exit 0.
func AgentOutput(t testing.TB, args ...string) string {
	t.Helper()
	bin := AgentBinary(t)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}
