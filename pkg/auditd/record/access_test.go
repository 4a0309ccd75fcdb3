package record

import (
	"strconv"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/dockward/dockward/internal/testenv"
)

// The CIS recordings (testdata/cis, made by record.sh): Debian's auditd
// with the CIS watches written without -p, one real event of every access
// class, routine Docker use and tampering with audit, in auditd's RAW and
// ENRICHED logs and as the kernel sent them over netlink.
var cisRecordings = []string{"../testdata/cis/raw.log.gz", "../testdata/cis/enriched.log.gz", "../testdata/cis/netlink.txt.gz"}

// recordedEvents reads a recording and builds one event per serial (the
// records of a serial are grouped as they come; no reassembler).
func recordedEvents(t *testing.T, name string) []Event {
	t.Helper()
	// auditd stamps its DAEMON_* records with a counter of its own, which
	// may repeat a serial: each is an event of its own, as in reassembly.
	type group struct {
		serial uint32
		daemon int
	}
	var order []group
	groups := map[group][]*auparse.AuditMessage{}
	for _, line := range testenv.Lines(t, name) {
		h, body, err := parseRecordingLine(line, strings.HasSuffix(name, ".txt.gz"))
		if err != nil {
			t.Fatalf("%s: %v in %q", name, err, line)
		}
		g := group{serial: h.Serial}
		if IsDaemonRecord(h.Type) {
			g.daemon = len(order) + 1
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], &auparse.AuditMessage{RecordType: h.Type, Sequence: h.Serial, RawData: body})
	}
	out := make([]Event, len(order))
	for i, g := range order {
		if bad := BuildEvent(groups[g], &out[i]); bad > 0 {
			t.Errorf("%s: serial %d has %d fields that do not parse", name, g.serial, bad)
		}
	}
	return out
}

// parseRecordingLine parses a log line, or a netlink record as recorded
// ("TYPE audit(...): body").
func parseRecordingLine(line string, netlink bool) (Header, string, error) {
	if !netlink {
		return ParseLogLine(line)
	}
	typ, rest, _ := strings.Cut(line, " ")
	n, err := strconv.Atoi(typ)
	if err != nil {
		return Header{}, "", err
	}
	return ParseStamp(auparse.AuditMessageType(n), rest)
}

// accessCase picks recorded events by command, syscall and a path suffix
// (and the flags argument, for opens that differ only there).
type accessCase struct {
	name, comm, syscall, suffix, a2 string
	want                            Access
}

var accessCases = []accessCase{
	{"touch creates (openat O_WRONLY|O_CREAT)", "touch", "openat", "-touch", "941", AccessWrite},
	{"sh > file (O_WRONLY|O_CREAT|O_TRUNC)", "sh", "openat", "-touch", "241", AccessWrite},
	{"sh >> file (O_WRONLY|O_CREAT|O_APPEND)", "sh", "openat", "-touch", "441", AccessWrite},
	{"open O_RDWR", "python3", "openat", "-touch", "80002", AccessWrite},
	{"truncate -s 0 (open O_WRONLY|O_CREAT)", "truncate", "openat", "-touch", "", AccessWrite},
	{"truncate(2)", "python3", "truncate", "-touch", "", AccessWrite},
	{"creat(2)", "python3", "creat", "-creat", "", AccessWrite},
	{"openat2 O_WRONLY|O_CREAT (flags in the OPENAT2 record)", "python3", "openat2", "-openat2", "", AccessWrite},
	{"mv renames (renameat2)", "mv", "renameat2", "-moved", "", AccessWrite},
	{"rename(2)", "python3", "rename", "-renamed", "", AccessWrite},
	{"mv from /tmp into the watched directory", "mv", "renameat2", "-from-tmp", "", AccessWrite},
	{"hard link (linkat)", "ln", "linkat", "-hard", "", AccessWrite},
	{"symlink (symlinkat)", "ln", "symlinkat", "-sym", "", AccessWrite},
	{"rm (unlinkat)", "rm", "unlinkat", "-hard", "", AccessWrite},
	{"unlink(2)", "python3", "unlink", "-creat", "", AccessWrite},
	{"mkdir", "mkdir", "mkdir", "-dir", "", AccessWrite},
	{"rmdir", "rmdir", "rmdir", "-dir", "", AccessWrite},
	{"mkfifo (mknodat)", "mkfifo", "mknodat", "-fifo", "", AccessWrite},
	{"a name relative to the cwd", "touch", "openat", "-relative", "", AccessWrite},
	{"rm -r: unlinkat relative to a directory fd", "rm", "unlinkat", "leaf", "", AccessWrite},
	{"touch -m of an existing file (open O_WRONLY|O_CREAT)", "touch", "openat", "-renamed", "", AccessWrite},
	{"chmod (fchmodat)", "chmod", "fchmodat", "-renamed", "", AccessAttr},
	{"chown (fchownat)", "chown", "fchownat", "-renamed", "", AccessAttr},
	{"setxattr", "python3", "setxattr", "-renamed", "", AccessAttr},
	{"removexattr", "python3", "removexattr", "-renamed", "", AccessAttr},
	{"utime (utimensat, a rule without -p)", "python3", "utimensat", "-renamed", "", AccessAttr},
	{"cat daemon.json (openat O_RDONLY)", "cat", "openat", "/etc/docker/daemon.json", "", AccessRead},
	{"cat a unit file", "cat", "openat", "/docker.service", "", AccessRead},
	{"openat2 O_RDONLY", "python3", "openat2", "/etc/docker/daemon.json", "", AccessRead},
	{"ls -la /var/lib/docker (directory open)", "ls", "openat", "/var/lib/docker", "", AccessRead},
	{"ls -la (lgetxattr)", "ls", "lgetxattr", "/var/lib/docker", "", AccessRead},
	{"getxattr", "python3", "getxattr", "/etc/docker/daemon.json", "", AccessRead},
	{"listxattr", "python3", "listxattr", "/etc/docker/daemon.json", "", AccessRead},
	{"readlink", "readlink", "readlink", "-sym", "", AccessRead},
	{"stat (statx, a rule without -p)", "stat", "statx", "/etc/docker/daemon.json", "", AccessRead},
	{"test -r (newfstatat)", "test", "newfstatat", "/etc/docker/daemon.json", "", AccessRead},
	{"test -r (access)", "test", "access", "/etc/docker/daemon.json", "", AccessRead},
	{"os.lstat of a symlink (newfstatat)", "python3", "newfstatat", "-sym", "", AccessRead},
	{"the docker CLI reading its own binary", "docker", "openat", "/usr/local/bin/docker", "", AccessRead},
	{"execve of the docker CLI", "docker", "execve", "/usr/local/bin/docker", "", AccessExec},
	{"execve of runc", "runc", "execve", "/usr/sbin/runc", "", AccessExec},
	{"execveat of runc through a descriptor", "runc", "execveat", "", "", AccessExec},
	{"auditctl -w: the rule's path looked up in sendto", "auditctl", "sendto", "/etc/docker", "", AccessOther},
}

// TestRecordedAccessClasses classes real events of every kind, in all three
// recordings: the class must not depend on the log format.
func TestRecordedAccessClasses(t *testing.T) {
	for _, name := range cisRecordings {
		evs := recordedEvents(t, name)
		t.Run(strings.TrimSuffix(name[strings.LastIndexByte(name, '/')+1:], ".gz"), func(t *testing.T) {
			for _, c := range accessCases {
				n := 0
				for i := range evs {
					ev := &evs[i]
					if !ev.HasSyscall || ev.Comm != c.comm || ev.Syscall != c.syscall || (c.a2 != "" && ev.A2 != c.a2) ||
						!hasPathSuffix(ev, c.suffix) {
						continue
					}
					n++
					if got := ev.Access(); got != c.want {
						t.Errorf("%s: serial %d (%s %s a2=%s paths %v) is %q, want %q", c.name, ev.Serial,
							ev.Comm, ev.Syscall, ev.A2, ev.AllPaths(), got, c.want)
					}
				}
				if n == 0 {
					t.Errorf("%s: no %s %s event on *%s in the recording", c.name, c.comm, c.syscall, c.suffix)
				}
			}
		})
	}
}

func hasPathSuffix(ev *Event, suffix string) bool {
	for _, p := range ev.Paths {
		if p.NameType != "PARENT" && strings.HasSuffix(ev.Absolute(p.Name), suffix) {
			return true
		}
	}
	return false
}

// TestOpenFlags covers the flag combinations no recorded program uses, and
// the architectures whose O_CREAT differs.
func TestOpenFlags(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		want Access
	}{
		{"O_RDONLY|O_CREAT", Event{Arch: "x86_64", Syscall: "openat", A2: "40"}, AccessWrite},
		{"O_RDONLY|O_TRUNC", Event{Arch: "x86_64", Syscall: "open", A1: "200"}, AccessWrite},
		{"O_RDONLY|O_DIRECTORY|O_CLOEXEC", Event{Arch: "x86_64", Syscall: "openat", A2: "90800"}, AccessRead},
		{"O_NOCTTY (0x100) is not O_CREAT on x86_64", Event{Arch: "x86_64", Syscall: "openat", A2: "100"}, AccessRead},
		{"but is on mips", Event{Arch: "mipsel", Syscall: "openat", A2: "100"}, AccessWrite},
		{"open_by_handle_at O_RDWR", Event{Arch: "aarch64", Syscall: "open_by_handle_at", A2: "2"}, AccessWrite},
		{"openat2 without its OPENAT2 record", Event{Arch: "x86_64", Syscall: "openat2"}, AccessOther},
		{"openat2 O_RDONLY", Event{Arch: "x86_64", Syscall: "openat2", HasOpenFlags: true}, AccessRead},
		{"a flags argument that is not hex", Event{Arch: "x86_64", Syscall: "openat", A2: "zz"}, AccessOther},
		{"an unknown syscall", Event{Arch: "x86_64", Syscall: "999"}, AccessOther},
		{"an unknown syscall that created a name", Event{Arch: "x86_64", Syscall: "999",
			Paths: []PathItem{{Name: "/etc/docker/x", NameType: "CREATE"}}}, AccessWrite},
	}
	for _, c := range cases {
		if got := c.ev.Access(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if v, ok := parseOctal("0101"); !ok || v != 0o101 {
		t.Errorf("parseOctal(0101) = %o %v", v, ok)
	}
	for _, bad := range []string{"", "08", "0x1"} {
		if _, ok := parseOctal(bad); ok {
			t.Errorf("parseOctal(%q) accepted it", bad)
		}
	}
}

// changeCase finds a recorded change by its op, setting and auid.
type changeCase struct {
	name, op, setting string
	value, old, auid  int64
	// actor is the exe of the SYSCALL record of the same serial, "" when
	// the kernel wrote none.
	actor string
	// min is how many such records the recording must hold.
	min int
	// in restricts the case to recordings whose name contains it.
	in string
}

var changeCases = []changeCase{
	{"auditctl -W one rule", "remove_rule", "", 0, 0, 1000, "/usr/sbin/auditctl", 14, ""},
	{"auditctl -b 100", "set", "audit_backlog_limit", 100, 8192, 1000, "/usr/sbin/auditctl", 1, ""},
	{"auditctl --backlog_wait_time 0", "set", "audit_backlog_wait_time", 0, 15000, 1000, "/usr/sbin/auditctl", 1, ""},
	{"auditctl -f 0", "set", "audit_failure", 0, 1, 1000, "/usr/sbin/auditctl", 1, ""},
	{"auditctl -r 100", "set", "audit_rate_limit", 100, 0, 1000, "/usr/sbin/auditctl", 1, ""},
	{"auditctl -e 0", "set", "audit_enabled", 0, 1, 1000, "/usr/sbin/auditctl", 1, ""},
	{"auditd stops (SIGTERM)", "set", "audit_pid", 0, -1, UnsetID, "", 1, "netlink"},
	{"auditd reconfigured (SIGHUP by auid 1000)", "reconfigure", "", 0, 0, 1000, "", 1, ".log"},
	{"auditd ends (SIGTERM by auid 1000)", "terminate", "", 0, 0, 1000, "", 1, ".log"},
	{"auditd starts", "start", "", 0, 0, UnsetID, "", 2, ".log"},
}

// TestRecordedChanges parses the real CONFIG_CHANGE and DAEMON_* records of
// tampering with audit, and the actor the same serial's SYSCALL names.
func TestRecordedChanges(t *testing.T) {
	for _, name := range cisRecordings {
		evs := recordedEvents(t, name)
		for _, c := range changeCases {
			if !strings.Contains(name, c.in) {
				continue
			}
			n := 0
			for i := range evs {
				ch := &evs[i].Change
				if !evs[i].HasChange || ch.Op != c.op || ch.Setting != c.setting || ch.AUID != c.auid ||
					(c.setting != "" && ch.Value != c.value) || (c.old >= 0 && c.setting != "" && ch.Old != c.old) {
					continue
				}
				n++
				if !ch.OK || (c.actor != "" && evs[i].Exe != c.actor) || (c.actor == "" && c.in == "netlink" && evs[i].HasSyscall) {
					t.Errorf("%s: %s: serial %d: %+v, exe %q", name, c.name, evs[i].Serial, *ch, evs[i].Exe)
				}
			}
			if n < c.min {
				t.Errorf("%s: %s: %d records, want at least %d", name, c.name, n, c.min)
			}
		}
	}
}
