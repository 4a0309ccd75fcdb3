package auditd

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// scanKernel runs the source's read-only judgement (what dockward scan
// does) once against the kernel's rules as they are.
func scanKernel(t *testing.T) (*findings.Store, *Source) {
	t.Helper()
	store := findings.NewStore(nil)
	src, err := New(DefaultConfig(), Deps{Sink: store.SourceSink(Name)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store, src
}

// scanWatchChecks is scanKernel's results for the watch checks.
func scanWatchChecks(t *testing.T) map[string]findings.CheckResult {
	t.Helper()
	return watchReport(scanKernel(t))
}

// expectedWatchStatuses is what the watch checks must be on this host with
// the CIS rules loaded (loadCISRules: a rule on every existing path): pass
// where a path of the check exists, not_applicable where none does, and
// fail for 1.1.3 and 1.1.4 where their path is absent, which they judge
// all the same.
func expectedWatchStatuses() map[string]findings.Status {
	want := map[string]findings.Status{}
	for _, id := range watchChecks() {
		want[id] = findings.StatusNotApplicable
	}
	for _, w := range ResolveWatches(DefaultConfig(), hostfs.Root{}) {
		_, err := os.Lstat(w.Path)
		switch {
		case w.CIS == "1.1" || w.CIS == "":
		case err == nil:
			want[w.CIS] = findings.StatusPass
		case judgedWhenAbsent(w.CIS) && want[w.CIS] != findings.StatusPass:
			want[w.CIS] = findings.StatusFail
		}
	}
	return want
}

// TestWatchChecksOnTheKernel loads the benchmark's watches (-w PATH -k
// docker, no -p) on the real kernel for every watched path this host has:
// each watch check passes, naming the covering rule, and the check of a
// path this host lacks (Debian has no /etc/sysconfig/docker) is
// not_applicable. Removing the /etc/docker rule fails 1.1.6, and only it.
func TestWatchChecksOnTheKernel(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	if !strings.Contains(testenv.Run(t, "auditctl", "-s"), "enabled 1") {
		testenv.Run(t, "auditctl", "-e", "1")
		t.Cleanup(func() { testenv.Run(t, "auditctl", "-e", "0") })
	}
	loadCISRules(t)
	want := expectedWatchStatuses()
	if _, err := os.Stat("/etc/sysconfig/docker"); err == nil || want["1.1.13"] != findings.StatusNotApplicable {
		testenv.Missing(t, "a host without /etc/sysconfig/docker (Debian) for the not_applicable case")
	}
	got := scanWatchChecks(t)
	for id, st := range want {
		if got[id].Status != st {
			t.Errorf("with the CIS rules loaded, %s: %s (%q), want %s", id, got[id].Status, got[id].Note, st)
		}
	}
	if n := got["1.1.6"].Note; !strings.Contains(n, "/etc/docker (key docker)") {
		t.Errorf("1.1.6 passes with note %q, want the rule keyed docker named", n)
	}
	if n := got["1.1.13"].Note; n != "no such file on this host: /etc/sysconfig/docker" {
		t.Errorf("1.1.13 note %q", n)
	}

	testenv.Run(t, "auditctl", "-W", "/etc/docker", "-k", "docker")
	got = scanWatchChecks(t)
	want["1.1.6"] = findings.StatusFail
	for id, st := range want {
		if got[id].Status != st {
			t.Errorf("with the /etc/docker rule removed, %s: %s (%q), want %s", id, got[id].Status, got[id].Note, st)
		}
	}
	if s := got["1.1.6"].Subjects; len(s) != 1 || s[0] != "audit /etc/docker" {
		t.Errorf("1.1.6 fails for %v, want audit /etc/docker", s)
	}
}
