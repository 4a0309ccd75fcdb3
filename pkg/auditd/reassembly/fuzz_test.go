package reassembly

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dockward/dockward/pkg/auditd/record"
)

func newCounters() Counters {
	c := func(name string) prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: name}) }
	return Counters{Records: c("records"), ParseErrors: c("parse_errors"), SequenceGaps: c("gaps"), LateRecords: c("late")}
}

// FuzzReassembly feeds arbitrary record sequences (one record per line) to
// the stream: no panic, every line is counted as a record, and every event
// handed on has a SYSCALL record, a serial some line carried, and no more
// events come out than SYSCALL records went in.
func FuzzReassembly(f *testing.F) {
	// The records captured from a real kernel and auditd, as whole logs;
	// testdata/fuzz holds out-of-order and multi-key sequences.
	logs, err := filepath.Glob("../testdata/*.log")
	if err != nil || len(logs) == 0 {
		f.Fatalf("no captured logs in ../testdata: %v", err)
	}
	for _, name := range logs {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, input string) {
		c := newCounters()
		serials := map[uint32]bool{}
		events := 0
		s, err := New(Options{Counters: c, OnEvent: func(ev *record.Event) {
			if !ev.HasSyscall || !serials[ev.Serial] {
				t.Fatalf("event of serial %d (syscall record %v) handed on; serials pushed: %v", ev.Serial, ev.HasSyscall, serials)
			}
			events++
		}})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(input, "\n")
		syscalls := 0
		for _, l := range lines {
			if h, _, err := record.ParseLogLine(l); err == nil {
				serials[h.Serial] = true
				if h.Type == auparse.AUDIT_SYSCALL {
					syscalls++
				}
			}
			s.PushLine(l)
		}
		s.Close()
		if got := testutil.ToFloat64(c.Records); got != float64(len(lines)) {
			t.Fatalf("counted %v records, pushed %d lines", got, len(lines))
		}
		if events > syscalls {
			t.Fatalf("%d events from %d SYSCALL records", events, syscalls)
		}
	})
}
