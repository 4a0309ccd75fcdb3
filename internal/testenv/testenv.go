// Package testenv gates tests on what the machine provides. Outside CI a
// missing prerequisite skips the test; under CI=true it fails it, because CI
// must prove every capability rather than pass by skipping.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t outside CI and fails it under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI=true: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// RequireRoot needs uid 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "test needs root")
	}
}

// DockerSocket is the Engine socket the tests use.
func DockerSocket() string {
	if s := os.Getenv("DOCKWARD_TEST_DOCKER_SOCKET"); s != "" {
		return s
	}
	return "/var/run/docker.sock"
}

// RequireDocker needs a reachable Docker Engine and the docker CLI.
func RequireDocker(t testing.TB) {
	t.Helper()
	RequireCommand(t, "docker")
	c, err := net.DialTimeout("unix", DockerSocket(), 2*time.Second)
	if err != nil {
		Missing(t, "docker engine at %s: %v", DockerSocket(), err)
		return
	}
	c.Close()
}

// RequireCommand needs an executable on PATH and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "command %q not on PATH (see .ci/run for the package that provides it)", name)
	}
	return p
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
