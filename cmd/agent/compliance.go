package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dockward/dockward/pkg/findings"
)

// SetObserver is called by a source's builder when the source reports
// observed checks (counts, events seen) besides its findings.
func (w *wiring) SetObserver(source string, f func() map[string]findings.Observation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.observers == nil {
		w.observers = map[string]func() map[string]findings.Observation{}
	}
	w.observers[source] = f
}

// observations merges what every judged source observed.
func (w *wiring) observations(judged func(string) bool) map[string]findings.Observation {
	w.mu.RLock()
	fs := make(map[string]func() map[string]findings.Observation, len(w.observers))
	for k, f := range w.observers {
		fs[k] = f
	}
	w.mu.RUnlock()
	out := map[string]findings.Observation{}
	for source, f := range fs {
		if !judged(source) {
			continue
		}
		for id, o := range f() {
			out[id] = o
		}
	}
	return out
}

// compliance is the report over the store's open findings, counting a
// source's checks as judged only when judged says so.
func (w *wiring) compliance(judged func(string) bool) findings.Compliance {
	return findings.Report(findings.ComplianceInput{
		Open: w.store.Open(), Judged: judged, Observations: w.observations(judged), Disabled: w.store.DisabledRules(),
	})
}

// printCompliance writes the report: a table per section, or JSON.
func printCompliance(out io.Writer, format string, rep findings.Compliance) error {
	if format == "cis-json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if _, err := fmt.Fprintf(out, "%s\n", rep.Benchmark); err != nil {
		return err
	}
	for _, sec := range rep.Sections {
		fmt.Fprintf(out, "\n[%s] %s\n", sec.ID, sec.Title)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, r := range sec.Checks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.ID, strings.ToUpper(string(r.Status)), r.Title, resultDetail(r))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	var parts []string
	for _, st := range findings.Statuses() {
		parts = append(parts, fmt.Sprintf("%d %s", rep.Counts[st], st))
	}
	_, err := fmt.Fprintf(out, "\nChecks: %d, Score: %d (%s)\n", rep.Checks, rep.Score, strings.Join(parts, ", "))
	return err
}

// resultDetail is the table's last column: the failing subjects (the first
// few), then the note.
func resultDetail(r findings.CheckResult) string {
	const shown = 3
	var parts []string
	if n := len(r.Subjects); n > 0 {
		s := strings.Join(r.Subjects[:min(n, shown)], ", ")
		if n > shown {
			s += fmt.Sprintf(" and %d more", n-shown)
		}
		parts = append(parts, s)
	}
	if r.Note != "" {
		parts = append(parts, r.Note)
	}
	return oneLine(strings.Join(parts, "; "))
}
