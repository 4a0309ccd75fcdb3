package testenv

import (
	"bytes"
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
