// Package detect names the container escape attempts dockward reports from
// kernel audit: which syscalls and files each detection watches, the audit
// rules that make the kernel report them (both syscall ABIs, failed calls
// included), how an event is matched to a detection, which actors are
// routine, and whether the kernel's rules cover a detection at all. It
// knows nothing of netlink, metrics or logging: the audit source feeds it
// events and reports what it returns.
//
// Detections are named after the Falco rule each stands for where one
// exists (kernel_module_load is Falco's macro of "Linux Kernel Module
// Injection Detected"); they are events, never findings.
package detect

import "strings"

// Origin says where the process that made the call lives.
type Origin string

const (
	// OriginContainer is a process in a Docker container's cgroup.
	OriginContainer Origin = "container"
	// OriginHost is any other process.
	OriginHost Origin = "host"
)

// Origins lists every origin, for the series exported as 0.
var Origins = []Origin{OriginContainer, OriginHost}

// Outcome is whether the call succeeded: a denied escape is still an attempt.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Outcomes lists every outcome, for the series exported as 0.
var Outcomes = []Outcome{Success, Failure}

// fileKind says which files a path detection watches.
type fileKind int

const (
	noFiles          fileKind = iota
	releaseAgentFile          // cgroup v1 release_agent (and notify_on_release by name)
	corePatternFile           // /proc/sys/kernel/core_pattern
)

// Arg is one value of a syscall's first argument that a detection is
// limited to, with its name for the log line.
type Arg struct {
	Value uint32
	Name  string
}

// Detection is one named escape attempt.
type Detection struct {
	// Name is the detection's name: the `detection` label and log field.
	Name string
	// Title says what happened, in one line.
	Title string
	// Falco is the Falco rule the detection stands for, "" where Falco has
	// none.
	Falco string
	// Syscalls are the calls it watches, by their names in the kernel's
	// syscall tables; a name an architecture does not have is skipped
	// there (kexec_file_load has no 32-bit x86 entry; the 32-bit ABI's
	// kexec_load is named sys_kexec_load, and it has umount as well as
	// umount2).
	Syscalls []string
	// Arg0 limits the syscall rules to these values of the first argument
	// (ptrace's request, bpf's command); nil means every call.
	Arg0 []Arg
	// files are the files it watches for writes, instead of syscalls.
	files fileKind
	// HostToo is set when a host process's call is a detection too;
	// otherwise only a container's is (host processes mount, unshare and
	// open handles routinely).
	HostToo bool
	// Expected are the default expected actors (see Actors).
	Expected []string
}

// RuleKey is the key of every detection rule (ausearch -k dockward_escape).
// Events are matched by syscall and file, not by key, so the rules can be
// few (every rule costs the kernel a test at each syscall exit, and
// auditctl -D some milliseconds) and rules of another key count too.
const RuleKey = "dockward_escape"

// LimitKey names the detection in dockward_audit_log_lines_suppressed_total.
func (d Detection) LimitKey() string { return "detection:" + d.Name }

// Files reports whether the detection watches files rather than syscalls.
func (d Detection) Files() bool { return d.files != noFiles }

// runtimeActors are Docker's own processes: the daemons, the runtime and
// the shims set up the namespaces and mounts of every container, and the
// storage driver's helpers mount layers.
var runtimeActors = []string{"dockerd", "containerd", "runc", "containerd-shim", "containerd-shim-runc-v1",
	"containerd-shim-runc-v2", "fuse-overlayfs", "fusermount3", "fusermount"}

func withRuntime(more ...string) []string {
	return append(append([]string(nil), runtimeActors...), more...)
}

// ptrace requests that write to or take control of another process
// (include/uapi/linux/ptrace.h).
var ptraceRequests = []Arg{{4, "PTRACE_POKETEXT"}, {5, "PTRACE_POKEDATA"}, {6, "PTRACE_POKEUSER"},
	{16, "PTRACE_ATTACH"}, {0x4206, "PTRACE_SEIZE"}}

// catalogue is every detection, in the order of the README's table.
var catalogue = []Detection{
	{Name: "kernel_module_load", Title: "A kernel module load was attempted", Falco: "Linux Kernel Module Injection Detected",
		Syscalls: []string{"init_module", "finit_module"}, HostToo: true,
		Expected: withRuntime("systemd", "systemd-udevd", "systemd-modules-load", "kernel:modprobe")},
	{Name: "kernel_module_unload", Title: "A kernel module unload was attempted",
		Syscalls: []string{"delete_module"}, HostToo: true, Expected: withRuntime("systemd", "kernel:modprobe")},
	{Name: "mount_in_container", Title: "A container mounted, unmounted or moved a filesystem", Falco: "Mount Launched in Privileged Container",
		Syscalls: []string{"mount", "umount", "umount2", "fsmount", "move_mount", "open_tree", "pivot_root"},
		Expected: withRuntime()},
	{Name: "namespace_change", Title: "A container entered or created a namespace",
		Falco:    "Change thread namespace; Change namespace privileges via unshare",
		Syscalls: []string{"setns", "unshare"}, Expected: withRuntime()},
	{Name: "ptrace_attach", Title: "A process attached to or wrote into another with ptrace", Falco: "PTRACE attached to process",
		Syscalls: []string{"ptrace"}, Arg0: ptraceRequests, HostToo: true, Expected: withRuntime()},
	{Name: "bpf_prog_load", Title: "A BPF program load was attempted", Falco: "BPF Program Not Profiled",
		Syscalls: []string{"bpf"}, Arg0: []Arg{{5, "BPF_PROG_LOAD"}}, HostToo: true, Expected: withRuntime("systemd")},
	{Name: "kexec_load", Title: "A new kernel load (kexec) was attempted",
		Syscalls: []string{"kexec_load", "sys_kexec_load", "kexec_file_load"}, HostToo: true, Expected: withRuntime()},
	{Name: "release_agent_write", Title: "A cgroup v1 release_agent or notify_on_release was written", Falco: "Detect release_agent File Container Escapes",
		files: releaseAgentFile, HostToo: true, Expected: withRuntime("systemd")},
	{Name: "core_pattern_write", Title: "/proc/sys/kernel/core_pattern was written",
		files: corePatternFile, HostToo: true, Expected: withRuntime("systemd", "systemd-sysctl")},
	{Name: "open_by_handle_at", Title: "A container opened a file by handle (the shocker escape)",
		Syscalls: []string{"open_by_handle_at"}, Expected: withRuntime()},
}

// Catalogue returns every detection.
func Catalogue() []Detection { return append([]Detection(nil), catalogue...) }

// Lookup finds a detection by name.
func Lookup(name string) (Detection, bool) {
	for _, d := range catalogue {
		if d.Name == name {
			return d, true
		}
	}
	return Detection{}, false
}

// Reports says, in Markdown, which calls or writes the detection reports.
func (d Detection) Reports() string {
	switch d.files {
	case releaseAgentFile:
		return "a write to `release_agent` at the root of a cgroup v1 hierarchy (or to `notify_on_release`, under a rule of yours)"
	case corePatternFile:
		return "a write to `" + CorePatternPath + "`"
	}
	names := make([]string, len(d.Syscalls))
	for i, s := range d.Syscalls {
		names[i] = "`" + s + "`"
	}
	out := strings.Join(names, ", ")
	if d.Arg0 != nil {
		args := make([]string, len(d.Arg0))
		for i, a := range d.Arg0 {
			args[i] = a.Name
		}
		out += " with " + strings.Join(args, ", ")
	}
	return out
}
