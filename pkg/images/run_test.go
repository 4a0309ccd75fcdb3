package images

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
)

const waitLong = 60 * time.Second

// fastChecks makes the source stat its zips often, for the test's length.
func fastChecks(t *testing.T) {
	old := dbCheckInterval
	dbCheckInterval = 100 * time.Millisecond
	t.Cleanup(func() { dbCheckInterval = old })
}

// waitIdle waits until every image is read, so no export is still due.
func (h *harness) waitIdle() {
	h.t.Helper()
	testenv.WaitFor(h.t, waitLong, "every image read", func() bool {
		return h.series("dockward_images_pending", nil)[""] == 0
	})
}

func (h *harness) waitCounts(what, metric string, match map[string]string, want string) {
	h.t.Helper()
	testenv.WaitForState(h.t, waitLong, what, func() (bool, string) {
		got := h.counts(metric, match)
		return got == want, got
	})
}

var (
	highRecord = osvtest.New("DEBIAN-CVE-2023-4444").Upstream("CVE-2023-4444").
			CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N").Affects(bookworm, "openssl", patched)
	criticalRecord = osvtest.New("DEBIAN-CVE-2024-5535").Upstream("CVE-2024-5535").CVSS(critical).
			Affects(bookworm, "openssl", "")
)

// swapZip replaces the Debian zip the way an operator or a mirror job
// should: written beside it, then renamed over it.
func (h *harness) swapZip(records ...osvtest.Record) {
	h.t.Helper()
	tmp := osvtest.WriteZip(h.t, h.t.TempDir(), "Debian", records...)
	if err := os.Rename(tmp, h.src.db.ZipPath("Debian")); err != nil {
		h.t.Fatal(err)
	}
}

// After a database swap the cached inventories are matched again: the
// counts change and no image is exported again. Offline, no request is
// ever made to vulns.db.url.
func TestOfflineSwapRematchesWithoutExport(t *testing.T) {
	fastChecks(t)
	var requests int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		http.NotFound(w, r)
	}))
	defer srv.Close()
	h := newHarness(t, func(c *Config) { c.Vulns.DB.URL = srv.URL })
	ref := "dockward-test-img-swap:1"
	id := debianImage(t, ref)
	h.debianZip(highRecord)
	testenv.RunSource(t, h.src)
	match := map[string]string{"image_id": shortID(id)}
	h.waitCounts("the first zip's counts", "dockward_image_vulnerabilities", match, "fixable=true,image="+ref+",severity=high:1")
	h.waitIdle()
	exported := h.exportsOf(id)

	h.swapZip(highRecord, criticalRecord)
	h.waitCounts("the swapped zip's counts", "dockward_image_vulnerabilities", match,
		"fixable=false,image="+ref+",severity=critical:1 fixable=true,image="+ref+",severity=high:1")
	if n := h.exportsOf(id); n != exported {
		t.Errorf("the swap exported the image again: %d exports, %d before", n, exported)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 0 {
		t.Errorf("offline mode made %d requests to vulns.db.url", requests)
	}
}

// The updater keeps the zip current over HTTP: a new zip is swapped in and
// re-matched without an export, a 304 keeps it, and a corrupt download is
// refused with the old data kept.
func TestUpdaterSwapsAndKeeps(t *testing.T) {
	b, h := onlineHarness(t)
	ref := "dockward-test-img-update:1"
	id := debianImage(t, ref)
	testenv.RunSource(t, h.src)
	match := map[string]string{"image_id": shortID(id)}
	h.waitCounts("the downloaded zip's counts", "dockward_image_vulnerabilities", match, "fixable=true,image="+ref+",severity=high:1")
	h.waitIdle()
	exported := h.exportsOf(id)

	b.Serve(osvtest.Bytes(t, highRecord, criticalRecord), `"v2"`)
	h.refresh()
	h.waitCounts("the updated zip's counts", "dockward_image_vulnerabilities", match,
		"fixable=false,image="+ref+",severity=critical:1 fixable=true,image="+ref+",severity=high:1")
	if n := h.exportsOf(id); n != exported {
		t.Errorf("the update exported the image again: %d exports, %d before", n, exported)
	}

	before := b.Requests()
	h.refresh()
	testenv.WaitFor(t, waitLong, "a conditional request", func() bool { return b.Requests() > before })
	if got := b.Header(-1, "If-None-Match"); got != `"v2"` {
		t.Errorf("the refresh sent If-None-Match %q, want the ETag \"v2\"", got)
	}

	b.Serve([]byte("<html>captive portal</html>"), `"v3"`)
	h.refresh()
	testenv.WaitFor(t, waitLong, "the corrupt download counted", func() bool {
		return h.series("dockward_vulns_db_update_errors_total", map[string]string{"reason": "invalid"})[""] == 1
	})
	if got := h.counts("dockward_image_vulnerabilities", match); !strings.Contains(got, "critical:1") {
		t.Errorf("after a corrupt download the counts are %q; the old zip must be kept", got)
	}
}

// refresh does what the refresh tick does: fetch every zip in use now.
func (h *harness) refresh() {
	h.src.forceUpdate()
	select {
	case h.src.want.poke <- struct{}{}:
	default:
	}
}

// An image imported while the source runs is judged from its event, and
// one deleted has its findings resolved and its cached inventory collected.
func TestImageEvents(t *testing.T) {
	h := newHarness(t, nil)
	h.debianZip(highRecord)
	testenv.RunSource(t, h.src)
	ref := "dockward-test-img-event:1"
	id := debianImage(t, ref)
	testenv.WaitFor(t, waitLong, "the imported image judged", func() bool {
		_, ok := h.finding("image.vulnerable", ref)
		return ok
	})
	testenv.Run(t, "docker", "rmi", "-f", ref)
	testenv.WaitFor(t, waitLong, "the deleted image's finding resolved", func() bool {
		_, ok := h.finding("image.vulnerable", ref)
		return !ok
	})
	if _, err := os.Stat(filepath.Join(h.cfg.CacheDir, strings.Replace(id, ":", "-", 1)+".json")); !os.IsNotExist(err) {
		t.Errorf("the deleted image's cached inventory is still there: %v", err)
	}
}

// dockward scan fetches a zip it does not have (not offline) before it
// judges, from vulns.db.url.
func TestScanDownloadsMissingZip(t *testing.T) {
	b, h := onlineHarness(t)
	ref := "dockward-test-img-scandl:1"
	debianImage(t, ref)
	h.scan()
	// Other local images may bring other ecosystems (their zips 404 here).
	if b.Requests() == 0 {
		t.Error("scan made no request for the missing Debian zip")
	}
	if info, _ := h.src.db.Info("Debian"); !info.Present {
		t.Error("scan did not store the downloaded Debian zip")
	}
	h.mustFinding("image.vulnerable", ref)
}

// onlineHarness is a harness that downloads its zips from a local bucket,
// which serves a Debian zip with highRecord under the ETag "v1" at first.
func onlineHarness(t *testing.T) (*osvtest.Bucket, *harness) {
	b := &osvtest.Bucket{}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	b.Serve(osvtest.Bytes(t, highRecord), `"v1"`)
	return b, newHarness(t, func(c *Config) { c.Vulns.DB.Offline, c.Vulns.DB.URL = false, srv.URL })
}
