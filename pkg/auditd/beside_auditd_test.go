package auditd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/hostfs"
)

// The tests here run dockward the way most CIS-hardened hosts would meet
// it: Debian's auditd is the audit daemon, with the CIS Docker Benchmark's
// watches written as the benchmark writes them (no -p, so the kernel also
// reports reads and executions), and dockward next to it in auto mode
// (multicast) or tailing auditd's log.

// startAuditdLogging runs Debian's auditd as the audit daemon until the
// test ends, with Debian's own auditd.conf settings but a private log (in
// format, RAW or ENRICHED) in a temporary directory, and returns the log's
// path and the process once auditd holds the kernel's audit PID.
func startAuditdLogging(t *testing.T, format string) (string, *testenv.Process) {
	t.Helper()
	auditd := testenv.RequireCommand(t, "auditd")
	orig := testenv.Run(t, "auditctl", "-s")
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	conf := fmt.Sprintf("local_events = yes\nwrite_logs = yes\nlog_file = %s\nlog_format = %s\nflush = INCREMENTAL_ASYNC\n"+
		"freq = 50\nnum_logs = 1\nname_format = NONE\nmax_log_file = 100\nmax_log_file_action = IGNORE\n"+
		"space_left = 75\nspace_left_action = IGNORE\nadmin_space_left = 50\nadmin_space_left_action = IGNORE\n"+
		"disk_full_action = IGNORE\ndisk_error_action = IGNORE\nplugin_dir = %s/plugins\nq_depth = 2000\n"+
		"overflow_action = IGNORE\nend_of_event_timeout = 2\n", log, format, dir)
	if err := os.WriteFile(filepath.Join(dir, "auditd.conf"), []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
	t.Cleanup(func() { // after auditd has stopped: it leaves audit enabled
		if strings.Contains(orig, "enabled 0") {
			testenv.Run(t, "auditctl", "-e", "0")
		}
	})
	p := testenv.Command(t, "auditd", auditd, "-n", "-c", dir)
	testenv.WaitFor(t, 5*time.Second, "auditd to take the audit PID", func() bool {
		return strings.Contains(testenv.Run(t, "auditctl", "-s"), fmt.Sprintf("pid %d", p.Cmd.Process.Pid))
	})
	testenv.WaitFor(t, 5*time.Second, "auditd to open its log", func() bool { _, err := os.Stat(log); return err == nil })
	return log, p
}

// cisRules are the CIS Docker Benchmark watches on every watched path that
// exists on this host, as the benchmark writes them: no -p, key docker;
// the docker CLI keyed docker_bin, as some rule sets do (dockward's key
// for dockerd).
func cisRules(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for _, w := range ResolveWatches(DefaultConfig(), hostfs.Root{}) {
		if _, err := os.Stat(w.Path); err != nil {
			continue
		}
		key := "docker"
		if w.Key == "docker_cli_bin" {
			key = "docker_bin"
		}
		out = append(out, []string{"-w", w.Path, "-k", key})
	}
	return out
}

// loadCISRules loads cisRules (again, after a test removed some) and
// removes whichever of them are still loaded when the test ends.
func loadCISRules(t *testing.T) {
	t.Helper()
	rules := cisRules(t)
	loaded := testenv.Run(t, "auditctl", "-l")
	for _, r := range rules {
		if !strings.Contains(loaded, "-w "+r[1]+" -p rwxa -k "+r[3]) {
			testenv.Run(t, "auditctl", r...)
		}
	}
	t.Cleanup(func() {
		for _, r := range rules {
			_ = exec.Command("auditctl", "-W", r[1], "-k", r[3]).Run() // gone already after -D
		}
	})
}

// asLogin runs a command as a process whose login uid is auid, so that the
// records name an actor other than the test itself.
func asLogin(t *testing.T, auid int, name string, args ...string) {
	t.Helper()
	script := fmt.Sprintf(`echo %d > /proc/self/loginuid && exec "$@"`, auid)
	testenv.Run(t, "sh", append([]string{"-c", script, "sh", name}, args...)...)
}

// routineDockerUse is what an administrator and Docker do all day: the CLI,
// reading daemon.json and the units, listing /var/lib/docker, and a
// container start (dockerd, containerd, the shim and runc).
func routineDockerUse(t *testing.T, image string) {
	t.Helper()
	testenv.Run(t, "docker", "ps")
	testenv.Run(t, "docker", "version")
	for _, w := range ResolveWatches(DefaultConfig(), hostfs.Root{}) {
		if fi, err := os.Stat(w.Path); err == nil && fi.Mode().IsRegular() && w.Kind == KindConfig {
			testenv.Run(t, "cat", w.Path) // daemon.json, docker.service, docker.socket...
		}
	}
	testenv.Run(t, "ls", "-la", "/var/lib/docker")
	testenv.Run(t, "docker", "run", "--rm", "--network", "none", image, "true")
}

// settle waits until the source has classified nothing new for quiet.
func (l *liveSource) settle(t *testing.T, quiet time.Duration) {
	t.Helper()
	n := -1
	testenv.WaitFor(t, 30*time.Second, "the audit events to stop", func() bool {
		m := len(l.events())
		if m == n {
			return true
		}
		n = m
		time.Sleep(quiet)
		return false
	})
}

// loudLines are the source's lines at warn or above.
func (l *liveSource) loudLines() []observer.LoggedEntry {
	return l.logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zap.WarnLevel }).All()
}

// startBesideCISAuditd starts Debian's auditd logging in format with the
// CIS watches written without -p, and the source in mode beside it.
func startBesideCISAuditd(t *testing.T, mode Mode, format string) *liveSource {
	requireAudit(t)
	expectKernelRestored(t)
	cfg := DefaultConfig()
	cfg.Mode = mode
	cfg.LogFile, _ = startAuditdLogging(t, format)
	loadCISRules(t)
	return startSource(t, cfg, Deps{})
}

func TestCISBesideAuditd(t *testing.T) {
	for _, mode := range []Mode{ModeAuto, ModeFile} {
		t.Run(string(mode), func(t *testing.T) { routineBesideAuditd(t, mode) })
	}
}

// routineBesideAuditd: routine Docker use gives expected="false" 0 and no
// warn or error line; a write under /etc/docker by another program is
// counted and logged with its actor within 1 s.
func routineBesideAuditd(t *testing.T, mode Mode) {
	image := testenv.RequireBusyboxImage(t)
	l := startBesideCISAuditd(t, mode, "ENRICHED")
	if mode == ModeAuto && l.src.Mode() != ModeMulticast {
		t.Fatalf("auto chose %s next to auditd, want multicast", l.src.Mode())
	}
	// The CIS rules carry no -p: they cover every watched path that exists.
	if mode == ModeAuto {
		for _, f := range l.store.Open() {
			if f.Rule == "audit.watch_missing" {
				t.Errorf("%s is reported uncovered although a CIS rule without -p watches it: %s", f.Subject.Name, f.Message)
			}
		}
	}
	routineDockerUse(t, image)
	l.settle(t, time.Second)
	for _, w := range l.src.watches {
		if n := eventTotal(t, l.src.m, w.Key, false); n != 0 {
			t.Errorf("%s: routine use counted %v events expected=\"false\"", w.Key, n)
		}
	}
	for _, e := range l.loudLines() {
		t.Errorf("routine use logged %s %q %v", e.Level, e.Message, e.ContextMap())
	}
	if n := len(l.events()); n < 50 {
		t.Errorf("only %d events from routine use; the CIS rules without -p report reads and executions", n)
	}
	path := testPath(t, "beside-"+string(mode))
	start := time.Now()
	asLogin(t, 1000, "sh", "-c", "echo x > "+path)
	line := l.waitUnexpectedLine(3*time.Second, path)
	took := time.Since(start)
	actor, _ := line["actor"].(map[string]any)
	if line == nil || took > time.Second || actor["auid"] != int64(1000) || actor["comm"] != "sh" ||
		line["access"] != "write" || line["key"] != "docker_etc" || line["rule_key"] != "docker" {
		t.Fatalf("the write by sh (auid 1000) was logged after %s: %v", took, line)
	}
	t.Logf("%s: the write was logged %s after sh returned", mode, took.Round(time.Millisecond))
	if n := eventTotal(t, l.src.m, "docker_etc", false); n < 1 {
		t.Errorf("the write was not counted expected=\"false\": %v", n)
	}
}

// tamperLines are the source's tamper lines of kind.
func (l *liveSource) tamperLines(kind TamperKind) []map[string]any {
	var out []map[string]any
	for _, e := range l.logs.FilterMessage("kernel audit tampered with").All() {
		if f := e.ContextMap(); f["kind"] == string(kind) {
			out = append(out, f)
		}
	}
	return out
}

// expectTamper runs act (auditctl with login uid 1000) and wants exactly
// one new tamper line of kind within 1 s, naming auditctl and the auid,
// counted once.
func expectTamper(t *testing.T, l *liveSource, kind TamperKind, act func()) {
	t.Helper()
	before := len(l.tamperLines(kind))
	counted := counterValue(t, l.src.m.tamper[kind])
	start := time.Now()
	act()
	testenv.Eventually(3*time.Second, func() bool { return len(l.tamperLines(kind)) > before })
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond) // a second line would come within this
	lines := l.tamperLines(kind)[before:]
	if len(lines) != 1 || took > time.Second {
		t.Fatalf("%s: %d lines after %s, want one within 1s: %v", kind, len(lines), took, lines)
	}
	f := lines[0]
	actor, _ := f["actor"].(map[string]any)
	if actor["comm"] != "auditctl" || !strings.HasSuffix(fmt.Sprint(actor["exe"]), "/auditctl") ||
		actor["auid"] != int64(1000) || f["change"] == "" || f["actor_known"] != true {
		t.Errorf("%s line: %v", kind, f)
	}
	if got := counterValue(t, l.src.m.tamper[kind]); got != counted+1 {
		t.Errorf("dockward_audit_tamper_events_total{kind=%q} went from %v to %v, want one more", kind, counted, got)
	}
	t.Logf("%s: logged %s after auditctl returned", kind, took.Round(time.Millisecond))
}

func TestTamperBesideAuditd(t *testing.T) {
	for _, mode := range []Mode{ModeAuto, ModeFile} {
		t.Run(string(mode), func(t *testing.T) {
			l := startBesideCISAuditd(t, mode, "RAW")
			before := testenv.Run(t, "auditctl", "-l")
			expectTamper(t, l, TamperRuleRemoved, func() { asLogin(t, 1000, "auditctl", "-W", "/etc/docker", "-k", "docker") })
			loadCISRules(t)
			expectTamper(t, l, TamperRuleRemoved, func() { asLogin(t, 1000, "auditctl", "-D") })
			loadCISRules(t)
			expectTamper(t, l, TamperAuditDisabled, func() { asLogin(t, 1000, "auditctl", "-e", "0") })
			testenv.Run(t, "auditctl", "-e", "1")
			if after := testenv.Run(t, "auditctl", "-l"); after != before {
				t.Errorf("%s mode changed the rules:\nbefore:\n%s\nafter:\n%s", mode, before, after)
			}
		})
	}
}

// TestTamperUnicast: dockward is the audit daemon; the same tampering gives
// the same lines, and the rules it installed are back at once.
func TestTamperUnicast(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	l := startSource(t, unicastConfig(), Deps{})
	rules := func() string { // in any order: a reinstalled rule comes last
		l := strings.Split(strings.TrimSpace(testenv.Run(t, "auditctl", "-l")), "\n")
		slices.Sort(l)
		return strings.Join(l, "\n")
	}
	own := rules()
	if !strings.Contains(own, "-w /etc/docker -p wa -k docker_etc") {
		t.Fatalf("dockward's rules are not loaded:\n%s", own)
	}
	reinstalled := func(what string) {
		t.Helper()
		if !testenv.Eventually(time.Second, func() bool { return rules() == own }) {
			t.Errorf("after %s the rules are not back within 1s:\n%s", what, testenv.Run(t, "auditctl", "-l"))
		}
	}
	expectTamper(t, l, TamperRuleRemoved, func() {
		asLogin(t, 1000, "auditctl", "-W", "/etc/docker", "-p", "wa", "-k", "docker_etc")
	})
	reinstalled("auditctl -W")
	expectTamper(t, l, TamperRuleRemoved, func() { asLogin(t, 1000, "auditctl", "-D") })
	reinstalled("auditctl -D")
	expectTamper(t, l, TamperAuditDisabled, func() { asLogin(t, 1000, "auditctl", "-e", "0") })
	testenv.Run(t, "auditctl", "-e", "1")
}

// TestAuditdEndedBesideIt: auditd stopped (the kernel's audit_pid reset,
// which no SYSCALL record follows) and auditd killed with SIGKILL (no record
// at all: the status poll sees its PID gone) are each one daemon_ended
// line within 1 s, in multicast mode.
func TestAuditdEndedBesideIt(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			requireAudit(t)
			expectKernelRestored(t)
			_, auditd := startAuditdLogging(t, "RAW")
			l := startSource(t, DefaultConfig(), Deps{})
			if l.src.Mode() != ModeMulticast {
				t.Fatalf("auto chose %s next to auditd, want multicast", l.src.Mode())
			}
			start := time.Now()
			auditd.Signal(t, sig)
			auditd.Wait(t, 5*time.Second)
			testenv.Eventually(3*time.Second, func() bool { return len(l.tamperLines(TamperDaemonEnded)) > 0 })
			took := time.Since(start)
			time.Sleep(time.Second) // the poll must not report it again
			lines := l.tamperLines(TamperDaemonEnded)
			if len(lines) != 1 || took > time.Second || lines[0]["change"] == "" {
				t.Fatalf("%d daemon_ended lines after %s, want one within 1s: %v", len(lines), took, lines)
			}
			t.Logf("%s: daemon_ended logged %s after the signal (%s)", sig, took.Round(time.Millisecond), lines[0]["seen_by"])
		})
	}
}
