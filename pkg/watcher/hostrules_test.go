package watcher

import (
	"os/exec"
	"path"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// mountinfoWith is a mount table with / and, when docker is true, a
// filesystem of its own at /var/lib/docker.
func mountinfoWith(docker bool) string {
	m := "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	if docker {
		m += "45 22 254:16 / /var/lib/docker rw,relatime shared:27 - ext4 /dev/vdb rw\n"
	}
	return m
}

// The host-side checks over a fixture host: 1.1.1 from the host's own mount
// table, 1.1.2 from the socket's group in /etc/group and /etc/passwd, with
// and without a trusted list, and 4.5 from the logins' environment.
func TestHostChecksOverAFixtureHost(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.mkdir("/var/lib/docker/100000.100000", 0o710)
	tr.write("/proc/1/mountinfo", 0o444, mountinfoWith(false))
	tr.write("/etc/group", 0o644, "root:x:0:\ndocker:x:999:alice,bob\n")
	tr.write("/etc/passwd", 0o644, "root:x:0:0::/root:/bin/sh\ncarol:x:1002:999::/home/carol:/bin/sh\n")
	info := hardenedInfo()
	// userns-remap is on (hardenedInfo): dockerd works in a subdirectory,
	// and the partition that counts is its parent's.
	info.DockerRootDir, info.ServerVersion = "/var/lib/docker/100000.100000", "20.10.24+dfsg1"
	h := newHarness(t, tr, &fakeDocker{info: *info}, func(c *Config) { c.MinimumDockerVersion = "24.0" })
	fs := h.scan()
	for rule, want := range map[string]string{
		"daemon.data_root_shared":     "/var/lib/docker",
		"daemon.docker_group_members": "alice, bob, carol",
		"daemon.version_old":          "20.10.24+dfsg1",
		"daemon.content_trust_off":    "DOCKER_CONTENT_TRUST",
	} {
		if f, ok := find(fs, rule, "dockerd"); !ok || !strings.Contains(f.Message, want) {
			t.Errorf("%s: %v %q, want a message naming %q", rule, ok, f.Message, want)
		}
	}
	if _, ok := find(fs, "daemon.docker_group_untrusted", "dockerd"); ok {
		t.Error("untrusted members reported without a trusted list")
	}

	tr.write("/proc/1/mountinfo", 0o444, mountinfoWith(true))
	tr.write("/etc/profile.d/docker.sh", 0o644, "# content trust for every login\nexport DOCKER_CONTENT_TRUST=1\n")
	h = newHarness(t, tr, &fakeDocker{info: *info}, func(c *Config) { c.TrustedDockerUsers = []string{"alice", "carol"} })
	fs = h.scan()
	for _, rule := range []string{"daemon.data_root_shared", "daemon.content_trust_off", "daemon.docker_group_members", "daemon.version_old"} {
		if f, ok := find(fs, rule, "dockerd"); ok {
			t.Errorf("%s still reported: %s", rule, f.Message)
		}
	}
	if f, ok := find(fs, "daemon.docker_group_untrusted", "dockerd"); !ok || f.Details["users"] != "bob" {
		t.Errorf("untrusted members: %v %v, want bob alone", ok, f.Details)
	}
	obs := h.src.Observations()
	if o := obs["1.2.2"]; o.Status != findings.StatusManual || !strings.Contains(o.Note, "minimum_docker_version") {
		t.Errorf("1.2.2 without a minimum: %+v", o)
	}
	// The fixture has no TLS files, registry certificates, sysconfig file
	// or containerd socket: those 3.x checks concern nothing here.
	for check, want := range map[string]findings.Status{"3.9": findings.StatusNotApplicable, "3.22": findings.StatusNotApplicable,
		"3.23": findings.StatusNotApplicable, "3.1": "", "3.18": "", "3.15": ""} {
		if obs[check].Status != want {
			t.Errorf("%s observed %q, want %q", check, obs[check].Status, want)
		}
	}
	// not_applicable never hides a check docker-bench-security would score:
	// it leaves each of these unscored too when the file is absent.
	for check, o := range obs {
		if c, _ := findings.LookupCheck(check); o.Status == findings.StatusNotApplicable && !c.DockerBenchInfoBranch {
			t.Errorf("%s is not_applicable, but docker-bench-security scores it in every case", check)
		}
	}
}

// Where the mount table or the socket cannot be read, 1.1.1 and 1.1.2 are
// observed as manual, with the reason, and report nothing.
func TestHostChecksThatCannotBeJudged(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.mkdir("/var/lib/docker", 0o710)
	if err := exec.Command("rm", "-f", tr.local("/run/docker.sock")).Run(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, tr, &fakeDocker{info: *hardenedInfo()})
	fs := h.scan()
	obs := h.src.Observations()
	for _, check := range []string{"1.1.1", "1.1.2"} {
		if obs[check].Status != findings.StatusManual || obs[check].Note == "" {
			t.Errorf("%s: %+v, want manual with a reason", check, obs[check])
		}
	}
	for _, rule := range []string{"daemon.data_root_shared", "daemon.docker_group_members"} {
		if _, ok := find(fs, rule, "dockerd"); ok {
			t.Errorf("%s reported though it could not be judged", rule)
		}
	}
}

// A file check is not passed when its file could not be read (a symlink
// loop at /etc/default/docker), nor an ownership check when the expected
// owner is not a user or group in the host's files (the socket's group from
// a directory service): both are manual with the reason, and the other
// checks keep their status.
func TestFileChecksThatCannotBeJudged(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.symlink("/etc/default/docker", "docker")
	h := newHarness(t, tr, &fakeDocker{info: *hardenedInfo()})
	h.scan()
	obs := h.src.Observations()
	for _, check := range []string{"3.19", "3.20"} {
		if o := obs[check]; o.Status != findings.StatusManual || !strings.Contains(o.Note, "/etc/default/docker could not be read") {
			t.Errorf("%s with /etc/default/docker a symlink loop: %+v", check, o)
		}
	}
	if o, said := obs["3.5"]; said {
		t.Errorf("3.5 (/etc/docker, readable) observed %+v", o)
	}
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false, "group": "dockerops"}`)
	h.scan()
	obs = h.src.Observations()
	if o := obs["3.15"]; o.Status != findings.StatusManual || !strings.Contains(o.Note, "root:dockerops of /var/run/docker.sock is not a user or group") {
		t.Errorf("3.15 with the socket's group in no /etc/group (a directory service's): %+v", o)
	}
	for _, check := range []string{"3.16", "3.17"} {
		if o, said := obs[check]; said {
			t.Errorf("%s (judged without that group) observed %+v", check, o)
		}
	}
}

// On this machine the host checks agree with mountpoint(1), getent and the
// logins' environment files.
func TestHostChecksOnThisHost(t *testing.T) {
	testenv.RequireDocker(t)
	testenv.RequireRoot(t)
	root := strings.TrimSpace(testenv.Run(t, "docker", "info", "--format", "{{.DockerRootDir}}"))
	if strings.Contains(testenv.Run(t, "docker", "info", "--format", "{{.SecurityOptions}}"), "name=userns") {
		root = path.Dir(root)
	}
	wantShared := exec.Command(testenv.RequireCommand(t, "mountpoint"), "-q", root).Run() != nil
	group := strings.Split(strings.TrimSpace(testenv.Run(t, "sh", "-c", "getent group $(stat -Lc %g /var/run/docker.sock)")), ":")
	members := strings.TrimSpace(testenv.Run(t, "sh", "-c",
		"{ getent group $(stat -Lc %g /var/run/docker.sock) | cut -d: -f4 | tr , '\\n'; getent passwd | awk -F: -v g="+group[2]+" '$4==g {print $1}'; } | grep -c . || true"))
	trust := exec.Command("sh", "-c", `grep -qsE '^[[:space:]]*(export[[:space:]]+)?DOCKER_CONTENT_TRUST[[:space:]]*=[[:space:]]*["'"'"']?1' /etc/environment /etc/profile /etc/bash.bashrc /etc/profile.d/*.sh`).Run() == nil

	h := newHarness(t, &tree{t: t, root: "/"}, realDocker(t))
	fs := h.scan()
	for rule, want := range map[string]bool{"daemon.data_root_shared": wantShared, "daemon.docker_group_members": members != "0",
		"daemon.content_trust_off": !trust} {
		if _, got := find(fs, rule, "dockerd"); got != want {
			t.Errorf("%s: dockward says %v, the host says %v (root dir %s, %s members of %s)", rule, got, want, root, members, group[0])
		}
	}
	if o := h.src.Observations(); o["1.1.1"].Status != "" || o["1.1.2"].Status != "" {
		t.Errorf("a host check could not be judged on this host: %+v %+v", o["1.1.1"], o["1.1.2"])
	}
	// 1.2.2 and 2.1 against the real daemon's GET /info, as docker info
	// reports it.
	version := strings.TrimSpace(testenv.Run(t, "docker", "info", "--format", "{{.ServerVersion}}"))
	rootless := strings.Contains(testenv.Run(t, "docker", "info", "--format", "{{.SecurityOptions}}"), "name=rootless")
	if _, got := find(fs, "daemon.not_rootless", "dockerd"); got == rootless {
		t.Errorf("daemon.not_rootless %v, but docker info says rootless %v", got, rootless)
	}
	for minimum, want := range map[string]bool{"999.0": true, "1.0": false} {
		h := newHarness(t, &tree{t: t, root: "/"}, realDocker(t), func(c *Config) { c.MinimumDockerVersion = minimum })
		f, got := find(h.scan(), "daemon.version_old", "dockerd")
		if got != want || got && f.Details["server_version"] != version {
			t.Errorf("minimum %s: daemon.version_old %v %v, want %v for Docker %s", minimum, got, f.Details, want, version)
		}
	}
}
