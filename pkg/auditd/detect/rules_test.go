package detect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/hostfs"
)

func amd64(t *testing.T) []ABI {
	t.Helper()
	abis, err := ABIs("amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(abis) != 2 || abis[0].Arch != 0xc000003e || abis[1].Arch != 0x40000003 {
		t.Fatalf("amd64 ABIs = %+v", abis)
	}
	return abis
}

// decoded builds and decodes rule lines, as the kernel would list them.
func decoded(t *testing.T, rs []Rule) []rules.Rule {
	t.Helper()
	var out []rules.Rule
	for _, r := range rs {
		wire, err := r.Wire()
		if err != nil {
			t.Fatalf("%s: %v", r.Line, err)
		}
		d, err := rules.Decode(wire)
		if err != nil {
			t.Fatalf("%s: %v", r.Line, err)
		}
		out = append(out, d)
	}
	return out
}

func lines(t *testing.T, ls ...string) []rules.Rule {
	t.Helper()
	rs := make([]Rule, len(ls))
	for i, l := range ls {
		rs[i] = Rule{Line: l}
	}
	return decoded(t, rs)
}

var testFiles = Files{ReleaseAgent: []string{"/sys/fs/cgroup/memory/release_agent"}, CorePattern: CorePatternPath}

// dockward's own rules cover every detection; taking one away, or
// narrowing it to some users, shows exactly what is missing.
func TestCoverage(t *testing.T) {
	abis := amd64(t)
	own := Rules(Catalogue(), abis, testFiles)
	krules := decoded(t, own)
	for _, c := range CheckCoverage(Catalogue(), abis, testFiles, krules) {
		if len(c.Missing) != 0 {
			t.Errorf("%s with dockward's own rules: missing %v", c.Detection, c.Missing)
		}
	}
	var without []rules.Rule
	for i, r := range own {
		if r.Line != "-a always,exit -F arch=b32 -S ptrace -F a0=0x10 -k dockward_escape" &&
			!(strings.Contains(r.Line, "mount,") && strings.Contains(r.Line, "arch=b64")) && !strings.Contains(r.Line, "release_agent") {
			without = append(without, krules[i])
		}
	}
	// Without dockward's 64-bit rule for the calls alone, its 32-bit ptrace
	// attach rule and the release_agent watch, beside what others load: a
	// mount rule limited to logged-in users, as CIS host benchmarks write
	// it (a container's processes never logged in), a broad ptrace rule,
	// which covers every request, and the other calls under another key.
	without = append(without, lines(t, "-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=-1 -k mounts",
		"-a always,exit -F arch=b32 -S ptrace -k tracing",
		"-a always,exit -F arch=b64 -S umount2,fsmount,move_mount,open_tree,pivot_root,init_module,finit_module,"+
			"delete_module,setns,unshare,kexec_load,kexec_file_load,open_by_handle_at -k theirs")...)
	got := map[string]string{}
	for _, c := range CheckCoverage(Catalogue(), abis, testFiles, without) {
		got[c.Detection] = strings.Join(c.Missing, ", ")
	}
	want := map[string]string{
		"mount_in_container":  "arch=b64 mount",
		"release_agent_write": "/sys/fs/cgroup/memory/release_agent",
	}
	for _, d := range Catalogue() {
		if got[d.Name] != want[d.Name] {
			t.Errorf("%s: missing %q, want %q", d.Name, got[d.Name], want[d.Name])
		}
	}
}

// Each rule is the same rule once decoded, and distinct from the others:
// the session recognises its own rules in the kernel's list by this.
func TestRulesSameOnlyAsThemselves(t *testing.T) {
	krules := decoded(t, Rules(Catalogue(), amd64(t), testFiles))
	for i, a := range krules {
		for j, b := range krules {
			if a.Same(b) != (i == j) {
				t.Errorf("rule %d Same rule %d = %v", i, j, a.Same(b))
			}
		}
	}
}

func TestABIsOfUnknownArchitecture(t *testing.T) {
	if _, err := ABIs("mips"); err == nil || !strings.Contains(err.Error(), "mips") {
		t.Errorf("ABIs(mips) = %v", err)
	}
	for _, arch := range []string{"arm64", "ppc64le", "s390x"} {
		abis, err := ABIs(arch)
		if err != nil || len(abis) != 2 || abis[0].Arch == 0 || abis[1].Arch == 0 {
			t.Errorf("ABIs(%s) = %+v, %v", arch, abis, err)
		}
		if len(Rules(Catalogue(), abis, Files{})) == 0 {
			t.Errorf("no rules for %s", arch)
		}
	}
}

const mountinfoSample = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:32 / /mnt/memory\040again rw,relatime - cgroup cgroup rw,memory
37 31 0:33 /docker/abc /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
38 31 0:34 / /srv/cg\040v1 rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// One release_agent per cgroup v1 hierarchy root: not cgroup2, not a bind
// of a subdirectory (no release_agent there), not twice.
func TestReleaseAgentFiles(t *testing.T) {
	mounts, err := hostfs.ParseMountinfo([]byte(mountinfoSample))
	if err != nil {
		t.Fatal(err)
	}
	want := "/sys/fs/cgroup/cpu,cpuacct/release_agent /sys/fs/cgroup/memory/release_agent /srv/cg v1/release_agent"
	if got := strings.Join(ReleaseAgentFiles(mounts), " "); got != want {
		t.Errorf("files = %q\nwant    %q", got, want)
	}
}

// Executable paths are trusted for host processes only, runc's init stage
// is recognised wherever it runs, and kernel: entries need a kernel thread
// as the parent.
func TestActors(t *testing.T) {
	proc := t.TempDir()
	writeStat := func(pid, flags string) {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(pid+" (kworker/u4:1 (x)) S 2 0 0 0 -1 "+flags+" 0 0"), 0o644)
	}
	writeStat("77", "69238880") // 0x4208060: PF_KTHREAD set
	writeStat("88", "4194560")  // a user process
	kthread := KernelThread(proc)
	resolve := func(p string) []string {
		return map[string][]string{"dockerd": {"/usr/sbin/dockerd"}, "runc": {"/usr/sbin/runc"}, "modprobe": {"/usr/bin/kmod"}}[p]
	}
	a := NewActors([]string{"dockerd", "runc", "kernel:modprobe"}, resolve)
	id := strings.Repeat("a", 64)
	state := "/var/run/docker/runtime-runc/moby/" + id
	cloning := func(exe, comm, container, path string) Process {
		return Process{Exe: exe, Comm: comm, Origin: OriginContainer, Container: container, Path: path}
	}
	for _, c := range []struct {
		p    Process
		want bool
	}{
		{Process{Exe: "/usr/sbin/dockerd", Origin: OriginHost}, true},
		{Process{Exe: "/usr/sbin/dockerd (deleted)", Origin: OriginHost}, true},
		{Process{Exe: "/usr/sbin/dockerd", Origin: OriginContainer}, false}, // anyone can install that path in an image
		{Process{Exe: "/", Comm: "runc:[2:INIT]", Origin: OriginContainer}, true},
		{Process{Exe: "/memfd:runc_cloned:/proc/self/exe (deleted)", Comm: "runc:[1:CHILD]", Origin: OriginContainer}, true},
		{Process{Exe: "/", Comm: "sh", Origin: OriginContainer}, false},
		{Process{Exe: "/bin/busybox", Comm: "runc:[2:INIT]", Origin: OriginContainer}, false},
		// runc 1.1's init stage cloning itself, already in the container's cgroup
		{cloning("/usr/sbin/runc", "exe", id, state+"/runc.fPEe9V"), true},
		{cloning("/usr/sbin/runc", "exe", id, state+"/runc.fPEe9"), false},                              // not runc's template
		{cloning("/usr/sbin/runc", "exe", id, state+"/sub/runc.fPEe9V"), false},                         // not the state directory
		{cloning("/usr/sbin/runc", "exe", id, "/run/x/"+strings.Repeat("b", 64)+"/runc.fPEe9V"), false}, // another container's
		{cloning("/usr/sbin/runc", "sh", id, state+"/runc.fPEe9V"), false},                              // not started as /proc/self/exe
		{cloning("/usr/sbin/dockerd", "exe", id, state+"/runc.fPEe9V"), false},                          // not runc
		{cloning("/usr/sbin/runc", "exe", id, "/mnt/host"), false},                                      // a mount of its own
		{Process{Exe: "/usr/bin/kmod", PPID: 77, Origin: OriginHost}, true},
		{Process{Exe: "/usr/bin/kmod", PPID: 88, Origin: OriginHost}, false}, // modprobe run by a user
		{Process{Exe: "/usr/bin/kmod", PPID: 99, Origin: OriginHost}, false}, // parent gone: unknown
		{Process{Exe: "/usr/bin/gdb", Origin: OriginHost}, false},
	} {
		if got := a.Expected(c.p, kthread); got != c.want {
			t.Errorf("Expected(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
	if NewActors([]string{"dockerd"}, resolve).Expected(Process{Exe: "/", Comm: "runc:[2:INIT]", Origin: OriginContainer}, kthread) {
		t.Error("runc's init stage expected without runc in the list")
	}
	if NewActors([]string{"dockerd"}, resolve).Expected(cloning("/usr/sbin/runc", "exe", id, state+"/runc.fPEe9V"), kthread) {
		t.Error("runc's cloning expected without runc in the list")
	}
	for _, bad := range []string{"", "kernel:", "bin/x", "kernel:bin/x"} {
		if ValidateActor(bad) == nil {
			t.Errorf("ValidateActor(%q) accepted it", bad)
		}
	}
	for _, good := range []string{"modprobe", "/usr/bin/kmod", "kernel:modprobe", "kernel:/sbin/modprobe"} {
		if err := ValidateActor(good); err != nil {
			t.Errorf("ValidateActor(%q): %v", good, err)
		}
	}
}

// From a container, the watches are added through the rootfs (the kernel
// resolves them in the agent's mount namespace), and a rule on either
// spelling covers the file: the host's auditd watches the host's path.
func TestFilesThroughRootfs(t *testing.T) {
	files := testFiles
	files.Local = func(p string) string { return "/host" + p }
	var watches []string
	for _, r := range Rules(Catalogue(), amd64(t), files) {
		if r.Watch != nil {
			watches = append(watches, r.Watch.Path+" for "+r.Path)
		}
	}
	if got := strings.Join(watches, ", "); got != "/host/sys/fs/cgroup/memory/release_agent for /sys/fs/cgroup/memory/release_agent, "+
		"/host/proc/sys/kernel/core_pattern for /proc/sys/kernel/core_pattern" {
		t.Errorf("watches = %s", got)
	}
	for _, spelled := range []Files{testFiles, files} {
		krules := decoded(t, Rules(Catalogue(), amd64(t), spelled))
		for _, c := range CheckCoverage(Catalogue(), amd64(t), files, krules) {
			if len(c.Missing) > 0 {
				t.Errorf("rules on %s: %s missing %v", spelled.local("/x"), c.Detection, c.Missing)
			}
		}
	}
}
