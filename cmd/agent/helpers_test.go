package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockward/dockward/internal/testenv"
)

// TestMain removes the agent binary the tests built.
func TestMain(m *testing.M) { testenv.Main(m) }

// get fetches url until it answers or the deadline passes.
func getUntil(t *testing.T, client *http.Client, url string, deadline time.Time) (*http.Response, []byte) {
	t.Helper()
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if err == nil {
				return resp, body
			}
			lastErr = err
		} else {
			cancel()
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GET %s: no answer before the deadline: %v", url, lastErr)
	return nil, nil
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// allSourcesOff is a config that disables every source, so the output does
// not depend on the machine.
const allSourcesOff = `containers:
  enabled: false
audit:
  enabled: false
host:
  enabled: false
`

func contains(s, sub string) bool { return strings.Contains(s, sub) }
