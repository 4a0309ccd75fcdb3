package findings

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func newObservedStore() (*Store, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return NewStore(zap.New(core)), logs
}

func web(name string) Subject {
	return ContainerSubject("0123456789abcdef0123456789abcdef", "/"+name, "nginx:1.25", map[string]string{"team": "web"})
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.TakeAll() {
		out = append(out, e.Level.String()+" "+e.Message+" "+fmt.Sprint(e.ContextMap()["rule"]))
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStoreOpenResolveTransitions(t *testing.T) {
	s, logs := newObservedStore()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }
	sink := s.SourceSink("containers")

	priv := New("container.privileged", web("web"), "runs privileged")
	mem := New("container.no_memory_limit", web("web"), "no memory limit")
	sink.Set("c1", []Finding{priv, mem})

	open := s.Open()
	if len(open) != 2 || open[0].Rule != "container.privileged" || open[1].Rule != "container.no_memory_limit" {
		t.Fatalf("open = %+v, want privileged then no_memory_limit (severity order)", open)
	}
	if !open[0].FirstSeen.Equal(clock) {
		t.Errorf("FirstSeen = %v, want %v", open[0].FirstSeen, clock)
	}
	if got, want := messages(logs), []string{"error finding opened container.privileged", "warn finding opened container.no_memory_limit"}; !sameSet(got, want) {
		t.Errorf("logs on open = %q, want %q (critical at error, others at warn)", got, want)
	}

	// The same judgement again is no transition: no log, FirstSeen kept.
	clock = clock.Add(time.Hour)
	sink.Set("c1", []Finding{mem, priv})
	if got := messages(logs); len(got) != 0 {
		t.Errorf("re-reporting open findings logged %q, want nothing", got)
	}
	if fs := s.Open()[0].FirstSeen; !fs.Equal(clock.Add(-time.Hour)) {
		t.Errorf("FirstSeen moved to %v on re-report", fs)
	}

	// Dropping one resolves exactly that one, at info.
	sink.Set("c1", []Finding{mem})
	if got, want := messages(logs), []string{"info finding resolved container.privileged"}; !equalStrings(got, want) {
		t.Errorf("logs on resolve = %q, want %q", got, want)
	}
	if got := scopesOf(sink); !equalStrings(got, []string{"c1"}) {
		t.Errorf("Scopes = %q, want [c1]", got)
	}

	// An empty judgement resolves the rest and forgets the scope.
	sink.Set("c1", nil)
	if len(s.Open()) != 0 || len(scopesOf(sink)) != 0 {
		t.Errorf("after Set(nil): open %v, scopes %v; want both empty", s.Open(), scopesOf(sink))
	}
	if got, want := messages(logs), []string{"info finding resolved container.no_memory_limit"}; !equalStrings(got, want) {
		t.Errorf("logs = %q, want %q", got, want)
	}
	if got := openedCount(s, "container.privileged", Critical); got != 1 {
		t.Errorf("opened counter for privileged = %d, want 1", got)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func openedCount(s *Store, rule string, sev Severity) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opened[openedKey{rule, sev}]
}

func TestStoreScopesArePerSource(t *testing.T) {
	s := NewStore(nil)
	a, b := s.SourceSink("containers"), s.SourceSink("host")
	a.Set("x", []Finding{New("container.privileged", web("x"), "m")})
	b.Set("x", []Finding{New("file.mode", Subject{Kind: KindFile, Name: "/etc/docker"}, "m")})
	if got := scopesOf(a); !equalStrings(got, []string{"x"}) {
		t.Errorf("containers scopes = %q", got)
	}
	b.Set("x", nil)
	if len(s.Open()) != 1 || s.Open()[0].Rule != "container.privileged" {
		t.Errorf("clearing host's scope x touched containers' scope x: open = %+v", s.Open())
	}
}

func TestStoreDedupeKeepsMostSevereAndMergesDetails(t *testing.T) {
	s := NewStore(nil)
	ro := New("container.sensitive_mount", web("w"), "ro /etc").With("source", "/etc")
	ro.Severity = Medium
	rw := New("container.sensitive_mount", web("w"), "rw /root").With("mode", "rw")
	s.SourceSink("containers").Set("w", []Finding{ro, rw})
	open := s.Open()
	if len(open) != 1 {
		t.Fatalf("want one finding per (rule, subject), got %d", len(open))
	}
	if open[0].Severity != High || open[0].Message != "rw /root" {
		t.Errorf("kept %v %q, want the high one", open[0].Severity, open[0].Message)
	}
	if open[0].Details["source"] != "/etc" || open[0].Details["mode"] != "rw" {
		t.Errorf("details not merged: %v", open[0].Details)
	}
}

func TestStoreRuleOverrides(t *testing.T) {
	s, logs := newObservedStore()
	low := Low
	s.ApplyPolicy(Policy{Rules: map[string]RuleOverride{
		"container.no_memory_limit": {Severity: &low},
		"container.writable_rootfs": {Disabled: true},
	}})
	logs.TakeAll()
	sink := s.SourceSink("containers")
	sink.Set("w", []Finding{
		New("container.no_memory_limit", web("w"), "m"),
		New("container.writable_rootfs", web("w"), "m"),
	})
	open := s.Open()
	if len(open) != 1 || open[0].Rule != "container.no_memory_limit" || open[0].Severity != Low {
		t.Fatalf("open = %+v, want only no_memory_limit at low", open)
	}
	if openedCount(s, "container.no_memory_limit", Low) != 1 || openedCount(s, "container.no_memory_limit", Medium) != 0 {
		t.Error("opened counter must use the overridden severity")
	}
	if got := messages(logs); !equalStrings(got, []string{"warn finding opened container.no_memory_limit"}) {
		t.Errorf("logs = %q: a disabled rule must not log", got)
	}

	// Reload: re-enable writable_rootfs, drop the override. The raw
	// judgement is re-judged without the source reporting again.
	s.ApplyPolicy(Policy{})
	open = s.Open()
	if len(open) != 2 {
		t.Fatalf("after reload open = %+v, want 2", open)
	}
	for _, f := range open {
		if f.Rule == "container.no_memory_limit" && f.Severity != Medium {
			t.Errorf("severity after dropping the override = %v, want medium", f.Severity)
		}
	}
	if got := messages(logs); !sameSet(got, []string{
		"info finding resolved container.no_memory_limit", "warn finding opened container.no_memory_limit",
		"warn finding opened container.writable_rootfs",
	}) {
		t.Errorf("logs on reload = %q", got)
	}
}

func TestStoreExemptions(t *testing.T) {
	s, logs := newObservedStore()
	s.ApplyPolicy(Policy{Exemptions: []Exemption{
		{Rule: "container.privileged", Container: "ci-*", Reason: "CI runners build images"},
		{Rule: "container.host_network", Image: "prom/node-exporter:*", Reason: "node exporter reads host network stats"},
		{Rule: "container.no_memory_limit", Labels: map[string]string{"team": "web"}, Reason: "web sizes by cgroup parent"},
		{Rule: "file.mode", Path: "/etc/docker/*", Reason: "managed by config management"},
	}})
	if got := len(logs.FilterMessage("exemption in force").All()); got != 4 {
		t.Errorf("%d exemption log lines at policy load, want one per exemption (4)", got)
	}
	logs.TakeAll()

	ci := ContainerSubject("aaaaaaaaaaaaaaaaaaaa", "/ci-runner-1", "gitlab/runner", nil)
	other := ContainerSubject("bbbbbbbbbbbbbbbbbbbb", "/app", "app:1", nil)
	nodeexp := ContainerSubject("cccccccccccccccccccc", "/ne", "prom/node-exporter:v1.8.0", nil)
	webc := ContainerSubject("dddddddddddddddddddd", "/shop", "shop:2", map[string]string{"team": "web", "tier": "front"})
	file := Subject{Kind: KindFile, Name: "/etc/docker/daemon.json"}
	otherFile := Subject{Kind: KindFile, Name: "/etc/default/docker"}

	s.SourceSink("containers").Set("all", []Finding{
		New("container.privileged", ci, "m"),        // exempt by name glob
		New("container.privileged", other, "m"),     // not: name differs
		New("container.host_network", nodeexp, "m"), // exempt by image glob
		New("container.host_network", ci, "m"),      // not: image differs
		New("container.no_memory_limit", webc, "m"), // exempt by label
		New("container.no_memory_limit", ci, "m"),   // not: no label
		New("container.host_pid", ci, "m"),          // not: no exemption for the rule
	})
	s.SourceSink("host").Set("files", []Finding{
		New("file.mode", file, "m"),      // exempt by path glob
		New("file.mode", otherFile, "m"), // not
	})

	exempt := map[string]string{}
	for _, f := range s.Open() {
		if f.Exempt {
			exempt[f.Rule+" "+f.Subject.Name] = f.ExemptReason
		}
	}
	want := map[string]string{
		"container.privileged ci-runner-1":  "CI runners build images",
		"container.host_network ne":         "node exporter reads host network stats",
		"container.no_memory_limit shop":    "web sizes by cgroup parent",
		"file.mode /etc/docker/daemon.json": "managed by config management",
	}
	if len(exempt) != len(want) {
		t.Errorf("exempt = %v, want %v", exempt, want)
	}
	for k, v := range want {
		if exempt[k] != v {
			t.Errorf("%s: exempt reason %q, want %q", k, exempt[k], v)
		}
	}
	if n := len(s.Open()); n != 9 {
		t.Errorf("Open() = %d findings, want all 9 (exempt ones included)", n)
	}
	if got := len(logs.FilterMessage("finding exempted").All()); got != 4 {
		t.Errorf("%d 'finding exempted' lines, want 4", got)
	}
	if got := len(logs.FilterMessage("finding opened").All()); got != 5 {
		t.Errorf("%d 'finding opened' lines, want 5", got)
	}
	if openedCount(s, "container.privileged", Critical) != 1 {
		t.Error("an exempt finding must not count as opened")
	}

	// Lifting the exemption opens (and counts) the finding.
	s.ApplyPolicy(Policy{})
	if openedCount(s, "container.privileged", Critical) != 2 {
		t.Error("lifting an exemption must open the finding")
	}
}

func TestExemptionDoesNotCrossKinds(t *testing.T) {
	pathOnly := Exemption{Rule: "file.mode", Path: "*", Reason: "r"}
	if pathOnly.Matches(New("file.mode", ContainerSubject("x", "/x", "i", nil), "m")) {
		t.Error("a path exemption matched a container subject")
	}
	nameOnly := Exemption{Rule: "file.mode", Container: "*", Reason: "r"}
	if nameOnly.Matches(New("file.mode", Subject{Kind: KindFile, Name: "/etc/docker"}, "m")) {
		t.Error("a container exemption matched a file subject")
	}
}

func TestPolicyValidate(t *testing.T) {
	bad := []Policy{
		{Rules: map[string]RuleOverride{"container.nope": {}}},
		{Exemptions: []Exemption{{Rule: "container.privileged", Container: "x"}}},              // no reason
		{Exemptions: []Exemption{{Rule: "container.privileged", Reason: "r"}}},                 // no selector
		{Exemptions: []Exemption{{Rule: "nope", Container: "x", Reason: "r"}}},                 // unknown rule
		{Exemptions: []Exemption{{Rule: "container.privileged", Container: "[", Reason: "r"}}}, // bad glob
	}
	for i, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, p)
		}
	}
	good := Policy{
		Rules:      map[string]RuleOverride{"container.privileged": {Disabled: true}},
		Exemptions: []Exemption{{Rule: "file.mode", Path: "/etc/docker/*", Reason: "r"}},
	}
	if err := good.Validate(); err != nil {
		t.Errorf("valid policy rejected: %v", err)
	}
}

// Many sources writing, resolving and re-judging while readers scrape must
// leave exactly the last judgement of each scope open, with counters that
// match the transitions (go test -race proves the locking).
func TestStoreConcurrentWriters(t *testing.T) {
	s := NewStore(nil)
	const writers, rounds = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c := NewCollector(s)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.Open()
				ch := make(chan prometheus.Metric, 1024)
				go func() { c.Collect(ch); close(ch) }()
				for range ch {
				}
			}
		}()
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sink := s.SourceSink(fmt.Sprintf("src%d", w%2))
			subj := ContainerSubject(fmt.Sprintf("%064d", w), fmt.Sprintf("/c%d", w), "img", nil)
			for i := 0; i < rounds; i++ {
				scope := fmt.Sprintf("w%d", w)
				if i%2 == 0 {
					sink.Set(scope, []Finding{New("container.privileged", subj, "m")})
				} else {
					sink.Set(scope, nil)
				}
				if w == 0 && i%50 == 0 {
					s.ApplyPolicy(Policy{})
				}
			}
			// Final judgement: open.
			sink.Set(fmt.Sprintf("w%d", w), []Finding{New("container.privileged", subj, "m")})
		}(w)
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if got := len(s.Open()); got != writers {
		t.Errorf("open = %d, want %d (one per writer)", got, writers)
	}
	// Each writer opened on every even round plus the final one.
	if got, want := openedCount(s, "container.privileged", Critical), uint64(writers*(rounds/2+1)); got != want {
		t.Errorf("opened counter = %d, want %d", got, want)
	}
}

func TestStoreFillsRuleDefaults(t *testing.T) {
	s := NewStore(nil)
	bare := Finding{Rule: "container.privileged", Subject: web("w"), Severity: Critical, Message: "m"}
	s.SourceSink("containers").Set("w", []Finding{bare})
	got := s.Open()[0]
	if got.CIS != "5.5" || got.Remediation == "" {
		t.Errorf("a finding built without New got CIS %q remediation %q; want the rule's", got.CIS, got.Remediation)
	}
}

// scopesOf lists the scopes a sink from SourceSink holds judgements in.
func scopesOf(k Sink) []string { return k.(sourceSink).scopes() }

// Sync sets every judged scope and resolves the scopes of its group that it
// was not given, logging each transition once and keeping first-seen times.
func TestStoreSyncDropsWhatVanished(t *testing.T) {
	s, logs := newObservedStore()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }
	sink := s.SourceSink("host")
	daemon := Subject{Kind: KindDaemon, Name: "dockerd"}
	file := func(p string) Subject { return Subject{Kind: KindFile, Name: p} }
	sink.Sync("", map[string][]Finding{
		"daemon":             {New("daemon.live_restore_off", daemon, "live restore off")},
		"file:/etc/docker":   {New("file.mode", file("/etc/docker"), "0777")},
		"file:/etc/default":  {New("file.mode", file("/etc/default/docker"), "0666")},
		"file:/run/docker.s": nil, // judged, nothing open
	})
	if got := scopesOf(sink); !equalStrings(got, []string{"daemon", "file:/etc/default", "file:/etc/docker"}) {
		t.Fatalf("scopes after the first Sync = %q", got)
	}
	if got := messages(logs); len(got) != 3 {
		t.Errorf("first Sync logged %q, want three openings", got)
	}

	// /etc/default/docker vanished; /etc/docker is unchanged, an hour later.
	clock = clock.Add(time.Hour)
	sink.Sync("", map[string][]Finding{
		"daemon":           {New("daemon.live_restore_off", daemon, "live restore off")},
		"file:/etc/docker": {New("file.mode", file("/etc/docker"), "0777")},
	})
	if got, want := messages(logs), []string{"info finding resolved file.mode"}; !equalStrings(got, want) {
		t.Errorf("logs after a scope vanished = %q, want %q", got, want)
	}
	if got := scopesOf(sink); !equalStrings(got, []string{"daemon", "file:/etc/docker"}) {
		t.Errorf("scopes = %q, want the vanished one dropped", got)
	}
	for _, f := range s.Open() {
		if !f.FirstSeen.Equal(clock.Add(-time.Hour)) {
			t.Errorf("%s on %s: FirstSeen = %v, want the first Sync's time kept", f.Rule, f.Subject.Name, f.FirstSeen)
		}
	}

	// A scope named in keep is left as it is; an empty judgement resolves the rest.
	sink.Sync("", nil, "file:/etc/docker")
	if got, want := messages(logs), []string{"info finding resolved daemon.live_restore_off"}; !equalStrings(got, want) {
		t.Errorf("logs after a Sync that keeps /etc/docker = %q, want %q", got, want)
	}
	if got := scopesOf(sink); !equalStrings(got, []string{"file:/etc/docker"}) {
		t.Errorf("scopes = %q, want only the kept one", got)
	}
	if open := s.Open(); len(open) != 1 || !open[0].FirstSeen.Equal(clock.Add(-time.Hour)) {
		t.Errorf("open = %+v, want the kept finding with its first-seen time", open)
	}
}

// Sync resolves only its group's scopes (by prefix) and only its own
// source's: another group, and another source's scope of the same name, stay.
func TestStoreSyncStaysInItsGroup(t *testing.T) {
	s, logs := newObservedStore()
	audit, other := s.SourceSink("audit"), s.SourceSink("host")
	watch := func(p string) Finding {
		return New("audit.watch_missing", Subject{Kind: KindAudit, Name: p}, "no rule")
	}
	audit.Set("daemon", []Finding{New("audit.daemon_unaudited", Subject{Kind: KindAudit, Name: "dockerd"}, "m")})
	audit.Set("watch:/etc/docker", []Finding{watch("/etc/docker")})
	audit.Set("watch:/usr/bin/runc", []Finding{watch("/usr/bin/runc")})
	other.Set("watch:/etc/docker", []Finding{New("file.mode", Subject{Kind: KindFile, Name: "/etc/docker"}, "0777")})
	logs.TakeAll()

	audit.Sync("watch:", map[string][]Finding{"watch:/etc/docker": {watch("/etc/docker")}})
	if got, want := messages(logs), []string{"info finding resolved audit.watch_missing"}; !equalStrings(got, want) {
		t.Errorf("logs = %q, want only /usr/bin/runc's watch resolved", got)
	}
	if got := scopesOf(audit); !equalStrings(got, []string{"daemon", "watch:/etc/docker"}) {
		t.Errorf("audit scopes = %q, want daemon (another group) kept", got)
	}
	if got := scopesOf(other); !equalStrings(got, []string{"watch:/etc/docker"}) {
		t.Errorf("host scopes = %q, want them untouched by audit's Sync", got)
	}

	// Resolving a whole source, as the agent does for a stopped one.
	audit.Sync("", nil)
	if got := scopesOf(audit); len(got) != 0 {
		t.Errorf("audit scopes after Sync(\"\", nil) = %q, want none", got)
	}
	if len(s.Open()) != 1 || s.Open()[0].Rule != "file.mode" {
		t.Errorf("open = %+v, want only host's finding", s.Open())
	}
}

// CheckKinds tells a finding whose subject kind is not its rule's.
func TestCheckKinds(t *testing.T) {
	good := []Finding{
		New("audit.daemon_unaudited", DaemonSubject(KindAudit), "m"),
		New("daemon.live_restore_off", DaemonSubject(KindDaemon), "m"),
		New("container.privileged", web("web"), "m"),
	}
	if err := CheckKinds(good); err != nil {
		t.Errorf("CheckKinds(agreeing kinds) = %v", err)
	}
	bad := New("audit.daemon_unaudited", DaemonSubject(KindDaemon), "m")
	if err := CheckKinds(append(good, bad)); err == nil || !strings.Contains(err.Error(), "audit.daemon_unaudited") {
		t.Errorf("CheckKinds(daemon_unaudited as kind daemon) = %v, want an error naming the rule", err)
	}
}
