package findingspage

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestChromiumRendersFindings(t *testing.T) {
	srv := httptest.NewServer(Handler(fixtureStore(t)))
	defer srv.Close()

	dom := string(testenv.Chromium(t, "--dump-dom", srv.URL+"/findings"))
	rs := rows(dom)
	if len(rs) != 9 {
		t.Fatalf("Chromium's DOM has %d finding rows, want 9:\n%s", len(rs), dom)
	}
	if rs[0].severity != "critical" || rs[len(rs)-1].severity != "info" {
		t.Errorf("Chromium shows %s first and %s last; want critical first, info last", rs[0].severity, rs[len(rs)-1].severity)
	}
	filtered := rows(string(testenv.Chromium(t, "--dump-dom", srv.URL+"/findings?kind=daemon")))
	if len(filtered) != 1 || filtered[0].kind != "daemon" {
		t.Errorf("?kind=daemon in Chromium shows %v, want the one daemon finding", filtered)
	}

	// The style was applied (the CSP allowed it): the critical and medium
	// row colors are on screen.
	requireColors(t, srv.URL+"/findings", "1400,1000", "findings-page.png", map[string]color.RGBA{
		"critical": {0xb7, 0x1c, 0x1c, 0xff},
		"medium":   {0xfd, 0xd6, 0x63, 0xff},
	})
}

// requireColors screenshots url in Chromium (kept as an artifact) and
// fails unless each named color covers at least 2000 pixels.
func requireColors(t *testing.T, url, size, file string, colors map[string]color.RGBA) {
	t.Helper()
	shot := filepath.Join(artifactDir(t), file)
	testenv.Chromium(t, "--window-size="+size, "--screenshot="+shot, url)
	t.Logf("screenshot of %s: %s", url, shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("Chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding screenshot: %v", err)
	}
	for name, want := range colors {
		if n := countColor(img, want); n < 2000 {
			t.Errorf("screenshot has %d pixels of the %s color %v; the colors were not rendered", n, name, want)
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

// netlogRequests runs Chromium on url with a network log and returns the
// URLs the page itself requested (initiator = its origin) and the addresses
// of every TCP connection Chromium attempted.
func netlogRequests(t *testing.T, url, origin string) (pageURLs, connects []string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "netlog.json")
	testenv.Chromium(t, "--log-net-log="+logPath, "--dump-dom", url)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("Chromium wrote no network log: %v", err)
	}
	var nl struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int            `json:"type"`
			Params map[string]any `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(data, &nl); err != nil {
		t.Fatalf("parsing Chromium's network log: %v", err)
	}
	startJob, startOK := nl.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	connect, connectOK := nl.Constants.LogEventTypes["TCP_CONNECT_ATTEMPT"]
	if !startOK || !connectOK {
		t.Fatal("Chromium's network log lacks the URL_REQUEST_START_JOB or TCP_CONNECT_ATTEMPT event types")
	}
	for _, e := range nl.Events {
		switch e.Type {
		case startJob:
			if e.Params["initiator"] == origin {
				if u, ok := e.Params["url"].(string); ok {
					pageURLs = append(pageURLs, u)
				}
			}
		case connect:
			if a, ok := e.Params["address"].(string); ok {
				connects = append(connects, a)
			}
		}
	}
	return pageURLs, connects
}

// outside returns the URLs and connections that leave origin and loopback.
func outside(pageURLs, connects []string, origin string) []string {
	var out []string
	for _, u := range pageURLs {
		if !strings.HasPrefix(u, origin+"/") {
			out = append(out, "page requested "+u)
		}
	}
	for _, a := range connects {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			out = append(out, "Chromium connected to "+a)
		}
	}
	return out
}

// TestChromiumLoadsNothingFromOutside records Chromium's network log while
// it renders /findings: the page requests nothing but its own origin. A
// control page with one outside image proves the check would see one.
func TestChromiumLoadsNothingFromOutside(t *testing.T) {
	srv := httptest.NewServer(Handler(fixtureStore(t)))
	defer srv.Close()
	pageURLs, connects := netlogRequests(t, srv.URL+"/findings", srv.URL)
	if bad := outside(pageURLs, connects, srv.URL); len(bad) > 0 {
		t.Errorf("/findings reaches outside the agent: %s", strings.Join(bad, "; "))
	}
	if len(connects) == 0 {
		t.Error("the network log shows no connection at all; the check is not looking")
	}

	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><body><img src="http://198.51.100.7/pixel.png"></body></html>`))
	}))
	defer control.Close()
	pageURLs, connects = netlogRequests(t, control.URL+"/", control.URL)
	bad := outside(pageURLs, connects, control.URL)
	if len(bad) != 1 || !strings.Contains(bad[0], "198.51.100.7") {
		t.Errorf("the control page's outside image was not detected exactly once: %v", bad)
	}
}
