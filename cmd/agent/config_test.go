package main

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatalf("built-in defaults do not load: %v", err)
	}
	if !reflect.DeepEqual(cfg, defaultConfig()) {
		t.Errorf("loadConfig(\"\") = %+v, want the defaults %+v", cfg, defaultConfig())
	}
}

func TestParseConfigEmptyFileKeepsDefaults(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		cfg, err := parseConfig("empty.yml", []byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if !reflect.DeepEqual(cfg, defaultConfig()) {
			t.Errorf("%q: got %+v, want defaults", doc, cfg)
		}
	}
}

func TestParseConfigOverlaysDefaults(t *testing.T) {
	cfg, err := parseConfig("c.yml", []byte(`
containers:
  enabled: false
rules:
  container.no_healthcheck:
    severity: low
  container.cgroup_parent:
    disabled: true
exemptions:
  - rule: container.privileged
    container: "ci-*"
    labels: {team: infra}
    reason: CI runners need it
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Containers.Enabled {
		t.Error("containers.enabled: false was not applied")
	}
	if !reflect.DeepEqual(cfg.Audit, defaultConfig().Audit) || !reflect.DeepEqual(cfg.Host, defaultConfig().Host) {
		t.Error("sections absent from the file must keep their defaults")
	}
	if o := cfg.Rules["container.no_healthcheck"]; o.Severity == nil || *o.Severity != findings.Low {
		t.Errorf("severity override = %+v, want low", o)
	}
	if !cfg.Rules["container.cgroup_parent"].Disabled {
		t.Error("rule disable not applied")
	}
	want := findings.Exemption{Rule: "container.privileged", Container: "ci-*", Labels: map[string]string{"team": "infra"}, Reason: "CI runners need it"}
	if len(cfg.Exemptions) != 1 || !reflect.DeepEqual(cfg.Exemptions[0], want) {
		t.Errorf("exemptions = %+v, want [%+v]", cfg.Exemptions, want)
	}
}

// Every kind of bad input must be an error naming the file, the line and
// the key, and the loader must report all of them in one go.
func TestParseConfigErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string // each must appear in the error
	}{
		{"unknown top-level key", "contaners:\n  enabled: true\n",
			[]string{"bad.yml:1: key contaners: unknown key"}},
		{"unknown nested key", "containers:\n  enabled: true\n  bogus: 1\n",
			[]string{"bad.yml:3: key containers.bogus: unknown key"}},
		{"wrong type", "audit:\n  enabled: maybe\n",
			[]string{`bad.yml:2: key audit.enabled: want true or false, got "maybe"`}},
		{"section not a mapping", "host: 3\n",
			[]string{`bad.yml:1: key host: want a mapping of keys, got "3"`}},
		{"unknown rule in rules", "rules:\n  container.nope:\n    disabled: true\n",
			[]string{`bad.yml:2: key rules.container.nope: unknown rule ID "container.nope"`}},
		{"unknown rule in exemption", "exemptions:\n  - rule: nope\n    path: /x\n    reason: r\n",
			[]string{`bad.yml:2: key exemptions.0.rule: unknown rule ID "nope"`}},
		{"exemption without reason", "exemptions:\n  - rule: container.privileged\n    container: x\n",
			[]string{"bad.yml:2: key exemptions.0: reason is required"}},
		{"exemption without selector", "exemptions:\n  - rule: container.privileged\n    reason: r\n",
			[]string{"bad.yml:2: key exemptions.0: needs a selector"}},
		{"bad severity", "rules:\n  container.privileged:\n    severity: extreme\n",
			[]string{`bad.yml:3: key rules.container.privileged.severity: unknown severity "extreme"`}},
		{"duplicate key", "containers:\n  enabled: true\n  enabled: false\n",
			[]string{"bad.yml:3: key containers.enabled: key appears twice"}},
		{"syntax error", "containers: [\n",
			[]string{"bad.yml:", "invalid YAML"}},
		{"two documents", "containers: {}\n---\naudit: {}\n",
			[]string{"bad.yml:2: the file holds more than one YAML document"}},
		{"several problems at once", "contaners: 1\naudit:\n  enabled: maybe\nrules:\n  x.y: {}\n",
			[]string{"bad.yml:1: key contaners", "bad.yml:3: key audit.enabled", "bad.yml:5: key rules.x.y"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("bad.yml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.doc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// durationHolder stands in for a source section with a duration, so the
// duration handling is tested whatever fields the sources have today.
type durationHolder struct {
	Every   time.Duration  `yaml:"every"`
	Retries int            `yaml:"retries"`
	Nested  durationNested `yaml:"nested"`
}

type durationNested struct {
	Timeout time.Duration `yaml:"timeout"`
}

func TestDecodeStrictDurations(t *testing.T) {
	var ok durationHolder
	if _, err := decodeStrict([]byte("every: 5m\nnested:\n  timeout: 1h30m\n"), &ok); err != nil {
		t.Fatal(err)
	}
	if ok.Every != 5*time.Minute || ok.Nested.Timeout != 90*time.Minute {
		t.Errorf("decoded %+v", ok)
	}
	for doc, want := range map[string]string{
		"every: 5x\n":                           `line 1: key every: invalid duration "5x"`,
		"every: 300\n":                          `line 1: key every: invalid duration "300"`,
		"nested:\n  timeout: [1]\n":             "line 2: key nested.timeout: want a duration",
		"retries: many\n":                       `line 1: key retries: want an integer, got "many"`,
		"retries: 1\nretries: 2\n":              "line 2: key retries: key appears twice",
		"nested:\n  timout: 1s\n":               "line 2: key nested.timout: unknown key; known keys here: timeout",
		"every: 1s\nevery_x: true\n":            "line 2: key every_x: unknown key",
		"nested: &a {timeout: 1s}\n":            "",
		"every: &d 2s\nnested: {timeout: *d}\n": "",
	} {
		var h durationHolder
		_, err := decodeStrict([]byte(doc), &h)
		if want == "" {
			if err != nil {
				t.Errorf("%q: unexpected error %v", doc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", doc, err, want)
		}
	}
}

// config.example.yml documents every key; loading it strictly keeps it from
// rotting as sources add settings.
func TestExampleConfigLoads(t *testing.T) {
	const path = "../../config.example.yml"
	if _, err := loadConfig(path); err != nil {
		t.Fatalf("%s does not load: %v", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withExamples := enableExamples(string(data))
	if _, err := parseConfig(path+" (examples enabled)", []byte(withExamples)); err != nil {
		t.Fatalf("%s with its #~ examples enabled does not load: %v\n%s", path, err, withExamples)
	}
	if withExamples == string(data) {
		t.Fatal("config.example.yml has no #~ examples; the exemption and override syntax must be shown")
	}
	// Every key of the example carries a comment: on the nearest non-blank
	// line above it, or at the end of its own line.
	lines := strings.Split(string(data), "\n")
	key := regexp.MustCompile(`^\s*(- )?[a-z_.]+:`)
	for i, l := range lines {
		if !key.MatchString(l) || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		prev := ""
		for j := i - 1; j >= 0 && prev == ""; j-- {
			prev = strings.TrimSpace(lines[j])
		}
		if !strings.Contains(l, " #") && !strings.HasPrefix(prev, "#") {
			t.Errorf("config.example.yml:%d: key without a comment: %s", i+1, l)
		}
	}
}

// FuzzDecodeConfig: no input may panic the loader, and every rejected input
// gets an error that names the file.
func FuzzDecodeConfig(f *testing.F) {
	for _, seed := range []string{
		"", allSourcesOff, "rules:\n  container.privileged:\n    severity: low\n",
		"exemptions:\n  - rule: container.privileged\n    container: x\n    reason: r\n",
		"containers: [\n", "a: &x [*x]\n", "audit: {enabled: yes}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseConfig("fuzz.yml", data)
		if err != nil && !strings.Contains(err.Error(), "fuzz.yml") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}

// A source's own validation error points at the line of the key it names.
func TestParseConfigSectionValidationNamesLine(t *testing.T) {
	_, err := parseConfig("v.yml", []byte("host:\n  enabled: true\n  rootfs: relative/path\n"))
	if err == nil || !strings.Contains(err.Error(), "v.yml:3: key host.rootfs:") {
		t.Errorf("error %v, want it to point at v.yml:3 key host.rootfs", err)
	}
	_, err = parseConfig("v.yml", []byte("containers:\n  inventory_concurrency: 100000\n"))
	if err == nil || !strings.Contains(err.Error(), "v.yml:2: key containers.inventory_concurrency: 100000 is out of range") {
		t.Errorf("error %v, want it to point at v.yml:2 key containers.inventory_concurrency", err)
	}
}

// enableExamples uncomments the "#~" example lines of config.example.yml and
// turns the empty value ({} or []) just above each example block into the
// block's parent key.
func enableExamples(doc string) string {
	lines := strings.Split(doc, "\n")
	isExample := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "#~") }
	for i, l := range lines {
		if isExample(l) {
			lines[i] = strings.Replace(l, "#~", "", 1)
			continue
		}
		if i+1 < len(lines) && isExample(lines[i+1]) {
			lines[i] = strings.TrimSuffix(strings.TrimSuffix(l, " {}"), " []")
		}
	}
	return strings.Join(lines, "\n")
}

// The line comes from the key a *findings.ConfigError carries, never from
// its message: a typed error nested in a list points at its entry, and an
// untyped error that merely reads like "key: message" stays on the section.
func TestSectionErrorsAreLocatedByTheirKey(t *testing.T) {
	var cfg Config
	root, err := decodeStrict([]byte("host:\n  extra_files:\n    - path: /etc/x\n    - path: /etc/y\n      mode: \"0999\"\n"), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	typed := &findings.ConfigError{Key: "host.extra_files[1]", Err: errors.New(`mode: "0999" is not an octal file mode`)}
	if got, want := inFile("c.yml", locateSectionError(root, "host", typed)).Error(),
		`c.yml:4: key host.extra_files.1: mode: "0999" is not an octal file mode`; got != want {
		t.Errorf("typed error located as %q, want %q", got, want)
	}
	untyped := errors.New("extra_files[1]: looks like a key")
	if got, want := inFile("c.yml", locateSectionError(root, "host", untyped)).Error(),
		"c.yml:1: key host: extra_files[1]: looks like a key"; got != want {
		t.Errorf("untyped error located as %q, want %q (its text must not be parsed)", got, want)
	}
	absent := &findings.ConfigError{Key: "host.state_dir", Err: errors.New("must be absolute")}
	if got, want := inFile("c.yml", locateSectionError(root, "host", absent)).Error(),
		"c.yml:1: key host.state_dir: must be absolute"; got != want {
		t.Errorf("error for a key the file lacks located as %q, want %q (the section's line)", got, want)
	}
}
