package watcher

import (
	"errors"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/dockward/dockward/pkg/hostfs"
)

// binaryNames are hashed wherever found; a trailing * is a prefix match.
var binaryNames = []string{"dockerd", "docker", "containerd", "containerd-shim*", "runc"}

// discoverBinaries finds the binaries to judge on this host, the running
// daemon's own executable included.
func (s *scanner) discoverBinaries(in *daemonInputs) []string {
	exe := ""
	if in.proc != nil {
		exe = in.proc.Exe
	}
	return findBinaries(s.fs, s.cfg.BinaryDirs, exe, s.scanError)
}

// findBinaries lists the host paths of Docker's binaries in dirs, then in
// hostfs.BinDirs, deduplicated by where they really are (/bin is /usr/bin
// on merged-/usr systems, /usr/bin/runc may link to /usr/sbin/runc). exe,
// the running daemon's own executable, is included wherever it lives. A
// path that cannot be resolved for a reason other than its absence goes to
// onError.
func findBinaries(root hostfs.Root, dirs []string, exe string, onError func(p string, err error)) []string {
	var out []string
	seen := map[string]bool{}
	addReal := func(p string) {
		real, err := root.Resolve(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				onError(p, err)
			}
			return
		}
		if seen[real] {
			return
		}
		if fi, err := os.Stat(root.Local(real)); err != nil || !fi.Mode().IsRegular() {
			return
		}
		seen[real] = true
		out = append(out, real)
	}
	if exe != "" {
		addReal(exe)
	}
	for _, dir := range append(append([]string{}, dirs...), hostfs.BinDirs...) {
		for _, name := range binaryNames {
			if prefix, ok := strings.CutSuffix(name, "*"); ok {
				ents, _ := os.ReadDir(root.Local(dir))
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), prefix) {
						addReal(dir + "/" + e.Name())
					}
				}
				continue
			}
			addReal(dir + "/" + name)
		}
	}
	sort.Strings(out)
	return out
}
