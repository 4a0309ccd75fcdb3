package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// auditState is what the agent's audit source may change in the kernel:
// the status flags it sets in unicast mode and the rules it installs.
type auditState struct {
	status map[string]string
	rules  []string
}

// restoredStatus are the flags compared and restored, with the auditctl
// option that sets each.
var restoredStatus = map[string]string{"enabled": "-e", "backlog_limit": "-b", "backlog_wait_time": "--backlog_wait_time"}

func readAudit(t *testing.T, auditctl string) auditState {
	t.Helper()
	st, err := exec.Command(auditctl, "-s").Output()
	if err != nil {
		t.Fatalf("auditctl -s: %v", err)
	}
	s := auditState{status: map[string]string{}}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			s.status[f[0]] = f[1]
		}
	}
	rl, err := exec.Command(auditctl, "-l").Output()
	if err != nil {
		t.Fatalf("auditctl -l: %v", err)
	}
	for _, line := range strings.Split(string(rl), "\n") {
		if line = strings.TrimSpace(line); line != "" && line != "No rules" {
			s.rules = append(s.rules, line)
		}
	}
	return s
}

// guardAudit snapshots the kernel's audit settings and, when the test ends
// (after the agent has stopped, because cleanups run last-in first-out),
// puts back whatever differs and fails the test: the agent must restore
// everything it changed on exit, and the host must be left as found.
func guardAudit(t *testing.T) {
	t.Helper()
	auditctl, err := exec.LookPath("auditctl")
	if err != nil {
		return // no audit tooling: the agent's audit source cannot change anything we could check
	}
	before := readAudit(t, auditctl)
	t.Cleanup(func() {
		after := readAudit(t, auditctl)
		var changed []string
		for key, opt := range restoredStatus {
			b, ok := before.status[key]
			if !ok || after.status[key] == b || (key == "enabled" && b == "2") {
				continue
			}
			changed = append(changed, key+" "+after.status[key]+" (was "+b+")")
			if out, err := exec.Command(auditctl, opt, b).CombinedOutput(); err != nil {
				t.Errorf("restoring audit %s to %s: %v\n%s", key, b, err, out)
			}
		}
		had := map[string]bool{}
		for _, r := range before.rules {
			had[r] = true
		}
		has := map[string]bool{}
		for _, r := range after.rules {
			has[r] = true
			if had[r] {
				continue
			}
			changed = append(changed, "rule added: "+r)
			args := strings.Fields(r)
			switch args[0] {
			case "-w":
				args[0] = "-W"
			case "-a":
				args[0] = "-d"
			}
			if out, err := exec.Command(auditctl, args...).CombinedOutput(); err != nil {
				t.Errorf("removing audit rule %q: %v\n%s", r, err, out)
			}
		}
		for _, r := range before.rules {
			if !has[r] {
				changed = append(changed, "rule removed: "+r)
				if out, err := exec.Command(auditctl, strings.Fields(r)...).CombinedOutput(); err != nil {
					t.Errorf("restoring audit rule %q: %v\n%s", r, err, out)
				}
			}
		}
		if len(changed) > 0 {
			t.Errorf("the agent left the kernel's audit settings changed after it stopped (restored now): %s",
				strings.Join(changed, "; "))
		}
	})
}
