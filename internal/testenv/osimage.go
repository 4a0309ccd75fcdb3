package testenv

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ImageFile is one entry of a test image's root filesystem: a file with
// Content, or a symlink to Link.
type ImageFile struct {
	Path    string // relative to the root, e.g. "var/lib/dpkg/status"
	Content string
	Link    string
}

// OSRelease is an etc/os-release entry for a distribution release, e.g.
// OSRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)").
func OSRelease(id, versionID, pretty string) ImageFile {
	return ImageFile{Path: "etc/os-release", Content: "PRETTY_NAME=\"" + pretty + "\"\nID=" + id +
		"\nVERSION_ID=\"" + versionID + "\"\n"}
}

// DpkgStatus is a var/lib/dpkg/status entry listing installed packages, each
// "name version", "name version source" or "name version source (version)".
func DpkgStatus(pkgs ...string) ImageFile {
	return ImageFile{Path: "var/lib/dpkg/status", Content: DpkgStanzas(pkgs...)}
}

// DpkgStanzas is the text of dpkg status stanzas for pkgs (see DpkgStatus).
func DpkgStanzas(pkgs ...string) string {
	var b strings.Builder
	for _, p := range pkgs {
		f := strings.Fields(p)
		b.WriteString("Package: " + f[0] + "\nStatus: install ok installed\nPriority: optional\n" +
			"Architecture: amd64\nVersion: " + f[1] + "\n")
		if len(f) > 2 {
			b.WriteString("Source: " + strings.Join(f[2:], " ") + "\n")
		}
		b.WriteString("Maintainer: Test <test@example.org>\nDescription: test package " + f[0] + "\n\n")
	}
	return b.String()
}

// ApkInstalled is an Alpine lib/apk/db/installed entry; each package is
// "name version origin".
func ApkInstalled(pkgs ...string) ImageFile {
	var b strings.Builder
	for _, p := range pkgs {
		f := strings.Fields(p)
		b.WriteString("C:Q1test=\nP:" + f[0] + "\nV:" + f[1] + "\nA:x86_64\nS:1000\nI:2000\nT:test\n" +
			"U:https://example.org\nL:MIT\no:" + f[2] + "\nm:Test <test@example.org>\n\n")
	}
	return ImageFile{Path: "lib/apk/db/installed", Content: b.String()}
}

// ImportImage builds a one-layer image from files plus static busybox at
// /bin/busybox with `docker import`, tags it, and removes it when the test
// ends. It returns the image ID.
func ImportImage(t testing.TB, tag string, files ...ImageFile) string {
	t.Helper()
	RequireDocker(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range append([]ImageFile{busyboxFile(t)}, files...) {
		writeTarEntry(t, tw, f, dirs)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "import", "--change", `CMD ["/bin/busybox","sleep","3600"]`, "-", tag)
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker import %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() { _ = runQuiet("docker", "rmi", "-f", tag) })
	return strings.TrimSpace(string(out))
}

// BuildImage builds an image from dockerfile (FROM scratch, COPY and RUN
// steps over a context holding busybox and files) with no network, tags it,
// and removes it when the test ends. It returns the image ID.
func BuildImage(t testing.TB, tag, dockerfile string, files ...ImageFile) string {
	t.Helper()
	RequireDocker(t)
	dir := t.TempDir()
	WriteTree(t, dir, append([]ImageFile{busyboxFile(t)}, files...)...)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, "docker", "build", "-q", "--network", "none", "-t", tag, dir)
	t.Cleanup(func() { _ = runQuiet("docker", "rmi", "-f", tag) })
	return strings.TrimSpace(Run(t, "docker", "image", "inspect", "--format", "{{.Id}}", tag))
}

// RunContainer starts a container of image with no network running
// busybox sleep, removes it when the test ends, and returns its ID.
func RunContainer(t testing.TB, name, image string) string {
	t.Helper()
	id := strings.TrimSpace(Run(t, "docker", "run", "-d", "--network", "none", "--name", name, image,
		"/bin/busybox", "sleep", "3600"))
	t.Cleanup(func() { _ = runQuiet("docker", "rm", "-f", id) })
	return id
}

func busyboxFile(t testing.TB) ImageFile {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		Missing(t, "static busybox at /bin/busybox (apt-get install busybox-static): %v", err)
	}
	return ImageFile{Path: "bin/busybox", Content: string(data)}
}

// writeTarEntry writes f after its parent directories (each once, as dirs
// records).
func writeTarEntry(t testing.TB, tw *tar.Writer, f ImageFile, dirs map[string]bool) {
	t.Helper()
	var parents []string
	for dir := path.Dir(f.Path); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
		parents = append([]string{dir}, parents...)
		dirs[dir] = true
	}
	for _, dir := range parents {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	h := &tar.Header{Name: f.Path, Mode: 0o755, Size: int64(len(f.Content)), Typeflag: tar.TypeReg}
	if f.Link != "" {
		h = &tar.Header{Name: f.Path, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: f.Link}
	}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(f.Content)); err != nil {
		t.Fatal(err)
	}
}

// WriteTree lays files out under dir, as an image build context or a
// container's root. Every file gets its own modification time: the legacy
// builder diffs a COPY layer by size and time, so a same-size change must
// still count.
func WriteTree(t testing.TB, dir string, files ...ImageFile) {
	t.Helper()
	for i, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.Link != "" {
			if err := os.Symlink(f.Link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(f.Content), 0o755); err != nil {
			t.Fatal(err)
		}
		mtime := time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}
