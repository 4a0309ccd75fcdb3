package auditd

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Under a rootfs, the rule dockward adds for a watch is on the path as the
// agent sees it (the kernel resolves it in the adder's mount namespace),
// and coverage accepts that rule as well as one on the host's own path,
// but not a rule on some other path.
func TestRulesThroughRootfs(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	host := hostfs.At(root)
	src, err := New(DefaultConfig(), Deps{Sink: findings.NewStore(nil).SourceSink(Name), Host: host})
	if err != nil {
		t.Fatal(err)
	}
	var etc Watch
	for _, w := range src.watches {
		if w.Key == "docker_etc" {
			etc = w
		}
	}
	if etc.Path != "/etc/docker" {
		t.Fatalf("docker_etc watch %+v, want the host path /etc/docker", etc)
	}
	if got := etc.kernelRule(host).Path; got != root+"/etc/docker" {
		t.Errorf("the rule for /etc/docker is added on %s, want %s/etc/docker", got, root)
	}
	decoded := func(path string) rules.Rule {
		wire, err := rules.Build(rules.Watch{Path: path, Key: "docker_etc"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := rules.Decode(wire)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for path, want := range map[string]bool{root + "/etc/docker": true, "/etc/docker": true, "/srv/etc/docker": false} {
		covered := false
		for i, c := range src.coverage([]rules.Rule{decoded(path)}) {
			if src.watches[i].Key == "docker_etc" {
				covered = c.Covered && c.Exists
			}
		}
		if covered != want {
			t.Errorf("a rule on %s covers the host's /etc/docker: %v, want %v", path, covered, want)
		}
	}
}

// A unicast run killed with SIGKILL cannot restore the kernel; the next
// start with the same state directory finds its journal, undoes what it
// left (without duplicating its rules), and a clean stop then leaves the
// kernel as it was before the first run.
func TestSIGKILLThenNextStartUndoes(t *testing.T) {
	requireAudit(t)
	expectKernelRestored(t)
	before := kernelAuditState(t)
	state := t.TempDir()
	killed, _ := startDaemonChild(t, state)
	during := kernelAuditState(t)
	killed.Process.Kill()
	killed.Wait()
	left := kernelAuditState(t)
	if !strings.Contains(left, "-k docker_etc") {
		t.Fatalf("the killed run left no rules; the test proves nothing:\n%s", left)
	}
	if _, err := os.Stat(filepath.Join(state, JournalFile)); err != nil {
		t.Fatalf("the killed run left no journal: %v", err)
	}
	next, stderr := startDaemonChild(t, state)
	if again := kernelAuditState(t); strings.Count(again, "\n-w ") != strings.Count(during, "\n-w ") {
		t.Errorf("the next run holds other rules than the first:\nfirst:\n%s\nnext:\n%s", during, again)
	}
	next.Process.Signal(syscall.SIGTERM)
	if err := next.Wait(); err != nil {
		t.Fatalf("next run after SIGTERM: %v %s", err, stderr.String())
	}
	if after := kernelAuditState(t); after != before {
		t.Errorf("not restored after a kill and a clean restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(state, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("the journal is still there after a clean stop: %v", err)
	}
}
