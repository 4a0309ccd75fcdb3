package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EscapeImage is the runtime detection tests' image: the busybox image
// plus the escape payload (internal/testenv/escape) as /escape (64-bit)
// and /escape32 (32-bit x86, so that the 32-bit syscall ABI is exercised).
const EscapeImage = "dockward-test-escape:latest"

var escapeOnce struct {
	once sync.Once
	err  string
}

// RequireEscapeImage builds EscapeImage once per test process (the
// payload is rebuilt each time, so the image always matches the source;
// the tag is reused across runs) and returns its name.
func RequireEscapeImage(t testing.TB) string {
	t.Helper()
	base := RequireBusyboxImage(t)
	RequireCommand(t, "go")
	escapeOnce.once.Do(func() { escapeOnce.err = buildEscapeImage(base) })
	if escapeOnce.err != "" {
		t.Fatalf("building %s: %s", EscapeImage, escapeOnce.err)
	}
	return EscapeImage
}

func buildEscapeImage(base string) string {
	root, err := repoRoot()
	if err != nil {
		return err.Error()
	}
	dir, err := os.MkdirTemp("", "dockward-escape-image-")
	if err != nil {
		return err.Error()
	}
	defer os.RemoveAll(dir)
	for name, goarch := range map[string]string{"escape": "amd64", "escape32": "386"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), "./internal/testenv/escape")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "go build of the escape payload (" + goarch + "): " + err.Error() + ": " + string(out)
		}
	}
	df := "FROM " + base + "\nCOPY escape escape32 /\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err.Error()
	}
	if err := runQuiet("docker", "build", "--network", "none", "-t", EscapeImage, dir); err != nil {
		return strings.TrimSpace(err.Error())
	}
	return ""
}
