package images

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"time"

	"github.com/docker/go-units"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/images/osv"
)

// Config is the `images` section of the agent's config file. The OSV
// database settings are the `vulns` section (Vulns), which the agent sets.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// CacheDir keeps one inventory per image ID across restarts, and the
	// image exports while they are read (CacheDir/tmp).
	CacheDir string `yaml:"cache_dir"`
	// MaxImageSize is the largest image export read; a larger image is
	// skipped with vulns.scan_skipped.
	MaxImageSize ByteSize `yaml:"max_image_size"`
	// MaxDatabaseSize is the largest package database file parsed.
	MaxDatabaseSize ByteSize `yaml:"max_database_size"`
	// Containers reads running containers' packages through
	// /proc/<pid>/root, to count what they really run and notice drift.
	Containers bool `yaml:"containers"`
	// ProcDir is the host's /proc (the agent needs the host PID namespace).
	ProcDir string `yaml:"proc_dir"`
	// ContainerRescan is how often running containers are read again.
	ContainerRescan time.Duration `yaml:"container_rescan"`
	// Rescan is the backstop re-listing of images for events missed.
	Rescan time.Duration `yaml:"rescan"`
	// FindingSeverity maps the highest fixable vulnerability severity of an
	// image to the severity of its image.vulnerable finding ("none": no
	// fixable vulnerability).
	FindingSeverity map[string]string `yaml:"finding_severity"`

	Vulns VulnsConfig `yaml:"-"`
}

// VulnsSection is the top-level config section of VulnsConfig.
const VulnsSection = "vulns"

// VulnsConfig is the `vulns` section: where the OSV data comes from and how
// it is counted.
type VulnsConfig struct {
	DB DBConfig `yaml:"db"`
	// ShowUnimportant counts what Debian rates "unimportant" (hidden by
	// default: Debian judged it no security problem in that release).
	ShowUnimportant bool `yaml:"show_unimportant"`
	// CVESeries exports one dockward_image_cve series per vulnerability:
	// unbounded, off by default; the per-CVE list is in the API.
	CVESeries bool `yaml:"cve_series"`
}

// DBConfig is `vulns.db`.
type DBConfig struct {
	// URL is OSV's bucket or a mirror laid out the same way:
	// <url>/<Ecosystem>/all.zip.
	URL string `yaml:"url"`
	// Dir holds the zips (<dir>/<Ecosystem>/all.zip).
	Dir string `yaml:"dir"`
	// Refresh is how often the zips are checked for updates.
	Refresh time.Duration `yaml:"refresh"`
	// Offline never downloads: the operator drops the zips into Dir.
	Offline bool `yaml:"offline"`
	// MaxAge makes a zip older than this vulns.db_stale.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxSize is the largest zip downloaded.
	MaxSize ByteSize `yaml:"max_size"`
	// Timeout bounds one download.
	Timeout time.Duration `yaml:"timeout"`
}

// ByteSize is a size in bytes that reads "4GiB", "512MiB" or a plain number.
type ByteSize int64

// UnmarshalText parses a size with binary (KiB, MiB, GiB) or decimal units.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := units.RAMInBytes(string(text))
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a size such as 64MiB or 4GiB", text)
	}
	*b = ByteSize(n)
	return nil
}

// MarshalText writes the size in binary units.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(units.BytesSize(float64(b))), nil }

// DefaultConfig is the built-in default of both sections. The source is
// off by default: it exports every local image and downloads OSV's data
// from the internet unless told to stay offline, which an operator turns
// on knowingly.
func DefaultConfig() Config {
	return Config{
		Enabled:         false,
		CacheDir:        "/var/lib/dockward/images",
		MaxImageSize:    4 << 30,
		MaxDatabaseSize: 64 << 20,
		Containers:      true,
		ProcDir:         "/proc",
		ContainerRescan: 5 * time.Minute,
		Rescan:          time.Hour,
		FindingSeverity: DefaultFindingSeverity(),
		Vulns:           DefaultVulnsConfig(),
	}
}

// DefaultVulnsConfig is the built-in `vulns` section.
func DefaultVulnsConfig() VulnsConfig {
	return VulnsConfig{DB: DBConfig{
		URL:     osv.DefaultURL,
		Dir:     "/var/lib/dockward/vulns",
		Refresh: 6 * time.Hour,
		MaxAge:  48 * time.Hour,
		MaxSize: 2 << 30,
		Timeout: 15 * time.Minute,
	}}
}

// DefaultFindingSeverity rates image.vulnerable by its most severe fixable
// vulnerability; unknown counts as low, and an image whose vulnerabilities
// have no fix yet is info.
func DefaultFindingSeverity() map[string]string {
	return map[string]string{"critical": "critical", "high": "high", "medium": "medium", "low": "low",
		"negligible": "info", "unknown": "low", "none": "info"}
}

// Validate reports every invalid setting of the `images` section.
func (c Config) Validate() error {
	var errs []error
	for key, dir := range map[string]string{"cache_dir": c.CacheDir, "proc_dir": c.ProcDir} {
		if !path.IsAbs(dir) {
			errs = append(errs, findings.ConfigErrorf(Name+"."+key, "%q must be an absolute path", dir))
		}
	}
	if c.MaxImageSize < 1<<20 {
		errs = append(errs, findings.ConfigErrorf(Name+".max_image_size", "%d bytes is too small; use at least 1MiB (default 4GiB)", c.MaxImageSize))
	}
	if c.MaxDatabaseSize < 64<<10 {
		errs = append(errs, findings.ConfigErrorf(Name+".max_database_size", "%d bytes is too small; use at least 64KiB (default 64MiB)", c.MaxDatabaseSize))
	}
	if c.ContainerRescan < time.Second {
		errs = append(errs, findings.ConfigErrorf(Name+".container_rescan", "%s is too short; use at least 1s (default 5m)", c.ContainerRescan))
	}
	if c.Rescan < time.Second {
		errs = append(errs, findings.ConfigErrorf(Name+".rescan", "%s is too short; use at least 1s (default 1h)", c.Rescan))
	}
	errs = append(errs, validateFindingSeverity(c.FindingSeverity)...)
	return errors.Join(errs...)
}

func validateFindingSeverity(m map[string]string) []error {
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := osv.ParseLevel(k); err != nil && k != "none" {
			errs = append(errs, findings.ConfigErrorf(Name+".finding_severity."+k, "%q is not a vulnerability severity (critical, high, medium, low, negligible, unknown or none)", k))
		}
		if _, err := findings.ParseSeverity(m[k]); err != nil {
			errs = append(errs, &findings.ConfigError{Key: Name + ".finding_severity." + k, Err: err})
		}
	}
	return errs
}

// Validate reports every invalid setting of the `vulns` section.
func (c VulnsConfig) Validate() error {
	var errs []error
	if u, err := url.Parse(c.DB.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, findings.ConfigErrorf(VulnsSection+".db.url", "%q is not an http(s) URL such as %s", c.DB.URL, osv.DefaultURL))
	}
	if !path.IsAbs(c.DB.Dir) {
		errs = append(errs, findings.ConfigErrorf(VulnsSection+".db.dir", "%q must be an absolute path", c.DB.Dir))
	}
	if c.DB.Refresh < time.Minute {
		errs = append(errs, findings.ConfigErrorf(VulnsSection+".db.refresh", "%s is too short; use at least 1m (default 6h)", c.DB.Refresh))
	}
	if c.DB.MaxAge < c.DB.Refresh {
		errs = append(errs, findings.ConfigErrorf(VulnsSection+".db.max_age", "%s is shorter than db.refresh (%s), so the database would always look stale", c.DB.MaxAge, c.DB.Refresh))
	}
	if c.DB.MaxSize < 1<<20 {
		errs = append(errs, findings.ConfigErrorf(VulnsSection+".db.max_size", "%d bytes is too small; use at least 1MiB (default 2GiB)", c.DB.MaxSize))
	}
	if c.DB.Timeout < time.Second {
		errs = append(errs, findings.ConfigErrorf(VulnsSection+".db.timeout", "%s is too short; use at least 1s (default 15m)", c.DB.Timeout))
	}
	return errors.Join(errs...)
}
