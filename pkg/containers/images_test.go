package containers

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
)

// imageRules maps rule -> message for one image's open findings.
func (h *harness) imageRules(id string) map[string]string {
	out := map[string]string{}
	for _, f := range h.store.Open() {
		if f.Subject.Kind == findings.KindImage && f.Subject.ImageID == id {
			out[f.Rule] = f.Message
		}
	}
	return out
}

const fakeAptGet = "#!/bin/busybox sh\necho fake apt-get \"$@\"\n"

// TestEngineImages builds real images and judges every local image (CIS
// 4.6, 4.7, 4.9), used by a container or not: those present at start at
// inventory, one built later from its image event, and a removed one's
// findings go with it. The sprawl gauges count images and unused ones.
func TestEngineImages(t *testing.T) {
	files := []testenv.ImageFile{{Path: "apt-get", Content: fakeAptGet}, {Path: "file.txt", Content: "hello\n"}}
	tag := func(name string) string { return fmt.Sprintf("dockward-test-%s:%d", name, os.Getpid()) }
	base := "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY apt-get /usr/bin/apt-get\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	good := testenv.BuildImage(t, tag("healthy"), base+"RUN apt-get update && apt-get install -y curl\nHEALTHCHECK CMD [\"/bin/true\"]\n", files...)
	plain := testenv.BuildImage(t, tag("plain"), base, files...)
	used := dockerCreate(t, "--network", "none") // from the busybox test image
	h, p, _ := startBehindProxy(t)

	testenv.WaitFor(t, 10*time.Second, "images judged at inventory", func() bool { return len(h.imageRules(plain)) > 0 })
	if got := h.imageRules(good); len(got) != 0 {
		t.Errorf("the image with a health check, COPY only and update with install: %v", got)
	}
	if got := h.imageRules(plain); len(got) != 1 || got["image.no_healthcheck"] == "" {
		t.Errorf("the image without a health check: %v, want only image.no_healthcheck", got)
	}

	bad := testenv.BuildImage(t, tag("bad"), base+"ADD file.txt /etc/file.txt\nRUN apt-get update\n", files...)
	testenv.WaitFor(t, 10*time.Second, "an image built later judged from its event", func() bool { return len(h.imageRules(bad)) == 3 })
	got := h.imageRules(bad)
	if !strings.Contains(got["image.update_alone"], "apt-get update") || !strings.Contains(got["image.add_instruction"], "/etc/file.txt") {
		t.Errorf("bad image findings: %v", got)
	}

	// used was created from the busybox test image: that one is not unused.
	testenv.WaitFor(t, 5*time.Second, "sprawl counted", func() bool {
		n, u := h.src.imageCounts()
		return n >= 4 && u >= 3 && u < n
	})
	n, u := h.src.imageCounts()
	metrics := h.metricsText(t)
	if !strings.Contains(metrics, fmt.Sprintf("dockward_images %d\n", n)) || !strings.Contains(metrics, fmt.Sprintf("dockward_images_unused %d\n", u)) {
		t.Errorf("the gauges do not say %d images, %d unused", n, u)
	}
	if o := h.src.Observations()["6.1"]; o.Status != findings.StatusInfo || o.Note != fmt.Sprintf("%d images, %d not used by any container", n, u) {
		t.Errorf("6.1 observation %+v", o)
	}
	if o := h.src.Observations()["6.2"]; o.Status != findings.StatusInfo || !strings.Contains(o.Note, "created") {
		t.Errorf("6.2 observation %+v (container %s was created)", o, used[:12])
	}

	testenv.Run(t, "docker", "rmi", tag("bad"))
	testenv.WaitFor(t, 10*time.Second, "a removed image's findings gone", func() bool { return len(h.imageRules(bad)) == 0 })
	p.check(t)
}
