package auditd

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dockward/dockward/pkg/auditd/detect"
	"github.com/dockward/dockward/pkg/auditd/record"
	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// detectionKeyPrefix is reserved for dockward's own rule keys (the
// detections' detect.RuleKey); configured watches may not use it.
const detectionKeyPrefix = "dockward_"

// Reasons an event of a detection's rules is routine, not a detection.
const (
	routineExpectedActor = "expected_actor" // an expected actor made the call
	routineHostProcess   = "host_process"   // a host process made a call only containers' are reported for
)

// validateExpectedActors checks audit.expected_actors: known detections,
// valid entries.
func validateExpectedActors(m map[string][]string) []error {
	var errs []error
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := detect.Lookup(name); !ok {
			errs = append(errs, fmt.Errorf("audit.expected_actors: unknown detection %q (see the detections table in README.md)", name))
		}
		for _, e := range m[name] {
			if err := detect.ValidateActor(e); err != nil {
				errs = append(errs, fmt.Errorf("audit.expected_actors.%s: %w", name, err))
			}
		}
	}
	return errs
}

// detections is the runtime detections as this host runs them: the
// catalogue, the host's ABIs and watched files, the kernel rules, the
// matcher and each detection's expected actors.
type detections struct {
	ds      []detect.Detection
	abis    []detect.ABI
	files   detect.Files
	rules   []detect.Rule
	matcher *detect.Matcher
	actors  map[string]detect.Actors
	// kernelThread reports whether a PID is a kernel thread.
	kernelThread func(pid int64) bool
	// filesErr is why the cgroup v1 hierarchies could not be listed.
	filesErr error
}

// newDetections builds the detections for cfg, or nil when they are off.
// The release_agent files are those of the cgroup v1 hierarchies the host's
// init sees (its mountinfo on host); expected actors are found on host.
func newDetections(cfg Config, procRoot string, host hostfs.Root) (*detections, error) {
	if !cfg.Detections {
		return nil, nil
	}
	abis, err := detect.ABIs(runtime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("%w; set audit.detections: false to run without them", err)
	}
	d := &detections{ds: detect.Catalogue(), abis: abis, actors: map[string]detect.Actors{},
		kernelThread: detect.KernelThread(procRoot)}
	d.files.CorePattern, d.files.Local = detect.CorePatternPath, host.Local
	if mounts, err := host.Mounts(); err != nil {
		d.filesErr = err
	} else {
		d.files.ReleaseAgent = detect.ReleaseAgentFiles(mounts)
	}
	d.rules = detect.Rules(d.ds, abis, d.files)
	d.matcher = detect.NewMatcher(d.ds)
	r := resolver{host: host}
	resolve := func(prog string) []string { return r.writers([]string{prog}) }
	for _, det := range d.ds {
		entries := det.Expected
		if e, ok := cfg.ExpectedActors[det.Name]; ok {
			entries = e
		}
		d.actors[det.Name] = detect.NewActors(entries, resolve)
	}
	return d, nil
}

// limitKeys are the detections' keys in the log limiter and its
// suppressed-line counter.
func (d *detections) limitKeys() []string {
	out := make([]string, len(d.ds))
	for i, det := range d.ds {
		out[i] = det.LimitKey()
	}
	return out
}

// detectionMetrics are the detections' own series.
type detectionMetrics struct {
	detected *prometheus.CounterVec
	routine  *prometheus.CounterVec
}

func newDetectionMetrics(reg prometheus.Registerer, d *detections) (*detectionMetrics, error) {
	m := &detectionMetrics{
		detected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_runtime_detections_total",
			Help: "Runtime detections (container escape attempts and host kernel changes), by detection, outcome (success, failure) and origin (container, host)."},
			[]string{"detection", "outcome", "origin"}),
		routine: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_runtime_routine_events_total",
			Help: "Events of the detections' rules that are routine, not detections: by an expected actor, or by a host process for a detection only containers are reported for."},
			[]string{"detection", "reason"}),
	}
	for _, det := range d.ds {
		for _, o := range detect.Outcomes {
			m.detected.WithLabelValues(det.Name, string(o), string(detect.OriginContainer))
			if det.HostToo {
				m.detected.WithLabelValues(det.Name, string(o), string(detect.OriginHost))
			}
		}
		m.routine.WithLabelValues(det.Name, routineExpectedActor)
		if !det.HostToo {
			m.routine.WithLabelValues(det.Name, routineHostProcess)
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.detected, m.routine} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering runtime detection metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Detected is one runtime detection as the source reports it.
type Detected struct {
	detect.Match
	Origin detect.Origin
	Actor  Actor
	Image  string
}

// detect handles an event of a detection's rules and reports whether it
// was one: routine events are counted, detections counted and logged.
func (p *Pipeline) detect(ev *record.Event) bool {
	m, ok := p.det.matcher.Match(ev)
	if !ok {
		return false
	}
	name := m.Detection.Name
	// The runtime's own work is most of these events: it is judged on the
	// container alone, and only a detection's actor is named.
	id := p.containerID(ev)
	origin := detect.OriginHost
	if id != "" {
		origin = detect.OriginContainer
	}
	proc := detect.Process{Exe: ev.Exe, Comm: ev.Comm, PPID: ev.PPID, Origin: origin}
	if id != "" {
		proc.Container, proc.Path = id, ev.Path()
	}
	switch {
	case origin == detect.OriginHost && !m.Detection.HostToo:
		p.detM.routine.WithLabelValues(name, routineHostProcess).Inc()
		return true
	case p.det.actors[name].Expected(proc, p.det.kernelThread):
		p.detM.routine.WithLabelValues(name, routineExpectedActor).Inc()
		return true
	}
	p.detM.detected.WithLabelValues(name, string(m.Outcome), string(origin)).Inc()
	a := p.actor(ev, id)
	d := Detected{Match: m, Origin: origin, Actor: a}
	if a.ContainerID != "" && p.containerImage != nil {
		d.Image, _ = p.containerImage(a.ContainerID)
	}
	if p.onDetection != nil {
		p.onDetection(ev, d)
	}
	p.logDetection(ev, d)
	return true
}

// logDetection writes the detection's one error line, rate-limited per
// detection as unexpected writers are per watch key.
func (p *Pipeline) logDetection(ev *record.Event, d Detected) {
	ce := p.log.Check(zapcore.ErrorLevel, "runtime detection")
	if ce == nil {
		return
	}
	key := d.Detection.LimitKey()
	ok, dropped := p.limit.allow(key)
	if !ok {
		p.m.suppressedCounter(key).Inc()
		return
	}
	ctr := detectedContainer{id: "host"}
	if d.Origin == detect.OriginContainer {
		ctr = detectedContainer{id: findings.ShortID(d.Actor.ContainerID), name: d.Actor.ContainerName, image: d.Image}
	}
	fields := []zap.Field{
		zap.String("detection", d.Detection.Name),
		zap.String("outcome", string(d.Outcome)),
		zap.String("origin", string(d.Origin)),
		zap.Object("container", ctr),
		zap.String("syscall", ev.Syscall),
		zap.String("arch", ev.Arch),
		zap.Bool("success", ev.Success),
		zap.Int64("exit", ev.Exit),
		zap.String("key", ev.Key),
		zap.Object("actor", d.Actor),
		zap.Uint32("serial", ev.Serial),
		zap.Time("event_time", ev.Time),
	}
	if d.Detail != "" {
		fields = append(fields, zap.String("detail", d.Detail))
	}
	if path := ev.Path(); path != "" {
		fields = append(fields, zap.String("path", path))
	}
	if d.Detection.Falco != "" {
		fields = append(fields, zap.String("falco_rule", d.Detection.Falco))
	}
	if dropped > 0 {
		fields = append(fields, zap.Uint64("lines_suppressed_before", dropped))
	}
	ce.Write(fields...)
}

// detectedContainer is the `container` of a detection: the container's
// id, name and image, or the id "host" for a host process.
type detectedContainer struct{ id, name, image string }

func (c detectedContainer) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("id", c.id)
	if c.name != "" {
		enc.AddString("name", c.name)
	}
	if c.image != "" {
		enc.AddString("image", c.image)
	}
	return nil
}

const scopeDetectionPrefix = "detection:"

// judgeDetections reports audit.detection_rule_missing for every detection
// whose calls or files no kernel rule audits for every process, one scope
// per detection; nothing when detections are off.
func (s *Source) judgeDetections(krules []rules.Rule, enabled uint32) {
	judged := map[string][]findings.Finding{}
	if s.det != nil {
		for _, c := range detect.CheckCoverage(s.det.ds, s.det.abis, s.det.files, krules) {
			var found []findings.Finding
			switch {
			case len(c.Missing) > 0:
				found = append(found, s.detectionMissing(c.Detection, fmt.Sprintf("no kernel audit rule reports %d of the calls or files the %s detection needs", len(c.Missing), c.Detection)).
					With("missing", joinLimited(c.Missing, 8)))
			case enabled == 0:
				found = append(found, s.detectionMissing(c.Detection, "rules cover the "+c.Detection+" detection but kernel audit is disabled"))
			}
			judged[scopeDetectionPrefix+c.Detection] = found
		}
	}
	s.d.Sink.Sync(scopeDetectionPrefix, judged)
}

func (s *Source) detectionMissing(name, msg string) findings.Finding {
	f := findings.New("audit.detection_rule_missing", findings.Subject{Kind: findings.KindAudit, Name: name}, msg)
	f.Remediation = "Install deploy/audit/50-dockward-escape.rules in /etc/audit/rules.d (and the release_agent rules of docs/audit.md), then augenrules --load; or let dockward run in unicast mode"
	return f
}

// joinLimited joins at most n items, saying how many more there are.
func joinLimited(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// newDetections builds the source's detections and their series, with
// known series in the suppressed-line counter (per detection) and the
// reinstall counter (their rule key).
func (s *Source) newDetections() error {
	det, err := newDetections(s.cfg, s.procRoot, s.d.Host)
	if err != nil || det == nil {
		return err
	}
	if det.filesErr != nil {
		s.log.Warn("the host's cgroup v1 hierarchies are unknown; release_agent writes are not watched", zap.Error(det.filesErr))
	}
	if s.detM, err = newDetectionMetrics(s.d.Registerer, det); err != nil {
		return err
	}
	for _, k := range det.limitKeys() {
		s.m.suppressedCounter(k)
	}
	if _, ok := s.m.reinstalledKey[detect.RuleKey]; !ok {
		s.m.reinstalledKey[detect.RuleKey] = s.m.reinstalled.WithLabelValues(detect.RuleKey)
	}
	s.det = det
	return nil
}
