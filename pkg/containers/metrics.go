package containers

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// knownStates are every state dockerd reports; each gets a series, 0 when
// no container is in it.
var knownStates = []string{"created", "running", "paused", "restarting", "removing", "exited", "dead"}

// knownEventTypes and knownActions bound the labels of
// dockward_docker_events_total; anything else is counted as "other".
var knownEventTypes = setOf("builder", "config", "container", "daemon", "image", "network", "node",
	"plugin", "secret", "service", "volume")

var knownActions = setOf("create", "start", "restart", "stop", "checkpoint", "pause", "unpause", "attach",
	"detach", "resize", "update", "rename", "kill", "die", "oom", "destroy", "remove", "commit", "top", "copy",
	"archive-path", "extract-to-dir", "export", "import", "save", "load", "tag", "untag", "push", "pull",
	"prune", "delete", "enable", "disable", "connect", "disconnect", "reload", "mount", "unmount",
	"exec_create", "exec_start", "exec_die", "exec_detach", "health_status")

// Label values of dockward_container_execs_total's privileged and root.
// "unknown" is used only when dockerd no longer knows the exec by the time
// it is read (or, for root, the container's own user is unknown).
var execFlagValues = []string{"true", "false", "unknown"}

type metrics struct {
	up         prometheus.Gauge
	events     *prometheus.CounterVec
	malformed  prometheus.Counter
	reconnects prometheus.Counter
	execs      *prometheus.CounterVec
	inspectErr prometheus.Counter
	inventory  prometheus.Gauge
	states     *stateCollector
	images     *imageCollector
}

func newMetrics(states func() map[string]int, images func() (total, unused int)) *metrics {
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dockward_docker_up",
			Help: "1 while the Docker event stream is connected, 0 while the agent is retrying."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_docker_events_total",
			Help: "Docker events received, by type and action (unknown values are counted as other)."},
			[]string{"type", "action"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_docker_events_malformed_total",
			Help: "Docker events that could not be decoded or lacked a type, action or actor; skipped."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_docker_reconnects_total",
			Help: "Times the agent connected to Docker again after it had been unreachable (at start included)."}),
		execs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_container_execs_total",
			Help: "docker exec processes started, by whether they ran privileged and whether they ran as root."},
			[]string{"privileged", "root"}),
		inspectErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_container_inspect_errors_total",
			Help: "Container inspect calls that failed for a reason other than the container being gone."}),
		inventory: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dockward_container_inventory_duration_seconds",
			Help: "How long the last full inventory (list plus one inspect per container) took."}),
		states: &stateCollector{states: states, desc: prometheus.NewDesc("dockward_containers",
			"Containers known to the agent, by state.", []string{"state"}, nil)},
		images: &imageCollector{counts: images,
			total: prometheus.NewDesc("dockward_images", "Local images known to the agent (CIS 6.1, image sprawl).", nil, nil),
			unused: prometheus.NewDesc("dockward_images_unused",
				"Local images no container (in any state) was created from.", nil, nil)},
	}
	for _, p := range execFlagValues {
		for _, r := range execFlagValues {
			m.execs.WithLabelValues(p, r)
		}
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.up, m.events, m.malformed, m.reconnects, m.execs, m.inspectErr, m.inventory, m.states, m.images} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// eventLabels bounds an event's type and action. Exec and health actions
// carry a free-form suffix after ": " (the command, the health status);
// only the part before it is a label.
func eventLabels(typ, action string) (string, string) {
	if !knownEventTypes[typ] {
		typ = "other"
	}
	base, _, _ := strings.Cut(action, ":")
	base = strings.TrimSpace(base)
	if !knownActions[base] {
		base = "other"
	}
	return typ, base
}

// stateCollector builds dockward_containers at scrape time from the
// source's view, so a removed container is never left counted.
type stateCollector struct {
	states func() map[string]int
	desc   *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.states()
	for _, s := range knownStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), s)
	}
	// A state this agent does not know yet is still counted rather than hidden.
	other := 0
	for s, n := range counts {
		if !containsString(knownStates, s) {
			other += n
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(other), "other")
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// imageCollector builds the image sprawl gauges at scrape time.
type imageCollector struct {
	counts        func() (total, unused int)
	total, unused *prometheus.Desc
}

func (c *imageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.total; ch <- c.unused }

func (c *imageCollector) Collect(ch chan<- prometheus.Metric) {
	total, unused := c.counts()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(c.unused, prometheus.GaugeValue, float64(unused))
}
