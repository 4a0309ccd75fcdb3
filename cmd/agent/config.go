package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/dockward/dockward/pkg/auditd"
	"github.com/dockward/dockward/pkg/containers"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/hostfs"
	"github.com/dockward/dockward/pkg/images"
	"github.com/dockward/dockward/pkg/watcher"
)

// Config is the whole config file. Each source owns its section's type; a
// section's key is the source's Name (a struct tag cannot name a constant,
// so TestConfigSectionsAreSourceNames holds them together).
type Config struct {
	// RootFS is where the host's / is mounted, like node_exporter's
	// --path.rootfs: "/" on the host, "/host" in a container that mounts
	// the host's / read-only there. Every source looks up every host path
	// under it, with symlinks resolved inside it.
	RootFS     string            `yaml:"rootfs"`
	Containers containers.Config `yaml:"containers"`
	Audit      auditd.Config     `yaml:"audit"`
	Host       watcher.Config    `yaml:"host"`
	Images     images.Config     `yaml:"images"`
	// Vulns is the images source's OSV data (see vulnsSection).
	Vulns           images.VulnsConfig `yaml:"vulns"`
	findings.Policy `yaml:",inline"`
}

// defaultConfig is the built-in configuration: every source's defaults and
// an empty policy. The agent runs on it when no --config.file is given.
func defaultConfig() Config {
	return Config{
		RootFS:     "/",
		Containers: containers.DefaultConfig(),
		Audit:      auditd.DefaultConfig(),
		Host:       watcher.DefaultConfig(),
		Images:     images.DefaultConfig(),
		Vulns:      images.DefaultVulnsConfig(),
	}
}

// loadConfig reads the config file at path over the built-in defaults. An
// empty path means "defaults only". Every error names the file, and where it
// can, the line and the key.
func loadConfig(path string) (Config, error) {
	if path == "" {
		cfg := defaultConfig()
		if err := cfg.validate(nil); err != nil {
			return Config{}, fmt.Errorf("built-in defaults: %w", err)
		}
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config file: %w", err)
	}
	return parseConfig(path, data)
}

// parseConfig decodes data (named name in errors) strictly over the defaults.
func parseConfig(name string, data []byte) (Config, error) {
	cfg := defaultConfig()
	root, err := decodeStrict(data, &cfg)
	// Validate even after decode errors, so one run reports every problem.
	err = errors.Join(err, cfg.validate(root))
	if err != nil {
		return Config{}, inFile(name, err)
	}
	return cfg, nil
}

// validate runs each section's own validation and the policy's, pointing at
// the line that holds the offending key when the file has one.
func (c Config) validate(root *node) error {
	var errs []error
	if _, err := hostfs.New(c.RootFS); err != nil {
		errs = append(errs, locate(root, err, "rootfs"))
	}
	sections := []struct {
		key string
		err error
	}{
		{containers.Name, c.Containers.Validate()},
		{auditd.Name, c.Audit.Validate()},
		{watcher.Name, c.Host.Validate()},
		{images.Name, c.Images.Validate()},
		{vulnsSection, c.Vulns.Validate()},
	}
	for _, s := range sections {
		if s.err == nil {
			continue
		}
		for _, e := range flatten(s.err) {
			errs = append(errs, locateSectionError(root, s.key, e))
		}
	}
	ids := make([]string, 0, len(c.Rules))
	for id := range c.Rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, ok := findings.LookupRule(id); !ok {
			errs = append(errs, locate(root, fmt.Errorf("unknown rule ID %q (see the findings reference in README.md)", id), "rules", id))
		}
	}
	for i, e := range c.Exemptions {
		err := e.Validate()
		if err == nil {
			continue
		}
		path := []string{"exemptions", strconv.Itoa(i)}
		if _, known := findings.LookupRule(e.Rule); !known {
			path = append(path, "rule")
			err = fmt.Errorf("%w (see the findings reference in README.md)", err)
		}
		errs = append(errs, locate(root, err, path...))
	}
	return errors.Join(errs...)
}

// hostRoot is the host's root filesystem every source looks at, as
// validate checked it.
func (c Config) hostRoot() hostfs.Root { return hostfs.At(c.RootFS) }

// movedKeys are keys of earlier releases that moved, with where they went,
// so that an old config file fails with directions rather than "unknown key".
var movedKeys = map[string]string{
	"host.rootfs":  `moved to the top-level "rootfs" key, one setting for every source`,
	"audit.rootfs": `moved to the top-level "rootfs" key, one setting for every source`,
}

// locateSectionError points a section's validation error at the line of the
// key its *findings.ConfigError names, falling back to the section's own
// line when the file does not hold the key (a default that is invalid).
func locateSectionError(root *node, section string, err error) error {
	var ce *findings.ConfigError
	if !errors.As(err, &ce) {
		return locate(root, err, section)
	}
	path := strings.Split(strings.NewReplacer("[", ".", "]", "").Replace(ce.Key), ".")
	if path[0] != section {
		path = append([]string{section}, path...)
	}
	if k, _ := find(root, path...); k != nil {
		return &configError{line: k.Line, key: dotted(path), err: ce.Err}
	}
	return locate(root, fmt.Errorf("%s: %w", dotted(path[1:]), ce.Err), section)
}
