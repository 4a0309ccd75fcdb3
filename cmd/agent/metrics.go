package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/dockward/dockward/pkg/findings"
)

// agentMetrics are the agent's own series (the sources register theirs).
type agentMetrics struct {
	sourceReady         *prometheus.GaugeVec
	sourceUp            *prometheus.GaugeVec
	sourceRestarts      *prometheus.CounterVec
	reloads             prometheus.Counter
	reloadFailures      prometheus.Counter
	lastReloadOK        prometheus.Gauge
	lastReloadTimestamp prometheus.Gauge
}

func newAgentMetrics() *agentMetrics {
	m := &agentMetrics{
		sourceReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dockward_source_ready",
			Help: "1 when the source is enabled, running and has completed its first judgement.",
		}, []string{"source"}),
		// Only enabled sources have the series: a disabled source is not a
		// failing one, and an alert on == 0 must not page for it.
		sourceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dockward_source_up",
			Help: "0 while an enabled source is failing (from a failed run until a restarted run is ready again), else 1; absent for disabled sources.",
		}, []string{"source"}),
		sourceRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockward_source_restarts_total",
			Help: "Times a source failed and was restarted.",
		}, []string{"source"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockward_config_reloads_total",
			Help: "Config reloads attempted (SIGHUP).",
		}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockward_config_reload_failures_total",
			Help: "Config reloads rejected because the new config was invalid; the old config stayed in force.",
		}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockward_config_last_reload_successful",
			Help: "1 when the last config load or reload was accepted.",
		}),
		lastReloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockward_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last accepted config load or reload.",
		}),
	}
	// Known series start at 0 rather than being absent.
	for _, name := range sourceNames() {
		m.sourceReady.WithLabelValues(name)
		m.sourceRestarts.WithLabelValues(name)
	}
	return m
}

func (m *agentMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sourceReady, m.sourceUp, m.sourceRestarts, m.reloads, m.reloadFailures,
		m.lastReloadOK, m.lastReloadTimestamp}
}

// newRegistry builds the registry behind /metrics: build info, the findings
// collector, the agent's own series and, unless disabled, the Go and process
// collectors.
func newRegistry(store *findings.Store, m *agentMetrics, exporterMetrics bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector("dockward"), findings.NewCollector(store))
	reg.MustRegister(m.collectors()...)
	if exporterMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}
