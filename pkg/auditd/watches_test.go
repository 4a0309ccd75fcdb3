package auditd

import (
	"os"
	"path/filepath"
	"testing"

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
