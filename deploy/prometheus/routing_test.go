package prometheus

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
)

func amtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.RequireCommand(t, "amtool")
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("amtool %s: %v\n%s%s", strings.Join(args, " "), err, out, msg)
	}
	return strings.TrimSpace(string(out))
}

func TestAlertmanagerExampleIsValid(t *testing.T) {
	out := amtool(t, "check-config", "alertmanager.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config:\n%s", out)
	}
}

// Every alert in alerts.yml reaches the receiver its severity promises in
// the example routing: critical pages, warning opens a ticket.
func TestAlertmanagerExampleRoutesEveryAlert(t *testing.T) {
	want := map[string]string{"critical": "security-pager", "warning": "security-tickets", "info": "blackhole"}
	for _, r := range loadRules(t) {
		sev := r.Labels["severity"]
		got := amtool(t, "config", "routes", "test", "--config.file=alertmanager.yml",
			"alertname="+r.Alert, "severity="+sev, "instance=host1:9917")
		if got != want[sev] {
			t.Errorf("%s (severity %s) routes to %q, want %q", r.Alert, sev, got, want[sev])
		}
	}
}
