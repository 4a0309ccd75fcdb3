package auditd

import (
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dockward/dockward/pkg/auditd/reassembly"
	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// Pipeline turns raw records into classified events: the reassembly
// stream (header parse, reassembly, field parse), then the watch each event
// is about (by its paths), what it did there (its access), whether that is
// routine, a counter increment and, for a write or attribute change by a
// process that is not an expected writer, one log line with every actor
// field. Changes to audit itself go to onChange with their actor. It is
// not safe for concurrent use: one goroutine feeds it and calls Maintain.
type Pipeline struct {
	*reassembly.Stream
	watches  []Watch
	match    *watchMatcher
	expected map[string]map[string]bool
	m        *metrics
	log      *zap.Logger
	users    *userCache

	containerName  func(id string) (string, bool)
	containerImage func(id string) (string, bool)
	// det matches events to the runtime detections; nil when they are off.
	det  *detections
	detM *detectionMetrics
	// onDetection, when set, sees every detection (tests).
	onDetection func(ev *record.Event, d Detected)
	// procRoot is where live processes are looked up for container
	// attribution; empty when the records are not live (a replayed log).
	procRoot string
	// onChange sees every change to audit itself (CONFIG_CHANGE and
	// DAEMON_* records), with its actor resolved.
	onChange func(c auditChange)
	// onRuleKey hears each new host rule key seen on an event about a
	// watched path (at most maxRuleKeys); ruleKeys are those already told.
	onRuleKey func(key string)
	ruleKeys  map[string]bool
	// onEvent, when set, sees every classified event (tests).
	onEvent func(ev *record.Event, w Watch, expected bool)

	limit *logLimiter
	// containers remembers the container of processes seen alive, for
	// their children's events after they exited.
	containers *pidContainers
}

// logLimiter bounds the unexpected-event lines per watch key: a burst,
// then a steady rate. Every event is still counted; dropped lines are
// counted in dockward_audit_log_lines_suppressed_total and reported on the
// key's next line, so a write storm cannot flood the log pipeline.
type logLimiter struct {
	now     func() time.Time
	tokens  map[string]float64
	last    map[string]time.Time
	dropped map[string]uint64
}

const (
	logBurst = 100 // lines per key at once
	logRate  = 20  // lines per key per second after the burst
)

func newLogLimiter() *logLimiter {
	return &logLimiter{now: time.Now, tokens: map[string]float64{}, last: map[string]time.Time{}, dropped: map[string]uint64{}}
}

// allow reports whether a line for key may be written, and how many were
// dropped since the last one written.
func (l *logLimiter) allow(key string) (bool, uint64) {
	now := l.now()
	tok, seen := l.tokens[key]
	if !seen {
		tok = logBurst
	} else {
		tok = min(logBurst, tok+now.Sub(l.last[key]).Seconds()*logRate)
	}
	l.last[key] = now
	if tok < 1 {
		l.tokens[key] = tok
		l.dropped[key]++
		return false, 0
	}
	l.tokens[key] = tok - 1
	d := l.dropped[key]
	l.dropped[key] = 0
	return true, d
}

// PipelineOptions are the pipeline's collaborators.
type PipelineOptions struct {
	Log *zap.Logger
	// ContainerName resolves a container ID to its name; may be nil.
	ContainerName func(id string) (string, bool)
	// ContainerImage resolves a container ID to its image; may be nil.
	ContainerImage func(id string) (string, bool)
	// ReassemblyTimeout bounds how long an incomplete event is held.
	ReassemblyTimeout time.Duration
	// Host is the host's root, whose /etc/passwd names users; the zero
	// Root is this machine's /.
	Host hostfs.Root
}

func newPipeline(ws []Watch, m *metrics, o PipelineOptions) (*Pipeline, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	p := &Pipeline{
		watches:        ws,
		match:          newWatchMatcher(ws, o.Host),
		expected:       map[string]map[string]bool{},
		m:              m,
		log:            o.Log,
		users:          newUserCache(o.Host),
		containerName:  o.ContainerName,
		containerImage: o.ContainerImage,
		procRoot:       "/proc",
		limit:          newLogLimiter(),
		containers:     newPIDContainers(),
		ruleKeys:       map[string]bool{},
	}
	for _, w := range ws {
		set := p.expected[w.Key]
		if set == nil {
			set = map[string]bool{}
			p.expected[w.Key] = set
		}
		for _, e := range w.Expected {
			set[e] = true
		}
	}
	st, err := reassembly.New(reassembly.Options{
		Counters: reassembly.Counters{Records: m.records, ParseErrors: m.parseErrors,
			SequenceGaps: m.sequenceGaps, LateRecords: m.lateRecords},
		Timeout:  o.ReassemblyTimeout,
		OnEvent:  p.classify,
		OnChange: p.change,
	})
	if err != nil {
		return nil, err
	}
	p.Stream = st
	return p, nil
}

// classify judges one event: the watch it is about, what it did there,
// whether that is routine (a read or an execution, or a change by one of
// the watch's expected writers), the counter and the log line.
func (p *Pipeline) classify(ev *record.Event) {
	// The runtime detections come first: a mount under /var/lib/docker
	// is a mount, not a write to Docker's state.
	if p.det != nil && p.detect(ev) {
		return
	}
	w, path, ok := p.match.match(ev, p.procRoot)
	if !ok {
		p.m.unmatched.Inc()
		return
	}
	if ev.Key != "" && !p.ruleKeys[ev.Key] && len(p.ruleKeys) < maxRuleKeys {
		p.ruleKeys[ev.Key] = true
		if p.onRuleKey != nil {
			p.onRuleKey(ev.Key)
		}
	}
	access := ev.Access()
	// After a package upgrade replaces a running daemon's binary, the
	// kernel names its executable "PATH (deleted)" until it restarts.
	expected := !access.Changes() || p.expected[w.Key][strings.TrimSuffix(ev.Exe, " (deleted)")]
	p.m.eventCounter(w.Key, access, expected).Inc()
	if p.onEvent != nil {
		p.onEvent(ev, w, expected)
	}
	switch {
	case !expected:
		p.logUnexpected(ev, w, path, access)
	case access == record.AccessOther:
		if ce := p.log.Check(zapcore.DebugLevel, "audit event of a syscall dockward does not class"); ce != nil {
			ce.Write(zap.String("key", w.Key), zap.String("rule_key", ev.Key), zap.String("syscall", ev.Syscall),
				zap.String("path", path), zap.String("exe", ev.Exe), zap.Uint32("serial", ev.Serial))
		}
	}
}

// Actor is who did it, as logged.
type Actor struct {
	Exe, Comm                  string
	PID, PPID, UID, AUID       int64
	User, AUIDUser             string
	ContainerID, ContainerName string
}

// MarshalLogObject writes the actor as the `actor` object of a log line.
func (a Actor) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("exe", a.Exe)
	enc.AddString("comm", a.Comm)
	enc.AddInt64("pid", a.PID)
	enc.AddInt64("ppid", a.PPID)
	enc.AddInt64("uid", a.UID)
	enc.AddInt64("auid", a.AUID)
	enc.AddString("user", a.User)
	enc.AddString("auid_user", a.AUIDUser)
	if a.ContainerID != "" {
		_ = enc.AddObject("container", containerObj{a.ContainerID, a.ContainerName})
	}
	return nil
}

type containerObj struct{ id, name string }

func (c containerObj) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("id", findings.ShortID(c.id))
	enc.AddString("name", c.name)
	return nil
}

// attribute resolves the actor of an event: names (cached) and, when the
// process or its parent lives in a container cgroup, the container.
func (p *Pipeline) attribute(ev *record.Event) Actor { return p.actor(ev, p.containerID(ev)) }

// containerID is the container the event's process lives in, "" for the
// host or a replayed log.
func (p *Pipeline) containerID(ev *record.Event) string {
	if p.procRoot == "" {
		return ""
	}
	return p.containers.of(p.procRoot, ev.PID, ev.PPID)
}

// actor is the event's actor in container id (resolved already).
func (p *Pipeline) actor(ev *record.Event, id string) Actor {
	a := Actor{Exe: ev.Exe, Comm: ev.Comm, PID: ev.PID, PPID: ev.PPID, UID: ev.UID, AUID: ev.AUID,
		User: ev.UIDName, AUIDUser: ev.AUIDName, ContainerID: id}
	if a.User == "" {
		a.User = p.users.name(ev.UID)
	}
	if a.AUIDUser == "" {
		a.AUIDUser = p.users.name(ev.AUID)
	}
	if a.ContainerID != "" && p.containerName != nil {
		a.ContainerName, _ = p.containerName(a.ContainerID)
	}
	return a
}

// logUnexpected writes the one log line of a write or attribute change by
// an unexpected writer: error for binaries, warn for configuration and
// state. key is dockward's watch key; rule_key is the key of the host rule
// that reported it, which may mean something else.
func (p *Pipeline) logUnexpected(ev *record.Event, w Watch, path string, access record.Access) {
	level := zapcore.WarnLevel
	if w.Kind == KindBinary {
		level = zapcore.ErrorLevel
	}
	ce := p.log.Check(level, "audit event by an unexpected writer")
	if ce == nil {
		return
	}
	ok, dropped := p.limit.allow(w.Key)
	if !ok {
		p.m.suppressedCounter(w.Key).Inc()
		return
	}
	a := p.attribute(ev)
	fields := []zap.Field{
		zap.String("key", w.Key),
		zap.String("rule_key", ev.Key),
		zap.String("access", string(access)),
		zap.String("path", path),
		zap.String("watch", w.Path),
		zap.String("syscall", ev.Syscall),
		zap.Bool("success", ev.Success),
		zap.Int64("exit", ev.Exit),
		zap.Object("actor", a),
		zap.Uint32("serial", ev.Serial),
		zap.Time("event_time", ev.Time),
	}
	if paths := ev.AllPaths(); len(paths) > 1 {
		fields = append(fields, zap.Strings("paths", paths))
	}
	if ev.CWD != "" {
		fields = append(fields, zap.String("cwd", ev.CWD))
	}
	if a.ContainerID != "" {
		fields = append(fields, zap.Object("container", containerObj{a.ContainerID, a.ContainerName}))
	}
	if dropped > 0 {
		fields = append(fields, zap.Uint64("lines_suppressed_before", dropped))
	}
	ce.Write(fields...)
}
