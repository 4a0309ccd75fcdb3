package osv

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DB is the directory of OSV zips: DIR/<Ecosystem>/all.zip, as OSV's bucket
// lays them out, so an operator can mirror the bucket or drop the files in
// by hand (offline mode). The download metadata sits next to each zip.
type DB struct{ Dir string }

// ZipPath is where the zip of an ecosystem ("Debian") lives.
func (d DB) ZipPath(base string) string { return filepath.Join(d.Dir, base, "all.zip") }

func (d DB) metaPath(base string) string { return d.ZipPath(base) + ".json" }

// Info describes one ecosystem's zip on disk.
type Info struct {
	Ecosystem string
	Path      string
	Present   bool
	Size      int64
	ModTime   time.Time
	// Current is when the zip was last known to be current: written by a
	// download, confirmed by a 304 since, or (dropped in by hand) its
	// modification time.
	Current time.Time
}

// Age is how old the zip's data may be at now.
func (i Info) Age(now time.Time) time.Duration {
	if !i.Present {
		return 0
	}
	return now.Sub(i.Current)
}

// meta is what the updater remembers about a download.
type meta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Checked      time.Time `json:"checked"`
	Size         int64     `json:"size"`
}

// Info stats one ecosystem's zip. A missing zip is not an error.
func (d DB) Info(base string) (Info, error) {
	info := Info{Ecosystem: base, Path: d.ZipPath(base)}
	st, err := os.Stat(info.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return info, nil
	}
	if err != nil {
		return info, fmt.Errorf("OSV database for %s: %w", base, err)
	}
	if !st.Mode().IsRegular() {
		return info, fmt.Errorf("OSV database for %s: %s is not a regular file", base, info.Path)
	}
	info.Present, info.Size, info.ModTime, info.Current = true, st.Size(), st.ModTime(), st.ModTime()
	// A 304 confirms the same bytes are still current; it counts only for
	// the file it was about (same size), not for one dropped in since.
	if m, err := d.readMeta(base); err == nil && m.Size == st.Size() && m.Checked.After(info.Current) {
		info.Current = m.Checked
	}
	return info, nil
}

func (d DB) readMeta(base string) (meta, error) {
	var m meta
	data, err := os.ReadFile(d.metaPath(base))
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(data, &m)
	return m, err
}

func (d DB) writeMeta(base string, m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeAtomic(d.metaPath(base), func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomic writes a file through a temporary file in the same directory
// and a rename, so a reader sees the old file or the new one, never half.
func writeAtomic(path string, write func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Verify checks that path is a zip of OSV records: it opens, holds JSON
// entries, and one of its first entries decodes as a record. It returns the
// number of records.
func Verify(path string) (int, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrDatabase, path, err)
	}
	defer zr.Close()
	records, tried := 0, 0
	var firstErr error
	var ok bool
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		records++
		if ok || tried >= 16 {
			continue
		}
		tried++
		if err := verifyEntry(f); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ok = true
	}
	if records == 0 {
		return 0, fmt.Errorf("%w: %s holds no JSON records", ErrDatabase, path)
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s: none of its first %d records decodes: %v", ErrDatabase, path, tried, firstErr)
	}
	return records, nil
}

func verifyEntry(f *zip.File) error {
	var b bytes.Buffer
	if err := readEntry(f, &b); err != nil {
		return err
	}
	_, err := DecodeRecord(b.Bytes())
	return err
}
