package auditd

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

// Mode is how the source reaches the kernel's audit records.
type Mode string

const (
	// ModeAuto picks unicast when no audit daemon holds the kernel's audit
	// PID, and multicast when one does or the configuration is locked.
	ModeAuto Mode = "auto"
	// ModeUnicast makes dockward the audit daemon: it installs its rules,
	// tunes the backlog and restores everything it changed on exit.
	ModeUnicast Mode = "unicast"
	// ModeMulticast reads a copy of the records next to auditd, read-only.
	ModeMulticast Mode = "multicast"
	// ModeFile tails auditd's log file across rotations.
	ModeFile Mode = "file"
	// ModeOff disables the source.
	ModeOff Mode = "off"
)

// Modes lists the modes a running source can be in (auto resolves to one).
var Modes = []Mode{ModeUnicast, ModeMulticast, ModeFile, ModeOff}

// Config is the `audit` section of the agent's config file.
type Config struct {
	Enabled bool `yaml:"enabled"`
	Mode    Mode `yaml:"mode"`
	// BacklogLimit is the kernel queue length set in unicast mode.
	BacklogLimit uint32 `yaml:"backlog_limit"`
	// LogFile is the auditd log tailed in file mode.
	LogFile string `yaml:"log_file"`
	// LogFileFromStart replays the whole log file at start instead of
	// following it from its end.
	LogFileFromStart bool `yaml:"log_file_from_start"`
	// ExpectedWriters maps a watch key to the writers whose events are
	// routine for it: absolute executable paths, or bare names resolved
	// like the watched binaries. It replaces the built-in list per key.
	ExpectedWriters map[string][]string `yaml:"expected_writers"`
	// Watches adds watches to the built-in CIS set.
	Watches []WatchConfig `yaml:"watches"`
	// Detections turns on the runtime detections: syscall and file rules
	// for the calls a container escape needs (installed in unicast mode,
	// checked for coverage in every mode), and their events.
	Detections bool `yaml:"detections"`
	// ExpectedActors maps a detection to the processes whose calls are
	// routine for it: absolute executable paths or bare program names,
	// "kernel:NAME" for a program only the kernel starts. It replaces the
	// built-in list per detection.
	ExpectedActors map[string][]string `yaml:"expected_actors"`
	// StatusInterval is how often the kernel's lost counter and backlog
	// are polled.
	StatusInterval time.Duration `yaml:"status_interval"`
	// RuleCheckInterval is how often rule coverage is checked (and, in
	// unicast mode, removed rules reinstalled).
	RuleCheckInterval time.Duration `yaml:"rule_check_interval"`
	// ReassemblyTimeout bounds how long records of one event wait for the
	// rest of the event.
	ReassemblyTimeout time.Duration `yaml:"reassembly_timeout"`
}

// WatchConfig is one extra watch from config.
type WatchConfig struct {
	Path string `yaml:"path"`
	Key  string `yaml:"key"`
	// Kind is config, binary or data; it sets the log level of unexpected
	// events (binary: error, others: warn).
	Kind WatchKind `yaml:"kind"`
}

// DefaultConfig is the built-in default.
func DefaultConfig() Config {
	return Config{
		Enabled:           true,
		Mode:              ModeAuto,
		BacklogLimit:      8192,
		Detections:        true,
		LogFile:           "/var/log/audit/audit.log",
		StatusInterval:    5 * time.Second,
		RuleCheckInterval: 30 * time.Second,
		ReassemblyTimeout: 2 * time.Second,
	}
}

var keyPattern = regexp.MustCompile(`^[a-z0-9_]{1,31}$`)

// Validate reports every invalid setting, naming its key.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeAuto, ModeUnicast, ModeMulticast, ModeFile, ModeOff:
	default:
		errs = append(errs, findings.ConfigErrorf(Name+".mode", "%q is not one of auto, unicast, multicast, file, off", c.Mode))
	}
	if c.BacklogLimit < 64 || c.BacklogLimit > 1<<20 {
		errs = append(errs, findings.ConfigErrorf(Name+".backlog_limit", "%d is out of range, want 64..1048576", c.BacklogLimit))
	}
	if c.Mode == ModeFile && !filepath.IsAbs(c.LogFile) {
		errs = append(errs, findings.ConfigErrorf(Name+".log_file", "%q must be an absolute path in file mode", c.LogFile))
	}
	for name, d := range map[string]time.Duration{"status_interval": c.StatusInterval,
		"rule_check_interval": c.RuleCheckInterval, "reassembly_timeout": c.ReassemblyTimeout} {
		if d < 100*time.Millisecond {
			errs = append(errs, findings.ConfigErrorf(Name+"."+name, "%s is too short, want at least 100ms", d))
		}
	}
	keys := map[string]bool{}
	for _, w := range builtinWatches {
		keys[w.Key] = true
	}
	for i, w := range c.Watches {
		if !filepath.IsAbs(w.Path) {
			errs = append(errs, findings.ConfigErrorf(fmt.Sprintf("%s.watches[%d].path", Name, i), "%q must be an absolute path", w.Path))
		}
		if !keyPattern.MatchString(w.Key) {
			errs = append(errs, findings.ConfigErrorf(fmt.Sprintf("%s.watches[%d].key", Name, i), "%q must be 1-31 of a-z, 0-9 and _", w.Key))
		}
		switch w.Kind {
		case KindConfig, KindBinary, KindData:
		default:
			errs = append(errs, findings.ConfigErrorf(fmt.Sprintf("%s.watches[%d].kind", Name, i), "%q is not one of config, binary, data", w.Kind))
		}
		if strings.HasPrefix(w.Key, detectionKeyPrefix) {
			errs = append(errs, fmt.Errorf("audit.watches[%d].key: %q: keys starting with %q are the runtime detections'", i, w.Key, detectionKeyPrefix))
		}
		keys[w.Key] = true
	}
	errs = append(errs, validateExpectedActors(c.ExpectedActors)...)
	for key, writers := range c.ExpectedWriters {
		if !keys[key] {
			errs = append(errs, findings.ConfigErrorf(Name+".expected_writers", "unknown watch key %q", key))
		}
		for _, wr := range writers {
			if wr == "" || (!filepath.IsAbs(wr) && filepath.Base(wr) != wr) {
				errs = append(errs, findings.ConfigErrorf(Name+".expected_writers."+key, "%q must be an absolute path or a bare program name", wr))
			}
		}
	}
	return errors.Join(errs...)
}
