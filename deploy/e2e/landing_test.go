package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// TestLandingPageLinksFindings runs the real agent (every source off, so it
// needs neither Docker nor kernel audit) and follows the landing page's link
// to the findings page.
func TestLandingPageLinksFindings(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "off.yml", "containers: {enabled: false}\naudit: {enabled: false}\nhost: {enabled: false}\n")
	p := testenv.StartAgent(t, nil, "--config.file="+cfg)
	base := p.URL("")
	testenv.WaitForState(t, 15*time.Second, "the agent serves its landing page", func() (bool, string) {
		if p.Exited() {
			t.Fatal("the agent exited")
		}
		code, _, err := httpGet(base + "/")
		return err == nil && code == 200, fmt.Sprintf("GET /: %d %v", code, err)
	})
	_, landing, _ := httpGet(base + "/")
	if !strings.Contains(landing, `href="/findings"`) {
		t.Fatalf("the landing page has no link to /findings:\n%s", landing)
	}
	code, page, err := httpGet(base + "/findings")
	if err != nil || code != 200 || !strings.Contains(page, "<title>dockward findings</title>") {
		t.Fatalf("GET /findings: %d %v; want 200, the findings page:\n%s", code, err, page)
	}
}
