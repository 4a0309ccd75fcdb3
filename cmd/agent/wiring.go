package main

import (
	"fmt"
	"sync"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/dockerinfo"
	"github.com/dockward/dockward/pkg/findings"
)

// wiring carries what sources share. Sources never import each other: a fact
// one source needs from another travels through these fields as a function,
// set by the source that owns the fact and read lazily by the other, so the
// order in which sources are built does not matter.
type wiring struct {
	log   *zap.Logger
	reg   prometheus.Registerer // the root registry; each build gets a tracking wrapper of it
	store *findings.Store

	buildMu sync.Mutex // serialises source builds (see buildSource)

	dockerHost string // --docker.host; empty means DOCKER_HOST or the default socket

	dockerOnce sync.Once
	docker     *client.Client
	dockerErr  error

	mu sync.RWMutex
	// containerName resolves a container ID (full or 12-hex) to its name;
	// set by the containers source, used by audit attribution.
	containerName func(id string) (string, bool)
	// containerImage resolves a container ID to its image; set and used
	// as containerName is.
	containerImage func(id string) (string, bool)
	// dockerdPID returns the running dockerd's PID (0 when unknown); set by
	// the host watcher, used by the audit source.
	dockerdPID func() int
	// daemonReload are called when Docker reports a daemon reload event,
	// with GET /info as read after it (nil when it could not be read); the
	// containers source fires them, the daemon-settings judge listens, so
	// one reload fetches /info once.
	// Keyed by the source that registered them, so a rebuilt source
	// replaces its old listeners instead of adding to them.
	daemonReload map[string][]func(*dockerinfo.Info)
	building     string // the source being built (under buildMu)
	// observers report the observed checks of the compliance report, by
	// source; set by the builders of sources that observe checks.
	observers map[string]func() map[string]findings.Observation
}

// Docker returns the one Docker Engine client the agent uses. It only makes
// read calls; the connection is made lazily, so a daemon that is down at
// start is retried by the sources rather than failing here.
func (w *wiring) Docker() (*client.Client, error) {
	w.dockerOnce.Do(func() {
		opts := []client.Opt{client.FromEnv}
		if w.dockerHost != "" {
			opts = append(opts, client.WithHost(w.dockerHost))
		}
		w.docker, w.dockerErr = client.New(opts...)
		if w.dockerErr != nil {
			w.dockerErr = fmt.Errorf("docker client for %q: %w", w.dockerHost, w.dockerErr)
		}
	})
	return w.docker, w.dockerErr
}

func (w *wiring) sourceLog(name string) *zap.Logger { return w.log.With(zap.String("source", name)) }

// SetContainerIdentity is called by the containers source wiring with its
// name and image lookups.
func (w *wiring) SetContainerIdentity(name, image func(id string) (string, bool)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.containerName, w.containerImage = name, image
}

// ContainerName is safe to call before or without the containers source.
func (w *wiring) ContainerName(id string) (string, bool) {
	return w.lookupContainer(id, func() func(string) (string, bool) { return w.containerName })
}

// ContainerImage is safe to call before or without the containers source.
func (w *wiring) ContainerImage(id string) (string, bool) {
	return w.lookupContainer(id, func() func(string) (string, bool) { return w.containerImage })
}

// lookupContainer calls the lookup pick returns (read under the lock).
func (w *wiring) lookupContainer(id string, pick func() func(string) (string, bool)) (string, bool) {
	w.mu.RLock()
	f := pick()
	w.mu.RUnlock()
	if f == nil {
		return "", false
	}
	return f(id)
}

// SetDockerdPID is called by the host watcher wiring.
func (w *wiring) SetDockerdPID(f func() int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dockerdPID = f
}

// DockerdPID is safe to call before or without the host watcher.
func (w *wiring) DockerdPID() int {
	w.mu.RLock()
	f := w.dockerdPID
	w.mu.RUnlock()
	if f == nil {
		return 0
	}
	return f()
}

// OnDaemonReload registers a listener for Docker daemon reload events. It is
// meant to be called from a source builder.
func (w *wiring) OnDaemonReload(f func(*dockerinfo.Info)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.daemonReload == nil {
		w.daemonReload = map[string][]func(*dockerinfo.Info){}
	}
	w.daemonReload[w.building] = append(w.daemonReload[w.building], f)
}

// startBuild forgets the listeners of a previous build of source. Caller
// holds buildMu.
func (w *wiring) startBuild(source string) {
	w.dropListeners(source)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.building = source
}

// dropListeners forgets what a stopped source registered.
func (w *wiring) dropListeners(source string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.daemonReload, source)
}

// DaemonReloaded tells every listener that dockerd reloaded its config,
// handing over info, GET /info as read after the reload (nil: unknown).
func (w *wiring) DaemonReloaded(info *dockerinfo.Info) {
	w.mu.RLock()
	var fs []func(*dockerinfo.Info)
	for _, l := range w.daemonReload {
		fs = append(fs, l...)
	}
	w.mu.RUnlock()
	for _, f := range fs {
		f(info)
	}
}
