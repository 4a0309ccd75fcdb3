package auditd

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/dockward/dockward/pkg/findings"
)

// Each built-in watch's CIS number is proven by the benchmark's text: the
// check it names is about that path or program.
func TestWatchCISNumbersMatchTheBenchmark(t *testing.T) {
	for _, w := range builtinWatches {
		c, ok := findings.LookupCheck(w.CIS)
		if !ok {
			if w.Binary != "docker" {
				t.Errorf("watch %s (%s%v): CIS %q is not a check of the benchmark", w.Key, w.Binary, w.Candidates, w.CIS)
			}
			continue // the docker CLI has no check of its own
		}
		var about bool
		switch {
		case w.Binary == "dockerd":
			about = strings.HasSuffix(c.Title, "for the Docker daemon")
		case w.Binary != "":
			about = strings.HasSuffix(c.Title, " - /usr/bin/"+w.Binary)
		default:
			// A unit's drop-in directory (docker.service.d) is the unit's.
			base := strings.TrimSuffix(path.Base(w.Candidates[0]), ".d")
			about = strings.HasSuffix(c.Title, " - "+w.Candidates[0]) || strings.HasSuffix(c.Title, " - "+base)
		}
		if !about {
			t.Errorf("watch %s (%s%v) says CIS %s, which is %q", w.Key, w.Binary, w.Candidates, w.CIS, c.Title)
		}
		if !slices.Contains(c.Rules, "audit.watch_missing") {
			t.Errorf("check %s does not list audit.watch_missing", c.ID)
		}
	}
}
