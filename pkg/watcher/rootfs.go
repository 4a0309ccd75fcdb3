package watcher

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxSymlinkHops is the kernel's own limit (MAXSYMLINKS is 40).
const maxSymlinkHops = 40

// errSymlinkLoop is returned when a path needs more than maxSymlinkHops.
var errSymlinkLoop = errors.New("too many levels of symbolic links (symlink loop)")

// rootFS maps host paths onto where the host's / is mounted. All paths the
// watcher judges and reports are host paths ("/etc/docker/daemon.json");
// only local() knows about the prefix.
type rootFS struct{ root string }

func newRootFS(root string) rootFS {
	if root == "" {
		root = "/"
	}
	return rootFS{root: filepath.Clean(root)}
}

// local is where host path p is found from this process.
func (r rootFS) local(p string) string {
	if r.root == "/" {
		return path.Clean("/" + p)
	}
	return filepath.Join(r.root, path.Clean("/"+p))
}

// host turns a local path back into a host path ("" if it is outside root).
func (r rootFS) host(local string) string {
	if r.root == "/" {
		return local
	}
	rel, err := filepath.Rel(r.root, local)
	if err != nil || strings.HasPrefix(rel, "..") {
		return ""
	}
	return path.Clean("/" + filepath.ToSlash(rel))
}

// resolve follows symlinks in host path p the way the host's kernel would,
// but inside root: an absolute link target restarts at the host's /, not at
// this process's. It returns the resolved host path.
func (r rootFS) resolve(p string) (string, error) {
	resolved := "/"
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		fi, err := os.Lstat(r.local(next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: errSymlinkLoop}
		}
		target, err := os.Readlink(r.local(next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// stat resolves p and stats what it points to.
func (r rootFS) stat(p string) (string, fs.FileInfo, error) {
	real, err := r.resolve(p)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Lstat(r.local(real))
	return real, fi, err
}

// readFile reads host path p (symlinks resolved inside root), at most limit
// bytes plus one so the caller can tell a file was too big.
func (r rootFS) readFile(p string, limit int64) ([]byte, error) {
	real, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(r.local(real))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(io.LimitReader(f, limit+1))
	return buf.Bytes(), err
}

// errorReason classifies a filesystem error for the scan error counter.
func errorReason(err error) string {
	switch {
	case errors.Is(err, errSymlinkLoop), errors.Is(err, syscall.ELOOP):
		return reasonSymlinkLoop
	case errors.Is(err, fs.ErrPermission):
		return reasonUnreadable
	default:
		return reasonStat
	}
}

// idMap resolves user and group names through the host's /etc/passwd and
// /etc/group (not this process's: in a container they differ).
type idMap struct {
	users, groups map[string]uint32
	uname, gname  map[uint32]string
}

func (r rootFS) loadIDs() idMap {
	m := idMap{users: map[string]uint32{"root": 0}, groups: map[string]uint32{"root": 0},
		uname: map[uint32]string{0: "root"}, gname: map[uint32]string{0: "root"}}
	parse := func(file string, names map[string]uint32, ids map[uint32]string) {
		data, err := r.readFile(file, 4<<20)
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			parts := strings.Split(sc.Text(), ":")
			if len(parts) < 3 || strings.HasPrefix(parts[0], "#") {
				continue
			}
			id, err := strconv.ParseUint(parts[2], 10, 32)
			if err != nil {
				continue
			}
			if _, dup := names[parts[0]]; !dup {
				names[parts[0]] = uint32(id)
			}
			if _, dup := ids[uint32(id)]; !dup {
				ids[uint32(id)] = parts[0]
			}
		}
	}
	parse("/etc/passwd", m.users, m.uname)
	parse("/etc/group", m.groups, m.gname)
	return m
}

// lookup resolves a name or a numeric id.
func lookupID(names map[string]uint32, v string) (uint32, bool) {
	if id, ok := names[v]; ok {
		return id, true
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return uint32(n), true
	}
	return 0, false
}

func (m idMap) userName(id uint32) string  { return nameOr(m.uname, id) }
func (m idMap) groupName(id uint32) string { return nameOr(m.gname, id) }

func nameOr(names map[uint32]string, id uint32) string {
	if n, ok := names[id]; ok {
		return n
	}
	return strconv.FormatUint(uint64(id), 10)
}

// ownerOf returns the uid and gid of a stat result.
func ownerOf(fi fs.FileInfo) (uid, gid uint32, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("no ownership information for %s", fi.Name())
	}
	return st.Uid, st.Gid, nil
}

// unixMode is the 12-bit permission word (setuid, setgid, sticky and rwx),
// as chmod takes it.
func unixMode(fi fs.FileInfo) uint32 {
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
