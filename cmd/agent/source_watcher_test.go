package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/system"

	"github.com/dockward/dockward/internal/testenv"
	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/watcher"
)

// startWiredHost builds and runs the host source as the agent does, over a
// host tree with a daemon.json and a fake Engine API; open tells whether a
// daemon finding of rule is open.
func startWiredHost(t *testing.T) (w *wiring, engine *fakeEngine, open func(rule string) bool) {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/docker/daemon.json"), []byte(`{"icc": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	engine = &fakeEngine{info: system.Info{Driver: "overlay2", LoggingDriver: "syslog", LiveRestoreEnabled: true,
		SecurityOptions: []string{"name=seccomp,profile=default"}}}

	w, _ = testWiring()
	w.dockerHost = startFakeEngine(t, engine)
	cfg := Config{RootFS: root, Host: watcher.DefaultConfig()}
	cfg.Host.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Host.RescanInterval = time.Hour // only the reload may re-judge
	src, _, err := buildSource(w, sourceSpec{name: watcher.Name, build: buildWatcher}, cfg)
	if err != nil {
		t.Fatalf("buildWatcher: %v", err)
	}
	testenv.RunSource(t, src)
	open = func(rule string) bool {
		for _, f := range w.store.Open() {
			if f.Rule == rule && f.Subject.Kind == findings.KindDaemon {
				return true
			}
		}
		return false
	}
	return w, engine, open
}

// TestHostSourceIsWiredToDockerAndDaemonReloads builds the host source as
// the agent does: it must judge through the agent's Docker client (GET
// /info) and re-judge when the wiring reports a daemon reload.
func TestHostSourceIsWiredToDockerAndDaemonReloads(t *testing.T) {
	w, engine, open := startWiredHost(t)
	// Judged through /info: the log driver /info reports, not daemon.json's default.
	if open("daemon.local_log_driver") || open("daemon.live_restore_off") {
		t.Fatal("the daemon was not judged through GET /info")
	}
	engine.mu.Lock()
	engine.info.LiveRestoreEnabled = false
	engine.mu.Unlock()
	w.DaemonReloaded(nil)
	testenv.WaitFor(t, 2*time.Second, "a daemon reload to re-judge the daemon", func() bool { return open("daemon.live_restore_off") })
}

// A reload that comes with GET /info (read by the containers source) is
// judged on that /info, without the host source asking for it again.
func TestHostSourceJudgesTheInfoOfAReload(t *testing.T) {
	w, engine, open := startWiredHost(t)
	engine.mu.Lock()
	before := engine.infoRequests
	reloaded := engine.info
	engine.mu.Unlock()
	reloaded.LiveRestoreEnabled = false // only the handed-over /info says so
	w.DaemonReloaded(dockerinfo.Parse(&reloaded))
	testenv.WaitFor(t, 2*time.Second, "the handed-over /info to be judged", func() bool { return open("daemon.live_restore_off") })
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.infoRequests != before {
		t.Errorf("the host source made %d GET /info requests for a reload that came with /info, want 0", engine.infoRequests-before)
	}
}
