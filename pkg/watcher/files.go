package watcher

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// fileRule holds one host path to an owner and a most permissive mode.
type fileRule struct {
	Path              string // host path, as the operator knows it
	Owner, Group      string // expected user and group (names or ids)
	MaxMode           uint32 // every bit outside it is a finding
	CISOwner, CISMode string // the exact 3.x checks
	What              string // what the file is, for messages
}

// discoverFiles lists the file rules for this host: the paths in use,
// found from systemd's unit directories, the daemon's settings and the
// kernel's socket table, rather than one distribution's layout.
func (s *scanner) discoverFiles(in *daemonInputs) []fileRule {
	var rules []fileRule
	seen := map[string]bool{}
	add := func(r fileRule) {
		// One file may have several names (/var/run is /run): judge it
		// once, under the first name it was found by.
		key := r.Path
		if real, err := s.fs.Resolve(r.Path); err == nil {
			key = real
		} else if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if seen[key] {
			return
		}
		seen[key] = true
		rules = append(rules, r)
	}
	var socketUnitPaths []string
	realUnits := map[string]bool{}
	for _, dir := range hostfs.UnitDirs {
		for _, u := range []struct{ name, co, cm string }{{"docker.service", "3.1", "3.2"}, {"docker.socket", "3.3", "3.4"}} {
			p := dir + "/" + u.name
			// /lib and /usr/lib are one directory on merged-/usr systems:
			// judge each real file once, under the first name found.
			if real, err := s.fs.Resolve(p); err == nil && !realUnits[real] {
				realUnits[real] = true
				add(fileRule{Path: p, Owner: "root", Group: "root", MaxMode: 0o644, CISOwner: u.co, CISMode: u.cm, What: u.name + " unit"})
				if u.name == "docker.socket" {
					socketUnitPaths = append(socketUnitPaths, s.listenStreams(p)...)
				}
			}
			dropinDir, err := s.fs.Resolve(p + ".d")
			if err != nil || realUnits[dropinDir] {
				continue
			}
			realUnits[dropinDir] = true
			dropins, _ := os.ReadDir(s.fs.Local(dropinDir))
			for _, d := range dropins {
				if strings.HasSuffix(d.Name(), ".conf") {
					add(fileRule{Path: p + ".d/" + d.Name(), Owner: "root", Group: "root", MaxMode: 0o644,
						CISOwner: u.co, CISMode: u.cm, What: u.name + " drop-in"})
				}
			}
		}
	}
	add(fileRule{Path: "/etc/docker", Owner: "root", Group: "root", MaxMode: 0o755, CISOwner: "3.5", CISMode: "3.6", What: "Docker configuration directory"})
	for _, p := range s.certsDFiles() {
		add(fileRule{Path: p, Owner: "root", Group: "root", MaxMode: 0o444, CISOwner: "3.7", CISMode: "3.8", What: "registry certificate"})
	}
	ca, cert, key := in.tlsFiles()
	if ca != "" {
		add(fileRule{Path: ca, Owner: "root", Group: "root", MaxMode: 0o444, CISOwner: "3.9", CISMode: "3.10", What: "TLS CA certificate"})
		add(fileRule{Path: cert, Owner: "root", Group: "root", MaxMode: 0o444, CISOwner: "3.11", CISMode: "3.12", What: "TLS server certificate"})
		add(fileRule{Path: key, Owner: "root", Group: "root", MaxMode: 0o400, CISOwner: "3.13", CISMode: "3.14", What: "TLS server key"})
	}
	group := in.stringSetting("group", func(c *daemonConfig) *string { return c.Group }, "docker").v
	for _, p := range append(in.unixSockets(), socketUnitPaths...) {
		add(fileRule{Path: p, Owner: "root", Group: group, MaxMode: 0o660, CISOwner: "3.15", CISMode: "3.16", What: "Docker API socket"})
	}
	add(fileRule{Path: in.configPath, Owner: "root", Group: "root", MaxMode: 0o644, CISOwner: "3.17", CISMode: "3.18", What: "daemon.json"})
	add(fileRule{Path: "/etc/default/docker", Owner: "root", Group: "root", MaxMode: 0o644, CISOwner: "3.19", CISMode: "3.20", What: "Docker environment file"})
	add(fileRule{Path: "/etc/sysconfig/docker", Owner: "root", Group: "root", MaxMode: 0o644, CISOwner: "3.22", CISMode: "3.21", What: "Docker environment file"})
	for _, p := range s.containerdSockets(in) {
		add(fileRule{Path: p, Owner: "root", Group: "root", MaxMode: 0o660, CISOwner: "3.23", CISMode: "3.24", What: "containerd socket"})
	}
	for _, x := range s.cfg.ExtraFiles {
		mode, _ := x.maxMode()
		owner, group := x.Owner, x.Group
		if owner == "" {
			owner = "root"
		}
		if group == "" {
			group = "root"
		}
		add(fileRule{Path: path.Clean(x.Path), Owner: owner, Group: group, MaxMode: mode, What: "file listed in extra_files"})
	}
	return rules
}

// listenStreams returns the Unix socket paths a socket unit listens on.
func (s *scanner) listenStreams(unit string) []string {
	data, err := s.fs.ReadFile(unit, 1<<20)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ListenStream=")
		if ok && strings.HasPrefix(v, "/") {
			out = append(out, path.Clean(v))
		}
	}
	return out
}

// certsDFiles lists the files under /etc/docker/certs.d. Directory symlinks
// are not followed, so a loop cannot trap the walk.
func (s *scanner) certsDFiles() []string {
	const dir = "/etc/docker/certs.d"
	real, err := s.fs.Resolve(dir)
	if err != nil {
		return nil
	}
	var out []string
	root := s.fs.Local(real)
	_ = fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			s.scanError(dir+"/"+p, err)
			return nil
		}
		if strings.Count(p, "/") > 4 {
			return fs.SkipDir
		}
		if !d.IsDir() {
			out = append(out, path.Join(dir, p))
		}
		return nil
	})
	return out
}

// containerdSockets finds containerd's sockets: the standard one, the
// one the daemon is told to use, the one /info reports, and any listening
// socket named containerd.sock (dockerd may run its own containerd).
func (s *scanner) containerdSockets(in *daemonInputs) []string {
	out := []string{defaultContainerd}
	if c := in.stringSetting("containerd", func(c *daemonConfig) *string { return c.Containerd }, "").v; c != "" {
		out = append(out, strings.TrimPrefix(c, "unix://"))
	}
	if in.info != nil && in.info.Containerd != nil && in.info.Containerd.Address != "" {
		out = append(out, strings.TrimPrefix(in.info.Containerd.Address, "unix://"))
	}
	if listeners, err := s.fs.UnixListeners(); err == nil {
		for _, l := range listeners {
			if path.Base(l.Path) == "containerd.sock" {
				out = append(out, l.Path)
			}
		}
	}
	sort.Strings(out[1:])
	return out
}

// fileState is what a scan saw of one path; a different state next time
// counts as a change.
type fileState struct {
	real         string
	ino, size    uint64
	mtime, ctime int64
	mode         uint32
	uid, gid     uint32
}

func stateOf(real string, fi fs.FileInfo) fileState {
	st := fileState{real: real, mode: uint32(fi.Mode())}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino, st.size = sys.Ino, uint64(sys.Size)
		st.mtime = sys.Mtim.Nano()
		st.ctime = sys.Ctim.Nano()
		st.uid, st.gid = sys.Uid, sys.Gid
	}
	return st
}

// judgeFile checks one path. A missing path is not a finding (the rule
// does not apply); an unreadable one is an error for the caller to count.
// expectedOwner resolves r's expected user and group on this host; ok is
// false for one this host does not have, whose side is then not judged.
func expectedOwner(r fileRule, ids hostfs.IDs) (uid uint32, okU bool, gid uint32, okG bool) {
	uid, okU = ids.Users.ID(r.Owner)
	gid, okG = ids.Groups.ID(r.Group)
	if !okG && r.Group == "docker" {
		// No docker group on this host: dockerd then leaves the socket root's.
		gid, okG = 0, true
	}
	return uid, okU, gid, okG
}

func (s *scanner) judgeFile(r fileRule, ids hostfs.IDs) ([]findings.Finding, *fileState, error) {
	real, fi, err := s.fs.Stat(r.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("stat %s: %w", r.Path, err)
	}
	st := stateOf(real, fi)
	uid, gid, err := ownerOf(fi)
	if err != nil {
		return nil, &st, err
	}
	subject := findings.Subject{Kind: findings.KindFile, Name: r.Path}
	var out []findings.Finding
	wantUID, okU, wantGID, okG := expectedOwner(r, ids)
	if !okU || !okG {
		s.logOnce("owner:"+r.Path, "the expected owner is not a user or group on this host; ownership not judged",
			zap.String("path", r.Path), zap.String("owner", r.Owner), zap.String("group", r.Group))
	}
	if (okU && uid != wantUID) || (okG && gid != wantGID) {
		have := ids.Users.NameOr(uid) + ":" + ids.Groups.NameOr(gid)
		want := r.Owner + ":" + r.Group
		f := findings.New("file.owner", subject, fmt.Sprintf("%s %s is owned by %s, want %s", r.What, r.Path, have, want)).
			With("owner", have).With("want_owner", want)
		if real != r.Path {
			f = f.With("resolved_path", real)
		}
		if r.CISOwner != "" {
			f.CIS = r.CISOwner
		}
		f.Remediation = fmt.Sprintf("chown %s %s", want, r.Path)
		out = append(out, f)
	}
	// Compare bits, not numbers: 0606 is "smaller" than 0644 but grants
	// group and world write.
	mode := unixMode(fi)
	if extra := mode &^ r.MaxMode; extra != 0 {
		f := findings.New("file.mode", subject, fmt.Sprintf("%s %s has mode %04o; it must not exceed %04o (extra bits %04o)", r.What, r.Path, mode, r.MaxMode, extra)).
			With("mode", fmt.Sprintf("%04o", mode)).With("max_mode", fmt.Sprintf("%04o", r.MaxMode))
		if real != r.Path {
			f = f.With("resolved_path", real)
		}
		if r.CISMode != "" {
			f.CIS = r.CISMode
		}
		f.Remediation = fmt.Sprintf("chmod %04o %s", mode&r.MaxMode, r.Path)
		out = append(out, f)
	}
	return out, &st, nil
}
