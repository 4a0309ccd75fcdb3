// Package hostfs is dockward's one view of the host it judges: host paths
// resolved under the directory where the host's / is mounted (the agent's
// own / on the host, /host in a container), the host's users and groups,
// the directories Docker's programs and systemd's units live in, and the
// running dockerd found through /proc. It is a library the sources share,
// not a source: it reports nothing itself.
package hostfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxSymlinkHops is the kernel's own limit (MAXSYMLINKS is 40).
const maxSymlinkHops = 40

// ErrSymlinkLoop is returned when a path needs more than the kernel's 40
// symlink hops to resolve.
var ErrSymlinkLoop = errors.New("too many levels of symbolic links (symlink loop)")

// Root maps host paths onto the directory where the host's / is mounted.
// Every path its methods take and return is a host path
// ("/etc/docker/daemon.json"); only Local knows about the mount point. The
// zero Root is the host seen from the host (its directory is /).
type Root struct{ dir string }

// New returns the Root mounted at dir, which must be an absolute path to a
// readable directory ("" means /).
func New(dir string) (Root, error) {
	r := At(dir)
	if !filepath.IsAbs(r.Dir()) {
		return Root{}, fmt.Errorf("%q must be an absolute path (\"/\" on the host, \"/host\" in a container)", dir)
	}
	fi, err := os.Stat(r.Dir())
	if err != nil {
		return Root{}, fmt.Errorf("%s is not a readable directory (mount the host's / there, read-only): %w", r.Dir(), err)
	}
	if !fi.IsDir() {
		return Root{}, fmt.Errorf("%s is a %s, not a directory (mount the host's / there, read-only)", r.Dir(), kindOf(fi))
	}
	f, err := os.Open(r.Dir())
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return Root{}, fmt.Errorf("%s cannot be read (run as root, or with CAP_DAC_READ_SEARCH): %w", r.Dir(), err)
	}
	return r, nil
}

// At returns the Root mounted at dir without checking it ("" means /).
func At(dir string) Root {
	if dir == "" || dir == "/" {
		return Root{}
	}
	return Root{dir: filepath.Clean(dir)}
}

func kindOf(fi fs.FileInfo) string {
	switch {
	case fi.Mode().IsRegular():
		return "regular file"
	case fi.Mode()&fs.ModeSocket != 0:
		return "socket"
	case fi.Mode()&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// Dir is where the host's / is mounted, as this process sees it.
func (r Root) Dir() string {
	if r.dir == "" {
		return "/"
	}
	return r.dir
}

// Local is where host path p is found from this process, without
// resolving any symlink in it: use Resolve first for a path that may hold
// one, or os calls on Local will follow absolute links out of the root.
func (r Root) Local(p string) string {
	if r.dir == "" {
		return path.Clean("/" + p)
	}
	return filepath.Join(r.dir, path.Clean("/"+p))
}

// Host turns a local path back into a host path ("" if it is outside the
// root).
func (r Root) Host(local string) string {
	if r.dir == "" {
		return local
	}
	rel, err := filepath.Rel(r.dir, local)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return ""
	}
	return path.Clean("/" + filepath.ToSlash(rel))
}

// Resolve follows the symlinks in host path p the way the host's kernel
// would, but inside the root: an absolute link target restarts at the
// host's /, never at this process's, and ".." stops at the host's /. As in
// the kernel, ".." applies to where the components before it led, so
// /var/run/.. is / when /var/run links to /run. A relative p starts at /.
// It returns the resolved host path, or the error of the first component
// that cannot be read (fs.ErrNotExist for a missing one, ErrSymlinkLoop).
func (r Root) Resolve(p string) (string, error) {
	resolved := "/"
	rest := strings.Split(p, "/")
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
		fi, err := os.Lstat(r.Local(next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: ErrSymlinkLoop}
		}
		target, err := os.Readlink(r.Local(next))
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

// Stat resolves p and stats what it points to, returning the resolved
// host path too.
func (r Root) Stat(p string) (string, fs.FileInfo, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Lstat(r.Local(real))
	return real, fi, err
}

// Lstat stats p itself, not what it points to: only the directories above
// it are resolved.
func (r Root) Lstat(p string) (fs.FileInfo, error) {
	dir, base := path.Split(p)
	if base == "" || base == "." || base == ".." {
		dir, base = p, "" // names a directory, which Resolve leaves unlinked
	}
	real, err := r.Resolve(dir)
	if err != nil {
		return nil, err
	}
	return os.Lstat(r.Local(path.Join(real, base)))
}

// Exists reports whether p resolves to something that exists.
func (r Root) Exists(p string) bool {
	_, _, err := r.Stat(p)
	return err == nil
}

// ReadFile reads host path p (symlinks resolved inside the root), at most
// limit bytes plus one, so that the caller can tell a file was too big.
func (r Root) ReadFile(p string, limit int64) ([]byte, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(r.Local(real))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(io.LimitReader(f, limit+1))
	return buf.Bytes(), err
}

// ReadDir lists the directory at host path p (symlinks resolved inside the
// root).
func (r Root) ReadDir(p string) ([]fs.DirEntry, error) {
	real, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(r.Local(real))
}
