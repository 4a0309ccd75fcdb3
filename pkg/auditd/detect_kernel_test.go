package auditd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd/detect"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
)

// envCall makes the test binary make one call in a fresh process: forked
// after audit was enabled, so the kernel audits it.
const envCall = "DOCKWARD_AUDIT_TEST_CALL"

// callMain makes the call of spec: "ptrace-attach:PID" or "init-module".
func callMain(spec string) int {
	var err error
	switch op, arg, _ := strings.Cut(spec, ":"); op {
	case "ptrace-attach":
		pid, _ := strconv.Atoi(arg)
		err = unix.PtraceAttach(pid)
	case "init-module":
		err = unix.InitModule([]byte("not a kernel module"), "")
	default:
		fmt.Fprintf(os.Stderr, "unknown call %q\n", spec)
		return 2
	}
	fmt.Println(err)
	return 0
}

// hostCall runs callMain(spec) in a child process and returns its PID.
func hostCall(t *testing.T, spec string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCall+"="+spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", spec, err, out)
	}
	return cmd.Process.Pid
}

// waitDetection waits for a detection matching match.
func (l *liveSource) waitDetection(timeout time.Duration, match func(Detected) bool) (Detected, bool) {
	var got Detected
	ok := testenv.Eventually(timeout, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, d := range l.dets {
			if match(d) {
				got = d
				return true
			}
		}
		return false
	})
	return got, ok
}

// releaseAgentSnippet is the loop docs/audit.md gives for the release_agent
// rules of a host's cgroup v1 hierarchies (printed to stdout here).
const releaseAgentSnippet = `for f in /sys/fs/cgroup/*/release_agent; do
  [ -e "$f" ] && echo "-w $f -p wa -k dockward_escape"
done`

// shippedRules writes the shipped rules file and the docs' release_agent
// rules into dir/rules.d, as an administrator installs them, and returns
// their lines.
func shippedRules(t *testing.T, dir string) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/audit.md")
	if err != nil || !strings.Contains(string(doc), releaseAgentSnippet) {
		t.Fatalf("docs/audit.md does not give the release_agent loop this test runs (%v):\n%s", err, releaseAgentSnippet)
	}
	escape, err := os.ReadFile("../../deploy/audit/50-dockward-escape.rules")
	if err != nil {
		t.Fatal(err)
	}
	agent := testenv.Run(t, "sh", "-c", releaseAgentSnippet)
	os.MkdirAll(filepath.Join(dir, "rules.d"), 0o750)
	for name, data := range map[string]string{"50-dockward-escape.rules": string(escape), "51-dockward-release-agent.rules": agent} {
		if err := os.WriteFile(filepath.Join(dir, "rules.d", name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, l := range strings.Split(string(escape)+agent, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// removeRules deletes rule lines (auditctl syntax) from the kernel.
func removeRules(t *testing.T, lines []string) {
	t.Helper()
	for _, l := range lines {
		args := strings.Fields(l)
		args[0] = map[string]string{"-a": "-d", "-w": "-W"}[args[0]]
		if out, err := exec.Command("auditctl", args...).CombinedOutput(); err != nil {
			t.Errorf("removing %q: %v\n%s", l, err, out)
		}
	}
}

// kernelLacks reports which of the source's detection rules the
// kernel lacks.
func kernelLacks(t *testing.T, src *Source) []string {
	t.Helper()
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	krules, err := rules.List(ctl)
	if err != nil {
		t.Fatal(err)
	}
	var lack []string
	for _, r := range src.det.rules {
		wire, err := r.Wire()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := rules.Decode(wire)
		if !hasRule(krules, want, r.Watch) {
			lack = append(lack, r.Line)
		}
	}
	return lack
}

// detectionFindings are the open audit.detection_rule_missing findings.
func detectionFindings(store *findings.Store) map[string]string {
	out := map[string]string{}
	for _, f := range store.Open() {
		if f.Rule == "audit.detection_rule_missing" {
			out[f.Subject.Name] = f.Details["missing"] + f.Message
		}
	}
	return out
}

// The shipped rules file and the docs' release_agent rules load with
// augenrules (in a mount namespace of its own, so /etc/audit is a
// temporary directory), and then cover every detection: a scan, which
// changes nothing, finds no detection uncovered.
func TestShippedRulesLoadWithAugenrules(t *testing.T) {
	requireAudit(t)
	testenv.RequireCommand(t, "augenrules")
	testenv.RequireCommand(t, "unshare")
	expectKernelRestored(t)
	dir := t.TempDir()
	lines := shippedRules(t, dir)
	if !strings.Contains(testenv.Run(t, "auditctl", "-s"), "enabled 1") {
		testenv.Run(t, "auditctl", "-e", "1")
		t.Cleanup(func() { testenv.Run(t, "auditctl", "-e", "0") })
	}
	t.Cleanup(func() { removeRules(t, lines) })
	out := testenv.Run(t, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount --bind "+dir+" /etc/audit && augenrules --load && augenrules --check")
	if !strings.Contains(out, "No change") {
		t.Errorf("augenrules --check after --load: %s", out)
	}
	cfg := DefaultConfig()
	store := findings.NewStore(nil)
	src, err := New(cfg, Deps{Sink: store.SourceSink(Name)})
	if err != nil {
		t.Fatal(err)
	}
	if lack := kernelLacks(t, src); len(lack) > 0 {
		t.Fatalf("after augenrules --load the kernel lacks %d of the detection rules: %q", len(lack), lack)
	}
	if err := src.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := detectionFindings(store); len(got) > 0 {
		t.Errorf("detections uncovered with the shipped rules loaded: %v", got)
	}
}

// In unicast mode the source installs every detection rule after the
// watches, reports a host's bogus module load, puts back a rule removed
// behind its back, keeps a rule someone else loaded before it, and removes
// only its own on exit.
func TestUnicastDetectionRules(t *testing.T) {
	requireAudit(t)
	theirs := "-a always,exit -F arch=b64 -S bpf -F a0=0x5 -k dockward_escape"
	testenv.Run(t, "auditctl", strings.Fields(theirs)...)
	t.Cleanup(func() { removeRules(t, []string{theirs}) })
	expectKernelRestored(t)
	l := startSource(t, unicastConfig(), Deps{})
	if lack := kernelLacks(t, l.src); len(lack) > 0 {
		t.Fatalf("unicast mode did not install %q", lack)
	}
	for _, f := range detectionFindings(l.store) {
		t.Errorf("detection uncovered with dockward's own rules: %s", f)
	}
	pid := hostCall(t, "init-module")
	d, ok := l.waitDetection(time.Second, func(d Detected) bool { return d.Actor.PID == int64(pid) })
	if !ok || d.Detection.Name != "kernel_module_load" || d.Origin != detect.OriginHost || d.Outcome != detect.Failure {
		t.Fatalf("a host's bogus init_module: %+v (found %v)", d, ok)
	}
	removed := "-a always,exit -F arch=b32 -S ptrace -F a0=0x10 -k dockward_escape"
	removeRules(t, []string{removed})
	testenv.WaitFor(t, 3*time.Second, "the removed ptrace rule to be reinstalled", func() bool { return len(kernelLacks(t, l.src)) == 0 })
	if got := counterValue(t, l.src.m.reinstalledKey[detect.RuleKey]); got != 1 {
		t.Errorf("dockward_audit_rules_reinstalled_total{key=dockward_escape} = %v", got)
	}
	var installed int
	for _, e := range l.logs.FilterMessage("dockward is the audit daemon").All() {
		installed = int(e.ContextMap()["rules_installed"].(int64))
	}
	if want := len(l.src.watches) + len(l.src.det.rules) - 1; installed != want {
		t.Errorf("installed %d rules, want %d (every watch and detection rule but the one already loaded)", installed, want)
	}
}

// Beside a real auditd holding the kernel's rules (loaded from the shipped
// files), auto mode reads a copy of the records: the detections are
// covered and reported, and a rule auditd loses is a finding naming what
// is missing.
func TestDetectionsBesideAuditd(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	startAuditd(t)
	lines := shippedRules(t, t.TempDir())
	for _, l := range lines {
		testenv.Run(t, "auditctl", strings.Fields(l)...)
	}
	t.Cleanup(func() { removeRules(t, lines) })
	cfg := DefaultConfig()
	cfg.RuleCheckInterval = 200 * time.Millisecond
	l := startSource(t, cfg, Deps{})
	if l.src.Mode() != ModeMulticast {
		t.Fatalf("mode %s beside auditd", l.src.Mode())
	}
	if got := detectionFindings(l.store); len(got) > 0 {
		t.Errorf("detections uncovered beside auditd with the shipped rules: %v", got)
	}
	pid := hostCall(t, "ptrace-attach:4000000")
	d, ok := l.waitDetection(time.Second, func(d Detected) bool { return d.Actor.PID == int64(pid) })
	if !ok || d.Detection.Name != "ptrace_attach" || d.Detail != "PTRACE_ATTACH pid 4000000" || d.Outcome != detect.Failure {
		t.Fatalf("a host's ptrace attach beside auditd: %+v (found %v)", d, ok)
	}
	lost := "-a always,exit -F arch=b32 -S ptrace -F a0=0x10 -k dockward_escape"
	removeRules(t, []string{lost})
	defer testenv.Run(t, "auditctl", strings.Fields(lost)...)
	testenv.WaitForState(t, 3*time.Second, "audit.detection_rule_missing for ptrace_attach", func() (bool, string) {
		got := detectionFindings(l.store)
		return strings.Contains(got["ptrace_attach"], "arch=b32 ptrace a0=0x10") && len(got) == 1, fmt.Sprint(got)
	})
}
