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

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.store
	s.mu.RLock()
	defer s.mu.RUnlock()
	exempted := map[string]float64{}
	// Two scopes (or two sources) may report the same (rule, subject); a
	// repeated label set would fail the whole scrape, so each is sent once.
	type series struct {
		rule, cis, name, id, image string
		sev                        Severity
		kind                       Kind
	}
	sent := make(map[series]bool, len(s.open)*4)
	for _, m := range s.open {
		for _, f := range m {
			if f.Exempt {
				exempted[f.Rule]++
				continue
			}
			k := series{f.Rule, f.CIS, f.Subject.Name, f.Subject.ShortID(), f.Subject.Image, f.Severity, f.Subject.Kind}
			if sent[k] {
				continue
			}
			sent[k] = true
			ch <- prometheus.MustNewConstMetric(findingDesc, prometheus.GaugeValue, 1,
				f.Rule, f.Severity.String(), f.CIS, string(f.Subject.Kind), f.Subject.Name,
				f.Subject.ShortID(), f.Subject.Image)
		}
	}
	// Every rule gets its zero series, so alert expressions and dashboards
	// see 0 rather than nothing.
	opened := make(map[openedKey]uint64, len(s.opened))
	for _, r := range Rules() {
		sev := r.Severity
		if o, ok := s.policy.Rules[r.ID]; ok && o.Severity != nil {
			sev = *o.Severity
		}
		opened[openedKey{r.ID, sev}] = 0
		ch <- prometheus.MustNewConstMetric(exemptedDesc, prometheus.GaugeValue, exempted[r.ID], r.ID)
	}
	for k, v := range s.opened {
		opened[k] = v
	}
	for k, v := range opened {
		ch <- prometheus.MustNewConstMetric(openedDesc, prometheus.CounterValue, float64(v), k.rule, k.severity.String())
	}
}
