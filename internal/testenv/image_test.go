package testenv

import (
	"strings"
	"testing"
)

func TestBusyboxImageRuns(t *testing.T) {
	img := RequireBusyboxImage(t)
	out := Run(t, "docker", "run", "--rm", "--network", "none", img, "echo", "hello from scratch")
	if !strings.Contains(out, "hello from scratch") {
		t.Fatalf("unexpected output %q", out)
	}
}
