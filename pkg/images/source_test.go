package images

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// debianRecords are real-shaped records for the openssl and curl of the
// test images: a DSA and the DEBIAN-CVE record of the same CVE, an
// unimportant one, a critical unfixed one, another release's, a withdrawn
// one, one the installed curl is past, and a high fixable one.
func debianRecords() []osvtest.Record {
	return []osvtest.Record{
		osvtest.New("DSA-5621-1").Aliases("CVE-2024-0727").Affects(bookworm, "openssl", patched),
		osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").AffectsUrgency(bookworm, "openssl", patched, "low"),
		osvtest.New("DEBIAN-CVE-2010-5298").Upstream("CVE-2010-5298").AffectsUrgency(bookworm, "openssl", "", "unimportant"),
		osvtest.New("DEBIAN-CVE-2024-5535").Upstream("CVE-2024-5535").CVSS(critical).AffectsUrgency(bookworm, "openssl", "", "not yet assigned"),
		osvtest.New("DEBIAN-CVE-2024-1111").Upstream("CVE-2024-1111").CVSS(critical).Affects("Debian:11", "openssl", ""),
		osvtest.New("DEBIAN-CVE-2024-2222").Upstream("CVE-2024-2222").CVSS(critical).Affects(bookworm, "openssl", "").Withdrawn(),
		osvtest.New("DEBIAN-CVE-2024-3333").Upstream("CVE-2024-3333").Affects(bookworm, "curl", "7.88.1-10+deb12u5"),
		osvtest.New("DEBIAN-CVE-2023-4444").Upstream("CVE-2023-4444").CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N").
			Affects(bookworm, "openssl", patched),
	}
}

func debianImage(t *testing.T, ref string) string {
	return testenv.ImportImage(t, ref, bookwormRelease,
		testenv.DpkgStatus("openssl "+vulnerable, "libssl3 "+vulnerable+" openssl", "curl 7.88.1-10+deb12u5"))
}

func TestScanCountsCVEsAndReportsAMissingZip(t *testing.T) {
	h := newHarness(t, nil)
	debianRef, alpineRef := "dockward-test-img-debian:1", "dockward-test-img-alpine:1"
	debianID := debianImage(t, debianRef)
	alpineID := testenv.ImportImage(t, alpineRef, testenv.OSRelease("alpine", "3.19.1", "Alpine Linux v3.19"),
		testenv.ApkInstalled("libcrypto3 3.1.4-r1 openssl"))
	h.debianZip(debianRecords()...)
	h.scan()

	// Each CVE once: CVE-2024-0727 from the DSA and its DEBIAN-CVE record
	// (rated low by its urgency), CVE-2023-4444 high by its vector, and
	// CVE-2024-5535 critical with no fix. Another release's, the withdrawn
	// and the unimportant records are not counted, nor the fixed curl.
	got := h.counts("dockward_image_vulnerabilities", map[string]string{"image_id": shortID(debianID)})
	want := "fixable=false,image=" + debianRef + ",severity=critical:1 fixable=true,image=" + debianRef +
		",severity=high:1 fixable=true,image=" + debianRef + ",severity=low:1"
	if got != want {
		t.Errorf("counts of %s:\n got  %s\n want %s", debianRef, got, want)
	}
	f := h.mustFinding("image.vulnerable", debianRef)
	if f.Severity != findings.High || f.Vulnerabilities.Len() != 3 {
		t.Errorf("image.vulnerable: severity %s, %d vulnerabilities %+v; want high (the highest fixable) and 3", f.Severity, f.Vulnerabilities.Len(), f.Vulnerabilities.All())
	}
	for _, v := range f.Vulnerabilities.All() {
		if v.ID == "CVE-2024-0727" && (v.Fixed != patched || v.Installed != vulnerable || v.Package != "openssl" || len(v.Records) != 2) {
			t.Errorf("CVE-2024-0727 entry %+v, want openssl %s fixed in %s from 2 records", v, vulnerable, patched)
		}
	}

	// No Alpine zip: the Alpine image is not counted, the Debian one is.
	missing := h.mustFinding("vulns.db_missing", h.src.db.ZipPath("Alpine"))
	if !strings.Contains(missing.Message, "offline") {
		t.Errorf("db_missing message %q does not say why", missing.Message)
	}
	if got := h.series("dockward_image_vulnerabilities", map[string]string{"image_id": shortID(alpineID)}); len(got) != 0 {
		t.Errorf("the Alpine image without a zip has vulnerability series: %v", got)
	}
	if n := h.series("dockward_vulns_db_records", map[string]string{"ecosystem": "Debian"})[""]; n != 8 {
		t.Errorf("Debian records = %g, want 8", n)
	}
}

func TestScanLayersAndWhiteouts(t *testing.T) {
	h := newHarness(t, nil)
	upgraded, deleted := "dockward-test-img-upgraded:1", "dockward-test-img-deleted:1"
	upgradedID := testenv.BuildImage(t, upgraded,
		"FROM scratch\nCOPY bin/ /bin/\nCOPY etc/ /etc/\nCOPY var/ /var/\nCOPY upgrade/status /var/lib/dpkg/status\n",
		bookwormRelease, testenv.DpkgStatus("openssl "+vulnerable),
		testenv.ImageFile{Path: "upgrade/status", Content: testenv.DpkgStanzas("openssl " + patched)})
	testenv.BuildImage(t, deleted, "FROM scratch\nCOPY . /\nRUN [\"/bin/busybox\", \"rm\", \"/var/lib/dpkg/status\"]\n",
		bookwormRelease, testenv.DpkgStatus("openssl "+vulnerable))
	h.debianZip(osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").CVSS(critical).Affects(bookworm, "openssl", patched))
	h.scan()

	if f, ok := h.finding("image.vulnerable", upgraded); ok {
		t.Errorf("the image whose second layer upgrades openssl is reported: %s", f.Message)
	}
	if got := h.counts("dockward_image_vulnerabilities", map[string]string{"image_id": shortID(upgradedID)}); got != "" {
		t.Errorf("the upgraded image counts %s, want all zero", got)
	}
	if f, ok := h.finding("image.vulnerable", deleted); ok {
		t.Errorf("the package database deleted by a later layer was read: %s", f.Message)
	}
	if f := h.mustFinding("vulns.scan_skipped", deleted); f.Details["reason"] != "no_package_database" {
		t.Errorf("deleted database: %+v, want reason no_package_database", f.Details)
	}
}

func TestScanSkipsAnImageOverTheCap(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxImageSize = 1 << 20 })
	ref := "dockward-test-img-big:1"
	debianImage(t, ref) // busybox alone is 2 MB
	h.debianZip(debianRecords()...)
	h.scan()
	if f := h.mustFinding("vulns.scan_skipped", ref); f.Details["reason"] != "too_large" {
		t.Errorf("scan_skipped %+v, want reason too_large", f.Details)
	}
}

// A restart reads every image from the cache: no export at all. An image
// deleted since has its cached inventory collected.
func TestRestartExportsNothing(t *testing.T) {
	h := newHarness(t, nil)
	kept, gone := "dockward-test-img-kept:1", "dockward-test-img-gone:1"
	keptID := debianImage(t, kept)
	goneID := testenv.ImportImage(t, gone, bookwormRelease, testenv.DpkgStatus("curl 7.88.1-10+deb12u5"))
	h.debianZip(debianRecords()...)
	h.scan()
	if h.exportsOf(keptID) == 0 {
		t.Fatal("the first scan did not export the test image")
	}
	if h.exports() < 1 {
		t.Error("dockward_images_exports_total did not count the export")
	}
	if _, ok, _ := h.src.cache.Load(goneID); !ok {
		t.Fatal("the first scan cached nothing")
	}
	testenv.Run(t, "docker", "rmi", "-f", gone)

	again := buildHarness(t, h.cfg)
	again.scan()
	if n := again.exportsOf(keptID); n != 0 {
		t.Errorf("a restart exported the cached image %d times, want 0", n)
	}
	again.mustFinding("image.vulnerable", kept)
	if _, ok, _ := again.src.cache.Load(goneID); ok {
		t.Error("the inventory of a deleted image was not collected")
	}
}

func TestStaleDatabase(t *testing.T) {
	h := newHarness(t, nil)
	ref := "dockward-test-img-stale:1"
	debianImage(t, ref)
	p := h.debianZip(debianRecords()...)
	old := time.Now().Add(-10 * 24 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	h.scan()
	f := h.mustFinding("vulns.db_stale", p)
	if f.Details["ecosystem"] != "Debian" || !strings.Contains(f.Message, "240h") {
		t.Errorf("db_stale %q %v, want the Debian zip 10 days old", f.Message, f.Details)
	}
	h.mustFinding("image.vulnerable", ref) // stale data still counts
	if age := h.series("dockward_vulns_db_age_seconds", map[string]string{"ecosystem": "Debian"})[""]; age < 10*24*3600 {
		t.Errorf("db age %gs, want 10 days", age)
	}
}

// A zip that is not a zip (a half-copied file, an HTML error page saved by
// hand) is reported as missing data with the reason; nothing panics.
func TestNonZipDatabase(t *testing.T) {
	h := newHarness(t, nil)
	ref := "dockward-test-img-nonzip:1"
	id := debianImage(t, ref)
	p := h.debianZip(debianRecords()...)
	if err := os.WriteFile(p, []byte("<html>503 Service Unavailable</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.scan()
	f := h.mustFinding("vulns.db_missing", p)
	if !strings.Contains(f.Message, "unreadable OSV database") {
		t.Errorf("db_missing message %q does not say the zip is unreadable", f.Message)
	}
	if got := h.series("dockward_image_vulnerabilities", map[string]string{"image_id": shortID(id)}); len(got) != 0 {
		t.Errorf("an image matched against an unreadable zip has counts: %v", got)
	}
}

// images.finding_severity raises or lowers image.vulnerable's severity.
func TestFindingSeverityMapping(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.FindingSeverity = DefaultFindingSeverity()
		c.FindingSeverity["high"] = "critical"
	})
	ref := "dockward-test-img-mapped:1"
	debianImage(t, ref)
	h.debianZip(debianRecords()...)
	h.scan()
	if f := h.mustFinding("image.vulnerable", ref); f.Severity != findings.Critical {
		t.Errorf("image.vulnerable is %s, want critical (its highest fixable CVE is high, mapped to critical)", f.Severity)
	}
}
