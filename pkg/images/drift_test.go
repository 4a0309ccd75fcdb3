package images

import (
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/osvtest"
	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

var expatRecord = osvtest.New("DEBIAN-CVE-2024-45490").Upstream("CVE-2024-45490").CVSS(critical).
	Affects(bookworm, "expat", "2.5.0-1+deb12u1")

// driftHarness runs the source over one running container of a clean
// Debian image, reading containers every second.
func driftHarness(t *testing.T, name string, mutate func(*Config)) (h *harness, imageID, containerID string) {
	h = newHarness(t, func(c *Config) {
		c.ContainerRescan = time.Second
		if mutate != nil {
			mutate(c)
		}
	})
	ref := "dockward-test-img-" + name + ":1"
	imageID = testenv.ImportImage(t, ref, bookwormRelease, testenv.DpkgStatus("openssl "+patched))
	h.debianZip(highRecord, expatRecord)
	containerID = testenv.RunContainer(t, "dockward-test-"+name, ref)
	testenv.RunSource(t, h.src)
	return h, imageID, containerID
}

// execIn runs a shell command in the container with its busybox.
func execIn(t *testing.T, container, script string) {
	t.Helper()
	testenv.Run(t, "docker", "exec", container, "/bin/busybox", "sh", "-c", script)
}

// Appending a vulnerable package to a running container's dpkg status is
// drift: the container gets its own counts and a finding naming the
// package, and its image's counts do not move.
func TestDriftThroughProcRoot(t *testing.T) {
	h, imageID, cid := driftHarness(t, "drift", nil)
	cmatch := map[string]string{"container_id": shortID(cid)}
	testenv.WaitFor(t, waitLong, "the container's series", func() bool {
		return len(h.series("dockward_container_vulnerabilities", cmatch)) > 0
	})
	if got := h.counts("dockward_container_vulnerabilities", cmatch); got != "" {
		t.Fatalf("the clean container counts %s before any drift", got)
	}

	stanza := testenv.DpkgStanzas("libexpat1 2.5.0-1 expat")
	execIn(t, cid, "printf '%s' '"+stanza+"' >> /var/lib/dpkg/status")
	want := "container=dockward-test-drift,fixable=true,image_id=" + shortID(imageID) + ",severity=critical:1"
	h.waitCounts("the container's own counts", "dockward_container_vulnerabilities", cmatch, want)
	f := h.mustFinding("container.package_drift", "dockward-test-drift")
	if v := f.Vulnerabilities.All(); !strings.Contains(f.Details["added"], "libexpat1 2.5.0-1") || len(v) != 1 ||
		v[0].ID != "CVE-2024-45490" || f.Subject.Kind != findings.KindContainer {
		t.Errorf("drift finding %+v, want libexpat1 added with CVE-2024-45490", f)
	}
	if got := h.counts("dockward_image_vulnerabilities", map[string]string{"image_id": shortID(imageID)}); got != "" {
		t.Errorf("the image's counts moved with its container's drift: %s", got)
	}
}

// A package database replaced by a symlink out of the container is refused
// by os.Root and reported, never followed to the host.
func TestDriftHostileSymlink(t *testing.T) {
	h, _, cid := driftHarness(t, "symlink", nil)
	execIn(t, cid, "/bin/busybox ln -sf ../../../../../../../../etc/shadow /var/lib/dpkg/status")
	testenv.WaitFor(t, waitLong, "the unreadable database reported", func() bool {
		f, ok := h.finding("container.package_drift", "dockward-test-symlink")
		return ok && strings.Contains(f.Details["unreadable"], "var/lib/dpkg/status")
	})
	execIn(t, cid, "/bin/busybox ln -sf /etc/shadow /var/lib/dpkg/status")
	time.Sleep(2 * time.Second) // two rescans
	f := h.mustFinding("container.package_drift", "dockward-test-symlink")
	if !strings.Contains(f.Details["unreadable"], "var/lib/dpkg/status") {
		t.Errorf("an absolute symlink: %+v, want it reported unreadable", f.Details)
	}
	for _, v := range f.Vulnerabilities.All() {
		t.Errorf("a vulnerability came from the host's file: %+v", v)
	}
}

// Where /proc/<pid>/root cannot be opened, the Engine's changes API tells
// that the package database changed.
func TestDriftThroughChangesAPI(t *testing.T) {
	h, _, cid := driftHarness(t, "changes", func(c *Config) { c.ProcDir = t.TempDir() })
	execIn(t, cid, "printf '%s' '"+testenv.DpkgStanzas("libexpat1 2.5.0-1 expat")+"' >> /var/lib/dpkg/status")
	testenv.WaitFor(t, waitLong, "drift seen through the changes API", func() bool {
		f, ok := h.finding("container.package_drift", "dockward-test-changes")
		return ok && strings.Contains(f.Details["changed"], "/var/lib/dpkg/status")
	})
	if n := h.series("dockward_images_scan_errors_total", map[string]string{"reason": "proc_unreadable"})[""]; n == 0 {
		t.Error("the unreadable /proc root was not counted")
	}
}
