package auditd

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dockward/dockward/internal/testenv"
)

// FuzzPipeline feeds arbitrary record sequences (one record per line) to
// the whole pipeline: no panic, and every accepted event is counted once.
func FuzzPipeline(f *testing.F) {
	for _, name := range []string{"testdata/raw.log", "testdata/enriched.log"} {
		f.Add(string(testenv.ReadFile(f, name)))
	}
	f.Add("type=SYSCALL msg=audit(1.0:5): key=\"docker_etc\" exe=\"/x\"\ntype=SYSCALL msg=audit(1.0:3): key=\"docker_etc\"\ntype=EOE msg=audit(1.0:5): \n")
	f.Fuzz(func(t *testing.T, input string) {
		p, m, out, _ := newTestPipeline(t, testWatches())
		for _, l := range strings.Split(input, "\n") {
			p.PushLine(l)
		}
		p.Close()
		var counted float64
		for _, w := range testWatches() {
			counted += eventTotal(t, m, w.Key, true) + eventTotal(t, m, w.Key, false)
		}
		if int(counted) != len(*out) {
			t.Fatalf("counted %v events, classified %d", counted, len(*out))
		}
		for _, s := range *out {
			if !utf8.ValidString(s.key) || s.key == "" {
				t.Fatalf("event with key %q", s.key)
			}
		}
	})
}
