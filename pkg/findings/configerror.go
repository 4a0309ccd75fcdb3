package findings

import "fmt"

// ConfigError is one invalid setting in the config file, as a source's (or
// the policy's) Validate reports it. It carries the setting's key, so the
// agent can point at the line that holds it without parsing the message.
type ConfigError struct {
	// Key is the setting's path from the top of the config file: names
	// joined by dots, list indexes in brackets ("audit.watches[0].path",
	// "host.rootfs", "exemptions[2]").
	Key string
	// Err says what is wrong with the value and what is wanted.
	Err error
}

// ConfigErrorf builds a *ConfigError for key, formatting its message as
// fmt.Errorf does (so %w wraps).
func ConfigErrorf(key, format string, args ...any) error {
	return &ConfigError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Error reads "key: message".
func (e *ConfigError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }
