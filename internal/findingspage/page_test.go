package findingspage

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/dockward/dockward/pkg/findings"
)

// fixtureStore holds one finding of every kind and severity, plus an exempt
// one and a container whose name tries to inject markup.
func fixtureStore(t testing.TB) *findings.Store {
	t.Helper()
	s := findings.NewStore(nil)
	web := findings.ContainerSubject("0123456789abcdef0123456789abcdef", "/web", "nginx:1.25", map[string]string{"team": "web"})
	evil := findings.ContainerSubject("fedcba9876543210fedcba9876543210", `/<script>alert(1)</script>`, `img"><b>`, nil)
	ci := findings.ContainerSubject("aaaaaaaaaaaabbbbbbbbbbbbcccccccc", "/ci-runner", "runner:2", map[string]string{"role": "ci"})
	s.ApplyPolicy(findings.Policy{Exemptions: []findings.Exemption{
		{Rule: "container.privileged", Container: "ci-*", Reason: "CI runners build images"},
	}})
	containers := s.SourceSink("containers")
	containers.Set(web.ContainerID, []findings.Finding{
		findings.New("container.no_healthcheck", web, "no health check"),
		findings.New("container.privileged", web, "HostConfig.Privileged is true"),
		findings.New("container.no_memory_limit", web, "HostConfig.Memory is 0"),
		findings.New("container.sensitive_mount", web, "writable bind of /etc").With("source", "/etc"),
	})
	containers.Set(evil.ContainerID, []findings.Finding{findings.New("container.writable_rootfs", evil, "rootfs is writable <b>")})
	containers.Set(ci.ContainerID, []findings.Finding{findings.New("container.privileged", ci, "HostConfig.Privileged is true")})
	s.SourceSink("daemon").Set("dockerd", []findings.Finding{
		findings.New("daemon.tcp_without_tls", findings.Subject{Kind: findings.KindDaemon, Name: "dockerd"}, "tcp://0.0.0.0:2375 without tlsverify"),
	})
	s.SourceSink("host").Set("/usr/sbin/dockerd", []findings.Finding{
		findings.New("file.binary_changed", findings.Subject{Kind: findings.KindFile, Name: "/usr/sbin/dockerd"}, "sha256 changed").
			With("old", "aa11").With("new", "bb22"),
	})
	s.SourceSink("audit").Set("/etc/docker", []findings.Finding{
		findings.New("audit.watch_missing", findings.Subject{Kind: findings.KindAudit, Name: "/etc/docker"}, "no audit watch"),
	})
	return s
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

var rowRe = regexp.MustCompile(`<tr class="sev-(\w+)( exempt)?" data-severity="(\w+)" data-kind="(\w+)">`)

type row struct{ severity, kind string }

func rows(body string) []row {
	var out []row
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, row{m[3], m[4]})
	}
	return out
}

func severityRank(t *testing.T, s string) findings.Severity {
	t.Helper()
	v, err := findings.ParseSeverity(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPageListsEveryFindingSortedAndColoredBySeverity(t *testing.T) {
	resp, body := get(t, Handler(fixtureStore(t)), "/findings")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	rs := rows(body)
	if len(rs) != 9 {
		t.Fatalf("want 9 rows (every open finding, exempt included), got %d:\n%s", len(rs), body)
	}
	for i := 1; i < len(rs); i++ {
		if severityRank(t, rs[i-1].severity) > severityRank(t, rs[i].severity) {
			t.Fatalf("row %d (%s) comes after a less severe row (%s): not sorted by severity", i, rs[i].severity, rs[i-1].severity)
		}
	}
	if rs[0].severity != "critical" || rs[len(rs)-1].severity != "info" {
		t.Errorf("first row %s, last row %s; want critical first and info last", rs[0].severity, rs[len(rs)-1].severity)
	}
	for _, sev := range []string{"critical", "high", "medium", "low", "info"} {
		if !regexp.MustCompile(`\.sev-` + sev + `\{background:#[0-9a-f]{6}`).MatchString(body) {
			t.Errorf("no background color for severity %s", sev)
		}
	}
	if !strings.Contains(body, `class="sev-critical exempt"`) || !strings.Contains(body, "CI runners build images") {
		t.Error("the exempt finding must be shown, marked exempt, with its reason")
	}
	// The summary counts non-exempt findings: 2 critical (privileged web, tcp without TLS).
	if !strings.Contains(body, `id="count-critical">2 critical<`) {
		t.Errorf("summary does not count 2 non-exempt critical findings:\n%s", body)
	}
}

func TestPageFiltersByKind(t *testing.T) {
	h := Handler(fixtureStore(t))
	for kind, want := range map[string]int{"container": 6, "daemon": 1, "file": 1, "audit": 1, "CONTAINER": 6} {
		resp, body := get(t, h, "/findings?kind="+kind)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("kind=%s: status %d", kind, resp.StatusCode)
		}
		rs := rows(body)
		if len(rs) != want {
			t.Errorf("kind=%s: %d rows, want %d", kind, len(rs), want)
		}
		for _, r := range rs {
			if r.kind != strings.ToLower(kind) {
				t.Errorf("kind=%s shows a %s finding", kind, r.kind)
			}
		}
		if !strings.Contains(body, `class="active" id="kind-`+strings.ToLower(kind)+`"`) {
			t.Errorf("kind=%s: the filter link is not marked active", kind)
		}
	}
}

func TestPageRejectsUnknownKind(t *testing.T) {
	resp, body := get(t, Handler(fixtureStore(t)), "/findings?kind=volume")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(body, `unknown kind "volume"`) || !strings.Contains(body, "container, daemon, file, audit") {
		t.Errorf("error does not name the bad kind and the choices: %q", body)
	}
}

func TestPageRejectsWrites(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(fixtureStore(t)).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/findings", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST status %d, want 405", rec.Code)
	}
}

func TestPageEscapesSubjectNames(t *testing.T) {
	_, body := get(t, Handler(fixtureStore(t)), "/findings")
	for _, raw := range []string{"<script>alert(1)</script>", `img"><b>`, "writable <b>"} {
		if strings.Contains(body, raw) {
			t.Errorf("page contains unescaped %q", raw)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the hostile container name is not shown escaped")
	}
}

// Nothing may load from outside the agent: no external URL in the page,
// no script at all, and a CSP that blocks anything the markup might add.
func TestPageLoadsNothingFromOutside(t *testing.T) {
	resp, body := get(t, Handler(fixtureStore(t)), "/findings")
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(https?:)?//`),
		regexp.MustCompile(`(?i)<script`),
		regexp.MustCompile(`(?i)<link`),
		regexp.MustCompile(`(?i)@import|url\(`),
	} {
		if loc := re.FindStringIndex(body); loc != nil {
			t.Errorf("page references outside content: %q", body[loc[0]:min(loc[1]+40, len(body))])
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'sha256-") {
		t.Errorf("Content-Security-Policy %q must deny everything but the page's own style", csp)
	}
}

func TestPageWithoutFindings(t *testing.T) {
	_, body := get(t, Handler(findings.NewStore(nil)), "/findings?kind=daemon")
	if !strings.Contains(body, `id="no-findings">No open findings of kind daemon.`) {
		t.Errorf("empty page does not say so:\n%s", body)
	}
}

// An image finding's per-CVE list is on the page, one row per CVE with its
// package, installed and fixed version and severity.
func TestPageListsVulnerabilities(t *testing.T) {
	s := findings.NewStore(nil)
	img := findings.ImageSubject("sha256:"+strings.Repeat("ab", 32), []string{"web:1"})
	f := findings.New("image.vulnerable", img, "Image web:1: 2 vulnerabilities")
	f.Vulnerabilities = findings.ListOf([]findings.Vulnerability{
		{ID: "CVE-2024-0727", Package: "openssl", Installed: "3.0.11-1~deb12u1", Fixed: "3.0.13-1~deb12u1", Severity: "high"},
		{ID: "CVE-2024-5535", Package: "openssl", Installed: "3.0.11-1~deb12u1", Severity: "critical"},
	})
	s.SourceSink("images").Set("image/x", []findings.Finding{f})
	_, body := get(t, Handler(s), "/findings")
	for _, want := range []string{
		`<tr class="vuln"><td class="mono">CVE-2024-0727</td><td class="mono">openssl</td><td class="mono">3.0.11-1~deb12u1</td><td class="mono">3.0.13-1~deb12u1</td><td>high</td></tr>`,
		`<tr class="vuln"><td class="mono">CVE-2024-5535</td><td class="mono">openssl</td><td class="mono">3.0.11-1~deb12u1</td><td class="mono">no fix</td><td>critical</td></tr>`,
		"<summary>2 vulnerabilities</summary>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// A long per-CVE list is cut on the page, which points to the API for the
// rest.
func TestPageBoundsLongVulnerabilityLists(t *testing.T) {
	s := findings.NewStore(nil)
	f := findings.New("image.vulnerable", findings.ImageSubject("sha256:"+strings.Repeat("cd", 32), nil), "many")
	many := make([]findings.Vulnerability, 250)
	for i := range many {
		many[i] = findings.Vulnerability{ID: fmt.Sprintf("CVE-2024-%d", i), Package: "p", Installed: "1", Severity: "low"}
	}
	f.Vulnerabilities = findings.ListOf(many[:100], many[100:])
	s.SourceSink("images").Set("image/y", []findings.Finding{f})
	_, body := get(t, Handler(s), "/findings")
	if n := strings.Count(body, `<tr class="vuln">`); n != maxVulnsShown {
		t.Errorf("page shows %d CVE rows, want %d", n, maxVulnsShown)
	}
	if !strings.Contains(body, "and 50 more in") || !strings.Contains(body, "<summary>250 vulnerabilities</summary>") {
		t.Error("page does not say how many more the API has")
	}
}
