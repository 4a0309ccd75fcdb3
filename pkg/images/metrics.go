package images

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/inventory"
	"github.com/dockward/dockward/pkg/images/osv"
)

var (
	imageVulnsDesc = prometheus.NewDesc("dockward_image_vulnerabilities",
		"Known vulnerabilities (CVEs) of the OS packages of a local image, by severity and whether a fixed version exists.",
		[]string{"image_id", "image", "severity", "fixable"}, nil)
	containerVulnsDesc = prometheus.NewDesc("dockward_container_vulnerabilities",
		"Known vulnerabilities (CVEs) of the OS packages a running container runs: its own when they drifted from its image's, else its image's.",
		[]string{"container_id", "container", "image_id", "severity", "fixable"}, nil)
	imageCVEDesc = prometheus.NewDesc("dockward_image_cve",
		"One known vulnerability of a local image (only with vulns.cve_series: the per-CVE list is in /api/v1/findings).",
		[]string{"image_id", "image", "cve", "package", "severity", "fixable"}, nil)
	inventoriedDesc = prometheus.NewDesc("dockward_images_inventoried",
		"Local images whose OS packages have been read.", nil, nil)
	pendingDesc = prometheus.NewDesc("dockward_images_pending",
		"Local images waiting to be read.", nil, nil)
	dbAgeDesc = prometheus.NewDesc("dockward_vulns_db_age_seconds",
		"Age of an ecosystem's OSV zip: time since it was downloaded, confirmed current, or dropped in.",
		[]string{"ecosystem"}, nil)
	dbRecordsDesc = prometheus.NewDesc("dockward_vulns_db_records",
		"OSV records in an ecosystem's zip (0 when it is missing or unreadable).",
		[]string{"ecosystem"}, nil)
)

// scanReasons and updateReasons are the known label values of the error
// counters, exported as 0 from the start.
var (
	scanReasons = []string{inventory.ReasonTooLarge, inventory.ReasonCorrupt, inventory.ReasonExport,
		inventory.ReasonDatabaseTooLarge, inventory.ReasonUnreadable, inventory.ReasonExtract, inventory.ReasonNoDatabase,
		inventory.ReasonUnknownRelease, "proc_unreadable", "database_unreadable"}
	updateReasons = []string{osv.ReasonRequest, osv.ReasonStatus, osv.ReasonSize, osv.ReasonInvalid, osv.ReasonWrite}
)

type imageSeries struct {
	id, name string
	counts   *counts
	cves     findings.VulnerabilityList // only with vulns.cve_series
}

type containerSeries struct {
	id, name, imageID string
	counts            *counts
}

// snapshot is one judgement's worth of state series.
type snapshot struct {
	images      []imageSeries
	containers  []containerSeries
	db          map[string]dbStatus
	inventoried int
	pending     int
	cveSeries   bool
}

type metrics struct {
	mu   sync.RWMutex
	snap *snapshot
	now  func() time.Time

	exports         prometheus.Counter
	scanErrors      *prometheus.CounterVec
	dbChecks        *prometheus.CounterVec
	dbUpdateErrors  *prometheus.CounterVec
	extractDuration prometheus.Histogram
	matchDuration   prometheus.Gauge
}

func newMetrics(now func() time.Time) *metrics {
	m := &metrics{snap: &snapshot{}, now: now,
		exports: prometheus.NewCounter(prometheus.CounterOpts{Name: "dockward_images_exports_total",
			Help: "Image exports (GET /images/get) read; an image is exported once per ID, never after a database update."}),
		scanErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_images_scan_errors_total",
			Help: "Problems met reading images and containers, by reason."}, []string{"reason"}),
		dbChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_vulns_db_update_checks_total",
			Help: "Conditional downloads of an ecosystem's OSV zip attempted."}, []string{"ecosystem"}),
		dbUpdateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dockward_vulns_db_update_errors_total",
			Help: "OSV zip downloads that failed (the old zip is kept), by reason."}, []string{"reason"}),
		extractDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dockward_images_extract_duration_seconds",
			Help:    "Time to export one image and extract its OS packages.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}}),
		matchDuration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dockward_vulns_match_duration_seconds",
			Help: "Duration of the last matching of the inventories against the OSV zips."}),
	}
	for _, r := range scanReasons {
		m.scanErrors.WithLabelValues(r)
	}
	for _, r := range updateReasons {
		m.dbUpdateErrors.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m, m.exports, m.scanErrors, m.dbChecks, m.dbUpdateErrors,
		m.extractDuration, m.matchDuration} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) swap(s *snapshot) {
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{imageVulnsDesc, containerVulnsDesc, imageCVEDesc, inventoriedDesc,
		pendingDesc, dbAgeDesc, dbRecordsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the last judgement: an image
// deleted or a container stopped leaves no series behind.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	s := m.snap
	m.mu.RUnlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, im := range s.images {
		eachCount(im.counts, func(sev, fix string, n int) { gauge(imageVulnsDesc, float64(n), shortID(im.id), im.name, sev, fix) })
		if s.cveSeries {
			for _, c := range im.cves.All() {
				gauge(imageCVEDesc, 1, shortID(im.id), im.name, c.ID, c.Package, c.Severity, boolLabel(c.Fixed != ""))
			}
		}
	}
	for _, c := range s.containers {
		eachCount(c.counts, func(sev, fix string, n int) {
			gauge(containerVulnsDesc, float64(n), shortID(c.id), c.name, shortID(c.imageID), sev, fix)
		})
	}
	gauge(inventoriedDesc, float64(s.inventoried))
	gauge(pendingDesc, float64(s.pending))
	now := m.now()
	for base, st := range s.db {
		gauge(dbAgeDesc, st.info.Age(now).Seconds(), base)
		gauge(dbRecordsDesc, float64(st.records), base)
	}
}

// eachCount calls f for every (severity, fixable) pair, zeros included.
func eachCount(counts *counts, f func(severity, fixable string, n int)) {
	for _, l := range osv.Levels {
		f(l.String(), "false", counts[l][0])
		f(l.String(), "true", counts[l][1])
	}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
