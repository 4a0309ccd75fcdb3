package osv

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// Query is one installed package version, named as the ecosystem's records
// name it (Debian and Alpine records name the source package).
type Query struct {
	// Ecosystem is normalised (see NormalizeEcosystem): "Debian:12",
	// "Ubuntu:22.04", "Alpine:v3.19".
	Ecosystem string
	Name      string
	Version   string
}

// Vuln is one record that affects one queried package version.
type Vuln struct {
	ID string `json:"id"`
	// CVEs are the identities the record counts as (see Record.CVEs).
	CVEs     []string `json:"cves"`
	Severity Level    `json:"severity"`
	// Fixed is the first version that fixes it; empty when none exists.
	Fixed string `json:"fixed,omitempty"`
	// Unimportant is Debian's "unimportant" urgency (hidden by default).
	Unimportant bool `json:"unimportant,omitempty"`
}

// MatchStats says what one pass over a zip read.
type MatchStats struct {
	Records int // JSON entries in the zip
	Decoded int // records decoded in full (they name a queried package)
	Invalid int // entries that could not be read or decoded, skipped
	// BadVersions counts installed versions and range events that do not
	// parse in their ecosystem; the range or package is skipped.
	BadVersions int
}

// NormalizeEcosystem makes an ecosystem string comparable between records
// and inventories: OSV's Ubuntu records say "Ubuntu:22.04:LTS" where the
// inventory says "Ubuntu:22.04".
func NormalizeEcosystem(eco string) string { return strings.TrimSuffix(eco, ":LTS") }

// Base is the ecosystem without its release: "Debian" for "Debian:12". It
// is also the directory name of the ecosystem's zip in OSV's bucket.
func Base(eco string) string {
	b, _, _ := strings.Cut(eco, ":")
	return b
}

// ErrDatabase marks a zip that cannot be read at all.
var ErrDatabase = errors.New("unreadable OSV database")

// MatchZip streams the records of one ecosystem's all.zip once and returns,
// for every query a record affects, the records affecting it. Only records
// naming a queried package are decoded in full and nothing is kept of the
// others, so memory follows the number of matches, not the zip's size.
// Withdrawn records are ignored, and so are records for another release.
func MatchZip(ctx context.Context, path string, queries []Query) (map[Query][]Vuln, MatchStats, error) {
	var st MatchStats
	zr, closeZip, err := openZip(path)
	if err != nil {
		return nil, st, err
	}
	defer closeZip()
	m := newMatcher(queries)
	var buf bytes.Buffer
	for i, f := range zr.File {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, st, ctx.Err()
		}
		// The central directory of a 100k-record zip is tens of MB; drop
		// each entry once read, so the pass's memory shrinks as it goes.
		zr.File[i] = nil
		if !strings.HasSuffix(f.Name, ".json") || f.FileInfo().IsDir() {
			continue
		}
		st.Records++
		if err := readEntry(f, &buf); err != nil {
			st.Invalid++
			continue
		}
		if !namesAny(buf.Bytes(), m.wanted) {
			continue
		}
		rec, err := DecodeRecord(buf.Bytes())
		if err != nil {
			st.Invalid++
			continue
		}
		st.Decoded++
		m.add(rec)
	}
	st.BadVersions = m.badVersions
	return m.out, st, nil
}

// readEntry reads one zip entry into buf, refusing entries over
// MaxRecordSize whatever their header claims.
func readEntry(f *zip.File, buf *bytes.Buffer) error {
	buf.Reset()
	if f.UncompressedSize64 > MaxRecordSize {
		return fmt.Errorf("%s: %d bytes is over the record limit", f.Name, f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(buf, io.LimitReader(rc, MaxRecordSize+1))
	if err != nil {
		return err
	}
	if n > MaxRecordSize {
		return fmt.Errorf("%s: over the record limit", f.Name)
	}
	return nil
}

// matcher holds the queries of one pass, grouped by package name, each
// with its installed version parsed once.
type matcher struct {
	byName      map[string][]*query
	out         map[Query][]Vuln
	badVersions int
}

type query struct {
	Query
	version semantic.Version // nil when the installed version does not parse
}

func newMatcher(queries []Query) *matcher {
	m := &matcher{byName: map[string][]*query{}, out: map[Query][]Vuln{}}
	seen := map[Query]bool{}
	for _, q := range queries {
		if seen[q] {
			continue
		}
		seen[q] = true
		v, err := semantic.Parse(q.Version, Base(q.Ecosystem))
		if err != nil {
			m.badVersions++
			continue
		}
		m.byName[q.Name] = append(m.byName[q.Name], &query{Query: q, version: v})
	}
	return m
}

func (m *matcher) wanted(name []byte) bool { return len(m.byName[string(name)]) > 0 }

// add records what rec affects among the queries.
func (m *matcher) add(rec Record) {
	if rec.Withdrawn != "" {
		return
	}
	for _, a := range rec.Affected {
		for _, q := range m.byName[a.Package.Name] {
			if !sameEcosystem(a.Package.Ecosystem, q.Ecosystem) {
				continue
			}
			hit, fixed, bad := affects(q.version, Base(q.Ecosystem), a)
			m.badVersions += bad
			if !hit || m.has(q.Query, rec.ID) {
				continue
			}
			level, unimportant := rate(rec, a)
			m.out[q.Query] = append(m.out[q.Query], Vuln{ID: rec.ID, CVEs: rec.CVEs(), Severity: level,
				Fixed: fixed, Unimportant: unimportant})
		}
	}
}

func (m *matcher) has(q Query, id string) bool {
	for _, v := range m.out[q] {
		if v.ID == id {
			return true
		}
	}
	return false
}

// sameEcosystem: a record's release must be the package's release; a record
// for the bare ecosystem ("Debian") covers every release.
func sameEcosystem(recordEco, queryEco string) bool {
	recordEco = NormalizeEcosystem(recordEco)
	if recordEco == queryEco {
		return true
	}
	return !strings.Contains(recordEco, ":") && recordEco == Base(queryEco)
}

// affects evaluates one affected entry for an installed version as the OSV
// schema defines it: listed in versions, or inside one of its ECOSYSTEM
// ranges (introduced <= v < fixed, or v <= last_affected). fixed is the
// first fixing version above v in the range that holds it. bad counts
// range events that do not parse (their range is skipped).
func affects(v semantic.Version, eco string, a Affected) (hit bool, fixed string, bad int) {
	for _, s := range a.Versions {
		if c, err := v.CompareStr(s); err == nil && c == 0 {
			hit = true
		}
	}
	for _, r := range a.Ranges {
		if r.Type != "ECOSYSTEM" && r.Type != "SEMVER" {
			continue
		}
		events, ok := sortEvents(r.Events, eco)
		if !ok {
			bad++
			continue
		}
		in, fix := evaluate(v, events)
		if in {
			hit = true
			if fix != "" && (fixed == "" || lessVersion(fix, fixed, eco)) {
				fixed = fix
			}
		}
	}
	return hit, fixed, bad
}

type parsedEvent struct {
	Event
	version semantic.Version // nil for introduced "0"
}

func (e parsedEvent) value() string {
	return e.Introduced + e.Fixed + e.LastAffected + e.Limit
}

// sortEvents parses and orders a range's events; "introduced: 0" is below
// every version. It fails when any event's version does not parse.
func sortEvents(events []Event, eco string) ([]parsedEvent, bool) {
	out := make([]parsedEvent, 0, len(events))
	for _, e := range events {
		pe := parsedEvent{Event: e}
		if e.Introduced == "0" {
			out = append(out, pe)
			continue
		}
		s := pe.value()
		if s == "" {
			return nil, false
		}
		v, err := semantic.Parse(s, eco)
		if err != nil {
			return nil, false
		}
		pe.version = v
		out = append(out, pe)
	}
	failed := false
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.version == nil || b.version == nil {
			return a.version == nil && b.version != nil
		}
		c, err := a.version.Compare(b.version)
		if err != nil {
			failed = true
		}
		return c < 0
	})
	return out, !failed
}

// evaluate walks the sorted events: introduced opens the range at or below
// v, fixed at or below v closes it, last_affected below v closes it. fix is
// the first fixed event above v once the range holds v.
func evaluate(v semantic.Version, events []parsedEvent) (in bool, fix string) {
	for _, e := range events {
		cmp := 1 // v against the event's version; v is above "0"
		if e.version != nil {
			c, err := e.version.Compare(v)
			if err != nil {
				return false, ""
			}
			cmp = -c
		}
		switch {
		case e.Introduced != "" && cmp >= 0:
			in = true
		case e.Fixed != "" && cmp >= 0:
			in = false
		case e.LastAffected != "" && cmp > 0:
			in = false
		}
	}
	if !in {
		return false, ""
	}
	for _, e := range events {
		if e.Fixed == "" || e.version == nil {
			continue
		}
		if c, err := e.version.Compare(v); err == nil && c > 0 {
			return true, e.Fixed
		}
	}
	return true, ""
}

func lessVersion(a, b, eco string) bool {
	va, err := semantic.Parse(a, eco)
	if err != nil {
		return false
	}
	c, err := va.CompareStr(b)
	return err == nil && c < 0
}

// openZip opens a zip for one sequential pass. Entries are read in file
// order, so the file is read through a large window rather than with the
// two small preads per entry archive/zip would make.
func openZip(path string) (*zip.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	zr, err := zip.NewReader(&windowReader{f: f, buf: make([]byte, 0, 1<<20)}, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrDatabase, path, err)
	}
	return zr, func() { f.Close() }, nil
}

// windowReader is an io.ReaderAt that serves reads from one buffered
// window of the file, refilled from the requested offset when a read falls
// outside it. Not safe for concurrent use; one pass reads one entry at a
// time.
type windowReader struct {
	f   *os.File
	off int64 // file offset of buf[0]
	buf []byte
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) > cap(w.buf) {
		return w.f.ReadAt(p, off)
	}
	if off < w.off || off+int64(len(p)) > w.off+int64(len(w.buf)) {
		n, err := w.f.ReadAt(w.buf[:cap(w.buf)], off)
		w.off, w.buf = off, w.buf[:n]
		if n < len(p) {
			copy(p, w.buf)
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return copy(p, w.buf[off-w.off:]), nil
}
