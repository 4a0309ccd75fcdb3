package findings

import (
	"fmt"
	"strings"
)

// Severity orders findings. Lower values are more severe so that sorting
// ascending puts critical first.
type Severity int

const (
	Critical Severity = iota
	High
	Medium
	Low
	Info
)

var severityNames = [...]string{"critical", "high", "medium", "low", "info"}

func (s Severity) String() string {
	if s < Critical || s > Info {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// AtLeast reports whether s is as severe as min or more.
func (s Severity) AtLeast(min Severity) bool { return s <= min }

// ParseSeverity accepts the lower-case names used in config, logs and metrics.
func ParseSeverity(v string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(v, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: want one of %s", v, strings.Join(severityNames[:], ", "))
}

// UnmarshalText lets config files and flags name severities.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText writes the severity's name in JSON output.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
