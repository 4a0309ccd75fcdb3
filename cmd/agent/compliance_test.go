package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

func TestPrintComplianceTable(t *testing.T) {
	web := findings.ContainerSubject("0123456789abcdef", "/web", "nginx", nil)
	rep := findings.Report(findings.ComplianceInput{Open: []findings.Finding{findings.New("container.privileged", web, "privileged")}})
	var out bytes.Buffer
	if err := printCompliance(&out, "cis", rep); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"CIS Docker Benchmark v1.6.0", "[1] Host Configuration", "[5] Container Runtime",
		"[7] Docker Swarm Configuration", "Checks: 117, Score: "} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^  5\.5 +FAIL +Ensure that privileged containers are not used +container web$`).MatchString(text) {
		t.Errorf("5.5 is not a FAIL line naming container web:\n%s", text)
	}
	out.Reset()
	if err := printCompliance(&out, "cis-json", rep); err != nil {
		t.Fatal(err)
	}
	var back findings.Compliance
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Checks != 117 || back.Score != rep.Score {
		t.Errorf("cis-json: %v, %d checks, score %d (want %d)", err, back.Checks, back.Score, rep.Score)
	}
}

// dockward scan --output cis on this machine, every source on: all 117
// checks get a status, and every check docker-bench-security 1.6.0 would
// score here gets a pass or a fail (a file check about a file this host does
// not have is not_applicable, which docker-bench also leaves unscored).
func TestScanCommandCISOnThisMachine(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBusyboxImage(t)
	bin := testenv.AgentBinary(t)
	out, err := exec.Command(bin, "scan", "--output=cis-json", "--fail-on=none").Output()
	if code := exitCode(err); code != exitOK {
		t.Fatalf("scan exit %d (%v):\n%s", code, err, out)
	}
	var rep findings.Compliance
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("cis-json: %v\n%s", err, out)
	}
	var left []string
	for _, r := range rep.Results() {
		if r.Status == "" {
			t.Errorf("%s has no status", r.ID)
		}
		// docker-bench-security itself does not score a check it has an
		// info branch for when the thing checked is absent (a file).
		absent := r.Status == findings.StatusNotApplicable && r.DockerBenchInfoBranch
		if r.DockerBenchScored && r.Status != findings.StatusPass && r.Status != findings.StatusFail && !absent {
			left = append(left, r.ID+" "+string(r.Status)+": "+r.Note)
		}
	}
	if rep.Checks != 117 || len(rep.Results()) != 117 {
		t.Errorf("the report has %d checks, want 117", len(rep.Results()))
	}
	if len(left) > 0 {
		t.Errorf("%d checks docker-bench-security scores are left without a pass or fail:\n%s", len(left), strings.Join(left, "\n"))
	}
	text, err := exec.Command(bin, "scan", "--output=cis", "--fail-on=none").Output()
	if code := exitCode(err); code != exitOK {
		t.Fatalf("scan --output cis exit %d (%v)", code, err)
	}
	lines := regexp.MustCompile(`(?m)^  [1-7](\.[0-9]+)+ +(PASS|FAIL|INFO|MANUAL|NOT_APPLICABLE) `).FindAllString(string(text), -1)
	if len(lines) != 117 {
		t.Errorf("the table has %d check lines with a status, want 117:\n%s", len(lines), text)
	}
}
