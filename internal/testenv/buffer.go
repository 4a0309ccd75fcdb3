package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects what a process or a logger writes while a test reads
// it concurrently. It is a zapcore.WriteSyncer and an io.Writer.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Sync implements zapcore.WriteSyncer; there is nothing to flush.
func (b *LogBuffer) Sync() error { return nil }

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// GrepLines returns the lines of s that contain any of subs, for failure
// messages that quote only the relevant part of a log or a /metrics body.
func GrepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
