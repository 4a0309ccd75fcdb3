package auditd

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/hostfs"
)

// watchMatcher maps an event to the watch it is about by the paths its
// PATH records name, never by the rule key it carries: a host's rules may
// key several paths alike (the CIS rules use -k docker for all of them) or
// use dockward's keys for other paths. The watches are in kernel rule
// order, most specific first, so the first watch a name lies in is the
// one.
type watchMatcher struct {
	watches []Watch
	root    hostfs.Root
	// inodes maps "dev/inode" of each watched path that exists to its
	// watch, for records that name the object by descriptor (an empty or
	// /proc/self/... name) or relative to one.
	inodes map[string]int
	// dirs caches resolved directories for names spelled through a
	// symlink (/var/run/...); bounded, cleared when full.
	dirs map[string]string
	// byRule maps a rule key to the watch that every kernel rule carrying
	// it is on (keys on rules of several watches, like the CIS rules'
	// "docker", are left out), set from the kernel's rule list; nil when
	// the rules are not known.
	byRule atomic.Pointer[map[string]int]
}

// matchCacheMax bounds the resolved-directory cache.
const matchCacheMax = 1024

func newWatchMatcher(ws []Watch, root hostfs.Root) *watchMatcher {
	m := &watchMatcher{watches: ws, root: root, inodes: map[string]int{}, dirs: map[string]string{}}
	for i := len(ws) - 1; i >= 0; i-- { // the first watch of a path wins
		fi, err := os.Stat(root.Local(ws[i].Path))
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			m.inodes[inodeKey(kernelDev(st.Dev), st.Ino)] = i
		}
	}
	return m
}

// kernelDev formats a device number as PATH records print it ("fe:00").
func kernelDev(dev uint64) string {
	return fmt.Sprintf("%02x:%02x", unix.Major(dev), unix.Minor(dev))
}

func inodeKey(dev string, ino uint64) string { return dev + "/" + strconv.FormatUint(ino, 10) }

// match returns the watch of the event and the name that matched it (the
// watch's own path when only an inode did), trying in turn the names as
// recorded, the inodes, the names with their directories' symlinks
// resolved, and names relative to a live process's directory descriptor
// (read under procRoot; "" for replayed records, whose processes are gone).
func (m *watchMatcher) match(ev *record.Event, procRoot string) (Watch, string, bool) {
	best, name := m.byNames(ev, func(n string) string { return n })
	if best < 0 {
		for _, p := range ev.Paths {
			if i, ok := m.inodes[inodeKey(p.Dev, p.Inode)]; ok && p.Inode != 0 && (best < 0 || i < best) {
				best, name = i, m.watches[i].Path
			}
		}
	}
	if best < 0 {
		best, name = m.byNames(ev, m.resolved)
	}
	if best < 0 && ev.DirFD && procRoot != "" {
		if dir := descriptorDir(procRoot, ev); dir != "" {
			best, name = m.byNames(ev, func(n string) string {
				if strings.HasPrefix(n, "/") {
					return ""
				}
				return path.Join(dir, n)
			})
		}
	}
	if best < 0 {
		// A name in another mount namespace (a container's view of a
		// bind-mounted watched directory) or relative to a descriptor:
		// the rule that reported it says where, when its key is on one
		// watch's rules only. That is the rule's path, not its key's
		// meaning.
		if byRule := m.byRule.Load(); byRule != nil {
			if i, ok := (*byRule)[ev.Key]; ok {
				return m.watches[i], ev.Path(), true
			}
		}
		return Watch{}, "", false
	}
	return m.watches[best], name, true
}

// setRules derives byRule from the kernel's rules. Safe to call from
// another goroutine than match's.
func (m *watchMatcher) setRules(rs []rules.Rule) {
	byRule := map[string]int{}
	ambiguous := map[string]bool{}
	for _, r := range rs {
		i := m.watchOf(path.Clean(r.Path))
		for _, k := range r.Keys {
			if prev, seen := byRule[k]; i < 0 || (seen && prev != i) {
				ambiguous[k] = true
			}
			byRule[k] = i
		}
	}
	for k := range ambiguous {
		delete(byRule, k)
	}
	m.byRule.Store(&byRule)
}

// byNames finds the most specific watch any non-parent name of the event
// lies in, after the name is made absolute and passed through conv ("" is
// no name).
func (m *watchMatcher) byNames(ev *record.Event, conv func(string) string) (int, string) {
	best, name := -1, ""
	for _, p := range ev.Paths {
		if p.NameType == "PARENT" || p.Name == "" {
			continue
		}
		n := conv(ev.Absolute(p.Name))
		if n == "" {
			continue
		}
		n = path.Clean(n)
		if i := m.watchOf(n); i >= 0 && (best < 0 || i < best) {
			best, name = i, n
		}
	}
	return best, name
}

// watchOf is the index of the first watch that is name or contains it.
func (m *watchMatcher) watchOf(name string) int {
	if !strings.HasPrefix(name, "/") {
		return -1
	}
	for i, w := range m.watches {
		if w.Path == name || rules.Under(name, w.Path) {
			return i
		}
	}
	return -1
}

// resolved returns an absolute name with its directory's symlinks
// resolved the way the watches' own paths are, or "" when it does not
// resolve (or needs no resolving). /proc names are the recording
// process's own view and are never resolved here.
func (m *watchMatcher) resolved(name string) string {
	if !strings.HasPrefix(name, "/") || strings.HasPrefix(name, "/proc/") {
		return ""
	}
	dir, base := path.Split(path.Clean(name))
	dir = path.Clean(dir)
	real, ok := m.dirs[dir]
	if !ok {
		r, err := m.root.Resolve(dir)
		if err != nil {
			r = ""
		}
		if len(m.dirs) >= matchCacheMax {
			clear(m.dirs)
		}
		m.dirs[dir], real = r, r
	}
	if real == "" || real == dir {
		return ""
	}
	return path.Join(real, base)
}

// descriptorDir reads the directory a live process's *at call was
// relative to (a0, a descriptor) from /proc; "" when the process is gone.
func descriptorDir(procRoot string, ev *record.Event) string {
	fd, err := strconv.ParseUint(ev.A0, 16, 31)
	if err != nil || ev.PID <= 0 {
		return ""
	}
	dir, err := os.Readlink(fmt.Sprintf("%s/%d/fd/%d", procRoot, ev.PID, fd))
	if err != nil || !strings.HasPrefix(dir, "/") {
		return ""
	}
	return dir
}
