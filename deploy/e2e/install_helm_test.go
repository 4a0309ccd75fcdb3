package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/strvals"

	"github.com/dockward/dockward/deploy/internal/helmrender"
	"github.com/dockward/dockward/deploy/internal/podrun"
	"github.com/dockward/dockward/deploy/internal/readme"
	"github.com/dockward/dockward/internal/testenv"
)

// TestHelmDaemonSetPodRuns renders the chart with the README's helm
// install (its namespace and --set flags; only the image, the state
// directory and the port replaced), translates the DaemonSet's pod spec to
// docker run with the same security context, capabilities, host
// namespaces and mounts, and runs it: /readyz, the readiness probe's path,
// answers 200 within the probe's initial delay, the same write under the
// host's /etc/docker is detected, and stopping the pod restores the
// kernel's audit state.
func TestHelmDaemonSetPodRuns(t *testing.T) {
	testenv.RequireRoot(t)
	auditctl := testenv.RequireCommand(t, "auditctl")
	image := deploymentImage(t)
	testenv.LockKernelAudit(t)
	_, portText, _ := strings.Cut(testenv.FreeAddr(t), ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chartDir, namespace, values := helmInstallAsDocumented(t, image, filepath.Join(dir, "state"), port)
	objs, err := helmrender.Render(filepath.Join(testenv.RepoRoot(t), chartDir), values, namespace)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.DaemonSets) != 1 {
		t.Fatalf("the chart rendered %d DaemonSets, want 1", len(objs.DaemonSets))
	}
	name := uniqueName("dockward-e2e-helm")
	run, err := podrun.DockerRun(objs.DaemonSets[0].Spec.Template.Spec, podrun.Options{
		Name: name, WorkDir: dir, ConfigMaps: objs.ConfigMaps, NoMountPropagation: !rootIsShared(t)})
	if err != nil {
		t.Fatalf("translating the DaemonSet's pod to docker run: %v", err)
	}
	for _, d := range run.Dropped {
		t.Logf("not reproduced: %s", d)
	}
	probe := run.Readiness
	if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/readyz" || probe.HTTPGet.Scheme != "HTTP" {
		t.Fatalf("readiness probe %+v, want HTTP GET /readyz", probe)
	}
	guardAudit(t)
	before := readAudit(t, auditctl)
	c := runContainer(t, name, run.Args...)
	started := time.Now()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	delay := time.Duration(probe.InitialDelaySeconds) * time.Second
	took := c.waitReady(t, base, 60*time.Second)
	t.Logf("%s answered 200 %s after docker run returned; the probe's initial delay is %s",
		probe.HTTPGet.Path, took.Round(time.Millisecond), delay)
	if since := time.Since(started); since > delay {
		t.Errorf("%s answered 200 only %s after the pod started: the kubelet's first probe, at %s, fails",
			probe.HTTPGet.Path, since.Round(time.Millisecond), delay)
	}
	requireUnicastFromContainer(t, c, base)
	if took := hostWriteUnderEtcDocker(t, c.logs, 2*time.Second); took > 2*time.Second {
		t.Errorf("the write was logged %s after it happened, want within 2s", took)
	}
	docker(t, "stop", name)
	requireAuditRestored(t, before, "after the pod stopped")
	inspect := docker(t, "inspect", "--format",
		"{{.HostConfig.PidMode}} {{.HostConfig.NetworkMode}} {{.HostConfig.UsernsMode}} {{.HostConfig.ReadonlyRootfs}} "+
			"{{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}} {{.Config.User}} {{.HostConfig.SecurityOpt}}", name)
	// Docker spells capabilities with CAP_ and adds label=disable next to
	// the host PID namespace.
	inspect = strings.ReplaceAll(inspect, "CAP_", "")
	if want := "host host host true [ALL] [AUDIT_CONTROL AUDIT_READ DAC_READ_SEARCH] 0:0 ["; !strings.HasPrefix(inspect, want) ||
		!strings.Contains(inspect, "no-new-privileges") {
		t.Errorf("the pod's container runs with %q, want the chart's %q... with no-new-privileges", inspect, want)
	}
}

// helmInstallAsDocumented returns the chart, namespace and values of the
// README's `helm install`: its --namespace and every --set, with only what
// must differ on a test machine replaced, each logged: the image (the one
// `make image` just built, without a registry), and, through values the
// chart documents, the state directory (a temporary one) and the port (a
// free one, since the pod shares the host's network).
func helmInstallAsDocumented(t *testing.T, image, stateDir string, port int) (chart, namespace string, values map[string]any) {
	t.Helper()
	cmd, err := readme.Find(installGuide(t, "### Kubernetes (helm)"), "helm", "install")
	if err != nil {
		t.Fatal(err)
	}
	args := cmd.Args[2:]
	if len(args) < 2 || args[0] != "dockward" {
		t.Fatalf("README's helm install %q: want release dockward and the chart", cmd.Args)
	}
	chart, values = args[1], map[string]any{}
	for i := 2; i < len(args); i++ {
		if i+1 >= len(args) {
			t.Fatalf("README's helm install %q: %s has no value", cmd.Args, args[i])
		}
		switch args[i] {
		case "--namespace":
			namespace = args[i+1]
		case "--set":
			if err := strvals.ParseInto(args[i+1], values); err != nil {
				t.Fatalf("README's helm install --set %s: %v", args[i+1], err)
			}
		default:
			t.Fatalf("README's helm install %q has %s, which the test does not apply", cmd.Args, args[i])
		}
		i++
	}
	repo, tag, _ := strings.Cut(image, ":")
	documented, _ := values["image"].(map[string]any)
	t.Logf("README's helm install of %s in namespace %s with %v; the image is %s instead of %v", chart, namespace, values, image, documented)
	values["image"] = map[string]any{"registry": "", "repository": repo, "tag": tag}
	values["stateHostPath"] = stateDir
	values["service"] = map[string]any{"targetPort": port}
	if chart != "deploy/helm/dockward" || namespace == "" || documented == nil {
		t.Fatalf("README's helm install %q: want the chart deploy/helm/dockward, a namespace and the image values", cmd.Args)
	}
	return chart, namespace, values
}
