package auditd

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/hostfs"
)

// ownRules are the kernel rules dockward installs for ws, as decoded.
func ownRules(ws []Watch) []rules.Rule {
	out := make([]rules.Rule, len(ws))
	for i, w := range ws {
		out[i] = rules.Rule{Filter: 4, Action: 2, Path: w.Path, Perm: 10, Keys: []string{w.Key}, AllSyscalls: true}
	}
	return out
}

// eventTotal sums dockward_audit_events_total for one key and expected
// value over the access classes.
func eventTotal(t testing.TB, m *metrics, key string, expected bool) float64 {
	t.Helper()
	total := 0.0
	for _, a := range record.Accesses {
		if expected || a.Changes() {
			total += counterValue(t, m.eventCounter(key, a, expected))
		}
	}
	return total
}

// cisWatches are the watches as they resolve on the host the CIS
// recordings (testdata/cis) were made on, named as its CIS rules name them.
func cisWatches() []Watch {
	daemons := []string{"/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc", "/usr/bin/containerd-shim-runc-v2",
		"/usr/bin/fuse-overlayfs"}
	return orderWatches([]Watch{
		{Path: "/usr/sbin/dockerd", Key: "docker_bin", Kind: KindBinary},
		{Path: "/run/containerd", Key: "containerd_run", Kind: KindData, Expected: daemons},
		{Path: "/var/lib/docker", Key: "docker_lib", Kind: KindData, Expected: daemons},
		{Path: "/etc/docker/daemon.json", Key: "docker_daemon_json", Kind: KindConfig},
		{Path: "/etc/docker", Key: "docker_etc", Kind: KindConfig},
		{Path: "/lib/systemd/system/docker.service", Key: "docker_service", Kind: KindConfig},
		{Path: "/lib/systemd/system/docker.socket", Key: "docker_socket_unit", Kind: KindConfig},
		{Path: "/etc/default/docker", Key: "docker_default", Kind: KindConfig},
		{Path: "/etc/containerd/config.toml", Key: "containerd_config", Kind: KindConfig},
		{Path: "/usr/bin/containerd", Key: "containerd_bin", Kind: KindBinary},
		{Path: "/usr/bin/containerd-shim-runc-v2", Key: "containerd_shim_bin", Kind: KindBinary},
		{Path: "/usr/sbin/runc", Key: "runc_bin", Kind: KindBinary},
		{Path: "/usr/local/bin/docker", Key: "docker_cli_bin", Kind: KindBinary},
	})
}

var cisRecordings = []string{"testdata/cis/raw.log.gz", "testdata/cis/enriched.log.gz", "testdata/cis/netlink.txt.gz"}

// cisReplay is one CIS recording run through the pipeline as a replayed
// log: no live processes, and a host root with nothing in it, so that
// events map by their recorded names alone.
type cisReplay struct {
	p       *Pipeline
	m       *metrics
	events  []seen // every classified event
	changes []auditChange
	logs    *observer.ObservedLogs
}

func replayCIS(t *testing.T, name string) *cisReplay {
	t.Helper()
	p, m, out, logs := newTestPipelineOn(t, cisWatches(), hostfs.At(t.TempDir()))
	p.procRoot = ""
	r := &cisReplay{p: p, m: m, logs: logs}
	p.onChange = func(c auditChange) { r.changes = append(r.changes, c) }
	for _, line := range testenv.Lines(t, name) {
		if typ, rest, ok := strings.Cut(line, " "); ok && strings.HasSuffix(name, ".txt.gz") {
			n, _ := strconv.Atoi(typ)
			p.PushKernel(auparse.AuditMessageType(n), []byte(rest))
			continue
		}
		p.PushLine(line)
	}
	p.Close()
	r.events = *out
	if got := counterValue(t, m.parseErrors); got != 0 {
		t.Errorf("%s: %v parse errors", name, got)
	}
	return r
}

// TestCISRecordingsRoutineUseIsQuiet: beside auditd with the CIS rules
// written without -p, the docker CLI, reads of daemon.json and the units,
// listing /var/lib/docker and a container start are routine (not one
// expected="false" event or warn line), while every write or attribute
// change the recording made under /etc/docker (with login uid 1000) is
// counted unexpected and logged with its actor.
func TestCISRecordingsRoutineUseIsQuiet(t *testing.T) {
	routine := map[string]bool{"/usr/sbin/dockerd": true, "/usr/bin/containerd": true, "/usr/sbin/runc": true,
		"/usr/bin/containerd-shim-runc-v2": true, "/usr/bin/fuse-overlayfs": true, "/usr/bin/fusermount3": true,
		"/usr/local/bin/docker": true, "/usr/bin/cat": true, "/usr/bin/ls": true, "/usr/bin/readlink": true,
		"/usr/bin/stat": true, "/usr/bin/test": true, "/": true}
	for _, name := range cisRecordings {
		r := replayCIS(t, name)
		unexpected, routineSeen := 0, 0
		for _, s := range r.events {
			if routine[s.ev.Exe] {
				routineSeen++
				if !s.expected {
					t.Errorf("%s: routine %s %s on %v counted unexpected", name, s.ev.Exe, s.ev.Syscall, s.ev.AllPaths())
				}
			}
			if !s.expected {
				unexpected++
				if s.ev.AUID != 1000 || s.key != "docker_etc" {
					t.Errorf("%s: unexpected event by auid %d on %s (%v): only the recording's writes are", name, s.ev.AUID, s.key, s.ev.AllPaths())
				}
			}
		}
		if routineSeen < 300 || unexpected < 30 {
			t.Errorf("%s: %d routine and %d unexpected events; the recording has over 300 and 30", name, routineSeen, unexpected)
		}
		loud := r.logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zap.WarnLevel })
		if loud.Len() != unexpected {
			t.Errorf("%s: %d warn or error lines for %d unexpected events", name, loud.Len(), unexpected)
		}
		for _, l := range loud.All() {
			f := l.ContextMap()
			actor, _ := f["actor"].(map[string]any)
			// docker_any is the recording's rule without a permission filter.
			if l.Message != "audit event by an unexpected writer" || f["key"] != "docker_etc" ||
				(f["rule_key"] != "docker" && f["rule_key"] != "docker_any") ||
				(f["access"] != "write" && f["access"] != "attr") || actor["auid"] != int64(1000) || actor["exe"] == "" {
				t.Errorf("%s: line %q %v", name, l.Message, f)
			}
		}
	}
}

// TestCISRecordingsMapByPath: events map to watches by the paths they
// name: the CLI's events, which the host's rules key docker_bin (dockward's
// key for dockerd), go to docker_cli_bin; daemon.json and the unit to their
// own watches although every CIS rule is keyed docker. The access classes
// show in the counters.
func TestCISRecordingsMapByPath(t *testing.T) {
	for _, name := range cisRecordings {
		r := replayCIS(t, name)
		for _, s := range r.events {
			p := s.ev.Path()
			switch {
			case s.ev.Key == "docker_bin" && s.key != "docker_cli_bin":
				t.Errorf("%s: %s of %s (rule key docker_bin) mapped to %s", name, s.ev.Syscall, p, s.key)
			case p == "/etc/docker/daemon.json" && s.key != "docker_daemon_json",
				p == "/lib/systemd/system/docker.service" && s.key != "docker_service":
				t.Errorf("%s: %s mapped to %s", name, p, s.key)
			}
		}
		for _, c := range []struct {
			key      string
			access   record.Access
			expected bool
			min      float64
		}{
			{"docker_cli_bin", record.AccessExec, true, 4}, {"docker_cli_bin", record.AccessRead, true, 4},
			{"docker_daemon_json", record.AccessRead, true, 3}, {"docker_service", record.AccessRead, true, 1},
			{"docker_lib", record.AccessWrite, true, 10}, {"docker_lib", record.AccessRead, true, 10},
			{"docker_lib", record.AccessAttr, true, 1}, {"runc_bin", record.AccessExec, true, 2},
			{"docker_etc", record.AccessWrite, false, 20}, {"docker_etc", record.AccessAttr, false, 5},
		} {
			if got := counterValue(t, r.m.eventCounter(c.key, c.access, c.expected)); got < c.min {
				t.Errorf("%s: %s %s expected=%v: %v events, want at least %v", name, c.key, c.access, c.expected, got, c.min)
			}
		}
		if got := counterValue(t, r.m.unmatched); got < 1 {
			t.Errorf("%s: rm -r's unlink relative to a directory descriptor of a replayed process maps nowhere; unmatched = %v", name, got)
		}
	}
}

// TestCISRecordingsChangeActors: each recorded change to audit reaches the
// source with the process that made it: auditctl and its login uid from the
// SYSCALL record of the change's serial, auditd's signal sender from its
// DAEMON_* records, and none for the kernel's own audit_pid reset when
// auditd stops, which no SYSCALL follows.
func TestCISRecordingsChangeActors(t *testing.T) {
	for _, name := range cisRecordings {
		r := replayCIS(t, name)
		byAuditctl, daemonEnd, pidReset := 0, 0, 0
		for _, c := range r.changes {
			switch {
			case c.HasActor && c.Actor.Exe == "/usr/sbin/auditctl" && c.Actor.AUID == 1000 && c.Actor.Comm == "auditctl":
				byAuditctl++
			case c.Op == "terminate" && c.HasActor && c.Actor.AUID == 1000 && c.Actor.PID > 0:
				daemonEnd++
			case c.Setting == "audit_pid" && c.Value == 0 && !c.HasActor:
				pidReset++
			}
		}
		// -W, -b twice, --backlog_wait_time twice, -f twice, -r twice,
		// -e 0 and the 13 removals of -D.
		if byAuditctl != 23 {
			t.Errorf("%s: %d changes by auditctl with login uid 1000, want 23", name, byAuditctl)
		}
		if strings.HasSuffix(name, ".log.gz") && daemonEnd != 1 {
			t.Errorf("%s: %d DAEMON_END records naming the sender of SIGTERM, want 1", name, daemonEnd)
		}
		if strings.HasSuffix(name, ".txt.gz") && pidReset != 1 {
			t.Errorf("%s: %d audit_pid resets without an actor, want 1", name, pidReset)
		}
	}
}

// judgeRecorded runs a recording's changes through the control loop's
// judgement (no control socket, as in file mode without CAP_AUDIT_CONTROL)
// on the records' clock, closing each window of rule removals when it is
// due, as the live loop's timer does on the wall clock.
func judgeRecorded(t *testing.T, name string) (*observer.ObservedLogs, *metrics) {
	t.Helper()
	r := replayCIS(t, name)
	core, logs := observer.New(zap.InfoLevel)
	src := &Source{cfg: DefaultConfig(), log: zap.New(core), m: r.m, watches: cisWatches(), procRoot: "/proc"}
	for _, s := range r.events {
		src.learnRuleKey(s.ev.Key)
	}
	c := src.newControl(nil, nil)
	for _, ch := range r.changes {
		if c.due(ch.Time) {
			c.flushWindow()
		}
		c.judge(ch, ch.Time)
	}
	c.flushWindow()
	return logs, r.m
}

// TestCISRecordingsTamperVerdicts: the recorded tampering gives one error
// line and one count per act: auditctl -W, auditctl -D (13 rules, one
// line), the removal of a rule without -p, the final cleanup's -D (seen
// over netlink only), the backlog and wait time lowered, failure mode 0, a
// rate limit, audit disabled, and auditd stopped. Putting settings back is
// not tampering.
func TestCISRecordingsTamperVerdicts(t *testing.T) {
	for _, name := range cisRecordings {
		logs, m := judgeRecorded(t, name)
		netlink := strings.HasSuffix(name, ".txt.gz")
		want := map[TamperKind]float64{TamperRuleRemoved: 3, TamperBacklogChanged: 2, TamperFailureChanged: 1,
			TamperRateLimitChanged: 1, TamperAuditDisabled: 1, TamperDaemonEnded: 1, TamperDaemonReplaced: 0}
		if netlink {
			want[TamperRuleRemoved] = 4
		}
		total := 0.0
		for kind, n := range want {
			if got := counterValue(t, m.tamper[kind]); got != n {
				t.Errorf("%s: dockward_audit_tamper_events_total{kind=%q} = %v, want %v", name, kind, got, n)
			}
			total += n
		}
		lines := logs.FilterMessage("kernel audit tampered with")
		if float64(lines.Len()) != total || logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zap.ErrorLevel }).Len() != lines.Len() {
			t.Errorf("%s: %d tamper lines for %v tamperings", name, lines.Len(), total)
		}
		for _, l := range lines.All() {
			f := l.ContextMap()
			actor, _ := f["actor"].(map[string]any)
			if f["kind"] == string(TamperRuleRemoved) || f["kind"] == string(TamperDaemonEnded) {
				continue // by root without a login uid, or auditd itself
			}
			if actor["exe"] != "/usr/sbin/auditctl" || actor["auid"] != int64(1000) || f["change"] == "" {
				t.Errorf("%s: %s line %v", name, f["kind"], f)
			}
		}
	}
}

// TestPollSeesUnrecordedTampering: a change no record reports (auditd
// killed with SIGKILL, or settings changed while audit was off, when the
// kernel logs nothing) is reported by the status poll once two polls agree;
// a change whose record comes between the polls is reported once, by the
// record, with its actor.
func TestPollSeesUnrecordedTampering(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	m, err := newMetrics(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{cfg: DefaultConfig(), log: zap.New(core), m: m, procRoot: "/proc"}
	c := src.newControl(nil, nil)
	st := libaudit.AuditStatus{Enabled: 1, PID: uint32(os.Getpid()), BacklogLimit: 8192, Failure: 1}
	c.status = func() (*libaudit.AuditStatus, error) { s := st; return &s, nil }
	c.known, c.knownOK = st, true
	st.PID = 999999999 // no such process: the daemon died without a word
	c.pollSettings()
	if got := counterValue(t, m.tamper[TamperDaemonEnded]); got != 0 {
		t.Fatalf("reported after one poll: %v", got)
	}
	c.pollSettings()
	if got := counterValue(t, m.tamper[TamperDaemonEnded]); got != 1 {
		t.Fatalf("daemon_ended after two polls = %v, want 1", got)
	}
	l := logs.FilterMessage("kernel audit tampered with").All()
	if len(l) != 1 || l[0].ContextMap()["actor_known"] != false || l[0].ContextMap()["seen_by"] != "status poll" {
		t.Fatalf("poll line: %v", l)
	}
	st.Enabled = 0
	c.pollSettings() // the record is a moment behind
	actor := Actor{Exe: "/usr/sbin/auditctl", Comm: "auditctl", PID: 4242, AUID: 1000}
	c.judge(auditChange{Change: record.Change{Op: "set", Setting: "audit_enabled", Value: 0, Old: 1, OK: true},
		Actor: actor, HasActor: true}, time.Now())
	c.pollSettings()
	c.pollSettings()
	if got := counterValue(t, m.tamper[TamperAuditDisabled]); got != 1 {
		t.Fatalf("audit_disabled = %v, want 1 (the record's)", got)
	}
	last := logs.FilterMessage("kernel audit tampered with").All()
	if f := last[len(last)-1].ContextMap(); f["actor_known"] != true || f["kind"] != "audit_disabled" {
		t.Fatalf("record line: %v", f)
	}
}

// TestUnknownSyscallCountedAsOther: a syscall dockward does not class is
// counted as other (routine) on its watch and logged at debug only.
func TestUnknownSyscallCountedAsOther(t *testing.T) {
	p, m, out, logs := newTestPipeline(t, testWatches())
	for _, l := range []string{
		`type=SYSCALL msg=audit(70.000:1): arch=c000003e syscall=999 success=yes exit=0 a0=3 a1=0 a2=0 pid=5 ppid=1 uid=0 auid=1000 comm="x" exe="/usr/bin/x" key="docker"`,
		`type=PATH msg=audit(70.000:1): item=0 name="/etc/docker/daemon.json" inode=1 dev=fe:00 nametype=NORMAL`,
		`type=PROCTITLE msg=audit(70.000:1): proctitle="x"`,
	} {
		p.PushLine(l)
	}
	p.Close()
	if len(*out) != 1 || (*out)[0].key != "docker_daemon_json" || !(*out)[0].expected {
		t.Fatalf("events %+v, want one routine docker_daemon_json event", *out)
	}
	if got := counterValue(t, m.eventCounter("docker_daemon_json", record.AccessOther, true)); got != 1 {
		t.Errorf("access=other expected=true = %v, want 1", got)
	}
	l := logs.All()
	if len(l) != 1 || l[0].Level != zap.DebugLevel || l[0].ContextMap()["syscall"] != "999" || l[0].ContextMap()["rule_key"] != "docker" {
		t.Errorf("lines %v, want one debug line naming the syscall", l)
	}
}
