package watcher

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// binHost lays out Debian-style binaries: /usr/sbin/dockerd, runc linked
// from /usr/bin, containerd and its shims, with dpkg's md5sums.
func binHost(t *testing.T) *tree {
	tr := newTree(t).minimalHost()
	tr.write("/usr/sbin/dockerd", 0o755, "dockerd v1")
	tr.write("/usr/bin/docker", 0o755, "docker v1")
	tr.write("/usr/bin/containerd", 0o755, "containerd v1")
	tr.write("/usr/bin/containerd-shim-runc-v2", 0o755, "shim v2")
	tr.write("/usr/sbin/runc", 0o755, "runc v1")
	tr.symlink("/usr/bin/runc", "../sbin/runc")
	tr.symlink("/bin", "usr/bin") // merged /usr
	tr.write("/var/lib/dpkg/info/docker.io.md5sums", 0o644,
		md5hex("dockerd v1")+"  usr/sbin/dockerd\n"+md5hex("docker v1")+"  usr/bin/docker\n")
	tr.write("/var/lib/dpkg/info/runc.md5sums", 0o644, md5hex("runc v1")+"  usr/sbin/runc\n")
	return tr
}

func TestBinaryDiscoveryFollowsLinksOnce(t *testing.T) {
	tr := binHost(t)
	h := newHarness(t, tr, nil)
	h.scan()
	var got []string
	for p := range h.src.s.baseline.get().Binaries {
		got = append(got, p)
	}
	want := []string{"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/docker", "/usr/sbin/dockerd", "/usr/sbin/runc"}
	if strings.Join(sorted(got), " ") != strings.Join(want, " ") {
		t.Errorf("baseline holds %v, want %v", sorted(got), want)
	}
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

func TestBinaryChangeIsAFindingWithOldAndNewHash(t *testing.T) {
	tr := binHost(t)
	h := newHarness(t, tr, nil)
	if fs := h.scan(); len(rulesOf(fs, "/usr/sbin/dockerd")) != 0 {
		t.Fatalf("findings on a pristine binary: %v", rulesOf(fs, "/usr/sbin/dockerd"))
	}
	state := filepath.Join(h.cfg.StateDir, baselineFile)
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("state file %s: %v (want it private)", state, err)
	}
	tr.write("/usr/sbin/dockerd", 0o755, "dockerd trojan")
	fs := h.scan()
	f, ok := find(fs, "file.binary_changed", "/usr/sbin/dockerd")
	if !ok {
		t.Fatalf("no file.binary_changed; open: %v", rulesOf(fs, "/usr/sbin/dockerd"))
	}
	if f.Details["old_sha256"] != sha("dockerd v1") || f.Details["new_sha256"] != sha("dockerd trojan") {
		t.Errorf("hashes old %s new %s", f.Details["old_sha256"], f.Details["new_sha256"])
	}
	if f.Severity != findings.High || !strings.Contains(f.Remediation, state) {
		t.Errorf("severity %s remediation %q", f.Severity, f.Remediation)
	}
	m, ok := find(fs, "file.binary_checksum_mismatch", "/usr/sbin/dockerd")
	if !ok || m.Details["package"] != "docker.io" || m.Details["package_md5"] != md5hex("dockerd v1") ||
		m.Remediation != "apt-get install --reinstall docker.io  (then check: dpkg --verify docker.io)" {
		t.Errorf("dpkg mismatch finding %v %+v", ok, m)
	}
	if m.Severity != findings.Critical {
		t.Errorf("checksum mismatch severity %s, want critical", m.Severity)
	}

	// The baseline survives a restart: a new source on the same state
	// directory still sees the change.
	h2 := newHarness(t, tr, nil, func(c *Config) { c.StateDir = h.cfg.StateDir })
	if _, ok := find(h2.scan(), "file.binary_changed", "/usr/sbin/dockerd"); !ok {
		t.Error("after a restart the change is no longer reported: baseline lost")
	}
	// Restoring the binary resolves both findings.
	tr.write("/usr/sbin/dockerd", 0o755, "dockerd v1")
	fs = h2.scan()
	if r := rulesOf(fs, "/usr/sbin/dockerd"); len(r) != 0 {
		t.Errorf("restored binary still has findings %v", r)
	}
}

func TestBinaryChangeThroughSymlinkedName(t *testing.T) {
	tr := binHost(t)
	h := newHarness(t, tr, nil)
	h.scan()
	tr.write("/usr/sbin/runc", 0o755, "runc evil")
	if _, ok := find(h.scan(), "file.binary_checksum_mismatch", "/usr/sbin/runc"); !ok {
		t.Error("runc (found as /usr/bin/runc -> ../sbin/runc) mismatch with dpkg not reported")
	}
}

func TestHashCacheAvoidsRereading(t *testing.T) {
	tr := binHost(t)
	h := newHarness(t, tr, nil)
	h.scan()
	before := h.src.s.hashes.byPath["/usr/sbin/dockerd"]
	// Same content rewritten: the stat state changes, so it is re-hashed,
	// and the digest is unchanged.
	time.Sleep(10 * time.Millisecond)
	tr.write("/usr/sbin/dockerd", 0o755, "dockerd v1")
	h.scan()
	after := h.src.s.hashes.byPath["/usr/sbin/dockerd"]
	if before.state == after.state || before.sha256 != after.sha256 {
		t.Errorf("re-hash after rewrite: state changed %v, digest equal %v", before.state != after.state, before.sha256 == after.sha256)
	}
}

func TestCorruptStateFileIsSetAside(t *testing.T) {
	tr := binHost(t)
	h := newHarness(t, tr, nil)
	if err := os.MkdirAll(h.cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(h.cfg.StateDir, baselineFile)
	if err := os.WriteFile(state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.scan()
	if got := h.errorCount(reasonStateFile); got != 1 {
		t.Errorf("state_file errors = %v, want 1", got)
	}
	matches, _ := filepath.Glob(state + ".corrupt-*")
	if len(matches) != 1 {
		t.Errorf("corrupt state file not kept aside: %v", matches)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("no new baseline written: %v", err)
	}
}

// TestRPMChecksums uses a stand-in rpm command that answers like
// `rpm -qf --queryformat` for one owned file and fails (exit 1, "not
// owned") for the rest.
func TestRPMChecksums(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.write("/usr/bin/dockerd", 0o755, "dockerd v1")
	tr.mkdir("/var/lib/rpm", 0o755)
	script := filepath.Join(t.TempDir(), "rpm")
	body := "#!/bin/sh\n" +
		"[ \"$1\" = --root ] && [ \"$2\" = \"" + tr.root + "\" ] && [ \"$3\" = -qf ] || exit 2\n" +
		"[ \"$4\" = /usr/bin/dockerd ] || { echo \"file $4 is not owned by any package\"; exit 1; }\n" +
		"printf 'docker-ce 8\\n/usr/bin/docker-proxy 00\\n/usr/bin/dockerd %s\\n' \"$(cat " + script + ".sum)\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	setSum := func(s string) {
		if err := os.WriteFile(script+".sum", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, tr, nil)
	h.src.s.pkgs.rpmCommand = script

	setSum(sha("dockerd v1"))
	if r := rulesOf(h.scan(), "/usr/bin/dockerd"); len(r) != 0 {
		t.Fatalf("findings for a binary matching rpm's digest: %v", r)
	}
	setSum(sha("dockerd v0"))
	f, ok := find(h.scan(), "file.binary_checksum_mismatch", "/usr/bin/dockerd")
	if !ok || f.Details["package"] != "docker-ce" || f.Details["package_sha256"] != sha("dockerd v0") ||
		f.Remediation != "dnf reinstall docker-ce  (then check: rpm -V docker-ce)" {
		t.Fatalf("rpm mismatch finding %v %+v", ok, f)
	}
	if got := h.errorCount(reasonPackageDB); got != 0 {
		t.Errorf("package_db errors = %v: an unowned file is not an error", got)
	}
}

func TestParseRPMQuery(t *testing.T) {
	out := []byte("runc 1\n/usr/bin/runc ABCDEF\n")
	if s, ok := parseRPMQuery(out, "/usr/bin/runc"); !ok || s.Algo != "md5" || s.Sum != "abcdef" || s.Package != "runc" {
		t.Errorf("parseRPMQuery = %+v %v", s, ok)
	}
	for _, bad := range []string{"", "garbage", "runc 8\n/usr/bin/other 00\n"} {
		if _, ok := parseRPMQuery([]byte(bad), "/usr/bin/runc"); ok {
			t.Errorf("parseRPMQuery(%q) matched", bad)
		}
	}
}

func TestUnwritableStateDirKeepsBaselineInMemory(t *testing.T) {
	tr := binHost(t)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, tr, nil, func(c *Config) { c.StateDir = blocker + "/state" }) // below a regular file
	h.scan()
	if got := h.errorCount(reasonStateFile); got != 2 { // cannot read it, cannot write it
		t.Errorf("state_file errors = %v, want 2", got)
	}
	tr.write("/usr/sbin/dockerd", 0o755, "dockerd changed")
	if _, ok := find(h.scan(), "file.binary_changed", "/usr/sbin/dockerd"); !ok {
		t.Error("a change is not reported when the baseline could not be saved")
	}
}
