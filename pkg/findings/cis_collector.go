package findings

import "github.com/prometheus/client_golang/prometheus"

var (
	cisCheckDesc = prometheus.NewDesc("dockward_cis_check",
		"CIS Docker Benchmark v1.6.0 checks: 1 for each check's current status, 0 for its other statuses.",
		[]string{"check", "section", "status"}, nil)
	cisScoreDesc = prometheus.NewDesc("dockward_cis_score",
		"The compliance score as docker-bench-security computes it: passed checks minus failed checks.", nil, nil)
)

// ComplianceCollector exports the compliance report at scrape time: one
// series per (check, status), 117 checks times 5 statuses, so the series
// set is fixed and a status change is a value change, never a new series.
type ComplianceCollector struct{ report func() Compliance }

// NewComplianceCollector returns a collector that calls report on every
// scrape.
func NewComplianceCollector(report func() Compliance) *ComplianceCollector {
	return &ComplianceCollector{report: report}
}

// Describe implements prometheus.Collector.
func (c *ComplianceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cisCheckDesc
	ch <- cisScoreDesc
}

// Collect implements prometheus.Collector.
func (c *ComplianceCollector) Collect(ch chan<- prometheus.Metric) {
	rep := c.report()
	for _, r := range rep.Results() {
		for _, st := range Statuses() {
			v := 0.0
			if r.Status == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(cisCheckDesc, prometheus.GaugeValue, v, r.ID, r.Section(), string(st))
		}
	}
	ch <- prometheus.MustNewConstMetric(cisScoreDesc, prometheus.GaugeValue, float64(rep.Score))
}
