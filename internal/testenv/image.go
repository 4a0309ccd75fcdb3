package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BusyboxImage is the test image: static busybox on an empty root, built
// locally because no registry can be reached.
const BusyboxImage = "dockward-test-busybox:latest"

var imageOnce sync.Once

// RequireBusyboxImage builds BusyboxImage once per test process (reusing it
// when present) and returns its name. It needs Docker and busybox-static.
func RequireBusyboxImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		Missing(t, "static busybox at %s (apt-get install busybox-static): %v", bb, err)
	}
	var buildErr string
	imageOnce.Do(func() {
		if out := runQuiet("docker", "image", "inspect", BusyboxImage); out == nil {
			return
		}
		dir, err := os.MkdirTemp("", "dockward-image-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		data, err := os.ReadFile(bb)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "busybox"), data, 0o755)
		}
		if err == nil {
			df := "FROM scratch\nCOPY busybox /bin/busybox\n" +
				"RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"/bin/sh\"]\n"
			err = os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
		}
		if err != nil {
			buildErr = err.Error()
			return
		}
		if out := runQuiet("docker", "build", "--network", "none", "-t", BusyboxImage, dir); out != nil {
			buildErr = out.Error()
		}
	})
	if buildErr != "" {
		t.Fatalf("building %s: %s", BusyboxImage, strings.TrimSpace(buildErr))
	}
	return BusyboxImage
}
