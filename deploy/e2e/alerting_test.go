package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/deploy/internal/metricref"
	"github.com/dockward/dockward/internal/testenv"
)

// stack is the agent, Prometheus and Alertmanager, all on loopback.
type stack struct {
	agentAddr, promAddr, amAddr string
	agentURL, promURL, amURL    string
	agent                       *testenv.Process
}

// agentConfig turns on the images source, which is off by default, offline
// over directories of the test: with it every source is on.
const agentConfig = `images:
  enabled: true
  cache_dir: %s
vulns:
  db:
    offline: true
    dir: %s
`

// startStack starts the built agent (every source on, audit in auto mode),
// Debian's Prometheus (scraping it every second, with
// deploy/prometheus/alerts.yml loaded) and Debian's Alertmanager, and waits
// until the whole chain is live.
func startStack(t *testing.T) stack {
	t.Helper()
	prometheus := testenv.RequireCommand(t, "prometheus")
	alertmanager := testenv.RequireCommand(t, "prometheus-alertmanager")
	dir := t.TempDir()
	s := stack{agentAddr: testenv.FreeAddr(t), promAddr: testenv.FreeAddr(t), amAddr: testenv.FreeAddr(t)}
	s.agentURL, s.promURL, s.amURL = "http://"+s.agentAddr, "http://"+s.promAddr, "http://"+s.amAddr
	s.startAlertmanager(t, dir, alertmanager)
	s.startPrometheus(t, dir, prometheus)
	// The agent's audit source (auto) may take the kernel's audit PID.
	// Checked after the agent has stopped (cleanups run in reverse order),
	// before the lock is released.
	testenv.LockKernelAudit(t)
	guardAudit(t)
	cfg := filepath.Join(dir, "dockward.yml")
	writeFile(t, dir, "dockward.yml", fmt.Sprintf(agentConfig, filepath.Join(dir, "images"), filepath.Join(dir, "vulns")))
	s.agent = startIn(t, dir, "dockward", testenv.AgentBinary(t),
		"--web.listen-address="+s.agentAddr, "--log.level=debug", "--config.file="+cfg)
	s.waitReady(t)
	return s
}

func (s stack) startAlertmanager(t *testing.T, dir, bin string) {
	t.Helper()
	writeFile(t, dir, "alertmanager.yml", `route:
  receiver: devnull
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: devnull
`)
	startIn(t, dir, "alertmanager", bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+s.amAddr,
		"--cluster.listen-address=") // no gossip port: one instance, loopback only
}

func (s stack) startPrometheus(t *testing.T, dir, bin string) {
	t.Helper()
	rules, err := filepath.Abs(filepath.Join("..", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: dockward
    static_configs:
      - targets: [%q]
`, rules, s.amAddr, s.agentAddr))
	startIn(t, dir, "prometheus", bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "prom-data"),
		"--web.listen-address="+s.promAddr)
}

// waitReady waits until the three answer, Prometheus scrapes the agent,
// has loaded the rules and has found Alertmanager.
func (s stack) waitReady(t *testing.T) {
	t.Helper()
	testenv.WaitForState(t, 30*time.Second, "the agent, Prometheus and Alertmanager are ready", func() (bool, string) {
		if s.agent.Exited() {
			t.Fatalf("the agent exited early")
		}
		for _, u := range []string{s.agentURL + "/healthz", s.promURL + "/-/ready", s.amURL + "/-/ready"} {
			if code, body, err := httpGet(u); err != nil || code != 200 {
				return false, fmt.Sprintf("GET %s: %d %v %s", u, code, err, body)
			}
		}
		return true, ""
	})
	testenv.WaitForState(t, 30*time.Second, "Prometheus scrapes the agent, loaded the rules and found Alertmanager", s.scrapingAndAlerting)
}

func (s stack) scrapingAndAlerting() (bool, string) {
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if why := getJSON(s.promURL+"/api/v1/targets", &targets); why != "" {
		return false, why
	}
	if len(targets.Data.ActiveTargets) != 1 || targets.Data.ActiveTargets[0].Health != "up" {
		return false, fmt.Sprintf("targets %+v", targets.Data.ActiveTargets)
	}
	_, rulesBody, err := httpGet(s.promURL + "/api/v1/rules")
	if err != nil || !strings.Contains(rulesBody, "DockwardPrivilegedContainer") {
		return false, fmt.Sprintf("rules not loaded: %v", err)
	}
	_, amsBody, err := httpGet(s.promURL + "/api/v1/alertmanagers")
	if err != nil || !strings.Contains(amsBody, s.amAddr) {
		return false, fmt.Sprintf("alertmanager not discovered: %v %s", err, amsBody)
	}
	return true, ""
}

func getJSON(u string, v any) string {
	code, body, err := httpGet(u)
	if err != nil || code != 200 {
		return fmt.Sprintf("GET %s: %d %v %s", u, code, err, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return fmt.Sprintf("GET %s: decoding %v: %s", u, err, body)
	}
	return ""
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// activeAlerts lists Alertmanager's active alerts named alertname (API v2).
func (s stack) activeAlerts(alertname string) ([]amAlert, string) {
	q := url.Values{}
	q.Set("filter", fmt.Sprintf("alertname=%q", alertname))
	q.Set("active", "true")
	var alerts []amAlert
	if why := getJSON(s.amURL+"/api/v2/alerts?"+q.Encode(), &alerts); why != "" {
		return nil, why
	}
	return alerts, ""
}

func (s stack) alertWith(alertname, label, value string) (bool, string) {
	alerts, why := s.activeAlerts(alertname)
	if why != "" {
		return false, why
	}
	for _, a := range alerts {
		if a.Labels[label] == value {
			return true, fmt.Sprintf("%v %v (%s)", a.Labels, a.Annotations, a.Status.State)
		}
	}
	return false, fmt.Sprintf("Alertmanager lists %d %s alerts, none with %s=%q: %+v", len(alerts), alertname, label, value, alerts)
}

// TestAlertsEndToEnd proves the shipped alert rules against the real
// agent, Prometheus and Alertmanager.
func TestAlertsEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	busybox := testenv.RequireBusyboxImage(t)
	s := startStack(t)
	t.Run("PrivilegedContainerFiresAndResolves", func(t *testing.T) { s.privilegedContainerFiresAndResolves(t, busybox) })
	// After the privileged container came and went, so that the Docker
	// event counters (series per type and action) have children too, and
	// with a running container, whose vulnerability counts are series, and
	// a Debian image, whose ecosystem's OSV data has an age (0: missing).
	testenv.RunContainer(t, uniqueName("dockward-e2e-running"), busybox)
	testenv.ImportImage(t, uniqueName("dockward-e2e-debian")+":1", testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
		testenv.DpkgStatus("openssl 3.0.11-1~deb12u1"))
	t.Run("EveryQueriedMetricIsExported", s.everyQueriedMetricIsExported)
	t.Run("DockerFileTamperedFires", s.dockerFileTamperedFires)
}

func (s stack) privilegedContainerFiresAndResolves(t *testing.T, busybox string) {
	name := uniqueName("dockward-e2e-alert")
	createPrivileged(t, busybox, name)
	took := testenv.WaitForState(t, 30*time.Second, "Alertmanager lists DockwardPrivilegedContainer for "+name, func() (bool, string) {
		return s.alertWith("DockwardPrivilegedContainer", "subject", name)
	})
	t.Logf("DockwardPrivilegedContainer for %s reached Alertmanager %s after the container was created", name, took.Round(time.Millisecond))
	alerts, _ := s.activeAlerts("DockwardPrivilegedContainer")
	for _, a := range alerts {
		if a.Labels["subject"] != name {
			continue
		}
		if a.Labels["severity"] != "critical" || !strings.Contains(a.Annotations["description"], name) ||
			!strings.HasPrefix(a.Annotations["runbook_url"], "https://") {
			t.Errorf("alert labels %v / annotations %v: want severity critical, the container in the description and a runbook_url", a.Labels, a.Annotations)
		}
	}
	s.findingsPageShows(t, name)
	docker(t, "rm", "-f", name)
	took = testenv.WaitForState(t, 30*time.Second, "DockwardPrivilegedContainer for "+name+" resolves after the container is removed", func() (bool, string) {
		found, why := s.alertWith("DockwardPrivilegedContainer", "subject", name)
		return !found, why
	})
	t.Logf("the alert resolved %s after the container was removed", took.Round(time.Millisecond))
}

// findingsPageShows checks the container's privileged finding on the
// agent's own /findings page, rendered by a real browser, linked from the
// landing page.
func (s stack) findingsPageShows(t *testing.T, name string) {
	t.Helper()
	if _, landing, err := httpGet(s.agentURL + "/"); err != nil || !strings.Contains(landing, `href="/findings"`) {
		t.Errorf("the landing page does not link /findings (err %v)", err)
	}
	dom := chromiumDOM(t, s.agentURL+"/findings?kind=container")
	row := regexp.MustCompile(`<tr class="sev-critical" data-severity="critical" data-kind="container">\s*<td class="sev">critical</td>\s*<td class="mono">container.privileged</td>[\s\S]*?</tr>`)
	found := false
	for _, m := range row.FindAllString(dom, -1) {
		if strings.Contains(m, name) {
			found = true
		}
	}
	if !found {
		t.Errorf("the agent's /findings page in Chromium has no critical container.privileged row for %s", name)
	}
}

func (s stack) everyQueriedMetricIsExported(t *testing.T) {
	var queried []string
	for _, file := range []string{filepath.Join("..", "prometheus", "alerts.yml"), filepath.Join("..", "grafana", "dockward.json")} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricref.Used(string(data)) {
			queried = append(queried, filepath.Base(file)+" queries "+m)
		}
	}
	// The images source reads the host's images after it is ready; its
	// series come once they are read.
	testenv.WaitForState(t, time.Minute, "every metric the alerts and the dashboard query exported", func() (bool, string) {
		_, body, err := httpGet(s.agentURL + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		exported := map[string]bool{}
		for _, line := range strings.Split(body, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
				exported[f[2]] = true
			}
		}
		var missing []string
		for _, q := range queried {
			if m := q[strings.LastIndex(q, " ")+1:]; !exported[m] {
				missing = append(missing, q+", which the running agent does not export")
			}
		}
		return len(missing) == 0, strings.Join(missing, "; ")
	})
}

// auditUp waits up to timeout for the agent's dockward_audit_up series
// that is 1, and returns it ("" if none).
func (s stack) auditUp(timeout time.Duration) string {
	var mode string
	testenv.Eventually(timeout, func() bool {
		_, body, _ := httpGet(s.agentURL + "/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "dockward_audit_up{") && strings.HasSuffix(line, " 1") {
				mode = line
			}
		}
		return mode != ""
	})
	return mode
}

func (s stack) dockerFileTamperedFires(t *testing.T) {
	// The audit source must be connected (unicast, or multicast next to
	// auditd) before a write can be seen.
	mode := s.auditUp(20 * time.Second)
	if mode == "" {
		testenv.Missing(t, "the agent's audit source never reported dockward_audit_up 1 (kernel audit unavailable to it?); see the dockward log")
		return
	}
	t.Logf("audit source: %s", mode)

	if _, err := os.Stat("/etc/docker"); err != nil {
		testenv.Missing(t, "/etc/docker, the watched directory this test writes to: %v", err)
	}
	// Control: nothing has written to /etc/docker yet in this test.
	if found, why := s.alertWith("DockwardDockerFileTampered", "key", "docker_etc"); found {
		t.Fatalf("DockwardDockerFileTampered for docker_etc fires before the test wrote anything: %s", why)
	}
	path := filepath.Join("/etc/docker", uniqueName("dockward-e2e-tamper")+".json")
	t.Cleanup(func() { _ = os.Remove(path) })
	if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	took := testenv.WaitForState(t, 60*time.Second, "Alertmanager lists DockwardDockerFileTampered for key docker_etc", func() (bool, string) {
		return s.alertWith("DockwardDockerFileTampered", "key", "docker_etc")
	})
	t.Logf("DockwardDockerFileTampered reached Alertmanager %s after writing %s", took.Round(time.Millisecond), path)
}
