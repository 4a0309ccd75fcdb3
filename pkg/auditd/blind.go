package auditd

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	libaudit "github.com/elastic/go-libaudit/v2"
	"go.uber.org/zap"
)

// AuditdPIDFile is where auditd writes its PID (Debian's /var/run is a
// link to /run, resolved inside the rootfs).
const AuditdPIDFile = "/var/run/auditd.pid"

// selfStatus is read for the CapEff line: the capabilities in effect.
var selfStatus = "/proc/self/status"

// capAuditControl is CAP_AUDIT_CONTROL's bit in CapEff.
const capAuditControl = 30

// hasAuditControl reports whether this process holds CAP_AUDIT_CONTROL.
func hasAuditControl() bool {
	b, err := os.ReadFile(selfStatus)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			return err == nil && caps&(1<<capAuditControl) != 0
		}
	}
	return false
}

// refusedHere reports whether err is the kernel refusing a status or rule
// request because this process is outside the initial PID namespace. The
// kernel answers EPERM there whatever the capabilities, and otherwise only
// to a process without CAP_AUDIT_CONTROL. (/proc/self/status cannot tell
// the namespace itself: a container's own /proc shows only its own.)
func refusedHere(err error) bool {
	return errors.Is(err, syscall.EPERM) && hasAuditControl()
}

// statusFailed handles a failed status request. Outside the host's PID
// namespace (a Swarm task) the failure is permanent: it is said once, with
// what it means, and dockward_audit_kernel_readable stays 0. Other errors
// are logged each time.
func (s *Source) statusFailed(err error) {
	if !refusedHere(err) {
		s.log.Warn("reading the kernel's audit status failed", zap.Error(err))
		return
	}
	s.m.kernelReadable.Set(0)
	s.coverageUnknown(refusedNote)
	if s.refused.Swap(true) {
		return
	}
	s.log.Warn("dockward cannot read the kernel's audit status and rules here: the kernel answers them only in the host's "+
		"initial PID namespace, and this agent runs in another one (a Swarm task, or a container without --pid host). "+
		"Rule coverage (audit.watch_missing), the enabled flag, audit.daemon_unaudited and the kernel's lost counter are not checked; "+
		"events still arrive while an audit daemon runs on the host", zap.Error(err))
}

// refusedNote is why coverage is not judged where the kernel refuses.
const refusedNote = "the kernel answers audit rule and status requests only in the host's initial PID namespace, " +
	"and this agent runs in another one (a Swarm task, or a container without --pid host), so the kernel's audit rules " +
	"are not compared with the watches"

// statusRead records that the kernel answered a status request.
func (s *Source) statusRead() {
	s.m.kernelReadable.Set(1)
	s.refused.Store(false)
}

// checkAuditDaemon exports whether an audit daemon runs on the host and
// says so when that changes: without one the kernel sends its multicast
// group nothing (and auditd's log grows no more), so multicast and file
// modes see no event. It is found from the status (st) when the kernel
// answers, else from auditd's PID file and the host's /proc under the
// rootfs.
func (s *Source) checkAuditDaemon(st *libaudit.AuditStatus) {
	running, pid := false, 0
	if st != nil {
		pid = int(st.PID)
		running = pid != 0 && s.alive(pid)
	} else if b, err := s.d.Host.ReadFile(AuditdPIDFile, 32); err == nil {
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			running = s.d.Host.Exists("/proc/" + strconv.Itoa(pid))
		}
	}
	v := 0.0
	if running {
		v = 1
	}
	s.m.daemonRunning.Set(v)
	if s.Mode() == ModeUnicast {
		return // dockward is the audit daemon
	}
	if prev := s.daemonSeen.Swap(int32(1 + v)); prev == int32(1+v) {
		return
	}
	if running {
		s.log.Info("an audit daemon runs on this host; its events reach dockward", zap.Int("pid", pid))
		return
	}
	s.log.Warn("no audit daemon runs on this host: the kernel sends the audit multicast group nothing without one, "+
		"so no audit event reaches dockward until auditd (with the CIS watches) runs", zap.String("pid_file", AuditdPIDFile))
}
