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
			var mu sync.Mutex
			got := map[string]int{}
			var order []string
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- tl.follow(ctx, func(l string) {
					mu.Lock()
					got[strings.TrimSpace(l)]++
					order = append(order, l)
					mu.Unlock()
				}, func() {})
			}()
			waitFor := func(n int) {
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					mu.Lock()
					c := len(order)
					mu.Unlock()
					if c >= n {
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
				mu.Lock()
				c := len(order)
				mu.Unlock()
				t.Fatalf("timed out waiting for %d lines, have %d", n, c)
			}
			total := 0
			for round := 0; round < 5; round++ {
				w.write(500)
				total += 500
				// Rotations are minutes apart in practice: let the tailer
				// catch up, then write more lines right before rotating;
				// they must still be read from the old file.
				waitFor(total)
				w.write(7)
				total += 7
				if rot == "rename" {
					w.renameRotate()
				} else {
					// copytruncate: lines written between the copy and the
					// truncation are lost by design of copytruncate itself,
					// so the tailer must have read them before.
					waitFor(total)
					w.copyTruncate()
				}
				// The writer refills the file past the old offset at once.
				w.write(600)
				total += 600
			}
			waitFor(total)
			time.Sleep(50 * time.Millisecond)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(order) != total {
				var dups []string
				for l, c := range got {
					if c > 1 {
						dups = append(dups, l)
					}
				}
				t.Fatalf("read %d lines, want %d; read twice: %d, e.g. %v", len(order), total, len(dups), dups[:min(5, len(dups))])
			}
			for i := 11; i <= w.n; i++ {
				if c := got[fmt.Sprintf("line %d", i)]; c != 1 {
					t.Fatalf("line %d read %d times", i, c)
				}
			}
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
