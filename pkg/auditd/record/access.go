package record

import "strings"

// Access is what an event did to the path it names, decoded from the
// syscall, its flags and the PATH records' name types, never from the rule
// key (a host rule's key says nothing about what happened).
type Access string

const (
	// AccessWrite changed the path's content or its directory entry:
	// an open for writing, creating or truncating, creat, truncate, a
	// rename, link, unlink, symlink, mkdir, rmdir, mknod or bind, or any
	// call whose PATH record says it created or deleted a name.
	AccessWrite Access = "write"
	// AccessAttr changed the path's metadata: mode, owner, extended
	// attributes or times.
	AccessAttr Access = "attr"
	// AccessRead looked without changing: a read-only open, stat and
	// access calls, readlink, getxattr and listxattr.
	AccessRead Access = "read"
	// AccessExec executed the path (execve, execveat).
	AccessExec Access = "exec"
	// AccessOther is any other syscall: counted, never silently dropped.
	AccessOther Access = "other"
)

// Accesses lists every access class, the values of the `access` label.
var Accesses = []Access{AccessWrite, AccessAttr, AccessRead, AccessExec, AccessOther}

// Changes reports whether the access changes the path (write or attr), the
// only classes that can be tampering.
func (a Access) Changes() bool { return a == AccessWrite || a == AccessAttr }

// accessBySyscall classes the syscalls whose name alone says what they did.
// It follows the kernel's own classes for watch permissions
// (include/asm-generic/audit_{dir_write,write,change_attr,read}.h), plus the
// stat and access calls a rule without a permission filter also reports.
// Names are go-libaudit's, which are auditd's (ENRICHED logs use those).
var accessBySyscall = map[string]Access{}

func init() {
	classes := map[Access]string{
		AccessWrite: "creat truncate truncate64 ftruncate ftruncate64 fallocate rename renameat renameat2 " +
			"link linkat symlink symlinkat unlink unlinkat mkdir mkdirat rmdir mknod mknodat bind acct swapon",
		AccessAttr: "chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat chown32 fchown32 lchown32 " +
			"setxattr lsetxattr fsetxattr setxattrat removexattr lremovexattr fremovexattr removexattrat " +
			"utime utimes futimesat utimensat utimensat_time64",
		AccessRead: "getxattr lgetxattr fgetxattr getxattrat listxattr llistxattr flistxattr listxattrat " +
			"readlink readlinkat stat lstat fstat stat64 lstat64 fstat64 newfstatat fstatat64 statx " +
			"access faccessat faccessat2 statfs statfs64 name_to_handle_at chdir",
		AccessExec: "execve execveat",
	}
	for class, names := range classes {
		for _, n := range strings.Fields(names) {
			accessBySyscall[n] = class
		}
	}
}

// Access classes the event. A PATH record of name type CREATE or DELETE
// makes it a write whatever the syscall; opens are classed by their flags
// (open: a1, openat and open_by_handle_at: a2, openat2: the OPENAT2
// record, which the kernel writes because the flags are not an argument).
func (e *Event) Access() Access {
	for _, p := range e.Paths {
		if p.NameType == "CREATE" || p.NameType == "DELETE" {
			return AccessWrite
		}
	}
	switch e.Syscall {
	case "open":
		return e.argAccess(e.A1)
	case "openat", "open_by_handle_at":
		return e.argAccess(e.A2)
	case "openat2":
		if !e.HasOpenFlags {
			return AccessOther // no OPENAT2 record: the flags are unknown
		}
		return e.flagsAccess(e.OpenFlags)
	}
	if a, ok := accessBySyscall[e.Syscall]; ok {
		return a
	}
	return AccessOther
}

// argAccess classes an open by the flags argument the kernel printed.
func (e *Event) argAccess(arg string) Access {
	flags, ok := parseHex64(arg)
	if !ok {
		return AccessOther
	}
	return e.flagsAccess(flags)
}

// flagsAccess classes an open by its flags: writing, creating or
// truncating is a write, anything else a read.
func (e *Event) flagsAccess(flags uint64) Access {
	creat, trunc := openCreatTrunc(e.Arch)
	if flags&oAccMode != 0 || flags&(creat|trunc) != 0 {
		return AccessWrite
	}
	return AccessRead
}

// oAccMode masks O_RDONLY (0), O_WRONLY (1) and O_RDWR (2) on every
// architecture.
const oAccMode = 3

// openCreatTrunc returns O_CREAT and O_TRUNC for the architecture the
// record names: the asm-generic values, except where the kernel defines
// its own.
func openCreatTrunc(arch string) (creat, trunc uint64) {
	switch {
	case strings.HasPrefix(arch, "mips"), strings.HasPrefix(arch, "parisc"):
		return 0x100, 0x200
	case strings.HasPrefix(arch, "sparc"), strings.HasPrefix(arch, "alpha"):
		return 0x200, 0x400
	}
	return 0x40, 0x200
}

// parseOctal parses the OPENAT2 record's oflag ("0101").
func parseOctal(s string) (uint64, bool) {
	if s == "" || len(s) > 22 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '7' {
			return 0, false
		}
		n = n<<3 | uint64(c-'0')
	}
	return n, true
}
