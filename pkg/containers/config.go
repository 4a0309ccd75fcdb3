package containers

import (
	"errors"
	"fmt"
	"time"

	"github.com/dockward/dockward/pkg/findings"
)

// Config is the `containers` section of the agent's config file.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// InventoryConcurrency bounds the inspect calls in flight while the
	// source takes inventory, so a host with thousands of containers does
	// not flood dockerd at start or after a reconnect.
	InventoryConcurrency int `yaml:"inventory_concurrency"`
	// ReconnectBackoff is the first wait after the Docker connection is
	// lost; it doubles on every failed attempt up to ReconnectBackoffMax.
	ReconnectBackoff    time.Duration `yaml:"reconnect_backoff"`
	ReconnectBackoffMax time.Duration `yaml:"reconnect_backoff_max"`
	// RequestTimeout bounds each list, inspect and info call (not the event
	// stream, which is meant to stay open).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RescanInterval is how often the whole inventory (containers and their
	// processes, images, swarm) is judged again while the event stream is
	// up: a process started inside a container, or a swarm joined or left,
	// has no event of its own.
	RescanInterval time.Duration `yaml:"rescan_interval"`
	// AllowedPorts are the ports containers may publish (CIS 5.9); every
	// other published port is reported.
	AllowedPorts []PortAllowance `yaml:"allowed_ports"`
}

// DefaultConfig is the built-in default.
func DefaultConfig() Config {
	return Config{
		Enabled:              true,
		InventoryConcurrency: 8,
		ReconnectBackoff:     500 * time.Millisecond,
		ReconnectBackoffMax:  30 * time.Second,
		RequestTimeout:       30 * time.Second,
		RescanInterval:       5 * time.Minute,
	}
}

// withDefaults fills settings left out of the config file (zero) with the
// built-in defaults, so a section that only says `enabled: true` works.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.InventoryConcurrency == 0 {
		c.InventoryConcurrency = d.InventoryConcurrency
	}
	if c.ReconnectBackoff == 0 {
		c.ReconnectBackoff = d.ReconnectBackoff
	}
	if c.ReconnectBackoffMax == 0 {
		c.ReconnectBackoffMax = max(d.ReconnectBackoffMax, c.ReconnectBackoff)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.RescanInterval == 0 {
		c.RescanInterval = d.RescanInterval
	}
	return c
}

// Validate reports every invalid setting, naming its key. Settings left
// out (zero) take their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.InventoryConcurrency < 1 || c.InventoryConcurrency > 256 {
		errs = append(errs, findings.ConfigErrorf(Name+".inventory_concurrency", "%d is out of range, want 1..256", c.InventoryConcurrency))
	}
	if c.ReconnectBackoff <= 0 {
		errs = append(errs, findings.ConfigErrorf(Name+".reconnect_backoff", "%s must be positive", c.ReconnectBackoff))
	}
	if c.ReconnectBackoffMax < c.ReconnectBackoff {
		errs = append(errs, findings.ConfigErrorf(Name+".reconnect_backoff_max", "%s must be at least reconnect_backoff (%s)", c.ReconnectBackoffMax, c.ReconnectBackoff))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, findings.ConfigErrorf(Name+".request_timeout", "%s must be positive", c.RequestTimeout))
	}
	if c.RescanInterval < time.Second {
		errs = append(errs, findings.ConfigErrorf(Name+".rescan_interval", "%s is too short, want at least 1s", c.RescanInterval))
	}
	for i, a := range c.AllowedPorts {
		if err := a.validate(); err != nil {
			errs = append(errs, findings.ConfigErrorf(fmt.Sprintf("%s.allowed_ports[%d]", Name, i), "%w", err))
		}
	}
	return errors.Join(errs...)
}
