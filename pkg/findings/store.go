package findings

import (
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Store holds the open findings. It is the only place that decides when a
// finding opens or resolves; metrics, logs, the API and `dockward scan` all
// read from it.
//
// Sources report complete judgements per scope (one container, the daemon,
// one file...) and the store diffs them against what was open, so a source
// never has to remember what it reported before.
type Store struct {
	mu     sync.RWMutex
	log    *zap.Logger
	now    func() time.Time
	policy Policy
	raw    map[string][]Finding              // scope -> findings as reported
	open   map[string]map[findingKey]Finding // scope -> key -> effective finding
	// series caches each open, non-exempt finding's const metric (scope ->
	// key), built when the finding opens or changes rather than on every
	// scrape, so a scrape of thousands of findings is a copy.
	series map[string]map[findingKey]cachedSeries
	opened map[openedKey]uint64
}

type openedKey struct {
	rule     string
	severity Severity
}

// NewStore returns an empty store that logs transitions to log.
func NewStore(log *zap.Logger) *Store {
	if log == nil {
		log = zap.NewNop()
	}
	return &Store{
		log:    log,
		now:    time.Now,
		raw:    map[string][]Finding{},
		open:   map[string]map[findingKey]Finding{},
		series: map[string]map[findingKey]cachedSeries{},
		opened: map[openedKey]uint64{},
	}
}

// Sink is what a source writes its judgements to. A scope is the source's
// own name for one thing it judges (a container ID, "daemon",
// "file:/etc/docker"); scopes are private to the source.
type Sink interface {
	// Set replaces every finding of scope with found. An empty found
	// resolves them all.
	Set(scope string, found []Finding)
	// Sync replaces a whole group of scopes, those whose name begins with
	// prefix ("" is every scope of the source), with the source's complete
	// judgement of that group, so the store, not the source, drops what
	// vanished: each scope in judged is Set to its findings, and every
	// other scope of the group the store holds is resolved, except those
	// named in keep. keep is for subjects that are still there but could
	// not be judged this time (a file that cannot be read, a container the
	// daemon could not describe): they keep their last judgement. prefix
	// bounds only what is resolved; a scope of judged outside the group is
	// Set all the same. It all happens under one lock, so no reader sees
	// half a judgement.
	Sync(prefix string, judged map[string][]Finding, keep ...string)
}

// SourceSink returns the sink for one source. Its scopes are private to the
// source and its log lines carry source=name.
func (s *Store) SourceSink(name string) Sink { return sourceSink{s: s, name: name} }

type sourceSink struct {
	s    *Store
	name string
}

func (k sourceSink) Set(scope string, found []Finding) {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	k.s.set(k.name, scope, found)
}

func (k sourceSink) Sync(prefix string, judged map[string][]Finding, keep ...string) {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	scopes := make([]string, 0, len(judged))
	for scope := range judged {
		scopes = append(scopes, scope)
	}
	sort.Strings(scopes) // transitions log in a stable order
	for _, scope := range scopes {
		k.s.set(k.name, scope, judged[scope])
	}
	kept := make(map[string]bool, len(keep))
	for _, scope := range keep {
		kept[scope] = true
	}
	group := k.name + "/" + prefix
	var gone []string
	for full := range k.s.raw {
		scope, ok := strings.CutPrefix(full, k.name+"/")
		if _, judged := judged[scope]; ok && strings.HasPrefix(full, group) && !judged && !kept[scope] {
			gone = append(gone, scope)
		}
	}
	sort.Strings(gone)
	for _, scope := range gone {
		k.s.set(k.name, scope, nil)
	}
}

// scopes lists the scopes this sink holds judgements in, sorted.
func (k sourceSink) scopes() []string {
	prefix := k.name + "/"
	k.s.mu.RLock()
	defer k.s.mu.RUnlock()
	var out []string
	for sc := range k.s.raw {
		if strings.HasPrefix(sc, prefix) {
			out = append(out, strings.TrimPrefix(sc, prefix))
		}
	}
	sort.Strings(out)
	return out
}

// set replaces one scope's judgement. Caller holds mu.
func (s *Store) set(source, scope string, found []Finding) {
	full := source + "/" + scope
	prev := s.open[full]
	now := s.now()
	merged := dedupe(withRuleDefaults(found))
	for i := range merged {
		if old, ok := prev[merged[i].key()]; ok {
			merged[i].FirstSeen = old.FirstSeen
		} else if merged[i].FirstSeen.IsZero() {
			merged[i].FirstSeen = now
		}
	}
	if len(merged) == 0 {
		delete(s.raw, full)
	} else {
		s.raw[full] = merged
	}
	s.reconcile(source, full)
}

// reconcile recomputes one scope's effective findings from its raw
// judgement and the policy, logging every transition. Caller holds mu.
func (s *Store) reconcile(source, full string) {
	prev := s.open[full]
	next := make(map[findingKey]Finding, len(s.raw[full]))
	for _, f := range s.raw[full] {
		if eff, ok := s.policy.apply(f); ok {
			next[f.key()] = eff
		}
	}
	for k, old := range prev {
		if f, ok := next[k]; !ok || f.Severity != old.Severity || f.Exempt != old.Exempt {
			s.logResolved(source, old)
		}
	}
	for k, f := range next {
		if old, ok := prev[k]; !ok || f.Severity != old.Severity || f.Exempt != old.Exempt {
			s.logOpened(source, f)
		}
	}
	if len(next) == 0 {
		delete(s.open, full)
		delete(s.series, full)
		return
	}
	s.open[full] = next
	s.series[full] = cacheSeries(s.series[full], next)
}

// withRuleDefaults fills the CIS reference and remediation from the catalogue
// where a source left them empty (a Finding built without New).
func withRuleDefaults(found []Finding) []Finding {
	out := make([]Finding, len(found))
	for i, f := range found {
		if r, ok := LookupRule(f.Rule); ok {
			if f.CIS == "" {
				f.CIS = r.CIS
			}
			if f.Remediation == "" {
				f.Remediation = r.Remediation
			}
		}
		out[i] = f
	}
	return out
}

// dedupe keeps one finding per (rule, subject): the most severe, with the
// details of the others merged in, because a series is per (rule, subject).
func dedupe(found []Finding) []Finding {
	out := make([]Finding, 0, len(found))
	idx := make(map[findingKey]int, len(found))
	for _, f := range found {
		i, ok := idx[f.key()]
		if !ok {
			idx[f.key()] = len(out)
			out = append(out, f)
			continue
		}
		keep, other := out[i], f
		if f.Severity < keep.Severity {
			keep, other = f, out[i]
		}
		for k, v := range other.Details {
			if _, exists := keep.Details[k]; !exists {
				keep = keep.With(k, v)
			}
		}
		out[i] = keep
	}
	return out
}

// ApplyPolicy installs a new policy (at start and on reload) and re-judges
// every open finding under it. Each exemption is logged once here so that
// nothing is hidden silently.
func (s *Store) ApplyPolicy(p Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
	for _, e := range p.Exemptions {
		s.log.Info("exemption in force", zap.String("source", "findings"), zap.String("rule", e.Rule),
			zap.String("container", e.Container), zap.String("image", e.Image), zap.Any("labels", e.Labels),
			zap.String("path", e.Path), zap.String("reason", e.Reason))
	}
	for id, o := range p.Rules {
		if o.Disabled {
			s.log.Info("rule disabled by config", zap.String("source", "findings"), zap.String("rule", id))
		}
	}
	scopes := make(map[string]bool, len(s.raw)+len(s.open))
	for sc := range s.raw {
		scopes[sc] = true
	}
	for sc := range s.open {
		scopes[sc] = true
	}
	for sc := range scopes {
		s.reconcile(strings.SplitN(sc, "/", 2)[0], sc)
	}
}

// DisabledRules lists the rules the policy disables, sorted: nothing judges
// them, so the compliance report never passes a check for want of their
// findings.
func (s *Store) DisabledRules() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id, o := range s.policy.Rules {
		if o.Disabled {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Open returns a snapshot of the open findings, exempt ones included,
// sorted by severity, rule and subject.
func (s *Store) Open() []Finding {
	s.mu.RLock()
	out := make([]Finding, 0, len(s.open)*4)
	for _, m := range s.open {
		for _, f := range m {
			out = append(out, f)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Subject.key().less(b.Subject.key())
	})
	return out
}

func (s *Store) logOpened(source string, f Finding) {
	if f.Exempt {
		s.log.Info("finding exempted", findingFields(source, f, zap.String("reason", f.ExemptReason))...)
		return
	}
	s.opened[openedKey{f.Rule, f.Severity}]++
	level := zapcore.WarnLevel
	if f.Severity == Critical {
		level = zapcore.ErrorLevel
	}
	s.log.Log(level, "finding opened", findingFields(source, f)...)
}

func (s *Store) logResolved(source string, f Finding) {
	if f.Exempt {
		return
	}
	s.log.Info("finding resolved", findingFields(source, f)...)
}

func findingFields(source string, f Finding, extra ...zap.Field) []zap.Field {
	fs := []zap.Field{
		zap.String("source", source),
		zap.String("rule", f.Rule),
		zap.String("severity", f.Severity.String()),
		zap.String("cis", f.CIS),
		zap.String("subject", f.Subject.Name),
		zap.String("detail", f.Message),
	}
	if f.Subject.Kind == KindContainer {
		fs = append(fs, zap.Dict("container",
			zap.String("id", f.Subject.ShortID()),
			zap.String("name", f.Subject.Name),
			zap.String("image", f.Subject.Image)))
	} else {
		fs = append(fs, zap.String("path", f.Subject.Name))
	}
	if len(f.Details) > 0 {
		fs = append(fs, zap.Any("details", f.Details))
	}
	return append(fs, extra...)
}
