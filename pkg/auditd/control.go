package auditd

import (
	"context"
	"os"
	"slices"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/auditd/rules"
)

const (
	// tamperPoll is how often the kernel's audit settings are compared
	// with what the records said: a change no record reports (auditd
	// killed, or made while audit was off, when the kernel logs nothing)
	// is reported once two polls in a row agree, within a second.
	tamperPoll = 300 * time.Millisecond
	// ruleChangeWindow gathers rule removals judged together: auditctl -D
	// removes the rules one by one, milliseconds apart, and is one
	// tampering, not one per rule. A window closes when one process has
	// removed nothing for ruleChangeWindow, after maxRuleWindow at most
	// (so its line is out within a second), or when another process
	// removes a rule. The quiet time outlasts file mode's 100 ms polls of
	// the log, which deliver a burst of records in pieces.
	ruleChangeWindow = 250 * time.Millisecond
	maxRuleWindow    = 700 * time.Millisecond
	// maxQueuedChanges bounds the changes waiting for the control loop.
	maxQueuedChanges = 1024
)

// control owns the control socket in every mode: it polls the kernel's
// status, checks rule coverage (and, in unicast mode, reinstalls
// dockward's rules), and judges every change to audit itself, which the
// pipeline hands it with its actor. ctl is nil in file mode without
// CAP_AUDIT_CONTROL; then only the records are judged.
type control struct {
	s       *Source
	ctl     *libaudit.AuditClient
	sess    *session
	changes chan auditChange
	rep     tamperReporter
	// status reads the kernel's audit status (ctl's; tests fake it).
	status func() (*libaudit.AuditStatus, error)
	// known are the audit settings as last seen or reported; suspect are
	// settings one poll found changed, reported if the next agrees.
	known   libaudit.AuditStatus
	knownOK bool
	suspect map[string]int64
	// window holds the rule removals of one burst, judged at deadline
	// (zero while no window is open; any change opens one, so coverage
	// is checked again soon after it); started is when it opened.
	window            []auditChange
	started, deadline time.Time
	// rules are the kernel's rules as last read; onRules hears each new
	// list (the pipeline maps events by the rules' paths).
	rules   []rules.Rule
	onRules func([]rules.Rule)
}

func (s *Source) newControl(ctl *libaudit.AuditClient, sess *session) *control {
	c := &control{s: s, ctl: ctl, sess: sess, changes: make(chan auditChange, maxQueuedChanges),
		rep: tamperReporter{s: s, limit: newLogLimiter()}, suspect: map[string]int64{}}
	if ctl != nil {
		c.status = ctl.GetStatus
	}
	return c
}

// noteChange hands a change from the pipeline's goroutine to the control
// loop. dockward's own changes (unicast mode installing and restoring) are
// not judged.
func (c *control) noteChange(ch auditChange) {
	if ch.HasActor && ch.Actor.PID == int64(os.Getpid()) {
		return
	}
	select {
	case c.changes <- ch:
	default:
		c.s.log.Warn("too many changes to kernel audit at once; one was not judged",
			zap.String("op", ch.Op), zap.String("setting", ch.Setting), zap.String("rule_key", ch.Key))
	}
}

// start reads the status and the rules once, judging coverage and an
// unaudited dockerd, before records are read.
func (c *control) start() {
	if c.ctl == nil {
		return
	}
	st, err := c.status()
	if err != nil {
		c.s.statusFailed(err)
		if !refusedHere(err) { // statusFailed said why for a refusal
			c.s.coverageUnknown("reading the kernel's audit status failed, so its rules were not compared with the watches: " + err.Error())
		}
		c.s.checkAuditDaemon(nil)
		return
	}
	c.s.statusRead()
	c.s.checkAuditDaemon(st)
	c.known, c.knownOK = *st, true
	c.s.observeStatus(st, c.sess)
	c.checkRules()
	c.s.judgeDaemon(st.Enabled)
}

// run serves the control loop until ctx is done.
func (c *control) run(ctx context.Context) {
	var status, ruleTick, poll <-chan time.Time
	if c.ctl != nil {
		st := time.NewTicker(c.s.cfg.StatusInterval)
		defer st.Stop()
		rt := time.NewTicker(c.s.cfg.RuleCheckInterval)
		defer rt.Stop()
		pt := time.NewTicker(tamperPoll)
		defer pt.Stop()
		status, ruleTick, poll = st.C, rt.C, pt.C
	}
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		var flush <-chan time.Time
		if !c.deadline.IsZero() {
			wake.Reset(time.Until(c.deadline))
			flush = wake.C
		}
		select {
		case <-ctx.Done():
			return
		case <-status:
			if st, err := c.status(); err == nil {
				c.s.statusRead()
				c.s.checkAuditDaemon(st)
				c.s.observeStatus(st, c.sess)
			} else {
				c.s.statusFailed(err)
				c.s.checkAuditDaemon(nil)
			}
		case <-ruleTick:
			c.s.judgeDaemon(c.known.Enabled)
			c.checkRules()
		case <-poll:
			c.pollSettings()
		case ch := <-c.changes:
			c.judge(ch, time.Now())
		case <-flush:
			c.flushWindow()
		}
		if !wake.Stop() {
			select {
			case <-wake.C:
			default:
			}
		}
	}
}

// checkRules re-reads the rules, reinstalls dockward's own that are gone
// (unicast) and judges coverage.
func (c *control) checkRules() {
	if c.ctl == nil || c.s.refused.Load() {
		return // the kernel lists no rules to this PID namespace, as statusFailed said once
	}
	krules, err := c.s.checkRules(c.ctl, c.sess, c.known.Enabled)
	if err != nil {
		c.s.log.Warn("checking audit rule coverage failed", zap.Error(err))
		c.s.coverageUnknown("listing the kernel's audit rules failed: " + err.Error())
		return
	}
	c.rules = krules
	if c.onRules != nil {
		c.onRules(krules)
	}
}

// judge handles one change to audit, made at now: settings at once, rule
// removals together at the end of their window, which also re-checks
// coverage.
func (c *control) judge(ch auditChange, now time.Time) {
	removal := ch.Op == "remove_rule" && ch.OK
	if removal && len(c.window) > 0 && c.window[0].Actor.PID != ch.Actor.PID {
		c.flushWindow() // another process: another tampering
	}
	c.openWindow(now, removal)
	switch {
	case record.IsDaemonRecord(ch.Type):
		c.daemonRecord(&ch)
	case !ch.OK:
		c.s.log.Warn("a change to kernel audit was refused", append([]zap.Field{zap.String("op", ch.Op),
			zap.String("setting", ch.Setting), zap.String("rule_key", ch.Key)}, actorFields(&ch)...)...)
	case ch.Op == "set":
		c.setting(ch.Setting, ch.Old, ch.Value, &ch)
	case removal:
		c.window = append(c.window, ch)
	}
}

// openWindow opens a window at now if none is open; a removal keeps it
// open for ruleChangeWindow more, up to maxRuleWindow in all.
func (c *control) openWindow(now time.Time, removal bool) {
	switch {
	case c.deadline.IsZero():
		c.started, c.deadline = now, now.Add(ruleChangeWindow)
	case removal:
		c.deadline = now.Add(ruleChangeWindow)
		if limit := c.started.Add(maxRuleWindow); c.deadline.After(limit) {
			c.deadline = limit
		}
	}
}

// due reports whether the open window is to be judged at now.
func (c *control) due(now time.Time) bool { return !c.deadline.IsZero() && !now.Before(c.deadline) }

// daemonRecord judges auditd's own DAEMON_* records (file mode).
func (c *control) daemonRecord(ch *auditChange) {
	kind, what := daemonVerdict(&ch.Change)
	switch {
	case kind != "":
		c.known.PID = 0 // so that the poll does not report it again
		delete(c.suspect, "audit_pid")
		c.rep.report(kind, what, ch)
	case ch.Op == "start":
		if ch.PID > 0 {
			c.known.PID = uint32(ch.PID)
		}
		c.rep.note("the audit daemon started", what, ch)
	case ch.Op == "reconfigure":
		c.rep.note("the audit daemon was reconfigured", what, ch)
	}
}

// setting judges a changed audit setting (ch nil: seen by polling). A
// record of a change the poll has reported already (one the kernel wrote
// no SYSCALL for, so it waited) is not reported again.
func (c *control) setting(name string, old, value int64, ch *auditChange) {
	if p := c.knownField(name); p != nil {
		if ch != nil && c.knownOK && int64(*p) == value && old != value {
			return
		}
		*p = uint32(value)
	}
	delete(c.suspect, name)
	kind, what := settingVerdict(name, old, value)
	switch {
	case kind == "":
		if old != value {
			c.rep.note("a kernel audit setting changed", what, ch)
		}
	case c.sess != nil && (kind == TamperDaemonReplaced || kind == TamperDaemonEnded):
		c.rep.report(kind, what, ch, zap.String("consequence", "dockward no longer receives audit records until it restarts"))
	default:
		c.rep.report(kind, what, ch)
	}
}

// statusSettings are the audit settings judged, by the name CONFIG_CHANGE
// records give them, with their field of the kernel's status.
var statusSettings = map[string]func(*libaudit.AuditStatus) *uint32{
	"audit_enabled":           func(st *libaudit.AuditStatus) *uint32 { return &st.Enabled },
	"audit_pid":               func(st *libaudit.AuditStatus) *uint32 { return &st.PID },
	"audit_backlog_limit":     func(st *libaudit.AuditStatus) *uint32 { return &st.BacklogLimit },
	"audit_backlog_wait_time": func(st *libaudit.AuditStatus) *uint32 { return &st.BacklogWaitTime },
	"audit_failure":           func(st *libaudit.AuditStatus) *uint32 { return &st.Failure },
	"audit_rate_limit":        func(st *libaudit.AuditStatus) *uint32 { return &st.RateLimit },
}

// knownField points at the known value of a setting (nil for another).
func (c *control) knownField(name string) *uint32 {
	if field, ok := statusSettings[name]; ok {
		return field(&c.known)
	}
	return nil
}

// pollSettings compares the kernel's settings with the known ones. A
// difference is reported when the next poll still sees it and no record
// explained it meanwhile, because the record, which names the actor, is
// usually a moment behind the change. A daemon PID whose process is gone
// counts as no daemon.
func (c *control) pollSettings() {
	st, err := c.status()
	if err != nil || !c.knownOK {
		return
	}
	if st.PID != 0 && !c.s.alive(int(st.PID)) {
		st.PID = 0
	}
	for name, field := range statusSettings {
		v, old := *field(st), *c.knownField(name)
		if v == old {
			delete(c.suspect, name)
			continue
		}
		if seen, ok := c.suspect[name]; ok && seen == int64(v) {
			c.setting(name, int64(old), int64(v), nil)
			continue
		}
		c.suspect[name] = int64(v)
	}
}

// flushWindow judges the rule removals of one window: removals that left
// a watched path uncovered, or carried the key of a rule that covered one,
// are one tampering. It then re-checks coverage (reinstalling dockward's
// rules, in unicast mode).
func (c *control) flushWindow() {
	window := c.window
	c.window, c.deadline = nil, time.Time{}
	before, after := c.rules, c.rules
	if c.ctl != nil {
		if l, err := rules.List(c.ctl); err == nil {
			after = l
		}
	}
	if len(window) > 0 {
		c.judgeRemovals(window, before, after)
	}
	c.checkRules()
}

func (c *control) judgeRemovals(window []auditChange, before, after []rules.Rule) {
	var uncovered []string
	for _, w := range c.s.watches {
		if coveredBy(before, w.Path) && !coveredBy(after, w.Path) {
			uncovered = append(uncovered, w.Path)
		}
	}
	keys := c.dockerRuleKeys(before)
	var hit *auditChange
	var ruleKeys []string
	for i := range window {
		if !slices.Contains(ruleKeys, window[i].Key) {
			ruleKeys = append(ruleKeys, window[i].Key)
		}
		if hit == nil && keys[window[i].Key] {
			hit = &window[i]
		}
	}
	if hit == nil && len(uncovered) == 0 {
		return
	}
	if hit == nil {
		hit = &window[0]
	}
	c.rep.report(TamperRuleRemoved, "audit rules covering Docker paths were removed", hit,
		zap.Int("rules_removed", len(window)), zap.Strings("rule_keys", ruleKeys), zap.Strings("uncovered", uncovered),
		zap.Bool("reinstalling", c.sess != nil))
}

// dockerRuleKeys are the keys a removed Docker rule may carry: those of
// the rules that covered a watched path, the watches' own, and the keys
// seen on events about watched paths (all that is known without the
// control socket).
func (c *control) dockerRuleKeys(rs []rules.Rule) map[string]bool {
	keys := map[string]bool{}
	for _, w := range c.s.watches {
		keys[w.Key] = true
		for _, r := range rs {
			if r.Covers(w.Path) {
				for _, k := range r.Keys {
					keys[k] = true
				}
			}
		}
	}
	for _, k := range c.s.ruleKeys() {
		keys[k] = true
	}
	return keys
}

// coveredBy reports whether any of rs covers p.
func coveredBy(rs []rules.Rule, p string) bool {
	for _, r := range rs {
		if r.Covers(p) {
			return true
		}
	}
	return false
}
