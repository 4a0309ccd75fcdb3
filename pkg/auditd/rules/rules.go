// Package rules speaks the kernel's audit rule format: it encodes the
// watch rules dockward installs (through go-libaudit's rule builder),
// decodes the kernel's rule list structurally (struct audit_rule_data,
// which go-libaudit only turns back into command-line text), and judges
// whether the rules there cover a path, so rule coverage never depends on
// how an auditctl line was spelled.
package rules

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"syscall"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"
)

// Kernel ABI constants of struct audit_rule_data (include/uapi/linux/audit.h).
const (
	ruleMaxFields   = 64
	ruleMaskWords   = 64
	ruleHeaderBytes = 4*3 + 4*ruleMaskWords + 3*4*ruleMaxFields + 4

	filterExit   = 0x04
	actionAlways = 2

	fieldArch     = 11
	fieldArg0     = 200
	fieldWatch    = 105
	fieldPerm     = 106
	fieldDir      = 107
	fieldFiletype = 108
	fieldExe      = 112
	fieldKey      = 210

	permWrite = 2
	permAttr  = 8

	opEqual = 0x40000000
)

// Comparison operators of a rule field (include/uapi/linux/audit.h).
const (
	opBitMask      = 0x08000000
	opLessThan     = 0x10000000
	opGreaterThan  = 0x20000000
	opNotEqual     = 0x30000000
	opBitTest      = 0x48000000
	opLessEqual    = 0x50000000
	opGreaterEqual = 0x60000000
)

// holds reports whether value v passes the field comparison op x.
func holds(op, v, x uint32) bool {
	switch op {
	case opEqual:
		return v == x
	case opNotEqual:
		return v != x
	case opLessThan:
		return v < x
	case opGreaterThan:
		return v > x
	case opLessEqual:
		return v <= x
	case opGreaterEqual:
		return v >= x
	case opBitMask:
		return v&x != 0
	case opBitTest:
		return v&x == x
	}
	return false
}

// keySeparator joins several keys of one rule (auditctl's AUDIT_KEY_SEPARATOR).
const keySeparator = "\x01"

// Watch is a file watch rule: `-w PATH -p wa -k KEY`. Path is the path as
// the kernel resolves it.
type Watch struct {
	Path string
	Key  string
}

// Rule is one rule of the kernel's list, decoded from its binary form.
type Rule struct {
	Filter, Action uint32
	// Path is the watched path of a path= (file) or dir= (tree) field.
	Path string
	Dir  bool
	Perm uint32
	Keys []string
	// AllSyscalls is set when the rule's syscall mask selects every
	// syscall (a -w watch, or -a without -S).
	AllSyscalls bool
	// Restricted is set when the rule is limited to some syscalls, or
	// carries filters other than arch, path, dir, perm, filetype and key,
	// so it covers only some writers.
	Restricted bool
	// Arch is the value of the rule's arch= field (an AUDIT_ARCH_*
	// constant), 0 when it has none; HasArch tells the two apart.
	Arch    uint32
	HasArch bool
	// Mask is the syscall bitmask: bit n of word n/32 selects syscall n.
	Mask [ruleMaskWords]uint32
	// Filters are the fields other than arch, path, dir, perm, filetype
	// and key, in order: what limits a syscall rule to some calls.
	Filters []Filter
}

// Filter is one field comparison of a rule (-F FIELD OP VALUE); for a
// string-valued field, Value is the string's length.
type Filter struct {
	Field, Op, Value uint32
}

// Decode decodes one AUDIT_LIST_RULES payload structurally. Strings in
// the buffer follow the order of the string-valued fields.
func Decode(wire []byte) (Rule, error) {
	var r Rule
	if len(wire) < ruleHeaderBytes {
		return r, fmt.Errorf("audit rule of %d bytes is shorter than its %d-byte header", len(wire), ruleHeaderBytes)
	}
	u32 := func(off int) uint32 { return binary.NativeEndian.Uint32(wire[off:]) }
	r.Filter, r.Action = u32(0), u32(4)
	// The last mask word is not compared, as auditctl and go-libaudit do:
	// it holds syscall numbers no architecture has.
	r.AllSyscalls = true
	for w := 0; w < ruleMaskWords; w++ {
		r.Mask[w] = u32(12 + 4*w)
		if w < ruleMaskWords-1 && r.Mask[w] != 0xFFFFFFFF && r.AllSyscalls {
			r.AllSyscalls = false
			r.Restricted = true
		}
	}
	count := int(u32(8))
	if count > ruleMaxFields {
		return r, fmt.Errorf("audit rule has %d fields, more than the kernel's %d", count, ruleMaxFields)
	}
	fieldsOff := 12 + 4*ruleMaskWords
	valuesOff := fieldsOff + 4*ruleMaxFields
	flagsOff := valuesOff + 4*ruleMaxFields
	bufLen := int(u32(flagsOff + 4*ruleMaxFields))
	buf := wire[ruleHeaderBytes:]
	if bufLen > len(buf) {
		return r, fmt.Errorf("audit rule string buffer claims %d bytes, has %d", bufLen, len(buf))
	}
	buf = buf[:bufLen]
	for i := 0; i < count; i++ {
		field, value, op := u32(fieldsOff+4*i), u32(valuesOff+4*i), u32(flagsOff+4*i)
		var str string
		if stringField(field) {
			if int(value) > len(buf) {
				return r, fmt.Errorf("audit rule field %d claims a %d-byte string, %d left", field, value, len(buf))
			}
			str, buf = string(buf[:value]), buf[value:]
		}
		switch field {
		case fieldWatch, fieldDir:
			r.Path, r.Dir = str, field == fieldDir
			if op != opEqual {
				r.Restricted = true
			}
		case fieldKey:
			r.Keys = append(r.Keys, strings.Split(str, keySeparator)...)
		case fieldPerm:
			r.Perm = value
		case fieldArch:
			r.Arch, r.HasArch = value, op == opEqual
			if op != opEqual {
				r.Filters = append(r.Filters, Filter{field, op, value})
			}
		case fieldFiletype:
		default:
			r.Restricted = true
			r.Filters = append(r.Filters, Filter{field, op, value})
		}
	}
	return r, nil
}

// List reads the kernel's rule list through ctl and decodes every rule.
func List(ctl *libaudit.AuditClient) ([]Rule, error) {
	wires, err := ctl.GetRules()
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's audit rules: %w", err)
	}
	out := make([]Rule, 0, len(wires))
	for _, w := range wires {
		r, err := Decode(w)
		if err != nil {
			return nil, fmt.Errorf("decoding a kernel audit rule: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// stringField lists the fields whose value is a length into the buffer.
func stringField(f uint32) bool {
	switch {
	case f >= 13 && f <= 17, f >= 19 && f <= 23: // LSM subject and object fields
		return true
	}
	switch f {
	case fieldWatch, fieldDir, fieldExe, fieldKey:
		return true
	}
	return false
}

// Covers reports whether the rule audits writes to path: an unrestricted
// always,exit rule with write permission on the path itself, or a dir=
// rule on a directory containing it.
func (r Rule) Covers(path string) bool {
	if r.Filter != filterExit || r.Action != actionAlways || r.Restricted || r.Path == "" {
		return false
	}
	if r.Perm != 0 && r.Perm&permWrite == 0 {
		return false
	}
	return r.Path == path || (r.Dir && Under(path, r.Path))
}

// Call is one syscall a syscall rule may audit: its number on an
// architecture, and when Arg0 is set, the first argument's value that
// matters (ptrace's request, bpf's command).
type Call struct {
	Arch   uint32
	Nr     int
	Arg0   uint32
	HasArg bool
}

// CoversCall reports whether the rule audits every such call, successful
// or not, by any process: an always,exit rule on the call's architecture
// (or on none) whose mask selects the syscall, with no path and no filter
// but comparisons of a0 that the call's first argument passes.
func (r Rule) CoversCall(c Call) bool {
	if r.Filter != filterExit || r.Action != actionAlways || r.Path != "" {
		return false
	}
	if r.HasArch && r.Arch != c.Arch {
		return false
	}
	if c.Nr < 0 || c.Nr >= 32*ruleMaskWords || r.Mask[c.Nr/32]&(1<<(c.Nr%32)) == 0 {
		return false
	}
	for _, f := range r.Filters {
		if f.Field == fieldArg0 && c.HasArg && holds(f.Op, c.Arg0, f.Value) {
			continue
		}
		return false
	}
	return true
}

// BuildLine builds the kernel rule for one auditctl rule line (`-a
// always,exit -F arch=b64 -S mount -k KEY`, `-w PATH -p wa -k KEY`)
// through go-libaudit's flag parser and rule builder.
func BuildLine(line string) ([]byte, error) {
	r, err := flags.Parse(line)
	if err != nil {
		return nil, fmt.Errorf("audit rule %q: %w", line, err)
	}
	wf, err := rule.Build(r)
	if err != nil {
		return nil, fmt.Errorf("audit rule %q: %w", line, err)
	}
	return wf, nil
}

// HasKey reports whether the rule carries key.
func (r Rule) HasKey(key string) bool {
	for _, k := range r.Keys {
		if k == key {
			return true
		}
	}
	return false
}

// Build builds the kernel rule for a watch: `-w PATH -p wa -k KEY`
// through go-libaudit's flag parser and rule builder, which choose a dir=
// rule for directories and path= otherwise.
func Build(w Watch) ([]byte, error) {
	if strings.ContainsAny(w.Path, " \t\n\"'\\") {
		return buildDirect(w)
	}
	return BuildLine(fmt.Sprintf("-w %s -p wa -k %s", w.Path, w.Key))
}

// buildDirect builds the rule from go-libaudit's rule type directly, for
// paths the flag parser would split.
func buildDirect(w Watch) ([]byte, error) {
	wf, err := rule.Build(&rule.FileWatchRule{Type: rule.FileWatchRuleType, Path: w.Path,
		Permissions: []rule.AccessType{rule.WriteAccessType, rule.AttributeChangeAccessType}, Keys: []string{w.Key}})
	if err != nil {
		return nil, fmt.Errorf("audit rule for %s: %w", w.Path, err)
	}
	return wf, nil
}

// ErrExists is Add's error when the kernel already holds an identical rule.
// It wraps syscall.EEXIST, the errno the kernel answered.
var ErrExists = fmt.Errorf("rule exists: %w", syscall.EEXIST)

// libauditExists is the text of the error go-libaudit's AddRule makes of
// the kernel's EEXIST: a bare errors.New that drops the errno, so its text
// is all there is to tell it by. Add is the one place that reads it.
const libauditExists = "rule exists"

// Add installs one rule (built by Build) through ctl. An identical rule
// already in the kernel is ErrExists, for errors.Is.
func Add(ctl *libaudit.AuditClient, wire []byte) error {
	return addError(ctl.AddRule(wire))
}

func addError(err error) error {
	if err != nil && err.Error() == libauditExists {
		return ErrExists
	}
	return err
}

// Coverage is the judgement of one watch against the kernel's rules.
type Coverage struct {
	Watch   Watch
	Exists  bool // the path exists on this host
	Covered bool
	// ByKey is the key of the first covering rule (which sets the key
	// events carry); empty when not covered.
	ByKey string
}

// CheckCoverage judges every watch against the decoded kernel rules. exists
// reports whether a path exists on the host.
func CheckCoverage(ws []Watch, rules []Rule, exists func(string) bool) []Coverage {
	out := make([]Coverage, 0, len(ws))
	for _, w := range ws {
		c := Coverage{Watch: w, Exists: exists(w.Path)}
		for _, r := range rules {
			if r.Covers(w.Path) {
				c.Covered = true
				if len(r.Keys) > 0 {
					c.ByKey = r.Keys[0]
				}
				break
			}
		}
		out = append(out, c)
	}
	return out
}

// Same reports whether two decoded rules are the same rule to the kernel
// (list, action, fields, syscalls and keys), however they were written.
func (r Rule) Same(o Rule) bool {
	return r.Filter == o.Filter && r.Action == o.Action && r.Path == o.Path && r.Dir == o.Dir && r.Perm == o.Perm &&
		r.Arch == o.Arch && r.HasArch == o.HasArch && r.Mask == o.Mask && slices.Equal(r.Filters, o.Filters) &&
		slices.Equal(r.Keys, o.Keys)
}

// BuiltFor reports whether r is exactly the rule Build makes for w.
func (r Rule) BuiltFor(w Watch) bool {
	return r.Filter == filterExit && r.Action == actionAlways && !r.Restricted &&
		r.Path == w.Path && r.Perm == permWrite|permAttr && r.HasKey(w.Key)
}

// Under reports whether path lies strictly inside dir, as a dir= rule
// sees it.
func Under(path, dir string) bool {
	if dir == "/" {
		return path != "/"
	}
	return strings.HasPrefix(path, dir+"/")
}
