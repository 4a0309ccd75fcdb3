package watcher

import (
	"fmt"
	"strings"
	"testing"
)

// fakeProc adds a process to the tree's /proc: its command line, parent,
// and the socket inodes it holds.
func (tr *tree) fakeProc(pid, ppid int, args []string, env []string, sockets ...uint64) {
	tr.t.Helper()
	base := fmt.Sprintf("/proc/%d", pid)
	tr.write(base+"/cmdline", 0o444, strings.Join(args, "\x00")+"\x00")
	tr.write(base+"/environ", 0o400, strings.Join(env, "\x00"))
	tr.write(base+"/stat", 0o444, fmt.Sprintf("%d (%s) S %d 1 1 0", pid, "dockerd is a name", ppid))
	tr.mkdir(base+"/fd", 0o500)
	for i, ino := range sockets {
		tr.symlink(fmt.Sprintf("%s/fd/%d", base, i+3), fmt.Sprintf("socket:[%d]", ino))
	}
}

// fakeUnixTable writes /proc/net/unix with listening sockets.
func (tr *tree) fakeUnixTable(listeners map[uint64]string) {
	var b strings.Builder
	b.WriteString("Num       RefCount Protocol Flags    Type St Inode Path\n")
	for ino, p := range listeners {
		fmt.Fprintf(&b, "0000000000000000: 00000002 00000000 00010000 0001 01 %d %s\n", ino, p)
	}
	// A connected (not listening) socket with the same path is ignored.
	b.WriteString("0000000000000000: 00000003 00000000 00000000 0001 03 99999 /var/run/docker.sock\n")
	tr.write("/proc/net/unix", 0o444, b.String())
}

func TestDockerdFlagsAndTCPListenerReachTheRules(t *testing.T) {
	tr := newTree(t).minimalHost()
	tr.write("/etc/docker/daemon.json", 0o644, `{"icc": false}`)
	tr.fakeUnixTable(map[uint64]string{3542: "/var/run/docker.sock"})
	tr.fakeProc(1426, 1, []string{"/usr/sbin/dockerd", "-H", "unix:///var/run/docker.sock", "--userland-proxy=false", "--live-restore"},
		[]string{"PATH=/usr/bin"}, 3542, 4242)
	// dockerd's network namespace: a TCP listener on 0.0.0.0:2375 held by
	// socket inode 4242, and another process's listener it does not hold.
	tr.write("/proc/1426/net/tcp", 0o444,
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
			"   0: 00000000:0947 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n"+
			"   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0 100 0 0 10 0\n")
	tr.write("/var/run/docker.pid", 0o644, "1426\n")
	h := newHarness(t, tr, nil)
	fs := h.scan()
	if h.src.DockerdPID() != 1426 {
		t.Errorf("DockerdPID() = %d, want 1426", h.src.DockerdPID())
	}
	f, ok := find(fs, "daemon.tcp_without_tls", "dockerd")
	if !ok || f.Details["endpoints"] != "listening 0.0.0.0:2375" {
		t.Errorf("tcp finding %v endpoints %q", ok, f.Details["endpoints"])
	}
	if _, ok := find(fs, "daemon.userland_proxy", "dockerd"); ok {
		t.Error("--userland-proxy=false on the command line not honoured")
	}
	if _, ok := find(fs, "daemon.live_restore_off", "dockerd"); ok {
		t.Error("--live-restore on the command line not honoured")
	}
}
