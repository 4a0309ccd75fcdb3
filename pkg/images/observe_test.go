package images

import (
	"strings"
	"testing"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/inventory"
)

// 4.4 is not passed for want of findings: not before the first judgement,
// not while the images or running containers were never listed (Docker
// down since the start), nor while an image waits to be read. A failed
// image is judged (vulns.scan_skipped), not waiting.
func TestVulnCheckObservedUntilJudged(t *testing.T) {
	s := &Source{cfg: DefaultConfig(), images: map[string]*imageState{}}
	s.cfg.Containers = true
	if o := s.Observations()["4.4"]; o.Status != findings.StatusManual || !strings.Contains(o.Note, "has not judged yet") {
		t.Errorf("before any judgement: %+v", o)
	}
	note := func() string {
		obs := s.observe()
		if obs == nil {
			return ""
		}
		if o := obs["4.4"]; o.Status != findings.StatusManual {
			t.Errorf("observed %+v, want manual", o)
		}
		return obs["4.4"].Note
	}
	if n := note(); !strings.Contains(n, "local images have not been listed") {
		t.Errorf("images never listed: %q", n)
	}
	s.imagesListed = true
	if n := note(); !strings.Contains(n, "running containers have not been listed") {
		t.Errorf("containers never listed: %q", n)
	}
	s.containersListed = true
	s.images["a"] = &imageState{id: "a", inv: &inventory.Inventory{}}
	s.images["b"] = &imageState{id: "b"}
	s.images["c"] = &imageState{id: "c", failure: &inventory.Error{Reason: inventory.ReasonTooLarge}}
	if n := note(); n != "not judged: 1 of 3 local images have not been read yet; each is judged once read" {
		t.Errorf("one image waiting: %q", n)
	}
	s.images["b"].inv = &inventory.Inventory{}
	if n := note(); n != "" {
		t.Errorf("every image read or failed: %q, want no observation", n)
	}
	if strings.Join(vulnChecks, ",") != "4.4" {
		t.Errorf("the source's checks: %v, want 4.4", vulnChecks)
	}
}
