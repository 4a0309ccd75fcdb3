// Package auditd is dockward's kernel audit source: it keeps watches on
// Docker's files (CIS Docker Benchmark 1.1.3-1.1.18), reads the kernel's
// audit records over netlink (unicast or multicast) or from auditd's log,
// classifies each event against the writers expected for the path, and
// reports rule coverage and an unaudited dockerd as findings.
//
// What is not the source's own lives in subpackages, as go-libaudit splits
// its own: records and their tokenizer in record, the kernel's rule format
// and coverage in rules, and reassembly with every go-libaudit workaround
// in reassembly. This package holds the source: its config, watches,
// modes, classification, attribution, findings and metrics.
package auditd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/auditd/reassembly"
	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Name is the source's name: its config section, its /readyz and metric
// label, the `source` field of its log lines and its findings' scope.
const Name = "audit"

// Deps is what the agent passes in: the collaborators every source gets
// (Log, Registerer, Sink), then this source's own.
type Deps struct {
	Log        *zap.Logger           // nil: no logging
	Registerer prometheus.Registerer // nil: metrics are not registered
	Sink       findings.Sink
	// ContainerName resolves a container ID to its name while the
	// containers source runs; may be nil.
	ContainerName func(id string) (string, bool)
	// ContainerImage resolves a container ID to its image, likewise; may
	// be nil.
	ContainerImage func(id string) (string, bool)
	// DockerdPID returns the running dockerd's PID, 0 when unknown; may be
	// nil. The source then finds dockerd itself, through Host.
	DockerdPID func() int
	// StateDir is the agent's state directory, where a unicast run keeps
	// its restore journal (JournalFile); empty: no journal, so a killed
	// run's kernel changes stay until someone removes them.
	StateDir string
	// Host is the host's root filesystem, where Docker's files are found
	// (the zero Root is this machine's /).
	Host hostfs.Root
}

// Source is the audit source.
type Source struct {
	cfg     Config
	d       Deps
	log     *zap.Logger
	m       *metrics
	watches []Watch
	det     *detections // nil when the runtime detections are off
	detM    *detectionMetrics

	procRoot string
	kmsgPath string
	cmdline  string

	// refused is set while the kernel refuses status and rule requests
	// from this PID namespace; daemonSeen is 0 before the first audit
	// daemon check, then 1 (none runs) or 2 (one runs).
	refused    atomic.Bool
	daemonSeen atomic.Int32

	mu        sync.Mutex
	ourEnable time.Duration // boot-relative time this process enabled audit
	mode      Mode          // the mode Run resolved to
	lostSeen  bool          // lastLost holds a polled value (non-unicast modes)
	lastLost  uint32
	// seenRuleKeys are host rule keys seen on events about watched paths.
	seenRuleKeys []string
	// cov is the last comparison of the kernel's rules with the watches,
	// or why there is none (observe.go).
	cov coverageState

	// onEvent, when set before Run, sees every classified event (tests).
	onEvent func(ev *record.Event, w Watch, expected bool)
	// onDetection, when set before Run, sees every detection (tests).
	onDetection func(ev *record.Event, d Detected)
	// rcvBuf is the receive buffer asked for (reassembly.ReceiveBuffer;
	// tests shrink it).
	rcvBuf int
}

// New builds the source from its config section.
func New(cfg Config, d Deps) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Sink == nil {
		return nil, errors.New("audit source: no findings sink")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	ws := ResolveWatches(cfg, d.Host)
	var keys []string
	seen := map[string]bool{}
	for _, w := range ws {
		if !seen[w.Key] {
			seen[w.Key] = true
			keys = append(keys, w.Key)
		}
	}
	for _, b := range builtinWatches { // known series, even for absent paths
		if !seen[b.Key] {
			seen[b.Key] = true
			keys = append(keys, b.Key)
		}
	}
	m, err := newMetrics(d.Registerer, keys)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, d: d, log: d.Log, m: m, watches: ws,
		procRoot: "/proc", kmsgPath: "/dev/kmsg", rcvBuf: reassembly.ReceiveBuffer}
	if err := s.newDetections(); err != nil {
		return nil, err
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	s.cmdline = string(cmdline)
	return s, nil
}

// Name implements findings.Source.
func (s *Source) Name() string { return Name }

// Watches returns the resolved watches, in kernel rule order.
func (s *Source) Watches() []Watch { return append([]Watch(nil), s.watches...) }

// Mode returns the mode Run resolved to (empty before Run).
func (s *Source) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// Run implements findings.Source. In unicast mode every kernel change is
// undone before it returns, on cancellation (SIGTERM) as on error.
func (s *Source) Run(ctx context.Context, ready func()) error {
	mode := s.cfg.Mode
	if !s.cfg.Enabled {
		mode = ModeOff
	}
	if mode == ModeAuto {
		m, why, err := s.chooseMode()
		if err != nil {
			return err
		}
		s.log.Info("audit mode chosen", zap.String("mode", string(m)), zap.String("reason", why))
		mode = m
	}
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
	switch mode {
	case ModeUnicast:
		return s.runUnicast(ctx, ready)
	case ModeMulticast:
		return s.runMulticast(ctx, ready)
	case ModeFile:
		return s.runFile(ctx, ready)
	}
	s.m.setMode(ModeOff, false)
	s.coverageUnknown(modeOffNote)
	ready()
	<-ctx.Done()
	return nil
}

// modeOffNote is why coverage is not judged in mode off.
const modeOffNote = "audit mode is off, so the kernel's audit rules are not compared with the watches"

// chooseMode resolves auto: unicast unless an audit daemon holds the
// kernel's audit PID or the configuration is locked (-e 2).
func (s *Source) chooseMode() (Mode, string, error) {
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return "", "", fmt.Errorf("audit mode auto: opening the audit netlink socket (needs CAP_AUDIT_CONTROL and the host's user namespace): %w", err)
	}
	defer ctl.Close()
	st, err := ctl.GetStatus()
	if err != nil {
		return "", "", fmt.Errorf("audit mode auto: reading the kernel's audit status: %w", err)
	}
	if st.Enabled == 2 {
		return ModeMulticast, "the audit configuration is locked (enabled=2)", nil
	}
	if st.PID != 0 && int(st.PID) != os.Getpid() && s.alive(int(st.PID)) {
		return ModeMulticast, fmt.Sprintf("audit daemon %s (pid %d) holds the audit PID", s.comm(int(st.PID)), st.PID), nil
	}
	return ModeUnicast, "no audit daemon holds the audit PID", nil
}

func (s *Source) alive(pid int) bool { return processExists(s.procRoot, int64(pid)) }

func (s *Source) comm(pid int) string {
	b, err := os.ReadFile(filepath.Join(s.procRoot, strconv.Itoa(pid), "comm"))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// runUnicast makes dockward the audit daemon for the duration of ctx.
func (s *Source) runUnicast(ctx context.Context, ready func()) (err error) {
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return fmt.Errorf("audit unicast: opening the control socket: %w", err)
	}
	defer ctl.Close()
	sess, err := s.startUnicast(ctl)
	if err != nil {
		return err
	}
	installed := len(sess.installed)
	defer func() {
		if rerr := sess.restore(); rerr != nil {
			s.log.Error("restoring the kernel's audit state failed", zap.Error(rerr))
			err = errors.Join(err, rerr)
		} else {
			s.log.Info("kernel audit state restored", zap.Int("rules_removed", installed))
		}
	}()
	return s.follow(ctx, ready, ModeUnicast, sess.events, ctl, sess)
}

// runMulticast reads a copy of the records, changing nothing.
func (s *Source) runMulticast(ctx context.Context, ready func()) error {
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return fmt.Errorf("audit multicast: opening the control socket: %w", err)
	}
	defer ctl.Close()
	ev, err := libaudit.NewMulticastAuditClient(nil)
	if err != nil {
		return fmt.Errorf("audit multicast: joining the audit multicast group (needs CAP_AUDIT_READ): %w", err)
	}
	defer ev.Close()
	return s.follow(ctx, ready, ModeMulticast, ev, ctl, nil)
}

// runFile tails auditd's log. Rule coverage is still checked when the
// control socket can be opened.
func (s *Source) runFile(ctx context.Context, ready func()) error {
	var readyOnce sync.Once
	signalReady := ready
	ready = func() { readyOnce.Do(signalReady) }
	warned := false
	t, err := newTailer(s.cfg.LogFile, s.cfg.LogFileFromStart)
	for err != nil {
		// The log may appear later (auditd not started yet): the source
		// is up and retrying, and says so once.
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit file mode: %w", err)
		}
		if !warned {
			warned = true
			s.log.Warn("audit log file does not exist yet; waiting for it", zap.String("path", s.cfg.LogFile))
			s.coverageUnknown("file mode waits for " + s.cfg.LogFile + " to appear, and compares the kernel's audit rules once it does")
		}
		ready()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		// Whatever appears is new: read it from its start.
		t, err = newTailer(s.cfg.LogFile, true)
	}
	defer t.Close()
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		s.log.Warn("audit file mode: cannot read the kernel's rules; rule coverage is not checked", zap.Error(err))
		s.coverageUnknown("file mode could not open the audit netlink socket (it needs CAP_AUDIT_CONTROL), " +
			"so the kernel's audit rules are not read: " + err.Error())
		ctl = nil
	} else {
		defer ctl.Close()
	}
	c := s.newControl(ctl, nil)
	p, err := s.newPipeline(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	c.start()
	wg.Add(1)
	go func() { defer wg.Done(); c.run(ctx) }()
	s.m.setMode(ModeFile, true)
	ready()
	err = t.follow(ctx, p.PushLine, p.Maintain)
	cancel()
	wg.Wait()
	p.Close()
	s.m.setMode(ModeFile, false)
	if err != nil {
		return fmt.Errorf("audit file mode: %w", err)
	}
	return nil
}

// newPipeline builds the pipeline that hands changes to audit to c.
func (s *Source) newPipeline(c *control) (*Pipeline, error) {
	p, err := newPipeline(s.watches, s.m, PipelineOptions{Log: s.log, ContainerName: s.d.ContainerName,
		ContainerImage: s.d.ContainerImage, ReassemblyTimeout: s.cfg.ReassemblyTimeout, Host: s.d.Host})
	if err != nil {
		return nil, err
	}
	p.onChange = c.noteChange
	p.onRuleKey = s.learnRuleKey
	c.onRules = p.match.setRules
	p.onEvent = s.onEvent
	p.det, p.detM, p.onDetection = s.det, s.detM, s.onDetection
	return p, nil
}

// follow receives from events until ctx is done, while the control loop
// polls the kernel status, checks the rules and judges changes to audit on
// ctl.
func (s *Source) follow(ctx context.Context, ready func(), mode Mode, events, ctl *libaudit.AuditClient, sess *session) error {
	if err := reassembly.TuneSocket(events, s.rcvBuf); err != nil {
		return fmt.Errorf("audit %s: %w", mode, err)
	}
	c := s.newControl(ctl, sess)
	p, err := s.newPipeline(c)
	if err != nil {
		return err
	}
	c.start()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.run(cctx) }()
	// The receiver runs until the kernel changes are undone, so records
	// written meanwhile are read rather than queued into the kernel's
	// backlog and counted as lost.
	rctx, rcancel := context.WithCancel(context.Background())
	received := make(chan struct{})
	go func() { defer close(received); reassembly.Receive(rctx, events, p.Stream, s.receiveFailed()) }()
	s.m.setMode(mode, true)
	ready()
	select {
	case <-ctx.Done():
	case <-received:
	}
	cancel()
	wg.Wait()
	err = nil
	if sess != nil {
		err = sess.restoreKernel()
	}
	rcancel()
	<-received
	p.Close()
	s.m.setMode(mode, false)
	return err
}

// receiveFailed counts receive errors by reason and logs at most one line
// every 10s about them.
func (s *Source) receiveFailed() func(error) {
	var lastWarn time.Time
	return func(err error) {
		enobufs := errors.Is(err, syscall.ENOBUFS)
		reason := reasonOther
		if enobufs {
			reason = reasonENOBUFS
		}
		s.m.receiveErrors.WithLabelValues(reason).Inc()
		if time.Since(lastWarn) <= 10*time.Second {
			return
		}
		lastWarn = time.Now()
		if enobufs {
			s.log.Warn("audit records dropped: the receive buffer overflowed (ENOBUFS)",
				zap.String("hint", "dockward_audit_receive_errors_total{reason=\"enobufs\"} counts every occurrence"))
			return
		}
		s.log.Warn("receiving from the audit socket failed", zap.Error(err))
	}
}

// observeStatus exports the kernel's lost counter (as a delta since the
// first poll) and backlog. A daemon taking the audit PID is tampering, which
// the control loop reports.
func (s *Source) observeStatus(st *libaudit.AuditStatus, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.backlog.Set(float64(st.Backlog))
	if sess != nil {
		if sess.lostSeen && st.Lost > sess.lastLost {
			s.m.kernelLost.Add(float64(st.Lost - sess.lastLost))
			s.log.Warn("the kernel dropped audit records", zap.Uint32("lost", st.Lost-sess.lastLost),
				zap.Uint32("backlog", st.Backlog), zap.Uint32("backlog_limit", st.BacklogLimit))
		}
		sess.lostSeen, sess.lastLost = true, st.Lost
		return
	}
	if s.lostSeen && st.Lost > s.lastLost {
		s.m.kernelLost.Add(float64(st.Lost - s.lastLost))
	}
	s.lostSeen, s.lastLost = true, st.Lost
}

// checkRules reads and decodes the kernel's rules, reinstalls any of
// dockward's own that disappeared (unicast), judges coverage, and returns
// the rules as they are now.
func (s *Source) checkRules(ctl *libaudit.AuditClient, sess *session, enabled uint32) ([]rules.Rule, error) {
	krules, err := rules.List(ctl)
	if err != nil {
		return nil, err
	}
	if sess != nil && sess.reinstall(krules) {
		if krules, err = rules.List(ctl); err != nil {
			return nil, err
		}
	}
	s.judgeCoverage(krules, enabled)
	s.judgeDetections(krules, enabled)
	return krules, nil
}

// learnRuleKey remembers a host rule key seen on an event about a watched
// path, so that removing a rule with that key is known to be tampering
// even where the rules cannot be listed.
func (s *Source) learnRuleKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seenRuleKeys) < maxRuleKeys && !slices.Contains(s.seenRuleKeys, key) {
		s.seenRuleKeys = append(s.seenRuleKeys, key)
	}
}

// ruleKeys returns the rule keys learnRuleKey kept.
func (s *Source) ruleKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seenRuleKeys)
}

// maxRuleKeys bounds the host rule keys remembered.
const maxRuleKeys = 64

const (
	scopeWatchPrefix = "watch:"
	scopeDaemon      = "daemon"
)

// judgeCoverage reports audit.watch_missing for every existing watched
// path no kernel rule covers (and for an absent one where the benchmark
// asks for the rule anyway), one scope per watch, and keeps the coverage
// for the compliance report's observations.
func (s *Source) judgeCoverage(krules []rules.Rule, enabled uint32) {
	judged := map[string][]findings.Finding{}
	cov := s.coverage(krules)
	for i, c := range cov {
		w := s.watches[i]
		scope := scopeWatchPrefix + w.Path
		var found []findings.Finding
		switch {
		case !c.Exists && !judgedWhenAbsent(w.CIS):
		case !c.Covered && !c.Exists:
			found = append(found, s.missing(w, "no kernel audit rule covers "+w.Path+
				", which does not exist yet; CIS "+w.CIS+" asks for the rule all the same"))
		case !c.Covered:
			found = append(found, s.missing(w, "no kernel audit rule covers "+w.Path))
		case enabled == 0:
			found = append(found, s.missing(w, "a rule covers "+w.Path+" but kernel audit is disabled").
				With("covered_by_key", c.ByKey))
		}
		judged[scope] = found
	}
	s.d.Sink.Sync(scopeWatchPrefix, judged) // a watch no longer configured is resolved
	s.coverageKnown(cov)
}

// coverage judges every watch against the kernel's rules. A watch is
// covered by a rule on its host path (auditd's, added on the host) or by
// one on its path as this process sees it (the rule dockward adds from a
// container, /host/etc/docker): both name the same directory's inode. The
// string alone cannot tell a rule on a host directory that happens to be
// called /host/etc/docker from that one; such a directory is not expected.
func (s *Source) coverage(krules []rules.Rule) []rules.Coverage {
	exists := func(p string) bool {
		_, err := s.d.Host.Lstat(p)
		return err == nil
	}
	out := rules.CheckCoverage(ruleWatches(s.watches), krules, exists)
	if s.d.Host.Dir() == "/" {
		return out
	}
	local := make([]rules.Watch, len(s.watches))
	for i, w := range s.watches {
		local[i] = w.kernelRule(s.d.Host)
	}
	for i, c := range rules.CheckCoverage(local, krules, func(string) bool { return true }) {
		if !out[i].Covered && c.Covered {
			out[i].Covered, out[i].ByKey = true, c.ByKey
		}
	}
	return out
}

func (s *Source) missing(w Watch, msg string) findings.Finding {
	f := findings.New("audit.watch_missing", findings.Subject{Kind: findings.KindAudit, Name: w.Path}, msg).
		With("key", w.Key)
	f.Remediation = fmt.Sprintf("auditctl -w %s -p wa -k %s, and persist it in /etc/audit/rules.d/docker.rules", w.Path, w.Key)
	if w.CIS != "" {
		f.CIS = w.CIS
	}
	return f
}

// judgeDaemon reports audit.daemon_unaudited when dockerd started before
// audit was first enabled and the kernel was not booted with audit=1.
func (s *Source) judgeDaemon(enabled uint32) {
	pid := 0
	if s.d.DockerdPID != nil {
		pid = s.d.DockerdPID()
	}
	if pid == 0 {
		if d, err := s.d.Host.FindDockerd([]string{hostfs.DockerPIDFile}, hostfs.DockerSocket); err == nil {
			pid = d.PID
		}
	}
	sink := s.d.Sink
	if pid == 0 {
		sink.Set(scopeDaemon, nil)
		return
	}
	start, err := processStart(s.procRoot, pid)
	if err != nil {
		s.log.Debug("dockerd start time unknown", zap.Int("pid", pid), zap.Error(err))
		sink.Set(scopeDaemon, nil)
		return
	}
	hist, err := readKmsg(s.kmsgPath)
	if err != nil {
		s.log.Debug("kernel log unreadable; audit history unknown", zap.Error(err))
	}
	s.mu.Lock()
	ours := s.ourEnable
	s.mu.Unlock()
	v := judgeUnaudited(hist, bootedWithAudit(s.cmdline), start, enabled, ours)
	if !v.Unaudited {
		if !v.Known {
			s.log.Debug("cannot tell whether dockerd is audited", zap.String("reason", v.Reason))
		}
		sink.Set(scopeDaemon, nil)
		return
	}
	f := findings.New("audit.daemon_unaudited", findings.DaemonSubject(findings.KindAudit), v.Reason).
		With("pid", strconv.Itoa(pid))
	if !v.Known {
		f = f.With("evidence", "inferred: the kernel log has wrapped")
	}
	sink.Set(scopeDaemon, []findings.Finding{f})
}

// Scan implements findings.Source: it judges rule coverage and
// daemon_unaudited once, reading the kernel's state without changing it.
func (s *Source) Scan(ctx context.Context) error {
	if !s.cfg.Enabled || s.cfg.Mode == ModeOff {
		s.coverageUnknown(modeOffNote)
		return nil
	}
	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return fmt.Errorf("audit scan: opening the audit netlink socket (needs CAP_AUDIT_CONTROL): %w", err)
	}
	defer ctl.Close()
	st, err := ctl.GetStatus()
	if err != nil {
		return fmt.Errorf("audit scan: reading the kernel's audit status: %w", err)
	}
	if _, err := s.checkRules(ctl, nil, st.Enabled); err != nil {
		return fmt.Errorf("audit scan: %w", err)
	}
	s.judgeDaemon(st.Enabled)
	return ctx.Err()
}
