package inventory

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
)

var bookwormRelease = testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)")

// export is what the Engine's image export (docker save) gives for ref.
func export(t *testing.T, ref string) []byte {
	t.Helper()
	out, err := exec.Command("docker", "save", ref).Output()
	if err != nil {
		t.Fatalf("docker save %s: %v", ref, err)
	}
	return out
}

func fromExport(t *testing.T, ref string) Inventory {
	t.Helper()
	inv, err := NewExtractor(testLimits, t.TempDir(), nil).FromExport(context.Background(), ref, bytes.NewReader(export(t, ref)))
	if err != nil {
		t.Fatalf("FromExport(%s): %v", ref, err)
	}
	return inv
}

func TestExportImportedImage(t *testing.T) {
	testenv.RequireDocker(t)
	ref := "dockward-test-inv-debian:1"
	testenv.ImportImage(t, ref, bookwormRelease, testenv.DpkgStatus("openssl 3.0.11-1~deb12u1", "libssl3 3.0.11-1~deb12u1 openssl"))
	inv := fromExport(t, ref)
	got := byName(inv)
	if len(got) != 2 || got["libssl3"].Source != "openssl" || got["openssl"].Ecosystem != "Debian:12" || len(inv.Skipped) != 0 {
		t.Fatalf("inventory %+v, want openssl and libssl3 of Debian:12", inv)
	}
}

// A second layer that upgrades the package wins over the first.
func TestExportLaterLayerWins(t *testing.T) {
	testenv.RequireDocker(t)
	ref := "dockward-test-inv-layers:1"
	testenv.BuildImage(t, ref, "FROM scratch\nCOPY bin/ /bin/\nCOPY etc/ /etc/\nCOPY var/ /var/\nCOPY upgrade/status /var/lib/dpkg/status\n",
		bookwormRelease, testenv.DpkgStatus("openssl 3.0.11-1~deb12u1"),
		testenv.ImageFile{Path: "upgrade/status", Content: testenv.DpkgStanzas("openssl 3.0.13-1~deb12u1")})
	got := byName(fromExport(t, ref))
	if len(got) != 1 || got["openssl"].Version != "3.0.13-1~deb12u1" {
		t.Fatalf("packages %+v, want only the upgraded openssl of the second layer", got)
	}
}

// A layer that deletes the package database leaves a whiteout; the
// packages of the layer below are gone.
func TestExportWhiteoutHonoured(t *testing.T) {
	testenv.RequireDocker(t)
	ref := "dockward-test-inv-whiteout:1"
	testenv.BuildImage(t, ref, "FROM scratch\nCOPY . /\nRUN [\"/bin/busybox\", \"rm\", \"/var/lib/dpkg/status\"]\n",
		bookwormRelease, testenv.DpkgStatus("openssl 3.0.11-1~deb12u1"))
	inv := fromExport(t, ref)
	if len(inv.Packages) != 0 {
		t.Fatalf("packages %+v survived the whiteout", inv.Packages)
	}
	if len(inv.Skipped) != 1 || inv.Skipped[0].Reason != ReasonNoDatabase {
		t.Errorf("skipped %+v, want the missing database of a Debian image reported", inv.Skipped)
	}
}

// A package database that is a symlink leading out of the image is refused
// by the layer scanner and reported, never followed.
func TestExportHostileSymlink(t *testing.T) {
	testenv.RequireDocker(t)
	ref := "dockward-test-inv-symlink:1"
	testenv.ImportImage(t, ref, bookwormRelease,
		testenv.ImageFile{Path: "var/lib/dpkg/status", Link: "../../../../../../../../etc/passwd"})
	inv := fromExport(t, ref)
	if len(inv.Packages) != 0 || len(inv.Skipped) != 1 || inv.Skipped[0].Reason != ReasonNoDatabase {
		t.Fatalf("inventory %+v, want no packages and the database reported missing", inv)
	}
	if !strings.Contains(strings.Join(inv.Warnings, "\n"), "var/lib/dpkg/status") {
		t.Errorf("warnings %q do not name the refused symlink", inv.Warnings)
	}
}

func TestExportTruncated(t *testing.T) {
	testenv.RequireDocker(t)
	ref := "dockward-test-inv-truncated:1"
	testenv.ImportImage(t, ref, bookwormRelease, testenv.DpkgStatus("openssl 3.0.11-1~deb12u1"))
	data := export(t, ref)
	x := NewExtractor(testLimits, t.TempDir(), nil)
	for _, n := range []int{len(data) / 2, len(data) - 4096, 512} {
		_, err := x.FromExport(context.Background(), ref, bytes.NewReader(data[:n]))
		var e *Error
		if !errors.As(err, &e) || e.Reason != ReasonCorrupt {
			t.Errorf("export cut at %d of %d bytes: %v, want corrupt_export", n, len(data), err)
		}
	}
}
