package findings

import (
	"errors"
	"fmt"
	"path"
)

// RuleOverride changes one rule's behaviour from config.
type RuleOverride struct {
	Disabled bool      `yaml:"disabled" json:"disabled"`
	Severity *Severity `yaml:"severity" json:"severity,omitempty"`
}

// Exemption accepts a finding with a reason. Selectors are ANDed; at least
// one must be set. Globs use path.Match syntax.
type Exemption struct {
	Rule      string            `yaml:"rule" json:"rule"`
	Container string            `yaml:"container" json:"container,omitempty"`
	Image     string            `yaml:"image" json:"image,omitempty"`
	Labels    map[string]string `yaml:"labels" json:"labels,omitempty"`
	Path      string            `yaml:"path" json:"path,omitempty"`
	Reason    string            `yaml:"reason" json:"reason"`
}

// Policy is the config-driven part of judgement.
type Policy struct {
	Rules      map[string]RuleOverride `yaml:"rules" json:"rules,omitempty"`
	Exemptions []Exemption             `yaml:"exemptions" json:"exemptions,omitempty"`
}

// Validate rejects unknown rule IDs, exemptions without a reason or
// selector, and malformed globs, so that a typo is an error at start rather
// than a silently ignored line.
func (p Policy) Validate() error {
	var errs []error
	for id := range p.Rules {
		if _, ok := LookupRule(id); !ok {
			errs = append(errs, fmt.Errorf("rules: unknown rule ID %q", id))
		}
	}
	for i, e := range p.Exemptions {
		if err := e.Validate(); err != nil {
			errs = append(errs, &ConfigError{Key: fmt.Sprintf("exemptions[%d]", i), Err: err})
		}
	}
	return errors.Join(errs...)
}

// Validate reports what is wrong with one exemption: an unknown rule, no
// reason, no selector or a malformed glob.
func (e Exemption) Validate() error {
	if _, ok := LookupRule(e.Rule); !ok {
		return fmt.Errorf("unknown rule ID %q", e.Rule)
	}
	if e.Reason == "" {
		return errors.New("reason is required")
	}
	if e.Container == "" && e.Image == "" && len(e.Labels) == 0 && e.Path == "" {
		return errors.New("needs a selector: container, image, labels or path")
	}
	for _, g := range []string{e.Container, e.Image, e.Path} {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("bad glob %q: %w", g, err)
		}
	}
	return nil
}

// Matches reports whether the exemption covers the finding.
func (e Exemption) Matches(f Finding) bool {
	if e.Rule != f.Rule {
		return false
	}
	s := f.Subject
	if e.Container != "" && (s.Kind != KindContainer || !glob(e.Container, s.Name)) {
		return false
	}
	if e.Image != "" && !e.matchesImage(s) {
		return false
	}
	for k, v := range e.Labels {
		if got, ok := s.Labels[k]; !ok || got != v {
			return false
		}
	}
	if e.Path != "" && (s.Kind == KindContainer || s.Kind == KindImage || !glob(e.Path, s.Name)) {
		return false
	}
	return true
}

// matchesImage globs a container's image reference, or an image subject's
// name (its repository tag).
func (e Exemption) matchesImage(s Subject) bool {
	switch s.Kind {
	case KindContainer:
		return glob(e.Image, s.Image)
	case KindImage:
		return glob(e.Image, s.Name)
	}
	return false
}

func glob(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// apply returns f as the policy judges it, and false when its rule is
// disabled.
func (p Policy) apply(f Finding) (Finding, bool) {
	if o, ok := p.Rules[f.Rule]; ok {
		if o.Disabled {
			return f, false
		}
		if o.Severity != nil {
			f.Severity = *o.Severity
		}
	}
	f.Exempt, f.ExemptReason = false, ""
	for _, e := range p.Exemptions {
		if e.Matches(f) {
			f.Exempt, f.ExemptReason = true, e.Reason
			break
		}
	}
	return f, true
}
