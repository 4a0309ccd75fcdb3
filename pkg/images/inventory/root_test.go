package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockward/dockward/internal/testenv"
)

var testLimits = Limits{MaxImageSize: 64 << 20, MaxDatabaseSize: 1 << 20}

// writeRoot lays files out under a new directory, as a container's root.
func writeRoot(t *testing.T, files ...testenv.ImageFile) string {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteTree(t, dir, files...)
	return dir
}

func fromRoot(t *testing.T, limits Limits, dir string) Inventory {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	inv, err := NewExtractor(limits, t.TempDir(), nil).FromRoot(context.Background(), "c1", root)
	if err != nil {
		t.Fatalf("FromRoot: %v", err)
	}
	return inv
}

func byName(inv Inventory) map[string]Package {
	out := map[string]Package{}
	for _, p := range inv.Packages {
		out[p.Name] = p
	}
	return out
}

func TestRootDebian(t *testing.T) {
	dir := writeRoot(t, testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
		testenv.DpkgStatus("openssl 3.0.11-1~deb12u1", "libssl3 3.0.11-1~deb12u1 openssl", "libfoo1 1.2-3+b1 foo (1.2-3)"))
	inv := fromRoot(t, testLimits, dir)
	got := byName(inv)
	if len(got) != 3 || inv.OS != "Debian GNU/Linux 12 (bookworm)" || len(inv.Skipped) != 0 {
		t.Fatalf("inventory %+v, want 3 Debian 12 packages and nothing skipped", inv)
	}
	if p := got["libssl3"]; p.Ecosystem != "Debian:12" || p.Source != "openssl" {
		t.Errorf("libssl3 = %+v, want ecosystem Debian:12 and source openssl", p)
	}
	q := got["libfoo1"].Queries()
	if len(q) != 1 || q[0].Name != "foo" || q[0].Version != "1.2-3" {
		t.Errorf("a binNMU is matched by its source name and version: %+v", q)
	}
}

func TestRootAlpine(t *testing.T) {
	dir := writeRoot(t, testenv.OSRelease("alpine", "3.19.1", "Alpine Linux v3.19"),
		testenv.ApkInstalled("libcrypto3 3.1.4-r1 openssl", "musl 1.2.4_git20230717-r4 musl"))
	got := byName(fromRoot(t, testLimits, dir))
	if p := got["libcrypto3"]; p.Ecosystem != "Alpine:v3.19" || p.Source != "openssl" || p.Version != "3.1.4-r1" {
		t.Fatalf("libcrypto3 = %+v, want Alpine:v3.19 from origin openssl", p)
	}
	if q := got["musl"].Queries(); len(q) != 1 || q[0].Name != "musl" {
		t.Errorf("musl queries %+v", q)
	}
}

func TestRootHostileSymlinks(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte(testenv.DpkgStanzas("leaked 1.0-1")), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, link := range map[string]string{"absolute": outside, "relative": "../../../../../../../../" + outside} {
		dir := writeRoot(t, testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
			testenv.ImageFile{Path: "var/lib/dpkg/status", Link: link})
		inv := fromRoot(t, testLimits, dir)
		if len(inv.Packages) != 0 {
			t.Errorf("%s symlink: read packages from outside the root: %+v", name, inv.Packages)
		}
		if len(inv.Skipped) != 1 || inv.Skipped[0].Reason != ReasonUnreadable || !strings.Contains(inv.Skipped[0].Detail, "var/lib/dpkg/status") {
			t.Errorf("%s symlink: skipped %+v, want the database reported unreadable", name, inv.Skipped)
		}
	}
}

func TestRootHugeStatus(t *testing.T) {
	pkgs := make([]string, 0, 3000)
	for range 3000 {
		pkgs = append(pkgs, "pkg 1.0-1")
	}
	dir := writeRoot(t, testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"), testenv.DpkgStatus(pkgs...))
	inv := fromRoot(t, Limits{MaxImageSize: 1 << 30, MaxDatabaseSize: 64 << 10}, dir)
	if len(inv.Packages) != 0 || len(inv.Skipped) == 0 || inv.Skipped[0].Reason != ReasonDatabaseTooLarge {
		t.Fatalf("a status file over the cap: packages %d skipped %+v, want it reported too large", len(inv.Packages), inv.Skipped)
	}
}

func TestRootWithoutReleaseOrDatabase(t *testing.T) {
	inv := fromRoot(t, testLimits, writeRoot(t, testenv.DpkgStatus("openssl 3.0.11-1~deb12u1")))
	if len(inv.Skipped) != 1 || inv.Skipped[0].Reason != ReasonUnknownRelease {
		t.Errorf("packages without os-release: skipped %+v, want unknown_release", inv.Skipped)
	}
	inv = fromRoot(t, testLimits, writeRoot(t, testenv.OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)")))
	if len(inv.Skipped) != 1 || inv.Skipped[0].Reason != ReasonNoDatabase {
		t.Errorf("Debian without a dpkg database: skipped %+v, want no_package_database", inv.Skipped)
	}
	inv = fromRoot(t, testLimits, writeRoot(t, testenv.ImageFile{Path: "bin/app", Content: "static"}))
	if len(inv.Skipped) != 0 || len(inv.Packages) != 0 {
		t.Errorf("a static binary image: %+v, want an empty inventory and nothing skipped", inv)
	}
}

func TestExportErrors(t *testing.T) {
	x := NewExtractor(Limits{MaxImageSize: 1024, MaxDatabaseSize: 1024}, t.TempDir(), nil)
	_, err := x.FromExport(context.Background(), "sha256:big", strings.NewReader(strings.Repeat("x", 2048)))
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonTooLarge {
		t.Errorf("an export over the cap: %v, want too_large", err)
	}
	_, err = x.FromExport(context.Background(), "sha256:junk", strings.NewReader("not a tar"))
	if !errors.As(err, &e) || e.Reason != ReasonCorrupt {
		t.Errorf("an export that is not a tar: %v, want corrupt_export", err)
	}
}

func TestDiff(t *testing.T) {
	image := []Package{{Name: "a", Version: "1"}, {Name: "b", Version: "1"}, {Name: "c", Version: "1"}}
	container := []Package{{Name: "a", Version: "1"}, {Name: "b", Version: "2"}, {Name: "d", Version: "1"}}
	added, removed, changed := Diff(image, container)
	if strings.Join(added, ",") != "d 1" || strings.Join(removed, ",") != "c 1" || strings.Join(changed, ",") != "b 1 -> 2" {
		t.Errorf("diff = %v %v %v", added, removed, changed)
	}
	if Same(image, container) || !Same(image, []Package{image[2], image[0], image[1]}) {
		t.Error("Same must ignore order and nothing else")
	}
}

func TestCache(t *testing.T) {
	c := Cache{Dir: filepath.Join(t.TempDir(), "images")}
	id := "sha256:" + strings.Repeat("ab", 32)
	if _, ok, err := c.Load(id); ok || err != nil {
		t.Fatalf("empty cache: ok %v err %v", ok, err)
	}
	inv := Inventory{Format: Format, ID: id, OS: "Debian GNU/Linux 12 (bookworm)",
		Packages: []Package{{Name: "openssl", Version: "3.0.11-1~deb12u1", Ecosystem: "Debian:12"}}}
	if err := c.Store(inv); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Load(id)
	if !ok || err != nil || !Same(got.Packages, inv.Packages) || got.OS != inv.OS {
		t.Fatalf("Load = %+v %v %v, want what was stored", got, ok, err)
	}
	if ids, _ := c.IDs(); len(ids) != 1 || ids[0] != id {
		t.Errorf("IDs = %v", ids)
	}
	// A file of another format, or garbage, is extracted again.
	p, _ := c.path(id)
	os.WriteFile(p, []byte(`{"format":0}`), 0o600)
	if _, ok, _ := c.Load(id); ok {
		t.Error("a cached inventory of another format was used")
	}
	if err := c.Delete(id); err != nil {
		t.Fatal(err)
	}
	if ids, _ := c.IDs(); len(ids) != 0 {
		t.Errorf("after Delete: %v", ids)
	}
	if _, _, err := c.Load("../../etc/passwd"); err == nil {
		t.Error("a malformed ID reached the file system")
	}
}
