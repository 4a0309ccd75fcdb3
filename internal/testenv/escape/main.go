// Command escape makes, one per run, the calls a container escape needs,
// for the runtime detection tests: it is the payload of their containers
// (built static, for the 64-bit and the 32-bit x86 ABI, into an image
// FROM the test busybox image). Each call is expected to be reported
// whether it succeeds or fails; a failure is printed, not fatal, and the
// exit status is 0 once the call was made.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: escape ptrace-attach PID | init-module | bpf-prog-load | open-by-handle | kexec-load | unshare | setns PATH | mount-tmpfs DIR")
		os.Exit(2)
	}
	err := run(os.Args[1], os.Args[2:])
	if err == errUsage {
		fmt.Fprintf(os.Stderr, "escape %s: bad arguments %q\n", os.Args[1], os.Args[2:])
		os.Exit(2)
	}
	fmt.Printf("%s: %v\n", os.Args[1], err) // the call was made; nil or its error
}

var errUsage = fmt.Errorf("usage")

func run(cmd string, args []string) error {
	switch cmd {
	case "ptrace-attach":
		if len(args) != 1 {
			return errUsage
		}
		return ptraceAttach(args[0])
	case "init-module":
		return unix.InitModule([]byte("not a kernel module"), "")
	case "bpf-prog-load":
		attr := make([]byte, 128) // an empty program: rejected
		_, _, e := unix.Syscall(unix.SYS_BPF, 5, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
		return errnoErr(e)
	case "open-by-handle":
		h := unix.NewFileHandle(1, make([]byte, 8)) // a made-up handle of the root file system
		fd, err := unix.OpenByHandleAt(unix.AT_FDCWD, h, unix.O_RDONLY)
		if err == nil {
			unix.Close(fd)
		}
		return err
	case "kexec-load":
		// Flags no kernel accepts: refused whatever the capabilities.
		_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffff0000, 0, 0)
		return errnoErr(e)
	case "unshare":
		return unix.Unshare(0) // no new namespace: the call alone is the attempt
	case "setns":
		if len(args) != 1 {
			return errUsage
		}
		return setns(args[0])
	case "mount-tmpfs":
		if len(args) != 1 {
			return errUsage
		}
		return unix.Mount("none", args[0], "tmpfs", 0, "")
	}
	return errUsage
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// ptraceAttach attaches to pid, waits for it to stop and detaches again.
func ptraceAttach(arg string) error {
	pid, err := strconv.Atoi(arg)
	if err != nil {
		return errUsage
	}
	if err := unix.PtraceAttach(pid); err != nil {
		return err
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return err
	}
	return unix.PtraceDetach(pid)
}

func setns(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, 0)
}
