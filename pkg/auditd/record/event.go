package record

import (
	"fmt"
	"iter"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// UnsetID is the kernel's "no id" value (auid of a process that never
// logged in), printed as 4294967295 or -1.
const UnsetID = -1

// Event is one reassembled syscall event, with the fields dockward uses.
type Event struct {
	Serial uint32
	Time   time.Time
	// Key is the first key of the rule that matched.
	Key string
	// Keys are all the keys of a rule that carries several; nil for one.
	Keys      []string
	Arch      string
	Syscall   string
	SyscallNr int64
	Success   bool
	Exit      int64
	PID, PPID int64
	UID, AUID int64 // UnsetID when unset
	// UIDName and AUIDName come from an ENRICHED log; empty otherwise.
	UIDName, AUIDName string
	Comm, Exe         string
	CWD               string
	Proctitle         string
	Paths             []PathItem
	HasSyscall        bool
	// DirFD is set when the syscall's first argument is a directory
	// descriptor other than AT_FDCWD, so relative names are not relative
	// to the working directory.
	DirFD bool
	// A0 to A3 are the first syscall arguments as the kernel prints them
	// (hex): a0 is the directory descriptor of the *at calls, a1 and a2
	// hold the flags of open and openat; ArgValue parses one.
	A0, A1, A2, A3 string
	// OpenFlags are openat2's flags from its OPENAT2 record (HasOpenFlags).
	OpenFlags    uint64
	HasOpenFlags bool
	// Change is the event's CONFIG_CHANGE or DAEMON_* record (HasChange).
	Change    Change
	HasChange bool
}

// keySeparator joins the keys of a rule that carries several in the key
// field of its records (auditctl's AUDIT_KEY_SEPARATOR).
const keySeparator = "\x01"

// atFDCWD is AT_FDCWD (-100) as the kernel prints a0.
const atFDCWD = "ffffff9c"

// PathItem is one PATH record.
type PathItem struct {
	Name     string
	NameType string
	// Inode and Dev identify the object whatever name it was reached by
	// (Dev as the kernel prints it, "fe:00"); Inode is 0 when absent.
	Inode uint64
	Dev   string
}

// Path is the object of the event: the first path that is not a parent
// directory lookup, made absolute where the record allows it.
func (e *Event) Path() string {
	var name string
	for _, p := range e.Paths {
		if p.NameType != "PARENT" && p.Name != "" {
			name = p.Name
			break
		}
	}
	if name == "" && len(e.Paths) > 0 {
		name = e.Paths[0].Name
	}
	return e.absolute(name)
}

// AllPaths lists every path of the event (a rename has a source and a
// target), parents left out.
func (e *Event) AllPaths() []string {
	var out []string
	for _, p := range e.Paths {
		if p.NameType == "PARENT" || p.Name == "" {
			continue
		}
		out = append(out, e.absolute(p.Name))
	}
	return out
}

// Absolute makes a PATH name absolute: against the absolute parent
// directory the kernel recorded, else the working directory, when the
// syscall was relative to it. A name relative to another directory
// descriptor stays relative: joining it with the cwd would name the wrong
// file, and so would its PARENT record, whose name the kernel then prints
// as the cwd (only its inode is right).
func (e *Event) Absolute(name string) string { return e.absolute(name) }

func (e *Event) absolute(name string) string {
	if name == "" || strings.HasPrefix(name, "/") || e.DirFD {
		return name
	}
	for _, p := range e.Paths {
		if p.NameType == "PARENT" && strings.HasPrefix(p.Name, "/") {
			return path.Join(p.Name, name)
		}
	}
	if e.CWD != "" && !e.DirFD {
		return path.Join(e.CWD, name)
	}
	return name
}

// BuildEvent assembles an event from the records of one serial. Bodies
// are the record text after the stamp. It returns the number of fields it
// could not parse, so a malformed record is counted, not lost.
func BuildEvent(msgs []*auparse.AuditMessage, ev *Event) (bad int) {
	*ev = Event{UID: UnsetID, AUID: UnsetID}
	if len(msgs) > 0 {
		ev.Serial, ev.Time = msgs[0].Sequence, msgs[0].Timestamp
		ev.Change.Serial, ev.Change.Time = ev.Serial, ev.Time
	}
	for _, m := range msgs {
		raw, enriched := splitEnriched(m.RawData)
		switch m.RecordType {
		case typeSyscall:
			ev.HasSyscall = true
			bad += ev.syscallFields(raw)
			ev.enrichedFields(enriched)
		case typePath:
			bad += ev.pathFields(raw)
		case typeCWD:
			bad += decodeField(raw, "cwd", &ev.CWD)
		case typeProctitle:
			bad += decodeField(raw, "proctitle", &ev.Proctitle)
		case typeOpenat2:
			if v, ok := field(raw, "oflag"); ok {
				ev.OpenFlags, ev.HasOpenFlags = parseOctal(v)
				if !ev.HasOpenFlags {
					bad++
				}
			}
		case typeConfigChange:
			ev.HasChange = true
			bad += ev.Change.changeFields(m.RecordType, raw, enriched)
		default:
			if IsDaemonRecord(m.RecordType) {
				ev.HasChange = true
				bad += ev.Change.changeFields(m.RecordType, raw, enriched)
			}
		}
	}
	return bad
}

// fields yields the key and raw value of every field of s, in order.
func fields(s string) iter.Seq2[string, string] {
	return func(yield func(key, val string) bool) {
		for i := 0; ; {
			k, v, next, ok := nextField(s, i)
			if !ok || !yield(k, v) {
				return
			}
			i = next
		}
	}
}

// field finds one field's raw value.
func field(s, key string) (string, bool) {
	for k, v := range fields(s) {
		if k == key {
			return v, true
		}
	}
	return "", false
}

// decodeField decodes the string field key of s, when present, into dst,
// and returns 1 when its value is malformed.
func decodeField(s, key string, dst *string) (bad int) {
	v, ok := field(s, key)
	if !ok {
		return 0
	}
	return decodeInto(v, dst)
}

// decodeInto decodes a string value into dst, returning 1 when it is
// malformed (dst then holds the value as it is).
func decodeInto(v string, dst *string) (bad int) {
	s, good := decodeString(v)
	*dst = s
	if !good {
		return 1
	}
	return 0
}

// pathFields reads a PATH record into a new item of ev.Paths.
func (ev *Event) pathFields(raw string) (bad int) {
	var p PathItem
	for k, v := range fields(raw) {
		switch k {
		case "name":
			bad += decodeInto(v, &p.Name)
		case "nametype":
			p.NameType = v
		case "inode":
			var good bool
			if p.Inode, good = parseUint(v); !good {
				bad++
			}
		case "dev":
			p.Dev = v
		}
	}
	ev.Paths = append(ev.Paths, p)
	return bad
}

// syscallFields reads a SYSCALL record's raw fields.
func (ev *Event) syscallFields(raw string) (bad int) {
	var archNr uint32
	var a0 string
	for k, v := range fields(raw) {
		good := true
		switch k {
		case "arch":
			archNr, good = parseHex32(v)
		case "syscall":
			ev.SyscallNr, good = parseInt(v)
		case "a0":
			a0, ev.A0 = v, v
		case "a1":
			ev.A1 = v
		case "a2":
			ev.A2 = v
		case "a3":
			ev.A3 = v
		case "success":
			ev.Success = v == "yes"
		case "exit":
			ev.Exit, good = parseInt(v)
		case "ppid":
			ev.PPID, good = parseInt(v)
		case "pid":
			ev.PID, good = parseInt(v)
		case "uid", "auid":
			good = ev.setID(k == "uid", v)
		case "comm":
			bad += decodeInto(v, &ev.Comm)
		case "exe":
			bad += decodeInto(v, &ev.Exe)
		case "key":
			var s string
			s, good = decodeString(v)
			switch {
			case strings.Contains(s, keySeparator):
				ev.Keys = strings.Split(s, keySeparator)
				ev.Key = ev.Keys[0]
			case s != "":
				ev.Key = s
			}
		}
		if !good {
			bad++
		}
	}
	ev.Arch = archName(archNr)
	ev.Syscall = syscallName(ev.Arch, ev.SyscallNr)
	// The *at syscalls take a directory descriptor first.
	if strings.HasSuffix(ev.Syscall, "at") || strings.HasSuffix(ev.Syscall, "at2") {
		ev.DirFD = a0 != atFDCWD && a0 != ""
	}
	return bad
}

// ArgValue parses argument i (0-3) as the unsigned value the kernel
// printed; ok is false when the record did not carry it or it is not hex.
func (ev *Event) ArgValue(i int) (uint64, bool) {
	if i < 0 || i > 3 {
		return 0, false
	}
	return parseHex64([4]string{ev.A0, ev.A1, ev.A2, ev.A3}[i])
}

// setID stores the uid (or else the auid) field, reporting whether it
// parsed; the kernel's unset id becomes UnsetID.
func (ev *Event) setID(uid bool, v string) bool {
	id, ok := parseID(v)
	if uid {
		ev.UID = id
	} else {
		ev.AUID = id
	}
	return ok
}

// enrichedFields takes the names auditd already resolved.
func (ev *Event) enrichedFields(enriched string) {
	for k, v := range fields(enriched) {
		switch k {
		case "SYSCALL":
			ev.Syscall = v
		case "UID":
			ev.UIDName, _ = decodeString(v)
		case "AUID":
			ev.AUIDName, _ = decodeString(v)
		}
	}
}

// parseID parses a uid-like value; 4294967295 and -1 mean unset.
func parseID(v string) (int64, bool) {
	n, ok := parseInt(v)
	if !ok {
		return UnsetID, false
	}
	if n == 4294967295 || n < 0 {
		return UnsetID, true
	}
	return n, true
}

var archNames = map[uint32]string{}

func init() {
	for a, n := range auparse.AuditArchNames {
		archNames[uint32(a)] = n
	}
}

func archName(nr uint32) string {
	if n, ok := archNames[nr]; ok {
		return n
	}
	return fmt.Sprintf("unknown[%x]", nr)
}

func syscallName(arch string, nr int64) string {
	if n, ok := auparse.AuditSyscalls[arch][int(nr)]; ok {
		return n
	}
	return strconv.FormatInt(nr, 10)
}
