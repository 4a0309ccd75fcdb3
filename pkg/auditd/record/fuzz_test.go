package record

import (
	"os"
	"strings"
	"testing"
)

func seedLines(f *testing.F) {
	for _, name := range []string{"../testdata/raw.log", "../testdata/enriched.log"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			f.Add(l)
		}
	}
	f.Add("node=h type=UNKNOWN[1327] msg=audit(1.2:3): proctitle=4142\x1dX=\"")
	f.Add(`type=PATH msg=audit(1.2:3): name="unterminated`)
}

// FuzzParseLine: the line parser never panics, and what it accepts has a
// well-formed header and a body that is a suffix of the line.
func FuzzParseLine(f *testing.F) {
	seedLines(f)
	f.Fuzz(func(t *testing.T, line string) {
		h, body, err := ParseLogLine(line)
		if err != nil {
			return
		}
		if h.Msec > 999 || !strings.HasSuffix(strings.TrimRight(line, "\r\n"), body) {
			t.Fatalf("accepted %q as %+v body %q", line, h, body)
		}
		ev := Event{}
		raw, enriched := splitEnriched(body)
		ev.syscallFields(raw)
		ev.enrichedFields(enriched)
		for i := 0; ; {
			_, _, next, ok := nextField(raw, i)
			if !ok {
				break
			}
			if next <= i {
				t.Fatalf("tokenizer did not advance at %d in %q", i, raw)
			}
			i = next
		}
	})
}
