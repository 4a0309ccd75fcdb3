package detect

import (
	"path"
	"strconv"
	"strings"

	"github.com/dockward/dockward/pkg/auditd/record"
)

// Match is an event matched to a detection.
type Match struct {
	Detection Detection
	Outcome   Outcome
	// Detail names the arguments that matter, when the record shows them:
	// "PTRACE_ATTACH pid 1234", "BPF_PROG_LOAD", "CLONE_NEWNS|CLONE_NEWUSER".
	Detail string
}

// Matcher matches events to detections by syscall name (and first
// argument), else, for a change to a file, by the file's name: whatever
// rule reported the event, dockward's or an auditd's with its own key.
type Matcher struct {
	bySyscall map[string]int
	ds        []Detection
	// fileDetections: the index of each file-watching kind.
	releaseAgent, corePattern int
}

// NewMatcher builds a matcher for the detections.
func NewMatcher(ds []Detection) *Matcher {
	m := &Matcher{bySyscall: map[string]int{}, ds: ds, releaseAgent: -1, corePattern: -1}
	for i, d := range ds {
		for _, s := range d.Syscalls {
			m.bySyscall[s] = i
		}
		switch d.files {
		case releaseAgentFile:
			m.releaseAgent = i
		case corePatternFile:
			m.corePattern = i
		}
	}
	return m
}

// Match reports the detection an event is, if any.
func (m *Matcher) Match(ev *record.Event) (Match, bool) {
	i, ok := m.bySyscall[ev.Syscall]
	if !ok {
		i, ok = m.byFile(ev)
	}
	if !ok {
		return Match{}, false
	}
	d := m.ds[i]
	detail, ok := details(d, ev)
	if !ok {
		return Match{}, false
	}
	out := Match{Detection: d, Outcome: Failure, Detail: detail}
	if ev.Success {
		out.Outcome = Success
	}
	return out, true
}

// byFile matches a change to release_agent, notify_on_release or
// core_pattern (an open for writing, a truncate...). The name is the
// one the process used: a container writes /cg/release_agent through a
// cgroup mount of its own.
func (m *Matcher) byFile(ev *record.Event) (int, bool) {
	// Every file event of the host passes here: look at the names as the
	// record has them first, and build a path only for one of these files.
	i, ok := -1, false
	for _, p := range ev.Paths {
		if i = m.fileIndex(path.Base(p.Name)); i >= 0 {
			break
		}
	}
	if i < 0 || !ev.Access().Changes() {
		return 0, false
	}
	if i == m.corePattern {
		p := ev.Path()
		ok = p == CorePatternPath || strings.HasSuffix(p, "/sys/kernel/core_pattern")
	} else {
		ok = true
	}
	return i, ok
}

// fileIndex is the detection of a file name, -1 for none.
func (m *Matcher) fileIndex(base string) int {
	switch base {
	case "release_agent", "notify_on_release":
		return m.releaseAgent
	case "core_pattern":
		return m.corePattern
	}
	return -1
}

// details describes the arguments of the call, and reports false for a
// call whose first argument is outside the detection's (a ptrace request
// that neither attaches nor writes, a bpf command other than a load).
func details(d Detection, ev *record.Event) (string, bool) {
	a0, has0 := ev.ArgValue(0)
	if d.Arg0 != nil {
		for _, a := range d.Arg0 {
			if has0 && uint32(a0) == a.Value && a0>>32 == 0 {
				if ev.Syscall == "ptrace" {
					if pid, ok := ev.ArgValue(1); ok {
						return a.Name + " pid " + strconv.FormatInt(int64(int32(pid)), 10), true
					}
				}
				return a.Name, true
			}
		}
		return "", false
	}
	switch ev.Syscall {
	case "unshare":
		return flagNames(a0, has0, namespaceFlags), true
	case "setns":
		a1, ok := ev.ArgValue(1)
		if ok && a1 == 0 {
			return "any namespace", true
		}
		return flagNames(a1, ok, namespaceFlags), true
	case "mount":
		a3, ok := ev.ArgValue(3)
		return flagNames(a3, ok, mountFlags), true
	}
	return "", true
}

type flagName struct {
	bit  uint64
	name string
}

// namespaceFlags are the CLONE_NEW* flags (include/uapi/linux/sched.h).
var namespaceFlags = []flagName{{0x80, "CLONE_NEWTIME"}, {0x20000, "CLONE_NEWNS"}, {0x02000000, "CLONE_NEWCGROUP"},
	{0x04000000, "CLONE_NEWUTS"}, {0x08000000, "CLONE_NEWIPC"}, {0x10000000, "CLONE_NEWUSER"},
	{0x20000000, "CLONE_NEWPID"}, {0x40000000, "CLONE_NEWNET"}}

// mountFlags are the mount(2) flags worth naming (include/uapi/linux/mount.h).
var mountFlags = []flagName{{1, "MS_RDONLY"}, {32, "MS_REMOUNT"}, {4096, "MS_BIND"}, {8192, "MS_MOVE"},
	{16384, "MS_REC"}, {1 << 18, "MS_PRIVATE"}, {1 << 19, "MS_SLAVE"}, {1 << 20, "MS_SHARED"}}

// flagNames names the set flags of v that names knows (v in hex when it
// knows none), "none" for 0 and "" when the record did not carry it.
func flagNames(v uint64, ok bool, names []flagName) string {
	switch {
	case !ok:
		return ""
	case v == 0:
		return "none"
	}
	var out []string
	for _, f := range names {
		if v&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	if len(out) == 0 {
		return "0x" + strconv.FormatUint(v, 16)
	}
	return strings.Join(out, "|")
}
