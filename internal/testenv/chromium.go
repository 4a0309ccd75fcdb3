package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// chromiumFlags are the flags every headless Chromium run in the tests uses.
// --disable-background-networking alone still lets Chromium call its update
// and account services; the resolver rule makes every host but 127.0.0.1
// (names and IP literals alike) fail to resolve, so nothing leaves the
// machine whatever Chromium or the page tries.
func chromiumFlags(profileDir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
		"--disable-domain-reliability", "--disable-breakpad", "--no-pings", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + profileDir}
}

// Chromium runs Debian's headless Chromium (package chromium) with args
// after the isolating flags, and returns its standard output.
func Chromium(t testing.TB, args ...string) []byte {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		bin = RequireCommand(t, "chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(chromiumFlags(t.TempDir()), args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}
