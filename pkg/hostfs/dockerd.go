package hostfs

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Where dockerd keeps its pid file and its API socket by default.
const (
	DockerPIDFile = "/var/run/docker.pid"
	DockerSocket  = "/var/run/docker.sock"
)

// Dockerd is the running Docker daemon as found through the host's /proc.
type Dockerd struct {
	PID  int
	Via  string   // "pidfile" or "socket"
	Args []string // argv, argv[0] included
	Env  map[string]string
	Exe  string // host path of the executable, when readable
}

// UnixListener is one listening Unix socket bound at a path.
type UnixListener struct {
	Path  string // as the binding process wrote it
	Inode uint64
}

// UnixListeners lists the listening Unix sockets bound at a path, from the
// host's /proc/net/unix.
func (r Root) UnixListeners() ([]UnixListener, error) {
	data, err := r.ReadFile("/proc/net/unix", 64<<20)
	if err != nil {
		return nil, fmt.Errorf("reading /proc/net/unix: %w", err)
	}
	var out []UnixListener
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[3] != "00010000" || f[5] != "01" {
			continue // not a listening socket with a path
		}
		if ino, err := strconv.ParseUint(f[6], 10, 64); err == nil {
			out = append(out, UnixListener{Path: f[7], Inode: ino})
		}
	}
	return out, nil
}

// listenersAt returns the inodes of the listening Unix sockets bound at a
// path that resolves to want. /proc/net/unix lists the path as the binding
// process wrote it (/var/run/docker.sock), which may differ from ours
// (/run/docker.sock) only by symlinks.
func (r Root) listenersAt(want string) (map[uint64]bool, error) {
	wantReal, err := r.Resolve(want)
	if err != nil {
		wantReal = path.Clean(want)
	}
	all, err := r.UnixListeners()
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, l := range all {
		if l.Path != want && l.Path != wantReal {
			if rp, err := r.Resolve(l.Path); err != nil || rp != wantReal {
				continue
			}
		}
		out[l.Inode] = true
	}
	return out, nil
}

// socketInodes lists the socket inodes pid holds open.
func (r Root) socketInodes(pid int) (map[uint64]bool, error) {
	dir := r.Local(fmt.Sprintf("/proc/%d/fd", pid))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out, nil
}

// socketOwners lists the processes holding any of inodes, with their parents.
func (r Root) socketOwners(inodes map[uint64]bool) (map[int]int, error) {
	ents, err := os.ReadDir(r.Local("/proc"))
	if err != nil {
		return nil, fmt.Errorf("listing /proc: %w", err)
	}
	owners := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		held, err := r.socketInodes(pid)
		if err != nil {
			continue // exited, or not ours to read
		}
		for ino := range held {
			if inodes[ino] {
				owners[pid] = r.parentPID(pid)
				break
			}
		}
	}
	return owners, nil
}

func (r Root) parentPID(pid int) int {
	data, err := r.ReadFile(fmt.Sprintf("/proc/%d/stat", pid), 4096)
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces: parse after
	// the last ')'.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			return ppid
		}
	}
	return 0
}

// FindDockerd finds the daemon through its pid file, checked against the
// owner of the API socket, or through the socket's owner alone. It never
// matches process names: any process can call itself dockerd.
func (r Root) FindDockerd(pidfiles []string, socket string) (*Dockerd, error) {
	listeners, lerr := r.listenersAt(socket)
	var owners map[int]int
	if lerr == nil && len(listeners) > 0 {
		owners, _ = r.socketOwners(listeners)
	}
	for _, pf := range pidfiles {
		pid := r.livePID(pf)
		if pid == 0 {
			continue
		}
		if _, owns := owners[pid]; owns || len(owners) == 0 {
			return r.describe(pid, "pidfile")
		}
		// The pid file names a process that does not serve the socket:
		// stale and reused, or planted. Trust the socket.
	}
	if pid := pickOwner(owners); pid > 0 {
		return r.describe(pid, "socket")
	}
	if lerr != nil {
		return nil, fmt.Errorf("no dockerd pid file in %v and the socket owner is unknown: %w", pidfiles, lerr)
	}
	return nil, fmt.Errorf("no running dockerd: no live pid file in %v and no process listens on %s", pidfiles, socket)
}

// livePID reads a pid file and returns its pid while that process runs,
// else 0.
func (r Root) livePID(pidfile string) int {
	data, err := r.ReadFile(pidfile, 64)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if _, err := os.Stat(r.Local(fmt.Sprintf("/proc/%d", pid))); err != nil {
		return 0 // stale pid file
	}
	return pid
}

// pickOwner chooses the daemon among the socket's holders. With socket
// activation systemd (PID 1) holds the listener too; the daemon is the
// topmost other holder.
func pickOwner(owners map[int]int) int {
	var cands []int
	for pid, ppid := range owners {
		if pid == 1 && len(owners) > 1 {
			continue
		}
		if _, parentHolds := owners[ppid]; parentHolds && ppid != 1 {
			continue
		}
		cands = append(cands, pid)
	}
	sort.Ints(cands)
	if len(cands) == 0 {
		return 0
	}
	return cands[0]
}

func (r Root) describe(pid int, via string) (*Dockerd, error) {
	raw, err := r.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid), 1<<20)
	if err != nil {
		return nil, fmt.Errorf("reading dockerd (pid %d) command line: %w", pid, err)
	}
	p := &Dockerd{PID: pid, Via: via, Env: map[string]string{}}
	for _, a := range bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0}) {
		p.Args = append(p.Args, string(a))
	}
	if env, err := r.ReadFile(fmt.Sprintf("/proc/%d/environ", pid), 1<<20); err == nil {
		for _, kv := range bytes.Split(env, []byte{0}) {
			if k, v, ok := strings.Cut(string(kv), "="); ok {
				p.Env[k] = v
			}
		}
	}
	if exe, err := os.Readlink(r.Local(fmt.Sprintf("/proc/%d/exe", pid))); err == nil {
		p.Exe = strings.TrimSuffix(exe, " (deleted)")
	}
	return p, nil
}

// TCPListeners returns the TCP addresses pid listens on, read from its own
// network namespace's tables and matched by socket inode.
func (r Root) TCPListeners(pid int) ([]string, error) {
	held, err := r.socketInodes(pid)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := r.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table), 64<<20)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 10 || f[3] != "0A" { // 0A is TCP_LISTEN
				continue
			}
			ino, err := strconv.ParseUint(f[9], 10, 64)
			if err != nil || !held[ino] {
				continue
			}
			if addr, err := parseProcAddr(f[1]); err == nil {
				out = append(out, addr)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// parseProcAddr decodes /proc/net/tcp's "0100007F:0CEA" (each 32-bit word
// in host byte order, little-endian here).
func parseProcAddr(s string) (string, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port in %q", s)
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10)), nil
}

// ConfigFile is the daemon.json the daemon reads by its --config-file flag
// (the last one given wins, as dockerd's flag parser has it), or "" when
// it gives none or a relative one.
func (d *Dockerd) ConfigFile() string {
	cf := ""
	for i := 1; i < len(d.Args); i++ {
		a := d.Args[i]
		if v, ok := strings.CutPrefix(a, "--config-file="); ok {
			cf = v
		} else if a == "--config-file" && i+1 < len(d.Args) {
			i++
			cf = d.Args[i]
		}
	}
	if !path.IsAbs(cf) {
		return ""
	}
	return path.Clean(cf)
}
