package auditd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// logWriter appends numbered lines the way auditd does (open, append,
// keep the descriptor) and rotates like auditd/logrotate or copytruncate.
type logWriter struct {
	t    *testing.T
	path string
	f    *os.File
	n    int
}

func (w *logWriter) open() {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *logWriter) write(k int) {
	for i := 0; i < k; i++ {
		w.n++
		if _, err := fmt.Fprintf(w.f, "line %d\n", w.n); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *logWriter) renameRotate() {
	w.f.Close()
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		w.t.Fatal(err)
	}
	w.open()
}

func (w *logWriter) copyTruncate() {
	src, err := os.Open(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	dst, err := os.Create(w.path + ".1")
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		w.t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if err := w.f.Truncate(0); err != nil {
		w.t.Fatal(err)
	}
}

// lineCollector keeps the lines a tailer delivers, in order and counted.
type lineCollector struct {
	mu    sync.Mutex
	got   map[string]int
	order []string
}

func (c *lineCollector) add(l string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[strings.TrimSpace(l)]++
	c.order = append(c.order, l)
}

func (c *lineCollector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order)
}

// waitFor waits until n lines have arrived.
func (c *lineCollector) waitFor(t *testing.T, n int) {
	t.Helper()
	if !testenv.Eventually(5*time.Second, func() bool { return c.count() >= n }) {
		t.Fatalf("timed out waiting for %d lines, have %d", n, c.count())
	}
}

// check fails t unless total lines arrived, lines first..last once each.
func (c *lineCollector) check(t *testing.T, total, first, last int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) != total {
		var dups []string
		for l, n := range c.got {
			if n > 1 {
				dups = append(dups, l)
			}
		}
		t.Fatalf("read %d lines, want %d; read twice: %d, e.g. %v", len(c.order), total, len(dups), dups[:min(5, len(dups))])
	}
	for i := first; i <= last; i++ {
		if n := c.got[fmt.Sprintf("line %d", i)]; n != 1 {
			t.Fatalf("line %d read %d times", i, n)
		}
	}
}

// follow runs tl.follow into a new collector; stop cancels it and returns
// what follow returned.
func follow(tl *tailer) (c *lineCollector, stop func() error) {
	c = &lineCollector{got: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.follow(ctx, c.add, func() {}) }()
	return c, func() error {
		cancel()
		return <-done
	}
}

// writeAndRotate writes five rounds of lines, rotating the log (rot is
// "rename" or "copytruncate") in each, and returns how many lines the
// tailer must deliver.
func writeAndRotate(t *testing.T, w *logWriter, c *lineCollector, rot string) int {
	t.Helper()
	total := 0
	for round := 0; round < 5; round++ {
		w.write(500)
		total += 500
		// Rotations are minutes apart in practice: let the tailer
		// catch up, then write more lines right before rotating;
		// they must still be read from the old file.
		c.waitFor(t, total)
		w.write(7)
		total += 7
		if rot == "rename" {
			w.renameRotate()
		} else {
			// copytruncate: lines written between the copy and the
			// truncation are lost by design of copytruncate itself,
			// so the tailer must have read them before.
			c.waitFor(t, total)
			w.copyTruncate()
		}
		// The writer refills the file past the old offset at once.
		w.write(600)
		total += 600
	}
	return total
}

// TestTailRotation follows a file across rename rotation and copytruncate
// and checks every line arrives exactly once.
func TestTailRotation(t *testing.T) {
	for _, rot := range []string{"rename", "copytruncate"} {
		t.Run(rot, func(t *testing.T) {
			dir := t.TempDir()
			w := &logWriter{t: t, path: filepath.Join(dir, "audit.log")}
			w.open()
			defer func() { w.f.Close() }()
			w.write(10) // before the tailer starts: skipped (follows from the end)
			tl, err := newTailer(w.path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer tl.Close()
			tl.poll = 5 * time.Millisecond
			c, stop := follow(tl)
			total := writeAndRotate(t, w, c, rot)
			c.waitFor(t, total)
			time.Sleep(50 * time.Millisecond)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			c.check(t, total, 11, w.n)
		})
	}
}

func TestTailPartialAndOversizedLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tl, err := newTailer(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	defer f.Close()
	var lines []string
	collect := func(l string) { lines = append(lines, l) }
	f.WriteString("type=EOE msg=audit(1.0:1): \ntype=EO")
	if err := tl.drain(collect); err != nil {
		t.Fatal(err)
	}
	f.WriteString("E msg=audit(1.0:2): \n")
	f.WriteString(strings.Repeat("x", maxLineBytes+10) + "\nlast\n")
	if err := tl.drain(collect); err != nil {
		t.Fatal(err)
	}
	want := []string{"type=EOE msg=audit(1.0:1): \n", "type=EOE msg=audit(1.0:2): \n", "last\n"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines = %q", lines)
	}
}

func TestFileModeMissingLogIsAnError(t *testing.T) {
	if _, err := newTailer(filepath.Join(t.TempDir(), "nope.log"), false); err == nil ||
		!strings.Contains(err.Error(), "nope.log") {
		t.Fatalf("err = %v, want an error naming the file", err)
	}
}

// TestFileModeRotation runs the source in file mode on a log that is
// rotated by rename and by copytruncate while events keep being written:
// every event is classified exactly once and no serial is reported lost.
func TestFileModeRotation(t *testing.T) {
	dir := t.TempDir()
	w := &logWriter{t: t, path: filepath.Join(dir, "audit.log")}
	w.open()
	defer func() { w.f.Close() }()
	cfg := DefaultConfig()
	cfg.Mode = ModeFile
	cfg.LogFile = w.path
	cfg.Watches = []WatchConfig{{Path: "/dockward-rotation-test", Key: "rotation_test", Kind: KindConfig}}
	l := startSource(t, cfg, Deps{})
	serial := 0
	writeEvents := func(k int) {
		for i := 0; i < k; i++ {
			serial++
			stamp := fmt.Sprintf("msg=audit(1795750621.%03d:%d):", serial%1000, serial)
			fmt.Fprintf(w.f, "type=SYSCALL %s arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c items=1 ppid=1 pid=2 "+
				"auid=0 uid=0 comm=\"x\" exe=\"/x\" key=\"rotation_test\"\n", stamp)
			fmt.Fprintf(w.f, "type=PATH %s item=0 name=\"/dockward-rotation-test/%d\" nametype=CREATE\n", stamp, serial)
			fmt.Fprintf(w.f, "type=PROCTITLE %s proctitle=\"x\"\ntype=EOE %s \n", stamp, stamp)
		}
	}
	waitSeen := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(l.events()) < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("file mode saw %d events, want %d", len(l.events()), n)
			}
		}
	}
	for round := 0; round < 6; round++ {
		writeEvents(200)
		waitSeen(serial)
		if round%2 == 0 {
			// Written right before the rename: still read from the old file.
			writeEvents(5)
			w.renameRotate()
		} else {
			// copytruncate loses what is written between its copy and its
			// truncation by its nature, so the reader has caught up first.
			w.copyTruncate()
		}
		writeEvents(300) // the new file grows past the old offset at once
	}
	waitSeen(serial)
	time.Sleep(300 * time.Millisecond) // anything read twice would show up now
	count := map[uint32]int{}
	for _, s := range l.events() {
		if s.key != "rotation_test" {
			t.Fatalf("event %+v has key %q", s.ev, s.key)
		}
		count[s.ev.Serial]++
	}
	for i := 1; i <= serial; i++ {
		if c := count[uint32(i)]; c != 1 {
			t.Errorf("serial %d classified %d times", i, c)
		}
	}
	if n := len(l.events()); n != serial {
		t.Errorf("classified %d events, wrote %d", n, serial)
	}
	if got := eventTotal(t, l.src.m, "rotation_test", false); got != float64(serial) {
		t.Errorf("dockward_audit_events_total{key=rotation_test} = %v, want %d", got, serial)
	}
	if gaps, bad := counterValue(t, l.src.m.sequenceGaps), counterValue(t, l.src.m.parseErrors); gaps != 0 || bad != 0 {
		t.Errorf("sequence gaps %v, parse errors %v; want 0 and 0", gaps, bad)
	}
}
