package findingspage

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// artifactDir is where browser screenshots go: $DOCKWARD_ARTIFACTS when CI
// collects them, else the test's temp dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("DOCKWARD_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("creating artifact dir: %v", err)
		}
		return d
	}
	return t.TempDir()
}

// chromium runs Debian's headless Chromium with the flags that keep it from
// contacting anything but the page under test.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		testenv.RequireCommand(t, "chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-extensions", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func TestChromiumRendersFindings(t *testing.T) {
	srv := httptest.NewServer(Handler(fixtureStore(t)))
	defer srv.Close()

	dom := string(chromium(t, "--dump-dom", srv.URL+"/findings"))
	rs := rows(dom)
	if len(rs) != 9 {
		t.Fatalf("Chromium's DOM has %d finding rows, want 9:\n%s", len(rs), dom)
	}
	if rs[0].severity != "critical" || rs[len(rs)-1].severity != "info" {
		t.Errorf("Chromium shows %s first and %s last; want critical first, info last", rs[0].severity, rs[len(rs)-1].severity)
	}
	filtered := rows(string(chromium(t, "--dump-dom", srv.URL+"/findings?kind=daemon")))
	if len(filtered) != 1 || filtered[0].kind != "daemon" {
		t.Errorf("?kind=daemon in Chromium shows %v, want the one daemon finding", filtered)
	}

	shot := filepath.Join(artifactDir(t), "findings-page.png")
	chromium(t, "--window-size=1400,1000", "--screenshot="+shot, srv.URL+"/findings")
	t.Logf("screenshot of /findings: %s", shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("Chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding screenshot: %v", err)
	}
	// The style was applied (the CSP allowed it): the critical and medium
	// row colors are on screen.
	for name, want := range map[string]color.RGBA{
		"critical": {0xb7, 0x1c, 0x1c, 0xff},
		"medium":   {0xfd, 0xd6, 0x63, 0xff},
	} {
		if n := countColor(img, want); n < 2000 {
			t.Errorf("screenshot has %d pixels of the %s color %v; the severity colors were not rendered", n, name, want)
		}
	}
}

func countColor(img image.Image, want color.RGBA) int {
	n := 0
	b := img.Bounds()
	near := func(a uint32, b uint8) bool {
		d := int(a>>8) - int(b)
		return d >= -3 && d <= 3
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, want.R) && near(g, want.G) && near(bl, want.B) {
				n++
			}
		}
	}
	return n
}
