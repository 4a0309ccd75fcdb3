package auditd

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/auditd/record"
)

// TamperKind is what a change to kernel audit did to weaken it: the `kind`
// label of dockward_audit_tamper_events_total.
type TamperKind string

const (
	// TamperRuleRemoved: a rule covering a watched Docker path was removed
	// (auditctl -W, auditctl -D, a rule reload, or the watched path
	// deleted, which removes its rule).
	TamperRuleRemoved TamperKind = "rule_removed"
	// TamperAuditDisabled: audit was turned off (auditctl -e 0).
	TamperAuditDisabled TamperKind = "audit_disabled"
	// TamperDaemonEnded: the audit daemon gave up the audit PID or died
	// (auditd stopped or killed).
	TamperDaemonEnded TamperKind = "daemon_ended"
	// TamperDaemonReplaced: another process took the audit PID from the
	// running audit daemon (dockward's, in unicast mode).
	TamperDaemonReplaced TamperKind = "daemon_replaced"
	// TamperBacklogChanged: the backlog limit or the backlog wait time was
	// lowered, so records are dropped sooner.
	TamperBacklogChanged TamperKind = "backlog_changed"
	// TamperFailureChanged: the failure mode was set to 0, which drops
	// records without a word.
	TamperFailureChanged TamperKind = "failure_changed"
	// TamperRateLimitChanged: a rate limit was set or lowered, above which
	// the kernel drops records.
	TamperRateLimitChanged TamperKind = "rate_limit_changed"
)

// TamperKinds lists every kind; each has a series from the start.
var TamperKinds = []TamperKind{TamperRuleRemoved, TamperAuditDisabled, TamperDaemonEnded, TamperDaemonReplaced,
	TamperBacklogChanged, TamperFailureChanged, TamperRateLimitChanged}

// auditChange is a change to audit itself with the process that made it:
// the SYSCALL of a CONFIG_CHANGE's serial, or the signal sender auditd
// names in its DAEMON_* records. HasActor is false when neither is known.
type auditChange struct {
	record.Change
	Actor    Actor
	HasActor bool
}

// change resolves the actor of a change to audit and hands it on.
func (p *Pipeline) change(c *record.Change, actor *record.Event) {
	if p.onChange == nil {
		return
	}
	ch := auditChange{Change: *c}
	switch {
	case actor != nil:
		ch.Actor, ch.HasActor = p.attribute(actor), true
	case c.PID > 0 || c.AUID != record.UnsetID:
		ch.Actor = Actor{PID: c.PID, PPID: record.UnsetID, UID: c.UID, AUID: c.AUID, AUIDUser: c.AUIDName,
			User: p.users.name(c.UID)}
		if ch.Actor.AUIDUser == "" {
			ch.Actor.AUIDUser = p.users.name(c.AUID)
		}
		if p.procRoot != "" && c.PID > 0 { // the signalling process, if it still runs
			ch.Actor.Exe, _ = os.Readlink(p.procRoot + "/" + strconv.FormatInt(c.PID, 10) + "/exe")
		}
		ch.HasActor = true
	}
	if ch.Time.IsZero() {
		ch.Time = time.Now()
	}
	p.onChange(ch)
}

// settingVerdict is what a changed audit setting means: the tamper kind
// (none when the change does not weaken audit: raising a limit, setting
// failure mode 2, putting a setting back) and what to say about it.
func settingVerdict(setting string, old, value int64) (TamperKind, string) {
	change := fmt.Sprintf("%s %d -> %d", setting, old, value)
	switch setting {
	case "audit_enabled":
		if value == 0 && old != 0 {
			return TamperAuditDisabled, change
		}
	case "audit_pid":
		switch {
		case value == 0 && old != 0:
			return TamperDaemonEnded, change
		case value != 0 && old != 0 && value != old:
			return TamperDaemonReplaced, change
		}
	case "audit_backlog_limit", "audit_backlog_wait_time":
		if value < old {
			return TamperBacklogChanged, change
		}
	case "audit_failure":
		if value == 0 && old != 0 {
			return TamperFailureChanged, change
		}
	case "audit_rate_limit":
		if value != 0 && (old == 0 || value < old) {
			return TamperRateLimitChanged, change
		}
	}
	return "", change
}

// daemonVerdict is what one of auditd's DAEMON_* records means.
func daemonVerdict(c *record.Change) (TamperKind, string) {
	switch c.Op {
	case "terminate", "abort":
		return TamperDaemonEnded, "auditd " + c.Op
	}
	return "", "auditd " + c.Op
}

// tamperReporter writes the tamper lines, one per tampering, rate-limited
// per kind like the unexpected-writer lines (every one is still counted).
type tamperReporter struct {
	s     *Source
	limit *logLimiter
}

// report counts one tampering and logs it at error with its actor.
func (r *tamperReporter) report(kind TamperKind, change string, ch *auditChange, fields ...zap.Field) {
	r.s.m.tamper[kind].Inc()
	ok, dropped := r.limit.allow(string(kind))
	if !ok {
		return
	}
	fs := append([]zap.Field{zap.String("kind", string(kind)), zap.String("change", change)}, fields...)
	fs = append(fs, actorFields(ch)...)
	if dropped > 0 {
		fs = append(fs, zap.Uint64("lines_suppressed_before", dropped))
	}
	r.s.log.Error("kernel audit tampered with", fs...)
}

// note logs a change to audit that does not weaken it, at info.
func (r *tamperReporter) note(msg, change string, ch *auditChange) {
	r.s.log.Info(msg, append([]zap.Field{zap.String("change", change)}, actorFields(ch)...)...)
}

// actorFields are the actor and record fields of a change's log line; a
// change seen only by polling, or whose record named no process, says so.
func actorFields(ch *auditChange) []zap.Field {
	if ch == nil {
		return []zap.Field{zap.Bool("actor_known", false), zap.String("seen_by", "status poll")}
	}
	fs := []zap.Field{zap.Bool("actor_known", ch.HasActor), zap.String("seen_by", "record"),
		zap.Uint32("serial", ch.Serial), zap.Time("event_time", ch.Time)}
	if ch.HasActor {
		fs = append(fs, zap.Object("actor", ch.Actor))
	}
	return fs
}
