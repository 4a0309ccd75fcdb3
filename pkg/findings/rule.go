package findings

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Kind is what a finding is about.
type Kind string

const (
	KindContainer Kind = "container"
	KindDaemon    Kind = "daemon"
	KindFile      Kind = "file"
	KindAudit     Kind = "audit"
	// KindImage is a local image, judged whether or not a container uses it.
	KindImage Kind = "image"
)

// Kinds lists every subject kind, in display order.
func Kinds() []Kind { return []Kind{KindContainer, KindDaemon, KindFile, KindAudit, KindImage} }

// Rule is the metadata of one check. The catalogue lives in this package
// (rules_*.go, one file per kind) so that config validation, metrics and
// docs all see the same list whichever sources are enabled.
type Rule struct {
	ID          string
	CIS         string
	Kind        Kind
	Severity    Severity // default; overridable in config
	Title       string
	Remediation string
	// Source is the config section of the source that judges the rule
	// ("containers", "host", "audit"); the compliance report calls a check
	// judged only once that source has completed a judgement.
	Source string
}

var (
	catalogueMu sync.RWMutex
	catalogue   = map[string]Rule{}
)

// ruleOf returns the constructor of the catalogue entries of one kind,
// judged by the source named source (its config section).
func ruleOf(kind Kind, source string) func(id, cis string, sev Severity, title, fix string) Rule {
	return func(id, cis string, sev Severity, title, fix string) Rule {
		return Rule{ID: id, CIS: cis, Kind: kind, Severity: sev, Title: title, Remediation: fix, Source: source}
	}
}

// register adds rules to the catalogue. It panics on a duplicate ID because
// that is a programming error caught by any test run.
func register(rules ...Rule) {
	catalogueMu.Lock()
	defer catalogueMu.Unlock()
	for _, r := range rules {
		if _, dup := catalogue[r.ID]; dup {
			panic(fmt.Sprintf("findings: rule %q registered twice", r.ID))
		}
		catalogue[r.ID] = r
	}
}

// LookupRule returns the catalogue entry for id.
func LookupRule(id string) (Rule, bool) {
	catalogueMu.RLock()
	defer catalogueMu.RUnlock()
	r, ok := catalogue[id]
	return r, ok
}

// Rules returns the whole catalogue sorted by ID.
func Rules() []Rule {
	catalogueMu.RLock()
	defer catalogueMu.RUnlock()
	out := make([]Rule, 0, len(catalogue))
	for _, r := range catalogue {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CheckKinds reports every finding whose subject kind is not its rule's
// catalogued kind. The two must agree: /findings?kind= filters on the
// subject's kind, the README's catalogue shows the rule's. Sources' tests
// run their findings through it.
func CheckKinds(fs []Finding) error {
	var errs []error
	for _, f := range fs {
		r, ok := LookupRule(f.Rule)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("finding of unknown rule %q", f.Rule))
		case f.Subject.Kind != r.Kind:
			errs = append(errs, fmt.Errorf("rule %s is catalogued as kind %s but its finding on %q has kind %s",
				f.Rule, r.Kind, f.Subject.Name, f.Subject.Kind))
		}
	}
	return errors.Join(errs...)
}
