package hostfs

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// proc is one fake process of a fixture's /proc.
type proc struct {
	pid, ppid int
	args      []string
	sockets   []uint64
}

// procFixture lays out /proc: each process's command line, parent and
// socket fds, and /proc/net/unix listing listeners (inode: bound path),
// plus one connected socket at the Docker socket's path, which must not
// count as a listener.
func procFixture(procs []proc, listeners map[uint64]string) map[string]string {
	out := map[string]string{}
	for _, p := range procs {
		base := fmt.Sprintf("/proc/%d", p.pid)
		out[base+"/cmdline"] = strings.Join(p.args, "\x00") + "\x00"
		out[base+"/environ"] = "PATH=/usr/bin\x00DOCKER_HOST=unix:///run/docker.sock"
		out[base+"/stat"] = fmt.Sprintf("%d (%s) S %d 1 1 0", p.pid, "dockerd is a name", p.ppid)
		out[base+"/fd/"] = ""
		for i, ino := range p.sockets {
			out[fmt.Sprintf("%s/fd/%d", base, i+3)] = fmt.Sprintf("->socket:[%d]", ino)
		}
	}
	table := "Num       RefCount Protocol Flags    Type St Inode Path\n"
	for ino, p := range listeners {
		table += fmt.Sprintf("0000000000000000: 00000002 00000000 00010000 0001 01 %d %s\n", ino, p)
	}
	table += "0000000000000000: 00000003 00000000 00000000 0001 03 99999 /var/run/docker.sock\n"
	out["/proc/net/unix"] = table
	return out
}

func TestFindDockerdByPidFileCheckedAgainstSocket(t *testing.T) {
	host := procFixture([]proc{
		{1, 0, []string{"/sbin/init"}, []uint64{3542}}, // socket activation: systemd holds it too
		{1426, 1, []string{"/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"}, []uint64{3542, 77}},
		{2000, 1, []string{"/usr/bin/dockerd-impostor"}, nil},
	}, map[uint64]string{3542: "/run/docker.sock"})
	maps.Copy(host, debianRun)
	find := func(pidfile string) (*Dockerd, error) {
		host["/run/docker.pid"] = pidfile
		return fixture(t, host).FindDockerd([]string{DockerPIDFile}, DockerSocket)
	}
	p, err := find("1426")
	if err != nil || p.PID != 1426 || p.Via != "pidfile" {
		t.Fatalf("FindDockerd = %+v, %v; want pid 1426 via pidfile", p, err)
	}
	if p.Args[1] != "-H" || p.Args[2] != "fd://" || p.Env["DOCKER_HOST"] != "unix:///run/docker.sock" {
		t.Errorf("args = %q, env = %q", p.Args, p.Env)
	}

	// A pid file naming a process that does not serve the socket (stale
	// and reused, or planted) loses to the socket's owner.
	p, err = find("2000")
	if err != nil || p.PID != 1426 || p.Via != "socket" {
		t.Fatalf("planted pid file: FindDockerd = %+v, %v; want pid 1426 via socket", p, err)
	}

	// No pid file at all: the socket's owner, not PID 1.
	p, err = find("")
	if err != nil || p.PID != 1426 {
		t.Fatalf("no pid file: FindDockerd = %+v, %v; want pid 1426", p, err)
	}
}

// Without a socket listener the pid file is trusted while its process
// lives; a stale one finds nothing, and the error says where it looked.
func TestFindDockerdWithoutSocket(t *testing.T) {
	host := procFixture([]proc{{1426, 1, []string{"/usr/sbin/dockerd"}, nil}}, nil)
	maps.Copy(host, debianRun)
	p, err := fixture(t, host).FindDockerd([]string{DockerPIDFile}, DockerSocket)
	if err != nil || p.PID != 1426 || p.Via != "pidfile" {
		t.Fatalf("FindDockerd = %+v, %v; want pid 1426 via the pid file reached through /var/run", p, err)
	}
	host["/run/docker.pid"] = "999999"
	_, err = fixture(t, host).FindDockerd([]string{DockerPIDFile}, DockerSocket)
	if err == nil || !strings.Contains(err.Error(), DockerPIDFile) || !strings.Contains(err.Error(), DockerSocket) {
		t.Fatalf("stale pid file: err = %v, want one naming the pid file and the socket", err)
	}
}

func TestParseProcAddr(t *testing.T) {
	cases := map[string]string{
		"00000000:0947":                         "0.0.0.0:2375",
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000000000000000000000000000:0948": "[::]:2376",
		"00000000000000000000000001000000:0948": "[::1]:2376",
	}
	for in, want := range cases {
		if got, err := parseProcAddr(in); err != nil || got != want {
			t.Errorf("parseProcAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"zz:1", "00000000", "000000:0947", "00000000:zz"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("bad address %q accepted", bad)
		}
	}
}

func TestDockerdConfigFile(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"/usr/sbin/dockerd", "-H", "fd://"}, ""},
		{[]string{"/usr/sbin/dockerd", "--config-file", "/srv/docker/daemon.json"}, "/srv/docker/daemon.json"},
		{[]string{"dockerd", "--config-file=/a.json", "--debug", "--config-file=/srv//b.json"}, "/srv/b.json"},
		{[]string{"dockerd", "--config-file", "relative.json"}, ""},
		{[]string{"dockerd", "--config-file"}, ""},
		{[]string{"/etc/dockerd-wrapper", "--config-file-not=/x"}, ""},
	} {
		d := &Dockerd{Args: c.args}
		if got := d.ConfigFile(); got != c.want {
			t.Errorf("%q: ConfigFile() = %q, want %q", c.args, got, c.want)
		}
	}
}
