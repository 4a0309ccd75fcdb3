package watcher

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

func TestFileModeIsComparedBitwise(t *testing.T) {
	cases := []struct {
		mode    os.FileMode
		finding bool
		fix     string
	}{
		{0o644, false, ""},
		{0o600, false, ""},
		{0o400, false, ""},
		{0o606, true, "chmod 0604 /etc/docker/daemon.json"}, // numerically below 0644, yet world-writable
		{0o620, true, "chmod 0600 /etc/docker/daemon.json"}, // group-writable
		{0o666, true, "chmod 0644 /etc/docker/daemon.json"},
		{0o744, true, "chmod 0644 /etc/docker/daemon.json"}, // owner-executable is outside 0644 too
		{0o644 | os.ModeSetuid, true, "chmod 0644 /etc/docker/daemon.json"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%04o", c.mode), func(t *testing.T) {
			tr := newTree(t).minimalHost()
			tr.chmod("/etc/docker/daemon.json", c.mode)
			fs := newHarness(t, tr, nil).scan()
			f, ok := find(fs, "file.mode", "/etc/docker/daemon.json")
			if ok != c.finding {
				t.Fatalf("file.mode finding = %v, want %v (open: %v)", ok, c.finding, rulesOf(fs, "/etc/docker/daemon.json"))
			}
			if !ok {
				return
			}
			if f.Remediation != c.fix {
				t.Errorf("remediation = %q, want %q", f.Remediation, c.fix)
			}
			if f.CIS != "3.18" {
				t.Errorf("CIS = %q, want 3.18", f.CIS)
			}
		})
	}
}

// fileCase is one path the file rules cover, with a compliant and a too
// permissive mode and the exact CIS checks.
type fileCase struct {
	path              string
	good, bad         os.FileMode
	cisOwner, cisMode string
	owner             string // the expected owner "user:group"
	setup             func(tr *tree)
}

// host is a minimal host with the case's setup, a harness on it, and the
// local name of the case's path (/var/run is a link to /run).
func (c fileCase) host(t *testing.T) (tr *tree, h *harness, real string) {
	t.Helper()
	tr = newTree(t).minimalHost()
	if c.setup != nil {
		c.setup(tr)
	}
	real = c.path
	if real == "/var/run/docker.sock" {
		real = "/run/docker.sock"
	}
	return tr, newHarness(t, tr, nil), real
}

func fileCases() []fileCase {
	return []fileCase{
		{path: "/lib/systemd/system/docker.service", good: 0o644, bad: 0o664, cisOwner: "3.1", cisMode: "3.2", owner: "root:root"},
		{path: "/etc/systemd/system/docker.service", good: 0o644, bad: 0o646, cisOwner: "3.1", cisMode: "3.2", owner: "root:root",
			setup: func(tr *tree) { tr.write("/etc/systemd/system/docker.service", 0o644, "[Service]\n") }},
		{path: "/etc/systemd/system/docker.service.d/override.conf", good: 0o644, bad: 0o666, cisOwner: "3.1", cisMode: "3.2", owner: "root:root",
			setup: func(tr *tree) { tr.write("/etc/systemd/system/docker.service.d/override.conf", 0o644, "[Service]\n") }},
		{path: "/lib/systemd/system/docker.socket", good: 0o644, bad: 0o654, cisOwner: "3.3", cisMode: "3.4", owner: "root:root"},
		{path: "/etc/docker", good: 0o755, bad: 0o775, cisOwner: "3.5", cisMode: "3.6", owner: "root:root"},
		{path: "/etc/docker/certs.d/registry.example:5000/ca.crt", good: 0o444, bad: 0o644, cisOwner: "3.7", cisMode: "3.8", owner: "root:root",
			setup: func(tr *tree) { tr.write("/etc/docker/certs.d/registry.example:5000/ca.crt", 0o444, "pem") }},
		{path: "/etc/docker/tls/ca.pem", good: 0o444, bad: 0o644, cisOwner: "3.9", cisMode: "3.10", owner: "root:root", setup: withTLS},
		{path: "/etc/docker/tls/cert.pem", good: 0o444, bad: 0o604, cisOwner: "3.11", cisMode: "3.12", owner: "root:root", setup: withTLS},
		{path: "/etc/docker/tls/key.pem", good: 0o400, bad: 0o440, cisOwner: "3.13", cisMode: "3.14", owner: "root:root", setup: withTLS},
		{path: "/var/run/docker.sock", good: 0o660, bad: 0o666, cisOwner: "3.15", cisMode: "3.16", owner: "root:docker",
			setup: func(tr *tree) { tr.write("/run/docker.sock", 0o660, ""); tr.chown("/run/docker.sock", 0, 999) }},
		{path: "/etc/docker/daemon.json", good: 0o644, bad: 0o664, cisOwner: "3.17", cisMode: "3.18", owner: "root:root"},
		{path: "/etc/default/docker", good: 0o644, bad: 0o606, cisOwner: "3.19", cisMode: "3.20", owner: "root:root"},
		{path: "/etc/sysconfig/docker", good: 0o644, bad: 0o666, cisOwner: "3.22", cisMode: "3.21", owner: "root:root",
			setup: func(tr *tree) { tr.write("/etc/sysconfig/docker", 0o644, "OPTIONS=\n") }},
		{path: "/run/containerd/containerd.sock", good: 0o660, bad: 0o666, cisOwner: "3.23", cisMode: "3.24", owner: "root:root",
			setup: func(tr *tree) { tr.write("/run/containerd/containerd.sock", 0o660, "") }},
	}
}

func withTLS(tr *tree) {
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false, "tlsverify": true, "tlscacert": "/etc/docker/tls/ca.pem",
		"tlscert": "/etc/docker/tls/cert.pem", "tlskey": "/etc/docker/tls/key.pem"}`)
	tr.write("/etc/docker/tls/ca.pem", 0o444, "ca")
	tr.write("/etc/docker/tls/cert.pem", 0o444, "cert")
	tr.write("/etc/docker/tls/key.pem", 0o400, "key")
}

func TestFileModeRulesPerPath(t *testing.T) {
	for _, c := range fileCases() {
		t.Run(c.path, func(t *testing.T) {
			tr, h, real := c.host(t)
			tr.chmod(real, c.good)
			if f, ok := find(h.scan(), "file.mode", c.path); ok {
				t.Fatalf("mode %04o: unexpected finding %q", c.good, f.Message)
			}
			tr.chmod(real, c.bad)
			f, ok := find(h.scan(), "file.mode", c.path)
			if !ok {
				t.Fatalf("mode %04o: no file.mode finding for %s", c.bad, c.path)
			}
			want := fmt.Sprintf("chmod %04o %s", uint32(c.bad)&uint32(c.good), c.path)
			if f.CIS != c.cisMode || f.Remediation != want {
				t.Errorf("CIS %q remediation %q, want %q and %q", f.CIS, f.Remediation, c.cisMode, want)
			}
			requireCheckAbout(t, f.CIS, "permissions", c.path)
			tr.chmod(real, c.good)
			if _, ok := find(h.scan(), "file.mode", c.path); ok {
				t.Errorf("finding not resolved after chmod %04o", c.good)
			}
		})
	}
}

func TestFileOwnerRulesPerPath(t *testing.T) {
	testenv.RequireRoot(t)
	for _, c := range fileCases() {
		t.Run(c.path, func(t *testing.T) {
			tr, h, real := c.host(t)
			if f, ok := find(h.scan(), "file.owner", c.path); ok {
				t.Fatalf("compliant owner: unexpected finding %q", f.Message)
			}
			tr.chown(real, 1000, 1000)
			f, ok := find(h.scan(), "file.owner", c.path)
			if !ok {
				t.Fatalf("owner 1000:1000: no file.owner finding for %s", c.path)
			}
			want := "chown " + c.owner + " " + c.path
			if f.CIS != c.cisOwner || f.Remediation != want || f.Details["owner"] != "1000:1000" {
				t.Errorf("CIS %q remediation %q owner %q, want %q, %q, 1000:1000", f.CIS, f.Remediation, f.Details["owner"], c.cisOwner, want)
			}
			requireCheckAbout(t, f.CIS, "ownership", c.path)
		})
	}
}

// requireCheckAbout proves a finding's CIS number by the benchmark's text:
// the check must be about what the rule judges (ownership or permissions).
func requireCheckAbout(t *testing.T, cis, what, path string) {
	t.Helper()
	c, ok := findings.LookupCheck(cis)
	if !ok || !strings.Contains(c.Title, " "+what+" ") {
		t.Errorf("%s: CIS %s is %q, not a check of %s", path, cis, c.Title, what)
	}
}

func TestExtraFiles(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.write("/etc/containerd/config.toml", 0o666, "version = 2\n")
	h := newHarness(t, tr, nil, func(c *Config) {
		c.ExtraFiles = []ExtraFile{{Path: "/etc/containerd/config.toml", Mode: "0644"}}
	})
	f, ok := find(h.scan(), "file.mode", "/etc/containerd/config.toml")
	if !ok || f.Remediation != "chmod 0644 /etc/containerd/config.toml" {
		t.Fatalf("extra file: finding %v %q", ok, f.Remediation)
	}
	tr.chmod("/etc/containerd/config.toml", 0o640)
	if _, ok := find(h.scan(), "file.mode", "/etc/containerd/config.toml"); ok {
		t.Error("extra file: finding not resolved at 0640")
	}
}

func TestMissingFilesAreNotFindings(t *testing.T) {
	tr := newTree(t) // no Docker files at all
	fs := newHarness(t, tr, nil).scan()
	for _, f := range fs {
		if f.Subject.Kind == "file" {
			t.Errorf("unexpected file finding on an empty host: %s %s", f.Rule, f.Subject.Name)
		}
	}
}

func TestExtraFileWithUnknownOwnerIsLogged(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.write("/etc/containerd/config.toml", 0o644, "")
	h := newHarness(t, tr, nil, func(c *Config) {
		c.ExtraFiles = []ExtraFile{{Path: "/etc/containerd/config.toml", Owner: "nosuchuser"}}
	})
	h.scan()
	h.scan()
	if n := h.logs.FilterField(zap.String("owner", "nosuchuser")).Len(); n != 1 {
		t.Errorf("unknown owner logged %d times over two scans, want once", n)
	}
}
