package osv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/osvtest"
)

func newUpdater(t *testing.T) (*Updater, *osvtest.Bucket, *time.Time) {
	t.Helper()
	b := &osvtest.Bucket{}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	u := &Updater{DB: DB{Dir: t.TempDir()}, URL: srv.URL, Client: srv.Client(), MaxSize: 1 << 20,
		Now: func() time.Time { return now }}
	return u, b, &now
}

func TestUpdateDownloadsThenNotModified(t *testing.T) {
	u, b, now := newUpdater(t)
	rec := osvtest.New("DEBIAN-CVE-2024-1").Upstream("CVE-2024-1").Affects(bookworm, "openssl", patched)
	b.Serve(osvtest.Bytes(t, rec), `"v1"`)

	res, err := u.Update(context.Background(), "Debian")
	if err != nil || !res.Swapped || res.Records != 1 {
		t.Fatalf("first update: %+v, %v; want the zip swapped in with 1 record", res, err)
	}
	first, _ := u.DB.Info("Debian")
	if !first.Present || !first.Current.Equal(*now) {
		t.Fatalf("after the download: %+v, want present and current at %s", first, *now)
	}

	*now = now.Add(6 * time.Hour)
	res, err = u.Update(context.Background(), "Debian")
	if err != nil || res.Swapped || !res.NotModified {
		t.Fatalf("second update: %+v, %v; want 304 Not Modified", res, err)
	}
	if got := b.Header(1, "If-None-Match"); got != `"v1"` {
		t.Errorf("second request sent If-None-Match %q, want the ETag \"v1\"", got)
	}
	second, _ := u.DB.Info("Debian")
	if !second.Current.Equal(*now) || second.Age(*now) != 0 {
		t.Errorf("a 304 must make the zip current again: %+v", second)
	}
	if second.Age(now.Add(49*time.Hour)) != 49*time.Hour {
		t.Errorf("age = %s, want 49h", second.Age(now.Add(49*time.Hour)))
	}
}

func TestUpdateCorruptZipKeepsTheOld(t *testing.T) {
	u, b, _ := newUpdater(t)
	b.Serve(osvtest.Bytes(t, osvtest.New("DEBIAN-CVE-2024-1").Affects(bookworm, "openssl", "")), `"v1"`)
	if _, err := u.Update(context.Background(), "Debian"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(u.DB.ZipPath("Debian"))

	for name, body := range map[string][]byte{
		"not a zip":  []byte("<html>captive portal</html>"),
		"no records": osvtest.Bytes(t),
		"truncated":  before[:len(before)/2],
	} {
		b.Serve(body, `"`+name+`"`)
		res, err := u.Update(context.Background(), "Debian")
		var ue *UpdateError
		if !errors.As(err, &ue) || ue.Reason != ReasonInvalid || res.Swapped {
			t.Errorf("%s: %+v, %v; want an invalid-zip error and no swap", name, res, err)
		}
		after, _ := os.ReadFile(u.DB.ZipPath("Debian"))
		if string(after) != string(before) {
			t.Errorf("%s: the old zip was replaced", name)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(u.DB.ZipPath("Debian")))
	if len(entries) != 2 {
		t.Errorf("the database dir holds %d files, want only all.zip and its metadata (no temporary files)", len(entries))
	}
}

func TestUpdateErrors(t *testing.T) {
	u, b, _ := newUpdater(t)
	b.Fail(http.StatusForbidden)
	_, err := u.Update(context.Background(), "Debian")
	var ue *UpdateError
	if !errors.As(err, &ue) || ue.Reason != ReasonStatus {
		t.Errorf("403: %v, want a status error", err)
	}

	big := make([]byte, 2<<20)
	b.Serve(big, `"big"`)
	if _, err := u.Update(context.Background(), "Debian"); !errors.As(err, &ue) || ue.Reason != ReasonSize {
		t.Errorf("a 2 MiB body with a 1 MiB cap: %v, want a size error", err)
	}
	if info, _ := u.DB.Info("Debian"); info.Present {
		t.Errorf("a failed first download left a zip behind: %+v", info)
	}

	u.URL = "http://127.0.0.1:1"
	if _, err := u.Update(context.Background(), "Debian"); !errors.As(err, &ue) || ue.Reason != ReasonRequest {
		t.Errorf("nothing listening: %v, want a request error", err)
	}
}

func TestUpdateOfflineMakesNoRequest(t *testing.T) {
	u, b, _ := newUpdater(t)
	b.Serve(osvtest.Bytes(t, osvtest.New("X-1").Affects(bookworm, "openssl", "")), `"v1"`)
	u.Offline = true
	res, err := u.Update(context.Background(), "Debian")
	if err != nil || res.Swapped || b.Requests() != 0 {
		t.Fatalf("offline: %+v, %v, %d requests; want nothing done", res, err, b.Requests())
	}
	// A zip the operator drops in is current as of its modification time.
	p := osvtest.WriteZip(t, u.DB.Dir, "Debian", osvtest.New("X-1").Affects(bookworm, "openssl", ""))
	old := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	info, err := u.DB.Info("Debian")
	if err != nil || !info.Current.Equal(old) {
		t.Fatalf("dropped-in zip: %+v, %v; want current as of %s", info, err, old)
	}
}
