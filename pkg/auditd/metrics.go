package auditd

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dockward/dockward/pkg/auditd/record"
)

// Receive error reasons; ENOBUFS is the kernel dropping records for a slow
// multicast reader, the only loss signal that mode has.
const (
	reasonENOBUFS = "enobufs"
	reasonOther   = "other"
)

// metrics are the audit source's own series. They are counters the
// source increments directly, plus the up and backlog gauges it sets.
type metrics struct {
	up             *prometheus.GaugeVec
	events         *prometheus.CounterVec
	kernelLost     prometheus.Counter
	backlog        prometheus.Gauge
	kernelReadable prometheus.Gauge
	daemonRunning  prometheus.Gauge
	receiveErrors  *prometheus.CounterVec
	sequenceGaps   prometheus.Counter
	lateRecords    prometheus.Counter
	parseErrors    prometheus.Counter
	records        prometheus.Counter
	reinstalled    *prometheus.CounterVec
	suppressed     *prometheus.CounterVec
	suppressedKey  map[string]prometheus.Counter
	eventsByKey    map[eventLabel]prometheus.Counter
	reinstalledKey map[string]prometheus.Counter
	unmatched      prometheus.Counter
	tamper         map[TamperKind]prometheus.Counter
	tamperVec      *prometheus.CounterVec
}

type eventLabel struct {
	key      string
	access   record.Access
	expected bool
}

func newMetrics(reg prometheus.Registerer, keys []string) (*metrics, error) {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dockward_audit_up",
			Help: "1 for the mode the audit source runs in while it receives records (or follows the log file), else 0."}, []string{"mode"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_audit_events_total",
			Help: "Audit events on Docker's watched paths, by watch key, access (write, attr, read, exec, other) and whether they are routine; expected=\"false\" is a write or attribute change by a process that is not an expected writer."},
			[]string{"key", "expected", "access"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_audit_unmatched_events_total",
			Help: "Audit events a kernel rule reported on paths no dockward watch covers (another rule set's paths, or a name relative to a directory that could not be read); counted under no watch key."}),
		tamperVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_audit_tamper_events_total",
			Help: "Changes to kernel audit itself that weaken it: Docker rules removed, audit disabled, the audit daemon ended or replaced, the backlog, failure mode or rate limit changed; by kind."}, []string{"kind"}),
		tamper: map[TamperKind]prometheus.Counter{},
		kernelLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_audit_kernel_lost_total",
			Help: "Records the kernel dropped (its lost counter, polled) since the source started."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dockward_audit_backlog",
			Help: "Records waiting in the kernel's audit queue at the last poll."}),
		kernelReadable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dockward_audit_kernel_readable",
			Help: "1 when the kernel answered the last audit status request; 0 where it refuses them (outside the host's initial PID namespace, as in a Swarm task): rule coverage and kernel loss are then not checked."}),
		daemonRunning: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dockward_audit_daemon_running",
			Help: "1 while an audit daemon holds the kernel's audit PID (dockward itself in unicast mode); without one, multicast and file modes receive no events."}),
		receiveErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_audit_receive_errors_total",
			Help: "Errors receiving from the audit netlink socket; enobufs means records were dropped."}, []string{"reason"}),
		sequenceGaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_audit_sequence_gaps_total",
			Help: "Audit serials that never arrived (events lost between the kernel and dockward)."}),
		lateRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_audit_late_records_total",
			Help: "Audit events that arrived after a later serial (out of order, not lost)."}),
		parseErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_audit_parse_errors_total",
			Help: "Audit records or fields that could not be parsed."}),
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_audit_records_total",
			Help: "Audit records received or read."}),
		reinstalled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_audit_rules_reinstalled_total",
			Help: "dockward's audit rules found removed from the kernel and installed again, by watch key."}, []string{"key"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_audit_log_lines_suppressed_total",
			Help: "Unexpected-writer log lines not written because the per-key rate limit was reached (the events are still counted)."}, []string{"key"}),
		suppressedKey:  map[string]prometheus.Counter{},
		eventsByKey:    map[eventLabel]prometheus.Counter{},
		reinstalledKey: map[string]prometheus.Counter{},
	}
	for _, mode := range Modes {
		m.up.WithLabelValues(string(mode)).Set(0)
	}
	for _, r := range []string{reasonENOBUFS, reasonOther} {
		m.receiveErrors.WithLabelValues(r)
	}
	for _, k := range TamperKinds {
		m.tamper[k] = m.tamperVec.WithLabelValues(string(k))
	}
	for _, k := range keys {
		for _, a := range record.Accesses {
			m.eventCounter(k, a, true)
			if a.Changes() {
				m.eventCounter(k, a, false) // only changes can be unexpected
			}
		}
		if _, ok := m.reinstalledKey[k]; !ok {
			m.reinstalledKey[k] = m.reinstalled.WithLabelValues(k)
		}
		m.suppressedCounter(k)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.up, m.events, m.kernelLost, m.backlog, m.kernelReadable, m.daemonRunning, m.receiveErrors,
			m.sequenceGaps, m.lateRecords, m.parseErrors, m.records, m.reinstalled, m.suppressed, m.unmatched, m.tamperVec} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering audit metrics: %w", err)
			}
		}
	}
	return m, nil
}

// eventCounter returns the counter for one (key, access, expected) triple.
// Keys are the configured watch keys only and accesses the five classes,
// so the labels stay bounded.
func (m *metrics) eventCounter(key string, access record.Access, expected bool) prometheus.Counter {
	l := eventLabel{key, access, expected}
	c, ok := m.eventsByKey[l]
	if !ok {
		exp := "false"
		if expected {
			exp = "true"
		}
		c = m.events.WithLabelValues(key, exp, string(access))
		m.eventsByKey[l] = c
	}
	return c
}

func (m *metrics) suppressedCounter(key string) prometheus.Counter {
	c, ok := m.suppressedKey[key]
	if !ok {
		c = m.suppressed.WithLabelValues(key)
		m.suppressedKey[key] = c
	}
	return c
}

func (m *metrics) setMode(mode Mode, up bool) {
	for _, md := range Modes {
		v := 0.0
		if md == mode && up {
			v = 1
		}
		m.up.WithLabelValues(string(md)).Set(v)
	}
}
