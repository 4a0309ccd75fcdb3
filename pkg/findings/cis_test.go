package findings

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// dockerBenchCheck is one line of testdata/docker-bench-security-1.6.0.tsv.
type dockerBenchCheck struct {
	id, flags, title string
	automated        bool
}

func (d dockerBenchCheck) scored() bool { return strings.Contains(d.flags, "S") }

func loadDockerBench(t *testing.T) map[string]dockerBenchCheck {
	t.Helper()
	f, err := os.Open("testdata/docker-bench-security-1.6.0.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	suffix := regexp.MustCompile(` \((Automated|Manual|Scored)\)$`)
	out := map[string]dockerBenchCheck{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 3 {
			t.Fatalf("bad docker-bench line %q", sc.Text())
		}
		m := suffix.FindStringSubmatch(p[2])
		if m == nil {
			t.Fatalf("docker-bench %s: no profile suffix in %q", p[0], p[2])
		}
		out[p[0]] = dockerBenchCheck{id: p[0], flags: p[1], title: suffix.ReplaceAllString(p[2], ""), automated: m[1] != "Manual"}
	}
	if len(out) != 117 {
		t.Fatalf("docker-bench list has %d checks, want 117", len(out))
	}
	return out
}

// sameText compares titles ignoring case, spacing and punctuation, which
// is all docker-bench's copies of the benchmark's titles differ by.
func sameText(a, b string) bool {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, strings.ToLower(s))
	}
	return norm(a) == norm(b)
}

// Every check of the benchmark is here once, and each one's number is
// proven by its text against docker-bench-security 1.6.0's: that is what
// catches a pair numbered the wrong way round (3.21 and 3.22).
func TestChecksMatchDockerBenchByText(t *testing.T) {
	db := loadDockerBench(t)
	checks := Checks()
	if len(checks) != 117 {
		t.Fatalf("%d checks, want the benchmark's 117 (sections 1-7)", len(checks))
	}
	ids, dbUsed := map[string]bool{}, map[string]bool{}
	for _, c := range checks {
		if ids[c.ID] || dbUsed[c.DockerBench] {
			t.Errorf("%s (docker-bench %s) listed twice", c.ID, c.DockerBench)
		}
		ids[c.ID], dbUsed[c.DockerBench] = true, true
		d, ok := db[c.DockerBench]
		switch {
		case !ok:
			t.Errorf("%s: docker-bench has no check %s", c.ID, c.DockerBench)
		case !sameText(c.Title, d.title):
			t.Errorf("%s is %q, but docker-bench's %s is %q", c.ID, c.Title, c.DockerBench, d.title)
		case c.Automated != d.automated:
			t.Errorf("%s: automated=%v, docker-bench says %v", c.ID, c.Automated, d.automated)
		case c.DockerBenchScored != d.scored() || c.DockerBenchInfoBranch != strings.Contains(d.flags, "C"):
			t.Errorf("%s: docker_bench_scored=%v info_branch=%v, but docker-bench's flags for %s are %q", c.ID,
				c.DockerBenchScored, c.DockerBenchInfoBranch, d.id, d.flags)
		}
		if SectionTitle(c.Section()) == "" {
			t.Errorf("%s: no section title for %q", c.ID, c.Section())
		}
	}
}

// Every automated check docker-bench-security 1.6.0 scores gets a pass or
// a fail from dockward: it has a rule that fails it (not only informational
// ones), so it is not only observed. (An observed check with such a rule,
// 1.1.3-1.1.18, passes only on its source's word; the audit source's tests
// and the scan of this machine prove that it gives it.)
func TestNoScoredCheckLeftWithoutPassOrFail(t *testing.T) {
	var left []string
	scored := 0
	for _, c := range Checks() {
		if !c.DockerBenchScored { // proven against docker-bench's list above
			continue
		}
		scored++
		failsIt := false
		for _, r := range c.Rules {
			failsIt = failsIt || !slices.Contains(c.InfoRules, r)
		}
		if !failsIt || c.Informational {
			left = append(left, c.ID)
		}
	}
	if scored != 90 {
		t.Errorf("docker-bench scores %d checks, want 90", scored)
	}
	if len(left) > 0 {
		t.Errorf("%d checks docker-bench-security scores are left without a pass or fail: %v", len(left), left)
	}
}

// The mapping and the catalogue agree: every rule a check names exists and
// can carry the check's number, and every rule whose own number is a
// check is mapped to that check.
func TestCheckRulesMatchCatalogue(t *testing.T) {
	mapped := map[string]map[string]bool{}
	for _, c := range Checks() {
		if len(c.Rules) == 0 && c.Observed == "" && c.Manual == "" {
			t.Errorf("%s has no rules, no observer and no reason to be manual", c.ID)
		}
		for _, id := range c.InfoRules {
			if !slices.Contains(c.Rules, id) {
				t.Errorf("%s: info rule %s is not one of its rules", c.ID, id)
			}
		}
		for _, id := range c.Rules {
			r, ok := LookupRule(id)
			if !ok {
				t.Errorf("%s names unknown rule %s", c.ID, id)
				continue
			}
			if r.CIS != c.ID && !strings.HasPrefix(c.ID, r.CIS+".") {
				t.Errorf("%s names %s, whose findings carry CIS %s", c.ID, id, r.CIS)
			}
			if r.Source == "" {
				t.Errorf("rule %s has no source", id)
			}
			if mapped[id] == nil {
				mapped[id] = map[string]bool{}
			}
			mapped[id][c.ID] = true
		}
	}
	for _, r := range Rules() {
		if _, isCheck := LookupCheck(r.CIS); isCheck && !mapped[r.ID][r.CIS] {
			t.Errorf("rule %s carries CIS %s but check %s does not list it", r.ID, r.CIS, r.CIS)
		}
	}
}

func TestReportStatuses(t *testing.T) {
	web := ContainerSubject("c1", "/web", "nginx:1", nil)
	exempt := New("container.host_pid", web, "host pid")
	exempt.Exempt = true
	owner := New("file.owner", Subject{Kind: KindFile, Name: "/etc/sysconfig/docker"}, "owned by bin")
	owner.CIS = "3.22"
	extra := New("file.mode", Subject{Kind: KindFile, Name: "/etc/extra"}, "0666") // CIS "3": no check
	in := ComplianceInput{
		Open: []Finding{New("container.privileged", web, "privileged"), exempt, owner, extra,
			New("daemon.no_default_ulimits", Subject{Kind: KindDaemon, Name: "dockerd"}, "no default ulimits")},
		Judged: func(src string) bool { return src != "audit" },
	}
	rep := Report(in)
	got := map[string]CheckResult{}
	for _, r := range rep.Results() {
		got[r.ID] = r
	}
	want := map[string]Status{
		"5.5": StatusFail, "5.16": StatusPass, "3.22": StatusFail, "3.21": StatusPass, "3.18": StatusPass,
		"2.8": StatusInfo, "6.2": StatusManual, "1.1.5": StatusManual, "4.2": StatusManual,
	}
	for id, st := range want {
		if got[id].Status != st {
			t.Errorf("%s: status %s, want %s (%+v)", id, got[id].Status, st, got[id])
		}
	}
	if s := got["5.5"].Subjects; len(s) != 1 || s[0] != "container web" {
		t.Errorf("5.5 subjects %v, want [container web]", s)
	}
	if !strings.Contains(got["5.16"].Note, "container web") {
		t.Errorf("5.16 does not name its exemption: %q", got["5.16"].Note)
	}
	if !strings.Contains(got["1.1.5"].Note, "audit source") {
		t.Errorf("1.1.5 does not say its source has not judged: %q", got["1.1.5"].Note)
	}
	if rep.Checks != 117 || rep.Score != rep.Counts[StatusPass]-rep.Counts[StatusFail] || rep.Counts[StatusFail] != 2 {
		t.Errorf("checks %d, score %d, counts %v", rep.Checks, rep.Score, rep.Counts)
	}
	if len(rep.Sections) != 7 || rep.Sections[4].Title != "Container Runtime" || len(rep.Sections[4].Checks) != 32 {
		t.Errorf("sections: %d, section 5 %q with %d checks", len(rep.Sections), rep.Sections[4].Title, len(rep.Sections[4].Checks))
	}
}

// An observed check takes its source's observation, is manual (with its
// reason) without one, and is manual while its source has not judged.
func TestObservedCheck(t *testing.T) {
	c := Check{ID: "6.1", Observed: "containers", Manual: "only the running agent counts"}
	obs := map[string]Observation{"6.1": {Status: StatusInfo, Note: "3 images, 1 unused"}}
	judged := func(string) bool { return true }
	if r := judgeCheck(c, nil, ComplianceInput{Judged: judged, Observations: obs}); r.Status != StatusInfo || r.Note != "3 images, 1 unused" {
		t.Errorf("with an observation: %s %q", r.Status, r.Note)
	}
	if r := judgeCheck(c, nil, ComplianceInput{Judged: judged}); r.Status != StatusManual || r.Note != c.Manual {
		t.Errorf("without an observation: %s %q", r.Status, r.Note)
	}
	notYet := func(string) bool { return false }
	if r := judgeCheck(c, nil, ComplianceInput{Judged: notYet, Observations: obs}); r.Status != StatusManual || !strings.Contains(r.Note, "containers source") {
		t.Errorf("source not judged: %s %q", r.Status, r.Note)
	}
}

// 1.1.2 without a trusted list only informs (the members, named); with one,
// an untrusted member fails it.
func TestInfoRulesInform(t *testing.T) {
	dockerd := Subject{Kind: KindDaemon, Name: "dockerd"}
	status := func(rule string) Status {
		for _, r := range Report(ComplianceInput{Open: []Finding{New(rule, dockerd, "alice")}}).Results() {
			if r.ID == "1.1.2" {
				return r.Status
			}
		}
		return ""
	}
	if got := status("daemon.docker_group_members"); got != StatusInfo {
		t.Errorf("members without a list: %s, want info", got)
	}
	if got := status("daemon.docker_group_untrusted"); got != StatusFail {
		t.Errorf("an untrusted member: %s, want fail", got)
	}
}

func TestComplianceCollectorSeries(t *testing.T) {
	web := ContainerSubject("c1", "/web", "nginx:1", nil)
	c := NewComplianceCollector(func() Compliance {
		return Report(ComplianceInput{Open: []Finding{New("container.privileged", web, "privileged")}})
	})
	if n := testutil.CollectAndCount(c, "dockward_cis_check"); n != 117*5 {
		t.Errorf("%d dockward_cis_check series, want 117 checks x 5 statuses", n)
	}
	want := `
# HELP dockward_cis_check CIS Docker Benchmark v1.6.0 checks: 1 for each check's current status, 0 for its other statuses.
# TYPE dockward_cis_check gauge
dockward_cis_check{check="5.5",section="5",status="fail"} 1
dockward_cis_check{check="5.5",section="5",status="pass"} 0
dockward_cis_check{check="5.6",section="5",status="pass"} 1
`
	got, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, "dockward_cis_check")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		if !strings.Contains(string(got), line) {
			t.Errorf("exposition lacks %q", line)
		}
	}
}

// An audit watch check (observed, and failed by audit.watch_missing) never
// passes for want of findings: without its source's observation it is
// manual; the source's manual and not_applicable stand; an open finding
// fails it whatever the observation says, and an exempt one leaves the
// observed pass with the exemption named.
func TestAuditWatchCheckPassesOnlyWhenCompared(t *testing.T) {
	etc := Subject{Kind: KindAudit, Name: "/etc/docker"}
	missing := New("audit.watch_missing", etc, "no kernel audit rule covers /etc/docker")
	missing.CIS = "1.1.6"
	exempt := missing
	exempt.Exempt = true
	judged := func(string) bool { return true }
	pass := Observation{Status: StatusPass, Note: "kernel audit rules cover /etc/docker (key docker)"}
	cases := []struct {
		name     string
		open     []Finding
		obs      map[string]Observation
		want     Status
		wantNote string
	}{
		{"no observation", nil, nil, StatusManual, "compared the kernel's audit rules"},
		{"not compared", nil, map[string]Observation{"1.1.6": {Status: StatusManual, Note: "audit mode is off"}}, StatusManual, "audit mode is off"},
		{"no such path", nil, map[string]Observation{"1.1.6": {Status: StatusNotApplicable, Note: "no /etc/docker"}}, StatusNotApplicable, "no /etc/docker"},
		{"covered", nil, map[string]Observation{"1.1.6": pass}, StatusPass, "key docker"},
		{"missing", []Finding{missing}, map[string]Observation{"1.1.6": pass}, StatusFail, ""},
		{"missing, not compared since", []Finding{missing}, map[string]Observation{"1.1.6": {Status: StatusManual, Note: "x"}}, StatusFail, ""},
		{"exempt", []Finding{exempt}, map[string]Observation{"1.1.6": pass}, StatusPass, "accepted by exemption: audit /etc/docker"},
	}
	for _, tc := range cases {
		var got CheckResult
		for _, r := range Report(ComplianceInput{Open: tc.open, Judged: judged, Observations: tc.obs}).Results() {
			if r.ID == "1.1.6" {
				got = r
			}
		}
		if got.Status != tc.want || !strings.Contains(got.Note, tc.wantNote) {
			t.Errorf("%s: %s %q, want %s with a note containing %q", tc.name, got.Status, got.Note, tc.want, tc.wantNote)
		}
	}
	for _, c := range Checks() {
		watched := slices.Contains(c.Rules, "audit.watch_missing")
		if watched != (c.Observed == "audit") || watched && c.Manual == "" {
			t.Errorf("%s: rules %v, observed by %q, manual %q: every audit watch check is observed by the audit source, with a reason to be manual",
				c.ID, c.Rules, c.Observed, c.Manual)
		}
	}
}

// ChecksJudgedBy lists the checks of the matching rules, in order.
func TestChecksJudgedBy(t *testing.T) {
	got := ChecksJudgedBy(func(r Rule) bool { return r.Source == "containers" && r.Kind == KindImage })
	if strings.Join(got, ",") != "4.6,4.7,4.9" {
		t.Errorf("checks of the containers source's image rules: %v, want 4.6, 4.7, 4.9", got)
	}
	if got := ChecksJudgedBy(func(Rule) bool { return false }); got != nil {
		t.Errorf("no rule matches, but %v", got)
	}
}

// A check whose rule the config disables is not judged: manual, naming the
// rule, unless another of its rules fails it.
func TestDisabledRuleLeavesCheckManual(t *testing.T) {
	web := ContainerSubject("c1", "/web", "nginx:1", nil)
	in := ComplianceInput{Disabled: []string{"container.cgroup_parent", "container.added_capability"}}
	got := map[string]CheckResult{}
	for _, r := range Report(in).Results() {
		got[r.ID] = r
	}
	if r := got["5.25"]; r.Status != StatusManual || !strings.Contains(r.Note, "container.cgroup_parent") {
		t.Errorf("5.25 with its rule disabled: %s %q", r.Status, r.Note)
	}
	if r := got["5.26"]; r.Status != StatusPass {
		t.Errorf("5.26 (rule enabled): %s %q", r.Status, r.Note)
	}
	in.Open = []Finding{New("container.dangerous_capability", web, "SYS_ADMIN")}
	for _, r := range Report(in).Results() {
		if r.ID == "5.4" && r.Status != StatusFail {
			t.Errorf("5.4 failed by its enabled rule, the other disabled: %s %q", r.Status, r.Note)
		}
	}
	store := NewStore(nil)
	store.ApplyPolicy(Policy{Rules: map[string]RuleOverride{"container.cgroup_parent": {Disabled: true}, "container.privileged": {}}})
	if d := store.DisabledRules(); strings.Join(d, ",") != "container.cgroup_parent" {
		t.Errorf("Store.DisabledRules() = %v", d)
	}
}
