package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

func scanFixture() []findings.Finding {
	c := findings.ContainerSubject("0123456789abcdef", "/web", "nginx", nil)
	medium := findings.New("container.no_memory_limit", c, "no memory limit")
	exemptCritical := findings.New("container.privileged", c, "privileged")
	exemptCritical.Exempt, exemptCritical.ExemptReason = true, "accepted"
	return []findings.Finding{exemptCritical, medium}
}

func TestScanExitCode(t *testing.T) {
	open := scanFixture()
	cases := []struct {
		failOn string
		want   int
	}{
		{"critical", exitOK}, // the only critical one is exempt
		{"high", exitOK},
		{"medium", exitFindings},
		{"low", exitFindings},
		{"info", exitFindings},
		{"none", exitOK},
	}
	for _, c := range cases {
		got, err := scanExitCode(open, c.failOn)
		if err != nil || got != c.want {
			t.Errorf("--fail-on %s: exit %d (%v), want %d", c.failOn, got, err, c.want)
		}
	}
	if got, _ := scanExitCode(nil, "info"); got != exitOK {
		t.Errorf("no findings: exit %d, want 0", got)
	}
	if _, err := scanExitCode(open, "severe"); err == nil {
		t.Error("an unknown --fail-on value was accepted")
	}
}

func TestPrintFindings(t *testing.T) {
	var table bytes.Buffer
	if err := printFindings(&table, "table", []string{"containers"}, scanFixture()); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	for _, want := range []string{"SEVERITY", "critical (exempt)", "container.privileged", "medium", "web",
		"2 open findings (1 medium, 1 exempt) from sources: containers"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	if err := printFindings(&js, "json", nil, scanFixture()); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Sources  []string `json:"sources"`
		Findings []struct {
			Rule     string `json:"rule"`
			Severity string `json:"severity"`
			Exempt   bool   `json:"exempt"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, js.String())
	}
	if rep.Sources == nil || len(rep.Findings) != 2 || rep.Findings[0].Severity != "critical" || !rep.Findings[0].Exempt {
		t.Errorf("json report = %+v", rep)
	}
}

// The binary's scan with every source off: no findings, exit 0, and it
// needs no HTTP server.
func TestScanCommandNoSources(t *testing.T) {
	bin := testenv.AgentBinary(t)
	cfg := writeFile(t, t.TempDir(), "off.yml", allSourcesOff)
	out, err := exec.Command(bin, "--"+flagConfigFile+"="+cfg, "--"+flagListenAddress+"=256.0.0.1:1", "scan").Output()
	if code := exitCode(err); code != exitOK {
		t.Fatalf("scan exit %d (%v), want 0:\n%s", code, err, out)
	}
	if !strings.Contains(string(out), "0 open findings (none) from sources: none enabled") {
		t.Errorf("scan output:\n%s", out)
	}
	bad := writeFile(t, t.TempDir(), "bad.yml", "nope: 1\n")
	cmd := exec.Command(bin, "--"+flagConfigFile+"="+bad, "scan")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if code := exitCode(cmd.Run()); code != exitUsage || !strings.Contains(stderr.String(), "bad.yml:1: key nope") {
		t.Errorf("scan with a bad config: exit %d, stderr %q; want 2 naming the line", code, stderr.String())
	}
	if code := exitCode(exec.Command(bin, "scan", "--fail-on=severe").Run()); code != exitUsage {
		t.Errorf("scan --fail-on=severe: exit %d, want 2", code)
	}
}

// With the containers source, a created (never started) privileged
// container makes scan exit 1 at the default --fail-on high, and an
// exemption in config marks exactly that finding exempt.
func TestScanCommandContainers(t *testing.T) {
	img := testenv.RequireBusyboxImage(t)
	bin := testenv.AgentBinary(t)
	name := fmt.Sprintf("dockward-scan-test-%d", os.Getpid())
	testenv.Run(t, "docker", "create", "--label", "dockward.test=1", "--network", "none", "--privileged", "--name", name, img, "true")
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })

	only := "audit:\n  enabled: false\nhost:\n  enabled: false\n"
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yml", only)
	out, err := exec.Command(bin, "--"+flagConfigFile+"="+cfg, "scan").Output()
	if code := exitCode(err); code != exitFindings {
		t.Fatalf("scan exit %d (%v), want 1 for a privileged container:\n%s", code, err, out)
	}
	if !strings.Contains(string(out), "container.privileged") || !strings.Contains(string(out), name) {
		t.Errorf("table does not show %s's privileged finding:\n%s", name, out)
	}

	cfg = writeFile(t, dir, "e.yml", only+"exemptions:\n  - rule: container.privileged\n    container: "+name+"\n    reason: test\n")
	out, err = exec.Command(bin, "--"+flagConfigFile+"="+cfg, "scan", "--output=json").Output()
	if code := exitCode(err); code != exitOK && code != exitFindings {
		t.Fatalf("scan exit %d (%v):\n%s", code, err, out)
	}
	var rep scanReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Rule == "container.privileged" && f.Subject.Name == name {
			found = true
			if !f.Exempt || f.ExemptReason != "test" {
				t.Errorf("exempted finding reported as %+v", f)
			}
		}
	}
	if !found || len(rep.Sources) != 1 || rep.Sources[0] != "containers" {
		t.Errorf("json report lacks %s's privileged finding or the source list: %+v", name, rep.Sources)
	}
}

type stuckScanner struct{ fakeSource }

func (stuckScanner) Scan(context.Context) error { select {} }

func TestScanBoundedGivesUpOnStuckSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := scanBounded(ctx, &stuckScanner{}); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("err = %v, want a did-not-finish error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
	if err := scanBounded(context.Background(), &fakeSource{}); err != nil {
		t.Errorf("a finished scan returned %v", err)
	}
}

// The findings API streams what json.Encoder would write for the list.
func TestWriteFindingsMatchesEncoder(t *testing.T) {
	for _, open := range [][]findings.Finding{nil, scanFixture()} {
		var want, got bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if open == nil {
			open = []findings.Finding{}
		}
		if err := enc.Encode(open); err != nil {
			t.Fatal(err)
		}
		if err := writeFindings(&got, open); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("streamed findings differ from json.Encoder's:\n got %s\nwant %s", got.String(), want.String())
		}
	}
}
