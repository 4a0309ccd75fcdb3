package auditd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Every audit rule, reached without the kernel, emit the kind the
// catalogue gives them (audit), so /findings?kind=audit lists them.
func TestAuditFindingKindsMatchTheCatalogue(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	store := findings.NewStore(nil)
	src, err := New(DefaultConfig(), Deps{Sink: store.SourceSink(Name), DockerdPID: os.Getpid, Host: hostfs.At(root)})
	if err != nil {
		t.Fatal(err)
	}
	// dockerd (this test process) started before dockward enabled audit
	// now, and the kernel log shows no earlier enabling.
	src.kmsgPath = filepath.Join(root, "kmsg")
	if err := os.WriteFile(src.kmsgPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src.cmdline = ""
	src.ourEnable = sinceBoot()
	src.judgeDaemon(1)
	src.judgeCoverage(nil, 1)   // no kernel rule covers /etc/docker
	src.judgeDetections(nil, 1) // nor any detection's calls
	open := store.Open()
	reached := map[string]bool{}
	for _, f := range open {
		reached[f.Rule] = true
	}
	for _, r := range findings.Rules() {
		if r.Source == Name && !reached[r.ID] {
			t.Errorf("rule %s not reached; open: %+v", r.ID, open)
		}
	}
	if err := findings.CheckKinds(open); err != nil {
		t.Error(err)
	}
}
