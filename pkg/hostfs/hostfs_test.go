package hostfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// fixture builds a host tree in a temporary directory from host paths: a
// value starting with "->" makes a symlink to the rest, a path ending in
// "/" a directory, anything else a file holding the value.
func fixture(t *testing.T, entries map[string]string) Root {
	t.Helper()
	dir := t.TempDir()
	for p, v := range entries {
		local := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch target, link := strings.CutPrefix(v, "->"); {
		case link:
			err = os.Symlink(target, local)
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(local, 0o755)
		default:
			err = os.WriteFile(local, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// debianRun is Debian's layout, where /var/run is an absolute link to /run:
// under a rootfs the link must lead to the rootfs's /run, not to the
// agent's own.
var debianRun = map[string]string{
	"/var/run":                        "->/run",
	"/run/containerd/containerd.sock": "socket stand-in",
	"/run/docker.pid":                 "1426\n",
	"/run/docker.sock":                "socket stand-in",
	"/usr/sbin/runc":                  "runc",
	"/usr/bin/runc":                   "->/usr/sbin/runc",
	"/usr/bin/docker":                 "->../../usr/bin/../../opt/docker/docker",
	"/opt/docker/docker":              "docker",
	"/etc/escape":                     "->../../../../../../../usr/sbin/runc",
	"/etc/up":                         "->../../..",
	"/etc/loop-a":                     "->/etc/loop-b",
	"/etc/loop-b":                     "->loop-a",
	"/etc/self":                       "->self",
	"/etc/dangling":                   "->/nowhere",
	"/etc/docker/":                    "",
}

func TestResolve(t *testing.T) {
	r := fixture(t, debianRun)
	cases := []struct {
		path, want string
		err        error
	}{
		{"/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock", nil},
		{"/var/run", "/run", nil},
		{"var/run/docker.pid", "/run/docker.pid", nil},
		{"/usr/bin/runc", "/usr/sbin/runc", nil},
		{"/usr/bin/docker", "/opt/docker/docker", nil},
		{"/etc/escape", "/usr/sbin/runc", nil},
		{"/etc/up/var/run", "/run", nil},
		{"/../../var/run/../etc/docker", "/etc/docker", nil},
		{"/var/run/..", "/", nil},
		{"/", "/", nil},
		{"/etc/loop-a", "", ErrSymlinkLoop},
		{"/etc/self", "", ErrSymlinkLoop},
		{"/etc/dangling", "", fs.ErrNotExist},
		{"/var/run/missing/file", "", fs.ErrNotExist},
	}
	for _, c := range cases {
		got, err := r.Resolve(c.path)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", c.path, got, err, c.want, c.err)
		}
	}
}

// The helpers that read through the root resolve the same way.
func TestReadStatAndLstatStayInsideTheRoot(t *testing.T) {
	r := fixture(t, debianRun)
	if data, err := r.ReadFile("/var/run/docker.pid", 64); err != nil || string(data) != "1426\n" {
		t.Errorf("ReadFile through /var/run = %q, %v", data, err)
	}
	if data, err := r.ReadFile("/var/run/docker.pid", 2); err != nil || len(data) != 3 {
		t.Errorf("ReadFile with limit 2 = %q, %v; want limit+1 bytes so that the caller sees the file is too big", data, err)
	}
	real, fi, err := r.Stat("/var/run/containerd/containerd.sock")
	if err != nil || real != "/run/containerd/containerd.sock" || !fi.Mode().IsRegular() {
		t.Errorf("Stat = %q, %v, %v", real, fi, err)
	}
	if !r.Exists("/var/run/containerd/containerd.sock") || r.Exists("/etc/dangling") {
		t.Error("Exists disagrees with Stat")
	}
	fi, err = r.Lstat("/var/run")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(/var/run) = %v, %v; want the link itself", fi, err)
	}
	if fi, err := r.Lstat("/var/run/docker.pid"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("Lstat under a linked directory = %v, %v", fi, err)
	}
	ents, err := r.ReadDir("/var/run/containerd")
	if err != nil || len(ents) != 1 || ents[0].Name() != "containerd.sock" {
		t.Errorf("ReadDir = %v, %v", ents, err)
	}
}

// On the host itself (the zero Root) Resolve agrees with the kernel.
func TestZeroRootIsTheHost(t *testing.T) {
	var r Root
	if r.Dir() != "/" || r.Local("etc/passwd") != "/etc/passwd" || r.Host("/etc") != "/etc" {
		t.Fatalf("zero Root: Dir %q Local %q", r.Dir(), r.Local("etc/passwd"))
	}
	for _, p := range []string{"/var/run", "/bin", "/etc", "/proc/self/cwd/.."} {
		want, werr := filepath.EvalSymlinks(p)
		got, err := r.Resolve(p)
		if (werr == nil) != (err == nil) || got != want {
			t.Errorf("Resolve(%s) = %q, %v; the kernel says %q, %v", p, got, err, want, werr)
		}
	}
}

func TestLocalAndHost(t *testing.T) {
	r := At("/host/")
	cases := map[string]string{"/etc/docker": "/host/etc/docker", "etc": "/host/etc", "/../..": "/host", "/": "/host"}
	for in, want := range cases {
		if got := r.Local(in); got != want {
			t.Errorf("Local(%q) = %q, want %q", in, got, want)
		}
		if back := r.Host(want); back != path.Clean("/"+in) {
			t.Errorf("Host(%q) = %q", want, back)
		}
	}
	for _, outside := range []string{"/hostile/etc", "/etc", "/"} {
		if got := r.Host(outside); got != "" {
			t.Errorf("Host(%q) = %q, want \"\" (outside the root)", outside, got)
		}
	}
}

func TestNewRejectsWhatIsNotADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"relative/path":            "must be an absolute path",
		filepath.Join(dir, "none"): "is not a readable directory",
		file:                       "is a regular file, not a directory",
	}
	for in, want := range cases {
		_, err := New(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "<nil>") {
			t.Errorf("New(%q) = %v, want an error saying %q", in, err, want)
		}
	}
	for _, ok := range []string{"", "/", dir} {
		if _, err := New(ok); err != nil {
			t.Errorf("New(%q): %v", ok, err)
		}
	}
}

func TestFindProgramAndUnitPaths(t *testing.T) {
	r := fixture(t, debianRun)
	for name, want := range map[string]string{"runc": "/usr/sbin/runc", "docker": "/opt/docker/docker"} {
		if got, ok := r.FindProgram(name); !ok || got != want {
			t.Errorf("FindProgram(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if got, ok := r.FindProgram("dockerd"); ok {
		t.Errorf("FindProgram(dockerd) = %q on a host without it", got)
	}
	units := UnitPaths("docker.service")
	if len(units) != len(UnitDirs) || units[0] != "/etc/systemd/system/docker.service" {
		t.Errorf("UnitPaths = %v", units)
	}
}

// ".." after a link applies where the link led, as in the kernel.
func TestLstatDotDotAfterALink(t *testing.T) {
	r := fixture(t, debianRun)
	if fi, err := r.Lstat("/var/run/../var/run"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(/var/run/../var/run) = %v, %v; want the /var/run link itself", fi, err)
	}
	if _, err := r.Lstat("/var/run/../docker.pid"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(/var/run/../docker.pid) = %v; /run/../docker.pid does not exist", err)
	}
	if fi, err := r.Lstat("/var/run/.."); err != nil || !fi.IsDir() {
		t.Errorf("Lstat(/var/run/..) = %v, %v", fi, err)
	}
}
