package testenv

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// runQuiet runs a command and returns an error carrying its output.
func runQuiet(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return errors.New(err.Error() + ": " + string(out))
	}
	return nil
}

// DecodeFile reads path and decodes it into v with decode (json.Unmarshal,
// yaml.Unmarshal, ...), failing t with the file's name.
func DecodeFile(t testing.TB, path string, decode func([]byte, any) error, v any) {
	t.Helper()
	if err := decode(ReadFile(t, path), v); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
}

// ReadFile returns the content of path, failing t if it cannot be read.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return data
}
