package watcher

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// TestFilePathsAreFoundWhereTheHostKeepsThem lays out a host that is not
// Debian's: units only under /usr/lib/systemd/system (the rpm layout), the
// API socket where daemon.json's hosts and the socket unit's ListenStream
// put it, and containerd's socket where daemon.json's containerd says.
// Each of those paths must be judged; a hard-coded layout would miss them.
func TestFilePathsAreFoundWhereTheHostKeepsThem(t *testing.T) {
	tr := newTree(t)
	tr.write("/usr/lib/systemd/system/docker.service", 0o644, "[Service]\nExecStart=/usr/bin/dockerd\n")
	tr.write("/usr/lib/systemd/system/docker.socket", 0o644, "[Socket]\nListenStream=/run/custom/docker.sock\n")
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false, "hosts": ["unix:///srv/docker/api.sock"],
		"containerd": "/run/custom-containerd/containerd.sock"}`)
	sockets := []string{"/run/custom/docker.sock", "/srv/docker/api.sock"}
	for _, p := range sockets {
		tr.write(p, 0o660, "")
		tr.chown(p, 0, 999)
	}
	tr.write("/run/custom-containerd/containerd.sock", 0o660, "")

	cases := []modeCase{
		{"/usr/lib/systemd/system/docker.service", 0o644, 0o664, "3.2"},
		{"/usr/lib/systemd/system/docker.socket", 0o644, 0o646, "3.4"},
		{"/run/custom/docker.sock", 0o660, 0o666, "3.16"},
		{"/srv/docker/api.sock", 0o660, 0o662, "3.16"},
		{"/run/custom-containerd/containerd.sock", 0o660, 0o666, "3.24"},
	}
	h := newHarness(t, tr, nil)
	checkModeFindings(t, h, tr, h.scan(), cases)
}

// modeCase is a file at a compliant mode and at one that must be a
// file.mode finding under CIS check cisMode.
type modeCase struct {
	path      string
	good, bad os.FileMode
	cisMode   string
}

// checkModeFindings checks that no case has a finding in fs (a scan with
// every file at its good mode), then sets each to its bad mode and checks
// each is judged, with its CIS check and a chmod back to the good bits.
func checkModeFindings(t *testing.T, h *harness, tr *tree, fs []findings.Finding, cases []modeCase) {
	t.Helper()
	for _, c := range cases {
		if f, ok := find(fs, "file.mode", c.path); ok {
			t.Errorf("%s at %04o: unexpected finding %q", c.path, c.good, f.Message)
		}
		tr.chmod(c.path, c.bad)
	}
	fs = h.scan()
	for _, c := range cases {
		f, ok := find(fs, "file.mode", c.path)
		if !ok {
			t.Errorf("%s at %04o: not judged (open: %v)", c.path, c.bad, rulesOf(fs, c.path))
			continue
		}
		want := fmt.Sprintf("chmod %04o %s", uint32(c.bad)&uint32(c.good), c.path)
		if f.CIS != c.cisMode || f.Remediation != want {
			t.Errorf("%s: CIS %q remediation %q, want %q and %q", c.path, f.CIS, f.Remediation, c.cisMode, want)
		}
	}
}

// TestBurstOfChangesIsOneJudgement writes daemon.json many times in quick
// succession, as an editor or a package upgrade does: the debounce must
// gather the burst into one judgement, of the last content.
func TestBurstOfChangesIsOneJudgement(t *testing.T) {
	tr := newTree(t).minimalHost()
	// A daemon that can be seen (its /info, no bridge): icc is judged from daemon.json.
	h := newHarness(t, tr, &fakeDocker{info: *hardenedInfo()}, func(c *Config) { c.RescanInterval = time.Hour; c.Debounce = 600 * time.Millisecond })
	testenv.RunSource(t, h.src)
	scans := func() float64 { return testutil.ToFloat64(h.src.s.m.scans) }
	if got := scans(); got != 1 {
		t.Fatalf("scans after start = %v, want 1", got)
	}
	start := time.Now()
	for i := range 20 {
		tr.write("/etc/docker/daemon.json", 0o644, fmt.Sprintf(`{"icc": false, "labels": ["edit=%d"]}`, i))
	}
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": true}`)
	if burst := time.Since(start); burst > 450*time.Millisecond {
		t.Fatalf("the burst of writes took %s, longer than the debounce; the test cannot judge coalescing", burst)
	}
	if !testenv.Eventually(2*time.Second, func() bool { return scans() >= 2 }) {
		t.Fatal("the burst of changes was never judged")
	}
	time.Sleep(1200 * time.Millisecond) // two more debounce periods: any extra judgement would have run
	if got := scans(); got != 2 {
		t.Errorf("a burst of 21 writes caused %v judgements after the first, want 1", got-1)
	}
	if _, ok := find(h.store.Open(), "daemon.icc_enabled", "dockerd"); !ok {
		t.Error("the judgement did not see the burst's last content")
	}
}

// TestTLSFilesFromTheRunningDaemon finds the TLS CA, certificate and key
// from the running dockerd itself: one given by flag, the others from
// DOCKER_CERT_PATH in its environment, with nothing in daemon.json.
func TestTLSFilesFromTheRunningDaemon(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.fakeUnixTable(map[uint64]string{3542: "/run/docker.sock"})
	tr.fakeProc(1426, 1, []string{"/usr/sbin/dockerd", "-H", "fd://", "-H", "tcp://0.0.0.0:2376", "--tlsverify",
		"--tlskey=/srv/tls/server-key.pem"}, []string{"DOCKER_CERT_PATH=/etc/pki/docker"}, 3542)
	tr.write("/var/run/docker.pid", 0o644, "1426\n")
	files := []modeCase{
		{"/etc/pki/docker/ca.pem", 0o444, 0o644, "3.10"},
		{"/etc/pki/docker/cert.pem", 0o444, 0o464, "3.12"},
		{"/srv/tls/server-key.pem", 0o400, 0o404, "3.14"},
	}
	for _, f := range files {
		tr.write(f.path, f.good, "pem")
	}
	h := newHarness(t, tr, nil)
	fs := h.scan()
	if h.src.DockerdPID() != 1426 {
		t.Fatalf("DockerdPID() = %d, want 1426", h.src.DockerdPID())
	}
	if f, ok := find(fs, "daemon.tcp_without_tls", "dockerd"); ok {
		t.Errorf("--tlsverify on the command line not honoured: %s", f.Message)
	}
	checkModeFindings(t, h, tr, fs, files)
}

// TestBinaryReplacedByRenameIsJudgedAtOnce replaces dockerd the way a
// package upgrade does (write beside it, rename over it): the watch on its
// parent directory must notice without waiting for the periodic rescan.
func TestBinaryReplacedByRenameIsJudgedAtOnce(t *testing.T) {
	tr := binHost(t)
	h := newHarness(t, tr, nil, func(c *Config) { c.RescanInterval = time.Hour })
	testenv.RunSource(t, h.src)
	if _, ok := find(h.store.Open(), "file.binary_changed", "/usr/sbin/dockerd"); ok {
		t.Fatal("binary_changed open before the change")
	}
	tr.write("/usr/sbin/dockerd.dpkg-new", 0o755, "dockerd v2")
	if err := os.Rename(tr.local("/usr/sbin/dockerd.dpkg-new"), tr.local("/usr/sbin/dockerd")); err != nil {
		t.Fatal(err)
	}
	var f findings.Finding
	if !testenv.Eventually(2*time.Second, func() (ok bool) {
		f, ok = find(h.store.Open(), "file.binary_changed", "/usr/sbin/dockerd")
		return ok
	}) {
		t.Fatal("dockerd replaced by rename was not judged within 2s")
	}
	if f.Details["old_sha256"] != sha("dockerd v1") || f.Details["new_sha256"] != sha("dockerd v2") {
		t.Errorf("hashes old %s new %s", f.Details["old_sha256"], f.Details["new_sha256"])
	}
	if got := h.changeCount("/usr/sbin/dockerd"); got != 1 {
		t.Errorf("dockward_file_changes_total{path=\"/usr/sbin/dockerd\"} = %v, want 1", got)
	}
}

// TestDaemonJSONCreatedIsJudgedAtOnce starts on a host without daemon.json
// and then creates one by rename, as configuration management does: a
// path that does not exist yet must still be watched.
func TestDaemonJSONCreatedIsJudgedAtOnce(t *testing.T) {
	tr := newTree(t).minimalHost()
	if err := os.Remove(tr.local("/etc/docker/daemon.json")); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, tr, &fakeDocker{info: *hardenedInfo(), bridgeICC: "false"}, func(c *Config) { c.RescanInterval = time.Hour })
	testenv.RunSource(t, h.src)
	if _, ok := find(h.store.Open(), "daemon.config_invalid", "dockerd"); ok {
		t.Fatal("config_invalid open before daemon.json exists")
	}
	tr.write("/etc/docker/.daemon.json.new", 0o644, `{"icc": false,}`)
	if err := os.Rename(tr.local("/etc/docker/.daemon.json.new"), tr.local("/etc/docker/daemon.json")); err != nil {
		t.Fatal(err)
	}
	if !h.eventuallyOpen(time.Second, "daemon.config_invalid", "dockerd") {
		t.Fatal("a daemon.json created after the start was not judged within 1s")
	}
	// Removing it again is judged too: the finding resolves.
	if err := os.Remove(tr.local("/etc/docker/daemon.json")); err != nil {
		t.Fatal(err)
	}
	if !h.eventuallyResolved(time.Second, "daemon.config_invalid", "dockerd") {
		t.Fatal("removing daemon.json was not judged within 1s")
	}
}

// TestAbsoluteVarRunLinkStaysInTheRoot: on Debian /var/run is an absolute
// link to /run. Under a rootfs it must lead to the rootfs's /run, not the
// agent's own, so the containerd socket that dockerd's own containerd binds
// under /var/run (as /proc/net/unix names it) is found and judged there.
func TestAbsoluteVarRunLinkStaysInTheRoot(t *testing.T) {
	tr := newTree(t)
	const sock = "/var/run/docker/containerd/containerd.sock"
	tr.write("/run/docker/containerd/containerd.sock", 0o666, "")
	tr.symlink("/var/run", "/run")
	tr.fakeUnixTable(map[uint64]string{3729: sock})
	h := newHarness(t, tr, nil)
	f, ok := find(h.scan(), "file.mode", sock)
	if !ok || f.CIS != "3.24" || f.Details["resolved_path"] != "/run/docker/containerd/containerd.sock" {
		t.Fatalf("containerd socket under the absolute /var/run link: finding %v %+v; want file.mode 3.24 resolved to /run", ok, f)
	}
	watched := false
	for _, w := range h.src.s.watched {
		watched = watched || (w.path == sock && !w.absent)
	}
	if !watched || h.errorCount(reasonStat) != 0 {
		t.Errorf("socket watched %v, stat errors %v; want it watched as present, without errors", watched, h.errorCount(reasonStat))
	}
}
