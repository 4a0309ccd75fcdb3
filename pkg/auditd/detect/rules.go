package detect

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/dockward/dockward/pkg/auditd/rules"
)

// ABI is one syscall ABI of the host, as auditctl names it (arch=b64 or
// b32) and as the kernel's syscall tables do.
type ABI struct {
	Flag  string // "b64" or "b32"
	Table string // "x86_64", "i386"...
	Arch  uint32 // the AUDIT_ARCH_* value the kernel compares
}

// abiTables maps a Go architecture to its native and compat syscall
// tables, as auditctl maps b64 and b32.
var abiTables = map[string][2]string{
	"amd64":   {"x86_64", "i386"},
	"arm64":   {"aarch64", "arm"},
	"ppc64le": {"ppc64le", "ppc"},
	"s390x":   {"s390x", "s390"},
}

// ABIs returns the two ABIs of a 64-bit Go architecture (runtime.GOARCH):
// a process can call the kernel through either, so a rule on one alone is
// escaped by a 32-bit binary.
func ABIs(goarch string) ([]ABI, error) {
	t, ok := abiTables[goarch]
	if !ok {
		return nil, fmt.Errorf("audit detections: no syscall tables for architecture %s (known: amd64, arm64, ppc64le, s390x)", goarch)
	}
	out := make([]ABI, 0, 2)
	for i, table := range t {
		abi := ABI{Flag: []string{"b64", "b32"}[i], Table: table}
		for a, name := range auparse.AuditArchNames {
			if name == table {
				abi.Arch = uint32(a)
			}
		}
		out = append(out, abi)
	}
	return out, nil
}

// syscallNumber looks a syscall up in an ABI's table.
func syscallNumber(table, name string) (int, bool) {
	for nr, n := range auparse.AuditSyscalls[table] {
		if n == name {
			return nr, true
		}
	}
	return 0, false
}

// names are the detection's syscalls the ABI has, in catalogue order.
func (d Detection) names(abi ABI) []string {
	var out []string
	for _, s := range d.Syscalls {
		if _, ok := syscallNumber(abi.Table, s); ok {
			out = append(out, s)
		}
	}
	return out
}

// Files are the files the path detections watch on this host, as the
// kernel resolves them.
type Files struct {
	// ReleaseAgent holds release_agent and notify_on_release at the root
	// of every cgroup v1 hierarchy mounted on the host.
	ReleaseAgent []string
	// CorePattern is /proc/sys/kernel/core_pattern.
	CorePattern string
	// Local maps a host path to where this process reaches it (under the
	// rootfs in a container): the kernel resolves a watch's path in the
	// mount namespace of whoever adds it. The rules watch that; coverage
	// takes either spelling. nil: the same path.
	Local func(string) string
}

func (f Files) local(p string) string {
	if f.Local == nil {
		return p
	}
	return f.Local(p)
}

// CorePatternPath is the kernel's core dump pattern, which a container
// that can write it turns into a command the host runs as root.
const CorePatternPath = "/proc/sys/kernel/core_pattern"

// paths are the files a detection watches.
func (d Detection) paths(f Files) []string {
	switch d.files {
	case releaseAgentFile:
		return f.ReleaseAgent
	case corePatternFile:
		if f.CorePattern != "" {
			return []string{f.CorePattern}
		}
	}
	return nil
}

// Rule is one kernel audit rule of the detections: a syscall rule (Line)
// or a file watch (Watch).
type Rule struct {
	// Detection is the detection the rule is for; "" for the rule every
	// detection without an argument filter shares.
	Detection string
	// Line is the rule as auditctl writes it; set for both kinds.
	Line  string
	Watch *rules.Watch
	// Path is a watch's file as the host names it (Watch.Path may be
	// under a rootfs).
	Path string
}

// Wire builds the rule's kernel form through go-libaudit.
func (r Rule) Wire() ([]byte, error) {
	if r.Watch != nil {
		return rules.Build(*r.Watch)
	}
	return rules.BuildLine(r.Line)
}

// Rules lists the kernel rules of the detections for the ABIs and files,
// as few as the kernel allows: per ABI, one always,exit rule for every
// syscall without an argument filter, and one per run of first-argument
// values for ptrace and bpf (whose other requests are routine); then a
// write watch per file. No rule filters on success or uid, so failed
// calls and every user are reported.
func Rules(ds []Detection, abis []ABI, f Files) []Rule {
	var out []Rule
	for _, abi := range abis {
		var plain []string
		for _, d := range ds {
			if d.Arg0 == nil {
				plain = append(plain, d.names(abi)...)
			}
		}
		if len(plain) > 0 {
			out = append(out, Rule{Line: fmt.Sprintf("-a always,exit -F arch=%s -S %s -k %s", abi.Flag, strings.Join(plain, ","), RuleKey)})
		}
		for _, d := range ds {
			names := d.names(abi)
			if d.Arg0 == nil || len(names) == 0 {
				continue
			}
			for _, run := range argRuns(d.Arg0) {
				filter := fmt.Sprintf("-F a0=0x%x", run[0])
				if run[1] != run[0] {
					filter = fmt.Sprintf("-F a0>=0x%x -F a0<=0x%x", run[0], run[1])
				}
				out = append(out, Rule{Detection: d.Name, Line: fmt.Sprintf("-a always,exit -F arch=%s -S %s %s -k %s",
					abi.Flag, strings.Join(names, ","), filter, RuleKey)})
			}
		}
	}
	for _, d := range ds {
		for _, p := range d.paths(f) {
			w := rules.Watch{Path: f.local(p), Key: RuleKey}
			out = append(out, Rule{Detection: d.Name, Line: fmt.Sprintf("-w %s -p wa -k %s", w.Path, RuleKey), Watch: &w, Path: p})
		}
	}
	return out
}

// argRuns groups argument values into runs of consecutive values, each
// [first, last], in the order given: one rule per run.
func argRuns(args []Arg) [][2]uint32 {
	var out [][2]uint32
	for _, a := range args {
		if n := len(out); n > 0 && out[n-1][1]+1 == a.Value {
			out[n-1][1] = a.Value
			continue
		}
		out = append(out, [2]uint32{a.Value, a.Value})
	}
	return out
}

// calls are the syscalls a detection needs audited, for coverage.
func (d Detection) calls(abis []ABI) []rules.Call {
	var out []rules.Call
	for _, abi := range abis {
		for _, name := range d.names(abi) {
			nr, _ := syscallNumber(abi.Table, name)
			if d.Arg0 == nil {
				out = append(out, rules.Call{Arch: abi.Arch, Nr: nr})
			}
			for _, a := range d.Arg0 {
				out = append(out, rules.Call{Arch: abi.Arch, Nr: nr, Arg0: a.Value, HasArg: true})
			}
		}
	}
	return out
}

// Coverage is the judgement of one detection against the kernel's rules.
type Coverage struct {
	Detection string
	// Missing lists what no kernel rule audits for every process, success
	// and failure: "arch=b32 ptrace a0=0x10", a watched file's path.
	Missing []string
}

// CheckCoverage judges every detection against the decoded kernel rules.
func CheckCoverage(ds []Detection, abis []ABI, f Files, krules []rules.Rule) []Coverage {
	out := make([]Coverage, 0, len(ds))
	for _, d := range ds {
		c := Coverage{Detection: d.Name}
		for _, call := range d.calls(abis) {
			if !slices.ContainsFunc(krules, func(r rules.Rule) bool { return r.CoversCall(call) }) {
				c.Missing = append(c.Missing, describeCall(abis, call))
			}
		}
		for _, p := range d.paths(f) {
			if !slices.ContainsFunc(krules, func(r rules.Rule) bool { return r.Covers(p) || r.Covers(f.local(p)) }) {
				c.Missing = append(c.Missing, p)
			}
		}
		sort.Strings(c.Missing)
		out = append(out, c)
	}
	return out
}

func describeCall(abis []ABI, c rules.Call) string {
	s := fmt.Sprintf("syscall %d", c.Nr)
	for _, abi := range abis {
		if abi.Arch == c.Arch {
			s = fmt.Sprintf("arch=%s %s", abi.Flag, auparse.AuditSyscalls[abi.Table][c.Nr])
		}
	}
	if c.HasArg {
		s += fmt.Sprintf(" a0=0x%x", c.Arg0)
	}
	return s
}

// RulesFile is the auditd rules file of the detections for the ABIs
// (deploy/audit/50-dockward-escape.rules is RulesFile for amd64): every
// syscall rule and the core_pattern watch. The release_agent watches
// depend on the host's cgroup v1 hierarchies and are not in it.
func RulesFile(abis []ABI) string {
	var b strings.Builder
	b.WriteString(`# dockward runtime detections: the calls and files a container escape needs.
# Install in /etc/audit/rules.d/ and load with augenrules --load (or
# auditctl -R). Generated by pkg/auditd/detect for the syscall tables of`)
	for _, abi := range abis {
		fmt.Fprintf(&b, " arch=%s (%s)", abi.Flag, abi.Table)
	}
	b.WriteString(`.
# No rule filters on success or uid: a failed attempt is still an attempt,
# and processes in containers have no login uid. dockward names each event
# by its syscall and file, so rules of your own with other keys count too.
# The release_agent watches depend on the host's cgroup v1 hierarchies; see
# docs/audit.md for the loop that writes them.
`)
	last := ""
	for _, r := range Rules(Catalogue(), abis, Files{CorePattern: CorePatternPath}) {
		what := "every detection of a syscall alone:"
		for _, d := range catalogue {
			if d.Arg0 == nil && !d.Files() {
				what += " " + d.Name
			}
		}
		if r.Detection != "" {
			d, _ := Lookup(r.Detection)
			what = d.Name + ": " + d.Title
		}
		if what != last {
			fmt.Fprintf(&b, "\n# %s\n", what)
			last = what
		}
		b.WriteString(r.Line + "\n")
	}
	return b.String()
}
