package record

import (
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// Change is a change to kernel audit itself: a CONFIG_CHANGE record (the
// kernel's own: a rule added or removed, a setting changed) or a DAEMON_*
// record (auditd's: it started, was reconfigured, ended). A CONFIG_CHANGE
// is written during the syscall that made the change, so the SYSCALL record
// of the same serial names the process that made it; a DAEMON_* record
// carries what auditd knows of the process that signalled it.
type Change struct {
	Type   auparse.AuditMessageType
	Serial uint32
	Time   time.Time
	// Op is the record's op: set, add_rule, remove_rule, updated_rules...
	// for CONFIG_CHANGE; start, reconfigure, terminate, abort... for
	// DAEMON_* records.
	Op string
	// Setting is what an op=set record changed (audit_enabled, audit_pid,
	// audit_backlog_limit, audit_backlog_wait_time, audit_failure,
	// audit_rate_limit); Value and Old are its new and previous values.
	Setting    string
	Value, Old int64
	// Key is the key of the rule added or removed, "" for a rule without
	// one (the first key of a rule that carries several).
	Key string
	// Path is the watched path of a rule the kernel removed by itself
	// because its path was deleted or moved.
	Path string
	// OK is false when the kernel refused the change (res=0, a locked
	// configuration) or auditd reports a failure.
	OK bool
	// AUID, PID and UID are the record's own actor fields, UnsetID when
	// absent or unknown (-1).
	AUID, PID, UID int64
	// AUIDName is the login name an ENRICHED log gives.
	AUIDName string
}

// IsDaemonRecord reports whether t is one of auditd's own DAEMON_* types.
func IsDaemonRecord(t auparse.AuditMessageType) bool {
	return t >= auparse.AUDIT_DAEMON_START && t <= auparse.AUDIT_LAST_DAEMON
}

// changeFields reads a CONFIG_CHANGE or DAEMON_* record.
func (c *Change) changeFields(typ auparse.AuditMessageType, raw, enriched string) (bad int) {
	*c = Change{Type: typ, Serial: c.Serial, Time: c.Time, AUID: UnsetID, PID: UnsetID, UID: UnsetID}
	for k, v := range fields(raw) {
		good := true
		switch {
		case k == "op":
			c.Op = v
		case k == "res":
			c.OK = v == "1" || v == "success"
		case k == "key":
			var s string
			bad += decodeInto(v, &s)
			c.Key, _, _ = strings.Cut(s, keySeparator)
		case k == "path":
			bad += decodeInto(v, &c.Path)
		case k == "auid":
			c.AUID, good = parseID(v)
		case k == "pid":
			c.PID, good = parseID(v)
		case k == "uid":
			c.UID, good = parseID(v)
		case k == "old":
			c.Old, good = parseInt(v)
		case strings.HasPrefix(k, "audit_") && c.Setting == "":
			// op=set audit_enabled=0 old=1 (older kernels omit op=set).
			c.Setting = k
			c.Value, good = parseInt(v)
		}
		if !good {
			bad++
		}
	}
	if c.Setting != "" && c.Op == "" {
		c.Op = "set"
	}
	for k, v := range fields(enriched) {
		if k == "AUID" {
			c.AUIDName, _ = decodeString(v)
		}
	}
	return bad
}
