package auditd

import (
	"slices"
	"strings"

	"github.com/dockward/dockward/pkg/auditd/rules"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
)

// coverageState is what the last attempt to compare the kernel's audit
// rules with the watches found: every watch's coverage (in s.watches
// order), or why there is none. Without it no open audit.watch_missing
// means nothing, so the watch checks are observed as manual.
type coverageState struct {
	cov []rules.Coverage // nil until compared
	why string           // why coverage is not known, while cov is nil
}

// notComparedYet is why coverage is unknown before the first comparison.
const notComparedYet = "the kernel's audit rules have not been compared with the watches yet"

// coverageKnown records a comparison of the kernel's rules with every watch.
func (s *Source) coverageKnown(cov []rules.Coverage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cov = coverageState{cov: cov}
}

// coverageUnknown records that the rules could not be compared, and why:
// the watch checks are manual until a comparison succeeds. The findings of
// the last comparison stay open, as the sink keeps them.
func (s *Source) coverageUnknown(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cov = coverageState{why: why}
}

// watchChecks are the benchmark checks the built-in watches are about
// (1.1.3-1.1.18), in the benchmark's order; the docker CLI's watch has
// none of its own.
func watchChecks() []string {
	var out []string
	for _, c := range findings.Checks() {
		if slices.ContainsFunc(builtinWatches, func(b builtinWatch) bool { return b.CIS == c.ID }) {
			out = append(out, c.ID)
		}
	}
	return out
}

// absentNotApplicable reports whether the check cis concerns a path only
// where it exists: docker-bench-security 1.6.0 reports such a check as
// info, unscored, when the file is missing. Its 1.1.3 and 1.1.4 ask for the
// rule in every case, so an absent path is judged there; so is a watch
// from config (no check).
func absentNotApplicable(cis string) bool {
	c, ok := findings.LookupCheck(cis)
	return ok && c.DockerBenchInfoBranch
}

// judgedWhenAbsent reports whether coverage of a path that does not exist
// is judged: the benchmark checks that ask for the rule whatever the host
// has (1.1.3, 1.1.4).
func judgedWhenAbsent(cis string) bool {
	_, ok := findings.LookupCheck(cis)
	return ok && !absentNotApplicable(cis)
}

// Observations are the compliance report's results for the audit watch
// checks (CIS 1.1.3-1.1.18), one per check in every state: manual with
// the reason while the kernel's rules have not been compared with the
// watches (audit mode off, the rules unreadable from here), not_applicable
// where none of the check's paths exists (and docker-bench-security leaves
// it unscored), and pass where every path judged is covered. A watch that
// is not covered is an audit.watch_missing finding, which fails the check
// whatever its observation says.
func (s *Source) Observations() map[string]findings.Observation {
	s.mu.Lock()
	st := s.cov
	s.mu.Unlock()
	out := map[string]findings.Observation{}
	for _, id := range watchChecks() {
		if st.cov == nil {
			why := st.why
			if why == "" {
				why = notComparedYet
			}
			out[id] = findings.Observation{Status: findings.StatusManual, Note: "not judged: " + why}
			continue
		}
		out[id] = s.observeWatchCheck(id, st.cov)
	}
	return out
}

// observeWatchCheck judges one watch check from a comparison.
func (s *Source) observeWatchCheck(id string, cov []rules.Coverage) findings.Observation {
	var covered, uncovered, absent []string
	for i, w := range s.watches {
		if w.CIS != id || i >= len(cov) {
			continue
		}
		c := cov[i]
		switch {
		case !c.Exists && absentNotApplicable(id):
			absent = append(absent, w.Path)
		case c.Covered:
			covered = append(covered, w.Path+" (key "+c.ByKey+")")
		default:
			uncovered = append(uncovered, w.Path)
		}
	}
	switch {
	case len(covered)+len(uncovered) > 0:
		note := "kernel audit rules cover " + strings.Join(covered, ", ")
		if len(covered) == 0 {
			note = "no kernel audit rule covers " + strings.Join(uncovered, ", ")
		} else if len(uncovered) > 0 {
			note += "; not " + strings.Join(uncovered, ", ")
		}
		return findings.Observation{Status: findings.StatusPass, Note: note}
	case absentNotApplicable(id):
		return findings.Observation{Status: findings.StatusNotApplicable, Note: "no such file on this host: " + strings.Join(absentPaths(id, absent), ", ")}
	}
	return findings.Observation{Status: findings.StatusManual,
		Note: "not judged: " + strings.Join(absentPaths(id, nil), ", ") + " was not found on this host, so no rule on it can be checked"}
}

// absentPaths names what check id is about when none of it exists: the
// watched paths that do not exist, else the built-in candidates or program
// names (a program is watched only where it is found).
func absentPaths(id string, watched []string) []string {
	if len(watched) > 0 {
		return watched
	}
	var out []string
	for _, b := range builtinWatches {
		switch {
		case b.CIS != id:
		case b.Binary != "":
			out = append(out, b.Binary+" (searched "+strings.Join(hostfs.BinDirs, ", ")+")")
		default:
			out = append(out, b.Candidates...)
		}
	}
	return out
}
