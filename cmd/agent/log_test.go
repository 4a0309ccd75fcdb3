package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestLoggerJSONHasStableKeys(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.With(zap.String("source", "agent")).Info("hello")
	log.Debug("not at info")
	// The exporter-toolkit's slog lines land in the same stream, tagged.
	slogFor(log, "http").Info("Listening on", "address", "127.0.0.1:9917")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (debug filtered):\n%s", len(lines), buf.String())
	}
	for i, want := range []struct{ msg, source string }{{"hello", "agent"}, {"Listening on", "http"}} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, lines[i])
		}
		for _, k := range []string{"ts", "level", "msg", "source"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, lines[i])
			}
		}
		if m["msg"] != want.msg || m["source"] != want.source {
			t.Errorf("line %d = %s, want msg %q source %q", i, lines[i], want.msg, want.source)
		}
	}
}

func TestLoggerConsoleAndBadInput(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "warn", "console")
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("careful", zap.String("source", "agent"))
	if out := buf.String(); !strings.Contains(out, "WARN") || !strings.Contains(out, "careful") || strings.HasPrefix(out, "{") {
		t.Errorf("console line = %q", out)
	}
	if _, err := newLogger(&buf, "loud", "json"); err == nil || !strings.Contains(err.Error(), flagLogLevel) {
		t.Errorf("bad level: %v, want an error naming --%s", err, flagLogLevel)
	}
	if _, err := newLogger(&buf, "info", "xml"); err == nil || !strings.Contains(err.Error(), flagLogFormat) {
		t.Errorf("bad format: %v, want an error naming --%s", err, flagLogFormat)
	}
}
