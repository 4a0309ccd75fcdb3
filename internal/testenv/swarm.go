package testenv

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SwarmLockFile is the file whose flock serialises the tests that put the
// shared engine into a swarm: only one swarm can exist per engine, and one
// test's `swarm leave` would pull it from under another.
const SwarmLockFile = "/tmp/dockward-test-swarm.lock"

// swarmWait is how long a test waits for another to release the swarm.
const swarmWait = 8 * time.Minute

var swarmLock testLock

// LockSwarm takes the swarm lock for the rest of t (its subtests share it).
func LockSwarm(t testing.TB) {
	t.Helper()
	swarmLock.take(t, SwarmLockFile, "swarm", swarmWait)
}

// SingleNodeSwarm makes the test engine the one node of a new swarm for the
// rest of t, under the swarm lock: `docker swarm init --advertise-addr
// 127.0.0.1` plus extra init flags, and `docker swarm leave --force` at
// cleanup. An engine already in a swarm fails the test: that swarm is not
// the test's to leave.
func SingleNodeSwarm(t testing.TB, extra ...string) {
	t.Helper()
	RequireDocker(t)
	LockSwarm(t)
	if state := swarmState(t); state != "inactive" {
		t.Fatalf("the engine is already in a swarm (state %q); leave it first: docker swarm leave --force", state)
	}
	args := append([]string{"swarm", "init", "--advertise-addr", "127.0.0.1"}, extra...)
	// swarm init creates the docker_gwbridge network and leave keeps it.
	hadGWBridge := runQuiet("docker", "network", "inspect", "docker_gwbridge") == nil
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if swarmState(t) != "inactive" { // else the test left it itself
			if out, err := exec.CommandContext(ctx, "docker", "swarm", "leave", "--force").CombinedOutput(); err != nil {
				t.Errorf("leaving the test swarm: %v: %s", err, out)
			}
		}
		// Its endpoints go a moment after the leave.
		if !hadGWBridge && !Eventually(20*time.Second, func() bool {
			return runQuiet("docker", "network", "rm", "docker_gwbridge") == nil ||
				runQuiet("docker", "network", "inspect", "docker_gwbridge") != nil
		}) {
			t.Errorf("the docker_gwbridge network the test swarm created could not be removed")
		}
	})
	Run(t, "docker", args...)
}

func swarmState(t testing.TB) string {
	t.Helper()
	return strings.TrimSpace(Run(t, "docker", "info", "--format", "{{.Swarm.LocalNodeState}}"))
}
