package reassembly

import (
	"testing"

	"github.com/dockward/dockward/pkg/auditd/record"
)

// TestChangeJoinsItsSyscall: the synthetic EOE ends a CONFIG_CHANGE before
// the SYSCALL record of its serial arrives; the stream joins them again,
// even when another event comes in between, hands the SYSCALL on as the
// change's actor and not as an event, and hands on a change whose SYSCALL
// never comes (the kernel's audit_pid reset) without an actor.
func TestChangeJoinsItsSyscall(t *testing.T) {
	type got struct {
		op, exe string
		actor   bool
	}
	var changes []got
	var events []string
	s, err := New(Options{Counters: newCounters(),
		OnEvent: func(ev *record.Event) { events = append(events, ev.Comm) },
		OnChange: func(c *record.Change, actor *record.Event) {
			g := got{op: c.Op + " " + c.Setting, actor: actor != nil}
			if actor != nil {
				g.exe = actor.Exe
			}
			changes = append(changes, g)
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		`type=CONFIG_CHANGE msg=audit(1.000:10): auid=1000 ses=99 op=remove_rule key="docker" list=4 res=1`,
		`type=SYSCALL msg=audit(1.000:11): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=241 pid=7 comm="touch" exe="/usr/bin/touch" key="docker"`,
		`type=PATH msg=audit(1.000:11): item=0 name="/etc/docker/x" nametype=NORMAL`,
		`type=PROCTITLE msg=audit(1.000:11): proctitle="touch"`,
		`type=SYSCALL msg=audit(1.000:10): arch=c000003e syscall=44 success=yes exit=1080 a0=4 pid=8 auid=1000 comm="auditctl" exe="/usr/sbin/auditctl" key=(null)`,
		`type=PATH msg=audit(1.000:10): item=0 name="/etc/docker" nametype=NORMAL`,
		`type=PROCTITLE msg=audit(1.000:10): proctitle="auditctl"`,
		`type=CONFIG_CHANGE msg=audit(2.000:12): op=set audit_pid=0 old=5000 auid=4294967295 ses=4294967295 res=1`,
		`type=DAEMON_END msg=audit(2.000:3): op=terminate auid=1000 uid=0 ses=5 pid=99 res=success`,
	} {
		s.PushLine(l)
	}
	if len(events) != 1 || events[0] != "touch" {
		t.Errorf("events %v, want only touch's: auditctl's sendto is the change's actor", events)
	}
	if len(changes) != 2 || changes[0] != (got{"remove_rule ", "/usr/sbin/auditctl", true}) || changes[1] != (got{"terminate ", "", false}) {
		t.Errorf("before the wait: changes %+v", changes)
	}
	s.Close()
	if len(changes) != 3 || changes[2] != (got{"set audit_pid", "", false}) {
		t.Errorf("after close: changes %+v, want the audit_pid reset without an actor", changes)
	}
}
