// Package daemonjson reads Docker's daemon.json as strictly as dockerd does:
// a file dockerd would refuse to start with is an error here too, and the
// error names what is wrong and where (line and column).
package daemonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxSize is the largest daemon.json the reader parses. Real files are a
// few hundred bytes; a bigger one is refused so that a runaway or hostile
// file cannot make the agent allocate without bound.
const MaxSize = 1 << 20

// Ulimit is one entry of "default-ulimits".
type Ulimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

// Config holds the daemon.json settings dockward judges. Pointers tell "set
// to false" apart from "absent" (dockerd's default then applies).
type Config struct {
	AuthorizationPlugins []string          `json:"authorization-plugins"`
	CgroupParent         *string           `json:"cgroup-parent"`
	Containerd           *string           `json:"containerd"`
	DataRoot             *string           `json:"data-root"`
	Debug                *bool             `json:"debug"`
	DefaultUlimits       map[string]Ulimit `json:"default-ulimits"`
	Experimental         *bool             `json:"experimental"`
	Group                *string           `json:"group"`
	Hosts                []string          `json:"hosts"`
	ICC                  *bool             `json:"icc"`
	InsecureRegistries   []string          `json:"insecure-registries"`
	IPTables             *bool             `json:"iptables"`
	LiveRestore          *bool             `json:"live-restore"`
	LogDriver            *string           `json:"log-driver"`
	LogLevel             *string           `json:"log-level"`
	NoNewPrivileges      *bool             `json:"no-new-privileges"`
	Pidfile              *string           `json:"pidfile"`
	SeccompProfile       *string           `json:"seccomp-profile"`
	StorageDriver        *string           `json:"storage-driver"`
	StorageOpts          []string          `json:"storage-opts"`
	TLS                  *bool             `json:"tls"`
	TLSCACert            *string           `json:"tlscacert"`
	TLSCert              *string           `json:"tlscert"`
	TLSKey               *string           `json:"tlskey"`
	TLSVerify            *bool             `json:"tlsverify"`
	UserlandProxy        *bool             `json:"userland-proxy"`
	UsernsRemap          *string           `json:"userns-remap"`

	// Keys lists every top-level key present, so the caller can detect a
	// directive given both as a flag and in the file (dockerd refuses that).
	Keys []string `json:"-"`
}

// Error is a daemon.json that dockerd would refuse. Line and Column are
// 1-based and point at the offending byte (0 when the error has no
// position, such as an oversized file).
type Error struct {
	Line, Column int
	Offset       int64
	Msg          string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Read reads and parses at most MaxSize bytes from r.
func Read(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read daemon.json: %w", err)
	}
	if len(data) > MaxSize {
		return nil, &Error{Msg: fmt.Sprintf("file is larger than %d bytes; refusing to parse it (a daemon.json is normally a few hundred bytes)", MaxSize)}
	}
	return Parse(data)
}

// Parse judges data as dockerd would and returns the settings dockward
// needs. An empty (or whitespace-only) file is an empty configuration, as
// it is for dockerd.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxSize {
		return nil, &Error{Msg: fmt.Sprintf("file is larger than %d bytes; refusing to parse it", MaxSize)}
	}
	// dockerd strips a UTF-8 byte order mark written by some editors.
	body := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	offsetShift := int64(len(data) - len(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return &Config{}, nil
	}
	if !utf8.Valid(body) {
		off := int64(invalidUTF8Offset(body))
		return nil, posError(data, off+offsetShift, "file is not valid UTF-8 text (binary content?)")
	}
	if err := checkSyntax(body); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, posError(data, pe.Offset+offsetShift, pe.Msg)
		}
		return nil, err
	}
	fields, err := topLevel(body)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, posError(data, pe.Offset+offsetShift, pe.Msg)
		}
		return nil, err
	}
	cfg := &Config{}
	targets := cfg.targets()
	for _, f := range fields {
		cfg.Keys = append(cfg.Keys, f.key)
		t, judged := targets[f.key]
		if _, known := knownKeys[f.key]; !known && !judged {
			return nil, posError(data, f.offset+offsetShift,
				fmt.Sprintf("unknown directive %q: dockerd refuses keys that match no configuration option", f.key))
		}
		if !judged {
			continue
		}
		if err := json.Unmarshal(f.value, t); err != nil {
			return nil, posError(data, f.offset+offsetShift, fmt.Sprintf("directive %q: %s", f.key, typeMessage(err)))
		}
	}
	sort.Strings(cfg.Keys)
	return cfg, nil
}

func (c *Config) targets() map[string]any {
	return map[string]any{
		"authorization-plugins": &c.AuthorizationPlugins,
		"cgroup-parent":         &c.CgroupParent,
		"containerd":            &c.Containerd,
		"data-root":             &c.DataRoot,
		"debug":                 &c.Debug,
		"default-ulimits":       &c.DefaultUlimits,
		"experimental":          &c.Experimental,
		"group":                 &c.Group,
		"hosts":                 &c.Hosts,
		"icc":                   &c.ICC,
		"insecure-registries":   &c.InsecureRegistries,
		"iptables":              &c.IPTables,
		"live-restore":          &c.LiveRestore,
		"log-driver":            &c.LogDriver,
		"log-level":             &c.LogLevel,
		"no-new-privileges":     &c.NoNewPrivileges,
		"pidfile":               &c.Pidfile,
		"seccomp-profile":       &c.SeccompProfile,
		"storage-driver":        &c.StorageDriver,
		"storage-opts":          &c.StorageOpts,
		"tls":                   &c.TLS,
		"tlscacert":             &c.TLSCACert,
		"tlscert":               &c.TLSCert,
		"tlskey":                &c.TLSKey,
		"tlsverify":             &c.TLSVerify,
		"userland-proxy":        &c.UserlandProxy,
		"userns-remap":          &c.UsernsRemap,
	}
}

// checkSyntax decodes the whole document once to find syntax errors,
// truncation and trailing data, with their offsets.
func checkSyntax(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return &Error{Offset: se.Offset - 1, Msg: "invalid JSON: " + se.Error()}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &Error{Offset: int64(len(bytes.TrimRight(body, " \t\r\n"))), Msg: "invalid JSON: the file ends before the object is closed (truncated?)"}
		default:
			return &Error{Offset: dec.InputOffset(), Msg: "invalid JSON: " + err.Error()}
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return &Error{Offset: firstNonSpace(body), Msg: "the top level must be a JSON object {...}"}
	}
	rest := body[dec.InputOffset():]
	if trimmed := bytes.TrimLeft(rest, " \t\r\n"); len(trimmed) > 0 {
		return &Error{Offset: dec.InputOffset() + int64(len(rest)-len(trimmed)), Msg: "unexpected data after the closing brace of the top-level object"}
	}
	return nil
}

type field struct {
	key    string
	offset int64 // of the key's opening quote
	value  json.RawMessage
}

// topLevel lists the object's keys with their positions. The document is
// known to be a syntactically valid object.
func topLevel(body []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, fmt.Errorf("daemon.json: %w", err)
	}
	var out []field
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("daemon.json: %w", err)
		}
		key, _ := tok.(string)
		keyOff := start + int64(bytes.IndexByte(body[start:], '"'))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &Error{Offset: dec.InputOffset(), Msg: "invalid JSON: " + err.Error()}
		}
		out = append(out, field{key: key, offset: keyOff, value: raw})
	}
	return out, nil
}

func typeMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		where := ""
		if te.Field != "" {
			where = " in " + te.Field
		}
		return fmt.Sprintf("wrong type%s: got a JSON %s, want %s", where, te.Value, goTypeName(te.Type.String()))
	}
	return err.Error()
}

func goTypeName(t string) string {
	switch {
	case strings.Contains(t, "bool"):
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array of strings"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case strings.Contains(t, "string"):
		return "a string"
	case strings.Contains(t, "int"):
		return "an integer"
	}
	return t
}

func posError(data []byte, off int64, msg string) *Error {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else if b&0xC0 != 0x80 { // count runes, not UTF-8 continuation bytes
			col++
		}
	}
	return &Error{Line: line, Column: col, Offset: off, Msg: msg}
}

func firstNonSpace(b []byte) int64 {
	return int64(len(b) - len(bytes.TrimLeft(b, " \t\r\n")))
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}
