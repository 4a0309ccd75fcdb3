package inventory

import (
	"fmt"
	"sync"

	scalibrlog "github.com/google/osv-scalibr/log"
	"github.com/google/osv-scalibr/stats"
	"go.uber.org/zap"
)

// collector is the stats collector osv-scalibr's filesystem walk requires
// (a nil one panics). It keeps what an inventory must report: a database
// the extractor skipped as too large would otherwise look like an image
// without packages.
type collector struct {
	stats.NoopCollector
	mu     sync.Mutex
	tooBig []string
	failed []string
}

func (c *collector) AfterFileRequired(plugin string, s *stats.FileRequiredStats) {
	if s == nil || s.Result != stats.FileRequiredResultSizeLimitExceeded {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tooBig = append(c.tooBig, fmt.Sprintf("%s: /%s is %d bytes, over images.max_database_size", plugin, s.Path, s.FileSizeBytes))
}

func (c *collector) AfterFileExtracted(plugin string, s *stats.FileExtractedStats) {
	if s == nil || s.Result == stats.FileExtractedResultSuccess {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = append(c.failed, fmt.Sprintf("%s: /%s: %s", plugin, s.Path, s.Result))
}

func (c *collector) skips() []Skip {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Skip
	for _, d := range c.tooBig {
		out = append(out, Skip{ReasonDatabaseTooLarge, d})
	}
	for _, d := range c.failed {
		out = append(out, Skip{ReasonExtract, d})
	}
	return out
}

// logCapture routes osv-scalibr's process-wide logger into zap (debug for
// its chatter) for the duration of one extraction, and keeps that
// extraction's warnings and errors: a symlink the layer scanner refused or
// a database it could not parse is reported with the inventory.
type logCapture struct {
	mu   sync.Mutex
	log  *zap.Logger
	warn []string
}

// maxWarnings bounds what one inventory carries.
const maxWarnings = 20

var (
	capture     = &logCapture{log: zap.NewNop()}
	installOnce sync.Once
)

func captureLogs(log *zap.Logger) *logCapture {
	installOnce.Do(func() { scalibrlog.SetLogger(capture) })
	capture.mu.Lock()
	capture.log, capture.warn = log.With(zap.String("library", "osv-scalibr")), nil
	capture.mu.Unlock()
	return capture
}

// release ends the extraction: osv-scalibr's lines go nowhere until the
// next one, and the next extraction may start.
func (l *logCapture) release() {
	l.mu.Lock()
	l.log = zap.NewNop()
	l.mu.Unlock()
	extractMu.Unlock()
}

func (l *logCapture) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.warn...)
}

func (l *logCapture) keep(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Debug(msg)
	if len(l.warn) < maxWarnings {
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		l.warn = append(l.warn, msg)
	}
}

func (l *logCapture) chatter(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Debug(msg)
}

func (l *logCapture) Errorf(format string, args ...any) { l.keep(fmt.Sprintf(format, args...)) }
func (l *logCapture) Warnf(format string, args ...any)  { l.keep(fmt.Sprintf(format, args...)) }
func (l *logCapture) Infof(format string, args ...any)  { l.chatter(fmt.Sprintf(format, args...)) }
func (l *logCapture) Debugf(format string, args ...any) { l.chatter(fmt.Sprintf(format, args...)) }
func (l *logCapture) Error(args ...any)                 { l.keep(fmt.Sprint(args...)) }
func (l *logCapture) Warn(args ...any)                  { l.keep(fmt.Sprint(args...)) }
func (l *logCapture) Info(args ...any)                  { l.chatter(fmt.Sprint(args...)) }
func (l *logCapture) Debug(args ...any)                 { l.chatter(fmt.Sprint(args...)) }
