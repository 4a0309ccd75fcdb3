package auditd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Kernel tests run serially (no t.Parallel): they share the kernel's one
// audit configuration.

// requireAudit needs root, auditctl and a kernel that answers audit netlink,
// and holds the kernel audit test lock for the rest of the test, so that no
// other test package (an agent, auditd, another kernel test) changes the
// kernel's audit state meanwhile.
func requireAudit(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "auditctl")
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		testenv.Missing(t, "kernel audit netlink: %v", err)
		return
	}
	defer c.Close()
	if _, err := c.GetStatus(); err != nil {
		testenv.Missing(t, "kernel audit status: %v", err)
		return
	}
	testenv.LockKernelAudit(t)
	waitPIDFree(t)
}

// waitPIDFree waits for no live process to hold the kernel's audit PID.
func waitPIDFree(t testing.TB) { t.Helper(); testenv.WaitAuditPIDFree(t) }

// kernelAuditState is `auditctl -s` and `auditctl -l`, without the
// figures the kernel changes by itself.
func kernelAuditState(t testing.TB) string { t.Helper(); return testenv.KernelAuditState(t) }

// expectKernelRestored fails the test if the kernel's audit state differs
// when it is done.
func expectKernelRestored(t testing.TB) { t.Helper(); testenv.ExpectKernelAuditRestored(t) }

type liveSource struct {
	src   *Source
	store *findings.Store
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
	stop  func() error // set once started; safe to call again
	mu    sync.Mutex
	evs   []seen
	dets  []Detected
}

// events returns a copy of the events seen so far.
func (l *liveSource) events() []seen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seen(nil), l.evs...)
}

// waitEvent waits for an event matching match and returns it.
func (l *liveSource) waitEvent(t testing.TB, timeout time.Duration, match func(seen) bool) (seen, bool) {
	t.Helper()
	var found seen
	ok := testenv.Eventually(timeout, func() bool {
		for _, s := range l.events() {
			if match(s) {
				found = s
				return true
			}
		}
		return false
	})
	return found, ok
}

// waitUnexpectedLine waits for the source's log line about an unexpected
// writer of path and returns its fields (nil if none came within timeout).
func (l *liveSource) waitUnexpectedLine(timeout time.Duration, path string) map[string]any {
	var line map[string]any
	testenv.Eventually(timeout, func() bool {
		for _, e := range l.logs.FilterMessage("audit event by an unexpected writer").All() {
			if e.ContextMap()["path"] == path {
				line = e.ContextMap()
			}
		}
		return line != nil
	})
	return line
}

// newLiveSource builds a source that keeps every event it classifies and,
// unless d has a logger, logs to an observer; a test may change it before
// starting it.
func newLiveSource(t testing.TB, cfg Config, d Deps) *liveSource {
	t.Helper()
	l := &liveSource{store: findings.NewStore(nil), reg: prometheus.NewRegistry()}
	if d.Log == nil {
		var core zapcore.Core
		core, l.logs = observer.New(zap.DebugLevel)
		d.Log = zap.New(core)
	}
	d.Registerer, d.Sink = l.reg, l.store.SourceSink(Name)
	src, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	src.onEvent = func(ev *record.Event, w Watch, expected bool) {
		c := *ev
		c.Paths = append([]record.PathItem(nil), ev.Paths...)
		l.mu.Lock()
		l.evs = append(l.evs, seen{c, w.Key, expected})
		l.mu.Unlock()
	}
	src.onDetection = func(_ *record.Event, d Detected) {
		l.mu.Lock()
		l.dets = append(l.dets, d)
		l.mu.Unlock()
	}
	l.src = src
	return l
}

// tryStart runs the source until the test ends and waits for ready; the
// error is what Run returned before it was ready.
func (l *liveSource) tryStart(t testing.TB) error {
	t.Helper()
	stop, err := testenv.StartRunner(t, l.src)
	if err != nil {
		return err
	}
	l.stop = stop
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
	return nil
}

// start is tryStart failing the test on an error.
func (l *liveSource) start(t testing.TB) *liveSource {
	t.Helper()
	if err := l.tryStart(t); err != nil {
		t.Fatalf("%s Run failed before ready: %v", l.src.cfg.Mode, err)
	}
	return l
}

// startSource runs a new live source until the test ends and waits for
// ready, retrying as startRetrying does.
func startSource(t testing.TB, cfg Config, d Deps) *liveSource {
	t.Helper()
	return startRetrying(t, func() *liveSource { return newLiveSource(t, cfg, d) })
}

// startRetrying starts the source newSource builds. When an audit daemon
// outside the tests (a developer's agent) takes the audit PID first, it
// waits for it to go and tries again with a new source.
func startRetrying(t testing.TB, newSource func() *liveSource) *liveSource {
	t.Helper()
	for attempt := 0; ; attempt++ {
		l := newSource()
		err := l.tryStart(t)
		if err == nil {
			return l
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "audit PID") {
			t.Fatalf("Run failed before ready: %v", err)
		}
		t.Logf("retrying after: %v", err)
		waitPIDFree(t)
	}
}

func unicastConfig() Config {
	c := DefaultConfig()
	c.Mode = ModeUnicast
	c.StatusInterval = 200 * time.Millisecond
	return c
}

// testPath returns a fresh path under /etc/docker, removed at the end.
func testPath(t *testing.T, name string) string {
	t.Helper()
	if _, err := os.Stat("/etc/docker"); err != nil {
		testenv.Missing(t, "/etc/docker: %v", err)
	}
	p := fmt.Sprintf("/etc/docker/dockward-test-%s-%d", name, time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(p) })
	return p
}

func ownAUID(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/loginuid")
	if err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("loginuid %q: %v", b, err)
	}
	if id == 4294967295 || id < 0 { // never logged in
		return record.UnsetID
	}
	return id
}

// TestUnicastLiveEvent installs the rules, writes under /etc/docker and
// expects the counter and the log line within 1s.
func TestUnicastLiveEvent(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	path := testPath(t, "live")
	wasDisabled := strings.Contains(testenv.Run(t, "auditctl", "-s"), "enabled 0\n")
	l := startSource(t, unicastConfig(), Deps{})
	if l.src.Mode() != ModeUnicast {
		t.Fatalf("mode %s", l.src.Mode())
	}
	rules := testenv.Run(t, "auditctl", "-l")
	if !strings.Contains(rules, "-w /etc/docker -p wa -k docker_etc") {
		t.Fatalf("rules not installed:\n%s", rules)
	}
	// The backlog is raised and never waited on, so a slow reader cannot
	// stall the host's syscalls; audit is on and dockward holds the PID.
	status := testenv.Run(t, "auditctl", "-s")
	for _, want := range []string{"enabled 1\n", "backlog_limit 8192\n", "backlog_wait_time 0\n", fmt.Sprintf("pid %d\n", os.Getpid())} {
		if !strings.Contains(status, want) {
			t.Errorf("auditctl -s in unicast mode lacks %q:\n%s", want, status)
		}
	}
	for _, f := range l.store.Open() {
		if f.Rule == "audit.watch_missing" {
			t.Errorf("watch reported missing while dockward's rules are installed: %+v", f)
		}
	}
	// dockerd running since before this test enabled audit is unaudited
	// unless the kernel was booted with audit=1 (or audit was enabled
	// before dockerd started, which the kernel log would show).
	if pid := hostDockerdPID(); pid != 0 && wasDisabled && !bootedWithAudit(l.src.cmdline) {
		hist, _ := readKmsg("/dev/kmsg")
		var open bool
		for _, f := range l.store.Open() {
			open = open || f.Rule == "audit.daemon_unaudited"
		}
		if start, err := processStart("/proc", pid); err == nil && hist.firstEnable == 0 && !hist.bootEnabled && !open {
			t.Errorf("dockerd (pid %d, started %s after boot) predates audit being enabled now, but no audit.daemon_unaudited", pid, start)
		}
	}
	start := time.Now()
	testenv.Run(t, "touch", path)
	ev, ok := l.waitEvent(t, time.Second, func(s seen) bool { return s.ev.Path() == path })
	if !ok {
		t.Fatalf("no event for %s within 1s; saw %d events", path, len(l.events()))
	}
	t.Logf("event after %s", time.Since(start))
	if ev.key != "docker_etc" || ev.expected || ev.ev.Exe != "/usr/bin/touch" || !ev.ev.Success ||
		ev.ev.AUID != ownAUID(t) || ev.ev.Syscall == "" {
		t.Errorf("event = %+v key %s expected %v", ev.ev, ev.key, ev.expected)
	}
	if got := eventTotal(t, l.src.m, "docker_etc", false); got < 1 {
		t.Errorf(`dockward_audit_events_total{key="docker_etc",expected="false"} = %v`, got)
	}
	line := l.waitUnexpectedLine(time.Second, path)
	if line == nil {
		t.Fatal("no log line for the event")
	}
	actor, _ := line["actor"].(map[string]any)
	if line["key"] != "docker_etc" || line["success"] != true || actor["exe"] != "/usr/bin/touch" ||
		actor["auid"] != ownAUID(t) || actor["comm"] != "touch" || actor["pid"] == int64(0) {
		t.Errorf("log line = %v", line)
	}
	if got := counterValue(t, l.src.m.sequenceGaps); got != 0 {
		t.Errorf("sequence gaps = %v", got)
	}
}

// TestUnicastReinstallsRemovedRule removes dockward's rule behind its back.
func TestUnicastReinstallsRemovedRule(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	l := startSource(t, unicastConfig(), Deps{})
	testenv.Run(t, "auditctl", "-W", "/etc/docker", "-p", "wa", "-k", "docker_etc")
	testenv.WaitFor(t, 3*time.Second, "the removed rule to be reinstalled", func() bool {
		return strings.Contains(testenv.Run(t, "auditctl", "-l"), "-w /etc/docker -p wa -k docker_etc")
	})
	if got := counterValue(t, l.src.m.reinstalledKey["docker_etc"]); got != 1 {
		t.Errorf("rules reinstalled = %v, want 1", got)
	}
	if l.logs.FilterMessage("an audit rule dockward installed was removed; reinstalled it").Len() != 1 {
		t.Error("reinstall not logged")
	}
}

// TestUnicastKeepsOthersRules: a rule someone else installed before
// dockward started, identical to one of dockward's, stays after it stops.
func TestUnicastKeepsOthersRules(t *testing.T) {
	requireAudit(t)
	testenv.Run(t, "auditctl", "-w", "/etc/docker", "-p", "wa", "-k", "docker_etc")
	testenv.Run(t, "auditctl", "-w", "/tmp", "-p", "x", "-k", "not_dockward")
	t.Cleanup(func() {
		testenv.Run(t, "auditctl", "-W", "/etc/docker", "-p", "wa", "-k", "docker_etc")
		testenv.Run(t, "auditctl", "-W", "/tmp", "-p", "x", "-k", "not_dockward")
	})
	expectKernelRestored(t)
	startSource(t, unicastConfig(), Deps{})
	rules := testenv.Run(t, "auditctl", "-l")
	if strings.Count(rules, "-w /etc/docker -p wa -k docker_etc") != 1 || !strings.Contains(rules, "not_dockward") {
		t.Fatalf("rules while running:\n%s", rules)
	}
}

// TestContainerAttribution writes from inside a container to a
// bind-mounted watched directory.
func TestContainerAttribution(t *testing.T) {
	requireAudit(t)
	image := testenv.RequireBusyboxImage(t)
	expectKernelRestored(t)
	dir := testPath(t, "ctr")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	l := startSource(t, unicastConfig(), Deps{ContainerName: func(id string) (string, bool) {
		mu.Lock()
		asked = append(asked, id)
		mu.Unlock()
		return "attribution-test", true
	}})
	out := testenv.Run(t, "docker", "run", "-d", "--network", "none", "-l", "dockward.test=1",
		"-v", dir+":/mnt", image, "sh", "-c", "sleep 0.3; echo hi > /mnt/written; sleep 5")
	id := strings.TrimSpace(out)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	if len(id) != 64 {
		t.Fatalf("docker run printed %q", out)
	}
	if _, ok := l.waitEvent(t, 10*time.Second, func(s seen) bool { return s.ev.Path() == "/mnt/written" }); !ok {
		t.Fatal("no event for the container's write")
	}
	actor, _ := l.waitUnexpectedLine(2*time.Second, "/mnt/written")["actor"].(map[string]any)
	ctr, _ := actor["container"].(map[string]any)
	if ctr["id"] != id[:12] || ctr["name"] != "attribution-test" || actor["exe"] != "/bin/busybox" {
		t.Fatalf("actor = %v, want container %s", actor, id[:12])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 || asked[0] != id {
		t.Errorf("container name asked for %v, want the full ID", asked)
	}
}

// TestMulticastBesideUnicast runs a multicast reader next to a unicast
// one: both see the event, and the multicast reader changes nothing.
func TestMulticastBesideUnicast(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	path := testPath(t, "mc")
	uni := startSource(t, unicastConfig(), Deps{})
	testenv.Run(t, "touch", path+"-before")
	defer os.Remove(path + "-before")
	if _, ok := uni.waitEvent(t, 2*time.Second, func(s seen) bool { return s.ev.Path() == path+"-before" }); !ok {
		t.Fatalf("the unicast reader missed the event before multicast ran; it saw %+v", uni.events())
	}
	withUnicast := kernelAuditState(t)
	mcfg := DefaultConfig()
	mcfg.Mode = ModeMulticast
	mc := newLiveSource(t, mcfg, Deps{}).start(t)
	if mc.src.Mode() != ModeMulticast {
		t.Errorf("mode %s", mc.src.Mode())
	}
	testenv.Run(t, "touch", path)
	if _, ok := uni.waitEvent(t, 2*time.Second, func(s seen) bool { return s.ev.Path() == path }); !ok {
		t.Errorf("the unicast reader missed the event while multicast ran; it saw %+v", uni.events())
	}
	if _, ok := mc.waitEvent(t, 2*time.Second, func(s seen) bool { return s.ev.Path() == path }); !ok {
		t.Errorf("multicast saw %d events, none for %s", len(mc.events()), path)
	}
	if counterValue(t, mc.src.m.receiveErrors.WithLabelValues(reasonENOBUFS)) != 0 {
		t.Error("ENOBUFS on a quiet multicast socket")
	}
	// Stopped before the checks.
	if err := mc.stop(); err != nil {
		t.Errorf("multicast Run: %v", err)
	}
	if after := kernelAuditState(t); after != withUnicast {
		t.Errorf("multicast changed the kernel state:\nbefore:\n%s\nafter:\n%s", withUnicast, after)
	}
}

// TestScanChangesNothing judges coverage with audit as it is.
func TestScanChangesNothing(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	store, _ := scanKernel(t)
	rules := testenv.Run(t, "auditctl", "-l")
	status := testenv.Run(t, "auditctl", "-s")
	covered := strings.Contains(rules, "-w /etc/docker ") && strings.Contains(status, "enabled 1")
	var missingEtc bool
	for _, f := range store.Open() {
		if f.Rule == "audit.watch_missing" && f.Subject.Name == "/etc/docker" {
			missingEtc = true
			if f.CIS != "1.1.6" || f.Details["key"] != "docker_etc" || !strings.Contains(f.Remediation, "auditctl -w /etc/docker -p wa -k docker_etc") {
				t.Errorf("finding %+v", f)
			}
		}
	}
	if missingEtc == covered {
		t.Errorf("watch_missing for /etc/docker = %v, but coverage is %v (rules:\n%s)", missingEtc, covered, rules)
	}
}

// TestFileModeFollowsLog runs file mode on a log that auditd would write.
func TestFileModeFollowsLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(log, []byte("type=EOE msg=audit(1.0:1): \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Mode = ModeFile
	cfg.LogFile = log
	l := startSource(t, cfg, Deps{})
	data, err := os.ReadFile("testdata/enriched.log")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	f.Close()
	if _, ok := l.waitEvent(t, 3*time.Second, func(s seen) bool { return s.key == "runc_bin" }); !ok {
		t.Fatalf("file mode saw %d events, none for runc_bin", len(l.events()))
	}
	if n := len(l.events()); n != 6 {
		t.Errorf("file mode saw %d events, want 6", n)
	}
}

// startAuditd runs Debian's auditd in the foreground as the audit daemon,
// with a config that writes no log (events go to its stdout), until the
// test ends, and waits until it holds the kernel's audit PID.
func startAuditd(t *testing.T) *testenv.Process {
	t.Helper()
	auditd := testenv.RequireCommand(t, "auditd")
	orig := testenv.Run(t, "auditctl", "-s")
	dir := t.TempDir()
	conf := "local_events = yes\nwrite_logs = no\nlog_format = ENRICHED\nflush = NONE\nnum_logs = 1\n" +
		"name_format = NONE\nmax_log_file_action = IGNORE\nspace_left = 75\nspace_left_action = IGNORE\n" +
		"admin_space_left = 50\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\ndisk_error_action = IGNORE\n" +
		"plugin_dir = " + dir + "/plugins\nq_depth = 2000\noverflow_action = IGNORE\n"
	if err := os.WriteFile(filepath.Join(dir, "auditd.conf"), []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
	// auditd leaves audit enabled when it exits; put the flag back (after
	// it has stopped: cleanups run last-in first-out).
	t.Cleanup(func() {
		if strings.Contains(orig, "enabled 0") {
			testenv.Run(t, "auditctl", "-e", "0")
		}
	})
	p := testenv.Command(t, "auditd", auditd, "-f", "-n", "-c", dir)
	testenv.WaitFor(t, 5*time.Second, "auditd to take the audit PID", func() bool {
		return strings.Contains(testenv.Run(t, "auditctl", "-s"), fmt.Sprintf("pid %d", p.Cmd.Process.Pid))
	})
	return p
}

// TestAutoBesideAuditd runs the real auditd as the audit daemon: auto
// mode must choose multicast, see the event auditd also logs, and leave
// auditd's PID and rules alone.
func TestAutoBesideAuditd(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	auditd := startAuditd(t)
	testenv.Run(t, "auditctl", "-w", "/etc/docker", "-p", "wa", "-k", "docker_etc")
	t.Cleanup(func() { testenv.Run(t, "auditctl", "-W", "/etc/docker", "-p", "wa", "-k", "docker_etc") })
	withAuditd := kernelAuditState(t)
	t.Logf("auditd ready at %s", time.Now().Format("05.000"))
	// Explicit unicast refuses to take the PID from auditd.
	uc, err := New(unicastConfig(), Deps{Sink: findings.NewStore(nil).SourceSink(Name)})
	if err != nil {
		t.Fatal(err)
	}
	if err := uc.Run(context.Background(), func() { t.Error("unicast became ready next to auditd") }); err == nil ||
		!strings.Contains(err.Error(), "holds the audit PID") {
		t.Errorf("unicast next to auditd: %v, want a refusal naming the PID holder", err)
	}
	path := testPath(t, "auto")
	l := newLiveSource(t, DefaultConfig(), Deps{})
	if err := l.tryStart(t); err != nil {
		t.Fatalf("auto mode next to auditd: %v", err)
	}
	if l.src.Mode() != ModeMulticast {
		t.Fatalf("auto chose %s next to auditd, want multicast", l.src.Mode())
	}
	testenv.Run(t, "touch", path)
	if _, ok := l.waitEvent(t, 3*time.Second, func(s seen) bool { return s.ev.Path() == path }); !ok {
		t.Error("multicast next to auditd missed the event")
	}
	if err := l.stop(); err != nil {
		t.Error(err)
	}
	t.Logf("dockward stopped at %s", time.Now().Format("05.000"))
	if after := kernelAuditState(t); after != withAuditd {
		t.Errorf("dockward changed the kernel state next to auditd:\nbefore:\n%s\nafter:\n%s", withAuditd, after)
	}
	base := filepath.Base(path)
	if !testenv.Eventually(3*time.Second, func() bool {
		out := auditd.Logs.String()
		return strings.Contains(out, fmt.Sprintf("%X", base)) || strings.Contains(out, base)
	}) {
		t.Fatal("auditd did not log the event: dockward disturbed it")
	}
}

// TestCoverageFromKernelRules loads rules in several auditctl forms and
// checks coverage is judged from the kernel's decoded list.
func TestCoverageFromKernelRules(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "daemon.json")
	sub := filepath.Join(dir, "sub")
	other := filepath.Join(dir, "other")
	limited := filepath.Join(dir, "limited")
	chmodOnly := filepath.Join(dir, "chmod-only")
	noPerm := filepath.Join(dir, "no-p")      // the CIS benchmark's form: -w PATH -k docker
	anyTree := filepath.Join(dir, "any-tree") // a dir= rule with no perm field at all
	for _, p := range []string{file, other, limited, chmodOnly, noPerm} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{sub, anyTree} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	auditctlRules := [][]string{
		{"-a", "always,exit", "-F", "arch=b64", "-F", "path=" + file, "-F", "perm=wa", "-k", "a"},
		{"-a", "always,exit", "-F", "arch=b64", "-F", "dir=" + sub, "-F", "perm=w", "-k", "b"},
		{"-a", "always,exit", "-F", "arch=b64", "-F", "path=" + limited, "-F", "perm=wa", "-F", "auid>=1000", "-k", "c"},
		{"-w", other, "-p", "r", "-k", "d"},
		{"-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-F", "exe=/usr/bin/true", "-C", "uid!=euid", "-k", "e"},
		// Limited to one syscall: writes through open() are not audited.
		{"-a", "always,exit", "-F", "arch=b64", "-S", "chmod", "-F", "path=" + chmodOnly, "-F", "perm=wa", "-k", "f"},
		// Without -p the kernel holds perm=rwxa; without a perm field at
		// all it reports every syscall. Both cover writes.
		{"-w", noPerm, "-k", "docker"},
		{"-a", "always,exit", "-F", "arch=b64", "-F", "dir=" + anyTree, "-k", "g"},
	}
	for _, r := range auditctlRules {
		testenv.Run(t, "auditctl", r...)
		del := append([]string{"-d"}, r[1:]...)
		if r[0] == "-w" {
			del = append([]string{"-W"}, r[1:]...)
		}
		t.Cleanup(func() { testenv.Run(t, "auditctl", del...) })
	}
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	decoded, err := rules.List(ctl)
	if err != nil {
		t.Fatalf("decoding the kernel's rules: %v", err)
	}
	// dockward's decoder reads the binary rule itself (go-libaudit's
	// structural decoder is unexported and its command-line form loses
	// dir= against path=); it must agree with go-libaudit's decoding on
	// every rule the kernel holds.
	wires, err := ctl.GetRules()
	if err != nil {
		t.Fatal(err)
	}
	for i, wire := range wires {
		path, ruleKeys, restricted := libauditDecode(t, wire)
		d := decoded[i]
		if d.Path != path || d.Restricted != restricted || strings.Join(d.Keys, ",") != strings.Join(ruleKeys, ",") {
			t.Errorf("rule %d: dockward decoded path %q keys %v restricted %v; go-libaudit: %q %v %v",
				i, d.Path, d.Keys, d.Restricted, path, ruleKeys, restricted)
		}
	}
	ws := []rules.Watch{{Path: file}, {Path: filepath.Join(sub, "x")}, {Path: limited}, {Path: other}, {Path: dir}, {Path: chmodOnly},
		{Path: noPerm}, {Path: filepath.Join(anyTree, "daemon.json")}}
	cov := rules.CheckCoverage(ws, decoded, func(string) bool { return true })
	want := []bool{true, true, false, false, false, false, true, true}
	for i, c := range cov {
		if c.Covered != want[i] {
			t.Errorf("%s: covered %v, want %v", c.Watch.Path, c.Covered, want[i])
		}
	}
	if cov[0].ByKey != "a" || cov[1].ByKey != "b" || cov[6].ByKey != "docker" || cov[7].ByKey != "g" {
		t.Errorf("covering keys %q %q %q %q", cov[0].ByKey, cov[1].ByKey, cov[6].ByKey, cov[7].ByKey)
	}
}

// TestFileModeWaitsForLog starts file mode before auditd has written its
// log: the source is ready at once and reads the file when it appears.
func TestFileModeWaitsForLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "audit.log")
	cfg := DefaultConfig()
	cfg.Mode = ModeFile
	cfg.LogFile = log
	l := startSource(t, cfg, Deps{})
	data, err := os.ReadFile("testdata/raw.log")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.waitEvent(t, 5*time.Second, func(s seen) bool { return s.ev.Serial == 2 }); !ok {
		t.Fatalf("the log that appeared later was not read; saw %d events", len(l.events()))
	}
	if l.logs.FilterMessage("audit log file does not exist yet; waiting for it").Len() != 1 {
		t.Error("the wait was not logged once")
	}
}

// daemonMain is a child process that runs the source in unicast mode
// until SIGTERM, as the agent does.
func daemonMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := DefaultConfig()
	cfg.Mode = ModeUnicast
	d := Deps{Sink: findings.NewStore(nil).SourceSink(Name)}
	if v := os.Getenv(envDaemon); v != "1" {
		d.StateDir = v // the restore journal's directory
	}
	src, err := New(cfg, d)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := src.Run(ctx, func() { fmt.Println("ready") }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startDaemonChild runs daemonMain in a child process (env is its
// envDaemon value: "1", or the state directory) and returns it once the
// source is ready.
func startDaemonChild(t *testing.T, env string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envDaemon+"="+env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not get ready: %q %v %s", line, err, stderr.String())
	}
	return cmd, stderr
}

// TestSIGTERMRestores runs the source in another process and stops it
// with SIGTERM: every kernel change must be undone.
func TestSIGTERMRestores(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	before := kernelAuditState(t)
	cmd, stderr := startDaemonChild(t, "1")
	if during := kernelAuditState(t); during == before || !strings.Contains(during, "-k docker_etc") ||
		!strings.Contains(during, fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Errorf("the child did not become the audit daemon:\n%s", during)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child after SIGTERM: %v %s", err, stderr.String())
	}
	if after := kernelAuditState(t); after != before {
		t.Errorf("not restored after SIGTERM:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// startSlowSource runs a source in cfg's mode whose reader takes 2 ms per
// event, with the smallest receive buffer: too slow for a burst.
func startSlowSource(t testing.TB, cfg Config) *liveSource {
	t.Helper()
	l := newLiveSource(t, cfg, Deps{})
	l.src.rcvBuf = 4096 // the kernel rounds it up to its minimum
	l.src.onEvent = func(*record.Event, Watch, bool) { time.Sleep(2 * time.Millisecond) }
	return l.start(t)
}

// burstTarget is a fresh file for a storm of writes, and a watch on it
// with key.
func burstTarget(t testing.TB, key string) (string, []WatchConfig) {
	t.Helper()
	target := filepath.Join(t.TempDir(), "burst")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return target, []WatchConfig{{Path: target, Key: key, Kind: KindData}}
}

// storm runs this test binary as a child (stormMain) that opens target
// for writing rate times a second for secs, and returns how many opens it
// made.
func storm(t testing.TB, target string, rate int, secs float64) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d:%g", envStorm, target, rate, secs))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("storm child: %v %s", err, stderr.String())
	}
	opens, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return opens
}

// TestMulticastOverflowIsCounted makes a multicast reader too slow for a
// burst of events: the dropped records must show up as ENOBUFS receive
// errors and as sequence gaps, never silently.
func TestMulticastOverflowIsCounted(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	target, watches := burstTarget(t, "test_burst")
	ucfg := unicastConfig()
	ucfg.Watches = watches
	startSource(t, ucfg, Deps{})

	mcfg := DefaultConfig()
	mcfg.Mode = ModeMulticast
	mcfg.Watches = watches
	l := startSlowSource(t, mcfg)
	storm(t, target, 5000, 1.0)
	time.Sleep(500 * time.Millisecond)
	if err := l.stop(); err != nil {
		t.Fatal(err)
	}
	src := l.src
	enobufs := counterValue(t, src.m.receiveErrors.WithLabelValues(reasonENOBUFS))
	gaps := counterValue(t, src.m.sequenceGaps)
	seen := eventTotal(t, src.m, "test_burst", false)
	t.Logf("multicast: %v events seen of 5000, %v ENOBUFS, %v serials missing", seen, enobufs, gaps)
	if seen >= 5000 {
		t.Fatal("a reader taking 2ms per event kept up with 5000 events/s: the test no longer overflows")
	}
	if enobufs == 0 || gaps == 0 {
		t.Errorf("records were dropped (%v of 5000 seen) but ENOBUFS = %v and gaps = %v", seen, enobufs, gaps)
	}
}

// sampleMax polls a gauge every 20 ms until the returned function is
// called, which returns the largest value seen.
func sampleMax(t testing.TB, g prometheus.Collector) (done func() float64) {
	var peak float64
	sampled := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, counterValue(t, g))
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-sampled
		return peak
	}
}

// kernelLostSince waits for the source to have exported what the kernel
// lost since st0 (the kernel stops dropping once a burst is over, and a
// status poll must see its final counter), and returns both figures.
func kernelLostSince(t testing.TB, ctl *libaudit.AuditClient, st0 *libaudit.AuditStatus, src *Source) (uint32, float64) {
	t.Helper()
	var kernelLost uint32
	var exported float64
	testenv.Eventually(5*time.Second, func() bool {
		st, err := ctl.GetStatus()
		if err != nil {
			t.Fatal(err)
		}
		kernelLost = st.Lost - st0.Lost
		exported = counterValue(t, src.m.kernelLost)
		return kernelLost > 0 && exported == float64(kernelLost)
	})
	return kernelLost, exported
}

// TestUnicastKernelLossIsCounted makes the unicast reader too slow for a
// burst with a small kernel backlog: the records the kernel drops must be
// exported as dockward_audit_kernel_lost_total, exactly as the kernel
// counts them.
func TestUnicastKernelLossIsCounted(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	target, watches := burstTarget(t, "test_loss")
	cfg := unicastConfig()
	cfg.BacklogLimit = 64
	cfg.Watches = watches
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	st0, err := ctl.GetStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st0.Lost == 0 { // leave the kernel's counter as it was found
		t.Cleanup(func() { testenv.Run(t, "auditctl", "--reset-lost") })
	}
	l := startSlowSource(t, cfg)
	// The backlog gauge is polled too: sample it while the queue is full.
	peakBacklog := sampleMax(t, l.src.m.backlog)
	storm(t, target, 5000, 1.0)
	maxBacklog := peakBacklog()
	if maxBacklog == 0 {
		t.Error("dockward_audit_backlog stayed 0 while a slow reader let the kernel's queue fill")
	}
	kernelLost, exported := kernelLostSince(t, ctl, st0, l.src)
	if err := l.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel lost %d records; dockward_audit_kernel_lost_total = %v; dockward_audit_backlog peaked at %v", kernelLost, exported, maxBacklog)
	if kernelLost == 0 {
		t.Fatal("a reader taking 2ms per event kept up with 5000 events/s and backlog 64: the test no longer overflows")
	}
	if exported != float64(kernelLost) {
		t.Errorf("dockward_audit_kernel_lost_total = %v, the kernel lost %d", exported, kernelLost)
	}
}

// libauditDecode decodes a kernel rule with go-libaudit (its command-line
// form, parsed back by its flag parser) into the parts coverage uses.
func libauditDecode(t *testing.T, wire []byte) (path string, ruleKeys []string, restricted bool) {
	t.Helper()
	text, err := rule.ToCommandLine(wire, false)
	if err != nil {
		t.Fatalf("go-libaudit cannot decode a kernel rule: %v", err)
	}
	parsed, err := flags.Parse(text)
	if err != nil {
		t.Fatalf("go-libaudit cannot parse its own form %q: %v", text, err)
	}
	switch r := parsed.(type) {
	case *rule.FileWatchRule:
		return r.Path, r.Keys, false
	case *rule.SyscallRule:
		restricted = len(r.Syscalls) != 1 || r.Syscalls[0] != "all"
		ruleKeys = r.Keys
		for _, f := range r.Filters {
			switch {
			case f.LHS == "path" || f.LHS == "dir":
				path = f.RHS
				restricted = restricted || f.Comparator != "="
			case f.LHS == "key":
				ruleKeys = append(ruleKeys, f.RHS)
			case f.LHS == "arch" || f.LHS == "perm" || f.LHS == "filetype":
			default:
				restricted = true
			}
		}
		return path, ruleKeys, restricted
	}
	t.Fatalf("go-libaudit decoded %q as %T", text, parsed)
	return "", nil, false
}

// hostDockerdPID is this machine's running dockerd, 0 when there is none.
func hostDockerdPID() int {
	d, err := hostfs.Root{}.FindDockerd([]string{hostfs.DockerPIDFile}, hostfs.DockerSocket)
	if err != nil {
		return 0
	}
	return d.PID
}
