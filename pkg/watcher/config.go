package watcher

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

// Config is the `host` section of the agent's config file.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// StateDir keeps the binary baseline across restarts (systemd's
	// StateDirectory=dockward gives /var/lib/dockward).
	StateDir string `yaml:"state_dir"`
	// RescanInterval is the backstop rescan for what fsnotify misses.
	RescanInterval time.Duration `yaml:"rescan_interval"`
	// Debounce gathers a burst of file events (an editor's save, a package
	// upgrade) into one judgement.
	Debounce time.Duration `yaml:"debounce"`
	// ExtraFiles are more files to hold to an owner and a maximum mode.
	ExtraFiles []ExtraFile `yaml:"extra_files"`
	// BinaryDirs are searched for Docker's binaries before the standard
	// PATH directories.
	BinaryDirs []string `yaml:"binary_dirs"`
	// TrustedDockerUsers may control dockerd through the API socket's
	// group (CIS 1.1.2); any other member is reported. Without a list the
	// members are reported as info, by name.
	TrustedDockerUsers []string `yaml:"trusted_docker_users"`
	// MinimumDockerVersion is the oldest Docker release allowed (CIS 1.2.2),
	// such as "24.0"; empty leaves the check manual.
	MinimumDockerVersion string `yaml:"minimum_docker_version"`
}

var minimumVersionRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}$`)

// ExtraFile is one site-specific file rule.
type ExtraFile struct {
	Path  string `yaml:"path"`
	Owner string `yaml:"owner"` // user name or uid; default root
	Group string `yaml:"group"` // group name or gid; default root
	Mode  string `yaml:"mode"`  // most permissive octal mode allowed, e.g. "0644"
}

// DefaultConfig is the built-in default.
func DefaultConfig() Config {
	return Config{
		Enabled:        true,
		StateDir:       "/var/lib/dockward",
		RescanInterval: 5 * time.Minute,
		Debounce:       200 * time.Millisecond,
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if !path.IsAbs(c.StateDir) {
		errs = append(errs, findings.ConfigErrorf(Name+".state_dir", "%q must be an absolute path, such as /var/lib/dockward", c.StateDir))
	}
	if c.RescanInterval < time.Second {
		errs = append(errs, findings.ConfigErrorf(Name+".rescan_interval", "%s is too short; use at least 1s (default 5m)", c.RescanInterval))
	}
	if c.Debounce < 0 || c.Debounce > 10*time.Second {
		errs = append(errs, findings.ConfigErrorf(Name+".debounce", "%s must be between 0s and 10s (default 200ms)", c.Debounce))
	}
	if c.MinimumDockerVersion != "" && !minimumVersionRe.MatchString(c.MinimumDockerVersion) {
		errs = append(errs, findings.ConfigErrorf(Name+".minimum_docker_version", "%q is not a release number such as 24.0 or 27.3.1", c.MinimumDockerVersion))
	}
	for i, u := range c.TrustedDockerUsers {
		if u == "" || strings.ContainsAny(u, ": \t\n") {
			errs = append(errs, findings.ConfigErrorf(fmt.Sprintf("%s.trusted_docker_users[%d]", Name, i), "%q is not a user name", u))
		}
	}
	for i, d := range c.BinaryDirs {
		if !path.IsAbs(d) {
			errs = append(errs, findings.ConfigErrorf(fmt.Sprintf("%s.binary_dirs[%d]", Name, i), "%q must be an absolute path", d))
		}
	}
	for i, f := range c.ExtraFiles {
		if err := f.validate(); err != nil {
			errs = append(errs, &findings.ConfigError{Key: fmt.Sprintf("%s.extra_files[%d]", Name, i), Err: err})
		}
	}
	return errors.Join(errs...)
}

func (f ExtraFile) validate() error {
	if !path.IsAbs(f.Path) {
		return fmt.Errorf("path: %q must be an absolute host path", f.Path)
	}
	if _, err := f.maxMode(); err != nil {
		return err
	}
	return nil
}

func (f ExtraFile) maxMode() (uint32, error) {
	if f.Mode == "" {
		return 0o644, nil
	}
	m, err := strconv.ParseUint(f.Mode, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode: %q is not an octal file mode such as \"0644\"", f.Mode)
	}
	return uint32(m), nil
}
