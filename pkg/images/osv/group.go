package osv

import (
	"sort"
)

// Installed is one installed package and the records matched to it.
type Installed struct {
	// Name is the package as the records name it (Debian's source package).
	Name     string
	Binaries []string // the installed binary packages built from it
	Version  string
	Vulns    []Vuln
}

// CVE is one vulnerability of one package: every record naming the same
// identity (a DSA and the DEBIAN-CVE record of its CVE) merged into one.
type CVE struct {
	ID        string   `json:"id"`
	Records   []string `json:"records"`
	Package   string   `json:"package"`
	Binaries  []string `json:"binaries,omitempty"`
	Installed string   `json:"installed"`
	// Fixed is the lowest fixed version any of its records gives; a
	// vulnerability is fixable when one exists.
	Fixed       string `json:"fixed,omitempty"`
	Severity    Level  `json:"severity"`
	Unimportant bool   `json:"unimportant,omitempty"`
}

// Fixable reports whether a fixed version exists.
func (c CVE) Fixable() bool { return c.Fixed != "" }

// Group merges the records matched to each package by the identities they
// count as, so the list holds each CVE once per package, most severe first.
// A record's severity is the highest any of its records gives; it is
// unimportant only when every record naming it says so.
func Group(eco string, installed []Installed) []CVE {
	type key struct{ id, pkg string }
	idx := map[key]int{}
	var out []CVE
	for _, p := range installed {
		for _, v := range p.Vulns {
			for _, id := range v.CVEs {
				k := key{id, p.Name}
				i, ok := idx[k]
				if !ok {
					idx[k] = len(out)
					out = append(out, CVE{ID: id, Package: p.Name, Binaries: p.Binaries, Installed: p.Version,
						Severity: v.Severity, Fixed: v.Fixed, Unimportant: v.Unimportant, Records: []string{v.ID}})
					continue
				}
				c := &out[i]
				c.Records = appendNew(c.Records, v.ID)
				c.Severity = max(c.Severity, v.Severity)
				c.Unimportant = c.Unimportant && v.Unimportant
				if v.Fixed != "" && (c.Fixed == "" || lessVersion(v.Fixed, c.Fixed, Base(eco))) {
					c.Fixed = v.Fixed
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity > out[j].Severity
		}
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Package < out[j].Package
	})
	return out
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
