package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
)

// fixtureImage is the image the golden test's engine lists, the image of
// its running container web-current: its inventory is cached, so the agent
// judges it without an export.
const fixtureImage = "sha256:e4a524e7205b7bf8c0c39c5ae390e13897b029b2e603ead5fcc3b46d90e2c9b0"

// fixtureContainerPID is web-current's PID in its recorded inspect.
const fixtureContainerPID = "4242"

// fixtureImages lists one Debian image on e, caches its inventory under
// dir/images, writes an OSV zip for it under dir/vulns, and lays out the
// running container's root under dir/proc/<pid>/root with one package
// more than its image (drift); it returns the three directories.
func fixtureImages(t *testing.T, dir string, e *fakeEngine) (cacheDir, vulnsDir, procDir string) {
	t.Helper()
	cacheDir, vulnsDir, procDir = filepath.Join(dir, "images"), filepath.Join(dir, "vulns"), filepath.Join(dir, "proc")
	testenv.WriteTree(t, filepath.Join(procDir, fixtureContainerPID, "root"),
		testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
		testenv.DpkgStatus("openssl 3.0.11-1~deb12u1", "libssl3 3.0.11-1~deb12u1 openssl", "zlib1g 1:1.2.13.dfsg-1 zlib",
			"libexpat1 2.5.0-1 expat"))
	inv := map[string]any{"format": 1, "id": fixtureImage, "os": "Debian GNU/Linux 12 (bookworm)", "os_id": "debian",
		"extracted": "2024-06-01T00:00:00Z", "packages": []map[string]string{
			{"name": "openssl", "version": "3.0.11-1~deb12u1", "ecosystem": "Debian:12"},
			{"name": "libssl3", "version": "3.0.11-1~deb12u1", "source": "openssl", "ecosystem": "Debian:12"},
			{"name": "zlib1g", "version": "1:1.2.13.dfsg-1", "source": "zlib", "ecosystem": "Debian:12"},
		}}
	data, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cacheDir, "sha256-"+fixtureImage[len("sha256:"):]+".json", string(data))
	osvtest.WriteZip(t, vulnsDir, "Debian",
		osvtest.New("DSA-5621-1").Aliases("CVE-2024-0727").Affects("Debian:12", "openssl", "3.0.13-1~deb12u1"),
		osvtest.New("DEBIAN-CVE-2024-0727").Upstream("CVE-2024-0727").
			CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H").Affects("Debian:12", "openssl", "3.0.13-1~deb12u1"),
		osvtest.New("DEBIAN-CVE-2023-45853").Upstream("CVE-2023-45853").
			CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").AffectsUrgency("Debian:12", "zlib", "", "unimportant"),
		osvtest.New("DEBIAN-CVE-2024-5535").Upstream("CVE-2024-5535").Ubuntu("low").Affects("Debian:12", "openssl", ""),
		osvtest.New("DEBIAN-CVE-2024-45490").Upstream("CVE-2024-45490").
			CVSS("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").Affects("Debian:12", "expat", "2.5.0-1+deb12u1"))
	e.images = []map[string]any{{"Id": fixtureImage, "RepoTags": []string{"fixture/web:1"}, "Size": 80 << 20}}
	return cacheDir, vulnsDir, procDir
}
