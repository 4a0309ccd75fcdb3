package auditd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/hostfs"
)

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// pushWrite pushes one complete event (SYSCALL, PATH, PROCTITLE, EOE) with
// key docker_etc at time ts and serial.
func pushWrite(p *Pipeline, ts string, serial int) {
	p.PushLine(fmt.Sprintf(`type=SYSCALL msg=audit(%s:%d): arch=c000003e syscall=257 success=yes exit=3 pid=1 ppid=1 uid=0 auid=0 comm="x" exe="/x" key="docker_etc"`, ts, serial))
	p.PushLine(fmt.Sprintf(`type=PATH msg=audit(%s:%d): item=0 name="/etc/docker/x" nametype=NORMAL`, ts, serial))
	p.PushLine(fmt.Sprintf(`type=PROCTITLE msg=audit(%s:%d): proctitle="x"`, ts, serial))
	p.PushLine(fmt.Sprintf(`type=EOE msg=audit(%s:%d): `, ts, serial))
}

// TestOutOfOrderSerialNoBogusLoss delivers serial 11 after 12 has been
// emitted: go-libaudit's reassembler reports about 2^32 lost events for
// that; dockward must report none.
func TestOutOfOrderSerialNoBogusLoss(t *testing.T) {
	p, m, out, _ := newTestPipeline(t, testWatches())
	ev := func(serial int) { pushWrite(p, "20.000", serial) }
	ev(10)
	ev(12)
	ev(11)
	ev(13)
	p.Close()
	if len(*out) != 4 {
		t.Fatalf("got %d events, want 4", len(*out))
	}
	if got := counterValue(t, m.sequenceGaps); got != 0 {
		t.Errorf("sequence gaps = %v, want 0", got)
	}
	if got := counterValue(t, m.lateRecords); got != 1 {
		t.Errorf("late = %v, want 1", got)
	}
	p2, m2, _, _ := newTestPipeline(t, testWatches())
	p = p2
	ev(100)
	ev(103)
	p.Close()
	if got := counterValue(t, m2.sequenceGaps); got != 2 {
		t.Errorf("sequence gaps = %v, want 2 (serials 101, 102)", got)
	}
}

// watchFixture is a host tree with Debian's binary layout, daemon.json, the
// containerd socket, the unit under /usr/lib (and /lib a relative symlink
// to it) and /var/lib/docker, with the config to resolve watches under it.
func watchFixture(t *testing.T) (Config, hostfs.Root) {
	t.Helper()
	root := t.TempDir()
	mk := func(p string, mode os.FileMode) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/sbin/dockerd", 0o755)
	mk("usr/sbin/runc", 0o755)
	mk("usr/bin/containerd", 0o755)
	mk("etc/docker/daemon.json", 0o644)
	mk("run/containerd/containerd.sock", 0o600)
	mk("usr/lib/systemd/system/docker.service", 0o644)
	mk("var/lib/docker/engine-id", 0o600)
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	return cfg, hostfs.At(root)
}

// watchesByPath indexes resolved watches by path: their position and the
// watch itself.
func watchesByPath(ws []Watch) (pos map[string]int, byPath map[string]Watch) {
	pos, byPath = map[string]int{}, map[string]Watch{}
	for i, w := range ws {
		pos[w.Path] = i
		byPath[w.Path] = w
	}
	return pos, byPath
}

// TestWatchesFollowDockerd: the daemon.json the running dockerd reads by
// --config-file is watched (under daemon.json's key), and so are the units'
// drop-in directories in every unit directory that exists, created or not.
func TestWatchesFollowDockerd(t *testing.T) {
	cfg, host := watchFixture(t)
	root := host.Dir()
	for p, data := range map[string]string{"var/run/docker.pid": "4242\n",
		"proc/4242/cmdline":      "/usr/sbin/dockerd\x00--config-file\x00/srv/docker/daemon.json\x00",
		"srv/docker/daemon.json": "{}", "etc/systemd/system/docker.service.d/override.conf": "[Service]\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pos, byPath := watchesByPath(ResolveWatches(cfg, host))
	for p, key := range map[string]string{"/srv/docker/daemon.json": "docker_daemon_json", "/etc/docker/daemon.json": "docker_daemon_json",
		"/etc/systemd/system/docker.service.d": "docker_service", "/usr/lib/systemd/system/docker.service.d": "docker_service",
		"/etc/systemd/system/docker.socket.d": "docker_socket_unit", "/usr/lib/systemd/system/docker.socket.d": "docker_socket_unit"} {
		if w, ok := byPath[p]; !ok || w.Key != key {
			t.Errorf("%s: watch %+v, want key %s; have %v", p, w, key, keys(pos))
		}
	}
	if _, ok := pos["/run/systemd/system/docker.service.d"]; ok {
		t.Error("a drop-in directory is watched in a unit directory that does not exist")
	}
}

func TestResolveWatchesOrderAndBinaries(t *testing.T) {
	cfg, host := watchFixture(t)
	ws := ResolveWatches(cfg, host)
	pos, byPath := watchesByPath(ws)
	for _, want := range []string{"/usr/sbin/dockerd", "/usr/sbin/runc", "/usr/bin/containerd", "/etc/docker/daemon.json",
		"/etc/docker", "/run/containerd/containerd.sock", "/run/containerd", "/usr/lib/systemd/system/docker.service"} {
		if _, ok := pos[want]; !ok {
			t.Errorf("watch %s missing; have %v", want, keys(pos))
		}
	}
	if pos["/etc/docker/daemon.json"] > pos["/etc/docker"] || pos["/run/containerd/containerd.sock"] > pos["/run/containerd"] {
		t.Errorf("specific files must come before their directories: %v", ws)
	}
	if _, ok := pos["/usr/bin/docker"]; ok {
		t.Error("a missing binary must not be watched")
	}
	lib := byPath["/var/lib/docker"]
	if lib.Key != "docker_lib" {
		t.Errorf("/var/lib/docker watch: %+v", lib)
	}
	wantWriters := map[string]bool{"/usr/sbin/dockerd": true, "/usr/sbin/runc": true, "/usr/bin/containerd": true}
	if len(byPath["/run/containerd"].Expected) != len(wantWriters) {
		t.Errorf("expected writers of /run/containerd = %v, want the resolved %v", byPath["/run/containerd"].Expected, wantWriters)
	}
	for _, e := range byPath["/run/containerd"].Expected {
		if !wantWriters[e] {
			t.Errorf("unexpected writer %s", e)
		}
	}
	if byPath["/etc/docker"].Kind != KindConfig || byPath["/usr/sbin/runc"].Kind != KindBinary {
		t.Error("watch kinds wrong")
	}
	checkWatchCIS(t, byPath)
	// Expected writers are configurable per key: the list replaces the
	// default for that key only; names resolve like the watched binaries.
	cfg.ExpectedWriters = map[string][]string{"docker_etc": {"dockerd", "/opt/tools/editor"}}
	_, byPath = watchesByPath(ResolveWatches(cfg, host))
	if got := strings.Join(byPath["/etc/docker"].Expected, " "); got != "/usr/sbin/dockerd /opt/tools/editor" {
		t.Errorf("configured expected writers of /etc/docker = %q", got)
	}
	if got := len(byPath["/var/lib/docker"].Expected); got != len(wantWriters) {
		t.Errorf("the default writers of /var/lib/docker changed with another key's setting: %v", byPath["/var/lib/docker"].Expected)
	}
	cisOf := map[string]string{}
	for _, b := range builtinWatches {
		cisOf[b.Key] = b.CIS
	}
	if cisOf["docker_sysconfig"] != "1.1.13" || cisOf["docker_default"] != "1.1.10" || cisOf["docker_socket_unit"] != "1.1.9" {
		t.Errorf("CIS 1.1.x references of the built-in watches: %v", cisOf)
	}
}

// checkWatchCIS checks the CIS 1.1.x reference of each resolved watch.
func checkWatchCIS(t *testing.T, byPath map[string]Watch) {
	t.Helper()
	for path, cis := range map[string]string{"/etc/docker/daemon.json": "1.1.11", "/usr/sbin/runc": "1.1.18",
		"/run/containerd/containerd.sock": "1.1.8", "/usr/sbin/dockerd": "1.1.3", "/run/containerd": "1.1.4",
		"/var/lib/docker": "1.1.5", "/etc/docker": "1.1.6", "/usr/lib/systemd/system/docker.service": "1.1.7",
		"/usr/bin/containerd": "1.1.14"} {
		if byPath[path].CIS != cis {
			t.Errorf("CIS reference of %s: %q, want %q", path, byPath[path].CIS, cis)
		}
	}
}

func TestOrderWatchesNested(t *testing.T) {
	ws := orderWatches([]Watch{{Path: "/a"}, {Path: "/a/b"}, {Path: "/c"}, {Path: "/a/b/c"}, {Path: "/ab"}})
	var got []string
	for _, w := range ws {
		got = append(got, w.Path)
	}
	if strings.Join(got, " ") != "/a/b/c /a/b /a /c /ab" {
		t.Fatalf("order = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	c := DefaultConfig()
	c.Mode = "fast"
	c.BacklogLimit = 1
	c.StatusInterval = time.Millisecond
	c.Watches = []WatchConfig{{Path: "rel", Key: "Bad Key", Kind: "x"}}
	c.ExpectedWriters = map[string][]string{"nope": {"a/b"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"audit.mode", "audit.backlog_limit", "audit.status_interval", "audit.watches[0].path",
		"audit.watches[0].key", "audit.watches[0].kind", `unknown watch key "nope"`, "audit.expected_writers.nope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestContainerIDFromCgroup(t *testing.T) {
	id := strings.Repeat("ab12", 16)
	cases := map[string]string{
		"0::/system.slice/docker-" + id + ".scope\n": id,
		"12:memory:/docker/" + id + "\n":             id,
		"0::/user.slice/session-3.scope\n":           "",
		"0::/docker/" + id[:60] + "\n":               "",
		"0::/docker/" + id + "ff\n":                  "",
	}
	for in, want := range cases {
		if got := containerIDFromCgroup([]byte(in)); got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}

func TestJudgeUnaudited(t *testing.T) {
	s := time.Second
	cases := []struct {
		name      string
		h         auditHistory
		cmdline   bool
		start     time.Duration
		enabled   uint32
		ours      time.Duration
		unaudited bool
		known     bool
	}{
		{"booted audit=1", auditHistory{complete: true}, true, 5 * s, 1, 0, false, true},
		{"boot record says enabled", auditHistory{bootEnabled: true, complete: true}, false, 5 * s, 1, 0, false, true},
		{"enabled before dockerd", auditHistory{firstEnable: 3 * s, complete: true}, false, 5 * s, 1, 0, false, true},
		{"enabled after dockerd", auditHistory{firstEnable: 9 * s, complete: true}, false, 5 * s, 1, 0, true, true},
		{"we enabled it after dockerd", auditHistory{complete: true}, false, 5 * s, 1, 60 * s, true, true},
		{"never enabled", auditHistory{complete: true}, false, 5 * s, 0, 0, true, true},
		{"log wrapped", auditHistory{firstEnable: 9 * s}, false, 5 * s, 1, 0, false, false},
		{"log wrapped, we enabled it after dockerd", auditHistory{}, false, 5 * s, 1, 60 * s, true, false},
		{"log wrapped, we enabled it before dockerd", auditHistory{}, false, 90 * s, 1, 60 * s, false, true},
		{"enabled by a daemon, not in the kernel log", auditHistory{complete: true}, false, 5 * s, 1, 0, false, false},
	}
	for _, c := range cases {
		v := judgeUnaudited(c.h, c.cmdline, c.start, c.enabled, c.ours)
		if v.Unaudited != c.unaudited || v.Known != c.known {
			t.Errorf("%s: got %+v", c.name, v)
		}
	}
}

func TestScanKmsgRecord(t *testing.T) {
	var h auditHistory
	scanKmsgRecord([]byte("6,0,0,-;Linux version"), &h, true)
	scanKmsgRecord([]byte("5,171,265448,-;audit: type=2000 audit(1795116628.960:1): state=initialized audit_enabled=0 res=1"), &h, false)
	scanKmsgRecord([]byte("5,900,7000000,-;audit: type=1305 audit(1795116700.1:5): op=set audit_enabled=1 old=0 auid=0 ses=1 res=1"), &h, false)
	scanKmsgRecord([]byte("5,901,9000000,-;audit: type=1305 audit(1795116800.1:6): op=set audit_enabled=1 old=0 auid=0 ses=1 res=1"), &h, false)
	if !h.complete || h.bootEnabled || h.firstEnable != 7*time.Second {
		t.Fatalf("history = %+v", h)
	}
}

func TestProcessStart(t *testing.T) {
	d, err := processStart("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if now := sinceBoot(); d <= 0 || d > now {
		t.Fatalf("start %s not within boot time %s", d, now)
	}
}

// tamperSeries are the tamper counter's known series, all 0.
var tamperSeries = func() string {
	var b strings.Builder
	for _, k := range []string{"audit_disabled", "backlog_changed", "daemon_ended", "daemon_replaced", "failure_changed",
		"rate_limit_changed", "rule_removed"} {
		fmt.Fprintf(&b, "dockward_audit_tamper_events_total{kind=%q} 0\n", k)
	}
	return b.String()
}()

func TestMetricsKnownSeriesAreZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, []string{"docker_etc"})
	if err != nil {
		t.Fatal(err)
	}
	m.setMode(ModeUnicast, true)
	want := `
# HELP dockward_audit_events_total Audit events on Docker's watched paths, by watch key, access (write, attr, read, exec, other) and whether they are routine; expected="false" is a write or attribute change by a process that is not an expected writer.
# TYPE dockward_audit_events_total counter
dockward_audit_events_total{access="attr",expected="false",key="docker_etc"} 0
dockward_audit_events_total{access="attr",expected="true",key="docker_etc"} 0
dockward_audit_events_total{access="exec",expected="true",key="docker_etc"} 0
dockward_audit_events_total{access="other",expected="true",key="docker_etc"} 0
dockward_audit_events_total{access="read",expected="true",key="docker_etc"} 0
dockward_audit_events_total{access="write",expected="false",key="docker_etc"} 0
dockward_audit_events_total{access="write",expected="true",key="docker_etc"} 0
# HELP dockward_audit_receive_errors_total Errors receiving from the audit netlink socket; enobufs means records were dropped.
# TYPE dockward_audit_receive_errors_total counter
dockward_audit_receive_errors_total{reason="enobufs"} 0
dockward_audit_receive_errors_total{reason="other"} 0
# HELP dockward_audit_tamper_events_total Changes to kernel audit itself that weaken it: Docker rules removed, audit disabled, the audit daemon ended or replaced, the backlog, failure mode or rate limit changed; by kind.
# TYPE dockward_audit_tamper_events_total counter
` + tamperSeries + `# HELP dockward_audit_up 1 for the mode the audit source runs in while it receives records (or follows the log file), else 0.
# TYPE dockward_audit_up gauge
dockward_audit_up{mode="file"} 0
dockward_audit_up{mode="multicast"} 0
dockward_audit_up{mode="off"} 0
dockward_audit_up{mode="unicast"} 1
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "dockward_audit_events_total",
		"dockward_audit_receive_errors_total", "dockward_audit_tamper_events_total", "dockward_audit_up"); err != nil {
		t.Fatal(err)
	}
	if _, err := newMetrics(reg, nil); err == nil {
		t.Fatal("registering twice must fail with an error, not a panic")
	}
}

// TestReadKmsgReturns reads the real kernel log: it must return once the
// log is read, not wait for the next message.
func TestReadKmsgReturns(t *testing.T) {
	testenv.RequireRoot(t)
	done := make(chan error, 1)
	go func() { _, err := readKmsg("/dev/kmsg"); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("readKmsg blocked")
	}
}

// TestLoneRecordDoesNotHoldEvents: a record the kernel writes during a
// syscall with no SYSCALL record after it (here EVENT_LISTENER, written
// when a multicast reader binds) must not hold later events back until the
// reassembly timeout.
func TestLoneRecordDoesNotHoldEvents(t *testing.T) {
	p, _, out, _ := newTestPipeline(t, testWatches())
	p.PushLine(`type=UNKNOWN[1335] msg=audit(30.000:70): pid=1 uid=0 auid=0 ses=1 subj=unconfined comm="x" exe="/x" nl-mcgrp=1 op=connect res=1`)
	p.PushLine(`type=CONFIG_CHANGE msg=audit(30.000:71): auid=0 ses=1 op=remove_rule key="docker_etc" list=4 res=1`)
	p.PushLine(`type=SYSCALL msg=audit(30.000:72): arch=c000003e syscall=257 success=yes exit=3 pid=1 ppid=1 uid=0 auid=0 comm="x" exe="/x" key="docker_etc"`)
	p.PushLine(`type=PATH msg=audit(30.000:72): item=0 name="/etc/docker/x" nametype=CREATE`)
	p.PushLine(`type=PROCTITLE msg=audit(30.000:72): proctitle="x"`)
	if len(*out) != 1 {
		t.Fatalf("%d events emitted before close, want 1", len(*out))
	}
	p.Close()
}

// TestUnexpectedLinesRateLimited: a storm of unexpected writes is fully
// counted but logged only up to the per-key limit, and the next line
// says how many were left out.
func TestUnexpectedLinesRateLimited(t *testing.T) {
	p, m, _, logs := newTestPipeline(t, testWatches())
	now := time.Unix(1000, 0)
	p.limit.now = func() time.Time { return now }
	ev := func(serial int) {
		p.PushLine(fmt.Sprintf(`type=SYSCALL msg=audit(40.000:%d): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=241 pid=1 ppid=1 uid=0 auid=0 comm="x" exe="/x" key="docker_etc"`, serial))
		p.PushLine(fmt.Sprintf(`type=PATH msg=audit(40.000:%d): item=0 name="/etc/docker/x" nametype=NORMAL`, serial))
		p.PushLine(fmt.Sprintf(`type=PROCTITLE msg=audit(40.000:%d): proctitle="x"`, serial))
	}
	for i := 1; i <= 150; i++ {
		ev(i)
	}
	if got := eventTotal(t, m, "docker_etc", false); got != 150 {
		t.Fatalf("counted %v events, want 150", got)
	}
	if logs.Len() != logBurst {
		t.Fatalf("logged %d lines, want the burst of %d", logs.Len(), logBurst)
	}
	if got := counterValue(t, m.suppressedCounter("docker_etc")); got != 50 {
		t.Fatalf("suppressed %v, want 50", got)
	}
	now = now.Add(time.Second)
	ev(151)
	last := logs.All()[logs.Len()-1].ContextMap()
	if logs.Len() != logBurst+1 || last["lines_suppressed_before"] != uint64(50) {
		t.Fatalf("after a second: %d lines, last %v", logs.Len(), last)
	}
	p.Close()
}

func TestUserNamesFromRootfs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644)
	c := newUserCache(hostfs.At(root))
	if c.name(1000) != "alice" || c.name(0) != "root" || c.name(4242) != "" || c.name(record.UnsetID) != "unset" {
		t.Fatalf("names: %q %q %q", c.name(1000), c.name(0), c.name(4242))
	}
}

// TestExpectedWriterAfterUpgrade: a daemon whose binary was replaced by
// an upgrade is still an expected writer.
func TestExpectedWriterAfterUpgrade(t *testing.T) {
	p, m, _, logs := newTestPipeline(t, testWatches())
	exe := fmt.Sprintf("%X", "/usr/sbin/dockerd (deleted)")
	p.PushLine(`type=SYSCALL msg=audit(50.000:1): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=c000 a2=80241 pid=1 ppid=1 uid=0 auid=-1 comm="dockerd" exe=` + exe + ` key="docker_lib"`)
	p.PushLine(`type=PATH msg=audit(50.000:1): item=0 name="/var/lib/docker/containers/x/hosts" nametype=NORMAL`)
	p.PushLine(`type=PROCTITLE msg=audit(50.000:1): proctitle="dockerd"`)
	p.Close()
	if got := eventTotal(t, m, "docker_lib", true); got != 1 || logs.Len() != 0 {
		t.Fatalf("expected = %v, lines = %d; want the upgraded dockerd routine", got, logs.Len())
	}
}

// TestDaemonRecordsOutsideSerials: auditd stamps its own DAEMON_* records
// (start, rotate, end) with its own counter, not the kernel's serials, so
// in a log file they must not open or close sequence gaps.
func TestDaemonRecordsOutsideSerials(t *testing.T) {
	p, m, out, _ := newTestPipeline(t, testWatches())
	ev := func(serial int) { pushWrite(p, "60.000", serial) }
	p.PushLine(`type=DAEMON_START msg=audit(60.000:9141): op=start ver=3.0.9 format=raw kernel=6.1 auid=4294967295 pid=1 uid=0 ses=4294967295 res=success`)
	ev(50000)
	ev(50001)
	p.PushLine(`type=DAEMON_ROTATE msg=audit(61.000:9142): op=rotate-logs auid=0 pid=1 subj=unconfined res=success`)
	ev(50002)
	p.PushLine(`type=DAEMON_END msg=audit(62.000:9143): op=terminate auid=0 pid=1 subj=unconfined res=success`)
	p.Close()
	if len(*out) != 3 {
		t.Fatalf("got %d events, want 3", len(*out))
	}
	if gaps, late := counterValue(t, m.sequenceGaps), counterValue(t, m.lateRecords); gaps != 0 || late != 0 {
		t.Errorf("sequence gaps %v, late %v; auditd's own records were taken for kernel serials", gaps, late)
	}
}
