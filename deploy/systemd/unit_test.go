// Package systemd holds the tests of deploy/systemd: the unit verifies, its
// hardening passes the exposure gate, and it follows the conventions.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
)

const unitFile = "dockward.service"

// exposureThreshold is the gate of systemd-analyze security (0-100; the
// score it prints is a tenth of it).
const exposureThreshold = 30

// installUnit copies the unit into a temp dir with ExecStart pointing at a
// binary that exists, because verify rejects a missing executable and the
// agent is not installed on the test machine.
func installUnit(t *testing.T, edit func(string) string) string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatalf("reading unit: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding an executable to stand in for dockward: %v", err)
	}
	unit := strings.ReplaceAll(string(data), "/usr/local/bin/dockward", exe)
	if edit != nil {
		unit = edit(unit)
	}
	path := filepath.Join(t.TempDir(), unitFile)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatalf("writing unit: %v", err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	bin := testenv.RequireCommand(t, "systemd-analyze")
	out, err := exec.Command(bin, "verify", installUnit(t, nil)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify exits 0 on some problems it only warns about (unknown keys
	// among them), so any output about our unit is a failure too.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, unitFile) {
			t.Errorf("systemd-analyze verify warns: %s", line)
		}
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func security(t *testing.T, unit string) (float64, string, error) {
	t.Helper()
	bin := testenv.RequireCommand(t, "systemd-analyze")
	out, err := exec.Command(bin, "security", "--offline=true",
		"--threshold="+strconv.Itoa(exposureThreshold), unit).CombinedOutput()
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level (err %v):\n%s", err, out)
	}
	score, perr := strconv.ParseFloat(string(m[1]), 64)
	if perr != nil {
		t.Fatalf("parsing exposure %q: %v", m[1], perr)
	}
	return score, string(out), err
}

func TestUnitPassesSecurityGate(t *testing.T) {
	score, out, err := security(t, installUnit(t, nil))
	if err != nil {
		t.Fatalf("systemd-analyze security --threshold=%d failed (exposure %.1f): %v\n%s", exposureThreshold, score, err, out)
	}
	t.Logf("systemd-analyze security --offline=true: overall exposure %.1f (gate %.1f)", score, exposureThreshold/10.0)
}

// The gate must be able to fail: the same unit without its hardening block
// scores above the threshold and systemd-analyze exits non-zero.
func TestSecurityGateRejectsUnhardenedUnit(t *testing.T) {
	strip := func(unit string) string {
		var keep []string
		inHardening := false
		for _, line := range strings.Split(unit, "\n") {
			switch {
			case strings.HasPrefix(line, "# Hardening"), strings.HasPrefix(line, "CapabilityBoundingSet="),
				strings.HasPrefix(line, "AmbientCapabilities="):
				inHardening = strings.HasPrefix(line, "# Hardening")
				continue
			case strings.HasPrefix(line, "[Install]"):
				inHardening = false
			}
			if !inHardening {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}
	score, out, err := security(t, installUnit(t, strip))
	if err == nil {
		t.Fatalf("an unhardened unit passed the gate with exposure %.1f:\n%s", score, out)
	}
	if score*10 <= exposureThreshold {
		t.Fatalf("unhardened unit scored %.1f, expected above %.1f", score, exposureThreshold/10.0)
	}
}

// unitDirectives parses the unit into key -> values (keys may repeat).
func unitDirectives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatalf("opening unit: %v", err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("malformed unit line %q", line)
		}
		out[k] = append(out[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading unit: %v", err)
	}
	return out
}

func TestUnitFollowsConventions(t *testing.T) {
	d := unitDirectives(t)
	want := map[string]string{
		"Type":                    "notify",
		"Restart":                 "on-failure",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"StateDirectory":          "dockward",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"RestrictNamespaces":      "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"SystemCallFilter":        "@system-service",
		"UMask":                   "0077",
		"CapabilityBoundingSet":   "CAP_AUDIT_CONTROL CAP_AUDIT_READ CAP_DAC_READ_SEARCH CAP_SYS_PTRACE",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%v, want exactly %q", k, got, v)
		}
	}
	if w := d["WatchdogSec"]; len(w) != 1 || w[0] == "0" {
		t.Errorf("WatchdogSec=%v, want one non-zero value", w)
	}
	// Audit netlink refuses processes outside the initial user namespace.
	if v, ok := d["PrivateUsers"]; ok {
		t.Errorf("PrivateUsers=%v must not be set: audit netlink would refuse the agent", v)
	}
	// CAP_SYS_PTRACE is only for /proc access checks; the syscall filter
	// must keep the ptrace family out.
	if v := d["SystemCallFilter"]; len(v) != 1 || v[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%v, want only @system-service (which excludes ptrace and process_vm_*)", v)
	}
	if v := d["EnvironmentFile"]; len(v) != 1 || v[0] != "-/etc/default/dockward" {
		t.Errorf("EnvironmentFile=%v, want -/etc/default/dockward", v)
	}
	if v := d["ExecStart"]; len(v) != 1 || !strings.Contains(v[0], "$DOCKWARD_ARGS") {
		t.Errorf("ExecStart=%v must pass $DOCKWARD_ARGS from the environment file", v)
	}
}

func TestEnvironmentFileDefinesArgs(t *testing.T) {
	data, err := os.ReadFile("dockward.default")
	if err != nil {
		t.Fatalf("reading environment file: %v", err)
	}
	m := regexp.MustCompile(`(?m)^DOCKWARD_ARGS="([^"]*)"$`).FindSubmatch(data)
	if m == nil {
		t.Fatal(`dockward.default must set DOCKWARD_ARGS="..."`)
	}
	for _, arg := range strings.Fields(string(m[1])) {
		if !strings.HasPrefix(arg, "--") || !strings.Contains(arg, "=") {
			t.Errorf("argument %q: write flags as --name=value so systemd splits them safely", arg)
		}
	}
}
