// Package reassembly turns the kernel's audit records into events. It
// wraps go-libaudit's Reassembler and netlink client and keeps every
// workaround they need behind one type: a synthetic EOE for records that
// are events of their own (else each would hold every later event back
// until the reassembly timeout), sequence-gap accounting of its own
// (go-libaudit's lost figure wraps to about 2^32 on one late serial), and
// reflection on the netlink client's private socket descriptor for a
// receive timeout and a bigger buffer. Callers push records and get
// parsed events (record.Event) and counter increments; they never see the
// reassembler, its messages or its callbacks.
package reassembly

import (
	"fmt"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dockward/dockward/pkg/auditd/record"
)

// Counters are the series a Stream increments; the audit source owns and
// registers them.
type Counters struct {
	// Records counts every record pushed, parsed or not.
	Records prometheus.Counter
	// ParseErrors counts records and fields that could not be parsed.
	ParseErrors prometheus.Counter
	// SequenceGaps counts serials that never arrived.
	SequenceGaps prometheus.Counter
	// LateRecords counts events that arrived after a later serial.
	LateRecords prometheus.Counter
}

// Options configure a Stream.
type Options struct {
	Counters Counters
	// Timeout bounds how long an incomplete event is held (default 2s).
	Timeout time.Duration
	// OnEvent sees every event that has a SYSCALL record. The event is
	// reused for the next one: copy what must outlive the call.
	OnEvent func(ev *record.Event)
	// OnChange, when set, sees every change to audit itself: each
	// CONFIG_CHANGE record, with the SYSCALL event of its serial as actor
	// (nil when none came within ChangeActorWait), and each of auditd's
	// DAEMON_* records (actor nil: the record holds what auditd knows).
	// Both are reused after the call. A SYSCALL event that is a change's
	// actor is not passed to OnEvent: it is the audit configuration call
	// (auditctl's sendto), whatever paths it looked up.
	OnChange func(c *record.Change, actor *record.Event)
}

// ChangeActorWait is how long a CONFIG_CHANGE waits for its SYSCALL
// record. The kernel writes that record when the syscall returns, right
// after; it writes none for a change made outside a syscall it audits.
const ChangeActorWait = 250 * time.Millisecond

// maxPendingChanges bounds the changes waiting for their actor; beyond it
// the oldest is handed on without one.
const maxPendingChanges = 64

// Stream reassembles records into events: header parse, go-libaudit's
// Reassembler, gap accounting, then the event's fields. It is not safe for
// concurrent use: one goroutine pushes records and calls Maintain.
type Stream struct {
	reasm *libaudit.Reassembler
	// done receives the reassembler's callbacks; it is a separate type so
	// that go-libaudit's Stream interface is not part of this one's API.
	done completion
}

// maxInFlight is how many events the reassembler holds while waiting for
// their last record; beyond it the oldest is emitted as it is.
const maxInFlight = 256

// New builds a stream.
func New(o Options) (*Stream, error) {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	s := &Stream{done: completion{c: o.Counters, onEvent: o.OnEvent, onChange: o.OnChange,
		gaps: newGapTracker(), pending: map[uint32]pendingChange{}, now: time.Now}}
	r, err := libaudit.NewReassembler(maxInFlight, o.Timeout, &s.done)
	if err != nil {
		return nil, fmt.Errorf("audit reassembler: %w", err)
	}
	s.reasm = r
	return s, nil
}

// PushKernel feeds one netlink record. data is copied.
func (s *Stream) PushKernel(typ auparse.AuditMessageType, data []byte) {
	s.done.c.Records.Inc()
	h, body, err := record.ParseStamp(typ, string(data))
	if err != nil {
		s.done.c.ParseErrors.Inc()
		return
	}
	s.push(h, body)
}

// PushLine feeds one auditd log line (RAW or ENRICHED).
func (s *Stream) PushLine(line string) {
	s.done.c.Records.Inc()
	h, body, err := record.ParseLogLine(line)
	if err != nil {
		if err != record.ErrEmptyLine {
			s.done.c.ParseErrors.Inc()
		}
		return
	}
	s.push(h, body)
}

func (s *Stream) push(h record.Header, body string) {
	msg := &auparse.AuditMessage{
		RecordType: h.Type,
		Timestamp:  time.Unix(h.Sec, int64(h.Msec)*int64(time.Millisecond)),
		Sequence:   h.Serial,
		RawData:    body,
	}
	s.reasm.PushMessage(msg)
	// Only the records the kernel writes at syscall exit (SYSCALL and what
	// follows it) are ended by an EOE. Any other record (CONFIG_CHANGE,
	// EVENT_LISTENER, AVC, USER_*...) is an event of its own, or was written
	// during a syscall before its SYSCALL record: end it now rather than
	// after the reassembly timeout, which would hold every later event back
	// (the reassembler emits in serial order).
	if h.Type != auparse.AUDIT_EOE && !exitRecord(h.Type) {
		s.reasm.PushMessage(&auparse.AuditMessage{RecordType: auparse.AUDIT_EOE, Sequence: h.Serial, Timestamp: msg.Timestamp})
	}
}

// exitRecord reports whether the kernel writes records of type t at
// syscall exit, after SYSCALL and before EOE (audit_log_exit).
func exitRecord(t auparse.AuditMessageType) bool {
	switch t {
	case auparse.AUDIT_SYSCALL, auparse.AUDIT_PATH, auparse.AUDIT_IPC, auparse.AUDIT_SOCKETCALL,
		auparse.AUDIT_SOCKADDR, auparse.AUDIT_CWD, auparse.AUDIT_EXECVE, auparse.AUDIT_IPC_SET_PERM,
		auparse.AUDIT_MQ_OPEN, auparse.AUDIT_MQ_SENDRECV, auparse.AUDIT_MQ_NOTIFY, auparse.AUDIT_MQ_GETSETATTR,
		auparse.AUDIT_FD_PAIR, auparse.AUDIT_OBJ_PID, auparse.AUDIT_BPRM_FCAPS, auparse.AUDIT_CAPSET,
		auparse.AUDIT_MMAP, auparse.AUDIT_PROCTITLE, auparse.AUDIT_KERN_MODULE:
		return true
	}
	switch t {
	case 1332, 1333, 1337: // TIME_INJOFFSET, TIME_ADJNTPVAL, OPENAT2
		return true
	}
	return false
}

// Maintain emits events whose last record is overdue, and changes whose
// actor did not come.
func (s *Stream) Maintain() {
	_ = s.reasm.Maintain()
	s.done.flushChanges(s.done.now().Add(-ChangeActorWait))
}

// Close emits everything held and counts serials still missing as lost.
func (s *Stream) Close() {
	_ = s.reasm.Close()
	s.done.flushChanges(time.Time{})
	s.done.gaps.flush()
	s.done.syncGaps()
}

// completion is the libaudit.Stream the reassembler calls back.
type completion struct {
	c        Counters
	onEvent  func(ev *record.Event)
	onChange func(c *record.Change, actor *record.Event)
	gaps     *gapTracker
	// pending are CONFIG_CHANGE records waiting for their SYSCALL, by
	// serial; now is the clock their wait is measured with.
	pending map[uint32]pendingChange
	order   []uint32 // pending's serials as they came (joined ones too, dropped lazily)
	now     func() time.Time
	// reported and late are the gap tracker's totals already added to
	// the counters.
	reported, late uint64
	ev             record.Event
}

// EventsLost implements libaudit.Stream. The reassembler's figure wraps to
// about 2^32 for a single out-of-order serial, so it is not used; gaps are
// counted by the stream's own tracker.
func (d *completion) EventsLost(int) {}

// ReassemblyComplete implements libaudit.Stream.
func (d *completion) ReassemblyComplete(msgs []*auparse.AuditMessage) {
	if len(msgs) == 0 {
		return
	}
	// auditd stamps its own records (DAEMON_START, _ROTATE, _END...) with
	// its own counter; only the kernel's serials can have gaps.
	if t := msgs[0].RecordType; t < auparse.AUDIT_DAEMON_START || t > auparse.AUDIT_LAST_DAEMON {
		d.gaps.observe(msgs[0].Sequence)
		d.syncGaps()
	}
	if bad := record.BuildEvent(msgs, &d.ev); bad > 0 {
		d.c.ParseErrors.Add(float64(bad))
	}
	ev := &d.ev
	switch {
	case ev.HasChange && (ev.HasSyscall || record.IsDaemonRecord(ev.Change.Type)):
		var actor *record.Event
		if ev.HasSyscall {
			actor = ev
		}
		d.emitChange(&ev.Change, actor)
	case ev.HasChange:
		d.holdChange(ev.Serial, ev.Change)
	case ev.HasSyscall:
		if pc, ok := d.pending[ev.Serial]; ok {
			delete(d.pending, ev.Serial)
			d.emitChange(&pc.change, ev)
			return
		}
		if d.onEvent != nil {
			d.onEvent(ev)
		}
	}
}

// pendingChange is a CONFIG_CHANGE record waiting for its SYSCALL.
type pendingChange struct {
	change record.Change
	since  time.Time
}

func (d *completion) emitChange(c *record.Change, actor *record.Event) {
	if d.onChange != nil {
		d.onChange(c, actor)
	}
}

// holdChange keeps a change until its SYSCALL comes, handing on the
// oldest without an actor when too many wait.
func (d *completion) holdChange(serial uint32, c record.Change) {
	for len(d.pending) >= maxPendingChanges {
		d.emitOldest()
	}
	d.pending[serial] = pendingChange{change: c, since: d.now()}
	d.order = append(d.order, serial)
}

// flushChanges hands on, without an actor and oldest first, the changes
// that have waited since before cutoff (all of them for the zero time).
func (d *completion) flushChanges(cutoff time.Time) {
	for len(d.pending) > 0 {
		d.dropJoined()
		if pc := d.pending[d.order[0]]; !cutoff.IsZero() && !pc.since.Before(cutoff) {
			return
		}
		d.emitOldest()
	}
	d.order = d.order[:0]
}

// dropJoined drops from the front of order the serials whose change has
// been joined to its SYSCALL meanwhile.
func (d *completion) dropJoined() {
	for len(d.order) > 0 {
		if _, waiting := d.pending[d.order[0]]; waiting {
			return
		}
		d.order = d.order[1:]
	}
}

// emitOldest hands on the change that has waited longest, without an
// actor. Changes wait in the order they came, which order keeps.
func (d *completion) emitOldest() {
	d.dropJoined()
	serial := d.order[0]
	d.order = d.order[1:]
	pc := d.pending[serial]
	delete(d.pending, serial)
	d.emitChange(&pc.change, nil)
}

// syncGaps moves the tracker's totals into the counters.
func (d *completion) syncGaps() {
	if n := d.gaps.lost - d.reported; n > 0 {
		d.c.SequenceGaps.Add(float64(n))
		d.reported = d.gaps.lost
	}
	if n := d.gaps.late - d.late; n > 0 {
		d.c.LateRecords.Add(float64(n))
		d.late = d.gaps.late
	}
}
