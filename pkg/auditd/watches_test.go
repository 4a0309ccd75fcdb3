package auditd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// TestWatchesThroughAbsoluteVarRun: on Debian /var/run is an absolute link
// to /run, and dockerd's own containerd binds its socket under
// /var/run/docker/containerd. Under a rootfs the link must lead to the
// rootfs's /run, not the agent's own: the socket is watched where it
// really is, and the coverage check sees that it exists, so a missing rule
// for it is reported.
func TestWatchesThroughAbsoluteVarRun(t *testing.T) {
	root := t.TempDir()
	const sock = "/run/docker/containerd/containerd.sock"
	for _, dir := range []string{"run/docker/containerd", "var", "etc/docker"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, sock), nil, 0o660); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/run", filepath.Join(root, "var/run")); err != nil {
		t.Fatal(err)
	}
	host := hostfs.At(root)
	var got *Watch
	for _, w := range ResolveWatches(DefaultConfig(), host) {
		if w.Key == "containerd_sock" {
			got = &w
		}
	}
	if got == nil || got.Path != sock || got.CIS != "1.1.8" {
		t.Fatalf("containerd_sock watch = %+v; want %s, found through /var/run inside the rootfs", got, sock)
	}

	store := findings.NewStore(nil)
	src, err := New(DefaultConfig(), Deps{Sink: store.SourceSink(Name), Host: host})
	if err != nil {
		t.Fatal(err)
	}
	src.judgeCoverage(nil, 1)
	missing := map[string]bool{}
	for _, f := range store.Open() {
		if f.Rule == "audit.watch_missing" {
			missing[f.Subject.Name] = true
		}
	}
	if !missing[sock] || !missing["/etc/docker"] || missing["/run/containerd/containerd.sock"] {
		t.Errorf("audit.watch_missing subjects %v; want the existing %s and /etc/docker, and nothing under the agent's own /run", missing, sock)
	}
}

// kernelRulesFor is the kernel's decoded rule list with dockward's rule on
// each of ws's paths.
func kernelRulesFor(t *testing.T, ws []Watch) []rules.Rule {
	t.Helper()
	var out []rules.Rule
	for _, w := range ws {
		wire, err := rules.Build(w.rule())
		if err != nil {
			t.Fatal(err)
		}
		r, err := rules.Decode(wire)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// watchReport is the compliance report's results for the watch checks, from
// the source's findings and observations.
func watchReport(store *findings.Store, src *Source) map[string]findings.CheckResult {
	rep := findings.Report(findings.ComplianceInput{Open: store.Open(), Judged: func(string) bool { return true },
		Observations: src.Observations()})
	out := map[string]findings.CheckResult{}
	for _, r := range rep.Results() {
		if strings.HasPrefix(r.ID, "1.1.") && r.ID != "1.1.1" && r.ID != "1.1.2" {
			out[r.ID] = r
		}
	}
	return out
}

// expectWatchStatuses checks every watch check's status: want lists the
// exceptions to def, and every manual one must say why.
func expectWatchStatuses(t *testing.T, got map[string]findings.CheckResult, def findings.Status, want map[string]findings.Status, noteHas string) {
	t.Helper()
	if len(got) != 16 {
		t.Fatalf("%d watch checks in the report, want 16 (1.1.3-1.1.18)", len(got))
	}
	for id, r := range got {
		st, ok := want[id]
		if !ok {
			st = def
		}
		if r.Status != st {
			t.Errorf("%s: %s (%q), want %s", id, r.Status, r.Note, st)
		}
		if r.Status == findings.StatusManual && !strings.Contains(r.Note, noteHas) {
			t.Errorf("%s is manual with note %q, want one saying %q", id, r.Note, noteHas)
		}
	}
}

// Over a fixture host: before any comparison, after the kernel refused, and
// in mode off, every watch check is manual with the reason, never pass.
// Compared with rules on every path, each check whose paths exist passes
// and each whose paths do not (sysconfig, the v1 shim) is not_applicable,
// as docker-bench-security leaves it unscored; a rule removed fails its
// check.
func TestWatchChecksObserved(t *testing.T) {
	cfg, host := watchFixture(t)
	store := findings.NewStore(nil)
	src, err := New(cfg, Deps{Sink: store.SourceSink(Name), Host: host})
	if err != nil {
		t.Fatal(err)
	}
	expectWatchStatuses(t, watchReport(store, src), findings.StatusManual, nil, "have not been compared with the watches yet")

	src.judgeCoverage(kernelRulesFor(t, src.Watches()), 1)
	absent := map[string]findings.Status{}
	for _, id := range []string{"1.1.9", "1.1.10", "1.1.12", "1.1.13", "1.1.15", "1.1.16", "1.1.17"} {
		absent[id] = findings.StatusNotApplicable
	}
	got := watchReport(store, src)
	expectWatchStatuses(t, got, findings.StatusPass, absent, "")
	if n := got["1.1.6"].Note; !strings.Contains(n, "kernel audit rules cover /etc/docker (key docker_etc)") {
		t.Errorf("1.1.6 passes with note %q, want the covering rule named", n)
	}
	if n := got["1.1.13"].Note; n != "no such file on this host: /etc/sysconfig/docker" {
		t.Errorf("1.1.13 note %q", n)
	}
	if n := got["1.1.16"].Note; !strings.Contains(n, "containerd-shim-runc-v1 (searched /usr/local/sbin") {
		t.Errorf("1.1.16 note %q", n)
	}

	var without []Watch
	for _, w := range src.Watches() {
		if w.Path != "/etc/docker" {
			without = append(without, w)
		}
	}
	src.judgeCoverage(kernelRulesFor(t, without), 1)
	failing := map[string]findings.Status{"1.1.6": findings.StatusFail}
	for id, st := range absent {
		failing[id] = st
	}
	got = watchReport(store, src)
	expectWatchStatuses(t, got, findings.StatusPass, failing, "")
	if s := got["1.1.6"].Subjects; len(s) != 1 || s[0] != "audit /etc/docker" {
		t.Errorf("1.1.6 fails for %v, want audit /etc/docker", s)
	}

	refuse(t, src)
	// The finding of the last comparison stays open: 1.1.6 still fails.
	expectWatchStatuses(t, watchReport(store, src), findings.StatusManual, map[string]findings.Status{"1.1.6": findings.StatusFail},
		"only in the host's initial PID namespace")

	cfg.Mode = ModeOff
	off, err := New(cfg, Deps{Sink: findings.NewStore(nil).SourceSink(Name), Host: host})
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	expectWatchStatuses(t, watchReport(findings.NewStore(nil), off), findings.StatusManual, nil, "audit mode is off")
}

// refuse has the kernel refuse src's status request as it does outside the
// host's PID namespace (EPERM to a process holding CAP_AUDIT_CONTROL).
func refuse(t *testing.T, src *Source) {
	t.Helper()
	status := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(status, []byte("Name:\tdockward\nCapEff:\t000001ffffffffff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := selfStatus
	selfStatus = status
	t.Cleanup(func() { selfStatus = old })
	src.statusFailed(syscall.EPERM)
}

// 1.1.3 and 1.1.4 ask for the rule whatever the host has (docker-bench-
// security scores them either way): /run/containerd absent is judged, a
// rule on it passes the check and none fails it, naming the absent path.
func TestAbsentPathOfAScoredWatchCheckIsJudged(t *testing.T) {
	cfg, host := watchFixture(t)
	if err := os.RemoveAll(filepath.Join(host.Dir(), "run/containerd")); err != nil {
		t.Fatal(err)
	}
	store := findings.NewStore(nil)
	src, err := New(cfg, Deps{Sink: store.SourceSink(Name), Host: host})
	if err != nil {
		t.Fatal(err)
	}
	var run, others []Watch
	for _, w := range src.Watches() {
		if w.Path == "/run/containerd" {
			run = append(run, w)
		} else {
			others = append(others, w)
		}
	}
	if len(run) != 1 || run[0].CIS != "1.1.4" {
		t.Fatalf("no watch on the absent /run/containerd (its parent exists): %+v", src.Watches())
	}
	src.judgeCoverage(kernelRulesFor(t, src.Watches()), 1)
	if r := watchReport(store, src)["1.1.4"]; r.Status != findings.StatusPass {
		t.Errorf("1.1.4 with a rule on the absent /run/containerd: %s %q", r.Status, r.Note)
	}
	src.judgeCoverage(kernelRulesFor(t, others), 1)
	r := watchReport(store, src)["1.1.4"]
	if r.Status != findings.StatusFail || len(r.Subjects) != 1 || r.Subjects[0] != "audit /run/containerd" {
		t.Errorf("1.1.4 without a rule on the absent /run/containerd: %s %v %q", r.Status, r.Subjects, r.Note)
	}
	for _, f := range store.Open() {
		if f.Subject.Name == "/run/containerd" && !strings.Contains(f.Message, "does not exist yet") {
			t.Errorf("the finding does not say the path is absent: %q", f.Message)
		}
	}
}

// The checks the audit source observes are exactly the built-in watches'
// checks, each a check of the benchmark whose rules include
// audit.watch_missing.
func TestWatchChecksAreTheBenchmarks(t *testing.T) {
	got := watchChecks()
	if len(got) != 16 || got[0] != "1.1.3" {
		t.Fatalf("watch checks %v, want the 16 of 1.1.3-1.1.18", got)
	}
	for _, id := range got {
		if c, _ := findings.LookupCheck(id); c.Observed != Name {
			t.Errorf("%s is observed by %q, want %q", id, c.Observed, Name)
		}
	}
	if !judgedWhenAbsent("1.1.4") || judgedWhenAbsent("1.1.13") || judgedWhenAbsent("") || judgedWhenAbsent("1.1") {
		t.Error("judgedWhenAbsent: only 1.1.3 and 1.1.4, which docker-bench-security scores in every case, judge an absent path")
	}
}
