package daemonjson

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cfg, err := Parse([]byte("\xef\xbb\xbf" + `{
  "icc": false,
  "log-level": "info",
  "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
  "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
  "log-opts": {"max-size": "10m"},
  "mtu": 1400
}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.ICC == nil || *cfg.ICC {
		t.Errorf("icc = %v, want false", cfg.ICC)
	}
	if cfg.LogLevel == nil || *cfg.LogLevel != "info" {
		t.Errorf("log-level = %v", cfg.LogLevel)
	}
	if len(cfg.Hosts) != 2 || cfg.Hosts[1] != "tcp://0.0.0.0:2376" {
		t.Errorf("hosts = %v", cfg.Hosts)
	}
	if cfg.DefaultUlimits["nofile"].Hard != 64000 {
		t.Errorf("default-ulimits = %v", cfg.DefaultUlimits)
	}
	if cfg.LiveRestore != nil {
		t.Errorf("live-restore absent but decoded as %v", *cfg.LiveRestore)
	}
	want := []string{"default-ulimits", "hosts", "icc", "log-level", "log-opts", "mtu"}
	if strings.Join(cfg.Keys, ",") != strings.Join(want, ",") {
		t.Errorf("Keys = %v, want %v", cfg.Keys, want)
	}
}

func TestParseEmptyIsEmptyConfig(t *testing.T) {
	for _, in := range []string{"", "  \n", "{}"} {
		cfg, err := Parse([]byte(in))
		if err != nil || cfg == nil || len(cfg.Keys) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want empty config", in, cfg, err)
		}
	}
}

func TestParseErrorsNamePosition(t *testing.T) {
	cases := []struct {
		name, in    string
		line, col   int
		msgContains string
	}{
		{"trailing comma", "{\n  \"icc\": false,\n}", 3, 1, "invalid JSON"},
		{"truncated", "{\n  \"icc\": false,\n  \"log-level\": \"in", 3, 19, "truncated"},
		{"unknown key", "{\n  \"icc\": false,\n  \"log-levle\": \"info\"\n}", 3, 3, `unknown directive "log-levle"`},
		{"wrong type", "{\"icc\": \"no\"}", 1, 2, `directive "icc": wrong type`},
		{"not an object", "  [1,2]", 1, 3, "top level must be a JSON object"},
		{"trailing data", "{}\n{}", 2, 1, "after the closing brace"},
		{"binary", "{\"icc\":\xff\xfe\x00}", 1, 8, "not valid UTF-8"},
		{"nul bytes", "\x00\x01\x02", 1, 1, "invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %v, want *Error", c.in, err)
			}
			if pe.Line != c.line || pe.Column != c.col || !strings.Contains(pe.Msg, c.msgContains) {
				t.Errorf("got %q at %d:%d, want %q at %d:%d", pe.Msg, pe.Line, pe.Column, c.msgContains, c.line, c.col)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("Error() = %q, want it to start with the position", err.Error())
			}
		})
	}
}

func TestReadRefusesOversizedFile(t *testing.T) {
	big := append([]byte(`{"labels": ["`), bytes.Repeat([]byte("a"), 10<<20)...)
	big = append(big, []byte(`"]}`)...)
	_, err := Read(bytes.NewReader(big))
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "larger than") {
		t.Fatalf("Read(10 MB) error = %v, want a size error", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"icc": false}`, `{"hosts": ["tcp://0.0.0.0:2375"], "tlsverify": true}`,
		`{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1, "Soft": 1}}}`,
		"{\n  \"icc\": false,\n}", `{"icc": `, "\xef\xbb\xbf{}", "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without an error")
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a positioned *Error", err)
			}
			if pe.Offset < 0 || pe.Offset > int64(len(data)) || pe.Line < 1 || pe.Column < 1 {
				t.Fatalf("position out of range: %+v for %d bytes", pe, len(data))
			}
		}
	})
}
