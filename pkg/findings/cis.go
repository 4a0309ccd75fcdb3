package findings

import (
	"slices"
	"sort"
	"strings"
)

// Benchmark names the benchmark the compliance report follows.
const Benchmark = "CIS Docker Benchmark v1.6.0"

// Status is a check's result in the compliance report.
type Status string

const (
	// StatusPass: judged, and nothing fails it.
	StatusPass Status = "pass"
	// StatusFail: an open, non-exempt finding fails it.
	StatusFail Status = "fail"
	// StatusInfo: informational; there is something to review, but the
	// benchmark does not make it a failure.
	StatusInfo Status = "info"
	// StatusManual: dockward cannot judge it (or its source did not run);
	// a person must review it.
	StatusManual Status = "manual"
	// StatusNotApplicable: the check concerns something this host does not
	// have.
	StatusNotApplicable Status = "not_applicable"
)

// Statuses lists every status, in report order.
func Statuses() []Status {
	return []Status{StatusPass, StatusFail, StatusInfo, StatusManual, StatusNotApplicable}
}

// Check is one recommendation of the benchmark and how dockward judges it.
type Check struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Automated is the benchmark's own profile (Automated or Manual).
	Automated bool `json:"automated"`
	// DockerBench is docker-bench-security 1.6.0's number for it, and
	// DockerBenchScored whether that release scores it (a pass or a warn
	// that moves its score).
	DockerBench       string `json:"docker_bench"`
	DockerBenchScored bool   `json:"docker_bench_scored"`
	// DockerBenchInfoBranch is whether that release also has a branch that
	// counts the check without scoring it: an info line, say, when the
	// file the check is about does not exist.
	DockerBenchInfoBranch bool `json:"docker_bench_info_branch"`
	// Rules are the rules whose findings fail (or, when Informational,
	// inform) the check. A finding counts only when its CIS reference is
	// the check's ID, so one rule (file.mode) can judge several checks.
	Rules []string `json:"rules,omitempty"`
	// Informational checks report info rather than fail when a finding
	// is open: the benchmark asks for a review, not a setting.
	Informational bool `json:"informational,omitempty"`
	// InfoRules are rules of Rules whose findings inform rather than fail
	// (a list to review when there is nothing to judge it against).
	InfoRules []string `json:"info_rules,omitempty"`
	// Observed names the source that reports the check's result as an
	// observation (a count, events seen) rather than as findings. A check
	// with Rules may be observed too: its source then says, check by
	// check, whether it compared anything (pass), could not (manual) or
	// found nothing to judge (not_applicable), because there no open
	// finding means nothing by itself (audit rule coverage). An open
	// finding still fails it.
	Observed string `json:"observed_by,omitempty"`
	// Manual says why a person must review the check: always when it has
	// no rules, and for an observed check while there is no observation.
	Manual string `json:"manual,omitempty"`
}

// Section is the check's top-level benchmark section ("5" for 5.7).
func (c Check) Section() string {
	s, _, _ := strings.Cut(c.ID, ".")
	return s
}

// sectionTitles are the benchmark's section headings.
var sectionTitles = map[string]string{
	"1": "Host Configuration",
	"2": "Docker daemon configuration",
	"3": "Docker daemon configuration files",
	"4": "Container Images and Build File",
	"5": "Container Runtime",
	"6": "Docker Security Operations",
	"7": "Docker Swarm Configuration",
}

// SectionTitle returns the benchmark's heading for a section number.
func SectionTitle(section string) string { return sectionTitles[section] }

// Checks returns every check of the benchmark, in its order.
func Checks() []Check {
	out := make([]Check, len(benchmarkChecks))
	copy(out, benchmarkChecks)
	return out
}

// LookupCheck returns the check with the given ID.
func LookupCheck(id string) (Check, bool) {
	for _, c := range benchmarkChecks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// Observation is a source's own result for an observed check.
type Observation struct {
	Status Status `json:"status"`
	Note   string `json:"note"`
}

// ComplianceInput is what the report is computed from.
type ComplianceInput struct {
	// Open are the open findings, exempt ones included (Store.Open).
	Open []Finding
	// Judged reports whether a source (a Rule's Source) has completed a
	// judgement; a check of a source that has not is manual.
	Judged func(source string) bool
	// Observations are the observed checks' results, by check ID. A
	// source may also observe a check it judges by rules, to say it could
	// not judge it this time; an open finding still fails the check.
	Observations map[string]Observation
	// Disabled are the rules the policy disables (Store.DisabledRules): a
	// check one of whose rules is disabled is not judged, so it is manual
	// unless another of its rules fails it.
	Disabled []string
}

// CheckResult is one check's line in the report.
type CheckResult struct {
	Check
	Status Status `json:"status"`
	Note   string `json:"note,omitempty"`
	// Subjects are the subjects of the findings behind a fail or info
	// result ("container web", "file /etc/docker"), sorted.
	Subjects []string `json:"subjects,omitempty"`
	// Exempted are the subjects whose findings an exemption accepts.
	Exempted []string `json:"exempted,omitempty"`
}

// SectionResult groups a section's checks.
type SectionResult struct {
	ID     string        `json:"id"`
	Title  string        `json:"title"`
	Checks []CheckResult `json:"checks"`
}

// Compliance is the report: every check with its status, and a score.
type Compliance struct {
	Benchmark string          `json:"benchmark"`
	Sections  []SectionResult `json:"sections"`
	// Counts are the checks per status; every status is present.
	Counts map[Status]int `json:"counts"`
	// Checks is the number of checks (117).
	Checks int `json:"checks"`
	// Score is docker-bench-security's: one point per passed check, minus
	// one per failed check.
	Score int `json:"score"`
}

// Results returns every check's result in benchmark order.
func (c Compliance) Results() []CheckResult {
	var out []CheckResult
	for _, s := range c.Sections {
		out = append(out, s.Checks...)
	}
	return out
}

// Report judges every check of the benchmark from the input.
func Report(in ComplianceInput) Compliance {
	byRule := make(map[string][]Finding, len(in.Open))
	for _, f := range in.Open {
		byRule[f.Rule] = append(byRule[f.Rule], f)
	}
	rep := Compliance{Benchmark: Benchmark, Counts: make(map[Status]int, 5)}
	for _, st := range Statuses() {
		rep.Counts[st] = 0
	}
	for _, c := range benchmarkChecks {
		r := judgeCheck(c, byRule, in)
		if n := len(rep.Sections); n == 0 || rep.Sections[n-1].ID != c.Section() {
			rep.Sections = append(rep.Sections, SectionResult{ID: c.Section(), Title: SectionTitle(c.Section())})
		}
		sec := &rep.Sections[len(rep.Sections)-1]
		sec.Checks = append(sec.Checks, r)
		rep.Counts[r.Status]++
		rep.Checks++
	}
	rep.Score = rep.Counts[StatusPass] - rep.Counts[StatusFail]
	return rep
}

func judgeCheck(c Check, byRule map[string][]Finding, in ComplianceInput) CheckResult {
	r := CheckResult{Check: c}
	if missing := unjudgedSources(c, in.Judged); len(missing) > 0 {
		r.Status = StatusManual
		r.Note = "not judged: the " + strings.Join(missing, " and ") + " source has not completed a judgement (disabled or failing)"
		return r
	}
	if len(c.Rules) == 0 && c.Observed == "" {
		r.Status, r.Note = StatusManual, c.Manual
		return r
	}
	failing, exempted := map[string]bool{}, map[string]bool{}
	informs := false
	for _, id := range c.Rules {
		for _, f := range byRule[id] {
			switch {
			case f.CIS != c.ID:
				continue
			case f.Exempt:
				exempted[subjectLabel(f.Subject)] = true
				continue
			}
			failing[subjectLabel(f.Subject)] = true
			if c.Informational || slices.Contains(c.InfoRules, id) {
				informs = true
			} else {
				r.Status = StatusFail
			}
		}
	}
	r.Subjects, r.Exempted = sortedKeys(failing), sortedKeys(exempted)
	o, observed := in.Observations[c.ID]
	off := disabledRules(c, in.Disabled)
	switch {
	case r.Status == StatusFail:
	case len(off) > 0:
		r.Status = StatusManual
		r.Note = "not judged: the config disables " + strings.Join(off, " and ")
	case informs:
		r.Status = StatusInfo
	case observed:
		// An observed check's result, or a source saying it could not
		// judge a check this time (manual, not_applicable).
		r.Status, r.Note = o.Status, o.Note
	case c.Observed != "":
		r.Status, r.Note = StatusManual, c.Manual
		return r
	default:
		r.Status = StatusPass
	}
	if len(r.Exempted) > 0 {
		r.Note = joinNote(r.Note, "accepted by exemption: "+strings.Join(r.Exempted, ", "))
	}
	return r
}

// joinNote appends more to a note.
func joinNote(note, more string) string {
	if note == "" {
		return more
	}
	return note + "; " + more
}

// ChecksJudgedBy lists, in benchmark order, the checks with a rule that
// matches: a source that cannot judge yet (its input unreachable) observes
// those as manual rather than let them pass for want of findings.
func ChecksJudgedBy(match func(Rule) bool) []string {
	var out []string
	for _, c := range benchmarkChecks {
		for _, id := range c.Rules {
			if r, ok := LookupRule(id); ok && match(r) {
				out = append(out, c.ID)
				break
			}
		}
	}
	return out
}

// disabledRules lists c's rules that are in disabled.
func disabledRules(c Check, disabled []string) []string {
	var out []string
	for _, id := range c.Rules {
		if slices.Contains(disabled, id) {
			out = append(out, id)
		}
	}
	return out
}

// unjudgedSources lists the sources behind c that have not judged yet.
func unjudgedSources(c Check, judged func(string) bool) []string {
	if judged == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	need := func(src string) {
		if src != "" && !seen[src] && !judged(src) {
			seen[src] = true
			out = append(out, src)
		}
	}
	for _, id := range c.Rules {
		if r, ok := LookupRule(id); ok {
			need(r.Source)
		}
	}
	need(c.Observed)
	sort.Strings(out)
	return out
}

// subjectLabel names a subject in the report: its kind and name.
func subjectLabel(s Subject) string { return string(s.Kind) + " " + s.Name }

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
