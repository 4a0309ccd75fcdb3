package findings

import "github.com/prometheus/client_golang/prometheus"

var (
	findingDesc = prometheus.NewDesc("dockward_finding",
		"An open finding: 1 per (rule, subject) while the condition holds.",
		[]string{"rule", "severity", "cis", "kind", "subject", "container_id", "image"}, nil)
	openedDesc = prometheus.NewDesc("dockward_findings_opened_total",
		"Findings opened since the agent started, by rule and severity.",
		[]string{"rule", "severity"}, nil)
	exemptedDesc = prometheus.NewDesc("dockward_findings_exempted",
		"Open findings accepted by an exemption in config (not alerted on).",
		[]string{"rule"}, nil)
)

// seriesLabels are the label values of a finding's dockward_finding series,
// in findingDesc's order.
type seriesLabels [7]string

func labelsOf(f Finding) seriesLabels {
	return seriesLabels{f.Rule, f.Severity.String(), f.CIS, string(f.Subject.Kind), f.Subject.Name,
		f.Subject.ShortID(), f.Subject.Image}
}

type cachedSeries struct {
	labels seriesLabels
	metric prometheus.Metric
}

// cacheSeries returns the series of a scope's open findings, reusing prev's
// metrics where the labels did not change.
func cacheSeries(prev map[findingKey]cachedSeries, open map[findingKey]Finding) map[findingKey]cachedSeries {
	next := make(map[findingKey]cachedSeries, len(open))
	for k, f := range open {
		if f.Exempt {
			continue
		}
		l := labelsOf(f)
		if old, ok := prev[k]; ok && old.labels == l {
			next[k] = old
			continue
		}
		next[k] = cachedSeries{labels: l, metric: prometheus.MustNewConstMetric(findingDesc, prometheus.GaugeValue, 1, l[:]...)}
	}
	return next
}

// Collector builds the finding series from the store at scrape time, so a
// resolved finding or a removed container never leaves a stale series.
type Collector struct{ store *Store }

// NewCollector returns the collector for store.
func NewCollector(store *Store) *Collector { return &Collector{store: store} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- findingDesc
	ch <- openedDesc
	ch <- exemptedDesc
}

// Collect implements prometheus.Collector. It copies what it needs under
// the store's read lock and sends after releasing it, so sources reporting
// judgements never wait for a scrape to be written out.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	findingSeries, exempted, opened := c.store.snapshotSeries()
	for _, m := range findingSeries {
		ch <- m
	}
	for _, r := range Rules() {
		ch <- prometheus.MustNewConstMetric(exemptedDesc, prometheus.GaugeValue, exempted[r.ID], r.ID)
	}
	for k, v := range opened {
		ch <- prometheus.MustNewConstMetric(openedDesc, prometheus.CounterValue, float64(v), k.rule, k.severity.String())
	}
}

// snapshotSeries returns the finding series, exempt counts per rule and the
// opened counters, with a zero counter for every rule at its effective
// default severity so alerts and dashboards see 0 rather than nothing.
func (s *Store) snapshotSeries() ([]prometheus.Metric, map[string]float64, map[openedKey]uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	// Two scopes (or two sources) may report the same (rule, subject); a
	// repeated label set would fail the whole scrape, so each is sent once.
	sent := make(map[seriesLabels]bool, len(s.series)*4)
	out := make([]prometheus.Metric, 0, len(s.series)*4)
	for _, m := range s.series {
		for _, cs := range m {
			if !sent[cs.labels] {
				sent[cs.labels] = true
				out = append(out, cs.metric)
			}
		}
	}
	exempted := map[string]float64{}
	for _, m := range s.open {
		for _, f := range m {
			if f.Exempt {
				exempted[f.Rule]++
			}
		}
	}
	opened := make(map[openedKey]uint64, len(s.opened)+64)
	for _, r := range Rules() {
		sev := r.Severity
		if o, ok := s.policy.Rules[r.ID]; ok && o.Severity != nil {
			sev = *o.Severity
		}
		opened[openedKey{r.ID, sev}] = 0
	}
	for k, v := range s.opened {
		opened[k] = v
	}
	return out, exempted, opened
}
