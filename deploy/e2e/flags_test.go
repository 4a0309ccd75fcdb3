package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
)

// TestShippedFlagsExist checks every agent flag the deploy artifacts pass
// against the built binary's --help, so a renamed flag cannot leave a unit,
// image, chart or stack that fails to start.
func TestShippedFlagsExist(t *testing.T) {
	out := testenv.AgentOutput(t, "--help")
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`--(?:\[no-\])?([a-z][a-z0-9.-]*)`).FindAllStringSubmatch(out, -1) {
		known[m[1]] = true
	}
	if !known["web.listen-address"] || !known["config.file"] {
		t.Fatalf("--help lists no web.listen-address or config.file flag:\n%s", out)
	}
	root := testenv.RepoRoot(t)
	flag := regexp.MustCompile(`--((?:web|log|config|docker)\.[a-z0-9.-]+)`)
	for _, f := range []string{
		"deploy/systemd/dockward.default", "Dockerfile", "deploy/swarm/dockward-stack.yml",
		"deploy/helm/dockward/templates/daemonset.yaml", "deploy/helm/dockward/ci/all-values.yaml",
		"deploy/helm/dockward/values.yaml", "README.md",
	} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		n := 0
		for _, m := range flag.FindAllStringSubmatch(string(data), -1) {
			n++
			name := strings.TrimRight(m[1], ".")
			if !known[name] {
				t.Errorf("%s passes --%s, which dockward --help does not list", f, name)
			}
		}
		if n == 0 && f != "deploy/helm/dockward/values.yaml" {
			t.Errorf("%s passes no agent flag; the test's file list is stale", f)
		}
	}
}
