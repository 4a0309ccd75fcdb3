package auditd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	libaudit "github.com/elastic/go-libaudit/v2"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/auditd/detect"
	"github.com/dockward/dockward/pkg/auditd/rules"
)

// session is dockward acting as the audit daemon (unicast mode). It
// remembers exactly what it changed so restore can undo only that: its own
// rules (never anyone else's), the enabled flag, the backlog settings and
// the audit PID.
type session struct {
	s      *Source
	ctl    *libaudit.AuditClient
	events *libaudit.AuditClient
	orig   libaudit.AuditStatus

	// journal records every change while the session runs, for the
	// next start to undo if this process is killed before restore.
	journal *journal

	installed      []installedRule
	setEnabled     bool
	setBacklog     bool
	setBacklogWait bool

	lostSeen bool
	lastLost uint32
}

// installedRule is one rule the session added: its key, what it audits (a
// watched path, or the auditctl line of a syscall rule), its kernel form,
// and how to find it in the kernel's list.
type installedRule struct {
	key, path, line string
	wire            []byte
	present         func([]rules.Rule) bool
}

// startUnicast takes the audit PID, installs dockward's rules, sets the
// backlog and enables audit, undoing what it did if a step fails.
func (s *Source) startUnicast(ctl *libaudit.AuditClient) (_ *session, err error) {
	st, err := ctl.GetStatus()
	if err != nil {
		return nil, fmt.Errorf("audit unicast: reading the kernel's audit status: %w", err)
	}
	if st.Enabled == 2 {
		return nil, errors.New("audit unicast: the audit configuration is locked (enabled=2) until reboot; use mode multicast or file")
	}
	if st.PID != 0 && int(st.PID) != os.Getpid() && s.alive(int(st.PID)) {
		return nil, fmt.Errorf("audit unicast: %s (pid %d) already holds the audit PID; use mode auto or multicast to run next to it",
			s.comm(int(st.PID)), st.PID)
	}
	j := newJournal(s.d.StateDir, s.log)
	if st, err = s.undoLeftover(ctl, j, st); err != nil {
		return nil, err
	}
	sess := &session{s: s, ctl: ctl, orig: *st, journal: j}
	j.begin()
	defer func() {
		if err != nil {
			err = errors.Join(err, sess.restore())
		}
	}()
	// Take the PID first, so the kernel's records of the changes below
	// come to dockward rather than to the kernel log.
	if sess.events, err = libaudit.NewAuditClient(nil); err != nil {
		return sess, fmt.Errorf("audit unicast: opening the event socket: %w", err)
	}
	if err = sess.events.SetPID(libaudit.WaitForReply); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return sess, fmt.Errorf("audit unicast: another audit daemon took the audit PID first; use mode auto or multicast: %w", err)
		}
		return sess, fmt.Errorf("audit unicast: taking the audit PID: %w", err)
	}
	if err = sess.installRules(); err != nil {
		return sess, err
	}
	if st.BacklogLimit != s.cfg.BacklogLimit {
		j.setting(backlogLimit, st.BacklogLimit, s.cfg.BacklogLimit)
		if err = ctl.SetBacklogLimit(s.cfg.BacklogLimit, libaudit.WaitForReply); err != nil {
			return sess, fmt.Errorf("audit unicast: setting backlog_limit %d: %w", s.cfg.BacklogLimit, err)
		}
		sess.setBacklog = true
	}
	// backlog_wait_time 0: a full queue drops (and counts) records instead
	// of stalling the syscalls of every process on the host.
	if st.FeatureBitmap&libaudit.AuditFeatureBitmapBacklogWaitTime != 0 && st.BacklogWaitTime != 0 {
		j.setting(backlogWaitTime, st.BacklogWaitTime, 0)
		if err = ctl.SetBacklogWaitTime(0, libaudit.WaitForReply); err != nil {
			return sess, fmt.Errorf("audit unicast: setting backlog_wait_time 0: %w", err)
		}
		sess.setBacklogWait = true
	}
	if st.Enabled == 0 {
		j.setting(enabledFlag, 0, 1)
		if err = ctl.SetEnabled(true, libaudit.WaitForReply); err != nil {
			return sess, fmt.Errorf("audit unicast: enabling audit: %w", err)
		}
		sess.setEnabled = true
		s.mu.Lock()
		s.ourEnable = sinceBoot()
		s.mu.Unlock()
	}
	s.log.Info("dockward is the audit daemon", zap.Int("rules_installed", len(sess.installed)),
		zap.Uint32("backlog_limit", s.cfg.BacklogLimit), zap.Bool("enabled_audit", sess.setEnabled))
	return sess, nil
}

// installRules adds a rule for every watch whose directory exists, unless
// an identical rule is already there (then it is someone else's to keep).
func (ss *session) installRules() error {
	existing, err := rules.List(ss.ctl)
	if err != nil {
		return fmt.Errorf("audit unicast: %w", err)
	}
	for _, w := range ss.s.watches {
		if _, _, err := ss.s.d.Host.Stat(filepath.Dir(w.Path)); err != nil {
			continue // the kernel cannot watch under a missing directory
		}
		rw := w.kernelRule(ss.s.d.Host)
		wire, err := rules.Build(rw)
		if err != nil {
			return err
		}
		ir := installedRule{key: w.Key, path: w.Path, line: fmt.Sprintf("-w %s -p wa -k %s", rw.Path, w.Key), wire: wire,
			present: func(krules []rules.Rule) bool { return hasOwn(krules, rw) }}
		if err := ss.add(existing, ir); err != nil {
			return err
		}
	}
	return ss.installDetections(existing)
}

// add installs ir unless the kernel already has it (then it is someone
// else's to keep).
func (ss *session) add(existing []rules.Rule, ir installedRule) error {
	if ir.present(existing) {
		return nil
	}
	if err := rules.Add(ss.ctl, ir.wire); err != nil {
		if errors.Is(err, rules.ErrExists) {
			return nil
		}
		return fmt.Errorf("audit unicast: adding the rule %q: %w", ir.line, err)
	}
	ss.journal.rule(ir.wire)
	ss.installed = append(ss.installed, ir)
	return nil
}

// installDetections adds the runtime detections' rules after the watches,
// so that a write to a watched file keeps the watch's key. A watched file
// whose directory is missing (no such cgroup hierarchy) is skipped.
func (ss *session) installDetections(existing []rules.Rule) error {
	if ss.s.det == nil {
		return nil
	}
	for _, r := range ss.s.det.rules {
		if r.Watch != nil {
			if _, _, err := ss.s.d.Host.Stat(filepath.Dir(r.Path)); err != nil {
				continue
			}
		}
		wire, err := r.Wire()
		if err != nil {
			return fmt.Errorf("audit unicast: %w", err)
		}
		want, err := rules.Decode(wire)
		if err != nil {
			return fmt.Errorf("audit unicast: decoding the rule %q: %w", r.Line, err)
		}
		ir := installedRule{key: detect.RuleKey, line: r.Line, wire: wire,
			present: func(krules []rules.Rule) bool { return hasRule(krules, want, r.Watch) }}
		ir.path = r.Path
		if err := ss.add(existing, ir); err != nil {
			return err
		}
	}
	return nil
}

// hasRule reports whether krules hold want: the watch rule for w, or the
// same syscall rule.
func hasRule(krules []rules.Rule, want rules.Rule, w *rules.Watch) bool {
	if w != nil {
		return hasOwn(krules, *w)
	}
	for _, r := range krules {
		if r.Same(want) {
			return true
		}
	}
	return false
}

func hasOwn(krules []rules.Rule, w rules.Watch) bool {
	for _, r := range krules {
		if r.BuiltFor(w) {
			return true
		}
	}
	return false
}

// reinstall adds back any installed rule missing from rules, reporting
// whether it changed anything.
func (ss *session) reinstall(krules []rules.Rule) bool {
	changed := false
	for _, ir := range ss.installed {
		if ir.present(krules) {
			continue
		}
		fields := []zap.Field{zap.String("key", ir.key), zap.String("rule", ir.line)}
		if ir.path != "" {
			fields = append(fields, zap.String("path", ir.path))
		}
		err := rules.Add(ss.ctl, ir.wire)
		if err != nil && !errors.Is(err, rules.ErrExists) {
			ss.s.log.Error("an audit rule dockward installed was removed and cannot be reinstalled", append(fields, zap.Error(err))...)
			continue
		}
		changed = true
		ss.s.m.reinstalledKey[ir.key].Inc()
		ss.s.log.Warn("an audit rule dockward installed was removed; reinstalled it", fields...)
	}
	return changed
}

// restore undoes exactly what the session changed, in reverse order, and
// releases the audit PID last so the kernel's records of the restore still
// come to dockward. It is safe to call after restoreKernel.
func (ss *session) restore() error {
	err := ss.restoreKernel()
	if ss.events != nil {
		// Close releases the audit PID (sets it to 0) when SetPID succeeded.
		if cerr := ss.events.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("releasing the audit PID: %w", cerr))
		}
		ss.events = nil
	}
	return err
}

// restoreKernel undoes the rules, the enabled flag and the backlog
// settings, keeping the audit PID so records keep coming to dockward.
func (ss *session) restoreKernel() error {
	var errs []error
	for i := len(ss.installed) - 1; i >= 0; i-- {
		ir := ss.installed[i]
		if err := ss.ctl.DeleteRule(ir.wire); err != nil {
			errs = append(errs, fmt.Errorf("removing the audit rule %q: %w", ir.line, err))
		}
	}
	if ss.setEnabled {
		if err := ss.ctl.SetEnabled(ss.orig.Enabled != 0, libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit enabled=%d: %w", ss.orig.Enabled, err))
		}
	}
	if ss.setBacklogWait {
		if err := ss.ctl.SetBacklogWaitTime(int32(ss.orig.BacklogWaitTime), libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring backlog_wait_time %d: %w", ss.orig.BacklogWaitTime, err))
		}
	}
	if ss.setBacklog {
		if err := ss.ctl.SetBacklogLimit(ss.orig.BacklogLimit, libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring backlog_limit %d: %w", ss.orig.BacklogLimit, err))
		}
	}
	ss.installed = nil
	ss.setEnabled, ss.setBacklog, ss.setBacklogWait = false, false, false
	if len(errs) == 0 {
		ss.journal.done()
	}
	return errors.Join(errs...)
}

// undoLeftover undoes what an earlier unicast run recorded in the journal
// and could not restore (it was killed), and returns the kernel's status
// after that. A journal that cannot be read is logged and replaced: the
// source still starts, and `auditctl -s` and `-l` show what may be left.
func (s *Source) undoLeftover(ctl *libaudit.AuditClient, j *journal, st *libaudit.AuditStatus) (*libaudit.AuditStatus, error) {
	prev, found, err := j.leftover()
	if err != nil {
		s.log.Error("not undoing an earlier run's kernel audit changes", zap.Error(err))
		return st, nil
	}
	if !found {
		return st, nil
	}
	if err := j.undoLeftover(ctl, prev); err != nil {
		s.log.Error("undoing an earlier run's kernel audit changes failed in part", zap.Error(err))
	}
	if st, err = ctl.GetStatus(); err != nil {
		return nil, fmt.Errorf("audit unicast: reading the kernel's audit status: %w", err)
	}
	return st, nil
}
