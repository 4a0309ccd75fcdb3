package testenv

import (
	"errors"
	"os/exec"
)

// runQuiet runs a command and returns an error carrying its output.
func runQuiet(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return errors.New(err.Error() + ": " + string(out))
	}
	return nil
}
