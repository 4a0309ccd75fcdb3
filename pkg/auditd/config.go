package auditd

// Config is the `auditd` section of the agent's config file.
// TODO(issue): extend with this source's settings.
type Config struct {
	Enabled bool `yaml:"enabled"`
}

// DefaultConfig is the built-in default.
func DefaultConfig() Config { return Config{Enabled: true} }

// Validate reports the first invalid setting.
func (c Config) Validate() error { return nil }
