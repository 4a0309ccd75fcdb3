// Package osvtest writes OSV records into all.zip files the way OSV's bucket
// publishes them (one <ID>.json entry per record), so tests make their own
// vulnerability data and never download any.
package osvtest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Record is one OSV record as JSON; build it with New and the methods below.
type Record map[string]any

// New starts a record with its ID and the fields every real record has.
func New(id string) Record {
	return Record{"id": id, "schema_version": "1.6.0", "modified": "2024-06-01T00:00:00Z",
		"published": "2024-05-01T00:00:00Z", "summary": "test record " + id}
}

// Upstream sets the upstream CVEs, as Debian's and Ubuntu's CVE records do.
func (r Record) Upstream(ids ...string) Record { r["upstream"] = ids; return r }

// Aliases sets the aliases.
func (r Record) Aliases(ids ...string) Record { r["aliases"] = ids; return r }

// Related sets the related IDs (older DSA records list their CVEs there).
func (r Record) Related(ids ...string) Record { r["related"] = ids; return r }

// Withdrawn marks the record withdrawn.
func (r Record) Withdrawn() Record { r["withdrawn"] = "2024-06-02T00:00:00Z"; return r }

// Details sets the free text (the benchmarks use it to reach real sizes).
func (r Record) Details(s string) Record { r["details"] = s; return r }

// CVSS adds a CVSS vector to the record's severity list.
func (r Record) CVSS(vector string) Record {
	typ := "CVSS_V3"
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		typ = "CVSS_V4"
	case !strings.HasPrefix(vector, "CVSS:"):
		typ = "CVSS_V2"
	}
	return r.severity(typ, vector)
}

// Ubuntu adds the Ubuntu priority to the record's severity list.
func (r Record) Ubuntu(priority string) Record { return r.severity("Ubuntu", priority) }

func (r Record) severity(typ, score string) Record {
	list, _ := r["severity"].([]any)
	r["severity"] = append(list, map[string]any{"type": typ, "score": score})
	return r
}

// Affects adds an affected package: every version from the start, up to
// fixed (never fixed when fixed is empty).
func (r Record) Affects(ecosystem, name, fixed string) Record {
	return r.AffectsUrgency(ecosystem, name, fixed, "")
}

// AffectsUrgency is Affects with Debian's urgency for that release.
func (r Record) AffectsUrgency(ecosystem, name, fixed, urgency string) Record {
	events := []any{map[string]any{"introduced": "0"}}
	if fixed != "" {
		events = append(events, map[string]any{"fixed": fixed})
	}
	a := map[string]any{
		"package": map[string]any{"ecosystem": ecosystem, "name": name,
			"purl": "pkg:deb/" + strings.ToLower(strings.SplitN(ecosystem, ":", 2)[0]) + "/" + name},
		"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": events}},
	}
	if urgency != "" {
		a["ecosystem_specific"] = map[string]any{"urgency": urgency}
	}
	list, _ := r["affected"].([]any)
	r["affected"] = append(list, a)
	return r
}

// ID is the record's ID.
func (r Record) ID() string { s, _ := r["id"].(string); return s }

// Write writes records as an all.zip to w.
func Write(w io.Writer, records ...Record) error {
	zw := zip.NewWriter(w)
	for _, r := range records {
		if err := writeRecord(zw, r); err != nil {
			return err
		}
	}
	return zw.Close()
}

// Bytes is Write into memory, for a test server to serve.
func Bytes(t testing.TB, records ...Record) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, records...); err != nil {
		t.Fatalf("writing OSV zip: %v", err)
	}
	return b.Bytes()
}

// WriteZip writes records as the all.zip of ecosystem under dir
// (dir/<ecosystem>/all.zip, the database layout) and returns its path.
func WriteZip(t testing.TB, dir, ecosystem string, records ...Record) string {
	t.Helper()
	p := filepath.Join(dir, ecosystem, "all.zip")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, Bytes(t, records...), 0o644); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
	return p
}

// Synthetic writes n records for release ("Debian:12") to w, the way a
// large real zip looks: most records name packages nobody has installed,
// every tenth names one of names, and each carries about a kilobyte of
// text as Debian's do.
func Synthetic(w io.Writer, n int, release string, names []string) error {
	zw := zip.NewWriter(w)
	text := strings.Repeat("A flaw was found in the parsing of crafted input that may lead to a crash. ", 14)
	for i := range n {
		name := fmt.Sprintf("unrelated-package-%d", i%5000)
		if i%10 == 0 && len(names) > 0 {
			name = names[(i/10)%len(names)]
		}
		cve := fmt.Sprintf("CVE-2%03d-%d", i%30, 10000+i)
		fixed := ""
		if i%3 != 0 {
			fixed = fmt.Sprintf("%d.%d-%d", 1+i%4, i%10, 1+i%3)
		}
		r := New("DEBIAN-"+cve).Upstream(cve).Details(text).
			AffectsUrgency(release, name, fixed, []string{"low", "medium", "high", "not yet assigned"}[i%4])
		if i%2 == 0 {
			r.CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N")
		}
		if err := writeRecord(zw, r); err != nil {
			return err
		}
	}
	return zw.Close()
}

func writeRecord(zw *zip.Writer, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := zw.Create(r.ID() + ".json")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return err
}
