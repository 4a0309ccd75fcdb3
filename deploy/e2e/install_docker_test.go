package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/deploy/internal/readme"
	"github.com/dockward/dockward/internal/testenv"
)

// readmeImage is the image the README's docker run names; the test runs
// the one `make image` just built in its place.
const readmeImage = "dockward/dockward:latest"

// dockerRunAsDocumented returns the README's docker run arguments (after
// "docker run") with only what must differ on a test machine replaced, each
// replacement logged: the container's name, the image (the one just built
// instead of dockward/dockward:latest), the host directory of the state
// volume (a temporary one, so the test leaves nothing in /var/lib), and
// rslave where the host's / is not a shared mount (plain ro, as the README
// says). Every other flag is the README's, verbatim.
func dockerRunAsDocumented(t *testing.T, name, image, stateDir string) []string {
	t.Helper()
	cmd, err := readme.Find(installGuide(t, "### Docker"), "docker", "run")
	if err != nil {
		t.Fatal(err)
	}
	args := cmd.Args[2:]
	replaced := map[string]bool{}
	shared := rootIsShared(t)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--name" && i+1 < len(args):
			i++
			args[i], replaced["name"] = name, true
		case a == readmeImage:
			args[i], replaced["image"] = image, true
		case strings.HasPrefix(a, "/var/lib/dockward:"):
			args[i], replaced["state"] = stateDir+strings.TrimPrefix(a, "/var/lib/dockward"), true
		case a == "/:/host:ro,rslave" && !shared:
			args[i] = "/:/host:ro"
			t.Log("the host's / is not a shared mount here: -v /:/host:ro instead of ro,rslave, as the README says")
		}
	}
	for _, what := range []string{"name", "image", "state"} {
		if !replaced[what] {
			t.Fatalf("README's docker run %q has no %s to replace; update the test with the README", cmd.Args, what)
		}
	}
	if args[len(args)-1] != image {
		t.Fatalf("README's docker run %q must end with the image (the image's own command runs)", cmd.Args)
	}
	return args
}

// TestDockerInstallAsDocumented runs the image from `make image` with the
// README's docker run, every source on. Audit runs in unicast mode from
// inside the container; a write under the host's /etc/docker is detected
// and attributed within 2 s; /readyz is 200; docker stop restores the
// kernel's audit state, and after docker kill the next start cleans up
// what the killed agent left.
func TestDockerInstallAsDocumented(t *testing.T) {
	testenv.RequireRoot(t)
	auditctl := testenv.RequireCommand(t, "auditctl")
	image := deploymentImage(t)
	testenv.LockKernelAudit(t)
	guardAudit(t)
	before := readAudit(t, auditctl)
	requirePortFree(t, 9917)
	name := uniqueName("dockward-e2e-docker")
	args := dockerRunAsDocumented(t, name, image, filepath.Join(t.TempDir(), "state"))
	c := runContainer(t, name, args...)
	base := "http://127.0.0.1:9917"
	t.Logf("ready %s after docker run", c.waitReady(t, base, 60*time.Second).Round(time.Millisecond))
	requireUnicastFromContainer(t, c, base)
	if took := hostWriteUnderEtcDocker(t, c.logs, 2*time.Second); took > 2*time.Second {
		t.Errorf("the write was logged %s after it happened, want within 2s", took)
	}
	docker(t, "stop", name)
	requireAuditRestored(t, before, "after docker stop")

	docker(t, "start", name)
	c.follow(t)
	c.waitReady(t, base, 60*time.Second)
	docker(t, "kill", name)
	left := readAudit(t, auditctl)
	if len(left.rules) <= len(before.rules) {
		t.Fatalf("after docker kill the agent's rules are gone (%q): the kill test proves nothing", left.rules)
	}
	t.Logf("docker kill left %d audit rules and enabled %s behind", len(left.rules)-len(before.rules), left.status["enabled"])
	docker(t, "start", name)
	c.follow(t)
	c.waitReady(t, base, 60*time.Second)
	if !strings.Contains(c.logs.String(), "did not stop cleanly") {
		t.Errorf("the start after docker kill does not say it cleaned up a previous run's audit state")
	}
	if got := readAudit(t, auditctl); len(got.rules) != len(left.rules) {
		t.Errorf("after the restart the kernel holds %d rules, want the %d of one agent (no duplicates):\n%s",
			len(got.rules), len(left.rules), strings.Join(got.rules, "\n"))
	}
	docker(t, "stop", name)
	requireAuditRestored(t, before, "after docker kill, start and stop")
}

// requireUnicastFromContainer checks that the containerised agent is the
// kernel's audit daemon and that its watches were installed through its
// view of the host (/host/...), then shows what `auditctl -l` says.
func requireUnicastFromContainer(t *testing.T, c *agentContainer, base string) {
	t.Helper()
	requireSeries(t, base, []string{`dockward_audit_up{mode="unicast"} 1`, "dockward_audit_kernel_readable 1",
		"dockward_audit_daemon_running 1"}, "dockward_audit_", "dockward_source")
	status := testenv.Run(t, "auditctl", "-s")
	if want := fmt.Sprintf("pid %d\n", c.hostPID(t)); !strings.Contains(status, want) {
		t.Errorf("auditctl -s does not name the agent's host PID (%s):\n%s", strings.TrimSpace(want), status)
	}
	rules := testenv.Run(t, "auditctl", "-l")
	if !strings.Contains(rules, "-w /host/etc/docker -p wa -k docker_etc") {
		t.Errorf("auditctl -l lacks the watch on the host's /etc/docker installed through /host:\n%s", rules)
	}
	t.Logf("auditctl -l on the host while the containerised agent runs:\n%s", rules)
}

// The README's docker run flags are the ones the install test relies on:
// the host namespaces audit needs, the read-only socket and /, the audit
// capabilities and nothing more. The parse itself must not need Docker.
func TestReadmeDockerRunParses(t *testing.T) {
	args := dockerRunAsDocumented(t, "n", "img:tag", "/tmp/state")
	got := strings.Join(args, " ")
	for _, want := range []string{"--pid host", "--network host", "--read-only", "--cap-drop ALL",
		"--cap-add AUDIT_CONTROL --cap-add AUDIT_READ --cap-add DAC_READ_SEARCH",
		"-v /var/run/docker.sock:/var/run/docker.sock:ro", "-v /tmp/state:/var/lib/dockward"} {
		if !strings.Contains(got, want) {
			t.Errorf("README's docker run (as run) %q lacks %q", got, want)
		}
	}
}
