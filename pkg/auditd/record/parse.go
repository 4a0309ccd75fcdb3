// Package record parses kernel audit records: the audit(SEC.MSEC:SERIAL)
// stamp of a netlink record, auditd's RAW and ENRICHED log lines, and the
// fields of one event's records (SYSCALL, PATH, CWD, PROCTITLE, OPENAT2,
// and the CONFIG_CHANGE and DAEMON_* records of changes to audit itself)
// into an Event, which also says what the event did to the paths it names
// (its Access). It reads only the fields dockward uses, with a hand-written
// tokenizer, because go-libaudit's Data() extracts every field with a
// regexp and costs about 20 times its header parse. It knows nothing of
// reassembly, rules or watches, as go-libaudit's auparse does not.
package record

import (
	"errors"
	"fmt"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// EnrichedSeparator starts auditd's interpreted fields in ENRICHED logs.
const EnrichedSeparator = '\x1d'

// Record types the event builder reads.
const (
	typeSyscall   = auparse.AUDIT_SYSCALL
	typePath      = auparse.AUDIT_PATH
	typeCWD       = auparse.AUDIT_CWD
	typeProctitle = auparse.AUDIT_PROCTITLE
	typeEOE       = auparse.AUDIT_EOE
	// typeOpenat2 carries openat2's flags, which are not an argument.
	typeOpenat2      = 1337
	typeConfigChange = auparse.AUDIT_CONFIG_CHANGE
)

// Header is the stamp every record carries: audit(SEC.MSEC:SERIAL).
type Header struct {
	Type   auparse.AuditMessageType
	Sec    int64
	Msec   uint32
	Serial uint32
}

var (
	errNoStamp = errors.New("no audit(SEC.MSEC:SERIAL) stamp")
	errNoType  = errors.New("no type= before msg=")
	// ErrEmptyLine is ParseLogLine's error for an empty line, which is
	// not a malformed record.
	ErrEmptyLine = errors.New("empty line")
)

// ParseStamp parses a kernel record as received over netlink, starting
// with its stamp, and returns the header and the body after "): ".
func ParseStamp(typ auparse.AuditMessageType, s string) (Header, string, error) {
	h := Header{Type: typ}
	if !strings.HasPrefix(s, "audit(") {
		return h, "", errNoStamp
	}
	i := len("audit(")
	sec, i, ok := digits(s, i, '.')
	if !ok {
		return h, "", errNoStamp
	}
	msec, i, ok := digits(s, i, ':')
	if !ok || msec > 999 {
		return h, "", errNoStamp
	}
	serial, i, ok := digits(s, i, ')')
	if !ok || serial > 1<<32-1 || sec > 1<<62 {
		return h, "", errNoStamp
	}
	h.Sec, h.Msec, h.Serial = int64(sec), uint32(msec), uint32(serial)
	return h, strings.TrimLeft(strings.TrimPrefix(s[i:], ":"), " "), nil
}

// digits reads a decimal number at s[i:] that must end with the byte end,
// returning the index after end.
func digits(s string, i int, end byte) (uint64, int, bool) {
	var n uint64
	start := i
	for ; i < len(s) && s[i] != end; i++ {
		c := s[i]
		if c < '0' || c > '9' || i-start > 19 {
			return 0, i, false
		}
		n = n*10 + uint64(c-'0')
	}
	if i == start || i >= len(s) {
		return 0, i, false
	}
	return n, i + 1, true
}

// ParseLogLine parses one auditd log line, RAW or ENRICHED:
// `[node=NAME ]type=NAME msg=audit(SEC.MSEC:SERIAL): fields[\x1dinterpreted]`.
func ParseLogLine(line string) (Header, string, error) {
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return Header{}, "", ErrEmptyLine
	}
	if strings.HasPrefix(line, "node=") {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return Header{}, "", errNoType
		}
		line = line[sp+1:]
	}
	if !strings.HasPrefix(line, "type=") {
		return Header{}, "", errNoType
	}
	sp := strings.IndexByte(line, ' ')
	if sp < 0 || !strings.HasPrefix(line[sp+1:], "msg=") {
		return Header{}, "", errNoType
	}
	typ, err := recordType(line[len("type="):sp])
	if err != nil {
		return Header{}, "", err
	}
	return ParseStamp(typ, line[sp+1+len("msg="):])
}

// recordType maps a type name to its number without a map lookup for the
// record types of a file event.
func recordType(name string) (auparse.AuditMessageType, error) {
	switch name {
	case "SYSCALL":
		return typeSyscall, nil
	case "PATH":
		return typePath, nil
	case "CWD":
		return typeCWD, nil
	case "PROCTITLE":
		return typeProctitle, nil
	case "EOE":
		return typeEOE, nil
	}
	t, err := auparse.GetAuditMessageType(name)
	if err != nil {
		return 0, fmt.Errorf("record type %.40q: %w", name, err)
	}
	return t, nil
}

// splitEnriched separates the raw fields from auditd's interpreted ones.
func splitEnriched(body string) (raw, enriched string) {
	if i := strings.IndexByte(body, EnrichedSeparator); i >= 0 {
		return body[:i], body[i+1:]
	}
	return body, ""
}

// nextField returns the key and value of the field at s[i:] and the index
// after it. Values may be "double quoted", 'single quoted' (whose content
// may hold spaces and '=') or bare; ok is false at the end of s.
func nextField(s string, i int) (key, val string, next int, ok bool) {
	for i < len(s) && (s[i] == ' ' || s[i] == EnrichedSeparator) {
		i++
	}
	if i >= len(s) {
		return "", "", i, false
	}
	k := i
	for i < len(s) && s[i] != '=' && s[i] != ' ' {
		i++
	}
	key = s[k:i]
	if i >= len(s) || s[i] != '=' {
		return key, "", i, true
	}
	i++
	v := i
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		q := s[i]
		end := strings.IndexByte(s[i+1:], q)
		if end < 0 {
			return key, s[v:], len(s), true
		}
		i += end + 2
		return key, s[v:i], i, true
	}
	for i < len(s) && s[i] != ' ' && s[i] != EnrichedSeparator {
		i++
	}
	return key, s[v:i], i, true
}

// decodeString decodes an audit string value: "quoted" as is, hex for
// values the kernel encoded (spaces, quotes, control bytes, non-ASCII),
// and (null)/(none) as empty. NUL bytes (proctitle's argument separators)
// become spaces. ok is false for a malformed value.
func decodeString(v string) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1], true
	}
	if v == "(null)" || v == "(none)" || v == "" {
		return "", true
	}
	if len(v)%2 != 0 {
		return v, false
	}
	out := make([]byte, len(v)/2)
	for i := 0; i < len(out); i++ {
		hi, ok1 := unhex(v[2*i])
		lo, ok2 := unhex(v[2*i+1])
		if !ok1 || !ok2 {
			return v, false
		}
		b := hi<<4 | lo
		if b == 0 {
			b = ' '
		}
		out[i] = b
	}
	return strings.TrimRight(string(out), " "), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// parseInt parses a signed decimal; ok is false on anything else.
func parseInt(s string) (int64, bool) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseUint parses an unsigned decimal such as inode=1196037.
func parseUint(s string) (uint64, bool) {
	n, ok := parseInt(s)
	if !ok || n < 0 {
		return 0, false
	}
	return uint64(n), true
}

// parseHex32 parses a hex number such as arch=c000003e.
func parseHex32(s string) (uint32, bool) {
	if len(s) > 8 {
		return 0, false
	}
	n, ok := parseHex64(s)
	return uint32(n), ok
}

// parseHex64 parses a hex value as the kernel prints syscall arguments
// (no prefix, at most 16 digits).
func parseHex64(s string) (uint64, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d, ok := unhex(s[i])
		if !ok {
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}
