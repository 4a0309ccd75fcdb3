package podrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/dockward/dockward/deploy/internal/helmrender"
)

// renderDefaults renders the chart with its defaults, the state directory
// in a temporary directory.
func renderDefaults(t *testing.T) (corev1.PodSpec, []corev1.ConfigMap, string) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	objs, err := helmrender.Render(filepath.Join("..", "..", "helm", "dockward"), map[string]any{"stateHostPath": state}, "dockward")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.DaemonSets) != 1 {
		t.Fatalf("rendered %d DaemonSets, want 1", len(objs.DaemonSets))
	}
	return objs.DaemonSets[0].Spec.Template.Spec, objs.ConfigMaps, state
}

// The chart's default pod becomes the docker run of its security context,
// capabilities, host namespaces and mounts, and nothing is left over.
func TestChartDefaultsTranslate(t *testing.T) {
	pod, cms, state := renderDefaults(t)
	work := t.TempDir()
	r, err := DockerRun(pod, Options{Name: "agent", WorkDir: work, ConfigMaps: cms, NoMountPropagation: true})
	if err != nil {
		t.Fatalf("translating the chart's pod: %v", err)
	}
	got := strings.Join(r.Args, " ")
	for _, want := range []string{
		"-d --name agent", "--pid host", "--network host", "--userns host", "--stop-timeout 30", "--user 0:0",
		"-v /var/run/docker.sock:/var/run/docker.sock:ro", "-v /:/host:ro ", "-v " + state + ":/var/lib/dockward ",
		"-v " + filepath.Join(work, "config", "config.yml") + ":/etc/dockward/config.yml:ro",
		"--pull missing", "-e DOCKER_HOST=unix:///var/run/docker.sock",
		"--security-opt no-new-privileges", "--read-only", "--cap-drop ALL",
		"--cap-add AUDIT_CONTROL --cap-add AUDIT_READ --cap-add DAC_READ_SEARCH",
		"docker.io/dockward/dockward:0.1.0 --web.listen-address=:9917 --config.file=/etc/dockward/config.yml",
	} {
		if !strings.Contains(got+" ", want) {
			t.Errorf("docker run %s\nlacks %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "--config.file=/etc/dockward/config.yml") {
		t.Errorf("the image and its arguments must come last: %s", got)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("the DirectoryOrCreate state path was not created: %v", err)
	}
	if cfg, err := os.ReadFile(filepath.Join(work, "config", "config.yml")); err != nil || !strings.Contains(string(cfg), "/host") {
		t.Errorf("the ConfigMap's config.yml was not written (%v): %s", err, cfg)
	}
	if r.Readiness == nil || r.Readiness.HTTPGet == nil || r.Readiness.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want the chart's GET /readyz", r.Readiness)
	}
	if len(r.Dropped) == 0 || !strings.Contains(strings.Join(r.Dropped, "\n"), "mountPropagation HostToContainer (rslave) of /host") {
		t.Errorf("dropped %q, want the / mount's propagation named", r.Dropped)
	}
	// Where the host's / is shared, the propagation is kept.
	r, err = DockerRun(pod, Options{Name: "agent", WorkDir: t.TempDir(), ConfigMaps: cms})
	if err != nil || !strings.Contains(strings.Join(r.Args, " "), "-v /:/host:ro,rslave") {
		t.Errorf("with propagation allowed: %v %v, want -v /:/host:ro,rslave", err, r.Args)
	}
}

// A field the translation does not know fails, named, instead of being
// left out silently.
func TestUntranslatedFieldsFail(t *testing.T) {
	pod, cms, _ := renderDefaults(t)
	share := true
	pod.ShareProcessNamespace = &share
	pod.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}}
	unmasked := corev1.UnmaskedProcMount
	pod.Containers[0].SecurityContext.ProcMount = &unmasked
	_, err := DockerRun(pod, Options{Name: "agent", WorkDir: t.TempDir(), ConfigMaps: cms})
	if err == nil {
		t.Fatal("a pod with untranslated fields was translated")
	}
	for _, want := range []string{"pod spec: fields with no docker run translation: shareProcessNamespace",
		"container dockward: fields with no docker run translation: lifecycle",
		"container securityContext: fields with no docker run translation: procMount"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	pod, cms, _ = renderDefaults(t)
	pod.HostNetwork = false
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "spare", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	_, err = DockerRun(pod, Options{Name: "agent", WorkDir: t.TempDir(), ConfigMaps: cms})
	if err == nil || !strings.Contains(err.Error(), "hostNetwork false") || !strings.Contains(err.Error(), "volume spare is not mounted") {
		t.Errorf("error %v, want hostNetwork false and the unmounted volume named", err)
	}
}
