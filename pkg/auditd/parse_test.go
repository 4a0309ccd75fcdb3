package auditd

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/hostfs"
)

// testWatches is the watch list the recorded events were captured with.
func testWatches() []Watch {
	return []Watch{
		{Path: "/etc/docker/daemon.json", Key: "docker_daemon_json", Kind: KindConfig},
		{Path: "/etc/docker", Key: "docker_etc", Kind: KindConfig},
		{Path: "/usr/sbin/runc", Key: "runc_bin", Kind: KindBinary},
		{Path: "/var/lib/docker", Key: "docker_lib", Kind: KindData, Expected: []string{"/usr/sbin/dockerd"}},
	}
}

type seen struct {
	ev       record.Event
	key      string
	expected bool
}

func newTestPipeline(t testing.TB, ws []Watch) (*Pipeline, *metrics, *[]seen, *observer.ObservedLogs) {
	t.Helper()
	return newTestPipelineOn(t, ws, hostfs.Root{})
}

// newTestPipelineOn is newTestPipeline with the host's root at host.
func newTestPipelineOn(t testing.TB, ws []Watch, host hostfs.Root) (*Pipeline, *metrics, *[]seen, *observer.ObservedLogs) {
	t.Helper()
	keys := []string{}
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	m, err := newMetrics(nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	p, err := newPipeline(ws, m, PipelineOptions{Log: zap.New(core), Host: host})
	if err != nil {
		t.Fatal(err)
	}
	var out []seen
	p.onEvent = func(ev *record.Event, w Watch, expected bool) {
		c := *ev
		c.Paths = append([]record.PathItem(nil), ev.Paths...)
		out = append(out, seen{c, w.Key, expected})
	}
	return p, m, &out, logs
}

func feedFile(t testing.TB, p *Pipeline, name string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.PushLine(sc.Text())
	}
	p.Close()
}

func feedNetlink(t testing.TB, p *Pipeline, name string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		typ, rest, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(typ)
		if err != nil {
			t.Fatalf("bad testdata line %q", line)
		}
		p.PushKernel(auparse.AuditMessageType(n), []byte(rest))
	}
	p.Close()
}

// TestRecordedEvents runs records captured from this kernel (netlink and
// the same records as auditd RAW lines) through the pipeline.
func TestRecordedEvents(t *testing.T) {
	for _, feed := range []struct {
		name string
		run  func(testing.TB, *Pipeline, string)
		file string
	}{
		{"raw log", feedFile, "testdata/raw.log"},
		{"netlink", feedNetlink, "testdata/netlink_records.txt"},
	} {
		t.Run(feed.name, func(t *testing.T) {
			p, m, out, logs := newTestPipeline(t, testWatches())
			// Captured in unicast mode: the rules are dockward's. Serial 10
			// is a container writing its bind mount of the watched
			// directory, /mnt/f in its own mount namespace: only the rule
			// that reported it says where that is.
			p.match.setRules(ownRules(testWatches()))
			feed.run(t, p, feed.file)
			evs := *out
			if len(evs) != 8 {
				t.Fatalf("got %d events, want 8 (serials 2-8 and 10)", len(evs))
			}
			byPath := map[string]seen{}
			for _, s := range evs {
				if s.key != "docker_etc" || s.expected {
					t.Errorf("serial %d: key %q expected %v, want docker_etc unexpected", s.ev.Serial, s.key, s.expected)
				}
				byPath[s.ev.Path()] = s
			}
			touch := evs[0].ev
			if touch.Serial != 2 || touch.Exe != "/usr/bin/touch" || touch.Comm != "touch" || touch.Syscall != "openat" ||
				!touch.Success || touch.Exit != 3 || touch.PID != 13377 || touch.PPID != 13376 || touch.UID != 0 ||
				touch.AUID != record.UnsetID || touch.Path() != "/etc/docker/dockward-cap" || touch.Proctitle != "touch /etc/docker/dockward-cap" {
				t.Errorf("touch event = %+v", touch)
			}
			if _, ok := byPath["/etc/docker/dockward cap space"]; !ok {
				t.Errorf("hex-encoded name with spaces not decoded; paths: %v", keys(byPath))
			}
			mv := evs[2].ev
			if mv.Syscall != "renameat2" || len(mv.AllPaths()) != 2 || mv.AllPaths()[1] != "/etc/docker/dockward-cap2" {
				t.Errorf("rename: syscall %q paths %v", mv.Syscall, mv.AllPaths())
			}
			if _, ok := byPath["/etc/docker/rel-file"]; !ok {
				t.Errorf("relative name not joined with cwd; paths: %v", keys(byPath))
			}
			if got := eventTotal(t, m, "docker_etc", false); got != 8 {
				t.Errorf("dockward_audit_events_total{key=docker_etc,expected=false} = %v, want 8", got)
			}
			if got := counterValue(t, m.sequenceGaps); got != 0 {
				t.Errorf("sequence gaps = %v, want 0", got)
			}
			if got := counterValue(t, m.parseErrors); got != 0 {
				t.Errorf("parse errors = %v, want 0", got)
			}
			if logs.Len() != 8 {
				t.Fatalf("got %d log lines, want 8", logs.Len())
			}
			l := logs.All()[0]
			if l.Level != zap.WarnLevel {
				t.Errorf("config file event logged at %v, want warn", l.Level)
			}
			f := l.ContextMap()
			actor, _ := f["actor"].(map[string]any)
			if f["key"] != "docker_etc" || f["rule_key"] != "docker_etc" || f["access"] != "write" ||
				f["path"] != "/etc/docker/dockward-cap" || f["syscall"] != "openat" ||
				f["success"] != true || actor["exe"] != "/usr/bin/touch" || actor["auid"] != int64(record.UnsetID) ||
				actor["auid_user"] != "unset" || actor["user"] != "root" || actor["ppid"] != int64(13376) {
				t.Errorf("log fields = %v", f)
			}
		})
	}
}

// TestEnrichedLog reads real auditd ENRICHED output, which has no EOE
// records and interpreted fields after 0x1d.
func TestEnrichedLog(t *testing.T) {
	ws := testWatches()
	p, m, out, logs := newTestPipeline(t, ws)
	feedFile(t, p, "testdata/enriched.log")
	var etc, runc int
	for _, s := range *out {
		switch s.key {
		case "docker_etc":
			etc++
		case "runc_bin":
			runc++
		}
		if strings.ContainsRune(s.ev.Exe, record.EnrichedSeparator) || strings.ContainsRune(s.ev.Key, record.EnrichedSeparator) {
			t.Errorf("serial %d: interpreted fields leaked into raw ones: %+v", s.ev.Serial, s.ev)
		}
	}
	if etc != 5 || runc != 1 {
		t.Fatalf("got %d docker_etc and %d runc_bin events, want 5 and 1", etc, runc)
	}
	first := (*out)[0].ev
	if first.Syscall != "openat" || first.UIDName != "root" || first.AUIDName != "unset" {
		t.Errorf("enriched fields not used: %+v", first)
	}
	var binLevel bool
	for _, l := range logs.All() {
		if l.ContextMap()["key"] == "runc_bin" {
			binLevel = l.Level == zap.ErrorLevel
		}
	}
	if !binLevel {
		t.Error("a write to a binary was not logged at error")
	}
	if got := counterValue(t, m.parseErrors); got != 0 {
		t.Errorf("parse errors = %v, want 0", got)
	}
}

func TestExpectedWriterOnlyCounted(t *testing.T) {
	ws := []Watch{{Path: "/etc/docker", Key: "docker_etc", Kind: KindConfig, Expected: []string{"/usr/bin/touch"}}}
	p, m, _, logs := newTestPipeline(t, ws)
	p.match.setRules(ownRules(ws))
	feedFile(t, p, "testdata/raw.log")
	if got := eventTotal(t, m, "docker_etc", true); got != 2 {
		t.Errorf("expected events = %v, want 2 (the two touch events)", got)
	}
	if got := eventTotal(t, m, "docker_etc", false); got != 6 {
		t.Errorf("unexpected events = %v, want 6", got)
	}
	if logs.Len() != 6 {
		t.Errorf("logged %d lines, want 6: routine events are only counted", logs.Len())
	}
}

func TestKeylessEventMatchedByPath(t *testing.T) {
	p, m, out, _ := newTestPipeline(t, testWatches())
	for _, l := range []string{
		`type=SYSCALL msg=audit(10.000:50): arch=c000003e syscall=2 success=no exit=-13 a0=55d0 a1=241 items=1 ppid=1 pid=2 auid=1000 uid=1000 comm="vi" exe="/usr/bin/vim" key="someone_elses"`,
		`type=PATH msg=audit(10.000:50): item=0 name="/var/lib/docker/volumes/x" nametype=NORMAL`,
		`type=PROCTITLE msg=audit(10.000:50): proctitle="vi"`,
	} {
		p.PushLine(l)
	}
	p.Close()
	if len(*out) != 1 || (*out)[0].key != "docker_lib" || (*out)[0].ev.Success || (*out)[0].ev.Exit != -13 {
		t.Fatalf("got %+v, want one failed docker_lib event", *out)
	}
	if got := eventTotal(t, m, "docker_lib", false); got != 1 {
		t.Errorf("docker_lib unexpected = %v, want 1", got)
	}
}

func TestMalformedRecordsCounted(t *testing.T) {
	p, m, out, _ := newTestPipeline(t, testWatches())
	for _, l := range []string{
		"garbage",
		`type=SYSCALL msg=audit(x.1:2): key="docker_etc"`,
		`type=SYSCALL msg=audit(11.000:60): arch=c000003e syscall=257 success=yes exit=3 pid=zz uid=0 auid=0 comm="a" exe=ZZZ key="docker_etc"`,
		`type=PATH msg=audit(11.000:60): item=0 name="/etc/docker/a" nametype=NORMAL`,
		`type=PROCTITLE msg=audit(11.000:60): proctitle=41`,
	} {
		p.PushLine(l)
	}
	p.Close()
	if got := counterValue(t, m.parseErrors); got != 4 {
		t.Errorf("parse errors = %v, want 4 (2 lines, 2 fields)", got)
	}
	if len(*out) != 1 {
		t.Errorf("the event with bad fields was dropped: %+v", *out)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
