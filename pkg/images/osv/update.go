package osv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultURL is OSV's public bucket; vulns.db.url can name a mirror laid
// out the same way (<url>/<Ecosystem>/all.zip).
const DefaultURL = "https://osv-vulnerabilities.storage.googleapis.com"

// Updater keeps the zips of a DB current with conditional GETs.
type Updater struct {
	DB      DB
	URL     string
	Client  *http.Client
	MaxSize int64 // a download larger than this is refused
	// Offline never downloads: the operator drops the zips in.
	Offline bool
	Now     func() time.Time
}

// Update reasons, the `reason` label of the update error counter.
const (
	ReasonRequest = "request"   // the request failed (network, DNS, TLS)
	ReasonStatus  = "status"    // the server answered neither 200 nor 304
	ReasonSize    = "too_large" // the zip is larger than MaxSize
	ReasonInvalid = "invalid"   // the body is not a zip of OSV records
	ReasonWrite   = "write"     // the zip could not be written to the DB
)

// UpdateError is a failed update; the old zip, if any, is kept.
type UpdateError struct {
	Ecosystem string
	Reason    string
	Err       error
}

func (e *UpdateError) Error() string {
	return fmt.Sprintf("updating the OSV database for %s (%s): %v", e.Ecosystem, e.Reason, e.Err)
}

func (e *UpdateError) Unwrap() error { return e.Err }

// Result says what an update did.
type Result struct {
	// Swapped is true when a new zip replaced the old one (or the first
	// one arrived); the inventories must then be matched again.
	Swapped bool
	// NotModified is true when the server confirmed the zip is current.
	NotModified bool
	Records     int
}

// Update fetches one ecosystem's zip ("Debian") if it changed. The new zip
// is written beside the old one, verified (it opens and a record decodes)
// and renamed over it, so a failed or corrupt download keeps the old data.
func (u *Updater) Update(ctx context.Context, base string) (Result, error) {
	if u.Offline {
		return Result{}, nil
	}
	src := strings.TrimRight(u.URL, "/") + "/" + url.PathEscape(base) + "/all.zip"
	fail := func(reason string, err error) (Result, error) {
		return Result{}, &UpdateError{Ecosystem: base, Reason: reason, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return fail(ReasonRequest, err)
	}
	old, oldErr := u.DB.readMeta(base)
	info, _ := u.DB.Info(base)
	if oldErr == nil && info.Present && old.URL == src && old.Size == info.Size {
		if old.ETag != "" {
			req.Header.Set("If-None-Match", old.ETag)
		}
		if old.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.LastModified)
		}
	}
	resp, err := u.client().Do(req)
	if err != nil {
		return fail(ReasonRequest, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		old.Checked = u.now()
		if err := u.DB.writeMeta(base, old); err != nil {
			return fail(ReasonWrite, err)
		}
		return Result{NotModified: true}, nil
	case http.StatusOK:
	default:
		return fail(ReasonStatus, fmt.Errorf("GET %s: %s", src, resp.Status))
	}
	if resp.ContentLength > u.MaxSize && u.MaxSize > 0 {
		return fail(ReasonSize, fmt.Errorf("GET %s: %d bytes is over vulns.db.max_size (%d)", src, resp.ContentLength, u.MaxSize))
	}
	m := meta{URL: src, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Checked: u.now()}
	records, err := u.swap(base, resp.Body, &m)
	if err != nil {
		var ue *UpdateError
		if errors.As(err, &ue) {
			return Result{}, err
		}
		return fail(ReasonWrite, err)
	}
	return Result{Swapped: true, Records: records}, nil
}

// swap writes body next to the zip, verifies it and renames it into place.
func (u *Updater) swap(base string, body io.Reader, m *meta) (int, error) {
	path := u.DB.ZipPath(base)
	records := 0
	err := writeAtomic(path, func(f *os.File) error {
		limit := u.MaxSize
		if limit <= 0 {
			limit = 1 << 62
		}
		n, err := io.Copy(f, io.LimitReader(body, limit+1))
		if err != nil {
			return &UpdateError{Ecosystem: base, Reason: ReasonRequest, Err: fmt.Errorf("reading the download: %w", err)}
		}
		if n > limit {
			return &UpdateError{Ecosystem: base, Reason: ReasonSize, Err: fmt.Errorf("the download is over vulns.db.max_size (%d bytes)", u.MaxSize)}
		}
		m.Size = n
		if err := f.Sync(); err != nil {
			return err
		}
		records, err = Verify(f.Name())
		if err != nil {
			return &UpdateError{Ecosystem: base, Reason: ReasonInvalid, Err: err}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The zip's modification time is its download time, which is what a
	// zip dropped in by hand is judged by too.
	if err := os.Chtimes(path, m.Checked, m.Checked); err != nil {
		return 0, err
	}
	return records, u.DB.writeMeta(base, *m)
}

func (u *Updater) client() *http.Client {
	if u.Client != nil {
		return u.Client
	}
	return http.DefaultClient
}

func (u *Updater) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}
