package containers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// renderMetrics scrapes reg through promhttp as Prometheus would and fails
// unless the text parses.
func renderMetrics(t testing.TB, reg prometheus.Gatherer) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", rec.Code, rec.Body.String())
	}
	body := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Fatalf("/metrics output does not parse: %v", err)
	}
	return body
}

func TestMetricsZeroSeries(t *testing.T) {
	f := newFakeEngine(t)
	h := newHarness(t, NewEngine(f.client()), fastConfig(), nil)
	want := `
# HELP dockward_containers Containers known to the agent, by state.
# TYPE dockward_containers gauge
dockward_containers{state="created"} 0
dockward_containers{state="dead"} 0
dockward_containers{state="exited"} 0
dockward_containers{state="other"} 0
dockward_containers{state="paused"} 0
dockward_containers{state="removing"} 0
dockward_containers{state="restarting"} 0
dockward_containers{state="running"} 0
# HELP dockward_container_execs_total docker exec processes started, by whether they ran privileged and whether they ran as root.
# TYPE dockward_container_execs_total counter
dockward_container_execs_total{privileged="false",root="false"} 0
dockward_container_execs_total{privileged="false",root="true"} 0
dockward_container_execs_total{privileged="false",root="unknown"} 0
dockward_container_execs_total{privileged="true",root="false"} 0
dockward_container_execs_total{privileged="true",root="true"} 0
dockward_container_execs_total{privileged="true",root="unknown"} 0
dockward_container_execs_total{privileged="unknown",root="false"} 0
dockward_container_execs_total{privileged="unknown",root="true"} 0
dockward_container_execs_total{privileged="unknown",root="unknown"} 0
# HELP dockward_images Local images known to the agent (CIS 6.1, image sprawl).
# TYPE dockward_images gauge
dockward_images 0
# HELP dockward_images_unused Local images no container (in any state) was created from.
# TYPE dockward_images_unused gauge
dockward_images_unused 0
# HELP dockward_docker_up 1 while the Docker event stream is connected, 0 while the agent is retrying.
# TYPE dockward_docker_up gauge
dockward_docker_up 0
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want),
		"dockward_containers", "dockward_container_execs_total", "dockward_docker_up", "dockward_images", "dockward_images_unused"); err != nil {
		t.Fatal(err)
	}
}
