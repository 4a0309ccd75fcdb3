package findings

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// zeroSeries lists the 0-valued series every rule gets, except those in skip.
func zeroSeries(format string, skip map[string]bool, sev func(Rule) string) string {
	var b strings.Builder
	for _, r := range Rules() {
		if skip[r.ID] {
			continue
		}
		if sev != nil {
			fmt.Fprintf(&b, format, r.ID, sev(r))
		} else {
			fmt.Fprintf(&b, format, r.ID)
		}
	}
	return b.String()
}

func TestCollectorExposition(t *testing.T) {
	s := NewStore(nil)
	info := Info
	s.ApplyPolicy(Policy{
		Rules:      map[string]RuleOverride{"container.no_healthcheck": {Severity: &info}},
		Exemptions: []Exemption{{Rule: "container.no_memory_limit", Container: "batch-*", Reason: "batch jobs are bounded by the scheduler"}},
	})
	shop := ContainerSubject("0123456789abcdef0123456789abcdef", "/shop", "shop:2", nil)
	batch := ContainerSubject("fedcba9876543210fedcba9876543210", "/batch-7", "batch:1", nil)
	s.SourceSink("containers").Set("shop", []Finding{
		New("container.privileged", shop, "privileged"),
		New("container.no_memory_limit", shop, "no memory limit"),
	})
	s.SourceSink("containers").Set("batch", []Finding{New("container.no_memory_limit", batch, "no memory limit")})
	s.SourceSink("containers").Set("daemon", []Finding{New("daemon.live_restore_off", Subject{Kind: KindDaemon, Name: "dockerd"}, "live restore off")})
	s.SourceSink("host").Set("/etc/docker", []Finding{New("file.mode", Subject{Kind: KindFile, Name: "/etc/docker"}, "0777")})
	// A resolved finding must leave no series behind.
	s.SourceSink("containers").Set("gone", []Finding{New("container.host_pid", batch, "host pid")})
	s.SourceSink("containers").Set("gone", nil)

	want := `
# HELP dockward_finding An open finding: 1 per (rule, subject) while the condition holds.
# TYPE dockward_finding gauge
dockward_finding{cis="5.5",container_id="0123456789ab",image="shop:2",kind="container",rule="container.privileged",severity="critical",subject="shop"} 1
dockward_finding{cis="5.11",container_id="0123456789ab",image="shop:2",kind="container",rule="container.no_memory_limit",severity="medium",subject="shop"} 1
dockward_finding{cis="2.15",container_id="",image="",kind="daemon",rule="daemon.live_restore_off",severity="` + mustRule(t, "daemon.live_restore_off").Severity.String() + `",subject="dockerd"} 1
dockward_finding{cis="` + mustRule(t, "file.mode").CIS + `",container_id="",image="",kind="file",rule="file.mode",severity="` + mustRule(t, "file.mode").Severity.String() + `",subject="/etc/docker"} 1
# HELP dockward_findings_exempted Open findings accepted by an exemption in config (not alerted on).
# TYPE dockward_findings_exempted gauge
dockward_findings_exempted{rule="container.no_memory_limit"} 1
` + zeroSeries("dockward_findings_exempted{rule=%q} 0\n", map[string]bool{"container.no_memory_limit": true}, nil) + `
# HELP dockward_findings_opened_total Findings opened since the agent started, by rule and severity.
# TYPE dockward_findings_opened_total counter
dockward_findings_opened_total{rule="container.privileged",severity="critical"} 1
dockward_findings_opened_total{rule="container.no_memory_limit",severity="medium"} 1
dockward_findings_opened_total{rule="container.host_pid",severity="high"} 1
dockward_findings_opened_total{rule="daemon.live_restore_off",severity="` + mustRule(t, "daemon.live_restore_off").Severity.String() + `"} 1
dockward_findings_opened_total{rule="file.mode",severity="` + mustRule(t, "file.mode").Severity.String() + `"} 1
dockward_findings_opened_total{rule="container.no_healthcheck",severity="info"} 0
` + zeroSeries("dockward_findings_opened_total{rule=%q,severity=%q} 0\n", map[string]bool{
		"container.privileged": true, "container.no_memory_limit": true, "container.host_pid": true,
		"daemon.live_restore_off": true, "file.mode": true, "container.no_healthcheck": true,
	}, func(r Rule) string { return r.Severity.String() })

	if err := testutil.CollectAndCompare(NewCollector(s), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(NewCollector(s), "dockward_finding"); n != 4 {
		t.Errorf("%d dockward_finding series, want 4 (exempt and resolved ones excluded)", n)
	}
}

func TestCollectorLint(t *testing.T) {
	s := NewStore(nil)
	s.SourceSink("containers").Set("x", []Finding{New("container.privileged", ContainerSubject("abc", "/x", "i", nil), "m")})
	problems, err := testutil.CollectAndLint(NewCollector(s))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func mustRule(t *testing.T, id string) Rule {
	t.Helper()
	r, ok := LookupRule(id)
	if !ok {
		t.Fatalf("rule %s is not in the catalogue", id)
	}
	return r
}

// The same (rule, subject) reported by two sources must not break the
// scrape with a duplicate series.
func TestCollectorSameFindingFromTwoScopes(t *testing.T) {
	s := NewStore(nil)
	f := New("file.mode", Subject{Kind: KindFile, Name: "/etc/docker"}, "0777")
	s.SourceSink("host").Set("/etc/docker", []Finding{f})
	s.SourceSink("audit").Set("watches", []Finding{f})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(s))
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("scrape failed: %v", err)
	}
	if n := testutil.CollectAndCount(NewCollector(s), "dockward_finding"); n != 1 {
		t.Errorf("%d dockward_finding series, want 1", n)
	}
}
