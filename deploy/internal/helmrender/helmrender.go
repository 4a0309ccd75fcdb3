// Package helmrender renders the dockward chart with the helm Go library,
// as `helm template` would, and decodes every manifest strictly into
// Kubernetes and Prometheus Operator types, so that a misspelt field fails.
// The chart's tests and the end-to-end test that runs its DaemonSet share it.
package helmrender

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Objects is one render of the chart, decoded.
type Objects struct {
	DaemonSets      []appsv1.DaemonSet
	Services        []corev1.Service
	ServiceAccounts []corev1.ServiceAccount
	ConfigMaps      []corev1.ConfigMap
	ServiceMonitors []monitoringv1.ServiceMonitor
	PrometheusRules []monitoringv1.PrometheusRule
}

// Render renders the chart in chartDir with values as release "dockward"
// in namespace.
func Render(chartDir string, values map[string]any, namespace string) (Objects, error) {
	c, err := loader.Load(chartDir)
	if err != nil {
		return Objects{}, fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	vals, err := chartutil.ToRenderValues(c, values,
		chartutil.ReleaseOptions{Name: "dockward", Namespace: namespace, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return Objects{}, fmt.Errorf("building render values: %w", err)
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return Objects{}, fmt.Errorf("rendering chart %s: %w", chartDir, err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out Objects
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(files[name]) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := out.decode([]byte(doc)); err != nil {
				return Objects{}, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return out, nil
}

// decode adds one manifest to the list of its kind in o, strictly.
func (o *Objects) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("not YAML: %w\n%s", err, doc)
	}
	lists := map[string]any{
		"apps/v1/DaemonSet": &o.DaemonSets, "v1/Service": &o.Services, "v1/ServiceAccount": &o.ServiceAccounts,
		"v1/ConfigMap": &o.ConfigMaps, "monitoring.coreos.com/v1/ServiceMonitor": &o.ServiceMonitors,
		"monitoring.coreos.com/v1/PrometheusRule": &o.PrometheusRules,
	}
	list, ok := lists[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return fmt.Errorf("unexpected object %s %s; add it to helmrender's decoder", tm.APIVersion, tm.Kind)
	}
	slice := reflect.ValueOf(list).Elem()
	obj := reflect.New(slice.Type().Elem())
	if err := yaml.UnmarshalStrict(doc, obj.Interface()); err != nil {
		return fmt.Errorf("%s does not decode strictly: %w\n%s", tm.Kind, err, doc)
	}
	slice.Set(reflect.Append(slice, obj.Elem()))
	return nil
}
