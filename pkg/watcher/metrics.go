package watcher

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Scan error reasons: a fixed set, so the label stays bounded.
const (
	reasonDockerInfo      = "docker_info"
	reasonDockerdNotFound = "dockerd_not_found"
	reasonDaemonJSON      = "daemon_json_invalid"
	reasonUnreadable      = "unreadable"
	reasonSymlinkLoop     = "symlink_loop"
	reasonStat            = "stat"
	reasonStateFile       = "state_file"
	reasonPackageDB       = "package_db"
	reasonWatch           = "watch"
)

var allReasons = []string{
	reasonDockerInfo, reasonDockerdNotFound, reasonDaemonJSON, reasonUnreadable, reasonSymlinkLoop,
	reasonStat, reasonStateFile, reasonPackageDB, reasonWatch,
}

// metrics are the host source's own series. Findings are exported by the
// findings collector, not here.
type metrics struct {
	changes  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	scans    prometheus.Counter
	lastScan prometheus.Gauge
	duration prometheus.Gauge
	watched  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockward_file_changes_total",
			Help: "Changes seen to a watched Docker file or binary (content, owner, mode or link target), by host path.",
		}, []string{"path"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockward_host_scan_errors_total",
			Help: "Errors while judging the host's Docker settings and files, by reason.",
		}, []string{"reason"}),
		scans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockward_host_scans_total",
			Help: "Complete judgements of the host's Docker settings, files and binaries.",
		}),
		lastScan: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockward_host_last_scan_timestamp_seconds",
			Help: "When the last complete host judgement finished, in seconds since the epoch.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockward_host_scan_duration_seconds",
			Help: "How long the last complete host judgement took.",
		}),
		watched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockward_host_watched_paths",
			Help: "Host paths the watcher judges and watches for changes.",
		}),
	}
	for _, r := range allReasons {
		m.errors.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.changes, m.errors, m.scans, m.lastScan, m.duration, m.watched} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}
