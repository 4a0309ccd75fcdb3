package auditd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel gives a task an audit context at fork only once audit has been
// enabled at least once since boot, so a dockerd started before that is
// never audited, whatever rules are installed later. Boot-relative times
// are compared, because the wall clock of audit stamps can jump (a VM
// restored from a snapshot).

// auditHistory is what the kernel log says about audit since boot.
type auditHistory struct {
	// bootEnabled: the kernel was booted with audit=1.
	bootEnabled bool
	// firstEnable is the boot-relative time of the earliest
	// "audit_enabled=1 old=0" change seen; zero when none was seen.
	firstEnable time.Duration
	// complete is set when the log still holds its first record, so a
	// change that is not in it never happened while no daemon held the
	// audit PID (changes made by a daemon go to its log, not the kernel's).
	complete bool
}

// readKmsg reads the kernel log ring without blocking. It uses raw
// syscalls: an *os.File would park a non-blocking read in the runtime
// poller and wait for the next kernel message instead of returning EAGAIN.
func readKmsg(path string) (auditHistory, error) {
	var h auditHistory
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return h, fmt.Errorf("reading the kernel log %s for audit history: %w", path, err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 8192)
	first := true
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return h, nil // read everything there is
		case errors.Is(err, syscall.EPIPE):
			continue // a record was overwritten while reading
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil && first:
			return h, fmt.Errorf("reading the kernel log %s: %w", path, err)
		case err != nil, n <= 0:
			return h, nil
		}
		scanKmsgRecord(buf[:n], &h, first)
		first = false
	}
}

// scanKmsgRecord reads one /dev/kmsg record: "prio,seq,usec,flags;text".
func scanKmsgRecord(rec []byte, h *auditHistory, first bool) {
	semi := bytes.IndexByte(rec, ';')
	if semi < 0 {
		return
	}
	meta := strings.Split(string(rec[:semi]), ",")
	if len(meta) < 3 {
		return
	}
	seq, err1 := strconv.ParseUint(meta[1], 10, 64)
	usec, err2 := strconv.ParseUint(meta[2], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	if first && seq == 0 {
		h.complete = true
	}
	text := rec[semi+1:]
	if !bytes.HasPrefix(text, []byte("audit")) {
		return
	}
	switch {
	case bytes.Contains(text, []byte("state=initialized")) && bytes.Contains(text, []byte("audit_enabled=1")):
		h.bootEnabled = true
	case bytes.Contains(text, []byte("audit_enabled=1")) && bytes.Contains(text, []byte("old=0")):
		if h.firstEnable == 0 {
			h.firstEnable = time.Duration(usec) * time.Microsecond
		}
	}
}

// bootedWithAudit reports whether the kernel command line has audit=1.
func bootedWithAudit(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == "audit=1" {
			return true
		}
	}
	return false
}

// processStart returns the boot-relative start time of pid.
func processStart(procRoot string, pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if err != nil {
		return 0, fmt.Errorf("reading start time of pid %d: %w", pid, err)
	}
	// comm may hold spaces and parentheses; fields restart after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: malformed stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	const startField = 22 - 3 // field 22 (starttime), counted after pid and comm
	if len(fields) <= startField {
		return 0, fmt.Errorf("pid %d: stat has %d fields", pid, len(fields)+2)
	}
	ticks, err := strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: starttime %q: %w", pid, fields[startField], err)
	}
	const clkTck = 100 // USER_HZ is 100 on every Linux ABI
	return time.Duration(ticks) * time.Second / clkTck, nil
}

// sinceBoot is the current boot-relative time.
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// unauditedVerdict is the daemon_unaudited judgement.
type unauditedVerdict struct {
	Unaudited bool
	Known     bool   // false when the history cannot prove it either way
	Reason    string // why, for the finding and the log
}

// judgeUnaudited decides whether a dockerd started at start (boot-relative)
// is audited. enabledNow is the kernel's enabled flag; ourEnable is when
// this process enabled audit (zero if it did not).
func judgeUnaudited(h auditHistory, cmdlineAudit bool, start time.Duration, enabledNow uint32, ourEnable time.Duration) unauditedVerdict {
	if cmdlineAudit || h.bootEnabled {
		return unauditedVerdict{Known: true, Reason: "kernel booted with audit=1"}
	}
	first := h.firstEnable
	if first == 0 || (ourEnable != 0 && ourEnable < first) {
		if h.complete && ourEnable != 0 {
			first = ourEnable
		}
	}
	switch {
	case ourEnable != 0 && start >= ourEnable, first != 0 && start >= first:
		return unauditedVerdict{Known: true, Reason: "dockerd started after audit was first enabled"}
	case first != 0 && h.complete:
		return unauditedVerdict{Unaudited: true, Known: true, Reason: fmt.Sprintf(
			"dockerd started %s after boot, before audit was first enabled (%s after boot)", round(start), round(first))}
	case first == 0 && h.complete && enabledNow == 0:
		return unauditedVerdict{Unaudited: true, Known: true, Reason: "audit has not been enabled since boot; " +
			"dockerd, already running, will not be audited when it is"}
	case first == 0 && ourEnable != 0 && start < ourEnable:
		// dockward found audit disabled and enabled it after dockerd
		// started; the kernel log no longer reaches back far enough to show
		// an earlier enabling, which is the only way dockerd is audited.
		return unauditedVerdict{Unaudited: true, Reason: fmt.Sprintf(
			"dockerd started %s after boot; audit was disabled until dockward enabled it (%s after boot) "+
				"and the kernel log shows no earlier enabling", round(start), round(ourEnable))}
	}
	return unauditedVerdict{Reason: "the kernel log does not show when audit was first enabled"}
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }
