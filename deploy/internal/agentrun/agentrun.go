// Package agentrun builds the real agent and checks that it accepts a
// config file, for the tests of the configs the deploy artifacts ship.
package agentrun

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles ./cmd/agent of the module at repoRoot into dir.
func Build(repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "dockward")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/agent")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the agent: %w\n%s", err, out)
	}
	return bin, nil
}

// AcceptsConfig starts bin with the config in configYAML (written to dir)
// on a loopback port and waits until it logs "starting dockward", which it
// does only after its strict config parser accepted the file; it then stops
// the agent. A rejected config makes the agent exit with status 2 first.
func AcceptsConfig(bin, dir, configYAML string) error {
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		return err
	}
	logs := &syncBuffer{}
	agent := exec.Command(bin, "--config.file="+path, "--web.listen-address=127.0.0.1:0")
	agent.Stdout, agent.Stderr = logs, logs
	if err := agent.Start(); err != nil {
		return fmt.Errorf("starting the agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	deadline := time.After(15 * time.Second)
	for !strings.Contains(logs.String(), "starting dockward") {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the agent rejected the config (%v):\n%s\nconfig:\n%s", err, logs.String(), configYAML)
		case <-deadline:
			return fmt.Errorf("the agent did not start within 15s:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// syncBuffer collects a process's output while it is read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
