package detect

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// kernelPrefix marks an expected actor that is routine only when the kernel
// started it: modprobe run by request_module has a kernel thread (a
// kworker) as its parent, while the same modprobe run by a user does not.
const kernelPrefix = "kernel:"

// ValidateActor checks one expected-actor entry: an absolute executable
// path or a bare program name, optionally prefixed with "kernel:".
func ValidateActor(entry string) error {
	prog := strings.TrimPrefix(entry, kernelPrefix)
	if prog == "" || (!filepath.IsAbs(prog) && filepath.Base(prog) != prog) {
		return fmt.Errorf("%q must be an absolute path or a bare program name, optionally after %q", entry, kernelPrefix)
	}
	return nil
}

// Actors are the expected actors of one detection, resolved on this host:
// the processes whose calls are the runtime's or the system's own work and
// are counted as routine rather than reported.
type Actors struct {
	exes       map[string]bool // host executables, by the kernel's exe path
	kernelExes map[string]bool // the same, when a kernel thread started them
	runcInit   bool            // runc's init stage, before it runs the container's program
	runcExes   map[string]bool // runc's host executables, for its init stage before it clones itself
}

// NewActors resolves entries (see ValidateActor) with resolve, which turns
// a program name or path into the executable paths it stands for on the
// host (none when it is not installed), the way the file watches' expected
// writers are resolved.
func NewActors(entries []string, resolve func(string) []string) Actors {
	a := Actors{exes: map[string]bool{}, kernelExes: map[string]bool{}, runcExes: map[string]bool{}}
	for _, e := range entries {
		prog, byKernel := strings.CutPrefix(e, kernelPrefix)
		isRunc := filepath.Base(prog) == "runc" && !byKernel
		a.runcInit = a.runcInit || isRunc
		for _, p := range resolve(prog) {
			switch {
			case byKernel:
				a.kernelExes[p] = true
			case isRunc:
				a.runcExes[p] = true
				a.exes[p] = true
			default:
				a.exes[p] = true
			}
		}
	}
	return a
}

// Process is what an event says of its actor.
type Process struct {
	Exe, Comm string
	PPID      int64
	Origin    Origin
	// Container is the full ID of the container the process was found
	// in, and Path the file its call named; both are "" for a host process.
	Container, Path string
}

// runcInit reports whether the process is runc's init stage, which sets up
// a container's mounts and namespaces from inside its cgroup before it
// runs the container's program. runc runs that stage from a copy of its
// own binary that the container cannot reach: a detached read-only bind
// mount, whose path the kernel prints as "/", or a sealed memfd; its comm
// is runc:[0:PARENT], runc:[1:CHILD] or runc:[2:INIT]. A container's own
// program cannot take that executable path without first mounting over a
// file and unmounting it, which is reported.
func runcInit(p Process) bool {
	if strings.HasPrefix(p.Exe, "/memfd:runc_cloned:") {
		return true
	}
	return p.Exe == "/" && strings.HasPrefix(p.Comm, "runc:[")
}

// runcCloning reports whether p is runc 1.1's init stage making the
// read-only copy of its own binary that it then runs from: started as
// /proc/self/exe (its comm is "exe"), it bind-mounts its executable onto a
// temporary file runc.XXXXXX in the container's state directory (named
// after the container's ID), remounts it read-only and detaches it, before
// it enters the container's namespaces. Its cgroup may already be the
// container's when the event is read, so it looks like a container's
// process. A container's program would have to carry runc's path, run
// under the name exe and mount onto a file of that name in a directory
// named after its own container to look the same, and such a mount
// reaches nothing the container could not reach already.
func (a Actors) runcCloning(p Process) bool {
	if !a.runcExes[p.Exe] || p.Comm != "exe" || p.Container == "" {
		return false
	}
	dir, file := path.Split(p.Path)
	rand, ok := strings.CutPrefix(file, "runc.")
	return ok && len(rand) == len("XXXXXX") && path.Base(dir) == p.Container
}

// Expected reports whether p is one of the actors. A container's process
// is expected only as runc's init stage: inside a container any program
// can be installed at /usr/bin/dockerd, so executable paths are trusted
// only for host processes. kernelThread reports whether a PID is a kernel
// thread.
func (a Actors) Expected(p Process, kernelThread func(pid int64) bool) bool {
	if a.runcInit && (runcInit(p) || a.runcCloning(p)) {
		return true
	}
	if p.Origin != OriginHost {
		return false
	}
	// A daemon whose binary a package upgrade replaced runs from
	// "PATH (deleted)" until it restarts.
	exe := strings.TrimSuffix(p.Exe, " (deleted)")
	if a.exes[exe] {
		return true
	}
	return a.kernelExes[exe] && kernelThread(p.PPID)
}

// pfKthread is PF_KTHREAD, the flag of a kernel thread in /proc/PID/stat.
const pfKthread = 0x00200000

// KernelThread returns a function reporting whether a live PID under
// procRoot (/proc) is a kernel thread, from the flags field of its stat.
func KernelThread(procRoot string) func(pid int64) bool {
	return func(pid int64) bool {
		if pid <= 0 {
			return false
		}
		data, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatInt(pid, 10), "stat"))
		if err != nil {
			return false
		}
		return statFlags(string(data))&pfKthread != 0
	}
}

// statFlags reads the flags field (the ninth) of a /proc/PID/stat line,
// whose second field, the command in parentheses, may hold spaces and
// parentheses itself.
func statFlags(stat string) uint64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 7 {
		return 0
	}
	v, _ := strconv.ParseUint(f[6], 10, 64)
	return v
}
