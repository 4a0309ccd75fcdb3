package main

import (
	"go.uber.org/zap"

	"github.com/dockward/dockward/pkg/findings"
	"github.com/dockward/dockward/pkg/watcher"
)

// buildWatcher builds the host source (daemon settings, Docker files,
// binary integrity) from the `host:` config section, and publishes the
// dockerd PID it finds and its reload hook through the wiring.
func buildWatcher(w *wiring, cfg Config, b sourceBase) (findings.Source, error) {
	var docker watcher.DockerAPI
	if c, err := w.Docker(); err != nil {
		b.log.Warn("no Docker client; judging the daemon without GET /info", zap.Error(err))
	} else if c != nil {
		docker = c
	}
	src, err := watcher.New(cfg.Host, watcher.Deps{
		Log:        b.log,
		Registerer: b.reg,
		Sink:       b.sink,
		Docker:     docker,
		Host:       b.host,
	})
	if err != nil {
		return nil, err
	}
	w.SetDockerdPID(src.DockerdPID)
	w.SetObserver(watcher.Name, src.Observations)
	w.OnDaemonReload(src.DaemonReloaded)
	return src, nil
}
