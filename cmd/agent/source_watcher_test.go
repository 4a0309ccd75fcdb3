package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/system"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/watcher"
)

// fakeEngine answers GET /info like dockerd, with settings the test can
// change as a daemon reload would.
type fakeEngine struct {
	mu   sync.Mutex
	info system.Info
}

func (e *fakeEngine) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/_ping"):
		rw.Header().Set("Api-Version", "1.41")
		_, _ = rw.Write([]byte("OK"))
	case strings.HasSuffix(r.URL.Path, "/info"):
		e.mu.Lock()
		defer e.mu.Unlock()
		_ = json.NewEncoder(rw).Encode(e.info)
	default:
		rw.WriteHeader(http.StatusNotFound)
		_, _ = rw.Write([]byte(`{"message":"not found"}`))
	}
}

// TestHostSourceIsWiredToDockerAndDaemonReloads builds the host source as
// the agent does: it must judge through the agent's Docker client (GET
// /info) and re-judge when the wiring reports a daemon reload.
func TestHostSourceIsWiredToDockerAndDaemonReloads(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/docker/daemon.json"), []byte(`{"icc": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	engine := &fakeEngine{info: system.Info{Driver: "overlay2", LoggingDriver: "syslog", LiveRestoreEnabled: true,
		SecurityOptions: []string{"name=seccomp,profile=default"}}}
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)

	w, _ := testWiring()
	w.dockerHost = "tcp://" + strings.TrimPrefix(srv.URL, "http://")
	cfg := Config{RootFS: root, Host: watcher.DefaultConfig()}
	cfg.Host.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Host.RescanInterval = time.Hour // only the reload may re-judge
	src, _, err := buildSource(w, sourceSpec{name: watcher.Name, build: buildWatcher}, cfg)
	if err != nil {
		t.Fatalf("buildWatcher: %v", err)
	}
	testenv.RunSource(t, src)
	open := func(rule string) bool {
		for _, f := range w.store.Open() {
			if f.Rule == rule && f.Subject.Kind == findings.KindDaemon {
				return true
			}
		}
		return false
	}
	// Judged through /info: the log driver /info reports, not daemon.json's default.
	if open("daemon.local_log_driver") || open("daemon.live_restore_off") {
		t.Fatal("the daemon was not judged through GET /info")
	}
	engine.mu.Lock()
	engine.info.LiveRestoreEnabled = false
	engine.mu.Unlock()
	w.DaemonReloaded()
	testenv.WaitFor(t, 2*time.Second, "a daemon reload to re-judge the daemon", func() bool { return open("daemon.live_restore_off") })
}
