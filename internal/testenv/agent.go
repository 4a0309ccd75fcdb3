package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build metadata of the agent binary the tests build, fixed so that
// /metrics (dockward_build_info) and --version are the same in every run.
const (
	AgentVersion  = "0.0.0-e2e"
	AgentRevision = "e2e-revision"
	AgentBranch   = "e2e-branch"
)

// modulePath is the root module, whose cmd/agent is the agent.
const modulePath = "github.com/dockward/dockward"

var built struct {
	mainRan bool
	once    sync.Once
	dir     string
	path    string
	err     error
}

// Main runs a package's tests and then removes what AgentBinary built for
// the whole run. A package that calls AgentBinary has
// `func TestMain(m *testing.M) { testenv.Main(m) }`, or calls MainRun from
// its own TestMain.
func Main(m *testing.M) { os.Exit(MainRun(m)) }

// MainRun is Main without the exit, for a TestMain that does more.
func MainRun(m *testing.M) int {
	built.mainRan = true
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// RepoRoot is the root module's directory: the nearest directory at or
// above the working directory (a test's package directory, in either Go
// module) whose go.mod declares the root module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(mod, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s at or above the working directory", modulePath)
		}
		dir = parent
	}
}

// AgentBinary builds the agent (./cmd/agent of the root module) once per
// test process, static and with the fixed build metadata above, the way
// `make build` does, and returns its path. It needs testenv.Main.
func AgentBinary(t testing.TB) string {
	t.Helper()
	if !built.mainRan {
		t.Fatal("testenv.AgentBinary needs the package's TestMain to call testenv.Main (it removes the binary)")
	}
	built.once.Do(func() { built.path, built.err = buildAgent() })
	if built.err != nil {
		t.Fatalf("building the agent: %v", built.err)
	}
	return built.path
}

func buildAgent() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("the go command is not on PATH: %w", err)
	}
	if built.dir, err = os.MkdirTemp("", "dockward-test-agent-"); err != nil {
		return "", err
	}
	bin := filepath.Join(built.dir, "dockward")
	v := "github.com/prometheus/common/version"
	ldflags := fmt.Sprintf("-X %s.Version=%s -X %s.Revision=%s -X %s.Branch=%s -X %s.BuildDate=20260101-00:00:00",
		v, AgentVersion, v, AgentRevision, v, AgentBranch, v)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/agent in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}
