package containers

import (
	"regexp"
	"sort"
	"strings"
)

// secretNameParts mark an environment variable whose value is a secret.
var secretNameParts = []string{
	"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY",
	"ACCESS_KEY", "CREDENTIAL", "AUTH_KEY",
}

// secretValue matches values that are keys whatever the variable is called:
// AWS access key IDs and PEM private keys.
var secretValue = regexp.MustCompile(`(?:^|[^A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?:[^A-Z0-9]|$)|-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// secretEnvNames returns the names (never the values) of the variables in
// env that carry a secret, sorted and without duplicates.
func secretEnvNames(env []string) []string {
	seen := map[string]bool{}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || seen[name] {
			continue
		}
		if secretName(name) || looksLikeKey(value) {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// looksLikeKey runs the regexp only on values that could match it.
func looksLikeKey(value string) bool {
	if !strings.Contains(value, "AKIA") && !strings.Contains(value, "ASIA") && !strings.Contains(value, "-----BEGIN ") {
		return false
	}
	return secretValue.MatchString(value)
}

// secretName reports whether a variable's name says it holds a secret.
// Names ending in _FILE point to a file holding the secret, which is the
// remedy rather than the problem, as are *_PATH and *_DIR.
func secretName(name string) bool {
	u := strings.ToUpper(name)
	for _, suffix := range []string{"_FILE", "_PATH", "_DIR"} {
		if strings.HasSuffix(u, suffix) {
			return false
		}
	}
	for _, p := range secretNameParts {
		if strings.Contains(u, p) {
			return true
		}
	}
	return false
}
