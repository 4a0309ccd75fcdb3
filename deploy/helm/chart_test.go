// Package helm holds the tests of the dockward chart: helm lint, rendering
// with defaults and with every optional value, decoded strictly into
// Kubernetes types, and the proof that its PrometheusRule is the rule file
// of deploy/prometheus.
package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/dockward/dockward/deploy/internal/helmrender"
	"github.com/dockward/dockward/internal/testenv"
)

const (
	chartDir        = "dockward"
	allValuesFile   = "dockward/ci/all-values.yaml"
	alertsFile      = "../prometheus/alerts.yml"
	chartAlertsFile = "files/alerts.yml"
)

// rendered is one render of the chart, decoded.
type rendered = helmrender.Objects

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading chart %s: %v", chartDir, err)
	}
	return c
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatalf("reading values %s: %v", file, err)
	}
	return v.AsMap()
}

// render renders the chart as `helm template` would and decodes every
// manifest strictly: an unknown or misspelt field fails the test.
func render(t *testing.T, values map[string]any) rendered {
	t.Helper()
	r, err := helmrender.Render(chartDir, values, "monitoring")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lintChart(t *testing.T, values map[string]any) {
	t.Helper()
	linter := lint.All(chartDir, values, "monitoring", false)
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		} else {
			t.Logf("helm lint: %s", m)
		}
	}
	if linter.HighestSeverity >= support.WarningSev {
		t.Fatalf("helm lint reports severity %d", linter.HighestSeverity)
	}
}

func TestHelmLintDefaults(t *testing.T) { lintChart(t, nil) }

func TestHelmLintAllValues(t *testing.T) { lintChart(t, readValues(t, allValuesFile)) }

func TestRenderDefaults(t *testing.T) {
	r := render(t, nil)
	if len(r.DaemonSets) != 1 || len(r.Services) != 1 || len(r.ServiceAccounts) != 1 || len(r.ConfigMaps) != 1 {
		t.Fatalf("defaults render %d DaemonSets, %d Services, %d ServiceAccounts, %d ConfigMaps; want one each",
			len(r.DaemonSets), len(r.Services), len(r.ServiceAccounts), len(r.ConfigMaps))
	}
	if len(r.ServiceMonitors)+len(r.PrometheusRules) != 0 {
		t.Fatalf("ServiceMonitor and PrometheusRule are optional and off by default; got %d, %d",
			len(r.ServiceMonitors), len(r.PrometheusRules))
	}
	cfg := agentConfig(t, r.ConfigMaps[0])
	if got := cfg["rootfs"][""]; got != "/host" || cfg["host"]["rootfs"] != nil || cfg["audit"]["rootfs"] != nil {
		t.Errorf("config rootfs = %v (host: %v, audit: %v), want the one top-level rootfs at /host where the host's / is mounted",
			got, cfg["host"], cfg["audit"])
	}
	ds := r.DaemonSets[0]
	checkDaemonSet(t, ds)
	if got := ds.Spec.Template.Spec.Containers[0].Image; got != "docker.io/dockward/dockward:0.1.0" {
		t.Errorf("default image %q, want the chart's appVersion tag", got)
	}
	svc := r.Services[0]
	if !reflect.DeepEqual(svc.Spec.Selector, ds.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v does not match the DaemonSet's pods %v", svc.Spec.Selector, ds.Spec.Selector.MatchLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9917 {
		t.Errorf("Service ports %+v, want 9917", svc.Spec.Ports)
	}
}

// checkDaemonSet asserts what audit netlink and the conventions need, in
// any values.
func checkDaemonSet(t *testing.T, ds appsv1.DaemonSet) {
	t.Helper()
	pod := ds.Spec.Template.Spec
	if !pod.HostPID || !pod.HostNetwork {
		t.Errorf("hostPID=%v hostNetwork=%v: audit netlink needs both", pod.HostPID, pod.HostNetwork)
	}
	if pod.HostUsers == nil || !*pod.HostUsers {
		t.Error("hostUsers must be true: the kernel refuses audit netlink in a user namespace")
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("pod template lacks selector label %s=%s", k, v)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	checkCapabilities(t, c)
	checkHostMounts(t, pod, c)
	if !contains(c.Args, "--config.file=/etc/dockward/config.yml") {
		t.Errorf("args %v do not pass the rendered config", c.Args)
	}
	noSchedule := false
	for _, tol := range pod.Tolerations {
		if tol.Effect == corev1.TaintEffectNoSchedule && tol.Operator == corev1.TolerationOpExists && tol.Key == "" {
			noSchedule = true
		}
	}
	if !noSchedule {
		t.Errorf("tolerations %+v do not tolerate every NoSchedule taint", pod.Tolerations)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
}

// checkCapabilities asserts the container is unprivileged, drops every
// capability and adds the two audit netlink needs.
func checkCapabilities(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("container has no securityContext.capabilities")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container must not be privileged")
	}
	caps := map[corev1.Capability]bool{}
	for _, cp := range sc.Capabilities.Add {
		caps[cp] = true
	}
	for _, need := range []corev1.Capability{"AUDIT_CONTROL", "AUDIT_READ"} {
		if !caps[need] {
			t.Errorf("capability %s missing from %v", need, sc.Capabilities.Add)
		}
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("capabilities.drop %v, want [ALL]", sc.Capabilities.Drop)
	}
}

// checkHostMounts asserts every host mount but the state directory is
// read-only, with the Docker socket at its fixed path and the host's / at
// /host.
func checkHostMounts(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	socketMounted := false
	for _, m := range c.VolumeMounts {
		hp, isHost := hostPaths[m.Name]
		if !isHost {
			continue
		}
		if m.Name == "state" {
			continue // the baseline state directory is the one writable host mount
		}
		if !m.ReadOnly {
			t.Errorf("host mount %s (%s) is writable; host mounts must be read-only", m.Name, hp)
		}
		if hp == "/var/run/docker.sock" && m.MountPath == "/var/run/docker.sock" {
			socketMounted = true
		}
	}
	if !socketMounted {
		t.Error("the Docker socket is not mounted read-only at /var/run/docker.sock")
	}
	rootMounted := false
	for _, m := range c.VolumeMounts {
		if hostPaths[m.Name] == "/" && m.MountPath == "/host" && m.ReadOnly {
			rootMounted = true
		}
	}
	if !rootMounted {
		t.Error("the host's / is not mounted read-only at /host")
	}
}

func TestRenderAllOptionalValues(t *testing.T) {
	r := render(t, readValues(t, allValuesFile))
	if len(r.DaemonSets) != 1 || len(r.ServiceMonitors) != 1 || len(r.PrometheusRules) != 1 || len(r.ConfigMaps) != 1 {
		t.Fatalf("all values render %d DaemonSets, %d ServiceMonitors, %d PrometheusRules, %d ConfigMaps; want one each",
			len(r.DaemonSets), len(r.ServiceMonitors), len(r.PrometheusRules), len(r.ConfigMaps))
	}
	ds := r.DaemonSets[0]
	checkDaemonSet(t, ds)
	c := ds.Spec.Template.Spec.Containers[0]
	if want := "registry.example.internal/security/dockward@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; c.Image != want {
		t.Errorf("image %q, want the digest to win: %q", c.Image, want)
	}
	for _, arg := range []string{"--config.file=/etc/dockward/config.yml", "--web.config.file=/etc/dockward/web/web.yml", "--log.level=debug"} {
		if !contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	if ds.Namespace != "security" || ds.Name != "dockward-agent" {
		t.Errorf("DaemonSet %s/%s, want security/dockward-agent from the overrides", ds.Namespace, ds.Name)
	}
	if ds.Spec.Template.Spec.ServiceAccountName != "dockward-sa" || r.ServiceAccounts[0].Name != "dockward-sa" {
		t.Errorf("service account name not applied")
	}
	if ds.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("a config change must roll the pods: checksum/config annotation missing")
	}
	cfg := agentConfig(t, r.ConfigMaps[0])
	if cfg["rootfs"][""] != "/host" || cfg["exemptions"] == nil || cfg["rules"] == nil {
		t.Errorf("config %v must keep the given exemptions and rules and add rootfs", cfg)
	}
	sm := r.ServiceMonitors[0]
	if sm.Namespace != "monitoring" || sm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor %s with labels %v, want namespace monitoring and the additional label", sm.Namespace, sm.Labels)
	}
	if sm.Spec.JobLabel != "app.kubernetes.io/name" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" {
		t.Errorf("ServiceMonitor spec %+v", sm.Spec)
	}
	if got := r.Services[0].Labels[sm.Spec.JobLabel]; got != "dockward" {
		t.Errorf("the Service's %s label is %q; the alert rules expect job=\"dockward\"", sm.Spec.JobLabel, got)
	}
}

// The PrometheusRule is the file deploy/prometheus/alerts.yml: the chart
// links to it, and the rendered spec equals the file's groups, so the two
// cannot drift apart.
func TestPrometheusRuleIsTheAlertsFile(t *testing.T) {
	link := filepath.Join(chartDir, chartAlertsFile)
	fi, err := os.Lstat(link)
	if err != nil {
		t.Fatalf("chart rule file: %v", err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s must be a symbolic link to %s, not a copy", link, alertsFile)
	}
	a, errA := os.Stat(link)
	b, errB := os.Stat(alertsFile)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Fatalf("%s does not resolve to %s (%v, %v)", link, alertsFile, errA, errB)
	}

	source, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(source, &want); err != nil {
		t.Fatalf("parsing %s: %v", alertsFile, err)
	}
	vals := map[string]any{"prometheusRules": map[string]any{"enabled": true}}
	rules := render(t, vals).PrometheusRules
	if len(rules) != 1 {
		t.Fatalf("prometheusRules.enabled rendered %d PrometheusRules", len(rules))
	}
	got, err := json.Marshal(rules[0].Spec)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, wantJSON) {
		t.Fatalf("rendered PrometheusRule spec differs from %s:\n got %s\nwant %s", alertsFile, got, wantJSON)
	}
}

// `helm package` must carry the rules: a packaged chart resolves the link
// into a real file with the same bytes.
func TestPackagedChartCarriesAlerts(t *testing.T) {
	c := loadChart(t)
	path, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatalf("packaging chart: %v", err)
	}
	packaged, err := loader.Load(path)
	if err != nil {
		t.Fatalf("loading packaged chart %s: %v", path, err)
	}
	source, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range packaged.Files {
		if f.Name == chartAlertsFile {
			if !bytes.Equal(f.Data, source) {
				t.Fatalf("packaged %s differs from %s", chartAlertsFile, alertsFile)
			}
			return
		}
	}
	t.Fatalf("packaged chart %s has no %s", path, chartAlertsFile)
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	// Round-trip both through the same types so numbers and durations compare alike.
	return fmt.Sprint(x) == fmt.Sprint(y) && reflect.DeepEqual(x, y)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Every top-level value is documented in the chart's README.
func TestReadmeDocumentsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatalf("reading chart README: %v", err)
	}
	for key := range readValues(t, filepath.Join(chartDir, "values.yaml")) {
		if !strings.Contains(string(readme), "`"+key+"`") && !strings.Contains(string(readme), "`"+key+".") {
			t.Errorf("values.yaml key %s is not documented in the chart README", key)
		}
	}
}

// agentConfig decodes the rendered config.yml; the agent reads it strictly.
func agentConfig(t *testing.T, cm corev1.ConfigMap) map[string]map[string]any {
	t.Helper()
	var generic map[string]any
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yml"]), &generic); err != nil {
		t.Fatalf("ConfigMap config.yml is not YAML: %v\n%s", err, cm.Data["config.yml"])
	}
	out := map[string]map[string]any{}
	for k, v := range generic {
		switch v := v.(type) {
		case map[string]any:
			out[k] = v
		default:
			out[k] = map[string]any{"": v}
		}
	}
	return out
}

// A rootfs given in values wins over the chart's /host.
func TestConfigValuesWin(t *testing.T) {
	r := render(t, map[string]any{"config": map[string]any{"rootfs": "/rootfs", "host": map[string]any{"rescan_interval": "1m"}}})
	cfg := agentConfig(t, r.ConfigMaps[0])
	if cfg["rootfs"][""] != "/rootfs" || cfg["host"]["rescan_interval"] != "1m" {
		t.Fatalf("config %v: the given rootfs and host section must win", cfg)
	}
	r = render(t, map[string]any{"config": map[string]any{"host": map[string]any{"rescan_interval": "1m"}}})
	if cfg := agentConfig(t, r.ConfigMaps[0]); cfg["rootfs"][""] != "/host" || cfg["host"]["rescan_interval"] != "1m" {
		t.Fatalf("config %v: a host section without rootfs must keep the chart's /host", cfg)
	}
}

// The config the chart renders (with every optional value) is accepted by
// the real agent, whose config parser is strict: a key the chart misspells
// stops the agent with exit status 2 before it logs "starting dockward".
func TestRenderedConfigLoadsInAgent(t *testing.T) {
	vals := readValues(t, allValuesFile)
	// The audit source stays off so the test does not touch the kernel's
	// audit settings; its section is still parsed.
	cfgVals := vals["config"].(map[string]any)
	cfgVals["audit"] = map[string]any{"enabled": false}
	// The agent checks that rootfs is a readable directory, and /host
	// exists only in the pod: point it at one that exists here.
	cfgVals["rootfs"] = t.TempDir()
	cm := render(t, vals).ConfigMaps[0]
	testenv.AgentAcceptsConfig(t, cm.Data["config.yml"])
}

// TestMain removes the agent binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }
