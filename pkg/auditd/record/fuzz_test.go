package record

import (
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/dockward/dockward/internal/testenv"
)

func seedLines(f *testing.F) {
	for _, name := range []string{"../testdata/raw.log", "../testdata/enriched.log"} {
		for _, l := range strings.Split(string(testenv.ReadFile(f, name)), "\n") {
			f.Add(l)
		}
	}
	f.Add("node=h type=UNKNOWN[1327] msg=audit(1.2:3): proctitle=4142\x1dX=\"")
	f.Add(`type=PATH msg=audit(1.2:3): name="unterminated`)
}

// FuzzParseLine: the line parser never panics, and what it accepts has a
// well-formed header and a body that is a suffix of the line.
func FuzzParseLine(f *testing.F) {
	seedLines(f)
	f.Fuzz(func(t *testing.T, line string) {
		h, body, err := ParseLogLine(line)
		if err != nil {
			return
		}
		if h.Msec > 999 || !strings.HasSuffix(strings.TrimRight(line, "\r\n"), body) {
			t.Fatalf("accepted %q as %+v body %q", line, h, body)
		}
		ev := Event{}
		raw, enriched := splitEnriched(body)
		ev.syscallFields(raw)
		ev.enrichedFields(enriched)
		for i := 0; ; {
			_, _, next, ok := nextField(raw, i)
			if !ok {
				break
			}
			if next <= i {
				t.Fatalf("tokenizer did not advance at %d in %q", i, raw)
			}
			i = next
		}
	})
}

// FuzzEventAccess: an event built from any SYSCALL, PATH and third record
// (OPENAT2, CONFIG_CHANGE, a DAEMON_* record...) never panics, and its
// access is one of the bounded classes.
func FuzzEventAccess(f *testing.F) {
	f.Add(`arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=941 a3=1b6 comm="touch" exe="/usr/bin/touch" key="docker"`,
		`item=1 name="/etc/docker/x" inode=1196077 dev=fe:00 nametype=CREATE`, uint16(1305),
		`auid=1000 ses=99 op=remove_rule key="docker" list=4 res=1`)
	f.Add(`arch=c000003e syscall=437 a0=ffffff9c a1=7f a2=7f a3=18 comm="python3"`, `item=0 name="/etc/docker/daemon.json" nametype=NORMAL`,
		uint16(1337), `oflag=0101 mode=0644 resolve=0x0`)
	f.Add(`arch=c000003e syscall=2 a1=zz`, `name=(null)`, uint16(1201), "op=terminate auid=-1 uid=-1 ses=-1 pid=-1 subj=? res=success\x1dAUID=\"unset\"")
	f.Add(`arch=b7 syscall=56`, `name=2F6574`, uint16(1305), `op=set audit_enabled=0 old=1 auid=1000 ses=97 res=1`)
	f.Fuzz(func(t *testing.T, syscall, pathRec string, typ uint16, other string) {
		msgs := []*auparse.AuditMessage{
			{RecordType: auparse.AUDIT_SYSCALL, Sequence: 1, RawData: syscall},
			{RecordType: auparse.AUDIT_PATH, Sequence: 1, RawData: pathRec},
			{RecordType: auparse.AuditMessageType(typ), Sequence: 1, RawData: other},
		}
		var ev Event
		BuildEvent(msgs, &ev)
		if a := ev.Access(); !slices.Contains(Accesses, a) {
			t.Fatalf("access %q is not one of %v", a, Accesses)
		}
		for _, p := range ev.Paths {
			_ = ev.Absolute(p.Name)
		}
		if ev.HasChange && ev.Change.Type != auparse.AuditMessageType(typ) {
			t.Fatalf("change of type %d from a record of type %d", ev.Change.Type, typ)
		}
	})
}
