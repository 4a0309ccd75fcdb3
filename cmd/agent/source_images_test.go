package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// imagesOnly is a config with only the images source, offline over dir.
func imagesOnly(t *testing.T) (config, ref string) {
	t.Helper()
	testenv.RequireDocker(t)
	dir := t.TempDir()
	ref = "dockward-test-agent-img:1"
	testenv.ImportImage(t, ref, testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
		testenv.DpkgStatus("openssl 3.0.11-1~deb12u1", "libssl3 3.0.11-1~deb12u1 openssl"))
	osvtest.WriteZip(t, filepath.Join(dir, "vulns"), "Debian",
		osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").
			CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N").Affects("Debian:12", "openssl", "3.0.13-1~deb12u1"))
	yaml := "containers:\n  enabled: false\naudit:\n  enabled: false\nhost:\n  enabled: false\n" +
		"images:\n  enabled: true\n  cache_dir: " + filepath.Join(dir, "images") + "\n" +
		"vulns:\n  db:\n    offline: true\n    dir: " + filepath.Join(dir, "vulns") + "\n"
	return writeFile(t, dir, "images.yml", yaml), ref
}

// dockward scan lists the image's finding and, after the table, its
// per-CVE list; a high fixable vulnerability fails it at --fail-on high.
func TestScanCommandImages(t *testing.T) {
	cfg, ref := imagesOnly(t)
	bin := testenv.AgentBinary(t)
	out, err := exec.Command(bin, "--"+flagConfigFile+"="+cfg, "scan").Output()
	if code := exitCode(err); code != exitFindings {
		t.Fatalf("scan exit %d (%v), want 1 for a high fixable vulnerability:\n%s", code, err, out)
	}
	table := string(out)
	for _, want := range []string{"image.vulnerable", ref, "SUBJECT", "VULNERABILITY", "CVE-2024-0727",
		"3.0.11-1~deb12u1", "3.0.13-1~deb12u1", "from sources: images"} {
		if !strings.Contains(table, want) {
			t.Errorf("scan table lacks %q:\n%s", want, table)
		}
	}
	out, _ = exec.Command(bin, "--"+flagConfigFile+"="+cfg, "scan", "--output=json").Output()
	var rep scanReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if f := findingOf(rep.Findings, "image.vulnerable", ref); f == nil || f.Vulnerabilities.Len() != 1 ||
		f.Vulnerabilities.All()[0].Fixed != "3.0.13-1~deb12u1" || f.Vulnerabilities.All()[0].Severity != "high" {
		t.Errorf("json report's image finding: %+v", f)
	}
}

func findingOf(fs []findings.Finding, rule, subject string) *findings.Finding {
	for i := range fs {
		if fs[i].Rule == rule && fs[i].Subject.Name == subject {
			return &fs[i]
		}
	}
	return nil
}

// The running agent serves the per-CVE list in /api/v1/findings and the
// bounded counts in /metrics.
func TestAgentServesImageVulnerabilities(t *testing.T) {
	cfg, ref := imagesOnly(t)
	a := testenv.StartAgent(t, nil, "--"+flagConfigFile+"="+cfg)
	defer a.Stop()
	var open []findings.Finding
	testenv.WaitForState(t, 60*time.Second, "the image's finding in the API", func() (bool, string) {
		body, err := fetch(a.URL("/api/v1/findings"))
		if err != nil || json.Unmarshal([]byte(body), &open) != nil {
			return false, body
		}
		return findingOf(open, "image.vulnerable", ref) != nil, body
	})
	f := findingOf(open, "image.vulnerable", ref)
	if v := f.Vulnerabilities.All(); len(v) != 1 || v[0].ID != "CVE-2024-0727" || f.Severity != findings.High {
		t.Errorf("API finding %+v, want CVE-2024-0727 at high", f)
	}
	metrics, err := fetch(a.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	want := `dockward_image_vulnerabilities{fixable="true",image="` + ref + `",image_id="` + f.Subject.Image + `",severity="high"} 1`
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "dockward_image"))
	}
	if strings.Contains(metrics, "dockward_image_cve") {
		t.Error("per-CVE series are exported without vulns.cve_series")
	}
}

func fetch(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Bad images and vulns settings stop the agent with the file, line and
// key of each.
func TestImagesConfigErrors(t *testing.T) {
	_, err := parseConfig("c.yml", []byte("images:\n  max_image_size: lots\n  finding_severity:\n    high: extreme\n"+
		"vulns:\n  db:\n    url: ftp://mirror\n    max_age: 1h\n"))
	if err == nil {
		t.Fatal("bad images and vulns settings were accepted")
	}
	for _, want := range []string{
		`c.yml:2: key images.max_image_size: "lots" is not a size`,
		`c.yml:4: key images.finding_severity.high: unknown severity "extreme"`,
		`c.yml:7: key vulns.db.url: "ftp://mirror" is not an http(s) URL`,
		`c.yml:8: key vulns.db.max_age: 1h0m0s is shorter than db.refresh`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
