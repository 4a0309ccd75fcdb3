// Package inventory extracts the OS packages of an image (from the Engine's
// image export) or of a running container (through /proc/<pid>/root) with
// osv-scalibr's dpkg, apk and rpm extractors, and caches each inventory on
// disk so an image is read once per ID.
package inventory

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/images/osv"
)

// Format is the cache format; a cached inventory of another format is
// extracted again.
const Format = 1

// Package is one installed OS package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source and SourceVersion name the source package when it differs
	// (Debian's Source field, Alpine's origin, the rpm's source rpm).
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Ecosystem is OSV's, normalised: "Debian:12", "Alpine:v3.19".
	Ecosystem string `json:"ecosystem"`
}

// Skip is a reason the inventory may be incomplete.
type Skip struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Skip reasons, the `reason` label of the scan error counter and the
// vulns.scan_skipped finding's detail.
const (
	ReasonTooLarge         = "too_large"           // the image is over images.max_image_size
	ReasonCorrupt          = "corrupt_export"      // the export is not a readable image tar
	ReasonExport           = "export_failed"       // the Engine's export failed
	ReasonDatabaseTooLarge = "database_too_large"  // a package database is over images.max_database_size
	ReasonUnreadable       = "unreadable"          // a package database could not be read (hostile symlink, permission)
	ReasonExtract          = "extract_failed"      // an extractor failed on a package database
	ReasonNoDatabase       = "no_package_database" // the OS has a package manager but no database was found
	ReasonUnknownRelease   = "unknown_release"     // packages without an OS release to match them against
)

// Inventory is the OS packages of one image or container.
type Inventory struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	// OS is os-release's PRETTY_NAME; OSID its ID.
	OS        string    `json:"os,omitempty"`
	OSID      string    `json:"os_id,omitempty"`
	Packages  []Package `json:"packages"`
	Skipped   []Skip    `json:"skipped,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	Extracted time.Time `json:"extracted"`
}

// Ecosystems lists the ecosystems (releases) the packages are in.
func (inv Inventory) Ecosystems() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range inv.Packages {
		if !seen[p.Ecosystem] {
			seen[p.Ecosystem] = true
			out = append(out, p.Ecosystem)
		}
	}
	sort.Strings(out)
	return out
}

// Queries are the (ecosystem, name, version) triples to match, by the name
// and version the ecosystem's records use: Debian's and Alpine's records
// name the source package; rpm records the binary one, so both are asked.
func (p Package) Queries() []osv.Query {
	name, version := p.Name, p.Version
	if p.SourceVersion != "" {
		version = p.SourceVersion
	}
	switch osv.Base(p.Ecosystem) {
	case "Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard":
		if p.Source != "" {
			name = p.Source
		}
		return []osv.Query{{Ecosystem: p.Ecosystem, Name: name, Version: version}}
	}
	qs := []osv.Query{{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}}
	if p.Source != "" && p.Source != p.Name {
		qs = append(qs, osv.Query{Ecosystem: p.Ecosystem, Name: p.Source, Version: p.Version})
	}
	return qs
}

// Same reports whether two inventories hold the same packages.
func Same(a, b []Package) bool {
	if len(a) != len(b) {
		return false
	}
	as, bs := sortedKeys(a), sortedKeys(b)
	for i := range as {
		if as[i] != bs[i] {
			return false
		}
	}
	return true
}

// Diff says how a container's packages differ from its image's: packages
// added, removed, and changed (a different version), each "name version".
func Diff(image, container []Package) (added, removed, changed []string) {
	im := map[string]Package{}
	for _, p := range image {
		im[p.Name] = p
	}
	cm := map[string]Package{}
	for _, p := range container {
		cm[p.Name] = p
		old, ok := im[p.Name]
		switch {
		case !ok:
			added = append(added, p.Name+" "+p.Version)
		case old.Version != p.Version:
			changed = append(changed, fmt.Sprintf("%s %s -> %s", p.Name, old.Version, p.Version))
		}
	}
	for _, p := range image {
		if _, ok := cm[p.Name]; !ok {
			removed = append(removed, p.Name+" "+p.Version)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

func sortedKeys(ps []Package) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.Join([]string{p.Ecosystem, p.Name, p.Version, p.Source, p.SourceVersion}, "\x00")
	}
	sort.Strings(out)
	return out
}
