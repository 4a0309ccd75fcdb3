package images

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/inventory"
	"github.com/dockward/dockward/pkg/images/osv"
)

// counts[level][fixable] counts CVEs by osv.Level and whether a fix exists.
type counts [osv.NumLevels][2]int

// tally is what one inventory's matches come to.
type tally struct {
	// chunks are the per-CVE entries, one shared chunk per installed
	// package version (see entries).
	chunks [][]findings.Vulnerability
	levels [][]osv.Level // the entries' levels, chunk by chunk
	// counts counts CVEs: a CVE found in two packages of the image counts
	// once, at its highest severity, fixable if either is.
	counts *counts
	// complete is false when an ecosystem the inventory needs has no zip.
	complete bool
}

// chunk is the vulnerability entries of one installed package version,
// shared by every image and container that has it.
type chunk struct {
	entries []findings.Vulnerability
	levels  []osv.Level
}

// group turns the records matched to one package version into its CVEs
// (records naming the same CVE merged), once for every inventory.
func (s *Source) group(q osv.Query, vulns []osv.Vuln) chunk {
	var c chunk
	for _, v := range osv.Group(q.Ecosystem, []osv.Installed{{Name: q.Name, Version: q.Version, Vulns: vulns}}) {
		if v.Unimportant && !s.cfg.Vulns.ShowUnimportant {
			continue
		}
		c.entries = append(c.entries, findings.Vulnerability{ID: v.ID, Package: v.Package, Installed: v.Installed,
			Fixed: v.Fixed, Severity: v.Severity.String(), Records: v.Records})
		c.levels = append(c.levels, v.Severity)
	}
	return c
}

// tallyOf collects an inventory's CVEs and counts them.
func (s *Source) tallyOf(inv *inventory.Inventory, status map[string]dbStatus) tally {
	t := tally{complete: true, counts: new(counts)}
	seen := map[osv.Query]bool{}
	var order []osv.Query
	for _, p := range inv.Packages {
		for _, q := range p.Queries() {
			if !status[osv.Base(q.Ecosystem)].usable() {
				t.complete = false
				continue
			}
			if !seen[q] {
				seen[q] = true
				order = append(order, q)
			}
		}
	}
	sort.Slice(order, func(i, j int) bool { return queryLess(order[i], order[j]) })
	for _, q := range order {
		if c := s.matches[q]; len(c.entries) > 0 {
			t.chunks = append(t.chunks, c.entries)
			t.levels = append(t.levels, c.levels)
		}
	}
	t.count()
	return t
}

func queryLess(a, b osv.Query) bool {
	if a.Ecosystem != b.Ecosystem {
		return a.Ecosystem < b.Ecosystem
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Version < b.Version
}

func (t *tally) count() {
	type worst struct {
		level   osv.Level
		fixable bool
	}
	byID := map[string]worst{}
	for i, c := range t.chunks {
		for j, v := range c {
			w := byID[v.ID]
			byID[v.ID] = worst{max(w.level, t.levels[i][j]), w.fixable || v.Fixed != ""}
		}
	}
	for _, w := range byID {
		f := 0
		if w.fixable {
			f = 1
		}
		t.counts[w.level][f]++
	}
}

// list is the finding's per-CVE list over the shared chunks.
func (t tally) list() findings.VulnerabilityList { return findings.ListOf(t.chunks...) }

// summary is "12 vulnerabilities (1 critical, 3 high, ...), 9 with a fix".
func (t tally) summary() string {
	var parts []string
	total, fixable := 0, 0
	for _, l := range osv.Levels {
		n := t.counts[l][0] + t.counts[l][1]
		total += n
		fixable += t.counts[l][1]
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, l))
		}
	}
	return fmt.Sprintf("%d vulnerabilities (%s), %d with a fix", total, strings.Join(parts, ", "), fixable)
}

// total is the number of CVEs counted.
func (t tally) total() int {
	n := 0
	for _, l := range osv.Levels {
		n += t.counts[l][0] + t.counts[l][1]
	}
	return n
}

// highestFixable is the most severe level with a fixable CVE.
func (t tally) highestFixable() (osv.Level, bool) {
	for _, l := range osv.Levels {
		if t.counts[l][1] > 0 {
			return l, true
		}
	}
	return osv.Unknown, false
}
