// Package osv reads OSV's published per-ecosystem all.zip files, matches
// installed OS packages against their records, and keeps the zips current
// with conditional downloads. It holds only the fields matching needs; the
// version comparison is osv-scalibr's semantic package.
package osv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Record is the part of one OSV record (https://ossf.github.io/osv-schema/)
// that matching and counting use.
type Record struct {
	ID        string     `json:"id"`
	Withdrawn string     `json:"withdrawn"`
	Aliases   []string   `json:"aliases"`
	Upstream  []string   `json:"upstream"`
	Related   []string   `json:"related"`
	Severity  []Severity `json:"severity"`
	Affected  []Affected `json:"affected"`
}

// Severity is one entry of a record's or an affected package's severity
// list: a CVSS vector, or a distribution's own rating ("Ubuntu": "medium").
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one package (in one ecosystem, usually one release) a record
// names, and the versions of it that are affected.
type Affected struct {
	Package  Package    `json:"package"`
	Severity []Severity `json:"severity"`
	Ranges   []Range    `json:"ranges"`
	Versions []string   `json:"versions"`
	// EcosystemSpecific is kept raw: its shape differs per ecosystem and a
	// record whose extra data is unusual must still match. Debian puts its
	// urgency here.
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
}

// Package names a package in an ecosystem ("Debian:12", "Alpine:v3.19").
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
}

// Range is a list of version events of one type.
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one version boundary; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// MaxRecordSize bounds one record's JSON: the largest real OSV records (a
// kernel CVE listing thousands of versions) are a few hundred KiB.
const MaxRecordSize = 8 << 20

// ErrRecord marks a record that cannot be used; the error says why.
var ErrRecord = errors.New("invalid OSV record")

// DecodeRecord decodes and checks one OSV record. It never panics: bad
// input is an error wrapping ErrRecord that names what is wrong.
func DecodeRecord(data []byte) (Record, error) {
	var r Record
	if len(data) > MaxRecordSize {
		return r, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrRecord, len(data), MaxRecordSize)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrRecord, err)
	}
	if strings.TrimSpace(r.ID) == "" {
		return Record{}, fmt.Errorf("%w: no id", ErrRecord)
	}
	for i, a := range r.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			return Record{}, fmt.Errorf("%w: %s: affected[%d] names no package ecosystem and name", ErrRecord, r.ID, i)
		}
	}
	return r, nil
}

// namesAny is the cheap first pass over a record: it looks at the values
// of its "name" keys only, so the full decode (which alone decides what a
// record affects) runs for the few records naming an installed package. It
// errs towards decoding: a name it cannot read simply (an escape in it) or
// a record with no "name" key at all reports true.
func namesAny(data []byte, wanted func([]byte) bool) bool {
	key := []byte(`"name"`)
	found := false
	for rest := data; ; {
		i := bytes.Index(rest, key)
		if i < 0 {
			return !found
		}
		found = true
		rest = bytes.TrimLeft(rest[i+len(key):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			continue
		}
		end := bytes.IndexByte(rest[1:], '"')
		if end < 0 {
			return true
		}
		value := rest[1 : 1+end]
		if bytes.IndexByte(value, '\\') >= 0 || wanted(value) {
			return true
		}
		rest = rest[1+end:]
	}
}

// CVEs are the identities a record counts as. A distribution's record for a
// CVE (DEBIAN-CVE-2024-1, UBUNTU-CVE-2024-1) names it in aliases or
// upstream, and an advisory fixing several (a DSA) lists them there or, in
// older records, in related; a record that names no CVE counts as itself.
// So a DSA and the DEBIAN-CVE record of the same CVE count once.
func (r Record) CVEs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(ids []string) {
		for _, id := range ids {
			id = strings.TrimSpace(id)
			if strings.HasPrefix(id, "CVE-") && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	add([]string{r.ID})
	add(r.Aliases)
	add(r.Upstream)
	if len(out) == 0 {
		add(r.Related)
	}
	if len(out) == 0 {
		out = append(out, r.ID)
	}
	return out
}

// urgency is Debian's rating of the issue for one release.
func (a Affected) urgency() string {
	if len(bytes.TrimSpace(a.EcosystemSpecific)) == 0 {
		return ""
	}
	var es struct {
		Urgency json.RawMessage `json:"urgency"`
	}
	if json.Unmarshal(a.EcosystemSpecific, &es) != nil {
		return ""
	}
	var u string
	if json.Unmarshal(es.Urgency, &u) != nil {
		return ""
	}
	// The tracker marks unconfirmed ratings with stars ("medium**").
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(u), "*"))
}
