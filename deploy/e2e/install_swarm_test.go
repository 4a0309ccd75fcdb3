package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/deploy/internal/readme"
	"github.com/dockward/dockward/internal/testenv"
)

// stackName is the README's stack name; its service is <stack>_dockward.
const stackName = "dockward"

// TestSwarmStackAsDocumented deploys deploy/swarm/dockward-stack.yml for
// real, with the README's `docker stack deploy` (the variant without a
// registry), on a single-node swarm this test creates and leaves, with the
// image from `make image` loaded locally and named by its exact tag.
// Without auditd the agent reports what it cannot see (the kernel refuses
// a Swarm task its audit status and rules, and no audit daemon runs); with
// a test auditd holding the CIS watch on /etc/docker, multicast mode sees
// a write under the host's /etc/docker.
func TestSwarmStackAsDocumented(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "auditd")
	auditctl := testenv.RequireCommand(t, "auditctl")
	image := deploymentImage(t)
	testenv.LockKernelAudit(t)
	guardAudit(t)
	requirePortFree(t, 9917)
	testenv.SingleNodeSwarm(t)
	deployStackAsDocumented(t, image)
	c := &agentContainer{name: stackTaskContainer(t)}
	c.follow(t)
	base := "http://127.0.0.1:9917"
	c.waitReady(t, base, 90*time.Second)
	requireBlindnessReported(t, c, base)

	auditd := testenv.StartAuditd(t)
	// The agent finds auditd through its PID file and the host's /proc
	// under /host, at its next status poll.
	testenv.WaitForState(t, 15*time.Second, "the agent to see the test auditd", func() (bool, string) {
		_, metrics, err := httpGet(base + "/metrics")
		return err == nil && strings.Contains(metrics, "\ndockward_audit_daemon_running 1\n"),
			testenv.GrepLines(metrics, "dockward_audit_daemon_running")
	})
	if !strings.Contains(c.logs.String(), fmt.Sprintf(`"msg":"an audit daemon runs on this host; its events reach dockward","source":"audit","pid":%d`, auditd.Cmd.Process.Pid)) {
		t.Errorf("the agent's log does not name the test auditd (pid %d) once it runs", auditd.Cmd.Process.Pid)
	}
	testenv.Run(t, auditctl, "-w", "/etc/docker", "-p", "wa", "-k", "docker")
	t.Cleanup(func() { testenv.Run(t, auditctl, "-W", "/etc/docker", "-p", "wa", "-k", "docker") })
	if took := hostWriteUnderEtcDocker(t, c.logs, 2*time.Second); took > 2*time.Second {
		t.Errorf("the write was logged %s after it happened, want within 2s", took)
	}
}

// deployStackAsDocumented runs the README's registry-less `docker stack
// deploy` from the repository root with DOCKWARD_IMAGE set to image, and
// removes the stack (and its state volume) when t ends.
func deployStackAsDocumented(t *testing.T, image string) {
	t.Helper()
	cmd, err := readme.Find(installGuide(t, "### Swarm"), "docker", "stack", "deploy", "--resolve-image", "never")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.Env) != 1 || !strings.HasPrefix(cmd.Env[0], "DOCKWARD_IMAGE=") || cmd.Args[len(cmd.Args)-1] != stackName {
		t.Fatalf("README's stack deploy %+v: want DOCKWARD_IMAGE=... docker stack deploy ... %s", cmd, stackName)
	}
	t.Cleanup(func() { removeStack(t) })
	run := exec.Command(cmd.Args[0], cmd.Args[1:]...)
	run.Dir = testenv.RepoRoot(t)
	run.Env = append(run.Environ(), "DOCKWARD_IMAGE="+image)
	t.Logf("DOCKWARD_IMAGE=%s %s (README: %s)", image, strings.Join(cmd.Args, " "), cmd.Env[0])
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
}

// removeStack removes the stack, waits for its container to go, and
// removes its named volume, which `docker stack rm` keeps.
func removeStack(t *testing.T) {
	if t.Failed() {
		out, _ := exec.Command("docker", "service", "ps", "--no-trunc", stackName+"_dockward").CombinedOutput()
		t.Logf("--- docker service ps ---\n%s", out)
	}
	_ = exec.Command("docker", "stack", "rm", stackName).Run()
	gone := func() bool {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.stack.namespace="+stackName).Output()
		return err == nil && strings.TrimSpace(string(out)) == ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for !gone() && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if !gone() {
		t.Errorf("the stack's containers are still there 30s after docker stack rm")
	}
	if out, err := exec.Command("docker", "volume", "rm", stackName+"_dockward-state").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "No such volume") {
		t.Errorf("removing the stack's state volume: %v\n%s", err, out)
	}
}

// stackTaskContainer waits for the service's one task to run and returns
// its container's ID.
func stackTaskContainer(t *testing.T) string {
	t.Helper()
	var id string
	testenv.WaitForState(t, 60*time.Second, "the stack's task to run", func() (bool, string) {
		id = docker(t, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+stackName+"_dockward")
		tasks := docker(t, "service", "ps", "--format", "{{.CurrentState}} {{.Error}}", stackName+"_dockward")
		return id != "" && !strings.Contains(id, "\n"), tasks
	})
	return id
}

// requireBlindnessReported checks that the agent in a Swarm task, next to
// no audit daemon, says what it cannot see instead of looking healthy: its
// log and /metrics say the kernel's audit status and rules cannot be read
// from its PID namespace and that no audit daemon runs, and a write under
// /etc/docker produces no event.
func requireBlindnessReported(t *testing.T, c *agentContainer, base string) {
	t.Helper()
	requireSeries(t, base, []string{`dockward_audit_up{mode="multicast"} 1`, "dockward_audit_kernel_readable 0",
		"dockward_audit_daemon_running 0"}, "dockward_audit_up", "dockward_audit_kernel", "dockward_audit_daemon")
	for _, want := range []string{"cannot read the kernel's audit status and rules", "no audit daemon runs on this host"} {
		if !strings.Contains(c.logs.String(), want) {
			t.Errorf("the agent's log does not say %q", want)
		}
	}
	w := touchUnderEtcDocker(t)
	time.Sleep(2 * time.Second)
	if line := auditLine(c.logs.String(), w.path); line != nil {
		t.Errorf("without an audit daemon the agent still saw %s (%v): then it is not blind, and the docs are wrong", w.path, line)
	}
}
