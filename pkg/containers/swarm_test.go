package containers

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// swarmFindings maps rule -> subject names of the open swarm findings.
func (h *harness) swarmFindings() map[string][]string {
	out := map[string][]string{}
	for _, f := range h.store.Open() {
		if strings.HasPrefix(f.Rule, "swarm.") {
			out[f.Rule] = append(out[f.Rule], f.Subject.Name)
		}
	}
	return out
}

func dockerNetwork(t *testing.T, name string, opts ...string) {
	t.Helper()
	args := append([]string{"network", "create", "-d", "overlay", "--label", "dockward.test=1"}, opts...)
	testenv.Run(t, "docker", append(args, name)...)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", name).Run() })
}

// TestEngineSwarm judges a real single-node swarm as `docker swarm init
// --advertise-addr 127.0.0.1` leaves it: active (5.1), listening on every
// interface (7.2), not auto-locked (7.5), with unencrypted overlay networks
// (7.3, one finding per network, judged again on network events), and one
// manager (7.1 passes). Turning auto-lock on and leaving the swarm clear
// the findings at the next rescan. Only read calls reach the engine.
func TestEngineSwarm(t *testing.T) {
	testenv.SingleNodeSwarm(t)
	plain, enc := fmt.Sprintf("dwtest-plain-%d", os.Getpid()), fmt.Sprintf("dwtest-enc-%d", os.Getpid())
	dockerNetwork(t, plain)
	dockerNetwork(t, enc, "--opt", "encrypted")
	cfg := fastConfig()
	cfg.RescanInterval = time.Second
	h, p, _ := startBehindProxyWith(t, cfg)

	testenv.WaitFor(t, 10*time.Second, "the swarm judged", func() bool {
		got := h.swarmFindings()
		return len(got["swarm.active"]) == 1 && len(got["swarm.autolock_off"]) == 1 && len(got["swarm.listen_all_interfaces"]) == 1 &&
			containsString(got["swarm.overlay_unencrypted"], plain) && containsString(got["swarm.overlay_unencrypted"], "ingress")
	})
	got := h.swarmFindings()
	if containsString(got["swarm.overlay_unencrypted"], enc) || len(got["swarm.managers"]) != 0 {
		t.Errorf("the encrypted network or the one manager is reported: %v", got)
	}
	if o := h.src.Observations(); o["7.2"].Status != "" {
		t.Errorf("the listen address could not be judged: %+v", o["7.2"])
	}
	for _, f := range h.store.Open() {
		if f.Rule == "swarm.listen_all_interfaces" && !strings.Contains(f.Message, ":2377") {
			t.Errorf("7.2 does not name the listener: %s", f.Message)
		}
	}

	// A network created while the agent runs is judged on its event, and
	// one removed leaves nothing behind.
	late := fmt.Sprintf("dwtest-late-%d", os.Getpid())
	dockerNetwork(t, late)
	testenv.WaitFor(t, 5*time.Second, "the new network judged", func() bool {
		return containsString(h.swarmFindings()["swarm.overlay_unencrypted"], late)
	})
	testenv.Run(t, "docker", "network", "rm", late)
	testenv.WaitFor(t, 5*time.Second, "the removed network forgotten", func() bool {
		return !containsString(h.swarmFindings()["swarm.overlay_unencrypted"], late)
	})

	testenv.Run(t, "docker", "swarm", "update", "--autolock=true")
	testenv.WaitFor(t, 10*time.Second, "auto-lock seen at the rescan", func() bool { return len(h.swarmFindings()["swarm.autolock_off"]) == 0 })
	for _, n := range []string{plain, enc} {
		testenv.Run(t, "docker", "network", "rm", n)
	}
	testenv.Run(t, "docker", "swarm", "leave", "--force")
	testenv.WaitFor(t, 10*time.Second, "the left swarm forgotten", func() bool { return len(h.swarmFindings()) == 0 })
	for _, r := range p.check(t) {
		if strings.Contains(r, "unlockkey") {
			t.Errorf("the agent called the unlock-key endpoint: %s", r)
		}
	}
}

// A manager bound to one address (--listen-addr 127.0.0.1:2377) passes
// 7.2, and is still reported as a swarm (5.1).
func TestEngineSwarmBoundToOneInterface(t *testing.T) {
	testenv.SingleNodeSwarm(t, "--listen-addr", "127.0.0.1:2377")
	h, _, _ := startBehindProxy(t)
	testenv.WaitFor(t, 10*time.Second, "the swarm judged", func() bool { return len(h.swarmFindings()["swarm.active"]) == 1 })
	if got := h.swarmFindings()["swarm.listen_all_interfaces"]; len(got) != 0 {
		t.Errorf("a manager listening on 127.0.0.1 only is reported: %v", got)
	}
	rep := findings.Report(findings.ComplianceInput{Open: h.store.Open(), Observations: h.src.Observations()})
	for _, r := range rep.Results() {
		if want := map[string]findings.Status{"5.1": findings.StatusFail, "7.2": findings.StatusPass, "7.1": findings.StatusPass}[r.ID]; want != "" && r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.ID, r.Status, r.Note, want)
		}
	}
}
