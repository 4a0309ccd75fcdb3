package osv

import (
	"fmt"
	"strings"

	cvss20 "github.com/pandatix/go-cvss/20"
	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"
)

// Level is a vulnerability's severity, lowest first so levels compare.
type Level int

const (
	Unknown Level = iota
	Negligible
	Low
	Medium
	High
	Critical
)

// NumLevels is the number of levels, for arrays indexed by Level.
const NumLevels = int(Critical) + 1

// Levels lists every level, most severe first (the metrics' label values).
var Levels = []Level{Critical, High, Medium, Low, Negligible, Unknown}

var levelNames = map[Level]string{
	Unknown: "unknown", Negligible: "negligible", Low: "low", Medium: "medium", High: "high", Critical: "critical",
}

func (l Level) String() string {
	if s, ok := levelNames[l]; ok {
		return s
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses a level name.
func ParseLevel(s string) (Level, error) {
	for l, n := range levelNames {
		if n == s {
			return l, nil
		}
	}
	return Unknown, fmt.Errorf("unknown vulnerability severity %q (want critical, high, medium, low, negligible or unknown)", s)
}

// MarshalText lets a Level be a JSON string.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText is MarshalText's inverse.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}

// rate takes the severity from a CVSS vector (the newest CVSS version the
// record carries, the affected package's own list first), else the Ubuntu
// priority, else Debian's urgency, else unknown. unimportant reports
// Debian's "unimportant" urgency, which is hidden by default whatever the
// vector says: Debian judged the issue not to be a security problem there.
func rate(r Record, a Affected) (level Level, unimportant bool) {
	urgency := a.urgency()
	unimportant = urgency == "unimportant"
	lists := [][]Severity{a.Severity, r.Severity}
	for _, typ := range []string{"CVSS_V4", "CVSS_V3", "CVSS_V2"} {
		for _, list := range lists {
			for _, s := range list {
				if s.Type != typ {
					continue
				}
				if l, ok := cvssLevel(s.Score); ok {
					return l, unimportant
				}
			}
		}
	}
	for _, list := range lists {
		for _, s := range list {
			if strings.EqualFold(s.Type, "Ubuntu") {
				if l, ok := ubuntuLevel(s.Score); ok {
					return l, unimportant
				}
			}
		}
	}
	return debianLevel(urgency), unimportant
}

// cvssLevel rates a CVSS vector by its base score with the qualitative
// scale CVSS v3 and v4 define (v2 has none; the same bands are used).
func cvssLevel(vector string) (Level, bool) {
	score, ok := cvssScore(strings.TrimSpace(vector))
	if !ok {
		return Unknown, false
	}
	switch {
	case score >= 9:
		return Critical, true
	case score >= 7:
		return High, true
	case score >= 4:
		return Medium, true
	case score > 0:
		return Low, true
	default:
		return Negligible, true
	}
}

func cvssScore(vector string) (float64, bool) {
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		if v, err := cvss40.ParseVector(vector); err == nil {
			return v.Score(), true
		}
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		if v, err := cvss31.ParseVector(vector); err == nil {
			return v.BaseScore(), true
		}
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		if v, err := cvss30.ParseVector(vector); err == nil {
			return v.BaseScore(), true
		}
	default:
		if v, err := cvss20.ParseVector(vector); err == nil {
			return v.BaseScore(), true
		}
	}
	return 0, false
}

// ubuntuLevel maps the Ubuntu priority; "untriaged" is not a rating.
func ubuntuLevel(s string) (Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return Critical, true
	case "high":
		return High, true
	case "medium":
		return Medium, true
	case "low":
		return Low, true
	case "negligible":
		return Negligible, true
	}
	return Unknown, false
}

// debianLevel maps Debian's urgency; "not yet assigned" and "end-of-life"
// are not ratings.
func debianLevel(u string) Level {
	switch u {
	case "high":
		return High
	case "medium":
		return Medium
	case "low":
		return Low
	case "unimportant":
		return Negligible
	}
	return Unknown
}
